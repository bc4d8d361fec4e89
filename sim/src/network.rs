//! The simulated network: nodes, listeners, connections, and the faults that act on them.
//!
//! One [`Network`] is shared by every simulated node. Each node gets its own IP address and
//! a [`NodeNetwork`] handle, which implements `commonware_runtime::Network` so that unchanged
//! code (palisade-stream, palisade-p2p) binds, dials and accepts through it. Every delay
//! comes from the runtime's clock and every random draw from its RNG, so a seed replays a run
//! exactly; [`Network::digest`] hashes every write (connection, due time and bytes) to prove it.
//!
//! Faults: [`Network::partition`] splits the nodes into groups that cannot reach each other
//! (dials across fail, connections across are cut), [`Network::crash`] and
//! [`Network::restart`] take a node off the network and back, and
//! [`Network::reset_random_connection`] cuts one connection as a flaky link would.
//!
//! Locks: the network's state is locked before any pipe, never the other way round.

use crate::{
    Bandwidth, Link,
    link::Pacing,
    pipe::{Ends, Pipe},
    socket::{Half, Sink, Stream},
};
use commonware_runtime::Clock;
use futures::channel::mpsc;
use rand_core::CryptoRng;
use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, SocketAddr},
    ops::Range,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

/// Ports a node hands to its outgoing connections; reused once a connection is gone.
pub const EPHEMERAL_PORTS: Range<u16> = 32768..61000;

/// Settings of a simulated network.
#[derive(Clone, Debug)]
pub struct Config {
    /// The link between any two nodes without one of their own ([`Network::set_link`]).
    pub default_link: Link,
    /// The bandwidth of a node added without one of its own.
    pub default_bandwidth: Bandwidth,
    /// Bytes one direction of a connection holds in flight before the writer waits: the
    /// socket buffers. It bounds the memory of a connection whose reader is slow.
    pub window_bytes: usize,
    /// Dialed connections a listener holds before it accepts them (the listen backlog);
    /// dials beyond it are refused, so an unread listener costs bounded memory.
    pub accept_backlog: usize,
    /// How long a dial towards a node it cannot reach (partitioned) takes to fail; a dial
    /// towards a node that is down or not listening fails after one round trip.
    pub unreachable_dial_delay: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            default_link: Link::default(),
            default_bandwidth: Bandwidth::UNLIMITED,
            window_bytes: 256 * 1024,
            accept_backlog: 1024,
            unreachable_dial_delay: Duration::from_secs(3),
        }
    }
}

/// A request the network cannot carry out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No node has this address.
    #[error("no node has the address {0}")]
    UnknownNode(IpAddr),
    /// A node already has this address.
    #[error("a node already has the address {0}")]
    DuplicateNode(IpAddr),
    /// A partition names a node in more than one group.
    #[error("node {0} is in more than one partition group")]
    NodeInTwoGroups(IpAddr),
}

/// Counters over the whole run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Dials that connected.
    pub dials_connected: u64,
    /// Dials that found the node down, not listening, or its listen backlog full.
    pub dials_refused: u64,
    /// Dials across a partition.
    pub dials_unreachable: u64,
    /// Connections cut by a fault (partition, crash, random reset).
    pub connections_reset: u64,
    /// Connections with an end still held by a node (cut ones included until dropped).
    pub connections_open: u64,
    /// Bytes written into connections.
    pub bytes_written: u64,
    /// Segment retransmissions a lossy link caused (see [`Link`]'s loss).
    pub retransmissions: u64,
}

/// Where one connection runs and what is left of it.
struct Connection {
    dialer: SocketAddr,
    listener: SocketAddr,
    /// `[dialer to listener, listener to dialer]`.
    pipes: [Arc<Mutex<Pipe>>; 2],
    /// Sinks and streams still alive; the connection is forgotten at zero.
    halves: u8,
}

struct Node {
    up: bool,
    bandwidth: Bandwidth,
    pacing: Pacing,
    ports_in_use: BTreeSet<u16>,
    next_port: u16,
}

/// What a listener receives for each dial.
pub(crate) type Accepted = (SocketAddr, Sink, Stream);

struct Listening {
    id: u64,
    accepted: mpsc::UnboundedSender<Accepted>,
    /// Dialed and not yet accepted; at most the accept backlog.
    queued: usize,
}

pub(crate) struct State {
    config: Config,
    nodes: BTreeMap<IpAddr, Node>,
    links: BTreeMap<(IpAddr, IpAddr), Link>,
    /// The partition group of each node; `None` when every node reaches every other.
    groups: Option<BTreeMap<IpAddr, usize>>,
    listeners: BTreeMap<SocketAddr, Listening>,
    connections: BTreeMap<u64, Connection>,
    next_id: u64,
    stats: Stats,
    digest: blake3::Hasher,
}

pub(crate) type Shared = Arc<Mutex<State>>;

/// The runtime context the network draws time and randomness from, shared by its handles.
pub(crate) type Runtime<E> = Arc<Mutex<E>>;

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl State {
    fn node_mut(&mut self, ip: IpAddr) -> Result<&mut Node, Error> {
        self.nodes.get_mut(&ip).ok_or(Error::UnknownNode(ip))
    }

    pub(crate) fn link(&self, a: IpAddr, b: IpAddr) -> Link {
        self.links
            .get(&(a.min(b), a.max(b)))
            .copied()
            .unwrap_or(self.config.default_link)
    }

    pub(crate) fn reachable(&self, a: IpAddr, b: IpAddr) -> bool {
        same_group(self.groups.as_ref(), a, b)
    }

    pub(crate) fn is_up(&self, ip: IpAddr) -> bool {
        self.nodes.get(&ip).is_some_and(|node| node.up)
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Cuts every open connection `cut` selects (by id and ends); returns how many.
    fn reset_where(&mut self, mut cut: impl FnMut(u64, &Connection) -> bool) -> usize {
        let mut count = 0;
        for (_, connection) in self.connections.iter().filter(|(id, c)| cut(**id, c)) {
            let mut cut_now = false;
            for pipe in &connection.pipes {
                let mut pipe = lock(pipe);
                cut_now |= pipe.ends() != Ends::Reset;
                pipe.end(Ends::Reset);
            }
            count += usize::from(cut_now);
        }
        self.stats.connections_reset += count as u64;
        count
    }

    /// Binds `address` for node `ip`: a port of 0 takes a free ephemeral port.
    pub(crate) fn bind(
        &mut self,
        ip: IpAddr,
        mut address: SocketAddr,
    ) -> Result<(u64, SocketAddr, mpsc::UnboundedReceiver<Accepted>), commonware_runtime::Error>
    {
        if address.ip().is_unspecified() {
            address.set_ip(ip);
        }
        if address.ip() != ip || !self.is_up(ip) {
            return Err(commonware_runtime::Error::BindFailed);
        }
        if address.port() == 0 {
            let port = self
                .take_port(ip)
                .ok_or(commonware_runtime::Error::BindFailed)?;
            address.set_port(port);
        } else if self.listeners.contains_key(&address) {
            return Err(commonware_runtime::Error::BindFailed);
        }
        // Bounded by `queued`, counted here rather than by the channel.
        let (accepted, incoming) = mpsc::unbounded();
        let id = self.next_id();
        self.listeners.insert(
            address,
            Listening {
                id,
                accepted,
                queued: 0,
            },
        );
        Ok((id, address, incoming))
    }

    /// Forgets listener `id` on `address` (if it is still the one bound there).
    pub(crate) fn unbind(&mut self, address: SocketAddr, id: u64) {
        if self.listeners.get(&address).is_some_and(|l| l.id == id) {
            self.listeners.remove(&address);
            if EPHEMERAL_PORTS.contains(&address.port())
                && let Some(node) = self.nodes.get_mut(&address.ip())
            {
                node.ports_in_use.remove(&address.port());
            }
        }
    }

    /// A free ephemeral port of node `ip`, now in use.
    fn take_port(&mut self, ip: IpAddr) -> Option<u16> {
        let node = self.nodes.get_mut(&ip)?;
        let span = EPHEMERAL_PORTS.end - EPHEMERAL_PORTS.start;
        for step in 0..span {
            let port =
                EPHEMERAL_PORTS.start + (node.next_port - EPHEMERAL_PORTS.start + step) % span;
            if node.ports_in_use.insert(port) {
                node.next_port = EPHEMERAL_PORTS.start + (port - EPHEMERAL_PORTS.start + 1) % span;
                return Some(port);
            }
        }
        None
    }

    /// Connects node `from` to the listener on `to`, if there is one it can reach now.
    pub(crate) fn connect<E: Clock + CryptoRng + Send + 'static>(
        &mut self,
        shared: &Shared,
        context: &Runtime<E>,
        from: IpAddr,
        to: SocketAddr,
    ) -> Result<(Sink, Stream), Refusal> {
        if !self.is_up(from) {
            return Err(Refusal::Refused);
        }
        if !self.reachable(from, to.ip()) {
            self.stats.dials_unreachable += 1;
            return Err(Refusal::Unreachable);
        }
        let backlog = self.config.accept_backlog;
        let listening = self
            .listeners
            .get(&to)
            .is_some_and(|listening| !listening.accepted.is_closed() && listening.queued < backlog);
        if !self.is_up(to.ip()) || !listening {
            self.stats.dials_refused += 1;
            return Err(Refusal::Refused);
        }
        let Some(port) = self.take_port(from) else {
            self.stats.dials_refused += 1;
            return Err(Refusal::Refused);
        };
        let dialer = SocketAddr::new(from, port);
        let now = lock(context).current();
        let window = self.config.window_bytes;
        let pipes = [
            Arc::new(Mutex::new(Pipe::new(window, now))),
            Arc::new(Mutex::new(Pipe::new(window, now))),
        ];
        let id = self.next_id();
        let half = |pipe: usize, from: SocketAddr, to: SocketAddr| Half {
            shared: shared.clone(),
            connection: id,
            pipe: pipes[pipe].clone(),
            from: from.ip(),
            to: to.ip(),
        };
        let dialer_side = (
            Sink::new(half(0, dialer, to), context.clone()),
            Stream::new(half(1, to, dialer), context.clone()),
        );
        let listener_side = (
            dialer,
            Sink::new(half(1, to, dialer), context.clone()),
            Stream::new(half(0, dialer, to), context.clone()),
        );
        self.connections.insert(
            id,
            Connection {
                dialer,
                listener: to,
                pipes,
                halves: 4,
            },
        );
        self.stats.dials_connected += 1;
        self.stats.connections_open += 1;
        let listening = self.listeners.get_mut(&to).expect("checked above");
        listening.queued += 1;
        if let Err(error) = listening.accepted.unbounded_send(listener_side) {
            // Cannot happen while the listener is registered (it unregisters before its
            // receiver goes); should it, the halves must be dropped after the state's lock.
            return Err(Refusal::Gone(Box::new((error.into_inner(), dialer_side))));
        }
        Ok(dialer_side)
    }

    /// Records that listener `id` on `address` took one connection from its backlog.
    pub(crate) fn accepted(&mut self, address: SocketAddr, id: u64) {
        if let Some(listening) = self.listeners.get_mut(&address)
            && listening.id == id
        {
            listening.queued = listening.queued.saturating_sub(1);
        }
    }

    /// Records that one half of `connection` is gone; forgets the connection with its last.
    pub(crate) fn release(&mut self, connection: u64) {
        let Some(entry) = self.connections.get_mut(&connection) else {
            return;
        };
        entry.halves -= 1;
        if entry.halves == 0 {
            let entry = self.connections.remove(&connection).expect("present");
            self.stats.connections_open -= 1;
            if let Some(node) = self.nodes.get_mut(&entry.dialer.ip()) {
                node.ports_in_use.remove(&entry.dialer.port());
            }
        }
    }

    /// Schedules a write on its pipe, due after the link's delay and both nodes' pacing;
    /// returns `false` when the pipe no longer takes writes.
    pub(crate) fn write(
        &mut self,
        write: crate::socket::Outgoing<'_>,
        random: u64,
        now: std::time::SystemTime,
    ) -> bool {
        let crate::socket::Outgoing {
            connection,
            pipe,
            from,
            to,
            bytes,
        } = write;
        let link = self.link(from, to);
        let (stall, retransmissions) = link.retransmission(bytes.len(), random);
        let delay = link.delay(random) + stall;
        let mut pipe = lock(pipe);
        if pipe.ends() != Ends::Open {
            return false;
        }
        let (Some(mut sender), Some(mut receiver)) = (
            self.nodes.get(&from).map(|n| (n.pacing, n.bandwidth)),
            self.nodes.get(&to).map(|n| (n.pacing, n.bandwidth)),
        ) else {
            return false;
        };
        let due = crate::link::Write {
            now,
            bytes: bytes.len(),
            delay,
            sender: (&mut sender.0, sender.1),
            receiver: (&mut receiver.0, receiver.1),
            previous_due: pipe.last_due(),
        }
        .schedule();
        self.nodes.get_mut(&from).expect("present").pacing = sender.0;
        self.nodes.get_mut(&to).expect("present").pacing = receiver.0;
        self.stats.bytes_written += bytes.len() as u64;
        self.stats.retransmissions += u64::from(retransmissions);
        self.digest.update(&connection.to_be_bytes());
        self.digest.update(&[u8::from(from < to)]);
        let nanos = due
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        self.digest.update(&nanos.to_be_bytes());
        self.digest.update(&(bytes.len() as u64).to_be_bytes());
        self.digest.update(bytes.as_ref());
        pipe.push(due, bytes);
        true
    }
}

/// Whether `a` and `b` are in the same partition group (all are, without a partition);
/// nodes no group names form one more group together.
fn same_group(groups: Option<&BTreeMap<IpAddr, usize>>, a: IpAddr, b: IpAddr) -> bool {
    groups.is_none_or(|groups| {
        let group = |ip| groups.get(&ip).copied().unwrap_or(usize::MAX);
        group(a) == group(b)
    })
}

/// Why a dial did not connect.
pub(crate) enum Refusal {
    /// The node is down, nobody listens on the port, or its backlog is full: fails after a
    /// round trip.
    Refused,
    /// A partition lies between: fails after the unreachable delay.
    Unreachable,
    /// The listener went away as the connection was made; its ends are to be dropped once
    /// the state is unlocked.
    Gone(Box<(Accepted, (Sink, Stream))>),
}

/// The simulated network shared by every node of a run.
///
/// `E` is the runtime context the network takes its clock and randomness from (the
/// deterministic runtime's, for reproducible runs).
pub struct Network<E> {
    shared: Shared,
    context: Runtime<E>,
}

impl<E> std::fmt::Debug for Network<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network").finish_non_exhaustive()
    }
}

impl<E> Clone for Network<E> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            context: self.context.clone(),
        }
    }
}

impl<E: Clock + CryptoRng + Send + 'static> Network<E> {
    /// An empty network that takes time and randomness from `context` (give it a child of
    /// the runtime's context).
    pub fn new(context: E, config: Config) -> Self {
        let state = State {
            config,
            nodes: BTreeMap::new(),
            links: BTreeMap::new(),
            groups: None,
            listeners: BTreeMap::new(),
            connections: BTreeMap::new(),
            next_id: 0,
            stats: Stats::default(),
            digest: blake3::Hasher::new(),
        };
        Self {
            shared: Arc::new(Mutex::new(state)),
            context: Arc::new(Mutex::new(context)),
        }
    }

    /// Adds a node at `ip` with the default bandwidth; returns its network handle.
    ///
    /// # Errors
    /// [`Error::DuplicateNode`] when a node already has `ip`.
    pub fn add_node(&self, ip: IpAddr) -> Result<NodeNetwork<E>, Error> {
        let mut state = lock(&self.shared);
        if state.nodes.contains_key(&ip) {
            return Err(Error::DuplicateNode(ip));
        }
        let node = Node {
            up: true,
            bandwidth: state.config.default_bandwidth,
            pacing: Pacing::new(lock(&self.context).current()),
            ports_in_use: BTreeSet::new(),
            next_port: EPHEMERAL_PORTS.start,
        };
        state.nodes.insert(ip, node);
        drop(state);
        self.node(ip)
    }

    /// The network handle of the node at `ip` (for example to start it again after a crash).
    ///
    /// # Errors
    /// [`Error::UnknownNode`].
    pub fn node(&self, ip: IpAddr) -> Result<NodeNetwork<E>, Error> {
        if !lock(&self.shared).nodes.contains_key(&ip) {
            return Err(Error::UnknownNode(ip));
        }
        Ok(NodeNetwork {
            shared: self.shared.clone(),
            context: self.context.clone(),
            ip,
        })
    }

    /// Sets the bandwidth of node `ip`.
    ///
    /// # Errors
    /// [`Error::UnknownNode`].
    pub fn set_bandwidth(&self, ip: IpAddr, bandwidth: Bandwidth) -> Result<(), Error> {
        lock(&self.shared).node_mut(ip)?.bandwidth = bandwidth;
        Ok(())
    }

    /// Sets the link between nodes `a` and `b` (both directions).
    ///
    /// # Errors
    /// [`Error::UnknownNode`].
    pub fn set_link(&self, a: IpAddr, b: IpAddr, link: Link) -> Result<(), Error> {
        let mut state = lock(&self.shared);
        state.node_mut(a)?;
        state.node_mut(b)?;
        state.links.insert((a.min(b), a.max(b)), link);
        Ok(())
    }

    /// Splits the network: nodes in different `groups` cannot reach each other, and every
    /// node no group names is in one more group with the other unnamed ones. Connections
    /// across groups are cut at once. Returns how many were cut.
    ///
    /// # Errors
    /// [`Error::UnknownNode`] or [`Error::NodeInTwoGroups`]; the network is unchanged then.
    pub fn partition(&self, groups: &[Vec<IpAddr>]) -> Result<usize, Error> {
        let mut state = lock(&self.shared);
        let mut membership = BTreeMap::new();
        for (index, group) in groups.iter().enumerate() {
            for &ip in group {
                state.node_mut(ip)?;
                if membership
                    .insert(ip, index)
                    .is_some_and(|other| other != index)
                {
                    return Err(Error::NodeInTwoGroups(ip));
                }
            }
        }
        let groups = Some(membership);
        let cut =
            state.reset_where(|_, c| !same_group(groups.as_ref(), c.dialer.ip(), c.listener.ip()));
        state.groups = groups;
        Ok(cut)
    }

    /// Ends the partition: every node reaches every other again.
    pub fn heal(&self) {
        lock(&self.shared).groups = None;
    }

    /// Takes node `ip` off the network: its listeners close and its connections are cut.
    /// The node's own tasks are the caller's to stop. Returns how many connections were cut.
    ///
    /// # Errors
    /// [`Error::UnknownNode`].
    pub fn crash(&self, ip: IpAddr) -> Result<usize, Error> {
        let mut state = lock(&self.shared);
        state.node_mut(ip)?.up = false;
        state.listeners.retain(|address, _| address.ip() != ip);
        Ok(state.reset_where(|_, c| c.dialer.ip() == ip || c.listener.ip() == ip))
    }

    /// Puts node `ip` back on the network, with idle links.
    ///
    /// # Errors
    /// [`Error::UnknownNode`].
    pub fn restart(&self, ip: IpAddr) -> Result<(), Error> {
        let now = lock(&self.context).current();
        let mut state = lock(&self.shared);
        let node = state.node_mut(ip)?;
        node.up = true;
        node.pacing = Pacing::new(now);
        Ok(())
    }

    /// Whether nodes `a` and `b` can reach each other now (no partition between them).
    pub fn reachable(&self, a: IpAddr, b: IpAddr) -> bool {
        lock(&self.shared).reachable(a, b)
    }

    /// Whether node `ip` is on the network (not crashed).
    pub fn is_up(&self, ip: IpAddr) -> bool {
        lock(&self.shared).is_up(ip)
    }

    /// Cuts one open connection chosen at random; returns its ends, or `None` when no
    /// connection is open.
    pub fn reset_random_connection(&self) -> Option<(SocketAddr, SocketAddr)> {
        let mut state = lock(&self.shared);
        let open: Vec<u64> = state
            .connections
            .iter()
            .filter(|(_, c)| lock(&c.pipes[0]).ends() != Ends::Reset)
            .map(|(id, _)| *id)
            .collect();
        if open.is_empty() {
            return None;
        }
        let chosen = open[(lock(&self.context).next_u64() % open.len() as u64) as usize];
        let connection = state.connections.get(&chosen).expect("listed above");
        let ends = (connection.dialer, connection.listener);
        state.reset_where(|id, _| id == chosen);
        Some(ends)
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        lock(&self.shared).stats
    }

    /// A hash of every write so far: which connection, which way, when it is due, and its
    /// bytes. Two runs with the same seed and scenario give the same digest.
    pub fn digest(&self) -> [u8; 32] {
        *lock(&self.shared).digest.finalize().as_bytes()
    }
}

/// One node's view of the simulated network: implements `commonware_runtime::Network` for
/// code running on that node.
pub struct NodeNetwork<E> {
    pub(crate) shared: Shared,
    pub(crate) context: Runtime<E>,
    pub(crate) ip: IpAddr,
}

impl<E> std::fmt::Debug for NodeNetwork<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeNetwork")
            .field("ip", &self.ip)
            .finish_non_exhaustive()
    }
}

impl<E> Clone for NodeNetwork<E> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            context: self.context.clone(),
            ip: self.ip,
        }
    }
}

impl<E> NodeNetwork<E> {
    /// The node's address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}
