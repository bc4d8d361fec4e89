//! A soak: a long run with churn and faults every simulated minute. Tasks, connections and
//! memory must stay flat; every invariant must hold to the end.
//!
//! CI runs 15 simulated minutes (about 45 s of a debug build). For hours: `PALISADE_SOAK_MINUTES=180 cargo test --release
//! -p palisade-sim --test soak -- --nocapture` (the figures are printed).

use palisade_sim::{Action, Fault, Options, Progress, Scenario, Timing, Workload, run};
use rand::{RngExt as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

const MEMBERS: usize = 8;

/// Every minute: a partition into random halves (10-18 s), a crash and restart of one
/// member (25-30 s), and two connection resets a second (40-45 s).
fn soak(minutes: u64) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(minutes);
    let second = |s: u64| Duration::from_secs(s);
    let mut faults = Vec::new();
    for minute in 0..minutes {
        let start = minute * 60;
        let mut nodes: Vec<usize> = (0..MEMBERS).collect();
        for i in (1..nodes.len()).rev() {
            nodes.swap(i, rng.random_range(0..=i));
        }
        let (left, right) = nodes.split_at(MEMBERS / 2);
        faults.push(Fault {
            at: second(start + 10),
            action: Action::Partition {
                groups: vec![left.to_vec(), right.to_vec()],
            },
        });
        faults.push(Fault {
            at: second(start + 18),
            action: Action::Heal,
        });
        let node = rng.random_range(0..MEMBERS);
        faults.push(Fault {
            at: second(start + 25),
            action: Action::Crash { node },
        });
        faults.push(Fault {
            at: second(start + 30),
            action: Action::Restart { node },
        });
        faults.push(Fault {
            at: second(start + 40),
            action: Action::Resets {
                per_second: 2.0,
                until: second(start + 45),
            },
        });
    }
    Scenario {
        nodes: MEMBERS,
        outsiders: 1,
        duration: second(minutes * 60),
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(10),
        loss_percent: 1.0,
        bandwidth_bytes_per_second: Some(10_000_000),
        workload: Workload {
            channel: 0,
            message_bytes: 256,
            messages_per_second: 2.0,
            start: second(1),
            stop: second(minutes * 60 - 5),
        },
        faults,
        timing: Timing::default(),
        sample_interval: Duration::from_millis(100),
        consensus: None,
    }
}

/// Resident memory of this process, in KiB.
fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_long_run_with_churn_keeps_tasks_connections_and_memory_flat() {
    let minutes: u64 = std::env::var("PALISADE_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(15);
    assert!(minutes >= 4, "a soak needs at least 4 minutes");
    let samples: Arc<Mutex<Vec<(Progress, u64)>>> = Arc::default();
    let sink = samples.clone();
    let options = Options {
        progress: Some(Box::new(move |progress| {
            sink.lock().unwrap().push((*progress, resident_kib()));
        })),
        progress_every: Duration::from_secs(60),
        ..Options::seed(42)
    };
    let report = run(&soak(minutes), options).unwrap().report;
    let samples = samples.lock().unwrap();
    for (progress, kib) in samples.iter() {
        eprintln!(
            "minute {:>4}: {:>3}/{} pairs, {:>4} tasks, {:>3} connections, {:>7} KiB resident, {} delivered",
            progress.at.as_secs() / 60,
            progress.connected_pairs,
            progress.possible_pairs,
            progress.tasks,
            progress.connections_open,
            kib,
            progress.delivered
        );
    }
    eprintln!(
        "{} minutes: {} of {} messages delivered, {} connections cut by faults, {} handshakes",
        minutes,
        report.messages.delivered,
        report.messages.sent,
        report.network.connections_reset,
        report.handshakes.values().sum::<u64>()
    );
    assert!(report.violations.none(), "{:?}", report.violations);
    assert!(report.mesh.full_at_end);
    let accounted: u64 =
        report.messages.delivered + report.messages.not_delivered.values().sum::<u64>();
    assert_eq!(accounted, report.messages.sent);
    // At each minute mark every fault is over and the mesh is whole: the same state, so the
    // same tasks and connections, whatever came before. The first two minutes warm up; the
    // last mark is the end, after the workload's senders finished.
    let settled: Vec<&(Progress, u64)> = samples[2..samples.len() - 1].iter().collect();
    let pairs = (MEMBERS * (MEMBERS - 1) / 2) as u64;
    for (progress, _) in &settled {
        assert_eq!(progress.connected_pairs, pairs, "{progress:?}");
        // The outsider's refused attempts come and go (at most one towards each member);
        // members' connections stay.
        assert!(
            progress.connections_open <= pairs + MEMBERS as u64,
            "{progress:?}"
        );
    }
    let tasks: Vec<u64> = settled.iter().map(|(p, _)| p.tasks).collect();
    // The outsider's attempts under way at a mark add a few tasks each (its dial, the
    // member's handshake); nothing else may change.
    let slack = 3 * MEMBERS as u64;
    assert!(
        tasks.iter().all(|&t| t.abs_diff(tasks[0]) <= slack),
        "tasks changed: {tasks:?}"
    );
    // Memory: what the allocator holds may wobble, and the report keeps one sample of
    // connected pairs per simulated second (24 bytes each); beyond that it must not climb.
    let memory: Vec<u64> = settled.iter().map(|(_, kib)| *kib).collect();
    let half = memory.len() / 2;
    let early = *memory[..half.max(1)].iter().max().unwrap();
    let late = *memory[half..].iter().max().unwrap();
    assert!(
        late <= early + early / 10 + 2048,
        "resident memory grew from {early} KiB to {late} KiB: {memory:?}"
    );
}
