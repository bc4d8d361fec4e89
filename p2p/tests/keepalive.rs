//! Keepalive, priorities and the same mesh over real TCP.

mod common;

use common::*;
use commonware_cryptography::Signer as _;
use commonware_runtime::{Clock as _, Runner as _, deterministic};
use palisade_p2p::Recipients;
use palisade_p2p::{Receiver as _, Sender as _};
use std::time::Duration;

#[test]
fn pings_measure_round_trips() {
    deterministic::Runner::seeded(1).start(|context| async move {
        let _nodes = start_mesh(&context, 2).await;
        wait_for(&context, &[0, 1], 1).await;
        context.sleep(Duration::from_secs(5)).await;
        // `Config::local` pings every second.
        assert!(metric(&context, "rtt_seconds_count", 0, &[]) >= 3);
    });
}

#[test]
fn silent_connection_is_closed() {
    deterministic::Runner::seeded(2).start(|context| async move {
        let set = peer_set(0..2);
        // Node 0 never pings within node 1's patience; node 1 closes the connection when it
        // has heard nothing for 3 s, and the nodes reconnect.
        let quiet = |config: &mut palisade_p2p::Config<Key>| {
            config.ping_interval = Duration::from_secs(30);
            config.max_silence = Duration::from_secs(40);
        };
        let impatient = |config: &mut palisade_p2p::Config<Key>| {
            config.ping_interval = Duration::from_secs(30);
            config.max_silence = Duration::from_secs(3);
        };
        let _a = start_node_with(
            &context,
            0,
            &set,
            Setup {
                configure: quiet,
                ..Setup::new(0)
            },
        )
        .await;
        let _b = start_node_with(
            &context,
            1,
            &set,
            Setup {
                configure: impatient,
                ..Setup::new(1)
            },
        )
        .await;
        wait_for(&context, &[0, 1], 1).await;
        let before = metric(&context, "handshakes", 1, &["outcome=\"ok\""]);
        context.sleep(Duration::from_secs(10)).await;
        assert!(metric(&context, "handshakes", 1, &["outcome=\"ok\""]) >= before + 2);
        assert!(metric(&context, "connections_closed", 1, &["reason=\"silence\""]) >= 2);
    });
}

#[test]
fn traffic_keeps_a_connection_without_pings_open() {
    deterministic::Runner::seeded(4).start(|context| async move {
        let set = peer_set(0..2);
        // Neither node pings within node 1's patience of 3 s (node 0 is patient); node 0
        // sends a message every 2 s, so node 1 hears something well within its patience and
        // keeps the connection, though the first silence deadline passes many times over.
        let patient = |config: &mut palisade_p2p::Config<Key>| {
            config.ping_interval = Duration::from_secs(30);
            config.max_silence = Duration::from_secs(40);
        };
        let impatient = |config: &mut palisade_p2p::Config<Key>| {
            config.ping_interval = Duration::from_secs(30);
            config.max_silence = Duration::from_secs(3);
        };
        let mut nodes = Vec::new();
        for (index, configure) in [(0, patient as fn(&mut _)), (1, impatient)] {
            nodes.push(
                start_node_with(
                    &context,
                    index,
                    &set,
                    Setup {
                        configure,
                        ..Setup::new(index)
                    },
                )
                .await,
            );
        }
        wait_for(&context, &[0, 1], 1).await;
        let peer = key(1).public_key();
        for i in 0..8u8 {
            nodes[0]
                .sender
                .send(Recipients::One(peer.clone()), vec![i], false);
            let (_, message) = nodes[1].receiver.recv().await.unwrap();
            assert_eq!(message.as_ref(), &[i]);
            context.sleep(Duration::from_secs(2)).await;
        }
        assert_eq!(
            metric(&context, "connections_closed", 1, &["reason=\"silence\""]),
            0
        );
        assert_eq!(metric(&context, "handshakes", 1, &["outcome=\"ok\""]), 1);
        // Then silence: node 1 closes the connection 3 s after the last message.
        context.sleep(Duration::from_secs(4)).await;
        assert!(metric(&context, "connections_closed", 1, &["reason=\"silence\""]) >= 1);
    });
}

#[test]
fn priority_messages_overtake_queued_ones() {
    deterministic::Runner::seeded(3).start(|context| async move {
        let mut nodes = start_mesh(&context, 2).await;
        wait_for(&context, &[0, 1], 1).await;
        let peer = key(1).public_key();
        // Queued in one turn (sends never wait), so the writer sees both lanes at once.
        for i in 0..10u8 {
            nodes[0]
                .sender
                .send(Recipients::One(peer.clone()), vec![i], false);
        }
        nodes[0]
            .sender
            .send(Recipients::One(peer.clone()), vec![99], true);
        let (_, first) = nodes[1].receiver.recv().await.unwrap();
        assert_eq!(first, [99]);
        for i in 0..10u8 {
            assert_eq!(nodes[1].receiver.recv().await.unwrap().1, [i]);
        }
    });
}
