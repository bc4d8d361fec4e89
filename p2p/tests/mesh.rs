//! Whole networks on the deterministic runtime: full mesh, all-to-all broadcast, replay.

mod common;

use common::*;
use commonware_cryptography::Signer as _;
use commonware_runtime::{Runner as _, deterministic};
use palisade_p2p::Recipients;
use palisade_p2p::{Receiver as _, Sender as _};
use std::collections::BTreeMap;

/// `n` nodes reach a full mesh, then every node broadcasts `messages` messages; every node
/// receives each exactly once, in send order per sender. Returns the auditor's digest.
fn mesh_and_broadcast(seed: u64, n: usize, messages: u32) -> String {
    deterministic::Runner::seeded(seed).start(move |context| async move {
        let mut nodes = start_mesh(&context, n).await;
        wait_for(&context, &(0..n).collect::<Vec<_>>(), n as u64 - 1).await;
        for node in &mut nodes {
            for sequence in 0..messages {
                let sent =
                    node.sender
                        .send(Recipients::All, sequence.to_be_bytes().to_vec(), false);
                assert_eq!(sent.len(), n - 1);
            }
        }
        for (index, node) in nodes.iter_mut().enumerate() {
            let mut next: BTreeMap<_, u32> = BTreeMap::new();
            for _ in 0..(n - 1) * messages as usize {
                let (from, message) = node.receiver.recv().await.unwrap();
                assert_ne!(
                    from,
                    node.key.public_key(),
                    "node {index} got its own message"
                );
                let expected = next.entry(from).or_insert(0);
                assert_eq!(
                    message,
                    expected.to_be_bytes(),
                    "out of order at node {index}"
                );
                *expected += 1;
            }
            assert_eq!(next.len(), n - 1);
            assert!(next.values().all(|&count| count == messages));
        }
        context.auditor().state()
    })
}

#[test]
fn twenty_five_peers_reach_a_full_mesh_and_deliver_every_broadcast_once_in_order() {
    mesh_and_broadcast(1, 25, 20);
}

#[test]
fn same_seed_gives_the_same_auditor_state() {
    for seed in 2..12 {
        assert_eq!(
            mesh_and_broadcast(seed, 6, 5),
            mesh_and_broadcast(seed, 6, 5),
            "seed {seed}"
        );
    }
    assert_ne!(mesh_and_broadcast(2, 6, 5), mesh_and_broadcast(3, 6, 5));
}
