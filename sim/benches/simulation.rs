//! How fast and how large a simulation runs: wall-clock seconds per simulated second and peak
//! memory, with every member broadcasting a steady workload.
//!
//! Three setups, each in a fresh child process (this binary, re-executed) so that its peak
//! resident memory is its own:
//!
//! - `sim`: a whole `palisade_sim::run`: palisade-p2p on every node over the simulated
//!   network (50 ms links, up to 20 ms of jitter, 10 MB/s per node), the deliveries checked.
//! - `plain palisade` and `plain commonware`: palisade-p2p, and commonware-p2p's
//!   `authenticated::lookup`, on the deterministic runtime's own network (no latency, no
//!   bandwidth limit), with the same workload: the reference's setup, for scale.
//!
//! The workload: every member broadcasts a 1 KiB message [`RATE`] times a simulated second
//! from [`WORKLOAD_START`]; wall time is measured over the simulated window
//! [`MEASURE_FROM`]..[`MEASURE_UNTIL`], after the mesh formed. Figures are medians over
//! rounds (`PALISADE_BENCH_ROUNDS`, default 3).
//!
//! `cargo bench -p palisade-sim --bench simulation`.

#[path = "../../p2p/benches/support/mod.rs"]
mod support;

use commonware_runtime::{
    Clock as _, IoBuf, Runner as _, Spawner as _, Supervisor as _, deterministic,
};
use palisade_sim::{Options, Scenario, run};
use std::{
    sync::{Arc, Mutex, atomic::Ordering},
    time::{Duration, Instant, UNIX_EPOCH},
};
use support::{Implementation, median, peak_rss_mib, start, wait_for_mesh};

/// Broadcasts per member per simulated second.
const RATE: u32 = 5;
const MESSAGE_BYTES: usize = 1024;
const WORKLOAD_START: Duration = Duration::from_secs(2);
const MEASURE_FROM: Duration = Duration::from_secs(5);
const MEASURE_UNTIL: Duration = Duration::from_secs(15);

/// What a child reports.
#[derive(Clone, Copy, Debug, Default)]
struct Figures {
    wall_per_simulated_second: f64,
    deliveries_per_simulated_second: f64,
    peak_rss_mib: f64,
}

/// A whole palisade-sim run of `nodes` members without faults.
fn sim(nodes: usize) -> Figures {
    let mut scenario = Scenario::standard(nodes, MEASURE_UNTIL);
    scenario.faults.clear();
    scenario.outsiders = 0;
    scenario.workload.messages_per_second = f64::from(RATE);
    scenario.workload.message_bytes = MESSAGE_BYTES;
    scenario.workload.start = WORKLOAD_START;
    scenario.workload.stop = MEASURE_UNTIL;
    let marks: Arc<Mutex<Vec<(Duration, Instant, u64)>>> = Arc::default();
    let sink = marks.clone();
    let options = Options {
        progress: Some(Box::new(move |progress| {
            sink.lock()
                .unwrap()
                .push((progress.at, Instant::now(), progress.delivered));
        })),
        progress_every: MEASURE_FROM,
        ..Options::seed(1)
    };
    let report = run(&scenario, options).expect("valid").report;
    assert!(report.violations.none(), "{:?}", report.violations);
    let marks = marks.lock().unwrap();
    let at = |time: Duration| {
        *marks
            .iter()
            .find(|(at, _, _)| *at >= time)
            .unwrap_or_else(|| panic!("no progress at {time:?}: {marks:?}"))
    };
    let (from, until) = (at(MEASURE_FROM), at(MEASURE_UNTIL));
    figures(until.1 - from.1, until.2 - from.2)
}

/// palisade-p2p or commonware-p2p on the deterministic runtime's own network.
fn plain(which: Implementation, nodes: usize) -> Figures {
    deterministic::Runner::seeded(1).start(|context| async move {
        let ports: Vec<u16> = (0..nodes as u16).map(|i| 3000 + i).collect();
        let mut started = start(&context, which, &ports, support::Sizing::project(nodes)).await;
        wait_for_mesh(&context, &mut started).await;
        let interval = Duration::from_secs(1) / RATE;
        for (index, mut sender) in started.data.drain(..).enumerate() {
            // Spread the members' sends over the interval, as the simulation does.
            let phase = interval * index as u32 / nodes as u32;
            context
                .child("workload")
                .with_attribute("index", index)
                .spawn(move |context| async move {
                    let message = IoBuf::from(vec![7u8; MESSAGE_BYTES]);
                    let mut next = UNIX_EPOCH + WORKLOAD_START + phase;
                    loop {
                        context.sleep_until(next).await;
                        sender.send(None, message.clone()).await;
                        next += interval;
                    }
                });
        }
        context.sleep_until(UNIX_EPOCH + MEASURE_FROM).await;
        let (wall, delivered) = (Instant::now(), started.delivered.load(Ordering::Relaxed));
        context.sleep_until(UNIX_EPOCH + MEASURE_UNTIL).await;
        let now = started.delivered.load(Ordering::Relaxed);
        figures(wall.elapsed(), (now - delivered) as u64)
    })
}

fn figures(wall: Duration, deliveries: u64) -> Figures {
    let window = (MEASURE_UNTIL - MEASURE_FROM).as_secs_f64();
    Figures {
        wall_per_simulated_second: wall.as_secs_f64() / window,
        deliveries_per_simulated_second: deliveries as f64 / window,
        peak_rss_mib: 0.0,
    }
}

fn child(spec: &str) {
    let (setup, nodes) = spec.split_once(',').expect("setup,nodes");
    let nodes: usize = nodes.parse().expect("nodes");
    let mut figures = match setup {
        "sim" => sim(nodes),
        "plain_palisade" => plain(Implementation::Palisade, nodes),
        "plain_commonware" => plain(Implementation::Commonware, nodes),
        other => panic!("unknown setup {other}"),
    };
    figures.peak_rss_mib = peak_rss_mib();
    println!(
        "REPORT {} {} {}",
        figures.wall_per_simulated_second,
        figures.deliveries_per_simulated_second,
        figures.peak_rss_mib
    );
}

fn run_child(spec: &str) -> Figures {
    let (values, _) = support::run_child("PALISADE_SIM_BENCH_CHILD", spec);
    Figures {
        wall_per_simulated_second: values[0],
        deliveries_per_simulated_second: values[1],
        peak_rss_mib: values[2],
    }
}

fn main() {
    if let Ok(spec) = std::env::var("PALISADE_SIM_BENCH_CHILD") {
        child(&spec);
        return;
    }
    let rounds = support::rounds();
    let setups = [
        ("sim", 50),
        ("plain_palisade", 50),
        ("plain_commonware", 50),
        ("sim", 200),
    ];
    let mut results: Vec<Vec<Figures>> = setups.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for (index, (setup, nodes)) in setups.iter().enumerate() {
            let figures = run_child(&format!("{setup},{nodes}"));
            eprintln!("round {}: {setup} {nodes}: {figures:?}", round + 1);
            results[index].push(figures);
        }
    }
    println!(
        "\nmedians of {rounds} rounds; {RATE} broadcasts of {MESSAGE_BYTES} B per member per simulated second\n"
    );
    println!(
        "| setup | members | wall s per simulated s | deliveries per simulated s | peak memory (MiB) |"
    );
    println!("|---|---|---|---|---|");
    for ((setup, nodes), figures) in setups.iter().zip(&results) {
        let pick = |f: fn(&Figures) -> f64| median(figures.iter().map(f).collect());
        println!(
            "| {setup} | {nodes} | {:.2} | {:.0} | {:.0} |",
            pick(|f| f.wall_per_simulated_second),
            pick(|f| f.deliveries_per_simulated_second),
            pick(|f| f.peak_rss_mib)
        );
    }
}
