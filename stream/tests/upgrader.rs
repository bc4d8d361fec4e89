//! palisade-stream as commonware-stream's `Upgrader`: commonware-p2p's own `lookup` network,
//! unchanged, forms a full mesh over palisade's handshake and records and delivers a broadcast.

use commonware_cryptography::{Signer as _, ed25519};
use commonware_p2p::{
    Address, AddressableManager as _, Receiver as _, Recipients, Sender as _, authenticated::lookup,
};
use commonware_runtime::{Clock as _, Quota, Runner as _, Supervisor as _, deterministic};
use commonware_stream::Upgrader as _;
use commonware_utils::{NZU32, NZUsize, ordered::Map};
use palisade_stream::upgrader::Palisade;
use std::{net::SocketAddr, time::Duration};

const PEERS: usize = 4;
const NAMESPACE: &[u8] = b"palisade-upgrader-test";

fn address(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5000 + i as u16))
}

/// Runs `PEERS` lookup nodes on palisade's upgrader until every node has heard every other on
/// a probe channel, then checks one broadcast arrives at every peer, authenticated. Returns
/// the auditor's digest.
fn mesh_and_broadcast(seed: u64) -> String {
    let runner = deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(120))),
    );
    runner.start(|context| async move {
        let signers: Vec<_> = (0..PEERS as u64)
            .map(ed25519::PrivateKey::from_seed)
            .collect();
        let keys: Vec<_> = signers.iter().map(|s| s.public_key()).collect();
        let set: Map<_, Address> =
            Map::from_iter_dedup((0..PEERS).map(|i| (keys[i].clone(), address(i).into())));
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for (i, signer) in signers.iter().enumerate() {
            let upgrader = Palisade::recommended(signer.clone());
            assert_eq!(upgrader.public_key(), keys[i]);
            let config = lookup::Config::local(
                upgrader,
                NAMESPACE,
                address(i),
                NZUsize!(PEERS),
                64 * 1024,
                NZUsize!(1024),
            );
            let node = context.child("node").with_attribute("index", i);
            let (mut network, mut oracle) = lookup::Network::new(node, config);
            let _ = oracle.track(0, set.clone());
            let (sender, receiver) = network.register(0, Quota::per_second(NZU32!(1000)));
            network.start();
            senders.push(sender);
            receivers.push(receiver);
        }
        // Each node probes until every other takes its message: a full mesh.
        let started = context.current();
        loop {
            let reached: usize = senders
                .iter_mut()
                .map(|sender| sender.send(Recipients::All, b"probe".to_vec(), false).len())
                .sum();
            if reached == PEERS * (PEERS - 1) {
                break;
            }
            let waited = context.current().duration_since(started).unwrap();
            assert!(
                waited < Duration::from_secs(30),
                "no full mesh after {waited:?}"
            );
            context.sleep(Duration::from_millis(50)).await;
        }
        let recipients = senders[0].send(Recipients::All, b"broadcast".to_vec(), false);
        assert_eq!(recipients.len(), PEERS - 1);
        for (i, receiver) in receivers.iter_mut().enumerate().skip(1) {
            // Skip the probes; the broadcast is the last message node 0 sent.
            let (from, message) = loop {
                let (from, message) = receiver.recv().await.unwrap();
                if message.as_ref() == b"broadcast" {
                    break (from, message);
                }
            };
            assert_eq!(
                from, keys[0],
                "node {i} got the broadcast from node 0's key"
            );
            assert_eq!(message.as_ref(), b"broadcast");
        }
        context.auditor().state()
    })
}

#[test]
fn lookup_runs_on_palisades_upgrader_to_a_full_mesh_and_a_broadcast() {
    let first = mesh_and_broadcast(11);
    assert_eq!(first, mesh_and_broadcast(11), "same seed, same run");
}
