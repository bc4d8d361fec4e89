//! The write path: queued records coalesce into few writes, the queue is bounded, and every way
//! a sender ends (close, flush, drop, abort, a failed write, its owner's task ending) is visible.

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
fn messages_queued_during_one_turn_leave_in_one_write() {
    deterministic::Runner::seeded(1).start(|context| async move {
        let ((dialer_sink, dialer_stream), (listener_sink, listener_stream)) = wire();
        let writes = Arc::new(AtomicUsize::new(0));
        let counting = CountingSink {
            inner: dialer_sink,
            writes: writes.clone(),
        };
        let connection = context.child("listener_connection");
        let listening = context.child("listener").spawn(move |_| async move {
            listen(
                connection,
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

        // 100 sends that never wait: the writer runs once afterwards and writes them all.
        for i in 0..100u32 {
            sender.send(i.to_be_bytes().to_vec()).await.unwrap();
        }
        sender.flush().await.unwrap();
        assert_eq!(writes.load(Ordering::SeqCst), 3);
        for i in 0..100u32 {
            assert_eq!(receiver.recv().await.unwrap(), i.to_be_bytes());
        }

        // A lone message goes out without waiting for company.
        sender.send(b"alone".to_vec()).await.unwrap();
        assert_eq!(receiver.recv().await.unwrap(), b"alone");
        assert_eq!(writes.load(Ordering::SeqCst), 4);
    });
}

#[test]
fn full_queue_holds_the_sender_until_the_peer_reads() {
    deterministic::Runner::seeded(2).start(|context| async move {
        let mut c = connect(&context).await;
        // Small enough to go through the queue (large messages are written directly).
        let message = |i: u8| vec![i; 8 * 1024];
        // Nobody reads: the channel fills, the writer blocks, the queue fills, and a send waits.
        let mut queued = 0u8;
        loop {
            let timer = context.sleep(Duration::from_secs(1));
            match select(pin!(c.dialer_sender.send(message(queued))), pin!(timer)).await {
                Either::Left((result, _)) => {
                    result.unwrap();
                    queued += 1;
                }
                Either::Right(_) => break,
            }
            assert!(queued < 255, "the queue must be bounded");
        }
        // 256 KiB queued + a 256 KiB batch in flight (the channel took it whole), 8 KiB each.
        assert!(
            (32..=80).contains(&queued),
            "queued {queued} messages before waiting"
        );

        // The abandoned send queued nothing (it is cancel safe): retry it while reading.
        let receiving = context.child("reader").spawn(move |_| async move {
            for i in 0..=queued {
                assert_eq!(
                    c.listener_receiver.recv().await.unwrap(),
                    message(i).as_slice()
                );
            }
        });
        c.dialer_sender.send(message(queued)).await.unwrap();
        c.dialer_sender.flush().await.unwrap();
        receiving.await.unwrap();
    });
}

#[test]
fn flush_waits_until_the_queue_is_written() {
    deterministic::Runner::seeded(3).start(|context| async move {
        let mut c = connect(&context).await;
        // Queued (not written directly) and more than the channel holds.
        for i in 0..16u8 {
            c.dialer_sender.send(vec![i; 8 * 1024]).await.unwrap();
        }
        let timer = context.sleep(Duration::from_secs(5));
        let flushed = matches!(
            select(pin!(c.dialer_sender.flush()), pin!(timer)).await,
            Either::Left(_)
        );
        assert!(!flushed, "flush cannot finish while the peer reads nothing");
        let reader = context.child("reader").spawn(move |_| async move {
            for _ in 0..16 {
                c.listener_receiver.recv().await.unwrap();
            }
        });
        c.dialer_sender.flush().await.unwrap();
        reader.await.unwrap();
    });
}

#[test]
fn dropped_sender_writes_what_was_queued_then_cuts_the_connection() {
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
        c.dialer_sender.flush().await.unwrap();
        c.dialer_sender.send(b"discarded".to_vec()).await.unwrap();
        c.dialer_sender.abort();
        assert_eq!(c.listener_receiver.recv().await.unwrap(), b"written");
        assert!(matches!(
            c.listener_receiver.recv().await,
            Err(Error::Io(_))
        ));
    });
}

#[test]
fn failed_write_is_reported_by_the_next_call() {
    deterministic::Runner::seeded(6).start(|context| async move {
        let mut c = connect(&context).await;
        // The peer goes away: its end of the channel is dropped.
        drop(c.listener_receiver);
        c.dialer_sender
            .send(b"into the void".to_vec())
            .await
            .unwrap();
        assert!(matches!(c.dialer_sender.flush().await, Err(Error::Io(_))));
        assert!(matches!(
            c.dialer_sender.send(b"again".to_vec()).await,
            Err(Error::Unusable)
        ));
    });
}

#[test]
fn connection_ends_with_the_task_that_owns_its_context() {
    deterministic::Runner::seeded(7).start(|context| async move {
        let ((dialer_sink, dialer_stream), (listener_sink, listener_stream)) = wire();
        // The handshake runs with the short-lived task's own context, so the connection's
        // writer is that task's child and stops when the task returns.
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
        let (_dialer_sender, mut dialer_receiver) = dial(
            context.child("dialer"),
            config(1),
            key(2).public_key(),
            dialer_sink,
            dialer_stream,
        )
        .await
        .unwrap();
        let (_, mut orphaned_sender, _receiver) = listening.await.unwrap();
        // Once the runtime has stopped the writer, the sender reports the cut.
        context.sleep(Duration::from_millis(1)).await;
        let sent = orphaned_sender.send(b"too late".to_vec()).await;
        assert!(matches!(sent, Err(Error::Io(_))), "{sent:?}");
        assert!(matches!(dialer_receiver.recv().await, Err(Error::Io(_))));
    });
}

#[test]
fn large_message_is_written_by_the_sender_and_cancelling_it_cuts_the_connection() {
    deterministic::Runner::seeded(8).start(|context| async move {
        let mut c = connect(&context).await;
        // 40 KiB: written directly. The first fits the channel's 64 KiB; with nobody reading,
        // the second cannot finish.
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
        // The abandoned write may have left half a record: the connection is cut.
        assert!(matches!(
            c.dialer_sender.send(b"x".to_vec()).await,
            Err(Error::Io(_))
        ));
        // The peer gets what was written in full (this channel took the second record whole
        // before it blocked), then sees the connection cut.
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

#[test]
fn direct_write_is_cut_when_the_owning_task_ends() {
    deterministic::Runner::seeded(9).start(|context| async move {
        let ((dialer_sink, dialer_stream), (listener_sink, listener_stream)) = wire();
        let (halves_tx, halves_rx) = futures::channel::oneshot::channel();
        let (end_tx, end_rx) = futures::channel::oneshot::channel::<()>();
        // The owner task runs the handshake with its own context, hands the halves out, and
        // ends when told: the connection's writer is its child.
        context.child("owner").spawn(move |context| async move {
            let halves = listen(
                context,
                config(2),
                |_| async { true },
                listener_sink,
                listener_stream,
            )
            .await
            .unwrap();
            let _ = halves_tx.send(halves);
            let _ = end_rx.await;
        });
        let (_dialer_sender, mut dialer_receiver) = dial(
            context.child("dialer"),
            config(1),
            key(2).public_key(),
            dialer_sink,
            dialer_stream,
        )
        .await
        .unwrap();
        let (_, mut sender, _receiver) = halves_rx.await.unwrap();
        // End the owner a second from now, while the direct write below is blocked.
        context.child("ender").spawn(move |context| async move {
            context.sleep(Duration::from_secs(1)).await;
            let _ = end_tx.send(());
        });
        // 80 KiB and nobody reading: a direct write that cannot finish on its own.
        let sent = sender
            .send_many([vec![1u8; 40 * 1024], vec![2u8; 40 * 1024]])
            .await;
        assert!(matches!(sent, Err(Error::Io(_))), "{sent:?}");
        // The peer sees the connection cut (after whatever the channel had taken whole).
        let mut outcome = dialer_receiver.recv().await;
        for _ in 0..2 {
            if outcome.is_err() {
                break;
            }
            outcome = dialer_receiver.recv().await;
        }
        assert!(matches!(outcome, Err(Error::Io(_))), "{outcome:?}");
    });
}
