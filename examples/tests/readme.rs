//! Every command README shows for the example programs runs as written (binaries from this
//! build in place of `./target/release/...` and `cargo run`), in README's order, in a folder
//! of its own: keys are generated, README's TOML files are used as they stand (with the
//! `<contents of X>` placeholders filled in), and each server it starts comes up and stops
//! cleanly on SIGTERM. A command this test does not know fails it, so README cannot show one
//! that nothing runs. (`simulate` commands are run by palisade-sim's own README test.)

mod support;

use std::{path::Path, process::Command, time::Duration};
use support::{Folder, Running, exit_code, free_ports, metrics, readme, signal, wait_until};

/// Generous safety nets: each wait ends on the event itself.
const UP: Duration = support::SAFETY_NET;
const EXIT: Duration = support::SAFETY_NET;

fn binary(name: &str) -> &'static str {
    match name {
        "node" => env!("CARGO_BIN_EXE_node"),
        "validator" => env!("CARGO_BIN_EXE_validator"),
        "chat" => env!("CARGO_BIN_EXE_chat"),
        "mitm" => env!("CARGO_BIN_EXE_mitm"),
        "proxy" => env!("CARGO_BIN_EXE_proxy"),
        "demo" => env!("CARGO_BIN_EXE_demo"),
        other => panic!("README names a binary `{other}` that palisade-examples does not have"),
    }
}

/// Stops `running` with SIGTERM and checks that it exits 0.
fn stop(mut running: Running, what: &str) {
    signal(&running.child, "TERM");
    assert_eq!(exit_code(&mut running.child, EXIT), Some(0), "{what}");
}

/// README's TOML block whose `key_file` is `key_file`, placeholders filled from `folder`.
fn config_file(folder: &Path, key_file: &str) -> String {
    let block = readme::blocks("toml")
        .into_iter()
        .find(|block| block.contains(&format!("key_file = \"{key_file}\"")))
        .unwrap_or_else(|| panic!("README has no TOML file with key_file {key_file}"));
    let mut text = block;
    while let Some(start) = text.find("<contents of ") {
        let end = start + text[start..].find('>').unwrap();
        let file = &text[start + "<contents of ".len()..end];
        let contents = std::fs::read_to_string(folder.join(file)).unwrap();
        text.replace_range(start..=end, contents.trim());
    }
    text
}

/// The metrics port a README TOML file names.
fn metrics_port(config: &str) -> u16 {
    let line = config
        .lines()
        .find(|line| line.starts_with("metrics = "))
        .expect("README's config serves metrics");
    let address = line.split('"').nth(1).unwrap();
    address.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn every_example_command_in_the_readme_runs() {
    let folder = Folder::new("readme");
    let dir = folder.0.clone();
    let mut proxies = Vec::new();
    let mut ran = 0;
    let commands: Vec<String> = readme::commands()
        .into_iter()
        .filter(|command| !command.contains("--bin simulate"))
        .collect();
    // `for n in A B; do CMD; done` is CMD once for each value.
    let mut expanded = Vec::new();
    for command in commands {
        if let Some(rest) = command.strip_prefix("for n in ") {
            let (values, body) = rest.split_once("; do ").unwrap();
            let body = body.strip_suffix("; done").unwrap();
            for value in values.split_whitespace() {
                expanded.push(body.replace("$n", value));
            }
        } else {
            expanded.push(command);
        }
    }
    for command in &expanded {
        let words = readme::words(command, &dir);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        match words.as_slice() {
            // The test command, which runs this test.
            ["cargo", "test", "--workspace"] => {}
            [
                "cargo",
                "build",
                "--release",
                "-p",
                "palisade-examples",
                bins @ ..,
            ] => {
                for bin in bins.iter().filter(|word| **word != "--bin") {
                    binary(bin);
                }
            }
            ["./target/release/node", "keygen", key, ">", public] => {
                let output = Command::new(binary("node"))
                    .args(["keygen", key])
                    .current_dir(&dir)
                    .output()
                    .unwrap();
                assert!(output.status.success(), "`{command}`");
                std::fs::write(dir.join(public), output.stdout).unwrap();
            }
            [
                program @ ("./target/release/node" | "./target/release/validator"),
                "run",
                config,
            ] => {
                let key_file = format!("{}.key", config.trim_end_matches(".toml"));
                let text = config_file(&dir, &key_file);
                std::fs::write(dir.join(config), &text).unwrap();
                let name = program.rsplit('/').next().unwrap();
                let path = dir.join(config);
                let running = Running::start(binary(name), &["run", path.to_str().unwrap()]);
                let port = metrics_port(&text);
                wait_until(&format!("`{command}` serving metrics"), UP, || {
                    metrics(port).is_some()
                });
                stop(running, command);
            }
            [
                "cargo",
                "run",
                "-p",
                "palisade-examples",
                "--bin",
                "chat",
                "--",
                name,
            ] => {
                // On ports of this test's own, so that it never meets another chat.
                let base = free_ports(1)[0].min(u16::MAX - 2).to_string();
                let running = Running::start(binary("chat"), &[name, "--base-port", &base]);
                running.expect_line("type a line", UP);
                stop(running, command);
            }
            [
                "cargo",
                "run",
                "-p",
                "palisade-examples",
                "--bin",
                bin,
                rest @ ..,
            ] => {
                let args: Vec<&str> = rest.iter().copied().filter(|word| *word != "--").collect();
                let output = Command::new(binary(bin)).args(&args).output().unwrap();
                assert!(
                    output.status.success(),
                    "`{command}`: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            [
                "./target/release/proxy",
                side @ ("server" | "client"),
                args @ ..,
            ] => {
                let mut all = vec![*side];
                all.extend(args.iter().copied());
                let running = Running::start_in(binary("proxy"), &all, &[], &dir);
                running.expect_line(&format!("proxy {side} listening on"), UP);
                proxies.push((running, command.clone()));
            }
            // The proxies above carry it to a service on 8080, which README leaves to the
            // reader; `tests/proxy.rs` runs the same path against an echo service.
            ["curl", url] if url.starts_with("http://127.0.0.1:") => {}
            _ => panic!("README command `{command}` is run by no test: add it here"),
        }
        ran += 1;
    }
    for (running, command) in proxies {
        stop(running, &command);
    }
    assert!(
        ran >= 20,
        "only {ran} commands found in README: {expanded:#?}"
    );
}
