//! palisade-p2p, unchanged, over the simulated network: mesh, broadcast, determinism, and
//! recovery from a partition and from a crash.

use commonware_cryptography::{Signer as _, ed25519};
use commonware_runtime::{
    Clock as _, Handle, Metrics as _, Quota, Runner as _, Supervisor as _, deterministic,
};
use commonware_utils::ordered::Map;
use palisade_p2p::{
    Address, AddressableManager as _, Config, Receiver as _, Recipients, Sender as _, channels,
};
use palisade_sim::{Config as SimConfig, Context, Link, Network};
use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    num::NonZeroU32,
    time::Duration,
};

type Pk = ed25519::PublicKey;
type NodeContext = Context<deterministic::Context>;

const NAMESPACE: &[u8] = b"palisade-sim-tests";
const CHANNEL: u64 = 1;

struct Node {
    sender: channels::Sender<Pk, NodeContext>,
    receiver: channels::Receiver<Pk>,
    handle: Handle<Result<(), palisade_p2p::Error>>,
}

fn ip(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        10,
        0,
        (index / 250) as u8,
        (index % 250) as u8 + 1,
    ))
}

fn address(index: usize) -> SocketAddr {
    SocketAddr::new(ip(index), 9000)
}

fn key(index: usize) -> ed25519::PrivateKey {
    ed25519::PrivateKey::from_seed(index as u64)
}

fn peer_set(n: usize) -> Vec<(Pk, SocketAddr)> {
    (0..n).map(|i| (key(i).public_key(), address(i))).collect()
}

async fn start_node(
    context: &deterministic::Context,
    network: &Network<deterministic::Context>,
    index: usize,
    n: usize,
) -> Node {
    let node_network = network.node(ip(index)).unwrap();
    let node_context = Context::new(
        context.child("node").with_attribute("index", index),
        node_network,
    );
    let (mut p2p, mut oracle) = palisade_p2p::Network::new(
        node_context,
        Config::local(key(index), NAMESPACE, address(index)),
    );
    let quota = Quota::per_second(NonZeroU32::new(1_000_000).unwrap());
    let (sender, receiver) = p2p.register(CHANNEL, quota, 100_000);
    oracle.track(0, addressed(peer_set(n)));
    let handle = p2p.start();
    Node {
        sender,
        receiver,
        handle,
    }
}

/// Adds nodes `0..n` to `network` and starts each, all tracking the same set.
async fn start_all(
    context: &deterministic::Context,
    network: &Network<deterministic::Context>,
    n: usize,
) -> Vec<Node> {
    for index in 0..n {
        network.add_node(ip(index)).unwrap();
    }
    let mut nodes = Vec::with_capacity(n);
    for index in 0..n {
        nodes.push(start_node(context, network, index, n).await);
    }
    nodes
}

fn connected(context: &deterministic::Context, index: usize) -> u64 {
    let label = format!("index=\"{index}\"");
    context
        .encode()
        .lines()
        .filter(|line| line.starts_with("node_connected_peers") && line.contains(&label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Waits until each of `nodes` has `expected` peers; returns the simulated time it took.
async fn wait_for(
    context: &deterministic::Context,
    nodes: impl Iterator<Item = usize> + Clone,
    expected: u64,
) -> Duration {
    let started = context.current();
    loop {
        if nodes
            .clone()
            .all(|index| connected(context, index) == expected)
        {
            return context.current().duration_since(started).unwrap();
        }
        let waited = context.current().duration_since(started).unwrap();
        assert!(
            waited < Duration::from_secs(120),
            "not settled after {waited:?}"
        );
        context.sleep(Duration::from_millis(10)).await;
    }
}

fn simulated(
    context: &deterministic::Context,
    latency: Duration,
) -> Network<deterministic::Context> {
    Network::new(
        context.child("sim"),
        SimConfig {
            default_link: Link::new(latency, latency / 2),
            ..SimConfig::default()
        },
    )
}

/// Full mesh of `n` nodes over 20 ms links, then each broadcasts `messages`; checks every
/// delivery once and in order. Returns the run's fingerprint.
fn mesh_and_broadcast(seed: u64, n: usize, messages: u32) -> (String, [u8; 32]) {
    deterministic::Runner::seeded(seed).start(move |context| async move {
        let latency = Duration::from_millis(20);
        let network = simulated(&context, latency);
        let mut nodes = start_all(&context, &network, n).await;
        let took = wait_for(&context, 0..n, n as u64 - 1).await;
        // A dial takes a round trip and the handshake one and a half more.
        assert!(
            took >= 2 * latency,
            "mesh in {took:?} over {latency:?} links"
        );
        let sent_at = context.current();
        for sequence in 0..messages {
            for node in &mut nodes {
                let sent =
                    node.sender
                        .send(Recipients::All, sequence.to_be_bytes().to_vec(), false);
                assert_eq!(sent.len(), n - 1);
            }
        }
        for (index, node) in nodes.iter_mut().enumerate() {
            let mut next: BTreeMap<Pk, u32> = BTreeMap::new();
            for _ in 0..(n - 1) * messages as usize {
                let (from, message) = node.receiver.recv().await.unwrap();
                let expected = next.entry(from).or_insert(0);
                assert_eq!(message, expected.to_be_bytes(), "order at node {index}");
                *expected += 1;
            }
            assert!(next.values().all(|&count| count == messages));
        }
        let delivered_in = context.current().duration_since(sent_at).unwrap();
        assert!(delivered_in >= latency, "delivered in {delivered_in:?}");
        (context.auditor().state(), network.digest())
    })
}

#[test]
fn p2p_reaches_a_full_mesh_and_delivers_every_broadcast_over_latency() {
    mesh_and_broadcast(1, 10, 10);
}

#[test]
fn same_seed_gives_the_same_run() {
    for seed in 2..6 {
        assert_eq!(
            mesh_and_broadcast(seed, 5, 3),
            mesh_and_broadcast(seed, 5, 3),
            "seed {seed}"
        );
    }
    let (one, other) = (mesh_and_broadcast(2, 5, 3), mesh_and_broadcast(3, 5, 3));
    assert_ne!(one.0, other.0);
    assert_ne!(one.1, other.1);
}

#[test]
fn mesh_splits_with_a_partition_and_comes_back_when_it_heals() {
    deterministic::Runner::seeded(10).start(|context| async move {
        let n = 6;
        let network = simulated(&context, Duration::from_millis(5));
        let mut nodes = start_all(&context, &network, n).await;
        wait_for(&context, 0..n, 5).await;
        let cut = network
            .partition(&[(0..3).map(ip).collect(), (3..6).map(ip).collect()])
            .unwrap();
        assert_eq!(cut, 9, "every connection across the split");
        wait_for(&context, 0..n, 2).await;
        let sent = nodes[0]
            .sender
            .send(Recipients::All, b"inside".to_vec(), false);
        assert_eq!(sent.len(), 2, "only the own side is reachable");
        network.heal();
        let healed_in = wait_for(&context, 0..n, 5).await;
        // Redials back off for at most `dial_backoff_max` (2 s in `Config::local`).
        assert!(
            healed_in <= Duration::from_secs(5),
            "healed in {healed_in:?}"
        );
    });
}

#[test]
fn a_crashed_node_restarts_with_its_identity_and_rejoins() {
    deterministic::Runner::seeded(11).start(|context| async move {
        let n = 5;
        let network = simulated(&context, Duration::from_millis(5));
        let mut nodes = start_all(&context, &network, n).await;
        wait_for(&context, 0..n, 4).await;
        let crashed = nodes.pop().unwrap();
        crashed.handle.abort();
        assert_eq!(network.crash(ip(4)).unwrap(), 4);
        wait_for(&context, 0..4, 3).await;
        context.sleep(Duration::from_secs(1)).await;
        network.restart(ip(4)).unwrap();
        nodes.push(start_node(&context, &network, 4, n).await);
        wait_for(&context, 0..n, 4).await;
        let sent = nodes[4]
            .sender
            .send(Recipients::All, b"back".to_vec(), false);
        assert_eq!(sent.len(), 4);
        for node in &mut nodes[..4] {
            let (_, message) = node.receiver.recv().await.unwrap();
            assert_eq!(message.as_ref(), b"back");
        }
    });
}

/// `set` as commonware-p2p's address map.
fn addressed(set: Vec<(Pk, SocketAddr)>) -> Map<Pk, Address> {
    Map::from_iter_dedup(
        set.into_iter()
            .map(|(peer, address)| (peer, address.into())),
    )
}
