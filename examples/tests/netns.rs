//! Real multi-host runs: three `node` processes, each in a network namespace of its own,
//! joined by veth pairs to a bridge, reach a full mesh over real TCP/IP and deliver every
//! broadcast once and in order: on plain links, through 1% and 5% random packet loss
//! (iptables' `statistic` match, which every kernel here has), and under an htb rate cap.
//! Links also get 20 ms (+ up to 5 ms) of delay with `tc netem` where the kernel has it. The
//! tests create everything they use and remove it at the end; iptables is installed from
//! Debian's packages where it is missing.
//!
//! They need root and `ip` (iproute2), so `cargo test` lists them as ignored rather than pass
//! them without running them; CI runs them with
//! `cargo test -p palisade-examples --test netns -- --ignored`, and there it fails, saying
//! why, if the namespaces cannot be made.

mod support;

use std::{io::Write as _, process::Command};
use support::{Folder, Running};

const NODE: &str = env!("CARGO_BIN_EXE_node");
const HOSTS: usize = 3;

/// Runs `ip` with `args`; the error is its standard error.
fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args).map(drop)
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

/// What the hosts' links do besides netem's delay (20 ms + up to 5 ms, where the kernel has
/// netem).
#[derive(Clone, Copy, Debug)]
struct Shaping {
    /// Each host drops this share of the packets it receives (iptables' `statistic` match).
    loss: Option<f64>,
    /// Each host sends at most this many kilobits a second (an htb class).
    rate_kbit: Option<u32>,
}

/// Runs `program` with `args`; the error is its standard error.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|error| format!("cannot run `{program}`: {error}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}`: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// iptables, installed from Debian's packages where it is missing (the test runs as root).
fn ensure_iptables() -> Result<(), String> {
    if run("iptables", &["--version"]).is_ok() {
        return Ok(());
    }
    run("apt-get", &["install", "-y", "-qq", "iptables"])
        .and_then(|_| run("iptables", &["--version"]))
        .map(drop)
        .map_err(|why| format!("iptables is missing and could not be installed: {why}"))
}

/// A bridge namespace and `HOSTS` host namespaces, host `i` at 10.77.0.(i+1) on a veth
/// whose other end is on the bridge, shaped as `shaping` says. Returns the namespaces and
/// whether netem's delay is on.
fn make_hosts(tag: &str, shaping: Shaping) -> Result<(Namespaces, Vec<String>, bool), String> {
    if shaping.loss.is_some() {
        ensure_iptables()?;
    }
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
        // One TCP segment per packet, as on a real wire: with the veth's default offloads a
        // packet can carry 64 KB, and a loss rule would see a handful of packets per test.
        ip(&[
            "-n",
            &host,
            "link",
            "set",
            "dev",
            &inside,
            "gso_max_segs",
            "1",
        ])?;
        ip(&["-n", &host, "link", "set", &inside, "up"])?;
        ip(&["-n", &host, "link", "set", "lo", "up"])?;
        // A rate cap is an htb class at the root; netem's delay goes under it, or at the
        // root without one.
        let mut netem_parent = vec!["root"];
        if let Some(rate) = shaping.rate_kbit {
            let rate = format!("{rate}kbit");
            let device = ["-n", &host, "qdisc", "add", "dev", &inside];
            run(
                "tc",
                &[
                    &device[..],
                    &["root", "handle", "1:", "htb", "default", "10"],
                ]
                .concat(),
            )?;
            run(
                "tc",
                &[
                    "-n", &host, "class", "add", "dev", &inside, "parent", "1:", "classid", "1:10",
                    "htb", "rate", &rate,
                ],
            )?;
            netem_parent = vec!["parent", "1:10", "handle", "10:"];
        }
        let shaped = run(
            "tc",
            &[
                &["-n", &host, "qdisc", "add", "dev", &inside][..],
                &netem_parent,
                &["netem", "delay", "20ms", "5ms"],
            ]
            .concat(),
        );
        netem &= shaped.is_ok();
        if let Some(loss) = shaping.loss {
            let probability = loss.to_string();
            // A rule without a target counts every packet the host receives.
            run("ip", &["netns", "exec", &host, "iptables", "-A", "INPUT"])?;
            run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &host,
                    "iptables",
                    "-A",
                    "INPUT",
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    &probability,
                    "-j",
                    "DROP",
                ],
            )?;
        }
        hosts.push(host);
    }
    Ok((made, hosts, netem))
}

/// Bytes that went through the htb class (the rate cap) of host `index` in `host`.
fn capped_bytes(host: &str, index: usize) -> u64 {
    let device = format!("eth{index}");
    run("tc", &["-s", "-n", host, "class", "show", "dev", &device])
        .unwrap_or_default()
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("Sent ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Packets `host` received (the counting rule) and dropped (the loss rule).
fn received_and_dropped(host: &str) -> (u64, u64) {
    let listing = run(
        "ip",
        &[
            "netns", "exec", host, "iptables", "-L", "INPUT", "-v", "-x", "-n",
        ],
    )
    .unwrap_or_default();
    // `-v -x` lists each rule as: packets, bytes, target (absent for the counting rule), ...
    let packets = |line: &str| line.split_whitespace().next()?.parse().ok();
    let mut rules = listing
        .lines()
        .skip_while(|line| !line.trim_start().starts_with("pkts"))
        .skip(1);
    let received = rules.next().and_then(packets).unwrap_or(0);
    let dropped = rules
        .find(|line| line.contains("DROP"))
        .and_then(packets)
        .unwrap_or(0);
    (received, dropped)
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

/// Three `node`s, one per namespace, reach a full mesh; each then types `lines` lines of
/// about `line_bytes` bytes, and every other host prints every one of them once, in order.
fn mesh_and_broadcast(name: &str, shaping: Shaping, lines: usize, line_bytes: usize) {
    let tag = format!("p{}{name}", std::process::id() % 100_000);
    let (namespaces, hosts, netem) = match make_hosts(&tag, shaping) {
        Ok(made) => made,
        Err(reason) => panic!("network namespaces cannot be made here: {reason}"),
    };
    if !netem {
        eprintln!(
            "note: `tc netem` is not available in this kernel; the links run without added delay"
        );
    }
    let folder = Folder::new(&format!("netns-{name}"));
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
             namespace = \"netns-test\"\nmetrics = \"127.0.0.1:9100\"\npreset = \"local\"\n\
             [[channels]]\nid = 0\nmessages_per_second = 1000\nbacklog = 4096\n",
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
    support::wait_until("a full mesh across namespaces", support::SAFETY_NET, || {
        hosts
            .iter()
            .all(|host| connected(host) == Some(HOSTS as u64 - 1))
    });
    let padding = "x".repeat(line_bytes.saturating_sub(30));
    for (index, node) in nodes.iter_mut().enumerate() {
        for line in 0..lines {
            writeln!(node.stdin, "from host {index} line {line} {padding}").unwrap();
        }
        node.stdin.flush().unwrap();
    }
    // TCP recovers what the links drop: every line arrives at every other host, once, and
    // in the order its sender typed it.
    for (index, node) in nodes.iter().enumerate() {
        let expected = (HOSTS - 1) * lines;
        let received = node.lines_with("from host", expected, support::SAFETY_NET);
        assert_eq!(
            received.len(),
            expected,
            "host {index} got {} lines",
            received.len()
        );
        for sender in (0..HOSTS).filter(|&sender| sender != index) {
            let prefix = format!("{}: from host {sender} line ", &keys[sender][..8]);
            let numbers: Vec<usize> = received
                .iter()
                .filter_map(|line| line.strip_prefix(&prefix))
                .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
                .collect();
            let in_order: Vec<usize> = (0..lines).collect();
            assert_eq!(numbers, in_order, "host {index} from host {sender}");
        }
    }
    if shaping.rate_kbit.is_some() {
        // Every host's traffic went through its cap: at least the lines it sent to both others.
        for (index, host) in hosts.iter().enumerate() {
            let bytes = capped_bytes(host, index);
            assert!(
                bytes >= (2 * lines * line_bytes) as u64,
                "host {index}: {bytes} bytes through the cap"
            );
        }
    }
    if let Some(loss) = shaping.loss {
        let counts: Vec<(u64, u64)> = hosts
            .iter()
            .map(|host| received_and_dropped(host))
            .collect();
        eprintln!(
            "{name}: packets (received, dropped) per host {counts:?}; every line delivered once, in order"
        );
        // Enough packets that random loss at this rate drops none with a chance below e^-14
        // (one in a million), so a rule that dropped nothing is a rule that did not work.
        let received: u64 = counts.iter().map(|&(received, _)| received).sum();
        assert!(
            received as f64 * loss >= 14.0,
            "{received} packets are too few to tell whether the loss rule works"
        );
        assert!(
            counts.iter().map(|&(_, dropped)| dropped).sum::<u64>() > 0,
            "the loss rule dropped nothing of {counts:?}"
        );
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

const NO_SHAPING: Shaping = Shaping {
    loss: None,
    rate_kbit: None,
};

#[test]
#[ignore = "needs root and iproute2: cargo test -p palisade-examples --test netns -- --ignored"]
fn nodes_in_separate_network_namespaces_mesh_and_deliver_every_broadcast() {
    mesh_and_broadcast("plain", NO_SHAPING, 5, 40);
}

#[test]
#[ignore = "needs root, iproute2 and iptables: cargo test -p palisade-examples --test netns -- --ignored"]
fn every_broadcast_arrives_once_and_in_order_through_one_percent_loss() {
    let shaping = Shaping {
        loss: Some(0.01),
        ..NO_SHAPING
    };
    mesh_and_broadcast("loss1", shaping, 1000, 1000);
}

#[test]
#[ignore = "needs root, iproute2 and iptables: cargo test -p palisade-examples --test netns -- --ignored"]
fn every_broadcast_arrives_once_and_in_order_through_five_percent_loss() {
    let shaping = Shaping {
        loss: Some(0.05),
        ..NO_SHAPING
    };
    mesh_and_broadcast("loss5", shaping, 1000, 1000);
}

#[test]
#[ignore = "needs root, iproute2 and iptables: cargo test -p palisade-examples --test netns -- --ignored"]
fn every_broadcast_arrives_under_a_rate_cap_with_loss() {
    // 1 Mbit/s out of each host: the 200 lines of 1.5 KB a host sends to each of two peers
    // take about 5 s of the link alone; the hosts receive some 2,300 packets between them.
    let shaping = Shaping {
        loss: Some(0.01),
        rate_kbit: Some(1000),
    };
    mesh_and_broadcast("rate", shaping, 200, 1500);
}
