//! `validator`: commonware-consensus simplex on palisade-p2p over real TCP, from the `node`
//! example's TOML configuration (which must name a `storage` folder for the journal).
//!
//! `validator run CONFIG` joins the validator set the configuration describes (its peers and
//! itself) and prints every finalization; logs go to standard error, metrics to
//! `http://<metrics>/metrics`. Keys come from `node keygen`.

use clap::{Parser, Subcommand};
use commonware_runtime::{Runner as _, tokio};
use palisade_examples::{keyfile, node::config::NodeConfig, start, validator};
use std::{io::Write as _, path::PathBuf, process::ExitCode};

#[derive(Parser)]
#[command(
    name = "validator",
    version,
    about = "simplex consensus on palisade-p2p over TCP"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a validator from the configuration in CONFIG.
    Run {
        /// The TOML configuration (the `node` format, with `storage`).
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    start::log_to_stderr("info");
    let Command::Run { config: path } = Cli::parse().command;
    let config = match NodeConfig::load(&path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("validator: {error}");
            return ExitCode::from(2);
        }
    };
    let Some(storage) = config.storage.clone() else {
        eprintln!(
            "validator: config file {}: field `storage`: a validator needs a folder for its \
             consensus journal",
            path.display()
        );
        return ExitCode::from(2);
    };
    let key = match keyfile::read(&config.key_file) {
        Ok(key) => key,
        Err(error) => {
            eprintln!("validator: {error}");
            return ExitCode::from(2);
        }
    };
    // A closed standard output must not end the validator: what cannot be printed is skipped.
    let print = |finalized: validator::Finalized| {
        let _ = writeln!(std::io::stdout().lock(), "{finalized}");
    };
    let runtime = tokio::Config::new()
        .with_worker_threads(2)
        .with_storage_directory(&storage);
    let result = tokio::Runner::new(runtime).start(|context| async move {
        start::stop_on_signals(&context, "validator").await;
        validator::run(context, config, key, print).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("validator: {error}");
            ExitCode::FAILURE
        }
    }
}
