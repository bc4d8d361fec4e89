//! The node's shared view of its peers: who may connect (the [`Book`]), who is connected, who
//! is being dialed, and when each peer may be dialed again.
//!
//! One `Directory` sits behind a mutex shared by the oracle, the dialer, the listener, the
//! peers and the channel senders. The lock is never held across an await, and every method
//! is plain synchronous logic, tested here without a runtime.

use crate::{
    budget::ByteBudget,
    dial_schedule::DialSchedule,
    duplicate,
    status::{PeerState, PeerStatus, TrafficCounters},
    tracker::{Book, Changes, Entry, PeerSet, StaleIndex},
};
use commonware_cryptography::PublicKey;
use commonware_p2p::{Address, Ingress, PeerSetUpdate, TrackedPeers};
use commonware_runtime::telemetry::metrics::raw::Gauge;
use commonware_utils::{
    channel::{mpsc as unbounded, ring},
    ordered::Set,
};
use futures::channel::{mpsc, oneshot};
use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

/// A message queued towards one peer: channel and payload (shared, not copied, per peer).
pub(crate) type Outbound = (u64, commonware_runtime::IoBuf);

/// The two queues towards one peer, high priority first.
/// Not `Clone` on purpose: a clone of a bounded sender has a slot of its own, so cloned
/// handles would make the queues unbounded.
pub(crate) struct Lanes {
    pub(crate) high: mpsc::Sender<Outbound>,
    pub(crate) low: mpsc::Sender<Outbound>,
    /// Bytes queued in both lanes together, bounded by `max_queued_bytes`.
    pub(crate) bytes: Arc<ByteBudget>,
    /// The peer's traffic counters (sends the queues refuse are counted here).
    pub(crate) traffic: Arc<TrafficCounters>,
}

/// The receiving ends of the queues towards one peer. One connection's writer holds them at a
/// time; when a connection replaces another, the new writer takes them over once the old one
/// lets go, so what the old one left queued is written next, in order.
pub(crate) struct Queues {
    pub(crate) high: mpsc::Receiver<Outbound>,
    pub(crate) low: mpsc::Receiver<Outbound>,
}

/// [`Queues`] as the connections to one peer share them.
pub(crate) type SharedQueues = Arc<futures::lock::Mutex<Queues>>;

/// What a new connection's peer actor works from.
pub(crate) struct Registration {
    pub(crate) id: u64,
    /// The queues towards the peer, carried over from the connection this one replaced.
    pub(crate) queues: SharedQueues,
    /// The lanes' byte budget: the writer releases what it takes.
    pub(crate) bytes: Arc<ByteBudget>,
    /// The peer's traffic counters, which its connections add to.
    pub(crate) traffic: Arc<TrafficCounters>,
    /// Fires (is dropped) when the directory ends the connection.
    pub(crate) stop: oneshot::Receiver<()>,
    /// Held for as long as the connection's task runs: a stopping network waits until every
    /// one is dropped, so each connection can send its authenticated close.
    pub(crate) live: Option<mpsc::Sender<()>>,
}

struct Connection {
    id: u64,
    dialed: bool,
    /// When it was registered: a connection that ends soon after counts as a failed dial.
    since: SystemTime,
    lanes: Lanes,
    queues: SharedQueues,
    /// Dropping it tells the peer actor to end the connection.
    _stop: oneshot::Sender<()>,
}

/// How long a connection must live for its peer's dial backoff to reset.
pub(crate) const STABLE_CONNECTION: Duration = Duration::from_secs(5);

/// Why a connection was not registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The network is stopping.
    Closed,
    /// The peer is not tracked or is blocked.
    NotAllowed,
    /// We are the arbiter of the pair and already use a connection to the peer of the other
    /// direction (see [`duplicate`]).
    Duplicate,
}

impl Refusal {
    /// The `connections_closed` reason.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::Closed => "stopped",
            Self::NotAllowed => "not_allowed",
            Self::Duplicate => "duplicate",
        }
    }
}

pub(crate) struct Directory<P: PublicKey> {
    me: P,
    book: Book<P>,
    schedule: DialSchedule<P>,
    connections: BTreeMap<P, Connection>,
    dialing: BTreeSet<P>,
    /// The inbound connection from each peer that waits for its `Keep` (at most one: a newer
    /// one supersedes it by dropping its sender); see [`Self::await_keep`].
    awaiting_keep: BTreeMap<P, (u64, oneshot::Sender<()>)>,
    next_id: u64,
    lane_capacity: usize,
    /// Bytes both lanes towards one peer may hold together.
    lane_bytes: usize,
    /// The `connected_peers` gauge, kept equal to the number of registered connections.
    connected_gauge: Gauge,
    /// When each allowed, unconnected peer was first found missing.
    missing_since: BTreeMap<P, SystemTime>,
    /// How long the peer with the larger key waits for the other to dial first.
    dial_grace: Duration,
    /// Who hears of every new peer set.
    set_subscribers: Vec<unbounded::UnboundedSender<PeerSetUpdate<P>>>,
    /// Who hears of every change to the blocked set.
    blocked_subscribers: Vec<ring::Sender<Set<P>>>,
    /// Set once the network's task has ended: nothing will be sent any more.
    closed: bool,
    /// The addresses of the tracked peers, see [`Self::is_tracked_ip`].
    tracked_ips: BTreeSet<IpAddr>,
    /// Handed (cloned) to every registration while the network runs; see [`Self::watch_live`].
    live: Option<mpsc::Sender<()>>,
    /// Traffic counters of the tracked peers that have had a connection.
    traffic: BTreeMap<P, Arc<TrafficCounters>>,
    /// Set when the last [`Self::take_dials`] found every dialable peer connected, and
    /// cleared by anything that can change that (a connection ending, new sets or addresses,
    /// a block starting or ending, a failed dial): until then a dial tick costs nothing,
    /// where walking every tracked peer on each tick of each node was most of a large
    /// network's idle time.
    settled: bool,
}

pub(crate) type SharedDirectory<P> = Arc<Mutex<Directory<P>>>;

pub(crate) fn lock<P: PublicKey>(directory: &SharedDirectory<P>) -> MutexGuard<'_, Directory<P>> {
    directory
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<P: PublicKey> Directory<P> {
    pub(crate) fn new(
        me: P,
        tracked_sets: usize,
        backoff_initial: Duration,
        backoff_max: Duration,
        (lane_capacity, lane_bytes): (usize, usize),
        connected_gauge: Gauge,
        dial_grace: Duration,
    ) -> Self {
        Self {
            book: Book::new(me.clone(), tracked_sets),
            me,
            schedule: DialSchedule::new(backoff_initial, backoff_max),
            connections: BTreeMap::new(),
            dialing: BTreeSet::new(),
            awaiting_keep: BTreeMap::new(),
            next_id: 0,
            lane_capacity: lane_capacity.max(1),
            lane_bytes,
            connected_gauge,
            missing_since: BTreeMap::new(),
            dial_grace,
            set_subscribers: Vec::new(),
            blocked_subscribers: Vec::new(),
            closed: false,
            settled: false,
            tracked_ips: BTreeSet::new(),
            live: None,
            traffic: BTreeMap::new(),
        }
    }

    fn update_gauge(&self) {
        self.connected_gauge.set(self.connections.len() as i64);
    }

    /// Registers a peer set; ends connections to peers that left every set or moved, and tells
    /// the subscribers.
    ///
    /// # Errors
    /// [`StaleIndex`] when the index is not newer than every tracked one; nothing changes.
    pub(crate) fn track(
        &mut self,
        index: u64,
        primary: Vec<Entry<P>>,
        secondary: Vec<Entry<P>>,
    ) -> Result<(), StaleIndex> {
        let changes = self.book.track(index, primary, secondary)?;
        self.apply(changes);
        self.publish_set();
        Ok(())
    }

    /// Changes tracked peers' addresses without a new set; a peer that moved is disconnected
    /// and redialed at its new address.
    pub(crate) fn overwrite(&mut self, peers: Vec<(P, Address)>) {
        let moved = self.book.overwrite(peers);
        self.apply(Changes {
            moved,
            ..Changes::default()
        });
    }

    fn apply(&mut self, changes: Changes<P>) {
        self.settled = false;
        for peer in changes.removed.into_iter().chain(changes.moved) {
            // Dropping the connection's entry tells its task to end.
            self.connections.remove(&peer);
            self.schedule.forget(&peer);
        }
        // A peer in no tracked set is forgotten, and so are its counts.
        let book = &self.book;
        self.traffic.retain(|peer, _| book.is_tracked(peer));
        self.update_gauge();
        self.tracked_ips = self
            .book
            .union()
            .iter()
            .filter_map(|peer| self.book.address(peer))
            .flat_map(|address| {
                let ingress = match address.ingress() {
                    Ingress::Socket(socket) => Some(socket.ip()),
                    Ingress::Dns { .. } => None,
                };
                ingress.into_iter().chain([address.egress_ip()])
            })
            // A placeholder (such as the egress of a peer known by name) is nobody's address.
            .filter(|ip| !ip.is_unspecified())
            .map(|ip| ip.to_canonical())
            .collect();
    }

    /// Whether `ip` is an address of a tracked peer (its ingress or egress), so a connection
    /// from it is likely one of theirs: the listener keeps handshake slots for those.
    pub(crate) fn is_tracked_ip(&self, ip: &IpAddr) -> bool {
        self.tracked_ips.contains(ip)
    }

    /// Blocks a peer until `until`, ends its connection, and tells the subscribers.
    pub(crate) fn block(&mut self, peer: P, until: SystemTime, now: SystemTime) {
        self.settled = false;
        self.connections.remove(&peer);
        self.book.block(peer, until, now);
        self.update_gauge();
        self.publish_blocked(now);
    }

    /// Forgets expired blocks, telling the subscribers when that changed the blocked set.
    pub(crate) fn expire_blocks(&mut self, now: SystemTime) {
        if self.book.expire_blocks(now) {
            self.settled = false;
            self.publish_blocked(now);
        }
    }

    fn tracked(set: &PeerSet<P>) -> TrackedPeers<P> {
        TrackedPeers::new(
            Set::from_iter_dedup(set.primary.iter().cloned()),
            Set::from_iter_dedup(set.secondary.iter().cloned()),
        )
    }

    /// The set registered under `index`, while it is tracked.
    pub(crate) fn peer_set(&self, index: u64) -> Option<TrackedPeers<P>> {
        self.book.peer_set(index).map(Self::tracked)
    }

    fn latest_update(&self) -> Option<PeerSetUpdate<P>> {
        let (index, latest) = self.book.latest()?;
        Some(PeerSetUpdate {
            index,
            latest: Self::tracked(latest),
            all: Self::tracked(&self.book.all()),
        })
    }

    fn publish_set(&mut self) {
        let Some(update) = self.latest_update() else {
            return;
        };
        self.set_subscribers
            .retain(|subscriber| subscriber.send(update.clone()).is_ok());
    }

    /// A subscription to new peer sets; it starts with the newest set, if any.
    pub(crate) fn subscribe(&mut self) -> unbounded::UnboundedReceiver<PeerSetUpdate<P>> {
        let (sender, receiver) = unbounded::unbounded_channel();
        if let Some(update) = self.latest_update() {
            let _ = sender.send(update);
        }
        self.set_subscribers.push(sender);
        receiver
    }

    fn publish_blocked(&mut self, now: SystemTime) {
        let blocked = Set::from_iter_dedup(self.book.blocked(now));
        self.blocked_subscribers
            .retain(|subscriber| subscriber.send_lossy(blocked.clone()));
    }

    /// A subscription to the blocked set; it starts with the current set.
    pub(crate) fn subscribe_blocked(&mut self, now: SystemTime) -> ring::Receiver<Set<P>> {
        let (sender, receiver) = ring::channel(std::num::NonZeroUsize::MIN);
        sender.send_lossy(Set::from_iter_dedup(self.book.blocked(now)));
        self.blocked_subscribers.push(sender);
        receiver
    }

    /// A stream that ends once the network is closed and every connection registered from
    /// now on has ended.
    pub(crate) fn watch_live(&mut self) -> mpsc::Receiver<()> {
        let (live, watch) = mpsc::channel(0);
        self.live = Some(live);
        watch
    }

    /// Marks the network stopped: every connection ends, sends report it closed, and the
    /// subscriptions end.
    pub(crate) fn close(&mut self) {
        self.closed = true;
        self.live = None;
        self.connections.clear();
        self.set_subscribers.clear();
        self.blocked_subscribers.clear();
        self.update_gauge();
    }

    /// Whether the network has stopped.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// The bouncer's question: may `peer` complete a handshake with us now?
    pub(crate) fn is_allowed(&self, peer: &P, now: SystemTime) -> bool {
        self.book.is_allowed(peer, now)
    }

    /// Peers to dial now, with their addresses: allowed, not connected, not being dialed, and
    /// out of backoff. They are marked as being dialed.
    ///
    /// Of two peers, the arbiter (the smaller key) dials first; the other dials only once the
    /// peer has been missing for the dial grace period, so two peers rarely spend two
    /// handshakes on one connection. When they do, the arbiter picks one (see [`duplicate`]).
    pub(crate) fn take_dials(&mut self, now: SystemTime) -> Vec<(P, Ingress)> {
        // A stopping network dials nobody (its connections are closing).
        if self.closed || self.settled {
            return Vec::new();
        }
        let dialable = self.book.dialable(now);
        self.missing_since.retain(|peer, _| dialable.contains(peer));
        let book = &self.book;
        self.schedule.retain(|peer| book.is_tracked(peer));
        let mut due = Vec::new();
        for peer in dialable {
            if self.connections.contains_key(&peer) {
                self.missing_since.remove(&peer);
                continue;
            }
            let since = *self.missing_since.entry(peer.clone()).or_insert(now);
            let first_to_dial = self.is_arbiter(&peer);
            let waited = now.duration_since(since).unwrap_or_default() >= self.dial_grace;
            if (first_to_dial || waited)
                && !self.dialing.contains(&peer)
                && self.schedule.is_due(&peer, now)
                && let Some(address) = self.book.address(&peer)
            {
                let ingress = address.ingress();
                due.push((peer, ingress));
            }
        }
        self.dialing
            .extend(due.iter().map(|(peer, _)| peer.clone()));
        self.settled = due.is_empty() && self.missing_since.is_empty();
        due
    }

    /// Records a failed dial of `peer`; returns how many dials of it failed in a row and how
    /// long until the next.
    pub(crate) fn dial_failed(
        &mut self,
        peer: P,
        now: SystemTime,
        rng: &mut impl rand_core::Rng,
    ) -> (u32, Duration) {
        self.settled = false;
        self.dialing.remove(&peer);
        let wait = self.schedule.failed(peer.clone(), now, rng);
        (self.schedule.failures(&peer), wait)
    }

    /// Ends a dial whose connection the arbiter did not keep while another connection to
    /// `peer` is in use (the two dials met): nothing failed, so nothing backs off.
    pub(crate) fn dial_superseded(&mut self, peer: &P) {
        self.settled = false;
        self.dialing.remove(peer);
    }

    /// Whether a connection to `peer` is registered.
    pub(crate) fn is_connected(&self, peer: &P) -> bool {
        self.connections.contains_key(peer)
    }

    /// An inbound connection from `peer` starts waiting for its `Keep`: returns the wait's id
    /// (for [`Self::keep_awaited`]) and a receiver that fires when a newer inbound connection
    /// from `peer` supersedes this one. So a peer holds at most one connection that is in no
    /// entry, whatever it does.
    pub(crate) fn await_keep(&mut self, peer: &P) -> (u64, oneshot::Receiver<()>) {
        let (superseded_tx, superseded) = oneshot::channel();
        let id = self.next_id;
        self.next_id += 1;
        // Replacing the entry drops the older wait's sender, which supersedes it.
        self.awaiting_keep.insert(peer.clone(), (id, superseded_tx));
        (id, superseded)
    }

    /// The wait `id` for `peer`'s `Keep` is over (a newer one is left alone).
    pub(crate) fn keep_awaited(&mut self, peer: &P, id: u64) {
        if self
            .awaiting_keep
            .get(peer)
            .is_some_and(|(waiting, _)| *waiting == id)
        {
            self.awaiting_keep.remove(peer);
        }
    }

    /// Whether we are the arbiter of our pair with `peer`: we dial first and decide which
    /// connection the pair uses (see [`duplicate`]).
    pub(crate) fn is_arbiter(&self, peer: &P) -> bool {
        duplicate::is_arbiter(self.me.as_ref(), peer.as_ref())
    }

    /// Registers an authenticated connection, applying the duplicate rule: as the arbiter, a
    /// connection of the other direction than the one in use is refused; otherwise the newer
    /// connection replaces the older and takes over its queues.
    pub(crate) fn register(
        &mut self,
        peer: P,
        dialed: bool,
        now: SystemTime,
    ) -> Result<Registration, Refusal> {
        if dialed {
            self.dialing.remove(&peer);
        }
        if self.closed {
            return Err(Refusal::Closed);
        }
        if !self.book.is_allowed(&peer, now) {
            return Err(Refusal::NotAllowed);
        }
        if self.is_arbiter(&peer)
            && let Some(existing) = self.connections.get(&peer)
            && existing.dialed != dialed
        {
            return Err(Refusal::Duplicate);
        }
        // Dropping the replaced connection's entry (its stop sender) ends that connection;
        // its queues stay with the peer.
        let (lanes, queues) = match self.connections.remove(&peer) {
            Some(replaced) => (replaced.lanes, replaced.queues),
            None => {
                let (high_tx, high) = mpsc::channel(self.lane_capacity);
                let (low_tx, low) = mpsc::channel(self.lane_capacity);
                let lanes = Lanes {
                    high: high_tx,
                    low: low_tx,
                    bytes: Arc::new(ByteBudget::new(self.lane_bytes)),
                    traffic: self.traffic.entry(peer.clone()).or_default().clone(),
                };
                let queues = Arc::new(futures::lock::Mutex::new(Queues { high, low }));
                (lanes, queues)
            }
        };
        let (stop_tx, stop) = oneshot::channel();
        let id = self.next_id;
        self.next_id += 1;
        lanes.traffic.opened();
        let registration = Registration {
            id,
            queues: queues.clone(),
            bytes: lanes.bytes.clone(),
            traffic: lanes.traffic.clone(),
            stop,
            live: self.live.clone(),
        };
        let connection = Connection {
            id,
            dialed,
            since: now,
            lanes,
            queues,
            _stop: stop_tx,
        };
        self.connections.insert(peer, connection);
        self.update_gauge();
        Ok(registration)
    }

    /// Forgets the connection `id` to `peer` when it ends (a newer one is left alone). Returns
    /// whether a newer connection took over its `queues`: if not, whatever they still hold
    /// will never be written.
    ///
    /// A connection that lived at least [`STABLE_CONNECTION`] resets the peer's dial backoff;
    /// one that ended sooner counts as a failure, so a peer that drops every connection at once
    /// is not redialed (with a full handshake on both sides) every dial interval.
    pub(crate) fn unregister(
        &mut self,
        peer: &P,
        id: u64,
        queues: &SharedQueues,
        now: SystemTime,
        rng: &mut impl rand_core::Rng,
    ) -> bool {
        let Some(connection) = self.connections.get(peer) else {
            return false;
        };
        if connection.id != id {
            return Arc::ptr_eq(&connection.queues, queues);
        }
        let lived = now.duration_since(connection.since).unwrap_or_default();
        self.settled = false;
        self.connections.remove(peer);
        self.update_gauge();
        if lived >= STABLE_CONNECTION {
            self.schedule.succeeded(peer);
        } else {
            self.schedule.failed(peer.clone(), now, rng);
        }
        false
    }

    /// The queues towards a connected peer.
    pub(crate) fn lanes(&self, peer: &P) -> Option<&Lanes> {
        self.connections
            .get(peer)
            .map(|connection| &connection.lanes)
    }

    /// The queues towards a connected peer, to send on. Send through these handles, never
    /// through clones: each clone of a bounded sender adds a slot of its own.
    pub(crate) fn lanes_mut(&mut self, peer: &P) -> Option<&mut Lanes> {
        self.connections
            .get_mut(peer)
            .map(|connection| &mut connection.lanes)
    }

    /// Connected peers, in key order.
    pub(crate) fn connected(&self) -> impl Iterator<Item = (&P, &Lanes)> {
        self.connections
            .iter()
            .map(|(peer, connection)| (peer, &connection.lanes))
    }

    /// The traffic counters of `peer`, if it is tracked and has had a connection.
    pub(crate) fn traffic(&self, peer: &P) -> Option<&Arc<TrafficCounters>> {
        self.traffic.get(peer)
    }

    /// Every tracked peer's status at `now`, in key order.
    pub(crate) fn statuses(&self, now: SystemTime) -> Vec<PeerStatus<P>> {
        self.book
            .union()
            .into_iter()
            .map(|peer| {
                let connection = self.connections.get(&peer);
                let state = match connection {
                    Some(connection) => PeerState::Connected {
                        since: connection.since,
                        dialed: connection.dialed,
                    },
                    None if self.book.is_blocked(&peer, now) => PeerState::Blocked,
                    None if self.dialing.contains(&peer) => PeerState::Dialing,
                    None => PeerState::Disconnected,
                };
                PeerStatus {
                    address: self.book.address(&peer).cloned(),
                    primary: self.book.is_primary(&peer),
                    state,
                    dial_failures: self.schedule.failures(&peer),
                    queued_bytes: connection.map_or(0, |c| c.lanes.bytes.held()),
                    traffic: self
                        .traffic
                        .get(&peer)
                        .map(|counters| counters.snapshot())
                        .unwrap_or_default(),
                    peer,
                }
            })
            .collect()
    }

    /// How many peers are connected (also the `connected_peers` gauge).
    #[cfg(test)]
    pub(crate) fn connected_count(&self) -> usize {
        assert_eq!(self.connected_gauge.get(), self.connections.len() as i64);
        self.connections.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
    use std::{net::SocketAddr, time::UNIX_EPOCH};

    fn key(seed: u64) -> commonware_cryptography::ed25519::PublicKey {
        PrivateKey::from_seed(seed).public_key()
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn track(
        directory: &mut Directory<commonware_cryptography::ed25519::PublicKey>,
        index: u64,
        peers: Vec<(commonware_cryptography::ed25519::PublicKey, SocketAddr)>,
    ) {
        let peers = peers
            .into_iter()
            .map(|(peer, address)| (peer, Some(Address::Symmetric(address))))
            .collect();
        directory.track(index, peers, Vec::new()).unwrap();
    }

    fn directory(me: u64) -> Directory<commonware_cryptography::ed25519::PublicKey> {
        Directory::new(
            key(me),
            3,
            Duration::from_secs(1),
            Duration::from_secs(8),
            (16, 1 << 20),
            Gauge::default(),
            Duration::ZERO,
        )
    }

    /// `(arbiter, other)`: the seeds of the smaller and the larger key.
    fn pair() -> (u64, u64) {
        if key(1) < key(2) { (1, 2) } else { (2, 1) }
    }

    #[test]
    fn the_arbiter_keeps_the_first_connection_against_one_of_the_other_direction() {
        let (arbiter, other) = pair();
        for dialed_first in [true, false] {
            let mut directory = directory(arbiter);
            track(&mut directory, 1, vec![(key(other), addr(1))]);
            let mut first = directory
                .register(key(other), dialed_first, UNIX_EPOCH)
                .unwrap();
            assert_eq!(
                directory
                    .register(key(other), !dialed_first, UNIX_EPOCH)
                    .err(),
                Some(Refusal::Duplicate),
                "dialed first: {dialed_first}"
            );
            assert_eq!(first.stop.try_recv(), Ok(None), "the first one goes on");
            assert_eq!(directory.connected_count(), 1);
        }
    }

    #[test]
    fn statuses_follow_the_connections_and_forget_peers_no_set_tracks() {
        let mut directory = directory(1);
        track(
            &mut directory,
            1,
            vec![(key(2), addr(2)), (key(3), addr(3))],
        );
        let states = |directory: &Directory<_>| -> Vec<(_, &'static str, u64)> {
            directory
                .statuses(UNIX_EPOCH)
                .into_iter()
                .map(|status| (status.peer, status.state.name(), status.traffic.connections))
                .collect()
        };
        let mut expected = vec![(key(2), "disconnected", 0), (key(3), "disconnected", 0)];
        expected.sort();
        assert_eq!(states(&directory), expected);

        let registration = directory.register(key(2), true, UNIX_EPOCH).unwrap();
        registration.traffic.message(crate::metrics::Fate::Sent, 9);
        let dials = directory.take_dials(UNIX_EPOCH);
        assert_eq!(dials.len(), 1, "the other peer is dialed");
        let status = directory.statuses(UNIX_EPOCH);
        let two = status.iter().find(|s| s.peer == key(2)).unwrap();
        assert_eq!(
            two.state,
            PeerState::Connected {
                since: UNIX_EPOCH,
                dialed: true
            }
        );
        assert_eq!(two.traffic.bytes_sent, 9);
        assert_eq!(two.address, Some(Address::Symmetric(addr(2))));
        let three = status.iter().find(|s| s.peer == key(3)).unwrap();
        assert_eq!(three.state, PeerState::Dialing);

        // Sets 2, 3 and 4 without peer 2 push set 1 out of the three tracked: peer 2 is
        // forgotten with its counts, and comes back with none.
        for index in 2..=4 {
            track(&mut directory, index, vec![(key(3), addr(3))]);
        }
        assert!(
            directory
                .statuses(UNIX_EPOCH)
                .iter()
                .all(|s| s.peer != key(2))
        );
        assert!(directory.traffic(&key(2)).is_none());
        track(
            &mut directory,
            5,
            vec![(key(2), addr(2)), (key(3), addr(3))],
        );
        let two = directory
            .statuses(UNIX_EPOCH)
            .into_iter()
            .find(|s| s.peer == key(2));
        assert_eq!(two.unwrap().traffic, Default::default());
    }

    #[test]
    fn a_newer_connection_replaces_the_older_and_takes_over_its_queues() {
        let (arbiter, other) = pair();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
        // The arbiter between two of one direction (the peer reconnected); the other side
        // for any two the arbiter kept.
        for (me, peer, old_dialed, new_dialed) in [
            (arbiter, other, false, false),
            (other, arbiter, true, false),
            (other, arbiter, false, true),
        ] {
            let mut directory = directory(me);
            track(&mut directory, 1, vec![(key(peer), addr(1))]);
            let mut old = directory
                .register(key(peer), old_dialed, UNIX_EPOCH)
                .unwrap();
            let lanes = directory.lanes_mut(&key(peer)).unwrap();
            lanes.low.try_send((7, b"queued".to_vec().into())).unwrap();
            let new = directory
                .register(key(peer), new_dialed, UNIX_EPOCH)
                .unwrap();
            assert!(
                old.stop.try_recv().is_err(),
                "the older one is told to stop"
            );
            assert!(Arc::ptr_eq(&old.queues, &new.queues));
            assert!(
                directory.unregister(&key(peer), old.id, &old.queues, UNIX_EPOCH, &mut rng),
                "the newer one writes what the older one left"
            );
            assert_eq!(directory.connected_count(), 1);
            let mut queues = new.queues.try_lock().unwrap();
            let (channel, payload) = queues.low.try_recv().unwrap();
            assert_eq!((channel, payload.as_ref()), (7, &b"queued"[..]));
        }
    }

    #[test]
    fn a_newer_inbound_wait_for_keep_supersedes_the_older() {
        let mut directory = directory(1);
        let (first, mut first_superseded) = directory.await_keep(&key(2));
        assert_eq!(first_superseded.try_recv(), Ok(None), "still waiting");
        let (second, mut second_superseded) = directory.await_keep(&key(2));
        assert!(first_superseded.try_recv().is_err(), "superseded");
        // The older wait ending leaves the newer one alone; the newer one's end clears it.
        directory.keep_awaited(&key(2), first);
        assert_eq!(second_superseded.try_recv(), Ok(None));
        directory.keep_awaited(&key(2), second);
        assert!(directory.awaiting_keep.is_empty());
        // Waits from different peers do not touch each other.
        let (_, mut from_two) = directory.await_keep(&key(2));
        let (_, _from_three) = directory.await_keep(&key(3));
        assert_eq!(from_two.try_recv(), Ok(None));
    }

    #[test]
    fn replaced_or_removed_connection_is_told_to_stop() {
        let mut directory = directory(1);
        track(&mut directory, 1, vec![(key(2), addr(2))]);
        let mut registration = directory.register(key(2), true, UNIX_EPOCH).unwrap();
        assert_eq!(registration.stop.try_recv(), Ok(None), "still running");
        track(&mut directory, 2, vec![]);
        track(&mut directory, 3, vec![]);
        track(&mut directory, 4, vec![]);
        assert!(
            registration.stop.try_recv().is_err(),
            "the peer left every set"
        );
        assert_eq!(directory.connected_count(), 0);
    }

    #[test]
    fn a_closed_directory_dials_nobody_and_registers_nothing() {
        let mut directory = directory(1);
        track(&mut directory, 1, vec![(key(2), addr(2))]);
        let mut registration = directory.register(key(2), true, UNIX_EPOCH).unwrap();
        directory.close();
        assert!(registration.stop.try_recv().is_err(), "told to stop");
        // Its peer is missing now, but a stopping network does not dial it again.
        let later = UNIX_EPOCH + Duration::from_secs(3600);
        assert!(directory.take_dials(later).is_empty());
        assert_eq!(
            directory.register(key(2), false, later).err(),
            Some(Refusal::Closed)
        );
    }

    #[test]
    fn only_allowed_peers_register_and_blocking_ends_the_connection() {
        let mut directory = directory(1);
        assert_eq!(
            directory.register(key(2), false, UNIX_EPOCH).err(),
            Some(Refusal::NotAllowed)
        );
        track(&mut directory, 1, vec![(key(2), addr(2))]);
        let mut registration = directory.register(key(2), false, UNIX_EPOCH).unwrap();
        directory.block(key(2), UNIX_EPOCH + Duration::from_secs(60), UNIX_EPOCH);
        assert!(registration.stop.try_recv().is_err());
        assert_eq!(
            directory.register(key(2), false, UNIX_EPOCH).err(),
            Some(Refusal::NotAllowed)
        );
    }

    #[test]
    fn dials_skip_connected_dialing_and_backing_off_peers() {
        let mut directory = directory(1);
        track(
            &mut directory,
            1,
            vec![(key(2), addr(2)), (key(3), addr(3)), (key(4), addr(4))],
        );
        directory.register(key(2), true, UNIX_EPOCH).unwrap();
        let dials = directory.take_dials(UNIX_EPOCH);
        assert_eq!(dials.len(), 2);
        assert!(
            directory.take_dials(UNIX_EPOCH).is_empty(),
            "already being dialed"
        );
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        directory.dial_failed(key(3), UNIX_EPOCH, &mut rng);
        assert!(directory.take_dials(UNIX_EPOCH).is_empty(), "backing off");
        let later = UNIX_EPOCH + Duration::from_secs(2);
        assert_eq!(
            directory.take_dials(later),
            vec![(key(3), Ingress::Socket(addr(3)))]
        );
    }

    #[test]
    fn stale_connection_end_does_not_remove_its_replacement() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        let mut directory = directory(1);
        track(&mut directory, 1, vec![(key(2), addr(2))]);
        let old = directory.register(key(2), false, UNIX_EPOCH).unwrap();
        assert!(!directory.unregister(&key(2), old.id, &old.queues, UNIX_EPOCH, &mut rng));
        let new = directory.register(key(2), false, UNIX_EPOCH).unwrap();
        assert!(
            !directory.unregister(&key(2), old.id, &old.queues, UNIX_EPOCH, &mut rng),
            "a connection registered after the old one ended has queues of its own"
        );
        assert_eq!(directory.connected_count(), 1);
        assert!(!directory.unregister(&key(2), new.id, &new.queues, UNIX_EPOCH, &mut rng));
        assert_eq!(directory.connected_count(), 0);
    }

    #[test]
    fn short_lived_connection_backs_off_and_a_stable_one_resets() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let mut directory = directory(1);
        track(&mut directory, 1, vec![(key(2), addr(2))]);
        let start = UNIX_EPOCH + Duration::from_secs(100);
        let first = directory.register(key(2), true, start).unwrap();
        let ended = start + Duration::from_secs(1);
        directory.unregister(&key(2), first.id, &first.queues, ended, &mut rng);
        assert!(
            directory
                .take_dials(start + Duration::from_secs(1))
                .is_empty(),
            "a connection that died at once is not redialed at once"
        );
        let later = start + Duration::from_secs(60);
        let second = directory.register(key(2), true, later).unwrap();
        let ended = later + STABLE_CONNECTION;
        directory.unregister(&key(2), second.id, &second.queues, ended, &mut rng);
        assert_eq!(directory.take_dials(later + STABLE_CONNECTION).len(), 1);
    }

    #[test]
    fn a_settled_mesh_dials_again_once_anything_changes() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
        let mut directory = directory(1);
        track(
            &mut directory,
            1,
            vec![(key(2), addr(2)), (key(3), addr(3))],
        );
        let two = directory.register(key(2), true, UNIX_EPOCH).unwrap();
        directory.register(key(3), true, UNIX_EPOCH).unwrap();
        assert!(directory.take_dials(UNIX_EPOCH).is_empty());
        assert!(directory.settled, "every dialable peer is connected");
        let later = UNIX_EPOCH + STABLE_CONNECTION;

        // A connection ends: its peer is dialed again.
        directory.unregister(&key(2), two.id, &two.queues, later, &mut rng);
        assert_eq!(directory.take_dials(later).len(), 1);
        directory.register(key(2), true, later).unwrap();
        assert!(directory.take_dials(later).is_empty());
        assert!(directory.settled);

        // A new set with a new peer: it is dialed.
        track(
            &mut directory,
            2,
            vec![(key(2), addr(2)), (key(3), addr(3)), (key(4), addr(4))],
        );
        assert_eq!(
            directory.take_dials(later),
            vec![(key(4), Ingress::Socket(addr(4)))]
        );
        directory.register(key(4), true, later).unwrap();
        assert!(directory.take_dials(later).is_empty());

        // A block ends a connection, and its expiry makes the peer dialable again.
        let until = later + Duration::from_secs(5);
        directory.block(key(3), until, later);
        assert!(directory.take_dials(later).is_empty(), "blocked");
        directory.expire_blocks(until);
        assert_eq!(
            directory.take_dials(until),
            vec![(key(3), Ingress::Socket(addr(3)))]
        );
    }

    use rand_core::SeedableRng;
}
