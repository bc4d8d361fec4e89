//! Every `simulate` command README shows runs: the main job in full, the others with their
//! arguments and scenario checked (`--print-scenario`), each as README writes it.

#[path = "../../examples/tests/support/readme.rs"]
mod readme;

use std::process::{Command, Stdio};

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
