//! `Oracle::peers`: each tracked peer's state, queue and traffic, as the node sees it, through
//! connection, sending, rate limiting, blocking and reconnection.

mod common;

use common::*;
use commonware_cryptography::Signer as _;
use commonware_runtime::{Clock as _, Runner as _, deterministic};
use palisade_p2p::{Blocker as _, PeerState, PeerStatus, Recipients};
use palisade_p2p::{Receiver as _, Sender as _};
use std::time::Duration;

fn status_of(node: &Node, index: usize) -> PeerStatus<Pk> {
    let peer = key(index).public_key();
    node.oracle
        .peers()
        .into_iter()
        .find(|status| status.peer == peer)
        .expect("tracked")
}

#[test]
fn every_tracked_peer_is_listed_with_its_state_and_traffic() {
    deterministic::Runner::seeded(11).start(|context| async move {
        let set = peer_set(0..3);
        // Node 2 is tracked but never runs.
        let mut zero = start_node(&context, 0, &set, per_second(20), 100).await;
        let mut one = start_node(&context, 1, &set, open_quota(), 100).await;
        wait_for(&context, &[0, 1], 1).await;

        let listed: Vec<Pk> = zero.oracle.peers().into_iter().map(|s| s.peer).collect();
        let mut expected = vec![key(1).public_key(), key(2).public_key()];
        expected.sort();
        assert_eq!(
            listed, expected,
            "the tracked peers, in key order, not itself"
        );

        let to_one = Recipients::One(key(1).public_key());
        let mut accepted = 0;
        for _ in 0..30 {
            accepted += zero
                .sender
                .send(to_one.clone(), vec![7u8; 100], false)
                .len();
        }
        assert_eq!(accepted, 20, "the quota's burst");
        for _ in 0..20 {
            one.receiver.recv().await.unwrap();
        }
        // Past a ping interval, so both ends have measured a round trip.
        context.sleep(Duration::from_secs(6)).await;

        let seen_by_zero = status_of(&zero, 1);
        assert!(
            matches!(seen_by_zero.state, PeerState::Connected { .. }),
            "{seen_by_zero:?}"
        );
        assert_eq!(seen_by_zero.state.name(), "connected");
        assert!(seen_by_zero.primary);
        assert_eq!(seen_by_zero.address, Some(address(1).into()));
        assert_eq!(seen_by_zero.queued_bytes, 0);
        let traffic = seen_by_zero.traffic;
        assert_eq!(
            (traffic.messages_sent, traffic.bytes_sent),
            (20, 2000),
            "{traffic:?}"
        );
        assert_eq!(traffic.dropped_rate_limited_outbound, 10);
        assert_eq!(traffic.connections, 1);
        assert_eq!(traffic.last_closed, None);
        let rtt = traffic.rtt.expect("a ping completed");
        assert!(rtt > Duration::ZERO, "{rtt:?}");

        let seen_by_one = status_of(&one, 0).traffic;
        assert_eq!(
            (seen_by_one.messages_received, seen_by_one.bytes_received),
            (20, 2000)
        );
        assert_eq!(seen_by_one.messages_sent, 0);

        // The peer that never runs: not connected, its dials failing.
        let absent = status_of(&zero, 2);
        assert!(
            matches!(absent.state, PeerState::Disconnected | PeerState::Dialing),
            "{absent:?}"
        );
        assert!(absent.dial_failures >= 1, "{absent:?}");
        assert_eq!(absent.traffic, Default::default());
    });
}

#[test]
fn a_blocked_peer_shows_blocked_and_keeps_its_counts() {
    deterministic::Runner::seeded(12).start(|context| async move {
        let set = peer_set(0..2);
        let mut zero = start_node(&context, 0, &set, open_quota(), 100).await;
        let mut one = start_node(&context, 1, &set, open_quota(), 100).await;
        wait_for(&context, &[0, 1], 1).await;
        zero.sender.send(
            Recipients::One(key(1).public_key()),
            b"hello".to_vec(),
            false,
        );
        one.receiver.recv().await.unwrap();

        let _ = zero.oracle.block(key(1).public_key());
        let blocked = status_of(&zero, 1);
        assert_eq!(blocked.state, PeerState::Blocked);
        assert_eq!(blocked.state.name(), "blocked");
        assert_eq!(
            blocked.traffic.messages_sent, 1,
            "counts outlive the connection"
        );
        // The connection's task ends just after the block; its reason is recorded then.
        context.sleep(Duration::from_millis(100)).await;
        assert_eq!(status_of(&zero, 1).traffic.last_closed, Some("stopped"));
        // The other side saw the connection end, and counts its reconnection attempts.
        let other = status_of(&one, 0);
        assert_ne!(other.state.name(), "connected", "{other:?}");
        assert!(other.traffic.last_closed.is_some(), "{other:?}");
    });
}

#[test]
fn counts_continue_across_a_reconnection() {
    deterministic::Runner::seeded(13).start(|context| async move {
        let set = peer_set(0..2);
        let setup = Setup {
            configure: |config| config.block_duration = Duration::from_secs(3),
            ..Setup::new(0)
        };
        let mut zero = start_node_with(&context, 0, &set, setup).await;
        let mut one = start_node(&context, 1, &set, open_quota(), 100).await;
        wait_for(&context, &[0, 1], 1).await;
        let to_one = Recipients::One(key(1).public_key());
        zero.sender.send(to_one.clone(), b"before".to_vec(), false);
        one.receiver.recv().await.unwrap();

        // Node 0 blocks node 1 for a moment; once the block expires they connect again.
        let _ = zero.oracle.block(key(1).public_key());
        context.sleep(Duration::from_secs(1)).await;
        assert_eq!(status_of(&zero, 1).state, PeerState::Blocked);
        wait_for(&context, &[0, 1], 1).await;
        zero.sender.send(to_one, b"after".to_vec(), false);
        let (_, message) = one.receiver.recv().await.unwrap();
        assert_eq!(message.as_ref(), b"after");

        let traffic = status_of(&zero, 1).traffic;
        assert_eq!(traffic.connections, 2, "{traffic:?}");
        assert_eq!(traffic.messages_sent, 2);
        assert_eq!(traffic.bytes_sent, 11);
        assert!(traffic.last_closed.is_some(), "{traffic:?}");
        assert_eq!(traffic.last_closed, Some("stopped"));
        let other = status_of(&one, 0).traffic;
        assert_eq!((other.connections, other.messages_received), (2, 2));
    });
}
