//! The README's demo, run on the deterministic simulator: same story as over TCP, replayable.

use commonware_runtime::{Runner as _, deterministic};
use palisade_examples::{Report, handshake_demo};

fn run(seed: u64) -> (Report, String) {
    deterministic::Runner::seeded(seed).start(|context| async move {
        let auditor = context.auditor();
        let report = handshake_demo(context, "127.0.0.1:4000".parse().unwrap()).await;
        (report, auditor.state())
    })
}

#[test]
fn demo_connects_the_known_peer_and_refuses_the_stranger() {
    let (report, _) = run(1);
    assert_eq!(report.echoes_received, 3);
    assert_eq!(report.stranger_refusal, Some("rejected_by_bouncer"));
    assert!(
        report
            .events
            .iter()
            .any(|line| line == "bob saw an authenticated close")
    );
}

#[test]
fn demo_replays_identically_from_the_same_seed() {
    for seed in [1, 2, 3] {
        assert_eq!(run(seed), run(seed), "seed {seed}");
    }
}
