//! `proxy`: wrap any TCP service in palisade's encryption without changing it.
//!
//! ```sh
//! node keygen server.key; node keygen client.key            # (the `node` example's keygen)
//! proxy server --listen 127.0.0.1:7000 --backend 127.0.0.1:8080 --key server.key --allow <client key>
//! proxy client --listen 127.0.0.1:7001 --server 127.0.0.1:7000 --key client.key --server-key <server key>
//! curl http://127.0.0.1:7001/          # reaches the service on 8080, encrypted between the proxies
//! ```

use clap::{Parser, Subcommand};
use commonware_runtime::tokio;
use futures::channel::oneshot;
use palisade_examples::{keyfile, proxy, start};
use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

#[derive(Parser)]
#[command(
    name = "proxy",
    version,
    about = "An encrypt-on-the-wire TCP proxy pair over palisade"
)]
struct Cli {
    #[command(subcommand)]
    side: Side,
}

#[derive(Subcommand)]
enum Side {
    /// Accept plain TCP and carry each connection to the proxy server.
    Client {
        /// Where plain clients connect.
        #[arg(long)]
        listen: SocketAddr,
        /// The proxy server.
        #[arg(long)]
        server: SocketAddr,
        /// The proxy server's public key (hex).
        #[arg(long)]
        server_key: String,
        /// This proxy's key file (`node keygen`).
        #[arg(long)]
        key: PathBuf,
        /// The namespace both proxies use.
        #[arg(long, default_value = "palisade-proxy")]
        namespace: String,
        /// Let `--listen` be an address beyond loopback: whoever reaches it is carried under
        /// this proxy's key, so it is refused unless this says it is meant.
        #[arg(long)]
        allow_remote_clients: bool,
    },
    /// Admit the allowed proxy clients and connect each of their connections to the backend.
    Server {
        /// Where proxy clients connect.
        #[arg(long)]
        listen: SocketAddr,
        /// The plain service.
        #[arg(long)]
        backend: SocketAddr,
        /// This proxy's key file (`node keygen`).
        #[arg(long)]
        key: PathBuf,
        /// A proxy client's public key (hex); repeat for several.
        #[arg(long = "allow", required = true)]
        allowed: Vec<String>,
        /// The namespace both proxies use.
        #[arg(long, default_value = "palisade-proxy")]
        namespace: String,
    },
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("proxy: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    start::log_to_stderr("info");
    // Linger on close, so the last bytes written reach a slow peer; allow a connection to
    // sit idle for up to an hour.
    let runtime = tokio::Config::new()
        .with_worker_threads(2)
        .with_zero_linger(false)
        .with_read_write_timeout(std::time::Duration::from_secs(3600));
    match Cli::parse().side {
        Side::Client {
            listen,
            server,
            server_key,
            key,
            namespace,
            allow_remote_clients,
        } => {
            let key = match keyfile::read(&key) {
                Ok(key) => key,
                Err(error) => return fail(error),
            };
            let server_key = match keyfile::public_key(&server_key) {
                Ok(server_key) => server_key,
                Err(problem) => return fail(format!("--server-key: {problem}")),
            };
            let settings = proxy::ClientSettings {
                listen,
                server,
                server_key,
                key,
                namespace: namespace.into_bytes(),
                allow_remote_clients,
            };
            start::on_tokio("proxy", runtime, |context| async move {
                start::stop_on_signals(&context, "proxy").await;
                let (ready, bound) = oneshot::channel();
                let serving = proxy::client(context, settings, ready);
                announce("proxy client", serving, bound).await
            })
        }
        Side::Server {
            listen,
            backend,
            key,
            allowed,
            namespace,
        } => {
            let key = match keyfile::read(&key) {
                Ok(key) => key,
                Err(error) => return fail(error),
            };
            let mut keys = std::collections::BTreeSet::new();
            for (index, text) in allowed.iter().enumerate() {
                match keyfile::public_key(text) {
                    Ok(allowed) => keys.insert(allowed),
                    Err(problem) => return fail(format!("--allow #{}: {problem}", index + 1)),
                };
            }
            let settings = proxy::ServerSettings {
                listen,
                backend,
                key,
                allowed: keys,
                namespace: namespace.into_bytes(),
            };
            start::on_tokio("proxy", runtime, |context| async move {
                start::stop_on_signals(&context, "proxy").await;
                let (ready, bound) = oneshot::channel();
                let serving = proxy::server(context, settings, ready);
                announce("proxy server", serving, bound).await
            })
        }
    }
}

/// Prints where `side` listens once it does, then serves; reports a failure to bind.
async fn announce(
    side: &str,
    serving: impl Future<Output = Result<(), proxy::ProxyError>>,
    bound: oneshot::Receiver<SocketAddr>,
) -> ExitCode {
    let serving = std::pin::pin!(serving);
    let waiting = async {
        if let Ok(address) = bound.await {
            println!("{side} listening on {address}");
        }
        std::future::pending::<()>().await
    };
    match futures::future::select(serving, std::pin::pin!(waiting)).await {
        futures::future::Either::Left((Err(error), _)) => fail(error),
        _ => ExitCode::SUCCESS,
    }
}
