//! A minimal HTTP endpoint that serves the runtime's Prometheus text at `GET /metrics`.
//!
//! One request per connection. The request head is read byte by byte up to 8 KiB and must
//! arrive within [`HEAD_TIMEOUT`] (a scraper sends it at once); the whole exchange must finish
//! within 5 s; anything but `GET /metrics` gets 404 or 405, and nothing but the metrics is
//! ever served. Each connection is its own task, at most [`MAX_REQUESTS`] at once and
//! [`MAX_REQUESTS_PER_IP`] from one address (more are closed unanswered). When every slot is
//! taken, a new connection takes the slot of the one that has waited longest for its head:
//! a slow-loris client (many connections that send their head a byte at a time) mostly evicts
//! its own connections, and a scraper that sends its request at once is answered throughout.
//! Not covered: clients from many addresses opening connections fast enough to make 16 new
//! ones within one scraper's request time (there is no rate per address).
//! A slow or hostile client costs bounded memory and never holds up the node. The endpoint
//! has no authentication: bind it to loopback or a monitoring network.
//!
//! Not `commonware_runtime::tokio::telemetry::init`'s server: that one panics in a task of its
//! own when its address is taken (the node must exit with a message instead), bounds neither
//! the number of connections nor how long a slow client may hold one, and runs only on tokio
//! (this one runs on any commonware runtime).

use commonware_runtime::{Clock, Listener as _, Metrics, Network, Sink as _, Spawner, Supervisor};
use futures::{FutureExt as _, channel::oneshot, select_biased};
use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

/// Largest request head read.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// How long one whole exchange may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the request head may take to arrive.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(1);
/// Requests served at once.
pub const MAX_REQUESTS: usize = 16;
/// Requests served at once to one IP address.
pub const MAX_REQUESTS_PER_IP: usize = 4;

/// One request being served.
struct Slot {
    ip: IpAddr,
    since: SystemTime,
    /// Still waiting for its head (the only requests that may be evicted).
    reading_head: bool,
    /// Dropping it ends the request.
    _evict: oneshot::Sender<()>,
}

/// Every request being served, by number.
#[derive(Default)]
struct Slots {
    next: u64,
    live: BTreeMap<u64, Slot>,
}

impl Slots {
    /// A slot for a request from `ip`, evicting the request that has waited longest for its
    /// head when all are taken; `None` when `ip` has its share or no request can be evicted.
    fn admit(&mut self, ip: IpAddr, now: SystemTime) -> Option<(u64, oneshot::Receiver<()>)> {
        if self.live.values().filter(|slot| slot.ip == ip).count() >= MAX_REQUESTS_PER_IP {
            return None;
        }
        if self.live.len() >= MAX_REQUESTS {
            let (&oldest, _) = self
                .live
                .iter()
                .filter(|(_, slot)| slot.reading_head)
                .min_by_key(|(_, slot)| slot.since)?;
            self.live.remove(&oldest);
        }
        let (evict, evicted) = oneshot::channel();
        let id = self.next;
        self.next += 1;
        self.live.insert(
            id,
            Slot {
                ip,
                since: now,
                reading_head: true,
                _evict: evict,
            },
        );
        Some((id, evicted))
    }
}

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
    let slots = Arc::new(Mutex::new(Slots::default()));
    loop {
        let Ok((from, sink, stream)) = listener.accept().await else {
            context.sleep(Duration::from_millis(100)).await;
            continue;
        };
        let admitted = slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .admit(from.ip().to_canonical(), context.current());
        let Some((id, evicted)) = admitted else {
            tracing::debug!(%from, "metrics request refused: no slot for this address");
            continue;
        };
        let slots = slots.clone();
        context.child("request").spawn(move |context| async move {
            let exchange = async {
                let head = {
                    let reading = read_head(stream).fuse();
                    let deadline = context.sleep(HEAD_TIMEOUT).fuse();
                    futures::pin_mut!(reading, deadline);
                    select_biased! {
                        head = reading => head?,
                        _ = deadline => return None,
                    }
                };
                if let Some(slot) = slots
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .live
                    .get_mut(&id)
                {
                    slot.reading_head = false;
                }
                let response = respond(&head, || context.encode());
                let mut sink = sink;
                sink.send(response).await.ok()
            }
            .fuse();
            let timeout = context.sleep(REQUEST_TIMEOUT).fuse();
            let evicted = evicted.fuse();
            futures::pin_mut!(exchange, timeout, evicted);
            select_biased! {
                _ = exchange => {},
                _ = timeout => {},
                _ = evicted => {},
            }
            slots
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .live
                .remove(&id);
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

    #[test]
    fn slots_cap_each_address_and_evict_the_longest_waiting_head() {
        let mut slots = Slots::default();
        let at = |ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
        let ip = |last| IpAddr::from([10, 0, 0, last]);
        for n in 0..MAX_REQUESTS_PER_IP as u64 {
            assert!(slots.admit(ip(1), at(n)).is_some());
        }
        assert!(slots.admit(ip(1), at(9)).is_none(), "its share is taken");
        // Fill the rest from other addresses; the oldest of those has sent its head already.
        let mut evicted = Vec::new();
        for n in 0..(MAX_REQUESTS - MAX_REQUESTS_PER_IP) as u8 {
            let (id, receiver) = slots.admit(ip(2 + n / 4), at(100 + u64::from(n))).unwrap();
            evicted.push((id, receiver));
        }
        assert_eq!(slots.live.len(), MAX_REQUESTS);
        let answering = evicted[0].0;
        slots.live.get_mut(&answering).unwrap().reading_head = false;
        // Full: a newcomer takes the slot of the oldest request still reading its head
        // (address 1's first), never one already answered.
        let (_, _) = slots.admit(ip(50), at(1_000)).unwrap();
        assert_eq!(slots.live.len(), MAX_REQUESTS);
        assert!(slots.live.contains_key(&answering));
        assert!(
            !slots.live.contains_key(&0),
            "the oldest head-reader was evicted"
        );
    }
}
