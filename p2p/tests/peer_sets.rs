//! Who may connect: peer-set rotation, stale indices, blocking, strangers, duplicate dials,
//! restarts on a new address.

mod common;

use common::*;
use commonware_actor::Feedback;
use commonware_cryptography::Signer as _;
use commonware_runtime::{Clock as _, Runner as _, deterministic};
use palisade_p2p::Recipients;
use palisade_p2p::{AddressableManager as _, Blocker as _, Provider as _, Sender as _};
use std::time::Duration;

#[test]
fn peers_leaving_every_tracked_set_are_disconnected_and_stale_indices_ignored() {
    deterministic::Runner::seeded(1).start(|context| async move {
        let mut nodes = start_mesh(&context, 5).await;
        wait_for(&context, &[0, 1, 2, 3, 4], 4).await;
        // Node 0 moves on to sets without node 4; after three newer sets (the number tracked
        // by `Config::local`), the set listing node 4 falls out.
        for index in 1..=3 {
            assert_eq!(
                nodes[0].oracle.track(index, addressed(&peer_set(0..4))),
                Feedback::Ok
            );
        }
        wait_for(&context, &[0], 3).await;
        nodes[0].oracle.track(2, addressed(&peer_set(0..5)));
        let set_two = nodes[0].oracle.peer_set(2).await.unwrap();
        assert_eq!(set_two.primary.len(), 4, "stale index is ignored");
        assert!(set_two.primary.position(&key(4).public_key()).is_none());
        // Node 4 keeps dialing node 0 and is refused by its bouncer.
        context.sleep(Duration::from_secs(2)).await;
        assert_eq!(connected(&context, 0), 3);
        assert!(
            metric(
                &context,
                "handshakes",
                0,
                &["reason=\"rejected_by_bouncer\""]
            ) > 0
        );
        let sent = nodes[0].sender.send(Recipients::All, b"x".to_vec(), false);
        assert!(!sent.contains(&key(4).public_key()));
    });
}

#[test]
fn new_peers_in_a_newer_set_connect() {
    deterministic::Runner::seeded(2).start(|context| async move {
        let mut nodes = start_mesh(&context, 3).await;
        wait_for(&context, &[0, 1, 2], 2).await;
        let late = start_node(&context, 3, &peer_set(0..4), open_quota(), 100).await;
        for node in &mut nodes {
            node.oracle.track(1, addressed(&peer_set(0..4)));
        }
        wait_for(&context, &[0, 1, 2, 3], 3).await;
        drop(late);
    });
}

#[test]
fn blocked_peer_is_disconnected_and_refused_for_the_block_duration() {
    deterministic::Runner::seeded(3).start(|context| async move {
        let mut nodes = start_mesh(&context, 3).await;
        wait_for(&context, &[0, 1, 2], 2).await;
        // Node 1 has messages on the way when node 0 blocks it.
        let target = key(0).public_key();
        for i in 0..100u32 {
            nodes[1].sender.send(
                Recipients::One(target.clone()),
                i.to_be_bytes().to_vec(),
                false,
            );
        }
        nodes[0].oracle.block(key(1).public_key());
        // Those messages are still queued at node 1 (no task ran since): none may arrive.
        let received_at_block = metric(&context, "messages", 0, &["fate=\"received\""]);
        wait_for(&context, &[0], 1).await;
        context.sleep(Duration::from_secs(1)).await;
        assert_eq!(
            metric(&context, "messages", 0, &["fate=\"received\""]),
            received_at_block
        );
        let sent = nodes[1]
            .sender
            .send(Recipients::One(target.clone()), b"after".to_vec(), false);
        assert!(
            sent.is_empty(),
            "node 1 has no connection to node 0 any more"
        );
        // `Config::local` blocks for 60 s: node 1 keeps dialing and is refused.
        context.sleep(Duration::from_secs(50)).await;
        assert_eq!(connected(&context, 0), 1);
        let sent = nodes[0]
            .sender
            .send(Recipients::One(key(1).public_key()), b"x".to_vec(), false);
        assert!(sent.is_empty());
        // After the block, the peers connect again.
        context.sleep(Duration::from_secs(15)).await;
        wait_for(&context, &[0], 2).await;
    });
}

#[test]
fn stranger_is_refused_before_any_signature_check() {
    deterministic::Runner::seeded(4).start(|context| async move {
        let _nodes = start_mesh(&context, 2).await;
        wait_for(&context, &[0, 1], 1).await;
        // Node 9 tracks node 0, but node 0 does not track node 9.
        let _stranger = start_node(&context, 9, &peer_set([0, 9]), open_quota(), 10).await;
        context.sleep(Duration::from_secs(2)).await;
        assert_eq!(connected(&context, 0), 1);
        assert_eq!(connected(&context, 9), 0);
        assert!(
            metric(
                &context,
                "handshakes",
                0,
                &["reason=\"rejected_by_bouncer\""]
            ) > 0
        );
        assert_eq!(
            metric(&context, "handshakes", 0, &["reason=\"invalid_signature\""]),
            0
        );
    });
}

#[test]
fn two_peers_end_with_exactly_one_connection_each() {
    // (The rule that resolves two simultaneous connections is tested in `directory`.)
    for seed in 0..5 {
        deterministic::Runner::seeded(seed).start(|context| async move {
            let _nodes = start_mesh(&context, 2).await;
            wait_for(&context, &[0, 1], 1).await;
            context.sleep(Duration::from_secs(5)).await;
            assert_eq!((connected(&context, 0), connected(&context, 1)), (1, 1));
        });
    }
}

#[test]
fn restarted_peer_on_a_new_address_is_reached_there() {
    deterministic::Runner::seeded(5).start(|context| async move {
        let mut nodes = start_mesh(&context, 3).await;
        wait_for(&context, &[0, 1, 2], 2).await;
        // Node 2 goes away and comes back at another address.
        let old = nodes.pop().unwrap();
        old.handle.abort();
        drop(old);
        let mut moved_set = peer_set(0..2);
        moved_set.push((key(2).public_key(), address(42)));
        let setup = Setup {
            address: address(42),
            ..Setup::new(2)
        };
        let _restarted = start_node_with(&context, 2, &moved_set, setup).await;
        for node in &mut nodes {
            node.oracle.track(1, addressed(&moved_set.clone()));
        }
        wait_for(&context, &[0, 1], 2).await;
        let sent =
            nodes[0]
                .sender
                .send(Recipients::One(key(2).public_key()), b"hi".to_vec(), false);
        assert_eq!(sent.len(), 1);
    });
}
