//! A minimal HTTP endpoint that serves the runtime's Prometheus text at `GET /metrics`.
//!
//! One request per connection. The request head is read byte by byte up to 8 KiB; the whole
//! exchange (request and response) must finish within 5 s; anything but `GET /metrics` gets
//! 404 or 405, and nothing but the metrics is ever served. Each connection is its own task,
//! at most [`MAX_REQUESTS`] at once (more are closed unanswered), so a slow or hostile client
//! costs bounded memory and never holds up the node. The endpoint has no authentication:
//! bind it to loopback or a monitoring network.
//!
//! Not `commonware_runtime::tokio::telemetry::init`'s server: that one panics in a task of its
//! own when its address is taken (the node must exit with a message instead), bounds neither
//! the number of connections nor how long a slow client may hold one, and runs only on tokio
//! (this one runs on any commonware runtime).

use commonware_runtime::{Clock, Listener as _, Metrics, Network, Sink as _, Spawner, Supervisor};
use futures::{FutureExt as _, select_biased};
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

/// Largest request head read.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// How long one whole exchange may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests served at once.
pub const MAX_REQUESTS: usize = 16;

/// Serves `/metrics` on `address` until the task is stopped; returns the bound address
/// through `bound` once listening.
///
/// # Errors
/// When `address` cannot be bound.
pub async fn serve<E>(
    context: E,
    address: SocketAddr,
    bound: futures::channel::oneshot::Sender<SocketAddr>,
) -> Result<(), commonware_runtime::Error>
where
    E: Spawner + Clock + Network + Metrics + Supervisor,
{
    let mut listener = context.bind(address).await?;
    if !address.ip().is_loopback() {
        tracing::warn!(%address, "metrics are served without authentication beyond loopback");
    }
    let _ = bound.send(listener.local_addr()?);
    let live = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((_, sink, stream)) = listener.accept().await else {
            context.sleep(Duration::from_millis(100)).await;
            continue;
        };
        if live.fetch_add(1, Ordering::SeqCst) >= MAX_REQUESTS {
            live.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let live = live.clone();
        context.child("request").spawn(move |context| async move {
            let exchange = async {
                let head = read_head(stream).await?;
                let response = respond(&head, || context.encode());
                let mut sink = sink;
                sink.send(response).await.ok()
            }
            .fuse();
            let timeout = context.sleep(REQUEST_TIMEOUT).fuse();
            futures::pin_mut!(exchange, timeout);
            select_biased! {
                _ = exchange => {},
                _ = timeout => {},
            }
            live.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// The request head, or `None` if the client closed, sent too much, or sent a bad head.
async fn read_head(mut stream: impl commonware_runtime::Stream) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD_BYTES {
            return None;
        }
        let byte = stream.recv(1).await.ok()?;
        head.extend_from_slice(byte.coalesce().as_ref());
    }
    Some(head)
}

/// The whole HTTP response to a request head.
fn respond(head: &[u8], metrics: impl FnOnce() -> String) -> Vec<u8> {
    let line = head.split(|&byte| byte == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&byte| byte == b' ');
    let (method, path) = (parts.next(), parts.next());
    let (status, body) = match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => ("200 OK", metrics()),
        (Some(b"GET"), _) => ("404 Not Found", "not found: try /metrics\n".to_string()),
        _ => ("405 Method Not Allowed", "only GET /metrics\n".to_string()),
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(response: Vec<u8>) -> String {
        String::from_utf8(response).unwrap()
    }

    #[test]
    fn metrics_are_served_at_metrics_only() {
        let ok = text(respond(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", || {
            "up 1\n".into()
        }));
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Length: 5\r\n") && ok.ends_with("\r\n\r\nup 1\n"));
        let missing = text(respond(b"GET / HTTP/1.1\r\n\r\n", || unreachable!()));
        assert!(missing.starts_with("HTTP/1.1 404"));
        let post = text(respond(
            b"POST /metrics HTTP/1.1\r\n\r\n",
            || unreachable!(),
        ));
        assert!(post.starts_with("HTTP/1.1 405"));
        let garbage = text(respond(b"\x00\x01\r\n\r\n", || unreachable!()));
        assert!(garbage.starts_with("HTTP/1.1 405"));
    }
}
