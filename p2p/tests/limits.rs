//! Every limit triggers, and its counter rises: quotas both ways, a full backlog, an unknown
//! channel, an oversized message; and stopping the network leaves no task behind.

mod common;

use common::*;
use commonware_cryptography::Signer as _;
use commonware_runtime::{Clock as _, Metrics as _, Quota, Runner as _, deterministic};
use palisade_p2p::Recipients;
use palisade_p2p::{Receiver as _, Sender as _};
use std::{num::NonZeroU32, time::Duration};

#[test]
fn outbound_quota_limits_what_we_send_to_each_peer() {
    deterministic::Runner::seeded(1).start(|context| async move {
        let set = peer_set(0..2);
        let mut sender = start_node(&context, 0, &set, per_second(5), 100).await;
        let _receiver = start_node(&context, 1, &set, open_quota(), 100).await;
        wait_for(&context, &[0, 1], 1).await;
        let peer = key(1).public_key();
        let mut accepted = 0;
        for _ in 0..20 {
            let sent = sender
                .sender
                .send(Recipients::One(peer.clone()), b"x".to_vec(), false);
            accepted += sent.len();
        }
        assert_eq!(accepted, 5, "the burst of the quota");
        assert_eq!(
            metric(
                &context,
                "messages",
                0,
                &["direction=\"outbound\"", "fate=\"rate_limited\""]
            ),
            15
        );
    });
}

#[test]
fn inbound_quota_paces_what_a_peer_sends_over_it_and_loses_nothing() {
    deterministic::Runner::seeded(2).start(|context| async move {
        let set = peer_set(0..2);
        let mut flooder = start_node(&context, 0, &set, open_quota(), 100).await;
        let mut strict = start_node(&context, 1, &set, per_second(5), 100).await;
        wait_for(&context, &[0, 1], 1).await;
        let peer = key(1).public_key();
        for i in 0..20u8 {
            flooder
                .sender
                .send(Recipients::One(peer.clone()), vec![i], false);
        }
        // The burst of 5 at once; each later one waits for the quota (5 a second).
        let started = context.current();
        for i in 0..20u8 {
            let (_, message) = strict.receiver.recv().await.unwrap();
            assert_eq!(message.as_ref(), &[i], "in order");
            if i == 4 {
                assert!(
                    context.current().duration_since(started).unwrap() < Duration::from_millis(100)
                );
            }
        }
        let paced = context.current().duration_since(started).unwrap();
        assert!(
            paced >= Duration::from_millis(2900),
            "15 paced at 5/s took {paced:?}"
        );
        assert_eq!(
            metric(
                &context,
                "messages",
                1,
                &["direction=\"inbound\"", "fate=\"delayed\""]
            ),
            15
        );
        assert_eq!(
            metric(&context, "messages", 1, &["fate=\"rate_limited\""]),
            0
        );
        assert_eq!(metric(&context, "messages", 1, &["fate=\"received\""]), 20);
    });
}

#[test]
fn full_backlog_drops_and_counts_without_slowing_other_channels() {
    deterministic::Runner::seeded(3).start(|context| async move {
        let set = peer_set(0..2);
        let mut sender = start_node_with(
            &context,
            0,
            &set,
            Setup {
                extra: vec![(8, open_quota(), 100)],
                ..Setup::new(0)
            },
        )
        .await;
        let mut slow = start_node_with(
            &context,
            1,
            &set,
            Setup {
                backlog: 10,
                extra: vec![(8, open_quota(), 100)],
                ..Setup::new(1)
            },
        )
        .await;
        wait_for(&context, &[0, 1], 1).await;
        let peer = key(1).public_key();
        // Nobody reads channel CHANNEL on node 1: its backlog fills and the rest is dropped.
        for i in 0..50u32 {
            sender.sender.send(
                Recipients::One(peer.clone()),
                i.to_be_bytes().to_vec(),
                false,
            );
        }
        // Channel 8 still flows.
        let (_, other_sender, _) = &mut sender.extra[0];
        for i in 0..50u32 {
            other_sender.send(
                Recipients::One(peer.clone()),
                i.to_be_bytes().to_vec(),
                false,
            );
        }
        let (_, _, other_receiver) = &mut slow.extra[0];
        for i in 0..50u32 {
            let (_, message) = other_receiver.recv().await.unwrap();
            assert_eq!(message, i.to_be_bytes());
        }
        let received = metric(
            &context,
            "messages",
            1,
            &["channel=\"7\"", "fate=\"received\""],
        );
        let dropped = metric(
            &context,
            "messages",
            1,
            &[
                "channel=\"7\"",
                "direction=\"inbound\"",
                "fate=\"dropped_full\"",
            ],
        );
        // The backlog holds 10 plus one slot per connected peer.
        assert!((10..=11).contains(&received), "received {received}");
        assert_eq!(received + dropped, 50);
        // What was kept is the oldest, in order.
        for i in 0..received as u32 {
            assert_eq!(slow.receiver.recv().await.unwrap().1, i.to_be_bytes());
        }
    });
}

#[test]
fn message_on_an_unknown_channel_ends_the_connection() {
    deterministic::Runner::seeded(4).start(|context| async move {
        let set = peer_set(0..2);
        let mut sender = start_node_with(
            &context,
            0,
            &set,
            Setup {
                extra: vec![(99, open_quota(), 100)],
                ..Setup::new(0)
            },
        )
        .await;
        let _receiver = start_node(&context, 1, &set, open_quota(), 100).await;
        wait_for(&context, &[0, 1], 1).await;
        let handshakes_before = metric(&context, "handshakes", 1, &["outcome=\"ok\""]);
        let (_, unknown, _) = &mut sender.extra[0];
        unknown.send(Recipients::All, b"?".to_vec(), false);
        context.sleep(Duration::from_secs(2)).await;
        assert_eq!(
            metric(&context, "messages", 1, &["fate=\"unknown_channel\""]),
            1
        );
        // The connection ended; the dialers connected again with a new handshake.
        assert!(metric(&context, "handshakes", 1, &["outcome=\"ok\""]) > handshakes_before);
        assert_eq!(
            metric(
                &context,
                "connections_closed",
                1,
                &["reason=\"unknown_channel\""]
            ),
            1
        );
    });
}

#[test]
fn oversized_messages_are_refused_locally_and_end_the_connection_remotely() {
    deterministic::Runner::seeded(5).start(|context| async move {
        let set = peer_set(0..2);
        // Node 0 allows bigger messages than node 1 (a misconfiguration node 1 must survive).
        let mut big = start_node_with(
            &context,
            0,
            &set,
            Setup {
                configure: |config| config.max_message_size = 1 << 20,
                ..Setup::new(0)
            },
        )
        .await;
        let small_limit = 64 * 1024;
        let _small = start_node_with(
            &context,
            1,
            &set,
            Setup {
                configure: |config| config.max_message_size = 64 * 1024,
                ..Setup::new(1)
            },
        )
        .await;
        wait_for(&context, &[0, 1], 1).await;
        // Locally, the limit is known (a larger payload panics; see the test below).
        assert_eq!(
            big.sender.max_payload(),
            (1 << 20) - palisade_p2p::wire::MAX_DATA_OVERHEAD_BYTES
        );
        // Remotely: node 1 ends the connection on a record over its limit.
        let handshakes_before = metric(&context, "handshakes", 1, &["outcome=\"ok\""]);
        big.sender
            .send(Recipients::All, vec![0u8; 2 * small_limit], false);
        context.sleep(Duration::from_secs(2)).await;
        assert!(
            metric(&context, "handshakes", 1, &["outcome=\"ok\""]) > handshakes_before,
            "reconnected after the cut"
        );
        assert_eq!(metric(&context, "messages", 1, &["fate=\"received\""]), 0);
        assert!(
            metric(
                &context,
                "connections_closed",
                1,
                &["reason=\"message_too_large\""]
            ) >= 1
        );
    });
}

#[test]
fn stopping_the_network_leaves_no_task_running() {
    deterministic::Runner::seeded(6).start(|context| async move {
        let running = |context: &deterministic::Context| -> u64 {
            context
                .encode()
                .lines()
                .filter(|line| line.starts_with("runtime_tasks_running"))
                .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
                .sum()
        };
        let before = running(&context);
        let nodes = start_mesh(&context, 4).await;
        wait_for(&context, &[0, 1, 2, 3], 3).await;
        assert!(running(&context) > before + 4 * 3, "connections run tasks");
        for node in nodes {
            node.handle.abort();
        }
        context.sleep(Duration::from_secs(1)).await;
        assert_eq!(running(&context), before, "every network task stopped");
    });
}

#[test]
fn handshakes_over_the_per_ip_rate_are_refused_before_any_crypto() {
    deterministic::Runner::seeded(7).start(|context| async move {
        let strict = |config: &mut palisade_p2p::Config<Key>| {
            config.handshakes_per_ip = Quota::per_minute(NonZeroU32::new(2).unwrap());
        };
        let _nodes = start_guarded(&context, 6, strict).await;
        context.sleep(Duration::from_secs(5)).await;
        // Every peer shares 127.0.0.1: two handshakes a minute get through.
        assert!(metric(&context, "handshakes", 0, &["reason=\"rate_limited\""]) > 0);
        assert_eq!(
            metric(
                &context,
                "handshakes",
                0,
                &["direction=\"inbound\"", "reason=\"ok\""]
            ),
            2
        );
    });
}

#[test]
fn handshakes_over_the_concurrency_cap_are_refused() {
    deterministic::Runner::seeded(8).start(|context| async move {
        let narrow = |config: &mut palisade_p2p::Config<Key>| config.max_concurrent_handshakes = 1;
        let _nodes = start_guarded(&context, 8, narrow).await;
        context.sleep(Duration::from_secs(5)).await;
        assert!(
            metric(
                &context,
                "handshakes",
                0,
                &["reason=\"too_many_handshakes\""]
            ) > 0
        );
        // The refused peers retry; all get through in the end.
        wait_for(&context, &[0], 7).await;
    });
}

/// Starts node 0 with `configure` applied and nodes `1..n` with the defaults, all tracking
/// each other.
async fn start_guarded(
    context: &deterministic::Context,
    n: usize,
    configure: fn(&mut palisade_p2p::Config<Key>),
) -> Vec<Node> {
    let set = peer_set(0..n);
    let mut nodes = vec![
        start_node_with(
            context,
            0,
            &set,
            Setup {
                configure,
                ..Setup::new(0)
            },
        )
        .await,
    ];
    for index in 1..n {
        nodes.push(start_node(context, index, &set, open_quota(), 10).await);
    }
    nodes
}

#[test]
#[should_panic(expected = "exceeds channel 7's limit")]
fn a_payload_over_the_channel_limit_panics_as_the_trait_says() {
    deterministic::Runner::seeded(1).start(|context| async move {
        let set = peer_set(0..2);
        let mut node = start_node(&context, 0, &set, open_quota(), 100).await;
        let _peer = start_node(&context, 1, &set, open_quota(), 100).await;
        wait_for(&context, &[0, 1], 1).await;
        let too_big = vec![0u8; node.sender.max_payload() + 1];
        node.sender.send(Recipients::All, too_big, false);
    });
}

const BIG: usize = 256 * 1024;

#[test]
fn a_channel_backlog_is_bounded_in_bytes_and_other_channels_keep_flowing() {
    deterministic::Runner::seeded(11).start(|context| async move {
        let set = peer_set(0..2);
        let mut sender = start_node_with(
            &context,
            0,
            &set,
            Setup {
                extra: vec![(8, open_quota(), 100)],
                ..Setup::new(0)
            },
        )
        .await;
        let mut slow = start_node_with(
            &context,
            1,
            &set,
            Setup {
                // Room for 1,000 messages, but only 1 MiB of them.
                backlog: 1000,
                extra: vec![(8, open_quota(), 100)],
                configure: |config| config.max_backlog_bytes = 1024 * 1024,
                ..Setup::new(1)
            },
        )
        .await;
        wait_for(&context, &[0, 1], 1).await;
        let peer = key(1).public_key();
        // Nobody reads CHANNEL on node 1: 20 messages of 256 KiB, 5 MiB in all.
        for i in 0..20u8 {
            sender
                .sender
                .send(Recipients::One(peer.clone()), vec![i; BIG], false);
            context.sleep(Duration::from_millis(20)).await;
        }
        context.sleep(Duration::from_secs(1)).await;
        assert_eq!(slow.receiver.backlog_bytes(), 1024 * 1024);
        assert_eq!(
            metric(
                &context,
                "messages",
                1,
                &["direction=\"inbound\"", "fate=\"dropped_full\""]
            ),
            16
        );
        assert_eq!(
            metric(
                &context,
                "bytes",
                1,
                &["direction=\"inbound\"", "fate=\"received\""]
            ),
            4 * BIG as u64
        );
        // Another channel still flows meanwhile.
        let (_, other_sender, _) = &mut sender.extra[0];
        other_sender.send(Recipients::One(peer.clone()), b"still here".to_vec(), false);
        let (_, _, other_receiver) = &mut slow.extra[0];
        let (_, message) = other_receiver.recv().await.unwrap();
        assert_eq!(message.as_ref(), b"still here");
        // What waited is the first four, in order; taking them frees their bytes.
        for i in 0..4u8 {
            let (_, message) = slow.receiver.recv().await.unwrap();
            assert_eq!(message.as_ref()[0], i);
        }
        assert_eq!(slow.receiver.backlog_bytes(), 0);
        sender
            .sender
            .send(Recipients::One(peer.clone()), vec![99; BIG], false);
        let (_, message) = slow.receiver.recv().await.unwrap();
        assert_eq!(message.as_ref()[0], 99);
    });
}

#[test]
fn a_queue_towards_a_peer_is_bounded_in_bytes() {
    deterministic::Runner::seeded(12).start(|context| async move {
        let set = peer_set(0..2);
        let mut sender = start_node_with(
            &context,
            0,
            &set,
            Setup {
                configure: |config| config.max_queued_bytes = 1024 * 1024,
                ..Setup::new(0)
            },
        )
        .await;
        let mut receiver = start_node(&context, 1, &set, open_quota(), 1000).await;
        wait_for(&context, &[0, 1], 1).await;
        let peer = key(1).public_key();
        // 20 sends of 256 KiB without yielding: the writer cannot take any meanwhile, so the
        // queue holds 1 MiB of them and refuses the rest, each counted; `send` names the peer
        // only for the four its queue took.
        let mut taken = 0;
        for i in 0..20u8 {
            taken += sender
                .sender
                .send(Recipients::One(peer.clone()), vec![i; BIG], false)
                .len();
        }
        assert_eq!(taken, 4);
        assert_eq!(
            metric(
                &context,
                "messages",
                0,
                &["direction=\"outbound\"", "fate=\"dropped_full\""]
            ),
            16
        );
        for i in 0..4u8 {
            let (_, message) = receiver.receiver.recv().await.unwrap();
            assert_eq!(message.as_ref()[0], i);
        }
        // Once written, the queue has room again.
        context.sleep(Duration::from_millis(100)).await;
        sender
            .sender
            .send(Recipients::One(peer.clone()), vec![42; BIG], false);
        let (_, message) = receiver.receiver.recv().await.unwrap();
        assert_eq!(message.as_ref()[0], 42);
    });
}

#[test]
fn a_message_far_over_the_inbound_quota_is_dropped_not_held() {
    deterministic::Runner::seeded(13).start(|context| async move {
        let set = peer_set(0..2);
        let mut flooder = start_node(&context, 0, &set, open_quota(), 100).await;
        // One message a minute: a second one would wait far longer than the reader holds one.
        let slow_quota = Quota::per_minute(NonZeroU32::new(1).unwrap());
        let mut strict = start_node(&context, 1, &set, slow_quota, 100).await;
        wait_for(&context, &[0, 1], 1).await;
        let peer = key(1).public_key();
        for i in 0..3u8 {
            flooder
                .sender
                .send(Recipients::One(peer.clone()), vec![i], false);
        }
        let (_, first) = strict.receiver.recv().await.unwrap();
        assert_eq!(first.as_ref(), &[0]);
        context.sleep(Duration::from_secs(2)).await;
        assert_eq!(
            metric(
                &context,
                "messages",
                1,
                &["direction=\"inbound\"", "fate=\"rate_limited\""]
            ),
            2
        );
        assert_eq!(metric(&context, "messages", 1, &["fate=\"received\""]), 1);
        // The connection is still up: only the messages were dropped.
        assert_eq!(connected(&context, 1), 1);
    });
}
