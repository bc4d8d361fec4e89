//! The application's handle on who may connect: commonware-p2p's [`Provider`],
//! [`AddressableManager`], [`Manager`] and [`Blocker`].
//!
//! Every call acts on the directory at once (under its lock, never across an await), so a
//! peer set is tracked, and a block applied, when the call returns; the returned
//! [`Feedback`] is `Ok`, or `Closed` once the network has stopped.
//!
//! `AddressableManager` and `Manager` both name their method `track`: import the one your code
//! uses. Peers tracked through `Manager` have no address of their own; they may connect to us,
//! and are dialed once an address is known for them (from another set or from `overwrite`).

use crate::{
    directory::{SharedDirectory, lock},
    status::PeerStatus,
};
use commonware_actor::Feedback;
use commonware_cryptography::PublicKey;
use commonware_p2p::{
    Address, AddressableManager, AddressableTrackedPeers, BlockedSubscription, Blocker, Manager,
    PeerSetSubscription, Provider, TrackedPeers,
};
use commonware_runtime::Clock;
use commonware_utils::ordered::Map;
use std::{fmt, sync::Arc, time::Duration};

/// Tells the network which peer sets to track and which peers to block, and reports both.
pub struct Oracle<C: Clock, P: PublicKey> {
    clock: Arc<C>,
    directory: SharedDirectory<P>,
    block_duration: Duration,
}

impl<C: Clock, P: PublicKey> Clone for Oracle<C, P> {
    fn clone(&self) -> Self {
        Self {
            clock: self.clock.clone(),
            directory: self.directory.clone(),
            block_duration: self.block_duration,
        }
    }
}

impl<C: Clock, P: PublicKey> fmt::Debug for Oracle<C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Oracle")
            .field("block_duration", &self.block_duration)
            .finish_non_exhaustive()
    }
}

impl<C: Clock, P: PublicKey> Oracle<C, P> {
    /// The peers with an authenticated connection now, in key order (the same peers the
    /// `connected_peers` gauge counts). Empty once the network has stopped.
    pub fn connected(&self) -> Vec<P> {
        lock(&self.directory)
            .connected()
            .map(|(peer, _)| peer.clone())
            .collect()
    }

    /// Every tracked peer (of every tracked set, primary and secondary), in key order: its
    /// address, what the node is doing about it, what is queued towards it, and its traffic
    /// over all its connections while tracked. Empty once the network has stopped tracking
    /// anyone. Takes the directory's lock once; cheap enough to call every second.
    ///
    /// ```
    /// # use commonware_cryptography::{Signer as _, ed25519};
    /// # use commonware_runtime::{Runner as _, deterministic};
    /// # use palisade_p2p::{Address, AddressableManager as _, Config, Network, PeerState};
    /// # use palisade_p2p::utils::ordered::Map;
    /// # deterministic::Runner::default().start(|context| async move {
    /// let key = ed25519::PrivateKey::from_seed(1);
    /// let config = Config::recommended(key, b"example", "127.0.0.1:3000".parse().unwrap());
    /// let (_network, mut oracle) = Network::new(context, config);
    /// let peer = ed25519::PrivateKey::from_seed(2).public_key();
    /// let address = Address::Symmetric("127.0.0.1:3001".parse().unwrap());
    /// let _ = oracle.track(0, Map::from_iter_dedup([(peer.clone(), address)]));
    /// let peers = oracle.peers();
    /// assert_eq!(peers.len(), 1);
    /// assert_eq!(peers[0].peer, peer);
    /// assert_eq!(peers[0].state, PeerState::Disconnected);
    /// assert_eq!(peers[0].traffic.messages_sent, 0);
    /// # });
    /// ```
    pub fn peers(&self) -> Vec<PeerStatus<P>> {
        lock(&self.directory).statuses(self.clock.current())
    }

    pub(crate) fn new(clock: C, directory: SharedDirectory<P>, block_duration: Duration) -> Self {
        Self {
            clock: Arc::new(clock),
            directory,
            block_duration,
        }
    }

    fn register(
        &mut self,
        index: u64,
        primary: Vec<(P, Option<Address>)>,
        secondary: Vec<(P, Option<Address>)>,
    ) -> Feedback {
        let mut directory = lock(&self.directory);
        if directory.is_closed() {
            return Feedback::Closed;
        }
        if let Err(stale) = directory.track(index, primary, secondary) {
            // Handled as the trait asks (indices must increase), but a caller bug to report.
            tracing::warn!(%stale, "peer set ignored");
        }
        Feedback::Ok
    }
}

impl<C: Clock, P: PublicKey> Provider for Oracle<C, P> {
    type PublicKey = P;

    /// The set tracked under `id`, while it is among the newest `tracked_peer_sets`.
    async fn peer_set(&mut self, id: u64) -> Option<TrackedPeers<P>> {
        lock(&self.directory).peer_set(id)
    }

    /// Every set tracked from now on, starting with the newest one already tracked. The
    /// subscription ends when the network stops.
    async fn subscribe(&mut self) -> PeerSetSubscription<P> {
        lock(&self.directory).subscribe()
    }
}

impl<C: Clock, P: PublicKey> AddressableManager for Oracle<C, P> {
    /// Registers the set `id`. The network keeps the union of the newest `tracked_peer_sets`
    /// sets: its primary peers are dialed, and every peer in it may connect. Peers that leave
    /// every set are disconnected; peers whose address changed are redialed. An `id` that is
    /// not newer than every tracked one changes nothing (and is logged).
    fn track<R>(&mut self, id: u64, peers: R) -> Feedback
    where
        R: Into<AddressableTrackedPeers<P>> + Send,
    {
        let peers = peers.into();
        let with_addresses = |map: Map<P, Address>| {
            map.into_iter()
                .map(|(peer, address)| (peer, Some(address)))
                .collect()
        };
        let primary = with_addresses(peers.primary);
        let secondary = with_addresses(peers.secondary);
        self.register(id, primary, secondary)
    }

    /// Changes the addresses of tracked peers; a peer whose address changed is disconnected
    /// and redialed there. Untracked peers and unchanged addresses are skipped.
    fn overwrite(&mut self, peers: Map<P, Address>) -> Feedback {
        let mut directory = lock(&self.directory);
        if directory.is_closed() {
            return Feedback::Closed;
        }
        directory.overwrite(peers.into_iter().collect());
        Feedback::Ok
    }
}

impl<C: Clock, P: PublicKey> Manager for Oracle<C, P> {
    /// Registers the set `id` by keys alone; see [`AddressableManager::track`]. A peer keeps
    /// the address it already has, if any.
    fn track<R>(&mut self, id: u64, peers: R) -> Feedback
    where
        R: Into<TrackedPeers<P>> + Send,
    {
        let peers = peers.into();
        let without_addresses = |set: commonware_utils::ordered::Set<P>| {
            set.into_iter().map(|peer| (peer, None)).collect()
        };
        let primary = without_addresses(peers.primary);
        let secondary = without_addresses(peers.secondary);
        self.register(id, primary, secondary)
    }
}

impl<C: Clock, P: PublicKey> Blocker for Oracle<C, P> {
    type PublicKey = P;

    /// Disconnects `peer` at once and refuses it for `block_duration`.
    fn block(&mut self, peer: P) -> Feedback {
        let now = self.clock.current();
        let mut directory = lock(&self.directory);
        if directory.is_closed() {
            return Feedback::Closed;
        }
        tracing::debug!(?peer, "peer blocked");
        directory.block(peer, now + self.block_duration, now);
        Feedback::Ok
    }

    /// The blocked set now, then again on every block and on every expiry (noticed within
    /// one `dial_interval`). An unread set is replaced by the next.
    fn blocked(&mut self) -> BlockedSubscription<P> {
        let now = self.clock.current();
        lock(&self.directory).subscribe_blocked(now)
    }
}
