//! Established connections carry messages both ways, in order, and end cleanly.

mod common;

use common::*;
use commonware_cryptography::Signer as _;
use commonware_runtime::{
    Clock as _, IoBuf, Listener as _, Network as _, Runner as _, Spawner as _, Supervisor as _,
    deterministic,
};
use palisade_stream::{Error, dial, listen};
use std::net::SocketAddr;

fn message(size: usize, salt: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

#[test]
fn messages_of_boundary_sizes_round_trip_in_both_directions() {
    deterministic::Runner::seeded(1).start(|context| async move {
        let mut c = connect(&context).await;
        for size in [0, 1, MAX_MESSAGE as usize - 1, MAX_MESSAGE as usize] {
            let sent = message(size, 1);
            let receiving = context.child("recv").spawn(move |_| async move {
                let got = c.listener_receiver.recv().await;
                (c.listener_receiver, got)
            });
            c.dialer_sender.send(sent.clone()).await.unwrap();
            let (receiver, got) = receiving.await.unwrap();
            c.listener_receiver = receiver;
            assert_eq!(got.unwrap(), sent.as_slice());

            let reply = message(size, 2);
            let receiving = context.child("recv").spawn(move |_| async move {
                let got = c.dialer_receiver.recv().await;
                (c.dialer_receiver, got)
            });
            c.listener_sender.send(reply.clone()).await.unwrap();
            let (receiver, got) = receiving.await.unwrap();
            c.dialer_receiver = receiver;
            assert_eq!(got.unwrap(), reply.as_slice());
        }
    });
}

#[test]
fn many_messages_arrive_in_order() {
    deterministic::Runner::seeded(2).start(|context| async move {
        let mut c = connect(&context).await;
        let count = 1000u32;
        let receiving = context.child("recv").spawn(move |_| async move {
            for i in 0..count {
                let got = c.listener_receiver.recv().await.unwrap();
                assert_eq!(got, i.to_be_bytes());
            }
        });
        for i in 0..count {
            c.dialer_sender
                .send(i.to_be_bytes().to_vec())
                .await
                .unwrap();
        }
        receiving.await.unwrap();
    });
}

#[test]
fn send_many_delivers_a_batch_in_order() {
    deterministic::Runner::seeded(3).start(|context| async move {
        let mut c = connect(&context).await;
        let batch: Vec<Vec<u8>> = (0..64u8).map(|i| message(i as usize * 10, i)).collect();
        let expected = batch.clone();
        let receiving = context.child("recv").spawn(move |_| async move {
            for want in expected {
                assert_eq!(c.listener_receiver.recv().await.unwrap(), want.as_slice());
            }
        });
        c.dialer_sender.send_many(batch).await.unwrap();
        c.dialer_sender
            .send_many(Vec::<Vec<u8>>::new())
            .await
            .unwrap();
        receiving.await.unwrap();
    });
}

#[test]
fn oversized_message_fails_without_breaking_the_sender() {
    deterministic::Runner::seeded(4).start(|context| async move {
        let mut c = connect(&context).await;
        let too_big = vec![0u8; MAX_MESSAGE as usize + 1];
        let result = c.dialer_sender.send(too_big.clone()).await;
        assert!(matches!(result, Err(Error::MessageTooLarge { size, max: MAX_MESSAGE }) if size == MAX_MESSAGE as u64 + 1));
        // A batch with one oversized message sends nothing at all.
        let result = c.dialer_sender.send_many([b"fine".to_vec(), too_big]).await;
        assert!(matches!(result, Err(Error::MessageTooLarge { .. })));
        // No nonce was used: the next message still authenticates.
        c.dialer_sender.send(b"still works".to_vec()).await.unwrap();
        assert_eq!(c.listener_receiver.recv().await.unwrap(), b"still works");
    });
}

#[test]
fn both_directions_run_concurrently() {
    deterministic::Runner::seeded(5).start(|context| async move {
        let c = connect(&context).await;
        let count = 500u32;
        let (mut dialer_sender, mut dialer_receiver) = (c.dialer_sender, c.dialer_receiver);
        let (mut listener_sender, mut listener_receiver) = (c.listener_sender, c.listener_receiver);
        let tasks = [
            context.child("d_send").spawn(move |_| async move {
                for i in 0..count {
                    dialer_sender.send(message(100, i as u8)).await.unwrap();
                }
            }),
            context.child("l_send").spawn(move |_| async move {
                for i in 0..count {
                    listener_sender.send(message(200, i as u8)).await.unwrap();
                }
            }),
            context.child("l_recv").spawn(move |_| async move {
                for i in 0..count {
                    assert_eq!(
                        listener_receiver.recv().await.unwrap(),
                        message(100, i as u8).as_slice()
                    );
                }
            }),
            context.child("d_recv").spawn(move |_| async move {
                for i in 0..count {
                    assert_eq!(
                        dialer_receiver.recv().await.unwrap(),
                        message(200, i as u8).as_slice()
                    );
                }
            }),
        ];
        for task in tasks {
            task.await.unwrap();
        }
    });
}

#[test]
fn close_is_reported_as_closed_after_every_earlier_message() {
    deterministic::Runner::seeded(6).start(|context| async move {
        let mut c = connect(&context).await;
        c.dialer_sender.send(b"one".to_vec()).await.unwrap();
        c.dialer_sender.send(IoBuf::from(b"two")).await.unwrap();
        c.dialer_sender.close().await.unwrap();
        assert_eq!(c.listener_receiver.recv().await.unwrap(), b"one");
        assert_eq!(c.listener_receiver.recv().await.unwrap(), b"two");
        assert!(matches!(
            c.listener_receiver.recv().await,
            Err(Error::Closed)
        ));
        assert!(matches!(
            c.listener_receiver.recv().await,
            Err(Error::Closed)
        ));
        // The other direction is independent.
        c.listener_sender.send(b"bye".to_vec()).await.unwrap();
        assert_eq!(c.dialer_receiver.recv().await.unwrap(), b"bye");
    });
}

#[test]
fn dropped_connection_is_an_error_not_a_clean_close() {
    deterministic::Runner::seeded(7).start(|context| async move {
        let mut c = connect(&context).await;
        c.dialer_sender.send(b"partial".to_vec()).await.unwrap();
        drop(c.dialer_sender);
        drop(c.dialer_receiver);
        assert_eq!(c.listener_receiver.recv().await.unwrap(), b"partial");
        assert!(matches!(
            c.listener_receiver.recv().await,
            Err(Error::Io(_))
        ));
        assert!(matches!(
            c.listener_receiver.recv().await,
            Err(Error::Unusable)
        ));
    });
}

/// Runs a handshake and traffic both ways over the runtime's simulated network (whose bytes
/// the auditor hashes); returns the auditor's digest of the run.
fn scenario(seed: u64) -> String {
    deterministic::Runner::seeded(seed).start(|context| async move {
        let address: SocketAddr = "127.0.0.1:3000".parse().unwrap();
        let mut listener = context.bind(address).await.unwrap();
        // The connection belongs to the context given to `listen`; take it from the root.
        let connection = context.child("listener_connection");
        let listening = context.child("listener").spawn(move |_| async move {
            let (_, sink, stream) = listener.accept().await.unwrap();
            listen(connection, config(2), |_| async { true }, sink, stream)
                .await
                .unwrap()
        });
        let (sink, stream) = context.dial(address).await.unwrap();
        let (mut dialer_sender, mut dialer_receiver) = dial(
            context.child("dialer"),
            config(1),
            key(2).public_key(),
            sink,
            stream,
        )
        .await
        .unwrap();
        let (_, mut listener_sender, mut listener_receiver) = listening.await.unwrap();
        for i in 0..20u8 {
            dialer_sender
                .send(message(50 + i as usize, i))
                .await
                .unwrap();
            listener_receiver.recv().await.unwrap();
            listener_sender.send(message(70, i)).await.unwrap();
            dialer_receiver.recv().await.unwrap();
        }
        dialer_sender.close().await.unwrap();
        assert!(matches!(listener_receiver.recv().await, Err(Error::Closed)));
        context.auditor().state()
    })
}

#[test]
fn same_seed_gives_the_same_auditor_state() {
    for seed in [0, 1, 42] {
        assert_eq!(scenario(seed), scenario(seed), "seed {seed}");
    }
    assert_ne!(
        scenario(0),
        scenario(1),
        "different seeds draw different ephemeral keys"
    );
}

#[test]
fn receive_dropped_part_way_leaves_the_receiver_unusable() {
    deterministic::Runner::seeded(9).start(|context| async move {
        let mut c = connect(&context).await;
        // Nothing has arrived: the receive waits, and the timer wins.
        let timed_out = {
            let timer = std::pin::pin!(context.sleep(std::time::Duration::from_secs(1)));
            let receiving = std::pin::pin!(c.listener_receiver.recv());
            matches!(
                futures::future::select(receiving, timer).await,
                futures::future::Either::Right(_)
            )
        };
        assert!(timed_out);
        c.dialer_sender.send(b"late".to_vec()).await.unwrap();
        assert!(matches!(
            c.listener_receiver.recv().await,
            Err(Error::Unusable)
        ));
    });
}
