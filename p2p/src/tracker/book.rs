//! The book of tracked peer sets, peer addresses and blocked peers.

use commonware_p2p::Address;
use std::{
    collections::{BTreeMap, BTreeSet},
    time::SystemTime,
};

/// How the union of tracked peers changed after [`Book::track`] or [`Book::overwrite`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changes<P> {
    /// Peers that entered the union.
    pub added: Vec<P>,
    /// Peers that left every tracked set: their connections must end.
    pub removed: Vec<P>,
    /// Peers whose address changed: their connections must end, and they are redialed at the
    /// new address.
    pub moved: Vec<P>,
}

impl<P> Default for Changes<P> {
    fn default() -> Self {
        Self {
            added: Vec::new(),
            removed: Vec::new(),
            moved: Vec::new(),
        }
    }
}

/// A set was registered under an index that is not newer than the latest one; it was ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("peer set index {index} is not newer than the latest tracked index {latest}")]
pub struct StaleIndex {
    /// The index that was offered.
    pub index: u64,
    /// The newest index tracked.
    pub latest: u64,
}

/// One tracked peer set, as registered: primary peers, and secondary peers that are not also
/// primary. Our own key stays in it when the application lists it, as commonware's trackers do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerSet<P: Ord> {
    /// Peers that drive progress: dialed, and counted as the set's members.
    pub primary: BTreeSet<P>,
    /// Peers that follow: they may connect and receive, but are not dialed.
    pub secondary: BTreeSet<P>,
}

impl<P: Ord + Clone> PeerSet<P> {
    fn contains(&self, peer: &P) -> bool {
        self.primary.contains(peer) || self.secondary.contains(peer)
    }
}

/// A peer offered to [`Book::track`]: its key and, when known, its address.
pub type Entry<P> = (P, Option<Address>);

/// The latest `max_sets` peer sets, registered by increasing index, each peer's address, and
/// the blocked peers.
///
/// The union of the tracked sets, less our own key, is who may connect; its primary peers that
/// have an address are whom we dial. A peer's address is the last one given for it, by a set
/// or by [`overwrite`](Self::overwrite); it is forgotten when the peer leaves every set.
/// Iteration is in key order, so everything built on the book is deterministic.
#[derive(Clone, Debug)]
pub struct Book<P: Ord + Clone> {
    me: P,
    max_sets: usize,
    sets: BTreeMap<u64, PeerSet<P>>,
    addresses: BTreeMap<P, Address>,
    blocked_until: BTreeMap<P, SystemTime>,
}

impl<P: Ord + Clone> Book<P> {
    /// An empty book for the node whose key is `me`, keeping the latest `max_sets` sets.
    ///
    /// # Panics
    /// If `max_sets` is zero.
    pub fn new(me: P, max_sets: usize) -> Self {
        assert!(max_sets > 0, "at least one peer set must be tracked");
        Self {
            me,
            max_sets,
            sets: BTreeMap::new(),
            addresses: BTreeMap::new(),
            blocked_until: BTreeMap::new(),
        }
    }

    /// Registers a set under `index`, drops the oldest sets beyond `max_sets`, and reports how
    /// the union changed. A peer listed as both primary and secondary is primary; a peer
    /// listed twice keeps its last address.
    ///
    /// # Errors
    /// [`StaleIndex`] when `index` is not newer than every tracked index; nothing changes.
    pub fn track(
        &mut self,
        index: u64,
        primary: impl IntoIterator<Item = Entry<P>>,
        secondary: impl IntoIterator<Item = Entry<P>>,
    ) -> Result<Changes<P>, StaleIndex> {
        if let Some(latest) = self.latest_index()
            && index <= latest
        {
            return Err(StaleIndex { index, latest });
        }
        let before = self.union();
        let before_addresses = self.addresses.clone();
        let mut set = PeerSet {
            primary: BTreeSet::new(),
            secondary: BTreeSet::new(),
        };
        let mut offered = Vec::new();
        for (peer, address) in primary {
            set.primary.insert(peer.clone());
            offered.push((peer, address));
        }
        for (peer, address) in secondary {
            if !set.primary.contains(&peer) {
                set.secondary.insert(peer.clone());
            }
            offered.push((peer, address));
        }
        for (peer, address) in offered {
            if let Some(address) = address
                && peer != self.me
            {
                self.addresses.insert(peer, address);
            }
        }
        self.sets.insert(index, set);
        while self.sets.len() > self.max_sets {
            self.sets.pop_first();
        }
        let after = self.union();
        self.addresses.retain(|peer, _| after.contains(peer));
        let mut changes = Changes::default();
        for peer in &after {
            if !before.contains(peer) {
                changes.added.push(peer.clone());
            } else if before_addresses.get(peer) != self.addresses.get(peer) {
                changes.moved.push(peer.clone());
            }
        }
        changes.removed = before.difference(&after).cloned().collect();
        Ok(changes)
    }

    /// Changes the addresses of tracked peers without registering a set; peers that are not
    /// tracked, or whose address is unchanged, are skipped. Returns the peers that moved.
    pub fn overwrite(&mut self, peers: impl IntoIterator<Item = (P, Address)>) -> Vec<P> {
        let mut moved = Vec::new();
        for (peer, address) in peers {
            if peer == self.me || !self.is_tracked(&peer) {
                continue;
            }
            if self.addresses.get(&peer) != Some(&address) {
                self.addresses.insert(peer.clone(), address);
                moved.push(peer);
            }
        }
        moved.sort();
        moved.dedup();
        moved
    }

    /// Every tracked peer but ourselves, primary or secondary, in key order.
    pub fn union(&self) -> BTreeSet<P> {
        self.sets
            .values()
            .flat_map(|set| set.primary.iter().chain(&set.secondary))
            .filter(|peer| **peer != self.me)
            .cloned()
            .collect()
    }

    /// The primary and secondary peers across every tracked set, as listed (our own key
    /// included when listed); a peer primary in any set is primary only.
    pub fn all(&self) -> PeerSet<P> {
        let primary: BTreeSet<P> = self
            .sets
            .values()
            .flat_map(|set| set.primary.iter().cloned())
            .collect();
        let secondary = self
            .sets
            .values()
            .flat_map(|set| set.secondary.iter())
            .filter(|peer| !primary.contains(*peer))
            .cloned()
            .collect();
        PeerSet { primary, secondary }
    }

    /// The set registered under `index`, while it is tracked.
    pub fn peer_set(&self, index: u64) -> Option<&PeerSet<P>> {
        self.sets.get(&index)
    }

    /// The newest index and its set.
    pub fn latest(&self) -> Option<(u64, &PeerSet<P>)> {
        self.sets.last_key_value().map(|(index, set)| (*index, set))
    }

    /// The newest tracked index.
    pub fn latest_index(&self) -> Option<u64> {
        self.sets.last_key_value().map(|(index, _)| *index)
    }

    /// The current address of `peer`, if it is tracked and one is known.
    pub fn address(&self, peer: &P) -> Option<&Address> {
        self.addresses.get(peer)
    }

    /// Whether `peer` is in a tracked set, as primary or secondary.
    pub fn is_tracked(&self, peer: &P) -> bool {
        self.sets.values().any(|set| set.contains(peer))
    }

    /// Whether `peer` is primary in a tracked set.
    pub fn is_primary(&self, peer: &P) -> bool {
        self.sets.values().any(|set| set.primary.contains(peer))
    }

    /// Blocks `peer` until `until`, extending an earlier block, and forgets expired blocks.
    pub fn block(&mut self, peer: P, until: SystemTime, now: SystemTime) {
        self.expire_blocks(now);
        let expiry = self.blocked_until.entry(peer).or_insert(until);
        *expiry = (*expiry).max(until);
    }

    /// Forgets blocks that expired by `now`; returns whether any did.
    pub fn expire_blocks(&mut self, now: SystemTime) -> bool {
        let before = self.blocked_until.len();
        self.blocked_until.retain(|_, expiry| *expiry > now);
        self.blocked_until.len() != before
    }

    /// The peers blocked at `now`, in key order.
    pub fn blocked(&self, now: SystemTime) -> Vec<P> {
        self.blocked_until
            .iter()
            .filter(|(_, expiry)| **expiry > now)
            .map(|(peer, _)| peer.clone())
            .collect()
    }

    /// Whether `peer` is blocked at `now`.
    pub fn is_blocked(&self, peer: &P, now: SystemTime) -> bool {
        self.blocked_until
            .get(peer)
            .is_some_and(|expiry| *expiry > now)
    }

    /// Whether `peer` may hold a connection at `now`: tracked (primary or secondary), not
    /// blocked, not ourselves.
    pub fn is_allowed(&self, peer: &P, now: SystemTime) -> bool {
        *peer != self.me && self.is_tracked(peer) && !self.is_blocked(peer, now)
    }

    /// The primary peers that are not blocked at `now` and have an address, in key order:
    /// whom to dial.
    pub fn dialable(&self, now: SystemTime) -> BTreeSet<P> {
        self.sets
            .values()
            .flat_map(|set| set.primary.iter())
            .filter(|peer| {
                **peer != self.me
                    && !self.is_blocked(peer, now)
                    && self.addresses.contains_key(*peer)
            })
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests;
