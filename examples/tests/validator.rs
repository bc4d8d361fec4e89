//! The `validator` binary on real sockets: four processes on loopback run simplex on
//! palisade-p2p, finalize, and agree on every view they all report. Waits are on printed
//! lines; the deadline is only a safety net for a busy machine.

use std::{
    collections::BTreeMap,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

mod support;

use support::{Folder, free_ports};

const NODE: &str = env!("CARGO_BIN_EXE_node");
const VALIDATOR: &str = env!("CARGO_BIN_EXE_validator");

/// Generous: a healthy run finalizes its tenth view within a few seconds.
const SAFETY_NET: Duration = Duration::from_secs(180);

fn keygen(path: &Path) -> String {
    let output = Command::new(NODE).arg("keygen").arg(path).output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// `finalized view N payload P` as `(N, P)`.
fn parse(line: &str) -> Option<(u64, String)> {
    let rest = line.strip_prefix("finalized view ")?;
    let (view, payload) = rest.split_once(" payload ")?;
    Some((view.parse().ok()?, payload.to_string()))
}

#[test]
fn four_validators_on_loopback_finalize_and_agree() {
    let folder = Folder::new("validators");
    let ports = free_ports(4);
    let keys: Vec<String> = (0..4)
        .map(|i| keygen(&folder.0.join(format!("v{i}.key"))))
        .collect();
    let mut validators = Vec::new();
    for i in 0..4 {
        let mut config = format!(
            "key_file = \"v{i}.key\"\nlisten = \"127.0.0.1:{}\"\nnamespace = \"validator-test\"\n\
             preset = \"local\"\nstorage = \"v{i}-data\"\n",
            ports[i]
        );
        for j in (0..4).filter(|&j| j != i) {
            config.push_str(&format!(
                "[[peers]]\npublic_key = \"{}\"\naddress = \"127.0.0.1:{}\"\n",
                keys[j], ports[j]
            ));
        }
        let path = folder.0.join(format!("v{i}.toml"));
        std::fs::write(&path, config).unwrap();
        let validator = support::Running::start(VALIDATOR, &["run", path.to_str().unwrap()]);
        validators.push(validator);
    }
    // Each validator's views until it reports view 10 or more.
    let started = Instant::now();
    let mut seen: Vec<BTreeMap<u64, String>> = vec![BTreeMap::new(); 4];
    for (i, validator) in validators.iter().enumerate() {
        loop {
            let left = SAFETY_NET.saturating_sub(started.elapsed());
            let line = validator.expect_line("finalized view", left);
            let (view, payload) = parse(&line).expect("the printed format");
            seen[i].insert(view, payload);
            if view >= 10 {
                break;
            }
        }
    }
    // Agreement: at every view that all four reported, the same payload.
    let common: Vec<u64> = seen[0]
        .keys()
        .copied()
        .filter(|view| seen.iter().all(|views| views.contains_key(view)))
        .collect();
    assert!(!common.is_empty(), "{seen:?}");
    for view in common {
        let payload = &seen[0][&view];
        assert!(
            seen.iter().all(|views| &views[&view] == payload),
            "view {view}: {seen:?}"
        );
    }
    // Each kept its journal in its own storage folder.
    for i in 0..4 {
        assert!(folder.0.join(format!("v{i}-data")).is_dir());
    }
}

#[test]
fn a_validator_without_storage_is_refused_with_the_field_named() {
    let folder = Folder::new("validator-no-storage");
    keygen(&folder.0.join("v.key"));
    let path = folder.0.join("v.toml");
    std::fs::write(
        &path,
        "key_file = \"v.key\"\nlisten = \"127.0.0.1:1\"\nnamespace = \"n\"\n",
    )
    .unwrap();
    let output = Command::new(VALIDATOR)
        .arg("run")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("field `storage`"), "{stderr}");
}
