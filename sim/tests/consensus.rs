//! simplex consensus on palisade-p2p over palisade-sim: validators finalize and agree, through
//! crashes, restarts and partitions, and the same seed gives the same run. Every run is
//! bounded in simulated time, so a regression fails instead of hanging.

use palisade_sim::{Action, Fault, Options, Scenario, consensus::Summary, run};
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

/// `nodes` validators, no outsider, consensus only, with `faults`.
fn scenario(nodes: usize, seconds: u32, faults: Vec<Fault>) -> Scenario {
    let mut scenario = Scenario::consensus(nodes, SECOND * seconds);
    scenario.outsiders = 0;
    scenario.faults = faults;
    scenario
}

fn at(seconds: u32, action: Action) -> Fault {
    Fault {
        at: SECOND * seconds,
        action,
    }
}

fn consensus_of(scenario: &Scenario, seed: u64) -> (Summary, String) {
    let report = run(scenario, Options::seed(seed)).unwrap().report;
    assert!(report.violations.none(), "{:?}", report.violations);
    let consensus = report
        .consensus
        .expect("a consensus scenario reports consensus");
    (consensus, report.digest)
}

#[test]
fn four_and_seven_validators_finalize_and_agree() {
    for nodes in [4, 7] {
        let (consensus, _) = consensus_of(&scenario(nodes, 10, Vec::new()), 1);
        assert!(consensus.broken().is_empty(), "{:?}", consensus.broken());
        assert_eq!(consensus.conflicting_finalizations, 0);
        // 50-70 ms links: a view takes a few one-way delays.
        assert!(consensus.finalized_views >= 30, "{nodes}: {consensus:?}");
        assert!(consensus.latency_p50_ms < 500.0, "{nodes}: {consensus:?}");
        // Every member finalized to within a few views of the highest.
        assert!(
            consensus.lowest_member_view + 3 >= consensus.highest_view,
            "{nodes}: {consensus:?}"
        );
    }
}

#[test]
fn with_f_members_down_the_rest_still_finalize() {
    // 7 validators tolerate f = 2 faults: members 5 and 6 crash at 2 s and stay down.
    let faults = vec![
        at(2, Action::Crash { node: 5 }),
        at(2, Action::Crash { node: 6 }),
    ];
    let (consensus, _) = consensus_of(&scenario(7, 12, faults), 2);
    assert!(consensus.broken().is_empty(), "{:?}", consensus.broken());
    // Finalization goes on without them (their leader views time out, the others do not).
    assert!(
        consensus.resumed_after_last_fault_seconds.unwrap() < 3.0,
        "{consensus:?}"
    );
    assert!(consensus.finalized_views >= 20, "{consensus:?}");
}

#[test]
fn a_restarted_member_rejoins_and_catches_up() {
    let faults = vec![
        at(3, Action::Crash { node: 2 }),
        at(6, Action::Restart { node: 2 }),
    ];
    let (consensus, _) = consensus_of(&scenario(4, 12, faults), 3);
    assert!(consensus.broken().is_empty(), "{:?}", consensus.broken());
    // The restarted member caught up: its highest finalized view is near everyone's.
    assert!(
        consensus.lowest_member_view + 3 >= consensus.highest_view,
        "{consensus:?}"
    );
}

#[test]
fn a_partition_without_quorum_stops_finalization_and_healing_resumes_it() {
    // 2 + 2 of 4: neither side has the 3 votes a certificate needs.
    let faults = vec![
        at(
            3,
            Action::Partition {
                groups: vec![vec![0, 1], vec![2, 3]],
            },
        ),
        at(8, Action::Heal),
    ];
    let (consensus, _) = consensus_of(&scenario(4, 25, faults), 4);
    assert!(consensus.broken().is_empty(), "{:?}", consensus.broken());
    // Nothing was finalized for (almost) the whole partition.
    assert!(consensus.longest_stall_seconds >= 4.5, "{consensus:?}");
    let resumed = consensus.resumed_after_last_fault_seconds.unwrap();
    assert!(resumed <= consensus.resume_bound_seconds, "{consensus:?}");
}

#[test]
fn same_seed_same_run_and_another_seed_another() {
    let faults = vec![
        at(2, Action::Crash { node: 1 }),
        at(4, Action::Restart { node: 1 }),
    ];
    let scenario = scenario(4, 6, faults);
    let (first, digest) = consensus_of(&scenario, 5);
    let (again, digest_again) = consensus_of(&scenario, 5);
    assert_eq!(digest, digest_again);
    assert_eq!(first, again);
    let (_, other) = consensus_of(&scenario, 6);
    assert_ne!(digest, other);
}

#[test]
fn the_reference_stack_runs_the_same_consensus_over_the_same_links() {
    // commonware-p2p lookup (SakeCups) in its `local` preset on every member instead of
    // palisade-p2p: what the side-by-side benchmark compares against.
    let report = run(
        &scenario(4, 8, Vec::new()),
        Options {
            stack: palisade_sim::Stack::LookupLocal,
            ..Options::seed(7)
        },
    )
    .unwrap()
    .report;
    let consensus = report.consensus.unwrap();
    assert!(consensus.broken().is_empty(), "{:?}", consensus.broken());
    assert!(consensus.finalized_views >= 10, "{consensus:?}");
    // Nothing went through palisade's handshake: the reference did the work.
    assert!(report.handshakes.is_empty(), "{:?}", report.handshakes);
}
