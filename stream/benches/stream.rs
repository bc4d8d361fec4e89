//! palisade-stream and commonware-stream (`SakeCups`, ed25519, ChaCha20-Poly1305) side by side.
//!
//! Both run in the same process, alternating round by round so that machine noise hits both,
//! on the tokio runtime over loopback TCP and on the deterministic runtime's simulated network.
//! Every figure is the median over rounds; the ratio is palisade / commonware (for latency
//! lower is better, for rates higher is better).
//!
//! `cargo bench -p palisade-stream --bench stream` runs it. `PALISADE_BENCH_ROUNDS` (default 5)
//! sets the rounds, `PALISADE_BENCH_SCALE` (default 1.0) scales the work per round.

use commonware_cryptography::{ChaCha20Poly1305, Signer as _, ed25519::PrivateKey};
use commonware_runtime::{
    Clock, IoBuf, Listener as _, Network, Runner as _, Sink, Spawner, Stream, Supervisor,
    deterministic, tokio,
};
use commonware_stream::{
    Upgrader as _,
    cups::{self, Cups},
    sake::{self, Sake},
};
use rand_core::CryptoRng;
use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

const NAMESPACE: &[u8] = b"palisade-bench";
const MAX_MESSAGE: u32 = 2 * 1024 * 1024;
const SYNCHRONY: Duration = Duration::from_secs(5);
const AGE: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Implementation {
    Palisade,
    Commonware,
}

type Reference = Cups<Sake<PrivateKey>, ChaCha20Poly1305>;

fn reference(signer: PrivateKey) -> Reference {
    Cups::new(
        Sake {
            signer,
            synchrony_bound: SYNCHRONY,
            max_handshake_age: AGE,
            version: sake::Version::V1,
        },
        cups::Version::V1,
    )
}

fn palisade_config(signer: PrivateKey) -> palisade_stream::Config<PrivateKey> {
    let mut config = palisade_stream::Config::recommended(signer, NAMESPACE);
    config.max_message_size = MAX_MESSAGE;
    config.synchrony_bound = SYNCHRONY;
    config.max_handshake_age = AGE;
    config.handshake_timeout = TIMEOUT;
    config
}

enum AnySender<O: Sink> {
    Palisade(palisade_stream::Sender<O>),
    Commonware(cups::Sender<ChaCha20Poly1305, O>),
}

enum AnyReceiver<I: Stream> {
    Palisade(palisade_stream::Receiver<I>),
    Commonware(cups::Receiver<ChaCha20Poly1305, I>),
}

impl<O: Sink> AnySender<O> {
    async fn send(&mut self, message: IoBuf) {
        match self {
            Self::Palisade(sender) => sender.send(message).await.unwrap(),
            Self::Commonware(sender) => sender.send(message).await.unwrap(),
        }
    }

    async fn send_many(&mut self, messages: Vec<IoBuf>) {
        match self {
            Self::Palisade(sender) => sender.send_many(messages).await.unwrap(),
            Self::Commonware(sender) => sender.send_many(messages).await.unwrap(),
        }
    }
}

impl<I: Stream> AnyReceiver<I> {
    async fn recv(&mut self) -> usize {
        match self {
            Self::Palisade(receiver) => receiver.recv().await.unwrap().len(),
            Self::Commonware(receiver) => receiver.recv().await.unwrap().len(),
        }
    }
}

fn dialer_key() -> PrivateKey {
    PrivateKey::from_seed(1)
}

fn listener_key() -> PrivateKey {
    PrivateKey::from_seed(2)
}

async fn dial<E: Clock + CryptoRng + Spawner, O: Sink, I: Stream>(
    which: Implementation,
    context: E,
    sink: O,
    stream: I,
) -> (AnySender<O>, AnyReceiver<I>) {
    let peer = listener_key().public_key();
    match which {
        Implementation::Palisade => {
            let (s, r) =
                palisade_stream::dial(context, palisade_config(dialer_key()), peer, sink, stream)
                    .await
                    .unwrap();
            (AnySender::Palisade(s), AnyReceiver::Palisade(r))
        }
        Implementation::Commonware => {
            let (s, r) = reference(dialer_key())
                .dial(context, NAMESPACE, MAX_MESSAGE, peer, stream, sink)
                .await
                .unwrap();
            (AnySender::Commonware(s), AnyReceiver::Commonware(r))
        }
    }
}

async fn listen<E: Clock + CryptoRng + Spawner, O: Sink, I: Stream>(
    which: Implementation,
    context: E,
    sink: O,
    stream: I,
) -> (AnySender<O>, AnyReceiver<I>) {
    match which {
        Implementation::Palisade => {
            let config = palisade_config(listener_key());
            let (_, s, r) =
                palisade_stream::listen(context, config, |_| async { true }, sink, stream)
                    .await
                    .unwrap();
            (AnySender::Palisade(s), AnyReceiver::Palisade(r))
        }
        Implementation::Commonware => {
            let (_, s, r) = reference(listener_key())
                .listen(
                    context,
                    NAMESPACE,
                    MAX_MESSAGE,
                    |_| async { true },
                    stream,
                    sink,
                )
                .await
                .unwrap();
            (AnySender::Commonware(s), AnyReceiver::Commonware(r))
        }
    }
}

/// Handshake latencies in microseconds, TCP connect excluded, measured on the dialer.
async fn handshakes<E>(
    which: Implementation,
    context: E,
    address: SocketAddr,
    count: usize,
) -> Vec<f64>
where
    E: Spawner + Network + Clock + CryptoRng + Supervisor,
{
    let mut listener = context.bind(address).await.unwrap();
    let address = listener.local_addr().unwrap();
    let serving = context.child("listener").spawn(move |context| async move {
        for _ in 0..count {
            let (_, sink, stream) = listener.accept().await.unwrap();
            let _connection = listen(which, context.child("conn"), sink, stream).await;
        }
    });
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let (sink, stream) = context.dial(address).await.unwrap();
        let started = Instant::now();
        let _connection = dial(which, context.child("dialer"), sink, stream).await;
        samples.push(started.elapsed().as_secs_f64() * 1e6);
    }
    serving.await.unwrap();
    samples
}

/// How a throughput run sends.
#[derive(Clone, Copy)]
enum Sending {
    /// One message at a time, a clone of one shared buffer (the caller keeps its handle).
    Single,
    /// `send_many` of this many clones of one shared buffer.
    Batches(usize),
    /// One message at a time, each its own buffer handed over whole: the application made
    /// it for this send and keeps nothing (the buffers are made before the clock starts).
    Owned,
}

/// Sends `count` messages of `size` bytes one way; returns (messages per second, bytes per second).
async fn throughput<E>(
    which: Implementation,
    context: E,
    address: SocketAddr,
    size: usize,
    count: usize,
    sending: Sending,
) -> (f64, f64)
where
    E: Spawner + Network + Clock + CryptoRng + Supervisor,
{
    let mut listener = context.bind(address).await.unwrap();
    let address = listener.local_addr().unwrap();
    let receiving = context.child("receiver").spawn(move |context| async move {
        let (_, sink, stream) = listener.accept().await.unwrap();
        let (_sender, mut receiver) = listen(which, context, sink, stream).await;
        let mut bytes = 0usize;
        for _ in 0..count {
            bytes += receiver.recv().await;
        }
        bytes
    });
    let (sink, stream) = context.dial(address).await.unwrap();
    let (mut sender, _receiver) = dial(which, context.child("dialer"), sink, stream).await;
    let message = IoBuf::from(vec![0xa5u8; size]);
    let owned: Vec<IoBuf> = match sending {
        Sending::Owned => (0..count)
            .map(|_| IoBuf::from(vec![0xa5u8; size]))
            .collect(),
        _ => Vec::new(),
    };
    let started = Instant::now();
    match sending {
        Sending::Owned => {
            for message in owned {
                sender.send(message).await;
            }
        }
        Sending::Single => {
            for _ in 0..count {
                sender.send(message.clone()).await;
            }
        }
        Sending::Batches(batch) => {
            for _ in 0..count / batch {
                sender.send_many(vec![message.clone(); batch]).await;
            }
        }
    }
    let bytes = receiving.await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(bytes, size * count);
    (count as f64 / seconds, bytes as f64 / seconds)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn percentile(mut values: Vec<f64>, p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let index = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[index]
}

/// One benchmark: its name, unit, and whether higher is better.
struct Metric {
    name: String,
    unit: &'static str,
    higher_is_better: bool,
    palisade: Vec<f64>,
    commonware: Vec<f64>,
}

impl Metric {
    fn new(name: impl Into<String>, unit: &'static str, higher_is_better: bool) -> Self {
        Self {
            name: name.into(),
            unit,
            higher_is_better,
            palisade: Vec::new(),
            commonware: Vec::new(),
        }
    }

    fn push(&mut self, which: Implementation, value: f64) {
        match which {
            Implementation::Palisade => self.palisade.push(value),
            Implementation::Commonware => self.commonware.push(value),
        }
    }
}

/// A runtime to run one measurement on, fresh each time.
trait Bench {
    type Context: Spawner + Network + Clock + CryptoRng + Supervisor;
    const NAME: &'static str;
    fn run<F, Fut, T>(&self, f: F) -> T
    where
        F: FnOnce(Self::Context) -> Fut,
        Fut: std::future::Future<Output = T>;
}

struct Tokio;
struct Deterministic;

impl Bench for Tokio {
    type Context = tokio::Context;
    const NAME: &'static str = "tokio, loopback TCP";
    fn run<F, Fut, T>(&self, f: F) -> T
    where
        F: FnOnce(tokio::Context) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let storage = std::env::temp_dir().join(format!("palisade-bench-{}", std::process::id()));
        let runner = tokio::Runner::new(
            tokio::Config::new()
                .with_worker_threads(2)
                .with_storage_directory(&storage),
        );
        let result = runner.start(f);
        let _ = std::fs::remove_dir_all(storage);
        result
    }
}

impl Bench for Deterministic {
    type Context = deterministic::Context;
    const NAME: &'static str = "deterministic, simulated network";
    fn run<F, Fut, T>(&self, f: F) -> T
    where
        F: FnOnce(deterministic::Context) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        deterministic::Runner::seeded(0).start(f)
    }
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn measure<B: Bench>(bench: &B, address: SocketAddr, rounds: usize, scale: f64) -> Vec<Metric> {
    let scaled = |n: f64| ((n * scale).round() as usize).max(1);
    // PALISADE_BENCH_ONLY=handshake (or throughput, messages) runs one group.
    let only = std::env::var("PALISADE_BENCH_ONLY").unwrap_or_default();
    let wanted = |group: &str| only.is_empty() || only == group;
    let handshake_count = scaled(200.0);
    let mut p50 = Metric::new("handshake p50", "us", false);
    let mut p99 = Metric::new("handshake p99", "us", false);
    let sizes = [
        (1024usize, scaled(100_000.0)),
        (64 * 1024, scaled(4_000.0)),
        (1024 * 1024, scaled(256.0)),
    ];
    let mut throughputs: Vec<Metric> = sizes
        .iter()
        .map(|(size, _)| Metric::new(format!("throughput {} KiB", size / 1024), "MB/s", true))
        .collect();
    let owned_sizes = [(64 * 1024, scaled(4_000.0)), (1024 * 1024, scaled(256.0))];
    let mut owned_throughputs: Vec<Metric> = owned_sizes
        .iter()
        .map(|(size, _)| {
            Metric::new(
                format!("throughput {} KiB, buffers handed over", size / 1024),
                "MB/s",
                true,
            )
        })
        .collect();
    let mut single = Metric::new("64 B messages, single sends", "msg/s", true);
    let mut batched = Metric::new("64 B messages, batches of 64", "msg/s", true);
    for round in 0..rounds {
        // Alternate which implementation goes first.
        let order = if round % 2 == 0 {
            [Implementation::Palisade, Implementation::Commonware]
        } else {
            [Implementation::Commonware, Implementation::Palisade]
        };
        for which in order {
            if wanted("handshake") {
                let samples =
                    bench.run(|context| handshakes(which, context, address, handshake_count));
                p50.push(which, percentile(samples.clone(), 0.5));
                p99.push(which, percentile(samples, 0.99));
            }
            if !wanted("throughput") {
                continue;
            }
            for ((size, count), metric) in sizes.iter().zip(throughputs.iter_mut()) {
                let (_, bytes) = bench.run(|context| {
                    throughput(which, context, address, *size, *count, Sending::Single)
                });
                metric.push(which, bytes / 1e6);
            }
            for ((size, count), metric) in owned_sizes.iter().zip(owned_throughputs.iter_mut()) {
                let (_, bytes) = bench.run(|context| {
                    throughput(which, context, address, *size, *count, Sending::Owned)
                });
                metric.push(which, bytes / 1e6);
            }
        }
        for which in order {
            if !wanted("messages") {
                continue;
            }
            let count = scaled(200_000.0);
            let (rate, _) = bench
                .run(|context| throughput(which, context, address, 64, count, Sending::Single));
            single.push(which, rate);
            let count = scaled(1_000_000.0) / 64 * 64;
            let (rate, _) = bench.run(|context| {
                throughput(which, context, address, 64, count, Sending::Batches(64))
            });
            batched.push(which, rate);
        }
        eprintln!("{}: round {} of {rounds} done", B::NAME, round + 1);
    }
    let mut metrics = vec![p50, p99];
    metrics.extend(throughputs);
    metrics.extend(owned_throughputs);
    metrics.push(single);
    metrics.push(batched);
    metrics.retain(|metric| !metric.palisade.is_empty());
    metrics
}

fn report(runtime: &str, metrics: &[Metric]) {
    println!("\n### {runtime}\n");
    println!("| benchmark | palisade | commonware | ratio palisade/commonware |");
    println!("|---|---|---|---|");
    for metric in metrics {
        let palisade = median(metric.palisade.clone());
        let commonware = median(metric.commonware.clone());
        let better = if metric.higher_is_better {
            "higher is better"
        } else {
            "lower is better"
        };
        println!(
            "| {} ({}, {better}) | {} | {} | {:.2}x |",
            metric.name,
            metric.unit,
            format_value(palisade),
            format_value(commonware),
            palisade / commonware
        );
    }
}

fn format_value(value: f64) -> String {
    if value >= 100_000.0 {
        format!("{:.0}k", value / 1000.0)
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing else useful.
    let rounds = env_f64("PALISADE_BENCH_ROUNDS", 5.0) as usize;
    let scale = env_f64("PALISADE_BENCH_SCALE", 1.0);
    let tokio_metrics = measure(&Tokio, "127.0.0.1:0".parse().unwrap(), rounds, scale);
    let deterministic_metrics = measure(
        &Deterministic,
        "127.0.0.1:5000".parse().unwrap(),
        rounds,
        scale,
    );
    println!("\nmedians of {rounds} rounds, scale {scale}");
    report(Tokio::NAME, &tokio_metrics);
    report(Deterministic::NAME, &deterministic_metrics);
}
