//! Helpers for whole-network tests: start nodes, read their metrics, wait for a mesh.
#![allow(dead_code, unreachable_pub)]

use commonware_cryptography::{Signer as _, ed25519};
use commonware_runtime::{Clock as _, Handle, Metrics as _, Quota, Supervisor as _, deterministic};
use commonware_utils::ordered::Map;
use palisade_p2p::{Address, AddressableManager as _, Config, Network, Oracle, channels};
use std::{net::SocketAddr, num::NonZeroU32, time::Duration};

pub type Key = ed25519::PrivateKey;
pub type Pk = ed25519::PublicKey;

pub const NAMESPACE: &[u8] = b"palisade-p2p-tests";
pub const CHANNEL: u64 = 7;

pub type ChannelSender = channels::Sender<Pk, deterministic::Context>;

pub struct Node {
    pub key: Key,
    pub sender: ChannelSender,
    pub receiver: channels::Receiver<Pk>,
    /// Channels registered besides [`CHANNEL`], by number.
    pub extra: Vec<(u64, ChannelSender, channels::Receiver<Pk>)>,
    pub oracle: Oracle<deterministic::Context, Pk>,
    pub handle: Handle<Result<(), palisade_p2p::Error>>,
}

/// How a test node differs from the default one.
pub struct Setup {
    pub address: SocketAddr,
    pub quota: Quota,
    pub backlog: usize,
    pub extra: Vec<(u64, Quota, usize)>,
    pub configure: fn(&mut Config<Key>),
}

impl Setup {
    pub fn new(index: usize) -> Self {
        Self {
            address: address(index),
            quota: open_quota(),
            backlog: 100_000,
            extra: Vec::new(),
            configure: |_| {},
        }
    }
}

pub fn key(index: usize) -> Key {
    Key::from_seed(index as u64)
}

pub fn address(index: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 3000 + index as u16))
}

/// The peer set of nodes `0..n`.
pub fn peer_set(indices: impl IntoIterator<Item = usize>) -> Vec<(Pk, SocketAddr)> {
    indices
        .into_iter()
        .map(|i| (key(i).public_key(), address(i)))
        .collect()
}

/// `set` as commonware-p2p's address map.
pub fn addressed(set: &[(Pk, SocketAddr)]) -> Map<Pk, Address> {
    Map::from_iter_dedup(
        set.iter()
            .map(|(peer, address)| (peer.clone(), Address::Symmetric(*address))),
    )
}

/// A quota of `count` messages a second (burst `count`).
pub fn per_second(count: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(count).unwrap())
}

pub fn open_quota() -> Quota {
    Quota::per_second(NonZeroU32::new(1_000_000).unwrap())
}

/// Starts node `index` with `Config::local`, one channel, and `set` tracked as set 0.
pub async fn start_node(
    context: &deterministic::Context,
    index: usize,
    set: &[(Pk, SocketAddr)],
    quota: Quota,
    backlog: usize,
) -> Node {
    let setup = Setup {
        quota,
        backlog,
        ..Setup::new(index)
    };
    start_node_with(context, index, set, setup).await
}

/// Starts node `index` as `setup` says, with `set` tracked as set 0.
pub async fn start_node_with(
    context: &deterministic::Context,
    index: usize,
    set: &[(Pk, SocketAddr)],
    setup: Setup,
) -> Node {
    let node_context = context.child("node").with_attribute("index", index);
    let mut config = Config::local(key(index), NAMESPACE, setup.address);
    (setup.configure)(&mut config);
    let (mut network, mut oracle) = Network::new(node_context, config);
    let (sender, receiver) = network.register(CHANNEL, setup.quota, setup.backlog);
    let extra = setup
        .extra
        .into_iter()
        .map(|(channel, quota, backlog)| {
            let (sender, receiver) = network.register(channel, quota, backlog);
            (channel, sender, receiver)
        })
        .collect();
    oracle.track(0, addressed(set));
    let handle = network.start();
    Node {
        key: key(index),
        sender,
        receiver,
        extra,
        oracle,
        handle,
    }
}

/// Starts nodes `0..n`, all tracking the same set.
pub async fn start_mesh(context: &deterministic::Context, n: usize) -> Vec<Node> {
    let set = peer_set(0..n);
    let mut nodes = Vec::with_capacity(n);
    for index in 0..n {
        nodes.push(start_node(context, index, &set, open_quota(), 100_000).await);
    }
    nodes
}

/// The value of metric `name` for node `index` with all of `labels`, summed over other labels.
pub fn metric(context: &deterministic::Context, name: &str, index: usize, labels: &[&str]) -> u64 {
    let node = format!("index=\"{index}\"");
    context
        .encode()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.starts_with(&format!("node_{name}")))
        .filter(|line| line.contains(&node) && labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

pub fn connected(context: &deterministic::Context, index: usize) -> u64 {
    metric(context, "connected_peers", index, &[])
}

/// Waits (in simulated time) until each of `nodes` has `expected` connections; panics after
/// a minute. Returns the simulated time it took.
pub async fn wait_for(
    context: &deterministic::Context,
    nodes: &[usize],
    expected: u64,
) -> Duration {
    let started = context.current();
    loop {
        if nodes
            .iter()
            .all(|&index| connected(context, index) == expected)
        {
            return context.current().duration_since(started).unwrap();
        }
        let waited = context.current().duration_since(started).unwrap();
        assert!(waited < Duration::from_secs(60), "no mesh after {waited:?}");
        context.sleep(Duration::from_millis(10)).await;
    }
}
