//! The arbiter's `Keep` under a hostile member: a peer with the smaller key (the pair's
//! arbiter) that completes handshakes and never keeps a connection ties up at most one of the
//! victim's connections at a time, each for at most the handshake timeout; one whose first
//! message is not `Keep` is refused; nothing of either reaches an application channel.

mod common;

use common::{
    CHANNEL, NAMESPACE, address, connected, key, metric, open_quota, peer_set, start_node,
};
use commonware_cryptography::Signer as _;
use commonware_runtime::{Clock as _, Network as _, Runner as _, Supervisor as _, deterministic};
use futures::FutureExt as _;
use palisade_p2p::{Config, Receiver as _, wire};
use std::time::Duration;

/// `(arbiter, victim)`: two node indices, the first with the smaller key.
fn pair() -> (usize, usize) {
    if key(1).public_key() < key(2).public_key() {
        (1, 2)
    } else {
        (2, 1)
    }
}

/// Completes a handshake with `victim` as `arbiter`, from outside any palisade-p2p node.
async fn handshake(
    context: &deterministic::Context,
    arbiter: usize,
    victim: usize,
) -> (
    palisade_stream::Sender<impl commonware_runtime::Sink>,
    palisade_stream::Receiver<impl commonware_runtime::Stream>,
) {
    // The victim listens once its network task has run.
    let (sink, stream) = loop {
        match context.dial(address(victim)).await {
            Ok(connection) => break connection,
            Err(_) => context.sleep(Duration::from_millis(1)).await,
        }
    };
    let config = Config::local(key(arbiter), NAMESPACE, address(arbiter)).stream();
    palisade_stream::dial(
        context.child("arbiter"),
        config,
        key(victim).public_key(),
        sink,
        stream,
    )
    .await
    .unwrap()
}

/// Connections `victim` closed for `reason`.
fn closed(context: &deterministic::Context, victim: usize, reason: &str) -> u64 {
    let label = format!("reason=\"{reason}\"");
    metric(context, "connections_closed", victim, &[&label])
}

/// Checks that `receiver` yields nothing for a second of simulated time.
async fn nothing_delivered(
    context: &deterministic::Context,
    receiver: &mut palisade_p2p::channels::Receiver<common::Pk>,
) {
    let receiving = receiver.recv().fuse();
    let waited = context.sleep(Duration::from_secs(1)).fuse();
    futures::pin_mut!(receiving, waited);
    futures::select! {
        delivered = receiving => panic!("delivered: {delivered:?}"),
        _ = waited => {},
    }
}

#[test]
fn an_arbiter_that_never_keeps_holds_one_connection_at_a_time() {
    deterministic::Runner::seeded(3).start(|context| async move {
        let (arbiter, victim) = pair();
        let _node = start_node(
            &context,
            victim,
            &peer_set([arbiter, victim]),
            open_quota(),
            100,
        )
        .await;
        let mut held = Vec::new();
        for _ in 0..10 {
            held.push(handshake(&context, arbiter, victim).await);
        }
        // Each newer connection superseded the one before it, at once.
        let superseded = |context: &deterministic::Context| closed(context, victim, "superseded");
        let started = context.current();
        while superseded(&context) < 9 {
            assert!(context.current().duration_since(started).unwrap() < Duration::from_secs(1));
            context.sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(superseded(&context), 9);
        assert_eq!(connected(&context, victim), 0);
        // The last one is closed at the handshake timeout (5 s), not before.
        let keep_timeout =
            |context: &deterministic::Context| closed(context, victim, "keep_timeout");
        context.sleep(Duration::from_millis(4900)).await;
        assert_eq!(keep_timeout(&context), 0);
        context.sleep(Duration::from_millis(200)).await;
        assert_eq!(keep_timeout(&context), 1);
        // Every held connection sees its end.
        for (_sender, mut receiver) in held {
            assert!(receiver.recv().await.is_err());
        }
        assert_eq!(connected(&context, victim), 0);
    });
}

#[test]
fn a_first_message_other_than_keep_is_refused_and_nothing_is_delivered() {
    deterministic::Runner::seeded(4).start(|context| async move {
        let (arbiter, victim) = pair();
        let mut node = start_node(
            &context,
            victim,
            &peer_set([arbiter, victim]),
            open_quota(),
            100,
        )
        .await;
        let (mut sender, mut receiver) = handshake(&context, arbiter, victim).await;
        // Data before `Keep`: as an older palisade-p2p, or a confused peer, would send.
        sender
            .send(wire::encode_data(CHANNEL, b"too early".to_vec()))
            .await
            .unwrap();
        assert!(receiver.recv().await.is_err(), "the victim closes it");
        assert_eq!(closed(&context, victim, "malformed"), 1);
        assert_eq!(connected(&context, victim), 0);
        nothing_delivered(&context, &mut node.receiver).await;
        // A second `Keep` on a kept connection is refused just the same.
        let (mut sender, mut receiver) = handshake(&context, arbiter, victim).await;
        sender.send(wire::encode_keep()).await.unwrap();
        sender.send(wire::encode_keep()).await.unwrap();
        assert!(receiver.recv().await.is_err(), "the victim closes it");
        assert_eq!(closed(&context, victim, "malformed"), 2);
    });
}
