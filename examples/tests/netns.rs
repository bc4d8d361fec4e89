//! Real multi-host runs: three `node` processes, each in a network namespace of its own,
//! joined by veth pairs to a bridge, reach a full mesh over real TCP/IP and deliver every
//! broadcast. Links get 20 ms (+ up to 5 ms) of delay and 1% loss with `tc netem` where the
//! kernel has it. The test creates everything it uses and removes it at the end.
//!
//! It needs root and `ip` (iproute2), so `cargo test` lists it as ignored rather than pass it
//! without running it; CI runs it with
//! `cargo test -p palisade-examples --test netns -- --ignored`, and there it fails, saying
//! why, if the namespaces cannot be made.

mod support;

use std::{
    io::Write as _,
    process::Command,
    time::{Duration, Instant},
};
use support::{Folder, Running};

const NODE: &str = env!("CARGO_BIN_EXE_node");
const HOSTS: usize = 3;
const LINES_PER_HOST: usize = 5;

/// Runs `ip` with `args`; the error is its standard error.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|error| format!("cannot run `ip`: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}`: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The namespaces this test made; deleted (with their veths and bridge) when dropped.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// A bridge namespace and `HOSTS` host namespaces, host `i` at 10.77.0.(i+1) on a veth
/// whose other end is on the bridge. Returns the namespaces and whether netem is on.
fn make_hosts(tag: &str) -> Result<(Namespaces, Vec<String>, bool), String> {
    let bridge = format!("{tag}br");
    let mut made = Namespaces(Vec::new());
    ip(&["netns", "add", &bridge])?;
    made.0.push(bridge.clone());
    ip(&["-n", &bridge, "link", "add", "br0", "type", "bridge"])?;
    ip(&["-n", &bridge, "link", "set", "br0", "up"])?;
    let mut hosts = Vec::new();
    let mut netem = true;
    for index in 0..HOSTS {
        let host = format!("{tag}h{index}");
        ip(&["netns", "add", &host])?;
        made.0.push(host.clone());
        let (inside, outside) = (format!("eth{index}"), format!("port{index}"));
        ip(&[
            "link", "add", &inside, "netns", &host, "type", "veth", "peer", "name", &outside,
            "netns", &bridge,
        ])?;
        ip(&["-n", &bridge, "link", "set", &outside, "master", "br0"])?;
        ip(&["-n", &bridge, "link", "set", &outside, "up"])?;
        let address = format!("10.77.0.{}/24", index + 1);
        ip(&["-n", &host, "addr", "add", &address, "dev", &inside])?;
        ip(&["-n", &host, "link", "set", &inside, "up"])?;
        ip(&["-n", &host, "link", "set", "lo", "up"])?;
        let shaped = Command::new("tc")
            .args(["-n", &host, "qdisc", "add", "dev", &inside, "root", "netem"])
            .args(["delay", "20ms", "5ms", "loss", "1%"])
            .output()
            .is_ok_and(|output| output.status.success());
        netem &= shaped;
        hosts.push(host);
    }
    Ok((made, hosts, netem))
}

/// The body of `GET /metrics` from the node in namespace `host`, fetched inside it.
fn metrics(host: &str) -> String {
    let script = "exec 3<>/dev/tcp/127.0.0.1/9100 && printf 'GET /metrics HTTP/1.1\\r\\n\\r\\n' >&3 && cat <&3";
    Command::new("ip")
        .args(["netns", "exec", host, "bash", "-c", script])
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default()
}

fn connected(host: &str) -> Option<u64> {
    metrics(host)
        .lines()
        .find(|line| line.starts_with("p2p_connected_peers "))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

#[test]
#[ignore = "needs root and iproute2: cargo test -p palisade-examples --test netns -- --ignored"]
fn nodes_in_separate_network_namespaces_mesh_and_deliver_every_broadcast() {
    let tag = format!("pal{}", std::process::id() % 100_000);
    let (namespaces, hosts, netem) = match make_hosts(&tag) {
        Ok(made) => made,
        Err(reason) => panic!("network namespaces cannot be made here: {reason}"),
    };
    if !netem {
        eprintln!(
            "note: `tc netem` is not available in this kernel; the links run without added delay and loss"
        );
    }
    let folder = Folder::new("netns");
    let keys: Vec<String> = (0..HOSTS)
        .map(|index| {
            let path = folder.0.join(format!("host{index}.key"));
            let output = Command::new(NODE)
                .arg("keygen")
                .arg(&path)
                .output()
                .unwrap();
            assert!(output.status.success());
            String::from_utf8(output.stdout).unwrap().trim().to_string()
        })
        .collect();
    let mut nodes = Vec::new();
    for (index, host) in hosts.iter().enumerate() {
        let mut config = format!(
            "key_file = \"host{index}.key\"\nlisten = \"10.77.0.{}:4000\"\n\
             namespace = \"netns-test\"\nmetrics = \"127.0.0.1:9100\"\npreset = \"local\"\n",
            index + 1
        );
        for other in (0..HOSTS).filter(|&other| other != index) {
            config.push_str(&format!(
                "[[peers]]\npublic_key = \"{}\"\naddress = \"10.77.0.{}:4000\"\n",
                keys[other],
                other + 1
            ));
        }
        let path = folder.0.join(format!("host{index}.toml"));
        std::fs::write(&path, config).unwrap();
        let path = path.to_str().unwrap().to_string();
        nodes.push(Running::start(
            "ip",
            &["netns", "exec", host, NODE, "run", &path],
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !hosts
        .iter()
        .all(|host| connected(host) == Some(HOSTS as u64 - 1))
    {
        assert!(
            Instant::now() < deadline,
            "no full mesh across namespaces within 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for (index, node) in nodes.iter_mut().enumerate() {
        for line in 0..LINES_PER_HOST {
            writeln!(node.stdin, "from host {index} line {line}").unwrap();
        }
        node.stdin.flush().unwrap();
    }
    // TCP recovers what netem drops: every line arrives at every other host, once, and in
    // the order its sender typed it.
    for (index, node) in nodes.iter().enumerate() {
        let expected = (HOSTS - 1) * LINES_PER_HOST;
        let received = node.lines_with("from host", expected, Duration::from_secs(30));
        assert_eq!(received.len(), expected, "host {index} got {received:?}");
        for sender in (0..HOSTS).filter(|&sender| sender != index) {
            let prefix = format!("{}: from host {sender} line ", &keys[sender][..8]);
            let lines: Vec<&str> = received
                .iter()
                .filter_map(|line| line.strip_prefix(&prefix))
                .collect();
            let in_order: Vec<String> = (0..LINES_PER_HOST).map(|l| l.to_string()).collect();
            assert_eq!(lines, in_order, "host {index} from host {sender}");
        }
    }
    drop(nodes);
    drop(namespaces);
    assert!(
        !Command::new("ip")
            .args(["netns", "list"])
            .output()
            .map(|output| String::from_utf8_lossy(&output.stdout).contains(&tag))
            .unwrap_or(false),
        "namespaces left behind"
    );
}
