//! What the members receive, checked message by message against the run's invariants.
//!
//! - Nothing arrives from outside the peer set, and outsiders receive nothing.
//! - A message claims the sender it came from (its header names the member whose key the
//!   connection authenticated).
//! - Nothing arrives twice, and from each sender a member receives sequence numbers in
//!   increasing order (gaps are losses, counted elsewhere).
//!
//! Memory is bounded per (receiver, sender) pair: the highest sequence number seen and a
//! window of the [`WINDOW`] below it, enough to tell a duplicate from a late arrival.

use crate::{latency::Latencies, probe::Probe};
use std::{
    collections::{BTreeMap, btree_map::Entry},
    time::Duration,
};

/// Sequence numbers below the highest one seen that are remembered.
const WINDOW: u64 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// Per (receiver, sender) pair: the highest sequence number and which of the `WINDOW` below
/// it (and itself) arrived, as a ring indexed by `sequence % WINDOW`.
#[derive(Clone, Debug)]
struct Track {
    highest: u64,
    seen: [u64; WORDS],
    /// Deliveries counted for the pair.
    delivered: u64,
}

impl Track {
    fn new(first: u64) -> Self {
        let mut track = Self {
            highest: first,
            seen: [0; WORDS],
            delivered: 0,
        };
        track.set(first);
        track
    }

    fn slot(sequence: u64) -> (usize, u64) {
        let bit = sequence % WINDOW;
        ((bit / 64) as usize, 1 << (bit % 64))
    }

    fn set(&mut self, sequence: u64) {
        let (word, mask) = Self::slot(sequence);
        self.seen[word] |= mask;
    }

    fn is_set(&self, sequence: u64) -> bool {
        let (word, mask) = Self::slot(sequence);
        self.seen[word] & mask != 0
    }

    /// Records `sequence`; says whether it broke the order.
    fn arrive(&mut self, sequence: u64) -> Arrival {
        if sequence > self.highest {
            // Forget the slots the window moves past.
            let skipped = (sequence - self.highest).min(WINDOW);
            for old in 1..=skipped {
                let (word, mask) = Self::slot(self.highest + old);
                self.seen[word] &= !mask;
            }
            self.highest = sequence;
            self.set(sequence);
            return Arrival::InOrder;
        }
        if self.highest - sequence >= WINDOW {
            return Arrival::OutOfOrder;
        }
        if self.is_set(sequence) {
            return Arrival::Duplicate;
        }
        self.set(sequence);
        Arrival::OutOfOrder
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arrival {
    InOrder,
    Duplicate,
    OutOfOrder,
}

/// Counts of invariant violations; all zero in a correct run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Violations {
    /// Messages a member received from a key outside the peer set.
    pub from_outside: u64,
    /// Messages an outsider received.
    pub to_outside: u64,
    /// Messages whose header names another sender than the authenticated one.
    pub misattributed: u64,
    /// Messages too short to carry the workload's header.
    pub malformed: u64,
    /// Messages received a second time.
    pub duplicates: u64,
    /// Messages received after a later one from the same sender.
    pub out_of_order: u64,
}

impl Violations {
    /// Whether every invariant held.
    pub fn none(&self) -> bool {
        *self == Self::default()
    }
}

/// Every delivery of a run, checked.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    tracks: BTreeMap<(usize, usize), Track>,
    pub(crate) delivered: u64,
    pub(crate) violations: Violations,
    pub(crate) latencies: Latencies,
}

impl Deliveries {
    /// Deliveries to node `receiver` so far, by sender (members it received from).
    pub(crate) fn delivered_to(&self, receiver: usize) -> impl Iterator<Item = (usize, u64)> {
        self.tracks
            .range((receiver, 0)..=(receiver, usize::MAX))
            .map(|(&(_, sender), track)| (sender, track.delivered))
    }

    /// Node `receiver` got `message` from the member `sender` (`None`: a key outside the
    /// set) at `now`. `receiver_is_member` is false for outsiders.
    pub(crate) fn deliver(
        &mut self,
        receiver: usize,
        receiver_is_member: bool,
        sender: Option<usize>,
        message: &[u8],
        now: Duration,
    ) {
        if !receiver_is_member {
            self.violations.to_outside += 1;
            return;
        }
        let Some(sender) = sender else {
            self.violations.from_outside += 1;
            return;
        };
        let Some(probe) = Probe::decode(message) else {
            self.violations.malformed += 1;
            return;
        };
        if probe.sender as usize != sender {
            self.violations.misattributed += 1;
            return;
        }
        let track = match self.tracks.entry((receiver, sender)) {
            Entry::Occupied(entry) => entry.into_mut(),
            // The pair's first message: in order whatever its number.
            Entry::Vacant(entry) => entry.insert(Track::new(probe.sequence)),
        };
        let arrival = match track.delivered {
            0 => Arrival::InOrder,
            _ => track.arrive(probe.sequence),
        };
        match arrival {
            Arrival::InOrder => {}
            Arrival::Duplicate => {
                self.violations.duplicates += 1;
                return;
            }
            Arrival::OutOfOrder => self.violations.out_of_order += 1,
        }
        track.delivered += 1;
        self.delivered += 1;
        self.latencies.record(now.saturating_sub(probe.sent_at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(sender: u32, sequence: u64) -> Vec<u8> {
        Probe {
            sender,
            sequence,
            sent_at: Duration::from_millis(10),
        }
        .encode(64)
    }

    #[test]
    fn increasing_sequences_with_gaps_are_in_order() {
        let mut deliveries = Deliveries::default();
        for sequence in [0, 1, 5, 2000, 2001] {
            deliveries.deliver(
                0,
                true,
                Some(1),
                &message(1, sequence),
                Duration::from_millis(30),
            );
        }
        assert_eq!(deliveries.delivered, 5);
        assert!(deliveries.violations.none());
        assert_eq!(deliveries.latencies.max(), Duration::from_millis(20));
    }

    #[test]
    fn duplicates_and_late_arrivals_are_told_apart() {
        let mut deliveries = Deliveries::default();
        let now = Duration::from_secs(1);
        for sequence in [0, 2, 2, 1, 1, 3000, 5] {
            deliveries.deliver(0, true, Some(1), &message(1, sequence), now);
        }
        assert_eq!(deliveries.violations.duplicates, 2);
        // 1 after 2, and 5 after 3000 (too far back to know whether it came before).
        assert_eq!(deliveries.violations.out_of_order, 2);
        // The same sequence from another sender, or to another receiver, is no duplicate.
        deliveries.deliver(0, true, Some(2), &message(2, 2), now);
        deliveries.deliver(3, true, Some(1), &message(1, 2), now);
        assert_eq!(deliveries.violations.duplicates, 2);
    }

    #[test]
    fn a_window_slot_reused_after_a_jump_is_not_a_duplicate() {
        let mut track = Track::new(5);
        assert_eq!(track.arrive(5 + WINDOW), Arrival::InOrder);
        assert_eq!(track.arrive(6 + WINDOW), Arrival::InOrder);
        assert_eq!(track.arrive(5 + WINDOW), Arrival::Duplicate);
        assert_eq!(track.arrive(7), Arrival::OutOfOrder);
    }

    #[test]
    fn outsiders_forgeries_and_garbage_are_violations() {
        let mut deliveries = Deliveries::default();
        let now = Duration::from_secs(1);
        deliveries.deliver(0, true, None, &message(1, 0), now);
        deliveries.deliver(9, false, Some(1), &message(1, 0), now);
        deliveries.deliver(0, true, Some(2), &message(1, 0), now);
        deliveries.deliver(0, true, Some(2), b"short", now);
        let violations = deliveries.violations;
        assert_eq!(
            (
                violations.from_outside,
                violations.to_outside,
                violations.misattributed,
                violations.malformed
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(deliveries.delivered, 0);
    }
}
