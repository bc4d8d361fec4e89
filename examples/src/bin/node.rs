//! `node`: one palisade-p2p node on real TCP, from a TOML configuration.
//!
//! - `node keygen FILE` writes a new identity key (permissions 0600) and prints its public
//!   key, to put in the other nodes' `[[peers]]`.
//! - `node run CONFIG` joins the network: lines typed on standard input are broadcast,
//!   received messages are printed, logs go to standard error, and metrics are served at
//!   `http://<metrics>/metrics` when the configuration names an address.

use clap::{Parser, Subcommand};
use commonware_runtime::tokio;
use palisade_examples::{keyfile, node, start};
use std::{io::Write as _, path::PathBuf, process::ExitCode};

#[derive(Parser)]
#[command(name = "node", version, about = "One palisade-p2p node on real TCP")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a new identity key to FILE (never overwriting) and print its public key.
    Keygen {
        /// Where to write the key.
        file: PathBuf,
    },
    /// Run a node from the configuration in CONFIG.
    Run {
        /// The TOML configuration.
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    start::log_to_stderr("info");
    match Cli::parse().command {
        Command::Keygen { file } => match keyfile::generate(&file, rand::rng()) {
            Ok(public) => {
                println!("{}", keyfile::public_key_hex(&public));
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("node: {error}");
                ExitCode::from(2)
            }
        },
        Command::Run { config } => run(&config),
    }
}

fn run(path: &std::path::Path) -> ExitCode {
    let config = match node::config::NodeConfig::load(path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("node: {error}");
            return ExitCode::from(2);
        }
    };
    let key = match keyfile::read(&config.key_file) {
        Ok(key) => key,
        Err(error) => {
            eprintln!("node: {error}");
            return ExitCode::from(2);
        }
    };
    let input = start::stdin_lines();
    // A closed standard output must not end the node: what cannot be printed is skipped.
    let print = |received: node::Received| {
        let _ = writeln!(std::io::stdout().lock(), "{received}");
    };
    let runtime = tokio::Config::new().with_worker_threads(2);
    let result = start::on_tokio("node", runtime, |context| async move {
        start::stop_on_signals(&context, "node").await;
        node::run(context, config, key, input, print).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("node: {error}");
            ExitCode::FAILURE
        }
    }
}
