//! The `simulate` command: a small run end to end, its JSON report, and clear errors for bad
//! scenarios (exit status 2, the problem named, no panic).

use std::process::{Command, Output};

fn simulate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simulate"))
        .args(args)
        .output()
        .expect("simulate runs")
}

fn refused(args: &[&str], expected: &str) {
    let output = simulate(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_small_run_reports_as_json_and_replays() {
    let args = [
        "--nodes",
        "4",
        "--duration",
        "8",
        "--seed",
        "9",
        "--json",
        "-",
        "--quiet",
    ];
    let output = simulate(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["seed"], 9);
    assert_eq!(report["scenario"]["nodes"], 4);
    assert!(report["messages"]["delivered"].as_u64().unwrap() > 0);
    assert_eq!(report["mesh"]["full_at_end"], true);
    let again: serde_json::Value = serde_json::from_slice(&simulate(&args).stdout).unwrap();
    assert_eq!(report["digest"], again["digest"]);
}

#[test]
fn the_summary_and_a_nodes_metrics_are_printed() {
    let output = simulate(&[
        "--nodes",
        "3",
        "--duration",
        "4",
        "--no-faults",
        "--metrics",
        "1",
    ]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "first full mesh after",
        "delivered",
        "latency (simulated)",
        "handshakes",
        "digest ",
        "# metrics of node 1",
        "node_connected_peers{",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected} missing from {stdout}"
        );
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("member pairs connected"),
        "no progress in {stderr}"
    );
}

#[test]
fn bad_scenarios_get_a_clear_error() {
    refused(&["--nodes", "0"], "at least one node");
    refused(&["--rate", "-1"], "workload.messages_per_second");
    refused(&["--crash", "7@1..2", "--nodes", "4"], "names node 7");
    refused(&["--resets", "-2@1..2"], "faults.resets.per_second");
    refused(&["--partition", "5..1"], "ends before it starts");
    refused(
        &["--duration", "10", "--partition", "5..20"],
        "after the run's end",
    );
    refused(
        &["--metrics", "99"],
        "metrics of node 99 asked for, but the nodes are 0..21",
    );
    refused(
        &["--bandwidth", "0"],
        "must be at least 1 (or absent, for unlimited), not 0",
    );
    refused(
        &["--json", "/nonexistent/folder/report.json"],
        "cannot write the report to /nonexistent/folder/report.json",
    );
    refused(&["--scenario", "/nonexistent/scenario.json"], "cannot read");
    refused(
        &["--loss-percent", "60"],
        "loss_percent must be from 0 to 50, not 60",
    );
    refused(
        &["--loss-percent", "-1"],
        "loss_percent must be from 0 to 50, not -1",
    );
    refused(
        &["--ping-interval", "-1"],
        "--ping-interval must be a finite number of at least zero, not -1",
    );
    refused(
        &["--ping-interval", "0"],
        "timing.ping_interval_seconds must be longer than zero",
    );
    refused(
        &["--max-silence", "inf"],
        "--max-silence must be a finite number of at least zero, not inf",
    );
    refused(
        &["--ping-interval", "10", "--max-silence", "10"],
        "timing.ping_interval_seconds (10s) must be shorter than timing.max_silence_seconds (10s)",
    );
}

#[test]
fn keepalive_flags_set_the_timing() {
    let printed = simulate(&[
        "--print-scenario",
        "--ping-interval",
        "5",
        "--max-silence",
        "30",
    ]);
    assert!(printed.status.success());
    let scenario: serde_json::Value = serde_json::from_slice(&printed.stdout).unwrap();
    assert_eq!(scenario["timing"]["ping_interval_seconds"], 5.0);
    assert_eq!(scenario["timing"]["max_silence_seconds"], 30.0);
}

#[test]
fn a_lossy_run_keeps_its_invariants_and_reports_the_retransmissions() {
    let args = [
        "--nodes",
        "5",
        "--duration",
        "12",
        "--seed",
        "4",
        "--loss-percent",
        "5",
        "--json",
        "-",
        "--quiet",
    ];
    let output = simulate(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["scenario"]["loss_percent"], 5.0);
    let retransmissions = report["network"]["retransmissions"].as_u64().unwrap();
    assert!(retransmissions > 0, "no retransmission at 5% loss");
    // Loss delays, never drops or reorders: the run passed its invariants (exit 0), and
    // the slowest deliveries waited at least one retransmission timeout (200 ms + the round
    // trip) beyond the link's delay.
    assert_eq!(report["mesh"]["full_at_end"], true);
    let max_ms = report["latency"]["max_ms"].as_f64().unwrap();
    assert!(max_ms > 300.0, "max latency {max_ms} ms");
    // The same run without loss has no retransmission, and its slowest delivery is faster.
    let lossless = simulate(&[
        "--nodes",
        "5",
        "--duration",
        "12",
        "--seed",
        "4",
        "--json",
        "-",
        "--quiet",
    ]);
    let lossless: serde_json::Value = serde_json::from_slice(&lossless.stdout).unwrap();
    assert_eq!(lossless["network"]["retransmissions"], 0);
    assert!(lossless["latency"]["max_ms"].as_f64().unwrap() < max_ms);
}

#[test]
fn a_scenario_file_round_trips() {
    let printed = simulate(&["--print-scenario", "--nodes", "3", "--duration", "5"]);
    assert!(printed.status.success());
    let directory = std::env::temp_dir().join(format!("palisade-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("scenario.json");
    std::fs::write(&path, &printed.stdout).unwrap();
    let path = path.to_str().unwrap();
    let output = simulate(&["--scenario", path, "--json", "-", "--quiet"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["scenario"]["nodes"], 3);
    std::fs::write(directory.join("bad.json"), b"{\"nodes\": 3}").unwrap();
    let bad = directory.join("bad.json");
    refused(
        &["--scenario", bad.to_str().unwrap()],
        "not a valid scenario",
    );
    std::fs::remove_dir_all(&directory).unwrap();
}

#[test]
fn the_consensus_workload_reports_finalization_and_fails_when_liveness_breaks() {
    let output = simulate(&[
        "--workload",
        "consensus",
        "--nodes",
        "4",
        "--duration",
        "10",
        "--no-faults",
        "--quiet",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("consensus (simplex, ed25519)"), "{stdout}");
    assert!(stdout.contains("held (safety"), "{stdout}");

    // A 2/2 partition that heals one second before the end: nothing can be finalized after
    // it in time, and the run says so with exit status 1.
    let output = simulate(&[
        "--workload",
        "consensus",
        "--nodes",
        "4",
        "--duration",
        "10",
        "--partition",
        "3..9",
        "--quiet",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("consensus invariant broken: liveness"),
        "{stderr}"
    );
}

#[test]
fn a_mesh_that_never_forms_fails_the_run() {
    // One-way latency of 50 s (`"latency_seconds": 50` in a scenario file): no dial
    // finishes within the run, and the run says so with exit status 1.
    let directory = std::env::temp_dir().join(format!("palisade-sim-mesh-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let printed = simulate(&[
        "--print-scenario",
        "--nodes",
        "3",
        "--duration",
        "5",
        "--no-faults",
    ]);
    let mut scenario: serde_json::Value = serde_json::from_slice(&printed.stdout).unwrap();
    scenario["latency_seconds"] = serde_json::json!(50.0);
    let path = directory.join("slow.json");
    std::fs::write(&path, scenario.to_string()).unwrap();
    let output = simulate(&["--scenario", path.to_str().unwrap(), "--quiet"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("never formed a full mesh"), "{stderr}");
    std::fs::remove_dir_all(&directory).unwrap();
}

#[test]
fn record_writes_an_event_log_that_agrees_with_the_report() {
    let folder = std::env::temp_dir().join(format!("palisade-cli-record-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let log = folder.join("run.ndjson");
    let log_arg = log.to_str().unwrap();
    let output = simulate(&[
        "--nodes",
        "4",
        "--duration",
        "8",
        "--seed",
        "3",
        "--json",
        "-",
        "--quiet",
        "--record",
        log_arg,
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let file = std::fs::File::open(&log).unwrap();
    let records = palisade_sim::record::read(std::io::BufReader::new(file)).unwrap();
    let Some(palisade_sim::record::Record::End(end)) = records.last() else {
        panic!("the log does not end with `end`");
    };
    assert_eq!(report["digest"], end.digest.as_str());
    assert_eq!(report["messages"]["delivered"], end.messages.delivered);
    // Where the log cannot be written is said before anything runs.
    let missing = folder.join("no-such-folder").join("run.ndjson");
    refused(
        &["--nodes", "3", "--record", missing.to_str().unwrap()],
        "cannot write the event log",
    );
    std::fs::remove_dir_all(&folder).unwrap();
}

#[test]
fn a_malformed_log_to_view_is_refused_naming_the_line() {
    let folder = std::env::temp_dir().join(format!("palisade-cli-view-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let good = folder.join("good.ndjson");
    let output = simulate(&[
        "--nodes",
        "3",
        "--duration",
        "3",
        "--no-faults",
        "--quiet",
        "--record",
        good.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    let log = std::fs::read_to_string(&good).unwrap();
    let mut lines: Vec<&str> = log.lines().collect();
    lines[4] = "{\"type\":\"sample\",\"at_seconds\":";
    let bad = folder.join("bad.ndjson");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    refused(
        &["--view", bad.to_str().unwrap(), "--serve", "127.0.0.1:0"],
        "is not an event log: line 5: not a record",
    );
    let missing = folder.join("missing.ndjson");
    refused(
        &[
            "--view",
            missing.to_str().unwrap(),
            "--serve",
            "127.0.0.1:0",
        ],
        "cannot read",
    );
    // Replaying needs somewhere to serve it.
    refused(&["--view", good.to_str().unwrap()], "--serve");
    refused(
        &["--serve", "127.0.0.1:0", "--speed", "0"],
        "--speed must be a number above zero",
    );
    std::fs::remove_dir_all(&folder).unwrap();
}
