//! How a `node` process starts, is fed and stops: a taken listen port ends it with a message
//! naming the address; SIGTERM and SIGINT close every connection with the authenticated close
//! (the peer sees a clean close, not a cut connection) and exit 0 leaving no folder behind;
//! lines pasted before any peer is up, faster than the quota, all arrive in order.

use std::{
    io::Write as _,
    net::TcpListener,
    process::{Command, Stdio},
    time::Duration,
};

mod support;

use support::{
    Folder, NodeFiles, Running, exit_code, metrics, metrics_within, sample, signal, wait_until,
};

const NODE: &str = env!("CARGO_BIN_EXE_node");

/// Generous safety nets: each wait ends on the event itself.
const MESH: Duration = support::SAFETY_NET;
const EXIT: Duration = support::SAFETY_NET;

fn connected(port: u16) -> Option<f64> {
    metrics(port).and_then(|text| sample(&text, "p2p_connected_peers"))
}

#[test]
fn a_taken_listen_port_stops_the_node_naming_the_address() {
    let folder = Folder::new("taken");
    let files = NodeFiles::write(NODE, &folder, 2, "");
    let _taken = TcpListener::bind(("127.0.0.1", files.listen[0])).unwrap();
    let stderr = run_to_exit(&files.configs[0], None, 1);
    let expected = format!("node: cannot listen on 127.0.0.1:{}", files.listen[0]);
    assert!(stderr.contains(&expected), "{expected:?} not in {stderr}");
    // The library's own error event, and the node's info lines by default...
    assert!(
        stderr.contains("ERROR") && stderr.contains("the network stops"),
        "{stderr}"
    );
    assert!(stderr.contains("metrics at http://"), "{stderr}");
    // ...which RUST_LOG can silence.
    let quiet = run_to_exit(&files.configs[0], Some("error"), 1);
    assert!(!quiet.contains("metrics at http://"), "{quiet}");
    assert!(quiet.contains("the network stops"), "{quiet}");
}

/// Runs `node run CONFIG` (with `RUST_LOG` set to `log`, if given) until it exits by itself;
/// checks its exit code and returns what it wrote on standard error.
fn run_to_exit(config: &std::path::Path, log: Option<&str>, expected_code: i32) -> String {
    // Spawned, not `output()`: a node that wrongly keeps running fails the test at the
    // safety net instead of hanging it.
    let mut command = Command::new(NODE);
    command
        .arg("run")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env_remove("RUST_LOG");
    if let Some(log) = log {
        command.env("RUST_LOG", log);
    }
    let mut child = command.spawn().unwrap();
    let code = exit_code(&mut child, EXIT);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(code, Some(expected_code), "{stderr}");
    stderr
}

/// Stops node 0 of a two-node mesh with `name` and checks what both sides saw.
fn stops_gracefully_on(name: &str) {
    let folder = Folder::new(&format!("stop-{name}"));
    let files = NodeFiles::write(NODE, &folder, 2, "");
    // The runtime's storage folder goes to this test's own temporary folder.
    let temp = folder.0.join("tmp");
    std::fs::create_dir_all(&temp).unwrap();
    let env = [("TMPDIR", temp.as_path())];
    let mut nodes: Vec<Running> = files
        .configs
        .iter()
        .map(|config| Running::start_with(NODE, &["run", config.to_str().unwrap()], &env))
        .collect();
    wait_until("a connected pair", MESH, || {
        (0..2).all(|i| connected(files.metrics[i]) == Some(1.0))
    });
    let storage = temp.join(format!("palisade-node-{}", nodes[0].child.id()));
    assert!(storage.exists(), "{} while running", storage.display());

    signal(&nodes[0].child, name);
    assert_eq!(
        exit_code(&mut nodes[0].child, EXIT),
        Some(0),
        "after SIG{name}"
    );
    assert!(!storage.exists(), "{} left behind", storage.display());
    // The survivor saw the stream's authenticated close, never a cut connection.
    wait_until("the peer seeing the close", MESH, || {
        connected(files.metrics[1]) == Some(0.0)
    });
    let text = metrics_within(files.metrics[1], MESH);
    assert_eq!(
        sample(&text, "p2p_connections_closed_total{reason=\"closed\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "p2p_connections_closed_total{reason=\"io\"}"),
        None,
        "{text}"
    );
}

#[test]
fn sigterm_closes_every_connection_and_exits_zero() {
    stops_gracefully_on("TERM");
}

#[test]
fn sigint_closes_every_connection_and_exits_zero() {
    stops_gracefully_on("INT");
}

#[test]
fn lines_pasted_before_any_peer_and_beyond_the_quota_all_arrive_in_order() {
    const LINES: usize = 500;
    let folder = Folder::new("paste");
    // 20 messages a second: 500 lines take about 25 s of quota, far more than a burst.
    let files = NodeFiles::write(
        NODE,
        &folder,
        2,
        "[[channels]]\nid = 0\nmessages_per_second = 20\nbacklog = 64",
    );
    let mut sender = Running::start(NODE, &["run", files.configs[0].to_str().unwrap()]);
    // Pasted while node 1 is not even running: the lines wait rather than vanish.
    let pasted: String = (0..LINES).map(|i| format!("line {i:03}\n")).collect();
    sender.stdin.write_all(pasted.as_bytes()).unwrap();
    sender.stdin.flush().unwrap();
    let receiver = Running::start(NODE, &["run", files.configs[1].to_str().unwrap()]);
    let received = receiver.lines_with("line ", LINES, Duration::from_secs(180));
    let texts: Vec<&str> = received
        .iter()
        .map(|line| line.split_once(": ").unwrap().1)
        .collect();
    let expected: Vec<String> = (0..LINES).map(|i| format!("line {i:03}")).collect();
    assert_eq!(texts, expected);
    let text = metrics_within(files.metrics[0], MESH);
    assert_eq!(
        sample(
            &text,
            "p2p_messages_total{channel=\"0\",direction=\"outbound\",fate=\"sent\"}"
        ),
        Some(LINES as f64),
        "{text}"
    );
}

#[test]
fn peers_named_by_host_name_connect() {
    let folder = Folder::new("names");
    let files = NodeFiles::write(NODE, &folder, 2, "");
    // Every peer address as `localhost:PORT`, which may resolve to ::1 before 127.0.0.1.
    for config in &files.configs {
        let text = std::fs::read_to_string(config).unwrap();
        let named = text.replace("address = \"127.0.0.1:", "address = \"localhost:");
        assert_ne!(text, named);
        std::fs::write(config, named).unwrap();
    }
    let _nodes: Vec<Running> = files
        .configs
        .iter()
        .map(|config| Running::start(NODE, &["run", config.to_str().unwrap()]))
        .collect();
    wait_until("a connected pair over names", MESH, || {
        (0..2).all(|i| connected(files.metrics[i]) == Some(1.0))
    });
}
