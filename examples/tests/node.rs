//! The `node` binary on real sockets: three processes on loopback reach a full mesh, pass a
//! line typed into one to the others, and answer on `/metrics`; bad configurations and key
//! files stop a node with an error that names the file and the field.

use std::{
    io::Write as _,
    os::unix::fs::PermissionsExt as _,
    path::Path,
    process::{Command, Output, Stdio},
};

mod support;

use support::{Folder, Running, SAFETY_NET, free_ports, metrics, metrics_within, sample as gauge};

const NODE: &str = env!("CARGO_BIN_EXE_node");

fn keygen(path: &Path) -> String {
    let output = Command::new(NODE).arg("keygen").arg(path).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let public = String::from_utf8(output.stdout).unwrap().trim().to_string();
    assert_eq!(public.len(), 64, "{public}");
    assert!(public.chars().all(|c| c.is_ascii_hexdigit()));
    public
}

fn run_node(config: &Path) -> Output {
    Command::new(NODE)
        .arg("run")
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn three_nodes_mesh_exchange_lines_and_serve_metrics() {
    let folder = Folder::new("mesh");
    let ports = free_ports(6);
    let keys: Vec<String> = (0..3)
        .map(|i| keygen(&folder.0.join(format!("node{i}.key"))))
        .collect();
    let mode = std::fs::metadata(folder.0.join("node0.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mut nodes = Vec::new();
    for i in 0..3 {
        let mut config = format!(
            "key_file = \"node{i}.key\"\nlisten = \"127.0.0.1:{}\"\nnamespace = \"node-test\"\n\
             metrics = \"127.0.0.1:{}\"\npreset = \"local\"\n",
            ports[i],
            ports[3 + i]
        );
        for j in (0..3).filter(|&j| j != i) {
            config.push_str(&format!(
                "[[peers]]\npublic_key = \"{}\"\naddress = \"127.0.0.1:{}\"\n",
                keys[j], ports[j]
            ));
        }
        let path = folder.0.join(format!("node{i}.toml"));
        std::fs::write(&path, config).unwrap();
        nodes.push(Running::start(NODE, &["run", path.to_str().unwrap()]));
    }
    // Full mesh: every node's gauge says 2.
    support::wait_until("a full mesh", SAFETY_NET, || {
        (0..3).all(|i| {
            metrics(ports[3 + i]).and_then(|text| gauge(&text, "p2p_connected_peers")) == Some(2.0)
        })
    });
    writeln!(nodes[0].stdin, "hello from node zero").unwrap();
    nodes[0].stdin.flush().unwrap();
    for node in &nodes[1..] {
        let line = node.expect_line("hello from node zero", SAFETY_NET);
        assert!(line.starts_with(&keys[0][..8]), "{line}");
    }
    writeln!(nodes[2].stdin, "and back from two").unwrap();
    nodes[2].stdin.flush().unwrap();
    nodes[0].expect_line("and back from two", SAFETY_NET);
    let text = metrics_within(ports[3], SAFETY_NET);
    for expected in [
        "# TYPE p2p_connected_peers gauge",
        "p2p_handshakes_total{",
        "p2p_messages_total{channel=\"0\",direction=\"inbound\",fate=\"received\"} 1",
        "p2p_messages_total{channel=\"0\",direction=\"outbound\",fate=\"sent\"} 2",
    ] {
        assert!(text.contains(expected), "{expected} missing from\n{text}");
    }
}

#[test]
fn bad_configurations_stop_the_node_naming_file_and_field() {
    let folder = Folder::new("bad");
    let missing = folder.0.join("missing.toml");
    let output = run_node(&missing);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing.toml"), "{stderr}");

    let key = keygen(&folder.0.join("me.key"));
    let cases = [
        ("listen = \"localhost\"", "field `listen`"),
        (
            "listen = \"127.0.0.1:1\"\n[[peers]]\npublic_key = \"abc\"\naddress = \"127.0.0.1:2\"",
            "field `peers[0].public_key`",
        ),
        ("listen = 5", "listen"),
        ("listen = \"127.0.0.1:1\"\nprest = \"local\"", "prest"),
    ];
    for (index, (fields, expected)) in cases.iter().enumerate() {
        let path = folder.0.join(format!("bad{index}.toml"));
        std::fs::write(
            &path,
            format!("key_file = \"me.key\"\nnamespace = \"n\"\n{fields}\n"),
        )
        .unwrap();
        let output = run_node(&path);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&format!("bad{index}.toml")), "{stderr}");
        assert!(stderr.contains(expected), "{expected} not in {stderr}");
    }

    // A key file others can read, and one that is not there.
    let peers = format!("[[peers]]\npublic_key = \"{key}\"\naddress = \"127.0.0.1:2\"");
    std::fs::set_permissions(
        folder.0.join("me.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    for (name, key_file, expected) in [
        ("open.toml", "me.key", "chmod 600"),
        ("nokey.toml", "absent.key", "absent.key"),
    ] {
        let path = folder.0.join(name);
        std::fs::write(
            &path,
            format!(
                "key_file = \"{key_file}\"\nnamespace = \"n\"\nlisten = \"127.0.0.1:1\"\n{peers}\n"
            ),
        )
        .unwrap();
        let output = run_node(&path);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{expected} not in {stderr}");
    }

    // keygen never overwrites.
    let output = Command::new(NODE)
        .arg("keygen")
        .arg(folder.0.join("me.key"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("me.key"));
}
