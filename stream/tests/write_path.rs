//! The write path: a send hands its records to the sink before it returns (one write per
//! call, however many messages), so nothing is lost when the task that sent ends; every way a
//! sender ends (close, drop, abort, a failed or cancelled write) is visible to both sides.

mod common;

use common::*;
use commonware_cryptography::Signer as _;
use commonware_runtime::{
    Clock as _, IoBufs, Runner as _, Sink, Spawner as _, Supervisor as _, deterministic, mocks,
};
use futures::future::{Either, select};
use palisade_stream::{Error, dial, listen};
use std::{
    pin::pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

/// A sink that counts the writes it is handed.
struct CountingSink {
    inner: mocks::Sink,
    writes: Arc<AtomicUsize>,
}

impl Sink for CountingSink {
    async fn send(
        &mut self,
        bufs: impl Into<IoBufs> + Send,
    ) -> Result<(), commonware_runtime::Error> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.send(bufs).await
    }
}

#[test]
fn a_batch_is_one_write_and_each_send_is_written_before_it_returns() {
    deterministic::Runner::seeded(1).start(|context| async move {
        let ((dialer_sink, dialer_stream), (listener_sink, listener_stream)) = wire();
        let writes = Arc::new(AtomicUsize::new(0));
        let counting = CountingSink {
            inner: dialer_sink,
            writes: writes.clone(),
        };
        let listening = context.child("listener").spawn(move |context| async move {
            listen(
                context,
                config(2),
                |_| async { true },
                listener_sink,
                listener_stream,
            )
            .await
            .unwrap()
        });
        let (mut sender, _receiver) = dial(
            context.child("dialer"),
            config(1),
            key(2).public_key(),
            counting,
            dialer_stream,
        )
        .await
        .unwrap();
        let (_, _, mut receiver) = listening.await.unwrap();
        // The handshake took two writes (Hello, Confirmation).
        assert_eq!(writes.load(Ordering::SeqCst), 2);

        let batch: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_be_bytes().to_vec()).collect();
        sender.send_many(batch).await.unwrap();
        assert_eq!(writes.load(Ordering::SeqCst), 3, "one write for the batch");
        for i in 0..3u8 {
            sender.send(vec![i]).await.unwrap();
            assert_eq!(
                writes.load(Ordering::SeqCst),
                4 + usize::from(i),
                "written on return"
            );
        }
        for i in 0..100u32 {
            assert_eq!(receiver.recv().await.unwrap(), i.to_be_bytes());
        }
        for i in 0..3u8 {
            assert_eq!(receiver.recv().await.unwrap(), [i]);
        }
    });
}

#[test]
fn a_send_just_before_its_task_ends_is_not_lost() {
    deterministic::Runner::seeded(2).start(|context| async move {
        let ((dialer_sink, dialer_stream), (listener_sink, listener_stream)) = wire();
        // The listener's task runs the handshake with its own context, sends one last byte
        // and ends at once, dropping both halves.
        let listening = context.child("listener").spawn(move |context| async move {
            let (_, mut sender, _receiver) = listen(
                context,
                config(2),
                |_| async { true },
                listener_sink,
                listener_stream,
            )
            .await
            .unwrap();
            sender.send(vec![0xAC]).await.unwrap();
        });
        let (_sender, mut receiver) = dial(
            context.child("dialer"),
            config(1),
            key(2).public_key(),
            dialer_sink,
            dialer_stream,
        )
        .await
        .unwrap();
        listening.await.unwrap();
        assert_eq!(receiver.recv().await.unwrap(), [0xAC]);
        // Then the connection is cut (no close record was sent).
        assert!(matches!(receiver.recv().await, Err(Error::Io(_))));
    });
}

#[test]
fn dropped_sender_cuts_the_connection_after_what_was_sent() {
    deterministic::Runner::seeded(4).start(|context| async move {
        let mut c = connect(&context).await;
        for message in [&b"one"[..], b"two", b"three"] {
            c.dialer_sender.send(message.to_vec()).await.unwrap();
        }
        drop(c.dialer_sender);
        for message in [&b"one"[..], b"two", b"three"] {
            assert_eq!(c.listener_receiver.recv().await.unwrap(), message);
        }
        assert!(matches!(
            c.listener_receiver.recv().await,
            Err(Error::Io(_))
        ));
    });
}

#[test]
fn abort_cuts_the_connection_without_a_close() {
    deterministic::Runner::seeded(5).start(|context| async move {
        let mut c = connect(&context).await;
        c.dialer_sender.send(b"written".to_vec()).await.unwrap();
        c.dialer_sender.abort();
        assert_eq!(c.listener_receiver.recv().await.unwrap(), b"written");
        assert!(matches!(
            c.listener_receiver.recv().await,
            Err(Error::Io(_))
        ));
    });
}

#[test]
fn failed_write_is_returned_and_every_later_call_is_refused() {
    deterministic::Runner::seeded(6).start(|context| async move {
        let mut c = connect(&context).await;
        // The peer goes away: its end of the channel is dropped.
        drop(c.listener_receiver);
        let sent = c.dialer_sender.send(b"into the void".to_vec()).await;
        assert!(matches!(sent, Err(Error::Io(_))), "{sent:?}");
        assert!(matches!(
            c.dialer_sender.send(b"again".to_vec()).await,
            Err(Error::Unusable)
        ));
        assert!(matches!(
            c.dialer_sender.close().await,
            Err(Error::Unusable)
        ));
    });
}

#[test]
fn a_cancelled_send_leaves_the_sender_unusable_and_the_peer_sees_a_cut() {
    deterministic::Runner::seeded(8).start(|context| async move {
        let mut c = connect(&context).await;
        // 40 KiB fits the in-memory channel's 64 KiB; with nobody reading, the second cannot
        // finish, and is abandoned.
        let large = vec![7u8; 40 * 1024];
        c.dialer_sender.send(large.clone()).await.unwrap();
        let finished = {
            let timer = pin!(context.sleep(Duration::from_secs(1)));
            matches!(
                select(pin!(c.dialer_sender.send(large.clone())), timer).await,
                Either::Left(_)
            )
        };
        assert!(!finished, "the second large message waits for the peer");
        // The abandoned write may have left half a record.
        assert!(matches!(
            c.dialer_sender.send(b"x".to_vec()).await,
            Err(Error::Unusable)
        ));
        drop(c.dialer_sender);
        assert_eq!(c.listener_receiver.recv().await.unwrap(), large.as_slice());
        let last = match c.listener_receiver.recv().await {
            Ok(message) => {
                assert_eq!(message, large.as_slice());
                c.listener_receiver.recv().await
            }
            other => other,
        };
        assert!(matches!(last, Err(Error::Io(_))), "{last:?}");
    });
}
