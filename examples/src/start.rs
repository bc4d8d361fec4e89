//! How the example binaries start: a tokio runtime whose storage folder is a throwaway one,
//! standard input as a stream of lines, and logs on standard error.

use commonware_runtime::{Runner as _, tokio};
use futures::channel::mpsc;
use std::{
    future::Future,
    io::{BufRead as _, IsTerminal as _},
};

/// Runs `f` on a tokio runtime built from `config`, with a storage folder named after
/// `program` and this process, removed afterwards.
pub fn on_tokio<F, Fut, T>(program: &str, config: tokio::Config, f: F) -> T
where
    F: FnOnce(tokio::Context) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let storage = std::env::temp_dir().join(format!("palisade-{program}-{}", std::process::id()));
    let runner = tokio::Runner::new(config.with_storage_directory(&storage));
    let outcome = runner.start(f);
    let _ = std::fs::remove_dir_all(&storage);
    outcome
}

/// The lines of standard input, read on a thread of their own; the stream ends with the
/// input.
pub fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (lines, input) = mpsc::unbounded();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines.unbounded_send(line).is_err() {
                break;
            }
        }
    });
    input
}

/// Logs through `tracing` to standard error, in colour only on a terminal.
pub fn log_to_stderr() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
