//! A transparent encrypt-on-the-wire proxy pair.
//!
//! ```text
//! plain client --TCP--> proxy client ==palisade==> proxy server --TCP--> backend
//! ```
//!
//! The proxy client accepts plain TCP connections and carries each one over its own palisade
//! stream to the proxy server, which admits only the client keys it was given (before any
//! signature is checked, through the stream's bouncer) and opens a plain connection to the
//! backend for each. Bytes are carried as they come, in messages of up to [`CHUNK_BYTES`],
//! in order, authenticated and encrypted; neither the service nor its clients change.
//!
//! Ends: when a plain side closes, the stream's authenticated close tells the other proxy,
//! which writes everything received before it and then closes its plain connection. The
//! runtime reports a plain connection reset like a close, so it is passed on as one. A read
//! that times out (the runtime bounds each read; the `proxy` binary sets one hour) aborts the
//! stream instead, so the other side sees the connection cut, not a clean end. The runtime's
//! sockets cannot half-close, so a client that shuts down only its sending side and waits
//! for more data sees the whole connection close. A refused client's connection is closed
//! unanswered.
//!
//! Stopping: when the runtime is stopped (the `proxy` binary does so on SIGINT and SIGTERM),
//! each proxy stops accepting, and every carried connection ends as if its plain side had
//! closed: the stream's authenticated close goes to the other proxy (waiting at most
//! [`CLOSE_TIMEOUT`] for a stuck peer), which then closes its plain side cleanly.
//!
//! Limits: each proxy carries at most [`MAX_CONNECTIONS`] connections at once (more are
//! closed unanswered) and pauses after a failed accept (for example when out of file
//! descriptors) rather than spin.

use commonware_cryptography::ed25519;
use commonware_runtime::{
    Clock, IoBufs, Listener as _, Network, Sink, SinkOf, Spawner, Stream, StreamOf, Supervisor,
};
use futures::{FutureExt as _, channel::oneshot, select};
use palisade_stream::{Config, Receiver, Sender, dial, listen};
use rand_core::CryptoRng;
use std::{
    collections::BTreeSet,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

/// Largest message one read of the plain side becomes.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// Connections a proxy carries at once (handshakes included).
pub const MAX_CONNECTIONS: usize = 1024;

/// Pause after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Longest wait for a stuck peer to take a stream's close when the proxy stops.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a stopping proxy looks whether its connections have ended.
const DRAIN_POLL: Duration = Duration::from_millis(10);

/// Counts live connections; a slot is given back when dropped.
#[derive(Clone, Default)]
struct Slots(Arc<AtomicUsize>);

struct Slot(Arc<AtomicUsize>);

impl Slots {
    fn live(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    fn take(&self) -> Option<Slot> {
        let taken = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |live| {
                (live < MAX_CONNECTIONS).then_some(live + 1)
            })
            .is_ok();
        taken.then(|| Slot(self.0.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The proxy client's settings.
#[derive(Clone)]
pub struct ClientSettings {
    /// Where plain clients connect.
    pub listen: SocketAddr,
    /// The proxy server.
    pub server: SocketAddr,
    /// The proxy server's public key.
    pub server_key: ed25519::PublicKey,
    /// This proxy's identity.
    pub key: ed25519::PrivateKey,
    /// The namespace both proxies use.
    pub namespace: Vec<u8>,
}

impl std::fmt::Debug for ClientSettings {
    /// Everything but the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSettings")
            .field("listen", &self.listen)
            .field("server", &self.server)
            .field("server_key", &self.server_key)
            .field("namespace", &String::from_utf8_lossy(&self.namespace))
            .finish_non_exhaustive()
    }
}

/// The proxy server's settings.
#[derive(Clone)]
pub struct ServerSettings {
    /// Where proxy clients connect.
    pub listen: SocketAddr,
    /// The plain service behind the proxy.
    pub backend: SocketAddr,
    /// This proxy's identity.
    pub key: ed25519::PrivateKey,
    /// The proxy clients admitted.
    pub allowed: BTreeSet<ed25519::PublicKey>,
    /// The namespace both proxies use.
    pub namespace: Vec<u8>,
}

impl std::fmt::Debug for ServerSettings {
    /// Everything but the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSettings")
            .field("listen", &self.listen)
            .field("backend", &self.backend)
            .field("allowed", &self.allowed.len())
            .field("namespace", &String::from_utf8_lossy(&self.namespace))
            .finish_non_exhaustive()
    }
}

/// Runs the proxy client: sends the bound address on `ready`, then serves until stopped.
///
/// # Errors
/// When the listen address cannot be bound.
pub async fn client<E>(
    context: E,
    settings: ClientSettings,
    ready: oneshot::Sender<SocketAddr>,
) -> Result<(), commonware_runtime::Error>
where
    E: Network + Spawner + Supervisor + Clock + CryptoRng,
{
    let address = settings.listen;
    let settings = Arc::new(settings);
    serve(
        context,
        address,
        ready,
        move |context: E, from, plain_sink, plain_stream| {
            let settings = settings.clone();
            async move {
                let Ok((sink, stream)) = context.dial(settings.server).await else {
                    tracing::warn!(%from, server = %settings.server, "proxy server unreachable");
                    return;
                };
                let config = Config::recommended(settings.key.clone(), &settings.namespace);
                let server_key = settings.server_key.clone();
                match dial(context.child("stream"), config, server_key, sink, stream).await {
                    Ok((sender, receiver)) => {
                        tracing::info!(%from, "carrying a connection");
                        carry(&context, plain_sink, plain_stream, sender, receiver).await;
                    }
                    Err(error) => {
                        let reason = error.reason();
                        tracing::warn!(%from, reason, "handshake with the proxy server failed");
                    }
                }
            }
        },
    )
    .await
}

/// Runs the proxy server: sends the bound address on `ready`, then serves until stopped.
///
/// # Errors
/// When the listen address cannot be bound.
pub async fn server<E>(
    context: E,
    settings: ServerSettings,
    ready: oneshot::Sender<SocketAddr>,
) -> Result<(), commonware_runtime::Error>
where
    E: Network + Spawner + Supervisor + Clock + CryptoRng,
{
    let address = settings.listen;
    let settings = Arc::new(settings);
    serve(
        context,
        address,
        ready,
        move |context: E, from, sink, stream| {
            let settings = settings.clone();
            async move {
                let allowed = settings.clone();
                let bouncer = move |claimed: ed25519::PublicKey| {
                    let known = allowed.allowed.contains(&claimed);
                    async move { known }
                };
                let config = Config::recommended(settings.key.clone(), &settings.namespace);
                let (peer, sender, receiver) = match listen(
                    context.child("stream"),
                    config,
                    bouncer,
                    sink,
                    stream,
                )
                .await
                {
                    Ok(halves) => halves,
                    Err(error) => {
                        tracing::warn!(%from, reason = error.reason(), "refused a proxy client");
                        return;
                    }
                };
                let Ok((plain_sink, plain_stream)) = context.dial(settings.backend).await else {
                    tracing::warn!(backend = %settings.backend, "backend unreachable");
                    return;
                };
                let client = crate::keyfile::public_key_hex(&peer);
                tracing::info!(%from, %client, "carrying a connection");
                carry(&context, plain_sink, plain_stream, sender, receiver).await;
            }
        },
    )
    .await
}

/// The accept loop both sides share: binds `address`, reports it on `ready`, and runs
/// `connection` in a task of its own for each accepted connection, at most
/// [`MAX_CONNECTIONS`] at once, pausing after a failed accept. Once the runtime stops, it
/// accepts no more and returns when every connection has ended.
async fn serve<E, F, Fut>(
    context: E,
    address: SocketAddr,
    ready: oneshot::Sender<SocketAddr>,
    connection: F,
) -> Result<(), commonware_runtime::Error>
where
    E: Network + Spawner + Supervisor + Clock,
    F: Fn(E, SocketAddr, SinkOf<E>, StreamOf<E>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut listener = context.bind(address).await?;
    let _ = ready.send(listener.local_addr()?);
    let slots = Slots::default();
    // Held until the connections are drained, so the runtime's stop waits for them.
    let mut stopped = context.stopped().fuse();
    loop {
        let accepted = select! {
            accepted = listener.accept().fuse() => accepted,
            _ = stopped => break,
        };
        let Ok((from, sink, stream)) = accepted else {
            context.sleep(ACCEPT_BACKOFF).await;
            continue;
        };
        let Some(slot) = slots.take() else {
            tracing::warn!(%from, "too many connections: closed");
            continue;
        };
        let connection = connection.clone();
        context
            .child("connection")
            .spawn(move |context| async move {
                let _slot = slot;
                connection(context, from, sink, stream).await;
            });
    }
    // The connections are this task's children: returning would cut them, so wait until
    // each has sent its close.
    tracing::info!(
        connections = slots.live(),
        "stopping: closing every connection"
    );
    let deadline = context.current() + CLOSE_TIMEOUT * 2;
    while slots.live() > 0 && context.current() < deadline {
        context.sleep(DRAIN_POLL).await;
    }
    Ok(())
}

/// Carries one connection both ways until the secure side ends or either side fails, or the
/// runtime stops.
async fn carry<E: Clock + Spawner, PS: Sink, PR: Stream, O: Sink, I: Stream>(
    context: &E,
    plain_sink: PS,
    plain_stream: PR,
    sender: Sender<O>,
    receiver: Receiver<I>,
) {
    let outbound = plain_to_secure(context, plain_stream, sender).fuse();
    let inbound = secure_to_plain(receiver, plain_sink).fuse();
    futures::pin_mut!(outbound, inbound);
    loop {
        select! {
            // The plain side finished sending (and the close went out): keep delivering
            // what comes back until the other side closes too.
            finished = outbound => if !finished { return },
            () = inbound => return,
        }
    }
}

/// Plain bytes to messages; `true` when the plain side finished (or the runtime stopped) and
/// the stream was closed after everything it sent.
async fn plain_to_secure<E: Clock + Spawner, O: Sink>(
    context: &E,
    mut plain: impl Stream,
    mut sender: Sender<O>,
) -> bool {
    let mut stopped = context.stopped().fuse();
    loop {
        let read = select! {
            read = read_some(&mut plain, CHUNK_BYTES).fuse() => read,
            // A read given up part-way leaves the plain stream unusable: fine, it is done.
            _ = stopped => {
                let closing = sender.close().fuse();
                let timeout = context.sleep(CLOSE_TIMEOUT).fuse();
                futures::pin_mut!(closing, timeout);
                return select! {
                    closed = closing => closed.is_ok(),
                    _ = timeout => false,
                };
            },
        };
        match read {
            Ok(chunk) => {
                if sender.send(chunk).await.is_err() {
                    return false;
                }
            }
            // A read that waited too long: cut the stream, so the other side cannot take
            // it for a complete transfer.
            Err(commonware_runtime::Error::Timeout) => {
                sender.abort();
                return false;
            }
            // The end of the plain connection (the runtime reports it, and a reset, as a
            // failed read): close after everything sent.
            Err(_) => return sender.close().await.is_ok(),
        }
    }
}

/// Messages to plain bytes, until the stream closes or fails.
async fn secure_to_plain<I: Stream>(mut receiver: Receiver<I>, mut plain: impl Sink) {
    while let Ok(message) = receiver.recv().await {
        if plain.send(IoBufs::from(message)).await.is_err() {
            return;
        }
    }
}

/// At least one byte and at most `max`: waits for one, then takes what else is buffered.
async fn read_some(
    stream: &mut impl Stream,
    max: usize,
) -> Result<Vec<u8>, commonware_runtime::Error> {
    let first = stream.recv(1).await?.coalesce();
    let mut chunk = Vec::with_capacity(max.min(4096));
    chunk.extend_from_slice(first.as_ref());
    let buffered = stream.peek(max - 1).len();
    if buffered > 0 {
        chunk.extend_from_slice(stream.recv(buffered).await?.coalesce().as_ref());
    }
    Ok(chunk)
}
