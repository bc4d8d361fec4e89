//! simplex consensus on palisade-p2p and on the reference, commonware-p2p's `lookup` with
//! SakeCups (in its `recommended` and its `local` preset), over the very same simulated links,
//! same scenario, same seeds.
//!
//! The scenario is `Scenario::consensus` at [`MEMBERS`] members without the outsider: 60
//! simulated seconds of 50 ms (+ up to 20 ms) links at 10 MB/s, a partition into halves from
//! 20 to 28 s, a crash of member 3 from 33 to 38 s and random resets from 40 to 45 s. (With an
//! outsider that keeps dialing members that refuse it, the reference's dial loop never lets
//! simulated time move on, so the outsider is left out for every stack.)
//!
//! Each run is a child process (this binary, re-executed) so its peak resident memory is its
//! own. Figures are medians over seeds 1..=`PALISADE_BENCH_ROUNDS` (default 3); ratios are
//! palisade / reference.
//!
//! `cargo bench -p palisade-sim --bench consensus`.

#[path = "../../p2p/benches/support/mod.rs"]
mod support;

use palisade_sim::{Options, Scenario, Stack, run};
use std::time::{Duration, Instant};
use support::{median, peak_rss_mib};

const MEMBERS: usize = 20;
const SECONDS: u64 = 60;

/// What a child reports.
#[derive(Clone, Copy, Debug, Default)]
struct Figures {
    p50_ms: f64,
    p99_ms: f64,
    views_per_second: f64,
    resumed_after_partition_s: f64,
    wall_per_simulated_second: f64,
    peak_rss_mib: f64,
}

const STACKS: [(&str, Stack); 3] = [
    ("palisade", Stack::Palisade),
    ("lookup recommended", Stack::LookupRecommended),
    ("lookup local", Stack::LookupLocal),
];

fn scenario() -> Scenario {
    let mut scenario = Scenario::consensus(MEMBERS, Duration::from_secs(SECONDS));
    scenario.outsiders = 0;
    scenario
}

/// From the heal of the partition (28 s) to the first view finalized after it: the same run
/// cut at the heal plus 30 s, so the heal is its last fault. Infinite if nothing was
/// finalized in those 30 s.
fn resumed_after_partition(stack: Stack, seed: u64) -> f64 {
    let mut scenario = scenario();
    let heal = scenario
        .faults
        .iter()
        .find(|fault| matches!(fault.action, palisade_sim::Action::Heal))
        .expect("the standard faults heal a partition")
        .at;
    scenario.faults.retain(|fault| fault.at <= heal);
    scenario.duration = heal + Duration::from_secs(30);
    let report = run(
        &scenario,
        Options {
            stack,
            ..Options::seed(seed)
        },
    )
    .expect("valid")
    .report;
    let consensus = report.consensus.expect("consensus runs");
    consensus
        .resumed_after_last_fault_seconds
        .unwrap_or(f64::INFINITY)
}

fn child(spec: &str) {
    let (stack, seed) = spec.split_once(',').expect("stack,seed");
    let stack = STACKS
        .iter()
        .find(|(name, _)| *name == stack)
        .expect("known stack")
        .1;
    let seed: u64 = seed.parse().expect("seed");
    let wall = Instant::now();
    let report = run(
        &scenario(),
        Options {
            stack,
            ..Options::seed(seed)
        },
    )
    .expect("valid")
    .report;
    let wall = wall.elapsed();
    let consensus = report.consensus.expect("consensus runs");
    // Safety must hold on every stack; liveness is what the figures measure.
    assert_eq!(consensus.conflicting_finalizations, 0, "{consensus:?}");
    let peak = peak_rss_mib();
    let resumed = resumed_after_partition(stack, seed);
    println!(
        "REPORT {} {} {} {} {} {}",
        consensus.latency_p50_ms,
        consensus.latency_p99_ms,
        consensus.views_per_second,
        resumed,
        wall.as_secs_f64() / SECONDS as f64,
        peak
    );
}

fn run_child(spec: &str) -> Figures {
    let (values, _) = support::run_child("PALISADE_CONSENSUS_BENCH_CHILD", spec);
    Figures {
        p50_ms: values[0],
        p99_ms: values[1],
        views_per_second: values[2],
        resumed_after_partition_s: values[3],
        wall_per_simulated_second: values[4],
        peak_rss_mib: values[5],
    }
}

fn main() {
    if let Ok(spec) = std::env::var("PALISADE_CONSENSUS_BENCH_CHILD") {
        child(&spec);
        return;
    }
    let rounds = support::rounds();
    let mut results: Vec<Vec<Figures>> = STACKS.iter().map(|_| Vec::new()).collect();
    for seed in 1..=rounds as u64 {
        // Alternate the order per seed, so no stack always runs on a warm or a cold machine.
        let order: Vec<usize> = if seed % 2 == 1 {
            (0..STACKS.len()).collect()
        } else {
            (0..STACKS.len()).rev().collect()
        };
        for index in order {
            let (name, _) = STACKS[index];
            let figures = run_child(&format!("{name},{seed}"));
            eprintln!("seed {seed}: {name}: {figures:?}");
            results[index].push(figures);
        }
    }
    let pick =
        |figures: &[Figures], f: fn(&Figures) -> f64| median(figures.iter().map(f).collect());
    println!(
        "\nsimplex on {MEMBERS} members, {SECONDS} simulated s with the standard faults; medians over seeds 1..={rounds}\n"
    );
    println!(
        "| stack | latency p50 (ms) | latency p99 (ms) | views / simulated s | resumed after heal (s) | wall s / simulated s | peak memory (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for ((name, _), figures) in STACKS.iter().zip(&results) {
        println!(
            "| {name} | {:.1} | {:.1} | {:.2} | {:.2} | {:.3} | {:.0} |",
            pick(figures, |f| f.p50_ms),
            pick(figures, |f| f.p99_ms),
            pick(figures, |f| f.views_per_second),
            pick(figures, |f| f.resumed_after_partition_s),
            pick(figures, |f| f.wall_per_simulated_second),
            pick(figures, |f| f.peak_rss_mib),
        );
    }
    let palisade = &results[0];
    for (index, (name, _)) in STACKS.iter().enumerate().skip(1) {
        let reference = &results[index];
        let ratio = |f: fn(&Figures) -> f64| pick(palisade, f) / pick(reference, f);
        println!(
            "\npalisade / {name}: latency p50 {:.2}x (target <= 1.0x), p99 {:.2}x, views/s {:.2}x, \
             resume after heal {:.2}x (target <= 0.5x), wall {:.2}x (target <= 1.0x), memory {:.2}x \
             (target <= 0.5x)",
            ratio(|f| f.p50_ms),
            ratio(|f| f.p99_ms),
            ratio(|f| f.views_per_second),
            ratio(|f| f.resumed_after_partition_s),
            ratio(|f| f.wall_per_simulated_second),
            ratio(|f| f.peak_rss_mib),
        );
    }
}
