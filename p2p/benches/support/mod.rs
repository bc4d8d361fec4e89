//! What both benchmark binaries share: the same nodes of palisade-p2p or commonware-p2p
//! (`authenticated::lookup`) with settings that map between the two, and the child process's
//! peak memory.
//!
//! Settings: ed25519 keys, the same namespace and message limit, one tracked peer set,
//! dialing every 10 ms, handshake rates opened up (every peer shares 127.0.0.1), channels with
//! quotas and queues large enough that nothing is dropped.

#![allow(dead_code, unreachable_pub)]

use commonware_cryptography::{ChaCha20Poly1305, Signer as _, ed25519::PrivateKey};
use commonware_p2p::{
    Address, AddressableManager as _, Receiver as _, Recipients, Sender as _, authenticated::lookup,
};
use commonware_runtime::{
    Clock, IoBuf, Metrics, Network as RuntimeNetwork, Quota, Resolver, Spawner,
};
use commonware_stream::{
    SakeCups,
    cups::{self, Cups},
    sake::{self, Sake},
};
use commonware_utils::{NZU32, NZUsize, ordered::Map};
use palisade_p2p::{Config, Network};
use rand_core::CryptoRng;
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

pub const NAMESPACE: &[u8] = b"palisade-bench";
pub const MAX_MESSAGE: u32 = 1024 * 1024;
pub const DATA: u64 = 1;
pub const PROBE: u64 = 2;

pub type Pk = commonware_cryptography::ed25519::PublicKey;

pub trait Context: Spawner + Clock + RuntimeNetwork + Resolver + Metrics + CryptoRng {}
impl<T: Spawner + Clock + RuntimeNetwork + Resolver + Metrics + CryptoRng> Context for T {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Implementation {
    Palisade,
    Commonware,
}

pub enum AnySender<E: Clock> {
    Palisade(palisade_p2p::channels::Sender<Pk, E>),
    Commonware(lookup::Sender<Pk, E>),
}

impl<E: Clock> AnySender<E> {
    /// Queues `message`; returns how many peers it was queued for.
    pub async fn send(&mut self, to: Option<Pk>, message: IoBuf) -> usize {
        match self {
            Self::Palisade(sender) => {
                let recipients = to.map_or(Recipients::All, Recipients::One);
                sender.send(recipients, message, false).len()
            }
            Self::Commonware(sender) => {
                let recipients = to.map_or(Recipients::All, Recipients::One);
                sender.send(recipients, message, false).len()
            }
        }
    }
}

pub enum AnyReceiver {
    Palisade(palisade_p2p::channels::Receiver<Pk>),
    Commonware(lookup::Receiver<Pk>),
}

impl AnyReceiver {
    pub async fn recv(&mut self) -> Option<usize> {
        match self {
            Self::Palisade(receiver) => receiver.recv().await.ok().map(|(_, m)| m.len()),
            Self::Commonware(receiver) => receiver.recv().await.ok().map(|(_, m)| m.len()),
        }
    }
}

pub struct Nodes<E: Clock> {
    pub keys: Vec<Pk>,
    pub data: Vec<AnySender<E>>,
    pub probe: Vec<AnySender<E>>,
    /// Deliveries and bytes received on the data channel, over all nodes.
    pub delivered: Arc<AtomicUsize>,
    pub delivered_bytes: Arc<AtomicUsize>,
}

/// How the channels and queues of both sides are sized. Both sizings leave every queue large
/// enough that nothing is dropped or rate limited in these runs; a result must hold under
/// both, not only under the one that suits one side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizing {
    /// Quota burst of every channel, per peer (the rate is 1,000,000 a second).
    pub burst: u32,
    /// commonware's outbound mailbox.
    pub mailbox: usize,
    /// palisade's receive backlog of the data channel, in messages.
    pub backlog: usize,
}

impl Sizing {
    /// This project's sizing for `n` peers: commonware allocates its receive queues up front
    /// from the burst times the peers, so the burst shrinks as peers grow (at least 256), the
    /// mailbox likewise (at least 1024); palisade's backlog is 65,536 messages.
    pub fn project(n: usize) -> Self {
        Self {
            burst: (8192 / n).max(256) as u32,
            mailbox: (65_536 / n).max(1024),
            backlog: 1 << 16,
        }
    }

    /// The sizing of an independent harness, for `n` peers that each send `m` messages: the
    /// burst covers what one peer sends, `max(m + 16, 64)`; commonware's mailbox
    /// `max(1000, m + 16)`; palisade's backlog the peers times the burst.
    pub fn independent(n: usize, m: usize) -> Self {
        let burst = (m + 16).max(64);
        Self {
            burst: burst as u32,
            mailbox: (m + 16).max(1000),
            backlog: n * burst,
        }
    }

    fn quota(&self) -> Quota {
        Quota::per_second(NZU32!(1_000_000))
            .allow_burst(std::num::NonZeroU32::new(self.burst).unwrap())
    }
}

/// Starts `n` nodes on `ports`, drains every receiver, and returns the senders.
pub async fn start<E: Context>(
    context: &E,
    which: Implementation,
    ports: &[u16],
    sizing: Sizing,
) -> Nodes<E> {
    let n = ports.len();
    let signers: Vec<PrivateKey> = (0..n as u64).map(PrivateKey::from_seed).collect();
    let keys: Vec<Pk> = signers.iter().map(|s| s.public_key()).collect();
    let address = |i: usize| SocketAddr::from(([127, 0, 0, 1], ports[i]));
    let delivered = Arc::new(AtomicUsize::new(0));
    let delivered_bytes = Arc::new(AtomicUsize::new(0));
    let (mut data, mut probe) = (Vec::new(), Vec::new());
    for (i, signer) in signers.iter().enumerate() {
        let node = context.child("node").with_attribute("index", i);
        let (data_receiver, probe_receiver) = match which {
            Implementation::Palisade => {
                let mut config = Config::local(signer.clone(), NAMESPACE, address(i));
                config.max_message_size = MAX_MESSAGE;
                config.tracked_peer_sets = 1;
                config.dial_interval = Duration::from_millis(10);
                config.max_queued_messages = 1 << 16;
                config.handshakes_per_ip = Quota::per_second(NZU32!(100_000));
                config.max_concurrent_handshakes = 1024;
                let (mut network, mut oracle) = Network::new(node.child("network"), config);
                let (data_tx, data_rx) = network.register(DATA, sizing.quota(), sizing.backlog);
                let (probe_tx, probe_rx) = network.register(PROBE, sizing.quota(), 1 << 12);
                let set: Vec<(Pk, Address)> = (0..n)
                    .map(|j| (keys[j].clone(), address(j).into()))
                    .collect();
                let _ = oracle.track(0, Map::try_from(set).unwrap());
                network.start();
                data.push(AnySender::Palisade(data_tx));
                probe.push(AnySender::Palisade(probe_tx));
                (
                    AnyReceiver::Palisade(data_rx),
                    AnyReceiver::Palisade(probe_rx),
                )
            }
            Implementation::Commonware => {
                let handshake: SakeCups<PrivateKey, ChaCha20Poly1305> = Cups::new(
                    Sake {
                        signer: signer.clone(),
                        synchrony_bound: Duration::from_secs(5),
                        max_handshake_age: Duration::from_secs(10),
                        version: sake::Version::V1,
                    },
                    cups::Version::V1,
                );
                let mut config = lookup::Config::local(
                    handshake,
                    NAMESPACE,
                    address(i),
                    NZUsize!(n),
                    MAX_MESSAGE,
                    std::num::NonZeroUsize::new(sizing.mailbox).unwrap(),
                );
                config.tracked_peer_sets = NZUsize!(1);
                config.dial_frequency = Duration::from_millis(10);
                config.peer_connection_cooldown = Duration::from_millis(10);
                config.allowed_handshake_rate_per_ip = Quota::per_second(NZU32!(100_000));
                config.allowed_handshake_rate_per_subnet = Quota::per_second(NZU32!(100_000));
                config.max_concurrent_handshakes = NZU32!(1024);
                let (mut network, mut oracle) = lookup::Network::new(node.child("network"), config);
                let (data_tx, data_rx) = network.register(DATA, sizing.quota());
                let (probe_tx, probe_rx) = network.register(PROBE, sizing.quota());
                let set: Vec<(Pk, Address)> = (0..n)
                    .map(|j| (keys[j].clone(), address(j).into()))
                    .collect();
                let _ = oracle.track(0, Map::try_from(set).unwrap());
                network.start();
                data.push(AnySender::Commonware(data_tx));
                probe.push(AnySender::Commonware(probe_tx));
                (
                    AnyReceiver::Commonware(data_rx),
                    AnyReceiver::Commonware(probe_rx),
                )
            }
        };
        let (count, bytes) = (delivered.clone(), delivered_bytes.clone());
        node.child("drain_data").spawn(move |_| async move {
            let mut receiver = data_receiver;
            while let Some(len) = receiver.recv().await {
                bytes.fetch_add(len, Ordering::Relaxed);
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        node.child("drain_probe").spawn(move |_| async move {
            let mut receiver = probe_receiver;
            while receiver.recv().await.is_some() {}
        });
    }
    Nodes {
        keys,
        data,
        probe,
        delivered,
        delivered_bytes,
    }
}

/// Waits until every node reaches every other, probing on the probe channel.
pub async fn wait_for_mesh<E: Context>(context: &E, nodes: &mut Nodes<E>) {
    let n = nodes.keys.len();
    loop {
        let mut full = true;
        for sender in &mut nodes.probe {
            full &= sender.send(None, IoBuf::from(vec![0u8; 1])).await == n - 1;
        }
        if full {
            return;
        }
        context.sleep(Duration::from_millis(10)).await;
    }
}

/// Runs this binary again with `variable=spec` in its environment; returns the numbers on the
/// line of its output that starts with `REPORT `, and its standard error.
pub fn run_child(variable: &str, spec: &str) -> (Vec<f64>, String) {
    let output = std::process::Command::new(std::env::current_exe().expect("own path"))
        .env(variable, spec)
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("REPORT "))
        .unwrap_or_else(|| panic!("{spec} failed: {stderr}"));
    let values = line
        .split(' ')
        .map(|v| v.parse().expect("a number"))
        .collect();
    (values, stderr)
}

/// Rounds to run: `PALISADE_BENCH_ROUNDS`, 3 by default.
pub fn rounds() -> usize {
    std::env::var("PALISADE_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Peak resident memory of this process, in MiB.
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .and_then(|line| line.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// CPU seconds this process has used so far, user and system (Linux; 0 elsewhere). The
/// clock ticks of `/proc/self/stat` are 1/100 s on Linux's usual configuration.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => 0.0,
    }
}
