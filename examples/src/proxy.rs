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
//! Limits, before anything is read: at most [`MAX_PER_ADDRESS`] connections from one address
//! and [`MAX_PER_SUBNET`] from one subnet, [`MAX_HANDSHAKES`] still in their handshake (a
//! newcomer evicts the one that has waited longest without naming an allowed client), and
//! [`MAX_CONNECTIONS`] carried; more are closed unanswered. There is no rate per address:
//! strangers from several addresses opening connections fast enough to make 64 new ones
//! within one client's Hello time could still evict that client's handshake. A proxy pauses after a failed
//! accept (for example when out of file descriptors) rather than spin.

use commonware_cryptography::ed25519;
use commonware_runtime::{
    Clock, IoBufs, Listener as _, Network, Sink, SinkOf, Spawner, Stream, StreamOf, Supervisor,
};
use futures::{FutureExt as _, channel::oneshot, select};
use palisade_stream::{Config, Receiver, Sender, dial, listen};
use rand_core::CryptoRng;
use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

/// Largest message one read of the plain side becomes.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// Connections a proxy carries at once, past their handshake.
pub const MAX_CONNECTIONS: usize = 1024;

/// Connections still in their handshake (or, on the client side, still reaching the server)
/// at once. When all are taken, a new connection evicts the one that has waited longest
/// without its Hello naming an allowed client: an honest client sends its Hello at once, a
/// stranger's silent connection would hold its slot for the whole handshake timeout. (A
/// stranger may claim an allowed client's public key; it then fails at the signature check,
/// the first thing done with a claim.)
pub const MAX_HANDSHAKES: usize = 64;

/// Connections from one IP address at once, in any phase.
pub const MAX_PER_ADDRESS: usize = 16;

/// Connections from one subnet (IPv4 /24, IPv6 /64) at once, in any phase: many addresses of
/// one network take no more than this.
pub const MAX_PER_SUBNET: usize = 32;

/// The subnet `ip` is in: its /24 for IPv4, its /64 for IPv6.
fn subnet(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
    }
}

/// Pause after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Longest wait for a stuck peer to take a stream's close when the proxy stops.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a stopping proxy looks whether its connections have ended.
const DRAIN_POLL: Duration = Duration::from_millis(10);

/// Every connection a proxy holds: its address, and whether it is still in its handshake.
#[derive(Default)]
struct Admission {
    next: u64,
    live: BTreeMap<u64, Admitted>,
}

/// One admitted connection.
struct Admitted {
    ip: IpAddr,
    phase: Phase,
    /// Dropping it ends the connection.
    _evict: oneshot::Sender<()>,
}

/// Where an admitted connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing known of it yet: the only phase that may be evicted.
    Handshaking,
    /// Its Hello names an allowed client: it proves that or fails within one signature check.
    Claimed,
    /// Past its handshake, carrying data.
    Carried,
}

impl Admission {
    /// Admits a connection from `ip` into its handshake, evicting the longest-waiting
    /// unclaimed handshake when all [`MAX_HANDSHAKES`] are taken; `None` when `ip` has
    /// [`MAX_PER_ADDRESS`] connections already, its subnet [`MAX_PER_SUBNET`], or every
    /// handshake slot holds a claim.
    fn admit(&mut self, ip: IpAddr) -> Option<(u64, oneshot::Receiver<()>)> {
        if self.live.values().filter(|live| live.ip == ip).count() >= MAX_PER_ADDRESS {
            return None;
        }
        let network = subnet(ip);
        if self
            .live
            .values()
            .filter(|live| subnet(live.ip) == network)
            .count()
            >= MAX_PER_SUBNET
        {
            return None;
        }
        let pending = |live: &Admitted| live.phase != Phase::Carried;
        if self.live.values().filter(|live| pending(live)).count() >= MAX_HANDSHAKES {
            // Ids grow with time: the smallest unclaimed one has waited longest.
            let oldest = self
                .live
                .iter()
                .find(|(_, live)| live.phase == Phase::Handshaking)
                .map(|(id, _)| *id)?;
            self.live.remove(&oldest);
        }
        let id = self.next;
        self.next += 1;
        let (evict, evicted) = oneshot::channel();
        self.live.insert(
            id,
            Admitted {
                ip,
                phase: Phase::Handshaking,
                _evict: evict,
            },
        );
        Some((id, evicted))
    }

    /// Moves connection `id` to the carried ones; `false` when [`MAX_CONNECTIONS`] are
    /// carried already, or it was evicted meanwhile.
    fn carry(&mut self, id: u64) -> bool {
        let carried = self
            .live
            .values()
            .filter(|live| live.phase == Phase::Carried)
            .count();
        match self.live.get_mut(&id) {
            Some(live) if carried < MAX_CONNECTIONS => {
                live.phase = Phase::Carried;
                true
            }
            _ => false,
        }
    }

    /// Connection `id`'s Hello names an allowed client: no stranger may evict it now.
    fn claim(&mut self, id: u64) {
        if let Some(live) = self.live.get_mut(&id)
            && live.phase == Phase::Handshaking
        {
            live.phase = Phase::Claimed;
        }
    }
}

fn lock(admission: &Mutex<Admission>) -> std::sync::MutexGuard<'_, Admission> {
    admission
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A connection's hold on its admission: says when the handshake is over, and gives the
/// slot back when dropped.
pub struct Ticket {
    id: u64,
    admission: Arc<Mutex<Admission>>,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket").field("id", &self.id).finish()
    }
}

impl Ticket {
    /// The handshake is over: the connection counts as carried from now on. `false` when
    /// too many are carried (the caller then drops the connection).
    fn carrying(&self) -> bool {
        lock(&self.admission).carry(self.id)
    }

    /// The peer claims an allowed key: its handshake may no longer be evicted.
    fn claimed(&self) {
        lock(&self.admission).claim(self.id);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        lock(&self.admission).live.remove(&self.id);
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
    /// Serve plain clients on an address beyond loopback (off unless asked for: whoever
    /// reaches the plain listener is carried under this proxy's key).
    pub allow_remote_clients: bool,
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

/// Why a proxy could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The listen address cannot be bound.
    #[error("cannot listen: {0}")]
    Bind(commonware_runtime::Error),
    /// The client's plain listener would be reachable beyond this host.
    #[error(
        "the plain listen address {0} is not a loopback one: anyone who reaches it would be carried under this proxy's key (pass --allow-remote-clients if that is meant)"
    )]
    PlainListenNotLoopback(SocketAddr),
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
/// [`ProxyError::PlainListenNotLoopback`] when the plain listen address is not a loopback
/// one and [`ClientSettings::allow_remote_clients`] is not set (whoever reaches that listener
/// is carried under this proxy's key); [`ProxyError::Bind`] when it cannot be bound.
pub async fn client<E>(
    context: E,
    settings: ClientSettings,
    ready: oneshot::Sender<SocketAddr>,
) -> Result<(), ProxyError>
where
    E: Network + Spawner + Supervisor + Clock + CryptoRng,
{
    let address = settings.listen;
    if !address.ip().is_loopback() {
        if !settings.allow_remote_clients {
            return Err(ProxyError::PlainListenNotLoopback(address));
        }
        tracing::warn!(
            %address,
            "the plain listener is reachable beyond this host: anyone who reaches it is carried under this proxy's key"
        );
    }
    let settings = Arc::new(settings);
    serve(
        context,
        address,
        ready,
        move |context: E, from, plain_sink, plain_stream, ticket: Ticket| {
            let settings = settings.clone();
            async move {
                // A plain client has nothing to prove: once accepted, it is not evicted while
                // the server is dialed (the per-address and subnet caps still hold).
                ticket.claimed();
                let Ok((sink, stream)) = context.dial(settings.server).await else {
                    tracing::warn!(%from, server = %settings.server, "proxy server unreachable");
                    return;
                };
                let config = Config::recommended(settings.key.clone(), &settings.namespace);
                let server_key = settings.server_key.clone();
                match dial(context.child("stream"), config, server_key, sink, stream).await {
                    Ok((sender, receiver)) => {
                        if !ticket.carrying() {
                            tracing::warn!(%from, "too many connections carried: closed");
                            return;
                        }
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
/// [`ProxyError::Bind`] when the listen address cannot be bound.
pub async fn server<E>(
    context: E,
    settings: ServerSettings,
    ready: oneshot::Sender<SocketAddr>,
) -> Result<(), ProxyError>
where
    E: Network + Spawner + Supervisor + Clock + CryptoRng,
{
    let address = settings.listen;
    let settings = Arc::new(settings);
    serve(
        context,
        address,
        ready,
        move |context: E, from, sink, stream, ticket: Ticket| {
            let settings = settings.clone();
            async move {
                let allowed = settings.clone();
                let ticket = Arc::new(ticket);
                let claim = ticket.clone();
                let bouncer = move |claimed: ed25519::PublicKey| {
                    let known = allowed.allowed.contains(&claimed);
                    if known {
                        claim.claimed();
                    }
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
                if !ticket.carrying() {
                    tracing::warn!(%from, "too many connections carried: closed");
                    return;
                }
                let client = crate::keyfile::public_key_hex(&peer);
                tracing::info!(%from, %client, "carrying a connection");
                carry(&context, plain_sink, plain_stream, sender, receiver).await;
            }
        },
    )
    .await
}

/// The accept loop both sides share: binds `address`, reports it on `ready`, and runs
/// `connection` in a task of its own for each accepted connection that [`Admission`] takes
/// (pausing after a failed accept); the connection calls [`Ticket::carrying`] once its
/// handshake is over. Once the runtime stops, it accepts no more and returns when every
/// connection has ended.
async fn serve<E, F, Fut>(
    context: E,
    address: SocketAddr,
    ready: oneshot::Sender<SocketAddr>,
    connection: F,
) -> Result<(), ProxyError>
where
    E: Network + Spawner + Supervisor + Clock,
    F: Fn(E, SocketAddr, SinkOf<E>, StreamOf<E>, Ticket) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut listener = context.bind(address).await.map_err(ProxyError::Bind)?;
    let bound = listener
        .local_addr()
        .map_err(|error| ProxyError::Bind(commonware_runtime::Error::Io(Arc::new(error))))?;
    let _ = ready.send(bound);
    let admission = Arc::new(Mutex::new(Admission::default()));
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
        // An IPv4 client of a dual-stack listener counts by its IPv4 address.
        let Some((id, evicted)) = lock(&admission).admit(from.ip().to_canonical()) else {
            tracing::debug!(%from, "connection refused: too many from this address");
            continue;
        };
        let ticket = Ticket {
            id,
            admission: admission.clone(),
        };
        let connection = connection.clone();
        context
            .child("connection")
            .spawn(move |context| async move {
                let serving = connection(context, from, sink, stream, ticket).fuse();
                let evicted = evicted.fuse();
                futures::pin_mut!(serving, evicted);
                select! {
                    () = serving => {},
                    // Its slot went to a newer handshake: this one waited longest.
                    _ = evicted => tracing::debug!(%from, "handshake evicted by a newer one"),
                }
            });
    }
    // The connections are this task's children: returning would cut them, so wait until
    // each has sent its close.
    let live = || lock(&admission).live.len();
    tracing::info!(connections = live(), "stopping: closing every connection");
    let deadline = context.current() + CLOSE_TIMEOUT * 2;
    while live() > 0 && context.current() < deadline {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(a: u8, b: u8) -> IpAddr {
        IpAddr::from([10, 0, a, b])
    }

    #[test]
    fn admission_caps_each_address_and_subnet() {
        let mut admission = Admission::default();
        for _ in 0..MAX_PER_ADDRESS {
            assert!(admission.admit(ip(1, 1)).is_some());
        }
        assert!(
            admission.admit(ip(1, 1)).is_none(),
            "the address has its share"
        );
        for host in 2..=(MAX_PER_SUBNET - MAX_PER_ADDRESS + 1) as u8 {
            assert!(admission.admit(ip(1, host)).is_some());
        }
        assert!(
            admission.admit(ip(1, 200)).is_none(),
            "the /24 has its share"
        );
        assert!(admission.admit(ip(2, 1)).is_some(), "another /24 is not");
        let v6 = |last: u16| IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]);
        for last in 0..MAX_PER_SUBNET as u16 {
            assert!(admission.admit(v6(last)).is_some());
        }
        assert!(admission.admit(v6(999)).is_none(), "the /64 has its share");
    }

    #[test]
    fn a_full_handshake_pool_evicts_the_oldest_unclaimed_never_a_claim_or_a_carried_one() {
        let mut admission = Admission::default();
        let mut receivers = Vec::new();
        for n in 0..MAX_HANDSHAKES {
            let (id, evicted) = admission.admit(ip(n as u8, 1)).unwrap();
            receivers.push((id, evicted));
        }
        let (claimed, carried) = (receivers[0].0, receivers[1].0);
        admission.claim(claimed);
        assert!(admission.carry(carried));
        // Carried ones leave the pool: one free slot, no eviction.
        let (_, _) = admission.admit(ip(100, 1)).unwrap();
        assert_eq!(admission.live.len(), MAX_HANDSHAKES + 1);
        // Full again: the oldest unclaimed (the third) goes.
        let (_, _) = admission.admit(ip(101, 1)).unwrap();
        assert!(admission.live.contains_key(&claimed) && admission.live.contains_key(&carried));
        assert!(!admission.live.contains_key(&receivers[2].0));
        let (_, mut evicted) = receivers.remove(2);
        assert!(evicted.try_recv().is_err(), "told to end");
    }
}
