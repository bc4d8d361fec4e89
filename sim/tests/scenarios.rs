//! Whole runs of the real p2p stack through random faults: the invariants hold on every seed,
//! the mesh comes back within the stated bound, and a seed replays exactly.

use palisade_sim::{
    Action, Fault, Options, Report, Scenario, ScenarioError, Timing, Workload, run,
};
use rand::{RngExt as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

/// A small network with a random schedule of partitions, crashes and resets, all over by
/// 15 s of a 25 s run.
fn random_scenario(seed: u64) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let nodes = rng.random_range(3..=7);
    let mut faults = Vec::new();
    let mut at = SECOND * 2;
    for _ in 0..rng.random_range(1..=4) {
        at += Duration::from_millis(rng.random_range(0..3000));
        let lasts = Duration::from_millis(rng.random_range(100..3000));
        match rng.random_range(0..3) {
            0 => {
                let mut groups = vec![Vec::new(), Vec::new(), Vec::new()];
                for node in 0..nodes {
                    groups[rng.random_range(0..3)].push(node);
                }
                faults.push(Fault {
                    at,
                    action: Action::Partition { groups },
                });
                faults.push(Fault {
                    at: at + lasts,
                    action: Action::Heal,
                });
            }
            1 => {
                let node = rng.random_range(0..nodes);
                faults.push(Fault {
                    at,
                    action: Action::Crash { node },
                });
                faults.push(Fault {
                    at: at + lasts,
                    action: Action::Restart { node },
                });
            }
            _ => faults.push(Fault {
                at,
                action: Action::Resets {
                    per_second: rng.random_range(1.0..10.0),
                    until: at + lasts,
                },
            }),
        }
        // The next fault starts after this one is over, so crashes never overlap.
        at += lasts;
    }
    Scenario {
        nodes,
        outsiders: rng.random_range(0..=2),
        duration: SECOND * 25,
        latency: Duration::from_millis(rng.random_range(1..40)),
        jitter: Duration::from_millis(rng.random_range(0..20)),
        // Real links lose segments: up to 5%, each a stall of a retransmission timeout.
        loss_percent: rng.random_range(0.0..5.0),
        bandwidth_bytes_per_second: rng
            .random_bool(0.5)
            .then(|| rng.random_range(200_000..10_000_000)),
        workload: Workload {
            channel: rng.random_range(0..4),
            message_bytes: rng.random_range(20..4096),
            messages_per_second: rng.random_range(5.0..40.0),
            start: SECOND,
            stop: SECOND * 22,
        },
        faults,
        timing: Timing::default(),
        sample_interval: Duration::from_millis(50),
        consensus: None,
    }
}

/// Every invariant a correct run keeps.
fn assert_invariants(report: &Report) {
    let context = format!("seed {} scenario {:?}", report.seed, report.scenario);
    assert!(
        report.violations.none(),
        "{:?} in {context}",
        report.violations
    );
    let messages = &report.messages;
    assert_eq!(messages.outsider_recipients, 0, "{context}");
    assert!(messages.delivered > 0, "{context}");
    // Every message is accounted for: delivered, or not delivered for a counted reason.
    let accounted: u64 = messages.delivered + messages.not_delivered.values().sum::<u64>();
    assert_eq!(accounted, messages.sent, "{messages:?} in {context}");
    // Nothing is refused by a quota or a full queue under this workload.
    for reason in ["rate_limited_outbound", "queue_full", "backlog_full"] {
        assert_eq!(messages.not_delivered[reason], 0, "{reason} in {context}");
    }
    for pairs in &report.connected_pairs {
        assert!(pairs.connected <= pairs.possible, "{pairs:?} in {context}");
    }
    let mesh = &report.mesh;
    assert!(mesh.full_at_end, "{context}");
    let restored = mesh.restored_after_seconds.expect("restored");
    assert!(
        restored <= mesh.bound_seconds,
        "mesh back after {restored} s, bound {} s, in {context}",
        mesh.bound_seconds
    );
    assert!(report.latency.samples == messages.delivered);
    let one_way = report.scenario.latency.as_secs_f64() * 1000.0;
    assert!(report.latency.p50_ms >= one_way, "{context}");
}

#[test]
fn invariants_hold_over_many_seeds_with_random_faults() {
    let (mut restored, mut bounds, mut retransmissions) = (Vec::new(), Vec::new(), 0);
    for seed in 0..24 {
        let report = run(&random_scenario(seed), Options::seed(seed))
            .unwrap()
            .report;
        assert_invariants(&report);
        restored.push(report.mesh.restored_after_seconds.unwrap());
        bounds.push(report.mesh.bound_seconds);
        retransmissions += report.network.retransmissions;
    }
    // Every scenario loses segments (up to 5%), so the runs went through retransmissions.
    assert!(retransmissions > 0);
    restored.sort_by(f64::total_cmp);
    bounds.sort_by(f64::total_cmp);
    eprintln!(
        "mesh back after the last fault: {restored:.2?} s (bounds {:.1}-{:.1} s); \
         {retransmissions} retransmissions",
        bounds[0],
        bounds[bounds.len() - 1]
    );
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let scenario = random_scenario(100);
    let first = run(&scenario, Options::seed(7)).unwrap().report;
    let again = run(&scenario, Options::seed(7)).unwrap().report;
    assert_eq!(first.digest, again.digest);
    assert_eq!(first.messages.delivered, again.messages.delivered);
    assert_eq!(first.connected_pairs, again.connected_pairs);
    let other = run(&scenario, Options::seed(8)).unwrap().report;
    assert_ne!(first.digest, other.digest);
}

#[test]
fn the_standard_scenario_keeps_its_invariants_at_a_larger_size() {
    // `simulate --nodes 200` runs the same scenario at 200 members (see BENCHMARKS.md).
    let mut scenario = Scenario::standard(24, SECOND * 30);
    scenario.workload.messages_per_second = 4.0;
    let report = run(&scenario, Options::seed(3)).unwrap().report;
    assert_invariants(&report);
    // The partition splits 12/12 and cuts every one of the 144 pairs across.
    let during = report
        .connected_pairs
        .iter()
        .find(|pairs| pairs.at_seconds == 12)
        .unwrap();
    assert_eq!(during.connected, 2 * 66, "{:?}", report.connected_pairs);
    assert!(report.network.connections_reset >= 144);
    assert!(report.handshakes["inbound failed rejected_by_bouncer"] > 0);
}

#[test]
fn a_crashed_member_is_never_counted_among_connected_pairs() {
    let mut scenario = Scenario::standard(6, SECOND * 30);
    scenario.outsiders = 0;
    scenario.faults = vec![
        Fault {
            at: SECOND * 10,
            action: Action::Crash { node: 2 },
        },
        Fault {
            at: SECOND * 20,
            action: Action::Restart { node: 2 },
        },
    ];
    let report = run(&scenario, Options::seed(5)).unwrap().report;
    assert_invariants(&report);
    let at = |second| {
        report
            .connected_pairs
            .iter()
            .find(|pairs| pairs.at_seconds == second)
            .unwrap_or_else(|| panic!("no sample at {second} s"))
    };
    // The moment it is down (its peers notice only when their connections go silent), the
    // five others are a full mesh of 10 pairs, and nothing more is counted.
    for second in 11..20 {
        let pairs = at(second);
        assert_eq!((pairs.connected, pairs.possible), (10, 10), "{pairs:?}");
    }
    assert_eq!(at(29).connected, 15);
}

#[test]
fn a_bad_scenario_is_refused_before_anything_runs() {
    let scenario = Scenario {
        nodes: 0,
        ..Scenario::default()
    };
    assert_eq!(
        run(&scenario, Options::seed(1)).unwrap_err(),
        ScenarioError::NoNodes
    );
    let options = Options {
        metrics_of: Some(21),
        ..Options::seed(1)
    };
    assert_eq!(
        run(&Scenario::default(), options).unwrap_err(),
        ScenarioError::UnknownMetricsNode {
            node: 21,
            nodes: 21
        }
    );
}

#[test]
fn progress_and_one_nodes_metrics_are_reported() {
    let scenario = Scenario {
        faults: Vec::new(),
        ..Scenario::standard(4, SECOND * 6)
    };
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let options = Options {
        progress: Some(Box::new(move |progress| {
            sink.lock().unwrap().push(*progress)
        })),
        progress_every: SECOND * 2,
        metrics_of: Some(4),
        ..Options::seed(5)
    };
    let outcome = run(&scenario, options).unwrap();
    let seen = seen.lock().unwrap();
    let times: Vec<u64> = seen.iter().map(|progress| progress.at.as_secs()).collect();
    assert_eq!(times, [0, 2, 4, 6]);
    assert_eq!(seen.last().unwrap().connected_pairs, 6);
    // Node 4 is the outsider: every member refused it.
    let text = outcome.metrics.unwrap();
    assert!(text.contains("node_connected_peers{"), "{text}");
    assert!(
        text.lines()
            .all(|line| line.starts_with('#') || line.contains("index=\"4\""))
    );
    assert!(text.contains("outcome=\"failed\""), "{text}");
}
