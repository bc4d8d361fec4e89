//! The full-mesh broadcast over real TCP on loopback, on the tokio runtime: 10 peers.

use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
use commonware_runtime::{Clock as _, Metrics as _, Quota, Runner as _, Supervisor as _, tokio};
use commonware_utils::ordered::Map;
use futures::FutureExt as _;
use palisade_p2p::{
    Address, AddressableManager as _, Config, Network, Receiver as _, Recipients, Sender as _,
};
use std::{collections::BTreeMap, net::SocketAddr, num::NonZeroU32, time::Duration};

const PEERS: usize = 10;
const MESSAGES: u32 = 10;

/// Loopback addresses with ports the OS reports free right now.
fn free_addresses(count: usize) -> Vec<SocketAddr> {
    let listeners: Vec<_> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().unwrap())
        .collect()
}

#[test]
fn ten_peers_reach_a_full_mesh_and_deliver_every_broadcast_over_tcp() {
    let storage = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("palisade-p2p-tokio");
    let runner = tokio::Runner::new(
        tokio::Config::new()
            .with_worker_threads(2)
            .with_storage_directory(storage),
    );
    runner.start(|context| async move {
        let keys: Vec<PrivateKey> = (0..PEERS as u64)
            .map(|i| PrivateKey::from_seed(i + 100))
            .collect();
        let addresses = free_addresses(PEERS);
        let set: Vec<_> = keys
            .iter()
            .zip(&addresses)
            .map(|(key, address)| (key.public_key(), *address))
            .collect();
        let mut channels = Vec::new();
        for (index, key) in keys.iter().enumerate() {
            let node = context.child("node").with_attribute("index", index);
            let config = Config::local(key.clone(), b"tokio-mesh", addresses[index]);
            let (mut network, mut oracle) = Network::new(node, config);
            channels.push(network.register(
                1,
                Quota::per_second(NonZeroU32::new(100_000).unwrap()),
                10_000,
            ));
            oracle.track(
                0,
                Map::from_iter_dedup(
                    set.iter()
                        .map(|(peer, address)| (peer.clone(), Address::Symmetric(*address))),
                ),
            );
            network.start();
        }
        // Wait for a settled mesh, at most 30 s of real time: every node connected to every
        // other, and no connection replaced for a while. (Connections that both peers dialed
        // at once are resolved by closing one; what was queued on it is counted as
        // `dropped_disconnected`, not delivered, so broadcasting before that settles could
        // lose messages.)
        let started = context.current();
        let mut settled_since: Option<(std::time::SystemTime, u64)> = None;
        loop {
            let encoded = context.encode();
            let full = encoded
                .lines()
                .filter(|line| line.starts_with("node_connected_peers"))
                .filter_map(|line| line.rsplit(' ').next()?.parse::<usize>().ok())
                .filter(|&connected| connected == PEERS - 1)
                .count()
                == PEERS;
            let closed: u64 = encoded
                .lines()
                .filter(|line| line.starts_with("node_connections_closed"))
                .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
                .sum();
            let now = context.current();
            settled_since = match settled_since {
                Some((since, before)) if full && before == closed => {
                    if now.duration_since(since).unwrap() >= Duration::from_millis(500) {
                        break;
                    }
                    Some((since, before))
                }
                _ if full => Some((now, closed)),
                _ => None,
            };
            assert!(
                now.duration_since(started).unwrap() < Duration::from_secs(30),
                "no mesh"
            );
            context.sleep(Duration::from_millis(20)).await;
        }
        for (sender, _) in &mut channels {
            for sequence in 0..MESSAGES {
                let sent = sender.send(Recipients::All, sequence.to_be_bytes().to_vec(), false);
                assert_eq!(sent.len(), PEERS - 1);
            }
        }
        // A lost message would leave a receive waiting forever: bound the whole check.
        let deadline = context.current() + Duration::from_secs(30);
        for (index, (_, receiver)) in channels.iter_mut().enumerate() {
            let mut next = BTreeMap::new();
            for _ in 0..(PEERS - 1) * MESSAGES as usize {
                let received = {
                    let receiving = receiver.recv().fuse();
                    let timeout = context.sleep_until(deadline).fuse();
                    futures::pin_mut!(receiving, timeout);
                    futures::select_biased! {
                        received = receiving => received,
                        _ = timeout => panic!("node {index} is missing messages"),
                    }
                };
                let (from, message) = received.unwrap();
                let expected: &mut u32 = next.entry(from).or_default();
                assert_eq!(message, expected.to_be_bytes(), "order at node {index}");
                *expected += 1;
            }
            assert!(next.values().all(|&count| count == MESSAGES));
        }
    });
}
