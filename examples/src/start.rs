//! How the example binaries start and stop: a tokio runtime whose storage folder is a
//! throwaway one, SIGINT and SIGTERM as a graceful stop, standard input as a stream of lines
//! read no faster than they are sent, and logs on standard error filtered by `RUST_LOG`.
//!
//! The logs use `tracing-subscriber` directly rather than
//! `commonware_runtime::tokio::telemetry::init`: that one takes a fixed level rather than a
//! `RUST_LOG` filter, drops every span unless traces are exported, and panics (in a task of
//! its own) when its metrics address is taken, where the node must exit with a message.

use commonware_runtime::{Runner as _, Spawner as _, Supervisor as _, tokio};
use futures::{SinkExt as _, channel::mpsc};
use std::{
    future::Future,
    io::{BufRead as _, IsTerminal as _},
    time::Duration,
};

/// How long a stop waits for every connection's authenticated close.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

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
/// input. At most one line waits to be taken: the thread reads the next only once the
/// previous one was, so whoever takes them sets the pace and nothing piles up in memory.
pub fn stdin_lines() -> mpsc::Receiver<String> {
    let (mut lines, input) = mpsc::channel(0);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if futures::executor::block_on(lines.send(line)).is_err() {
                break;
            }
        }
    });
    input
}

/// Stops the runtime of `context` gracefully on the first SIGINT (Ctrl-C) or SIGTERM: every
/// task that waits on the runtime's stop signal, palisade-p2p's network among them, gets up
/// to [`STOP_TIMEOUT`] to finish (the network sends each peer its authenticated close).
/// A second signal while stopping ends the process at once, with the status the signal's
/// default action gives (130 for SIGINT, 143 for SIGTERM); a stop that takes longer than
/// [`STOP_TIMEOUT`] ends it with status 1.
/// Returns once the signals are watched.
pub async fn stop_on_signals(context: &tokio::Context, program: &'static str) {
    let (watching, watched) = futures::channel::oneshot::channel();
    context.child("signals").spawn(move |context| async move {
        use ::tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::warn!("cannot watch for SIGINT and SIGTERM: stopping will not be graceful");
            return;
        };
        let _ = watching.send(());
        let name = ::tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        tracing::info!(signal = name, "{program} stopping");
        // Once a handler is installed the default action never comes back, so a second
        // signal is answered here: it ends the process at once, as it would have.
        let stopping = context.stop(0, Some(STOP_TIMEOUT));
        let code = ::tokio::select! {
            stopped = stopping => match stopped {
                Ok(()) => return,
                Err(_) => {
                    tracing::warn!("{program}: tasks still running {STOP_TIMEOUT:?} after the stop; exiting");
                    1
                }
            },
            _ = interrupt.recv() => 128 + 2,
            _ = terminate.recv() => 128 + 15,
        };
        std::process::exit(code);
    });
    let _ = watched.await;
}

/// Logs through `tracing` to standard error, in colour only on a terminal. `RUST_LOG`
/// chooses what is logged (`RUST_LOG=palisade_p2p=debug` adds every connection's churn);
/// without it, `default` does (`info` for the servers; `chat` keeps to its own notes and to
/// warnings).
pub fn log_to_stderr(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
