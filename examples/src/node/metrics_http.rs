//! A minimal HTTP endpoint that serves the runtime's Prometheus text at `GET /metrics`, and,
//! when given a snapshot of the node's peers, the node's live page at `GET /` (see
//! `status_page`): its script and style, `GET /peers` (one snapshot as JSON) and
//! `GET /events` (a snapshot every second as server-sent events).
//!
//! Event streams: at most [`MAX_STREAMS`] at once and [`MAX_STREAMS_PER_IP`] from one address
//! (more are answered 503), each ends after
//! [`MAX_STREAM`] (the page's `EventSource` reconnects), and a client that has not taken a
//! snapshot within [`WRITE_TIMEOUT`] is dropped and counted
//! (`status_streams_dropped_slow_total`). A stream holds one snapshot at a time. The page's
//! routes answer only requests whose `Host` is an address or `localhost`, so a web page the
//! operator visits cannot rebind its own name to this address and read them (`/metrics`
//! answers any `Host`, as scrapers name their targets).
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

use super::status_page::{self, Snapshot};
use commonware_runtime::{
    Clock, Listener as _, Metrics, Network, Sink as _, Spawner, Supervisor,
    telemetry::metrics::{Counter, MetricsExt as _},
};
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
/// Event streams served at once.
pub const MAX_STREAMS: usize = 4;
/// Event streams served at once to one IP address.
pub const MAX_STREAMS_PER_IP: usize = 2;
/// How long one event stream lasts before it is closed (the page reconnects).
pub const MAX_STREAM: Duration = Duration::from_secs(600);
/// How long a stream's client may take to take one snapshot before it is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Time between two snapshots of a stream.
pub const STREAM_INTERVAL: Duration = Duration::from_secs(1);

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

/// Serves `/metrics` (and, with `page`, the node's live page) on `address` until the task is
/// stopped; returns the bound address through `bound` once listening.
///
/// # Errors
/// When `address` cannot be bound.
pub async fn serve<E>(
    context: E,
    address: SocketAddr,
    bound: futures::channel::oneshot::Sender<SocketAddr>,
    page: Option<Snapshot>,
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
    let streams = Streams::default();
    let dropped_slow = context.counter(
        "status_streams_dropped_slow",
        "live page event streams dropped because the client stopped reading",
    );
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
        let (page, streams, dropped_slow) = (page.clone(), streams.clone(), dropped_slow.clone());
        context.child("request").spawn(move |context| async move {
            // `Some` when the request asks for the event stream.
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
                let mut sink = sink;
                match respond(&head, || context.encode(), page.as_ref()) {
                    Answer::Once(response) => {
                        let _ = sink.send(response).await;
                        None
                    }
                    Answer::Events(snapshot) => Some((sink, snapshot)),
                }
            }
            .fuse();
            let timeout = context.sleep(REQUEST_TIMEOUT).fuse();
            let evicted = evicted.fuse();
            futures::pin_mut!(exchange, timeout, evicted);
            let stream = select_biased! {
                stream = exchange => stream,
                _ = timeout => None,
                _ = evicted => None,
            };
            // A stream holds a stream slot, not a request slot.
            slots
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .live
                .remove(&id);
            if let Some((sink, snapshot)) = stream {
                let ip = from.ip().to_canonical();
                stream_events(&context, sink, snapshot, streams.take(ip), &dropped_slow).await;
            }
        });
    }
}

/// The event streams being served, by address.
#[derive(Clone, Default)]
struct Streams(Arc<Mutex<BTreeMap<IpAddr, usize>>>);

impl Streams {
    /// A stream slot for `ip`, if neither the whole nor `ip`'s share is taken.
    fn take(&self, ip: IpAddr) -> Option<StreamSlot> {
        let mut open = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let total: usize = open.values().sum();
        let mine = open.get(&ip).copied().unwrap_or(0);
        if total >= MAX_STREAMS || mine >= MAX_STREAMS_PER_IP {
            return None;
        }
        open.insert(ip, mine + 1);
        Some(StreamSlot {
            streams: self.clone(),
            ip,
        })
    }

    #[cfg(test)]
    fn open(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .sum()
    }
}

/// A taken stream slot, given back when dropped.
struct StreamSlot {
    streams: Streams,
    ip: IpAddr,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .streams
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Sends a snapshot every [`STREAM_INTERVAL`] as a server-sent event, until the client goes,
/// stops reading for [`WRITE_TIMEOUT`] (counted in `dropped_slow`), or [`MAX_STREAM`] passes.
async fn stream_events<E: Clock>(
    context: &E,
    mut sink: impl commonware_runtime::Sink,
    snapshot: Snapshot,
    slot: Option<StreamSlot>,
    dropped_slow: &Counter,
) {
    let Some(_slot) = slot else {
        // Not even this is waited on for long.
        let refusing = sink
            .send(plain(
                "503 Service Unavailable",
                "too many live pages open\n",
            ))
            .fuse();
        let deadline = context.sleep(WRITE_TIMEOUT).fuse();
        futures::pin_mut!(refusing, deadline);
        select_biased! {
            _ = refusing => {},
            _ = deadline => {},
        }
        return;
    };
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
                X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n";
    let started = context.current();
    let mut message = head.as_bytes().to_vec();
    loop {
        message.extend_from_slice(format!("data: {}\n\n", snapshot()).as_bytes());
        let sending = sink.send(std::mem::take(&mut message)).fuse();
        let deadline = context.sleep(WRITE_TIMEOUT).fuse();
        futures::pin_mut!(sending, deadline);
        select_biased! {
            sent = sending => if sent.is_err() {
                return;
            },
            _ = deadline => {
                dropped_slow.inc();
                tracing::debug!("live page stream dropped: the client stopped reading");
                return;
            },
        }
        if context
            .current()
            .duration_since(started)
            .unwrap_or_default()
            >= MAX_STREAM
        {
            return;
        }
        context.sleep(STREAM_INTERVAL).await;
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

/// What to answer a request with.
enum Answer {
    /// This response, then close.
    Once(Vec<u8>),
    /// The event stream of these snapshots.
    Events(Snapshot),
}

/// The answer to a request head: `/metrics` always; the live page's routes when `page` is
/// given.
fn respond(head: &[u8], metrics: impl FnOnce() -> String, page: Option<&Snapshot>) -> Answer {
    let line = head.split(|&byte| byte == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&byte| byte == b' ');
    let (method, path) = (parts.next(), parts.next());
    if method != Some(b"GET") {
        return Answer::Once(plain("405 Method Not Allowed", "only GET\n"));
    }
    let direct = head
        .split(|&byte| byte == b'\n')
        .filter_map(|line| std::str::from_utf8(line).ok())
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("host"))
        .is_some_and(|(_, host)| palisade_sim::web::host_is_address(host));
    if page.is_some() && path != Some(b"/metrics") && !direct {
        return Answer::Once(plain("403 Forbidden", "ask for this node by its address\n"));
    }
    let asset = |content_type: &str, body: &str| {
        Answer::Once(response(
            "200 OK",
            &[
                ("Content-Type", content_type),
                (
                    "Content-Security-Policy",
                    status_page::CONTENT_SECURITY_POLICY,
                ),
                ("X-Content-Type-Options", "nosniff"),
                ("Cache-Control", "no-store"),
            ],
            body,
        ))
    };
    match (path, page) {
        (Some(b"/metrics"), _) => Answer::Once(response(
            "200 OK",
            &[("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
            &metrics(),
        )),
        (Some(b"/"), Some(_)) => asset("text/html; charset=utf-8", status_page::INDEX_HTML),
        (Some(b"/node.js"), Some(_)) => {
            asset("text/javascript; charset=utf-8", status_page::NODE_JS)
        }
        (Some(b"/node.css"), Some(_)) => asset("text/css; charset=utf-8", status_page::NODE_CSS),
        (Some(b"/peers"), Some(snapshot)) => Answer::Once(response(
            "200 OK",
            &[
                ("Content-Type", "application/json"),
                ("Cache-Control", "no-store"),
            ],
            &snapshot(),
        )),
        (Some(b"/events"), Some(snapshot)) => Answer::Events(snapshot.clone()),
        (_, Some(_)) => Answer::Once(plain(
            "404 Not Found",
            "not found: try /, /peers, /events or /metrics\n",
        )),
        (_, None) => Answer::Once(plain("404 Not Found", "not found: try /metrics\n")),
    }
}

fn plain(status: &str, body: &str) -> Vec<u8> {
    response(
        status,
        &[("Content-Type", "text/plain; charset=utf-8")],
        body,
    )
}

fn response(status: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(answer: Answer) -> String {
        match answer {
            Answer::Once(response) => String::from_utf8(response).unwrap(),
            Answer::Events(_) => "events".into(),
        }
    }

    fn page() -> Snapshot {
        Arc::new(|| "{\"peers\":[]}".to_string())
    }

    #[test]
    fn metrics_are_served_at_metrics_only() {
        let ok = text(respond(
            b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            || "up 1\n".into(),
            None,
        ));
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Length: 5\r\n") && ok.ends_with("\r\n\r\nup 1\n"));
        // Without a page, its routes are not there.
        for path in ["/", "/peers", "/events", "/node.js"] {
            let head = format!("GET {path} HTTP/1.1\r\n\r\n");
            let missing = text(respond(head.as_bytes(), || unreachable!(), None));
            assert!(missing.starts_with("HTTP/1.1 404"), "{path}: {missing}");
        }
        let post = text(respond(
            b"POST /metrics HTTP/1.1\r\n\r\n",
            || unreachable!(),
            None,
        ));
        assert!(post.starts_with("HTTP/1.1 405"));
        let garbage = text(respond(b"\x00\x01\r\n\r\n", || unreachable!(), None));
        assert!(garbage.starts_with("HTTP/1.1 405"));
    }

    #[test]
    fn the_live_page_routes_and_nothing_else() {
        let page = page();
        let get = |path: &str| {
            let head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:9100\r\n\r\n");
            text(respond(head.as_bytes(), || "m".into(), Some(&page)))
        };
        let index = get("/");
        assert!(index.starts_with("HTTP/1.1 200 OK"), "{index}");
        assert!(index.contains("Content-Security-Policy: default-src 'none'"));
        assert!(index.contains("<script src=\"/node.js\""));
        assert!(get("/node.js").contains("text/javascript"));
        assert!(get("/node.css").contains("text/css"));
        assert!(get("/peers").ends_with("\r\n\r\n{\"peers\":[]}"));
        assert_eq!(get("/events"), "events");
        assert!(get("/metrics").ends_with("\r\n\r\nm"));
        for path in ["/index.html", "/../x", "/peers/1", "/events?x"] {
            assert!(get(path).starts_with("HTTP/1.1 404"), "{path}");
        }
        let post = text(respond(
            b"POST / HTTP/1.1\r\n\r\n",
            || unreachable!(),
            Some(&page),
        ));
        assert!(post.starts_with("HTTP/1.1 405"));
        // A name other than localhost (a page that rebound its own name to us), or no
        // `Host` at all: the page's routes are refused, the metrics are not.
        for host in [
            "Host: evil.example:9100\r\n",
            "HOST: localhost.evil.example\r\n",
            "",
        ] {
            for path in ["/", "/peers", "/events"] {
                let head = format!("GET {path} HTTP/1.1\r\n{host}\r\n");
                let refused = text(respond(head.as_bytes(), || "m".into(), Some(&page)));
                assert!(
                    refused.starts_with("HTTP/1.1 403"),
                    "{host} {path}: {refused}"
                );
            }
            let head = format!("GET /metrics HTTP/1.1\r\n{host}\r\n");
            let metrics = text(respond(head.as_bytes(), || "m".into(), Some(&page)));
            assert!(metrics.ends_with("\r\n\r\nm"), "{metrics}");
        }
        let named = text(respond(
            b"GET /peers HTTP/1.1\r\nhost: LOCALHOST:9100\r\n\r\n",
            || "m".into(),
            Some(&page),
        ));
        assert!(named.starts_with("HTTP/1.1 200"), "{named}");
    }

    /// A client that takes `accepted` writes, then stops reading: every later write pends.
    struct Stalling {
        accepted: usize,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl commonware_runtime::Sink for Stalling {
        async fn send(
            &mut self,
            buffers: impl Into<commonware_runtime::IoBufs> + Send,
        ) -> Result<(), commonware_runtime::Error> {
            if self.accepted == 0 {
                return futures::future::pending().await;
            }
            self.accepted -= 1;
            let bytes = buffers.into().coalesce();
            self.written
                .lock()
                .unwrap()
                .extend_from_slice(bytes.as_ref());
            Ok(())
        }
    }

    #[test]
    fn a_stream_whose_client_stops_reading_is_dropped_and_counted() {
        use commonware_runtime::{Runner as _, deterministic};
        deterministic::Runner::default().start(|context| async move {
            let written = Arc::new(Mutex::new(Vec::new()));
            let sink = Stalling {
                accepted: 3,
                written: written.clone(),
            };
            let streams = Streams::default();
            let dropped = context.counter("dropped", "test");
            let snapshot: Snapshot = Arc::new(|| "{}".to_string());
            let started = context.current();
            let slot = streams.take(IpAddr::from([127, 0, 0, 1]));
            stream_events(&context, sink, snapshot, slot, &dropped).await;
            // Three snapshots a second apart, then one write that waited the whole timeout.
            let took = context.current().duration_since(started).unwrap();
            assert_eq!(took, 3 * STREAM_INTERVAL + WRITE_TIMEOUT);
            assert_eq!(dropped.get(), 1);
            assert_eq!(streams.open(), 0, "its slot was given back");
            let text = String::from_utf8(written.lock().unwrap().clone()).unwrap();
            assert!(text.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream"));
            assert_eq!(text.matches("data: {}\n\n").count(), 3);
        });
    }

    #[test]
    fn stream_slots_are_capped_and_given_back() {
        let streams = Streams::default();
        let ip = |last| IpAddr::from([10, 0, 0, last]);
        let first: Vec<StreamSlot> = (0..MAX_STREAMS_PER_IP)
            .map(|_| streams.take(ip(1)).unwrap())
            .collect();
        assert!(streams.take(ip(1)).is_none(), "one address's share");
        let others: Vec<StreamSlot> = (0..MAX_STREAMS - MAX_STREAMS_PER_IP)
            .map(|n| streams.take(ip(2 + n as u8)).unwrap())
            .collect();
        assert!(streams.take(ip(99)).is_none(), "all of them");
        drop(first);
        assert_eq!(streams.open(), MAX_STREAMS - MAX_STREAMS_PER_IP);
        assert!(streams.take(ip(1)).is_some());
        drop(others);
        assert_eq!(streams.open(), 0);
        assert!(streams.0.lock().unwrap().is_empty(), "no address is kept");
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
