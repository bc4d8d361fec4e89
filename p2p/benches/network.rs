//! palisade-p2p and commonware-p2p (`authenticated::lookup`) side by side.
//!
//! Every measurement runs in a fresh child process (this binary, re-executed), so the peak
//! resident memory it reports belongs to that run alone. Rounds alternate which
//! implementation goes first; figures are medians over rounds; ratios are
//! palisade / commonware.
//!
//! `cargo bench -p palisade-p2p --bench network`; `PALISADE_BENCH_ROUNDS` (default 3),
//! `PALISADE_BENCH_SIZING` (`project`, `independent` or `both`, the default; see
//! [`support::Sizing`]), `PALISADE_BENCH_ONLY` (a prefix of `scenario,peers`, such as
//! `mesh_deterministic,50`).
//!
//! The nodes and their settings are in `support/mod.rs`, shared with palisade-sim's benchmark.

mod support;

use commonware_runtime::{Clock, IoBuf, Runner as _, deterministic, tokio};
use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};
use support::{Context, Implementation, Sizing, median, peak_rss_mib, start, wait_for_mesh};

const BROADCAST_MESSAGES: usize = 100;
const BROADCAST_BYTES: usize = 1024;
const P2P_MESSAGES: usize = 2000;
const P2P_BYTES: usize = 64 * 1024;

/// What a child run reports.
#[derive(Debug, Default, Clone)]
struct Report {
    mesh_simulated_ms: f64,
    mesh_wall_ms: f64,
    deliveries_per_second: f64,
    bytes_per_second: f64,
    peak_rss_mib: f64,
    /// CPU seconds of the whole child process (user and system), from start to end.
    cpu_seconds: f64,
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
    sizing: Sizing,
) -> Report {
    let wall = Instant::now();
    let simulated = context.current();
    let mut nodes = start(&context, which, &ports, sizing).await;
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
async fn point_to_point<E: Context>(
    context: E,
    which: Implementation,
    ports: Vec<u16>,
    sizing: Sizing,
) -> Report {
    let mut nodes = start(&context, which, &ports, sizing).await;
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
    let sizing = sizing(parts[0], n, parts[3]);
    let mut report = match parts[0] {
        "mesh_deterministic" => deterministic::Runner::seeded(0).start(|context| {
            let ports = (0..n as u16).map(|i| 3000 + i).collect();
            mesh_and_broadcast(context, which, ports, sizing)
        }),
        "mesh_tokio" => tokio_runner()
            .start(|context| mesh_and_broadcast(context, which, free_ports(n), sizing)),
        "p2p_tokio" => {
            tokio_runner().start(|context| point_to_point(context, which, free_ports(2), sizing))
        }
        other => panic!("unknown scenario {other}"),
    };
    report.peak_rss_mib = peak_rss_mib();
    report.cpu_seconds = support::cpu_seconds();
    println!(
        "REPORT {} {} {} {} {} {}",
        report.mesh_simulated_ms,
        report.mesh_wall_ms,
        report.deliveries_per_second,
        report.bytes_per_second,
        report.peak_rss_mib,
        report.cpu_seconds,
    );
}

/// Messages each peer sends in `scenario`.
fn messages_per_peer(scenario: &str) -> usize {
    if scenario == "p2p_tokio" {
        P2P_MESSAGES
    } else {
        BROADCAST_MESSAGES
    }
}

fn sizing(scenario: &str, n: usize, name: &str) -> Sizing {
    match name {
        "project" => Sizing::project(n),
        "independent" => Sizing::independent(n, messages_per_peer(scenario)),
        other => panic!("unknown sizing {other}"),
    }
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
    let (values, stderr) = support::run_child("PALISADE_P2P_BENCH_CHILD", spec);
    for line in stderr.lines().filter(|l| l.contains("stalled")) {
        eprintln!("{spec}: {line} (a receive queue dropped messages)");
    }
    Report {
        mesh_simulated_ms: values[0],
        mesh_wall_ms: values[1],
        deliveries_per_second: values[2],
        bytes_per_second: values[3],
        peak_rss_mib: values[4],
        cpu_seconds: values[5],
    }
}

fn main() {
    if let Ok(spec) = std::env::var("PALISADE_P2P_BENCH_CHILD") {
        child(&spec);
        return;
    }
    let rounds = support::rounds();
    // `PALISADE_BENCH_SIZING`: `project`, `independent` or `both` (the default).
    let sizings: Vec<&str> = match std::env::var("PALISADE_BENCH_SIZING").as_deref() {
        Ok("project") => vec!["project"],
        Ok("independent") => vec!["independent"],
        _ => vec!["project", "independent"],
    };
    // `PALISADE_BENCH_ONLY=mesh_deterministic,50` runs the scenarios that start so.
    let only = std::env::var("PALISADE_BENCH_ONLY").unwrap_or_default();
    let scenarios: Vec<(&str, usize, &str)> = [
        ("mesh_deterministic", 25),
        ("mesh_deterministic", 50),
        ("mesh_tokio", 10),
        ("p2p_tokio", 2),
    ]
    .into_iter()
    .flat_map(|(scenario, n)| sizings.iter().map(move |sizing| (scenario, n, *sizing)))
    .filter(|(scenario, n, _)| format!("{scenario},{n}").starts_with(&only))
    .collect();
    let mut results: Vec<[Vec<Report>; 2]> =
        scenarios.iter().map(|_| [Vec::new(), Vec::new()]).collect();
    for round in 0..rounds {
        for (index, (scenario, n, sizing)) in scenarios.iter().enumerate() {
            // A-B in even rounds, B-A in odd ones.
            let order = if round % 2 == 0 {
                ["palisade", "commonware"]
            } else {
                ["commonware", "palisade"]
            };
            for which in order {
                let report = run_child(&format!("{scenario},{which},{n},{sizing}"));
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
    for (index, (scenario, n, sizing)) in scenarios.iter().enumerate() {
        let reports = &results[index];
        let sizing = format!("{sizing} sizing");
        match *scenario {
            "mesh_deterministic" => {
                row(
                    &format!("{n} peers, deterministic, {sizing}: time to full mesh, simulated"),
                    "ms",
                    &|r| r.mesh_simulated_ms,
                    reports,
                );
                row(
                    &format!("{n} peers, deterministic, {sizing}: time to full mesh, wall"),
                    "ms",
                    &|r| r.mesh_wall_ms,
                    reports,
                );
                row(
                    &format!("{n} peers, deterministic, {sizing}: broadcast 100 x 1 KiB per peer"),
                    "deliveries/s",
                    &|r| r.deliveries_per_second,
                    reports,
                );
                row(
                    &format!("{n} peers, deterministic, {sizing}: peak memory of the run"),
                    "MiB",
                    &|r| r.peak_rss_mib,
                    reports,
                );
                row(
                    &format!("{n} peers, deterministic, {sizing}: CPU time of the run"),
                    "s",
                    &|r| r.cpu_seconds,
                    reports,
                );
            }
            "mesh_tokio" => {
                row(
                    &format!("{n} peers, tokio, {sizing}: time to full mesh"),
                    "ms",
                    &|r| r.mesh_wall_ms,
                    reports,
                );
                row(
                    &format!("{n} peers, tokio, {sizing}: broadcast 100 x 1 KiB per peer"),
                    "deliveries/s",
                    &|r| r.deliveries_per_second,
                    reports,
                );
            }
            _ => {
                row(
                    &format!("2 peers, tokio, {sizing}: point-to-point 64 KiB"),
                    "MB/s",
                    &|r| r.bytes_per_second / 1e6,
                    reports,
                );
            }
        }
    }
}
