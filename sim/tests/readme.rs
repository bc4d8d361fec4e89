//! Every `simulate` command README shows runs: the main job in full, the live view and its
//! replay in full (on a free port instead of README's, until the page is served and the run
//! is over), the others with their arguments and scenario checked (`--print-scenario`), each
//! as README writes it.

#[path = "../../examples/tests/support/readme.rs"]
mod readme;
mod support;

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const SIMULATE: &str = env!("CARGO_BIN_EXE_simulate");
const PREFIX: &str = "cargo run --release -p palisade-sim --bin simulate";

#[test]
fn every_simulate_command_in_the_readme_runs() {
    let folder = std::env::temp_dir().join(format!("palisade-readme-sim-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    let commands: Vec<String> = readme::commands()
        .into_iter()
        .filter(|command| command.contains("--bin simulate"))
        .collect();
    assert!(commands.len() >= 6, "{commands:#?}");
    for command in &commands {
        let rest = command
            .strip_prefix(PREFIX)
            .unwrap_or_else(|| panic!("`{command}` does not start with `{PREFIX}`"));
        let mut args: Vec<&str> = rest
            .trim_start()
            .strip_prefix("--")
            .unwrap_or(rest)
            .split_whitespace()
            .collect();
        // `> FILE` sends standard output to FILE (in this test's folder).
        let output_file = args.iter().position(|word| *word == ">").map(|at| {
            let file = args[at + 1];
            args.truncate(at);
            folder.join(file)
        });
        if let Some(at) = args.iter().position(|word| *word == "--serve") {
            args[at + 1] = "127.0.0.1:0";
            serve(&args, &folder, command);
            continue;
        }
        let whole_run = args.is_empty();
        let mut run = Command::new(SIMULATE);
        run.args(&args).current_dir(&folder).stderr(Stdio::piped());
        if !whole_run && !args.contains(&"--help") && !args.contains(&"--print-scenario") {
            // The flags and the scenario they make are checked; the cli tests run such
            // scenarios in full.
            run.arg("--print-scenario");
        }
        let output = run.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "`{command}` failed: {stderr}");
        if let Some(file) = output_file {
            std::fs::write(file, &output.stdout).unwrap();
        }
        if whole_run {
            // The main job: the standard scenario, in full.
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(stdout.contains("digest "), "{stdout}");
        }
    }
    std::fs::remove_dir_all(&folder).unwrap();
}

/// Far longer than anything here takes; only a hung test reaches it.
const SAFETY_NET: Duration = Duration::from_secs(600);

/// The body of `GET path` from `address`, if it answers 200.
fn get(address: &str, path: &str) -> Option<String> {
    match support::http::request(address, "GET", path) {
        Ok((200, body)) => Some(body),
        _ => None,
    }
}

/// Runs a `--serve` command until its page is served and its run (or replay) is over, then
/// stops it.
fn serve(args: &[&str], folder: &std::path::Path, command: &str) {
    let mut child = Command::new(SIMULATE)
        .args(args)
        .current_dir(folder)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, said) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let address = loop {
        let line = said
            .recv_timeout(SAFETY_NET)
            .unwrap_or_else(|_| panic!("`{command}` never said where it serves"));
        if let Some(rest) = line.strip_prefix("live view at http://") {
            break rest.trim_end_matches('/').to_string();
        }
    };
    let page = get(&address, "/").unwrap_or_else(|| panic!("`{command}`: no page"));
    assert!(page.contains("palisade simulation"), "{page}");
    let started = Instant::now();
    while !get(&address, "/status").is_some_and(|status| status.contains("\"finished\":true")) {
        assert!(
            started.elapsed() < SAFETY_NET,
            "`{command}`: the run never ended"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = get(&address, "/status").unwrap();
    assert!(!status.contains("\"records\":0,"), "{status}");
    child.kill().unwrap();
    child.wait().unwrap();
}
