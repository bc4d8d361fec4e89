//! The viewer's HTTP server: axum routes, one hyper connection task per client, and a
//! watchdog that closes the connections of clients that stopped reading.

use super::hub::{Counts, Hub, Next};
use crate::record::Record;
use axum::{
    Router,
    extract::{Extension, State},
    http::{HeaderValue, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::get,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::{
    collections::BTreeMap,
    convert::Infallible,
    io,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    thread::JoinHandle,
    time::{Duration, Instant},
};
use tokio::sync::{Notify, Semaphore, oneshot};
use tower::ServiceExt as _;

/// How long a client may be behind without taking a record before it is dropped.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections open at once; more are closed as they are accepted.
pub const MAX_CONNECTIONS: usize = 64;

/// How long a connection has to send a request's head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// Lets the page load its own files and open its own event stream, nothing else.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// What the server's tasks share with the simulation's thread.
struct Shared {
    hub: Mutex<Hub>,
    /// Woken at each publish and at the end.
    changed: Notify,
    /// The zero of the hub's clock.
    started: Instant,
    stall_timeout: Duration,
    /// The connection of each reading client, to close when it is dropped.
    connections: Mutex<BTreeMap<u64, Arc<Notify>>>,
}

impl Shared {
    fn hub(&self) -> MutexGuard<'_, Hub> {
        self.hub
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }
}

/// A connection's switch: notified, the connection is closed.
#[derive(Clone)]
struct CloseConnection(Arc<Notify>);

/// A running viewer; stops when dropped.
pub struct Viewer {
    shared: Arc<Shared>,
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Viewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Viewer")
            .field("address", &self.address)
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

impl Viewer {
    /// Binds `address` and serves the page from a thread of its own.
    ///
    /// # Errors
    /// When the address cannot be bound, or the server's thread or runtime cannot start.
    pub fn start(address: SocketAddr) -> io::Result<Self> {
        Self::with_stall_timeout(address, STALL_TIMEOUT)
    }

    /// [`Self::start`], dropping clients that take nothing for `stall_timeout` while behind.
    ///
    /// # Errors
    /// As [`Self::start`].
    pub fn with_stall_timeout(address: SocketAddr, stall_timeout: Duration) -> io::Result<Self> {
        let listener = std::net::TcpListener::bind(address)?;
        if !address.ip().is_loopback() {
            eprintln!(
                "viewer: serving at {address}, beyond loopback: anyone who can reach it sees the run"
            );
        }
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            hub: Mutex::default(),
            changed: Notify::new(),
            started: Instant::now(),
            stall_timeout,
            connections: Mutex::default(),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = oneshot::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("viewer".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => serve(listener, serving, stopped).await,
                        Err(error) => eprintln!("viewer: cannot listen: {error}"),
                    }
                });
            })?;
        Ok(Self {
            shared,
            address,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Adds `record` to the log every client reads.
    pub fn publish(&self, record: &Record) {
        let line = serde_json::to_string(record).expect("a record serializes");
        self.publish_line(line.into());
    }

    /// Adds one already serialized record (a line of a recorded log) to the log.
    pub fn publish_line(&self, line: Arc<str>) {
        let now = self.shared.now();
        self.shared.hub().publish(line, now);
        self.shared.changed.notify_waiters();
    }

    /// No more records will come: clients that have read everything see the stream end.
    pub fn finish(&self) {
        let now = self.shared.now();
        self.shared.hub().finish(now);
        self.shared.changed.notify_waiters();
    }

    /// The server's counts.
    pub fn counts(&self) -> Counts {
        self.shared.hub().counts()
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route("/events", get(events))
        .route("/status", get(status))
        .with_state(shared)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    let counts = shared.hub().counts();
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&counts).expect("counts serialize"),
    )
        .into_response()
}

/// Leaves the hub when the client's stream is dropped (its connection ended).
struct Reading {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Reading {
    fn drop(&mut self) {
        self.shared.hub().leave(self.id);
        self.shared
            .connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.id);
    }
}

async fn events(
    State(shared): State<Arc<Shared>>,
    Extension(close): Extension<CloseConnection>,
) -> Response {
    let Some(id) = shared.hub().join(shared.now()) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many viewers\n").into_response();
    };
    shared
        .connections
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(id, close.0);
    let reading = Reading { shared, id };
    // After the last record, one `done` event, so the page knows the log is complete (and
    // does not reconnect to read it again).
    let stream = futures::stream::unfold(Some(reading), |reading| async move {
        let reading = reading?;
        loop {
            let shared = reading.shared.clone();
            // Registered before the check, so a publish in between is not missed.
            let changed = shared.changed.notified();
            futures::pin_mut!(changed);
            changed.as_mut().enable();
            let next = shared.hub().next(reading.id, shared.now());
            match next {
                Next::Record(line) => {
                    let event = Event::default().data(&*line);
                    return Some((Ok::<_, Infallible>(event), Some(reading)));
                }
                Next::Wait => changed.await,
                Next::Done => {
                    let done = Event::default().event("done").data("");
                    return Some((Ok(done), None));
                }
                // Dropped: no `done`, so the page does not take a cut log for the whole.
                Next::Gone => return None,
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Accepts connections until `stop`, each served by a task of its own that the watchdog
/// can close.
async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    let router = router(shared.clone());
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let watchdog = tokio::spawn(watch(shared.clone()));
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(error) => {
                // Out of descriptors, most likely: wait rather than spin.
                eprintln!("viewer: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(tcp);
            continue;
        };
        let close = Arc::new(Notify::new());
        let router = router.clone();
        let switch = CloseConnection(close.clone());
        let service = hyper::service::service_fn(move |mut request: axum::http::Request<_>| {
            request.extensions_mut().insert(switch.clone());
            let direct = request
                .headers()
                .get(header::HOST)
                .and_then(|host| host.to_str().ok())
                .is_some_and(super::host_is_address);
            let router = router.clone();
            async move {
                if !direct {
                    let refused = (
                        StatusCode::FORBIDDEN,
                        "ask for this server by its address\n",
                    );
                    return Ok(refused.into_response());
                }
                router.oneshot(request).await
            }
        });
        tokio::spawn(async move {
            let _slot = slot;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let connection = builder.serve_connection(TokioIo::new(tcp), service);
            tokio::select! {
                _ = connection => {}
                _ = close.notified() => {}
            }
        });
    }
    watchdog.abort();
}

/// Four times a second, closes the connections of the clients that stopped reading.
async fn watch(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let stalled = shared
            .hub()
            .drop_stalled(shared.now(), shared.stall_timeout);
        if stalled.is_empty() {
            continue;
        }
        let connections = shared
            .connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for id in stalled {
            if let Some(close) = connections.get(&id) {
                // Stored, so it fires even if the connection task is not waiting yet.
                close.notify_one();
            }
        }
    }
}
