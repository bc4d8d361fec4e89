//! Every handshake rejection path through `dial` / `listen`, each asserting its own error, with
//! the attacker played by raw frames built from the public sans-IO steps.

mod common;

use common::*;
use commonware_cryptography::Signer as _;
use commonware_runtime::{
    Clock as _, Runner as _, Sink as _, Spawner as _, Supervisor as _, deterministic, mocks,
};
use palisade_stream::{
    Config, Error, dial,
    handshake::{self, AwaitingReply, CONFIRMATION_BYTES},
    listen,
};
use std::{
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

const HELLO: usize = handshake::hello_bytes::<Pk>();

/// Runs `listen` with `config(2)` and `bouncer` against a raw dialer: `attack` gets the raw
/// sink and stream of the dialer side and the listener's result is returned.
async fn listen_against<A, Fut>(
    context: &deterministic::Context,
    bouncer: impl FnOnce(Pk) -> bool + Send + 'static,
    attack: A,
) -> Result<Pk, Error>
where
    A: FnOnce(
            deterministic::Context,
            commonware_runtime::mocks::Sink,
            commonware_runtime::mocks::Stream,
        ) -> Fut
        + Send
        + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let ((raw_sink, raw_stream), (sink, stream)) = wire();
    let listening = context.child("listener").spawn(move |context| async move {
        listen(
            context,
            config(2),
            move |peer| async move { bouncer(peer) },
            sink,
            stream,
        )
        .await
    });
    context
        .child("attacker")
        .spawn(move |context| attack(context, raw_sink, raw_stream));
    listening.await.unwrap().map(|(peer, _, _)| peer)
}

/// Runs `dial` with `dialer` against `listener`, a task that gets the other end of the wire;
/// returns both results.
async fn dial_into<L, Fut>(
    context: &deterministic::Context,
    dialer: Config<Key>,
    listener: L,
) -> (Result<(), Error>, Result<(), Error>)
where
    L: FnOnce(deterministic::Context, mocks::Sink, mocks::Stream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), Error>> + Send + 'static,
{
    let ((dialer_sink, dialer_stream), (sink, stream)) = wire();
    let listening = context
        .child("listener")
        .spawn(move |context| listener(context, sink, stream));
    let dialed = dial(
        context.child("dialer"),
        dialer,
        key(2).public_key(),
        dialer_sink,
        dialer_stream,
    )
    .await
    .map(|_| ());
    (dialed, listening.await.unwrap())
}

fn at(context: &deterministic::Context) -> SystemTime {
    context.current()
}

#[test]
fn listener_refuses_a_hello_for_another_recipient() {
    deterministic::Runner::seeded(1).start(|context| async move {
        let result = listen_against(
            &context,
            |_| true,
            |mut context, mut sink, stream| async move {
                let now = at(&context);
                let (_, hello) =
                    handshake::start(&config(1), key(3).public_key(), now, &mut context).unwrap();
                sink.send(frame(&hello)).await.unwrap();
                context.sleep(Duration::from_secs(60)).await;
                drop(stream);
            },
        )
        .await;
        assert!(matches!(result, Err(Error::WrongRecipient)));
    });
}

#[test]
fn dialing_own_key_is_refused() {
    deterministic::Runner::seeded(2).start(|context| async move {
        let ((sink, stream), _other_end) = wire();
        let result = dial(context, config(1), key(1).public_key(), sink, stream).await;
        assert!(matches!(result, Err(Error::SelfDial)));
    });
}

#[test]
fn bouncer_runs_before_the_signature_check() {
    deterministic::Runner::seeded(3).start(|context| async move {
        // An unknown identity with a garbage signature: the bouncer's refusal is what we see,
        // and the bouncer was asked about exactly that identity.
        let asked = Arc::new(Mutex::new(Vec::new()));
        let recorded = asked.clone();
        let result = listen_against(
            &context,
            move |peer| {
                recorded.lock().unwrap().push(peer);
                false
            },
            garbage_signature_attack,
        )
        .await;
        assert!(matches!(result, Err(Error::RejectedByBouncer)));
        assert_eq!(*asked.lock().unwrap(), vec![key(9).public_key()]);

        // The same Hello, when the bouncer admits it, fails on its signature.
        let result = listen_against(&context, |_| true, garbage_signature_attack).await;
        assert!(matches!(result, Err(Error::InvalidSignature)));
    });
}

async fn garbage_signature_attack(
    mut context: deterministic::Context,
    mut sink: commonware_runtime::mocks::Sink,
    stream: commonware_runtime::mocks::Stream,
) {
    let now = at(&context);
    let (_, mut hello) =
        handshake::start(&config(9), key(2).public_key(), now, &mut context).unwrap();
    for byte in &mut hello[HELLO - 64..] {
        *byte = 0x5a;
    }
    sink.send(frame(&hello)).await.unwrap();
    context.sleep(Duration::from_secs(60)).await;
    drop(stream);
}

#[test]
fn dial_rejected_by_the_bouncer_fails_for_both_sides() {
    deterministic::Runner::seeded(4).start(|context| async move {
        let (dialed, listened) =
            dial_into(&context, config(1), |context, sink, stream| async move {
                listen(context, config(2), |_| async { false }, sink, stream)
                    .await
                    .map(|_| ())
            })
            .await;
        assert!(matches!(listened, Err(Error::RejectedByBouncer)));
        // Nothing is sent back; the dialer only sees the connection go away.
        assert!(matches!(dialed, Err(Error::Io(_))));
    });
}

#[test]
fn stale_hello_is_rejected_when_the_clock_moves_past_its_age() {
    deterministic::Runner::seeded(5).start(|context| async move {
        let mut patient = config(1);
        patient.handshake_timeout = Duration::from_secs(60);
        let (dialed, listened) = dial_into(&context, patient, |context, sink, stream| async move {
            let listener_config = config(2);
            // The Hello waits in the channel while time passes.
            context
                .sleep(listener_config.max_handshake_age + Duration::from_millis(1))
                .await;
            listen(context, listener_config, |_| async { true }, sink, stream)
                .await
                .map(|_| ())
        })
        .await;
        assert!(matches!(listened, Err(Error::TimestampTooOld)));
        assert!(matches!(dialed, Err(Error::Io(_))));
    });
}

#[test]
fn hello_from_the_future_is_rejected() {
    deterministic::Runner::seeded(6).start(|context| async move {
        let result = listen_against(
            &context,
            |_| true,
            |mut context, mut sink, stream| async move {
                let ahead = at(&context) + config(2).synchrony_bound + Duration::from_millis(1);
                let (_, hello) =
                    handshake::start(&config(1), key(2).public_key(), ahead, &mut context).unwrap();
                sink.send(frame(&hello)).await.unwrap();
                context.sleep(Duration::from_secs(60)).await;
                drop(stream);
            },
        )
        .await;
        assert!(matches!(result, Err(Error::TimestampInFuture)));
    });
}

#[test]
fn hello_within_the_synchrony_bound_is_accepted() {
    deterministic::Runner::seeded(7).start(|context| async move {
        let result = listen_against(
            &context,
            |_| true,
            |mut context, mut sink, mut stream| async move {
                let ahead = at(&context) + config(2).synchrony_bound;
                let dialer = config(1);
                let (state, hello) =
                    handshake::start(&dialer, key(2).public_key(), ahead, &mut context).unwrap();
                sink.send(frame(&hello)).await.unwrap();
                let reply = read_raw_frame(&mut stream).await.unwrap();
                let established = state
                    .receive_reply(&dialer, &reply[4..], at(&context))
                    .unwrap();
                sink.send(frame(&established.confirmation)).await.unwrap();
                context.sleep(Duration::from_secs(60)).await;
            },
        )
        .await;
        assert_eq!(result.unwrap(), key(1).public_key());
    });
}

#[test]
fn handshake_frame_of_the_wrong_size_is_rejected_before_its_body() {
    deterministic::Runner::seeded(8).start(|context| async move {
        for announced in [
            HELLO as u32 - 1,
            HELLO as u32 + 1,
            0x7fff_ffff,
            0x8000_0000 | HELLO as u32,
        ] {
            let result = listen_against(
                &context,
                |_| true,
                move |context, mut sink, stream| async move {
                    // Only the header: a listener that waited for a body would time out instead.
                    sink.send(announced.to_be_bytes().to_vec()).await.unwrap();
                    context.sleep(Duration::from_secs(60)).await;
                    drop(stream);
                },
            )
            .await;
            assert!(
                matches!(result, Err(Error::InvalidFrameSize { size }) if size == announced),
                "{announced}"
            );
        }
    });
}

#[test]
fn reply_of_the_wrong_size_is_rejected_by_the_dialer() {
    let expected = AwaitingReply::<Key>::reply_bytes() as u32;
    for announced in [
        expected - 1,
        expected + 1,
        0x7fff_ffff,
        0x8000_0000 | expected,
    ] {
        deterministic::Runner::seeded(9).start(move |context| async move {
            let ((dialer_sink, dialer_stream), (mut raw_sink, raw_stream)) = wire();
            context
                .child("raw_listener")
                .spawn(move |context| async move {
                    // Only a header: a dialer that waited for the body would time out instead.
                    raw_sink
                        .send(announced.to_be_bytes().to_vec())
                        .await
                        .unwrap();
                    context.sleep(Duration::from_secs(60)).await;
                    drop(raw_stream);
                });
            let result = dial(
                context,
                config(1),
                key(2).public_key(),
                dialer_sink,
                dialer_stream,
            )
            .await;
            assert!(
                matches!(result, Err(Error::InvalidFrameSize { size }) if size == announced),
                "{announced}"
            );
        });
    }
}

#[test]
fn confirmation_frame_of_the_wrong_size_is_rejected_by_the_listener() {
    let expected = CONFIRMATION_BYTES as u32;
    for announced in [expected - 1, expected + 1, 0x8000_0000 | expected] {
        deterministic::Runner::seeded(18).start(move |context| async move {
            let result = listen_against(
                &context,
                |_| true,
                move |mut context, mut sink, mut stream| async move {
                    let now = at(&context);
                    let dialer = config(1);
                    let (state, hello) =
                        handshake::start(&dialer, key(2).public_key(), now, &mut context).unwrap();
                    sink.send(frame(&hello)).await.unwrap();
                    let reply = read_raw_frame(&mut stream).await.unwrap();
                    state
                        .receive_reply(&dialer, &reply[4..], at(&context))
                        .unwrap();
                    sink.send(announced.to_be_bytes().to_vec()).await.unwrap();
                    context.sleep(Duration::from_secs(60)).await;
                },
            )
            .await;
            assert!(
                matches!(result, Err(Error::InvalidFrameSize { size }) if size == announced),
                "{announced}"
            );
        });
    }
}

#[test]
fn hello_claiming_the_listeners_own_key_is_refused_before_the_bouncer() {
    deterministic::Runner::seeded(19).start(|context| async move {
        let asked = Arc::new(Mutex::new(0));
        let counter = asked.clone();
        let result = listen_against(
            &context,
            move |_| {
                *counter.lock().unwrap() += 1;
                true
            },
            |mut context, mut sink, stream| async move {
                let now = at(&context);
                let (_, mut hello) =
                    handshake::start(&config(1), key(2).public_key(), now, &mut context).unwrap();
                // Claim to be the listener itself.
                hello[40..72].copy_from_slice(key(2).public_key().as_ref());
                sink.send(frame(&hello)).await.unwrap();
                context.sleep(Duration::from_secs(60)).await;
                drop(stream);
            },
        )
        .await;
        assert!(matches!(result, Err(Error::OwnKey)));
        assert_eq!(*asked.lock().unwrap(), 0);
    });
}

#[test]
fn cheap_checks_run_before_the_bouncer_is_asked() {
    deterministic::Runner::seeded(20).start(|context| async move {
        // Let the clock run so that a Hello can be stale.
        context.sleep(Duration::from_secs(7200)).await;
        let asked = Arc::new(Mutex::new(0));
        // A Hello for someone else, then a stale one.
        let cases = [(3u64, Duration::ZERO), (2, Duration::from_secs(3600))];
        for (recipient, age) in cases {
            let counter = asked.clone();
            let result = listen_against(
                &context,
                move |_| {
                    *counter.lock().unwrap() += 1;
                    true
                },
                move |mut context, mut sink, stream| async move {
                    let sent_at = at(&context) - age;
                    let (_, hello) = handshake::start(
                        &config(1),
                        key(recipient).public_key(),
                        sent_at,
                        &mut context,
                    )
                    .unwrap();
                    sink.send(frame(&hello)).await.unwrap();
                    context.sleep(Duration::from_secs(60)).await;
                    drop(stream);
                },
            )
            .await;
            let expected = if recipient == 3 {
                "wrong_recipient"
            } else {
                "timestamp_too_old"
            };
            assert_eq!(result.err().map(|e| e.reason()), Some(expected));
        }
        assert_eq!(*asked.lock().unwrap(), 0, "the bouncer must not be asked");
    });
}

#[test]
fn different_namespaces_never_connect_and_are_named_as_such() {
    deterministic::Runner::seeded(10).start(|context| async move {
        let mut other = config(2);
        other.namespace = b"another-application".to_vec();
        let (dialed, listened) = try_connect(&context, config(1), other).await;
        assert!(matches!(listened, Err(Error::NamespaceMismatch)));
        assert!(matches!(dialed, Err(Error::Io(_))));
    });
}

/// Asserts that `result` is a timeout that fired at `timeout` after `started` (plus the few
/// simulated milliseconds the runtime takes to start a task).
fn assert_timed_out<T>(
    result: Result<T, Error>,
    context: &deterministic::Context,
    started: SystemTime,
    timeout: Duration,
) {
    assert_timed_out_as("handshake_timeout", result, context, started, timeout);
}

/// Asserts that `result` is the listener's hello timeout, fired at `timeout` after `started`.
fn assert_hello_timed_out<T>(
    result: Result<T, Error>,
    context: &deterministic::Context,
    started: SystemTime,
    timeout: Duration,
) {
    assert_timed_out_as("hello_timeout", result, context, started, timeout);
}

fn assert_timed_out_as<T>(
    reason: &str,
    result: Result<T, Error>,
    context: &deterministic::Context,
    started: SystemTime,
    timeout: Duration,
) {
    assert_eq!(result.err().map(|error| error.reason()), Some(reason));
    let elapsed = context.current().duration_since(started).unwrap();
    assert!(
        elapsed >= timeout && elapsed < timeout + Duration::from_millis(50),
        "timed out after {elapsed:?}"
    );
}

#[test]
fn dialer_times_out_when_the_listener_never_answers() {
    deterministic::Runner::seeded(11).start(|context| async move {
        let ((sink, stream), silent_peer) = wire();
        let started = context.current();
        let timeout = config(1).handshake_timeout;
        let result = dial(
            context.child("dialer"),
            config(1),
            key(2).public_key(),
            sink,
            stream,
        )
        .await;
        assert_timed_out(result, &context, started, timeout);
        drop(silent_peer);
    });
}

#[test]
fn listener_times_out_when_no_hello_arrives() {
    deterministic::Runner::seeded(12).start(|context| async move {
        let started = context.current();
        let result = listen_against(
            &context,
            |_| true,
            |context, sink, stream| async move {
                context.sleep(Duration::from_secs(60)).await;
                drop((sink, stream));
            },
        )
        .await;
        assert_hello_timed_out(result, &context, started, config(2).hello_timeout);
    });
}

#[test]
fn listener_times_out_when_the_hello_stops_midway() {
    deterministic::Runner::seeded(13).start(|context| async move {
        let started = context.current();
        let result = listen_against(
            &context,
            |_| true,
            |mut context, mut sink, stream| async move {
                let now = at(&context);
                let (_, hello) =
                    handshake::start(&config(1), key(2).public_key(), now, &mut context).unwrap();
                sink.send(frame(&hello)[..100].to_vec()).await.unwrap();
                context.sleep(Duration::from_secs(60)).await;
                drop(stream);
            },
        )
        .await;
        assert_hello_timed_out(result, &context, started, config(2).hello_timeout);
    });
}

#[test]
fn listener_times_out_when_the_dialer_never_confirms() {
    deterministic::Runner::seeded(14).start(|context| async move {
        let started = context.current();
        let result = listen_against(
            &context,
            |_| true,
            |mut context, mut sink, mut stream| async move {
                let now = at(&context);
                let (_, hello) =
                    handshake::start(&config(1), key(2).public_key(), now, &mut context).unwrap();
                sink.send(frame(&hello)).await.unwrap();
                let reply = read_raw_frame(&mut stream).await.unwrap();
                assert_eq!(reply.len(), 4 + HELLO + CONFIRMATION_BYTES);
                context.sleep(Duration::from_secs(60)).await;
            },
        )
        .await;
        assert_timed_out(result, &context, started, config(2).handshake_timeout);
    });
}

#[test]
fn dialer_times_out_when_the_listener_reads_the_hello_and_stalls() {
    deterministic::Runner::seeded(15).start(|context| async move {
        let ((sink, stream), (raw_sink, mut raw_stream)) = wire();
        context
            .child("stalling_listener")
            .spawn(move |context| async move {
                read_raw_frame(&mut raw_stream).await.unwrap();
                context.sleep(Duration::from_secs(60)).await;
                drop(raw_sink);
            });
        let started = context.current();
        let timeout = config(1).handshake_timeout;
        let result = dial(
            context.child("dialer"),
            config(1),
            key(2).public_key(),
            sink,
            stream,
        )
        .await;
        assert_timed_out(result, &context, started, timeout);
    });
}

#[test]
fn slow_bouncer_counts_against_the_handshake_timeout() {
    deterministic::Runner::seeded(16).start(|context| async move {
        let clock = context.child("bouncer_clock");
        let started = context.current();
        let mut patient = config(1);
        patient.handshake_timeout = Duration::from_secs(120);
        let (_, listened) = dial_into(&context, patient, |context, sink, stream| async move {
            let bouncer = move |_| async move {
                clock.sleep(Duration::from_secs(3600)).await;
                true
            };
            listen(context, config(2), bouncer, sink, stream)
                .await
                .map(|_| ())
        })
        .await;
        assert_timed_out(listened, &context, started, config(2).handshake_timeout);
    });
}

#[test]
fn invalid_configuration_is_refused_before_any_io() {
    deterministic::Runner::seeded(17).start(|context| async move {
        let mut bad: Config<Key> = config(1);
        bad.max_message_size = u32::MAX;
        let ((sink, stream), _other_end) = wire();
        let result = dial(context, bad, key(2).public_key(), sink, stream).await;
        assert!(matches!(result, Err(Error::InvalidConfig(_))));
    });
}
