//! The book of tracked peer sets and blocked peers.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    time::SystemTime,
};

/// How the union of tracked peers changed after [`Book::track`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changes<P> {
    /// Peers that entered the union, with their address.
    pub added: Vec<(P, SocketAddr)>,
    /// Peers that left every tracked set: their connections must end.
    pub removed: Vec<P>,
    /// Peers whose address changed: they must be redialed at the new address.
    pub moved: Vec<(P, SocketAddr)>,
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

/// The latest `max_sets` peer sets, registered by increasing index, and the blocked peers.
///
/// The union of the tracked sets is who may connect. A peer's address is the one given by the
/// newest set that lists it. Our own key is never part of the union. Iteration is in key order,
/// so everything built on the book is deterministic.
#[derive(Clone, Debug)]
pub struct Book<P: Ord + Clone> {
    me: P,
    max_sets: usize,
    sets: BTreeMap<u64, BTreeMap<P, SocketAddr>>,
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
            blocked_until: BTreeMap::new(),
        }
    }

    /// Registers `peers` under `index`, drops the oldest sets beyond `max_sets`, and reports how
    /// the union changed. A peer listed twice keeps its last address.
    ///
    /// # Errors
    /// [`StaleIndex`] when `index` is not newer than every tracked index; nothing changes.
    pub fn track(
        &mut self,
        index: u64,
        peers: impl IntoIterator<Item = (P, SocketAddr)>,
    ) -> Result<Changes<P>, StaleIndex> {
        if let Some((&latest, _)) = self.sets.last_key_value()
            && index <= latest
        {
            return Err(StaleIndex { index, latest });
        }
        let before = self.union();
        let set = peers
            .into_iter()
            .filter(|(peer, _)| *peer != self.me)
            .collect();
        self.sets.insert(index, set);
        while self.sets.len() > self.max_sets {
            self.sets.pop_first();
        }
        let after = self.union();
        let mut changes = Changes {
            added: Vec::new(),
            removed: Vec::new(),
            moved: Vec::new(),
        };
        for (peer, address) in &after {
            match before.get(peer) {
                None => changes.added.push((peer.clone(), *address)),
                Some(old) if old != address => changes.moved.push((peer.clone(), *address)),
                Some(_) => {}
            }
        }
        changes.removed = before
            .into_keys()
            .filter(|peer| !after.contains_key(peer))
            .collect();
        Ok(changes)
    }

    /// Every tracked peer with its current address, in key order.
    pub fn union(&self) -> BTreeMap<P, SocketAddr> {
        let mut union = BTreeMap::new();
        // Oldest first, so newer sets overwrite addresses.
        for set in self.sets.values() {
            union.extend(set.iter().map(|(peer, address)| (peer.clone(), *address)));
        }
        union
    }

    /// The current address of `peer`, if it is tracked.
    pub fn address(&self, peer: &P) -> Option<SocketAddr> {
        self.sets
            .values()
            .rev()
            .find_map(|set| set.get(peer).copied())
    }

    /// Whether `peer` is in a tracked set.
    pub fn is_tracked(&self, peer: &P) -> bool {
        self.sets.values().any(|set| set.contains_key(peer))
    }

    /// Blocks `peer` until `until`, extending an earlier block, and forgets expired blocks.
    pub fn block(&mut self, peer: P, until: SystemTime, now: SystemTime) {
        self.blocked_until.retain(|_, expiry| *expiry > now);
        let expiry = self.blocked_until.entry(peer).or_insert(until);
        *expiry = (*expiry).max(until);
    }

    /// Whether `peer` is blocked at `now`.
    pub fn is_blocked(&self, peer: &P, now: SystemTime) -> bool {
        self.blocked_until
            .get(peer)
            .is_some_and(|expiry| *expiry > now)
    }

    /// Whether `peer` may hold a connection at `now`: tracked, not blocked, not ourselves.
    pub fn is_allowed(&self, peer: &P, now: SystemTime) -> bool {
        *peer != self.me && self.is_tracked(peer) && !self.is_blocked(peer, now)
    }

    /// The tracked peers that are not blocked at `now`, in key order: whom to dial.
    pub fn dialable(&self, now: SystemTime) -> BTreeSet<P> {
        self.union()
            .into_keys()
            .filter(|peer| !self.is_blocked(peer, now))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn union_of_the_latest_sets_rotates_out_old_peers() {
        let mut book = Book::new(0u8, 2);
        let first = book.track(1, [(1, addr(1)), (2, addr(2))]).unwrap();
        assert_eq!(first.added, vec![(1, addr(1)), (2, addr(2))]);
        let second = book.track(2, [(2, addr(2)), (3, addr(3))]).unwrap();
        assert_eq!(second.added, vec![(3, addr(3))]);
        assert!(second.removed.is_empty());
        // The third set pushes out the first: peer 1 is in no tracked set any more.
        let third = book.track(3, [(3, addr(3)), (4, addr(4))]).unwrap();
        assert_eq!(third.added, vec![(4, addr(4))]);
        assert_eq!(third.removed, vec![1]);
        assert_eq!(book.union().into_keys().collect::<Vec<_>>(), vec![2, 3, 4]);
    }

    #[test]
    fn stale_or_repeated_index_is_ignored() {
        let mut book = Book::new(0u8, 3);
        book.track(5, [(1, addr(1))]).unwrap();
        assert_eq!(
            book.track(5, [(2, addr(2))]),
            Err(StaleIndex {
                index: 5,
                latest: 5
            })
        );
        assert_eq!(
            book.track(4, [(2, addr(2))]),
            Err(StaleIndex {
                index: 4,
                latest: 5
            })
        );
        assert!(!book.is_tracked(&2));
        assert!(book.track(6, [(2, addr(2))]).is_ok());
    }

    #[test]
    fn newer_set_moves_a_peer_to_its_new_address() {
        let mut book = Book::new(0u8, 3);
        book.track(1, [(1, addr(1))]).unwrap();
        let changes = book.track(2, [(1, addr(11))]).unwrap();
        assert_eq!(changes.moved, vec![(1, addr(11))]);
        assert_eq!(book.address(&1), Some(addr(11)));
        // Repeating the same address is not a move.
        assert!(book.track(3, [(1, addr(11))]).unwrap().moved.is_empty());
    }

    #[test]
    fn own_key_is_never_tracked_or_allowed() {
        let mut book = Book::new(7u8, 1);
        let changes = book.track(1, [(7, addr(7)), (1, addr(1))]).unwrap();
        assert_eq!(changes.added, vec![(1, addr(1))]);
        assert!(!book.is_allowed(&7, at(0)));
        assert!(book.is_allowed(&1, at(0)));
    }

    #[test]
    fn blocked_peer_is_refused_until_the_block_expires() {
        let mut book = Book::new(0u8, 1);
        book.track(1, [(1, addr(1)), (2, addr(2))]).unwrap();
        book.block(1, at(100), at(0));
        assert!(!book.is_allowed(&1, at(99)));
        assert_eq!(
            book.dialable(at(99)).into_iter().collect::<Vec<_>>(),
            vec![2]
        );
        assert!(book.is_allowed(&1, at(100)));
        // A shorter block does not shorten a longer one.
        book.block(1, at(200), at(100));
        book.block(1, at(150), at(100));
        assert!(book.is_blocked(&1, at(199)));
        // Untracked peers are never allowed, blocked or not.
        assert!(!book.is_allowed(&3, at(0)));
    }

    #[test]
    fn expired_blocks_are_forgotten() {
        let mut book = Book::new(0u8, 1);
        for peer in 1..=100u8 {
            book.block(peer, at(10), at(0));
        }
        book.block(200, at(30), at(20));
        assert_eq!(book.blocked_until.len(), 1);
    }
}
