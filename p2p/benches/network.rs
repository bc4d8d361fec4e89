//! palisade-p2p and commonware-p2p (`authenticated::lookup`) side by side.
//!
//! Every measurement runs in a fresh child process (this binary, re-executed), so the peak
//! resident memory it reports belongs to that run alone. Rounds alternate which
//! implementation goes first; figures are medians over rounds; ratios are
//! palisade / commonware.
//!
//! `cargo bench -p palisade-p2p --bench network`; `PALISADE_BENCH_ROUNDS` (default 3).
//!
//! Settings that map between the two: ed25519 keys, the same namespace and message limit, one
//! tracked peer set, dialing every 10 ms, handshake rates opened up (every peer shares
//! 127.0.0.1), channels with quotas and queues large enough that nothing is dropped.

use commonware_cryptography::{ChaCha20Poly1305, Signer as _, ed25519::PrivateKey};
use commonware_p2p::{
    Address, AddressableManager as _, Receiver as _, Recipients as CwRecipients, Sender as _,
    authenticated::lookup,
};
use commonware_runtime::{
    Clock, IoBuf, Metrics, Network as RuntimeNetwork, Quota, Resolver, Runner as _, Spawner,
    deterministic, tokio,
};
use commonware_stream::{
    SakeCups,
    cups::{self, Cups},
    sake::{self, Sake},
};
use commonware_utils::{NZU32, NZUsize, ordered::Map};
use palisade_p2p::{Config, Network, Recipients};
use rand_core::CryptoRng;
use std::{
    net::SocketAddr,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

const NAMESPACE: &[u8] = b"palisade-bench";
const MAX_MESSAGE: u32 = 1024 * 1024;
const DATA: u64 = 1;
const PROBE: u64 = 2;
const BROADCAST_MESSAGES: usize = 100;
const BROADCAST_BYTES: usize = 1024;
const P2P_MESSAGES: usize = 2000;
const P2P_BYTES: usize = 64 * 1024;

type Pk = commonware_cryptography::ed25519::PublicKey;

trait Context: Spawner + Clock + RuntimeNetwork + Resolver + Metrics + CryptoRng {}
impl<T: Spawner + Clock + RuntimeNetwork + Resolver + Metrics + CryptoRng> Context for T {}

/// What a child run reports.
#[derive(Debug, Default, Clone)]
struct Report {
    mesh_simulated_ms: f64,
    mesh_wall_ms: f64,
    deliveries_per_second: f64,
    bytes_per_second: f64,
    peak_rss_mib: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Implementation {
    Palisade,
    Commonware,
}

enum AnySender<E: Clock> {
    Palisade(palisade_p2p::channels::Sender<Pk, E>),
    Commonware(lookup::Sender<Pk, E>),
}

impl<E: Clock> AnySender<E> {
    /// Queues `message`; returns how many peers it was queued for.
    async fn send(&mut self, to: Option<Pk>, message: IoBuf) -> usize {
        match self {
            Self::Palisade(sender) => {
                let recipients = to.map_or(Recipients::All, Recipients::One);
                sender.send(recipients, message, false).await.unwrap().len()
            }
            Self::Commonware(sender) => {
                let recipients = to.map_or(CwRecipients::All, CwRecipients::One);
                sender.send(recipients, message, false).len()
            }
        }
    }
}

enum AnyReceiver {
    Palisade(palisade_p2p::channels::Receiver<Pk>),
    Commonware(lookup::Receiver<Pk>),
}

impl AnyReceiver {
    async fn recv(&mut self) -> Option<usize> {
        match self {
            Self::Palisade(receiver) => receiver.recv().await.ok().map(|(_, m)| m.len()),
            Self::Commonware(receiver) => receiver.recv().await.ok().map(|(_, m)| m.len()),
        }
    }
}

struct Nodes<E: Clock> {
    keys: Vec<Pk>,
    data: Vec<AnySender<E>>,
    probe: Vec<AnySender<E>>,
    /// Deliveries and bytes received on the data channel, over all nodes.
    delivered: Arc<AtomicUsize>,
    delivered_bytes: Arc<AtomicUsize>,
}

/// Per-peer quota of every channel for `n` peers: far above what the runs send, with a burst
/// that covers a whole broadcast. commonware sizes its receive queues from the burst times the
/// peers (allocated up front, and lossy when full), so the burst shrinks as peers grow.
fn quota(n: usize) -> Quota {
    let burst = (8192 / n).max(256) as u32;
    Quota::per_second(NZU32!(1_000_000)).allow_burst(std::num::NonZeroU32::new(burst).unwrap())
}

/// Starts `n` nodes on `ports`, drains every receiver, and returns the senders.
async fn start<E: Context>(context: &E, which: Implementation, ports: &[u16]) -> Nodes<E> {
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
                let (data_tx, data_rx) = network.register(DATA, quota(n), 1 << 16);
                let (probe_tx, probe_rx) = network.register(PROBE, quota(n), 1 << 12);
                let set = (0..n).map(|j| (keys[j].clone(), address(j))).collect();
                oracle.track(0, set).await;
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
                    // Its outbound mailbox; sized like the quota burst, by peers.
                    std::num::NonZeroUsize::new((65_536 / n).max(1024)).unwrap(),
                );
                config.tracked_peer_sets = NZUsize!(1);
                config.dial_frequency = Duration::from_millis(10);
                config.peer_connection_cooldown = Duration::from_millis(10);
                config.allowed_handshake_rate_per_ip = Quota::per_second(NZU32!(100_000));
                config.allowed_handshake_rate_per_subnet = Quota::per_second(NZU32!(100_000));
                config.max_concurrent_handshakes = NZU32!(1024);
                let (mut network, mut oracle) = lookup::Network::new(node.child("network"), config);
                let (data_tx, data_rx) = network.register(DATA, quota(n));
                let (probe_tx, probe_rx) = network.register(PROBE, quota(n));
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
async fn wait_for_mesh<E: Context>(context: &E, nodes: &mut Nodes<E>) {
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

/// Waits until `counter` reaches `target`, or stops growing for 10 s of wall time (a
/// receive queue that drops when full can leave it short). Returns when it last grew.
async fn wait_until<E: Clock>(context: &E, counter: &AtomicUsize, target: usize) -> Instant {
    let (mut last, mut grew) = (counter.load(Ordering::Relaxed), Instant::now());
    while last < target {
        context.sleep(Duration::from_millis(1)).await;
        let now = counter.load(Ordering::Relaxed);
        if now != last {
            (last, grew) = (now, Instant::now());
        } else if grew.elapsed() > Duration::from_secs(10) {
            eprintln!("stalled at {last} of {target}");
            break;
        }
    }
    grew
}

/// Full mesh of `ports.len()` nodes, then an all-to-all broadcast of 1 KiB messages.
async fn mesh_and_broadcast<E: Context>(
    context: E,
    which: Implementation,
    ports: Vec<u16>,
) -> Report {
    let wall = Instant::now();
    let simulated = context.current();
    let mut nodes = start(&context, which, &ports).await;
    wait_for_mesh(&context, &mut nodes).await;
    let mesh_simulated_ms = context
        .current()
        .duration_since(simulated)
        .unwrap()
        .as_secs_f64()
        * 1e3;
    let mesh_wall_ms = wall.elapsed().as_secs_f64() * 1e3;
    let message = IoBuf::from(vec![7u8; BROADCAST_BYTES]);
    let started = Instant::now();
    let mut expected = 0;
    for sender in &mut nodes.data {
        for _ in 0..BROADCAST_MESSAGES {
            expected += sender.send(None, message.clone()).await;
        }
    }
    let finished = wait_until(&context, &nodes.delivered, expected).await;
    let seconds = finished.duration_since(started).as_secs_f64();
    let delivered = nodes.delivered.load(Ordering::Relaxed);
    Report {
        mesh_simulated_ms,
        mesh_wall_ms,
        deliveries_per_second: delivered as f64 / seconds,
        ..Report::default()
    }
}

/// Two nodes; one sends 64 KiB messages to the other as fast as the network takes them.
async fn point_to_point<E: Context>(context: E, which: Implementation, ports: Vec<u16>) -> Report {
    let mut nodes = start(&context, which, &ports).await;
    wait_for_mesh(&context, &mut nodes).await;
    let message = IoBuf::from(vec![7u8; P2P_BYTES]);
    let peer = nodes.keys[1].clone();
    let started = Instant::now();
    for _ in 0..P2P_MESSAGES {
        // A full queue takes nothing: wait a little and offer the message again.
        while nodes.data[0]
            .send(Some(peer.clone()), message.clone())
            .await
            == 0
        {
            context.sleep(Duration::from_micros(100)).await;
        }
    }
    let finished = wait_until(&context, &nodes.delivered, P2P_MESSAGES).await;
    let seconds = finished.duration_since(started).as_secs_f64();
    Report {
        bytes_per_second: nodes.delivered_bytes.load(Ordering::Relaxed) as f64 / seconds,
        ..Report::default()
    }
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .and_then(|line| line.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Runs one scenario in this process and prints its report.
fn child(spec: &str) {
    let parts: Vec<&str> = spec.split(',').collect();
    let which = if parts[1] == "palisade" {
        Implementation::Palisade
    } else {
        Implementation::Commonware
    };
    let n: usize = parts[2].parse().unwrap();
    let mut report = match parts[0] {
        "mesh_deterministic" => deterministic::Runner::seeded(0).start(|context| {
            mesh_and_broadcast(context, which, (0..n as u16).map(|i| 3000 + i).collect())
        }),
        "mesh_tokio" => {
            tokio_runner().start(|context| mesh_and_broadcast(context, which, free_ports(n)))
        }
        "p2p_tokio" => {
            tokio_runner().start(|context| point_to_point(context, which, free_ports(2)))
        }
        other => panic!("unknown scenario {other}"),
    };
    report.peak_rss_mib = peak_rss_mib();
    println!(
        "REPORT {} {} {} {} {}",
        report.mesh_simulated_ms,
        report.mesh_wall_ms,
        report.deliveries_per_second,
        report.bytes_per_second,
        report.peak_rss_mib
    );
}

fn tokio_runner() -> tokio::Runner {
    let storage = std::env::temp_dir().join(format!("palisade-p2p-bench-{}", std::process::id()));
    tokio::Runner::new(
        tokio::Config::new()
            .with_worker_threads(2)
            .with_storage_directory(storage),
    )
}

fn run_child(spec: &str) -> Report {
    let output = Command::new(std::env::current_exe().unwrap())
        .env("PALISADE_P2P_BENCH_CHILD", spec)
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| l.contains("stalled"))
    {
        eprintln!("{spec}: {line} (a receive queue dropped messages)");
    }
    let line = stdout
        .lines()
        .find(|line| line.starts_with("REPORT "))
        .unwrap_or_else(|| panic!("{spec} failed: {}", String::from_utf8_lossy(&output.stderr)));
    let values: Vec<f64> = line[7..].split(' ').map(|v| v.parse().unwrap()).collect();
    Report {
        mesh_simulated_ms: values[0],
        mesh_wall_ms: values[1],
        deliveries_per_second: values[2],
        bytes_per_second: values[3],
        peak_rss_mib: values[4],
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    if let Ok(spec) = std::env::var("PALISADE_P2P_BENCH_CHILD") {
        child(&spec);
        return;
    }
    let rounds: usize = std::env::var("PALISADE_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let scenarios = [
        ("mesh_deterministic", 25),
        ("mesh_deterministic", 50),
        ("mesh_tokio", 10),
        ("p2p_tokio", 2),
    ];
    let mut results: Vec<[Vec<Report>; 2]> =
        scenarios.iter().map(|_| [Vec::new(), Vec::new()]).collect();
    for round in 0..rounds {
        for (index, (scenario, n)) in scenarios.iter().enumerate() {
            let order = if round % 2 == 0 {
                ["palisade", "commonware"]
            } else {
                ["commonware", "palisade"]
            };
            for which in order {
                let report = run_child(&format!("{scenario},{which},{n}"));
                results[index][usize::from(which == "commonware")].push(report);
            }
        }
        eprintln!("round {} of {rounds} done", round + 1);
    }
    println!("\nmedians of {rounds} rounds\n");
    println!("| benchmark | palisade | commonware | ratio palisade/commonware |");
    println!("|---|---|---|---|");
    let row =
        |name: &str, unit: &str, pick: &dyn Fn(&Report) -> f64, reports: &[Vec<Report>; 2]| {
            let p = median(reports[0].iter().map(pick).collect());
            let c = median(reports[1].iter().map(pick).collect());
            println!("| {name} ({unit}) | {p:.1} | {c:.1} | {:.2}x |", p / c);
        };
    for (index, (scenario, n)) in scenarios.iter().enumerate() {
        let reports = &results[index];
        match *scenario {
            "mesh_deterministic" => {
                row(
                    &format!("{n} peers, deterministic: time to full mesh, simulated"),
                    "ms",
                    &|r| r.mesh_simulated_ms,
                    reports,
                );
                row(
                    &format!("{n} peers, deterministic: time to full mesh, wall"),
                    "ms",
                    &|r| r.mesh_wall_ms,
                    reports,
                );
                row(
                    &format!("{n} peers, deterministic: broadcast 100 x 1 KiB per peer"),
                    "deliveries/s",
                    &|r| r.deliveries_per_second,
                    reports,
                );
                row(
                    &format!("{n} peers, deterministic: peak memory of the run"),
                    "MiB",
                    &|r| r.peak_rss_mib,
                    reports,
                );
            }
            "mesh_tokio" => {
                row(
                    &format!("{n} peers, tokio: time to full mesh"),
                    "ms",
                    &|r| r.mesh_wall_ms,
                    reports,
                );
                row(
                    &format!("{n} peers, tokio: broadcast 100 x 1 KiB per peer"),
                    "deliveries/s",
                    &|r| r.deliveries_per_second,
                    reports,
                );
            }
            _ => {
                row(
                    "2 peers, tokio: point-to-point 64 KiB",
                    "MB/s",
                    &|r| r.bytes_per_second / 1e6,
                    reports,
                );
            }
        }
    }
}
