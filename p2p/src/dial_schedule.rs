//! When to dial each peer again: exponential backoff with jitter after failures.
//!
//! After the `n`-th failure in a row a peer waits a random time in `[d/2, d]`, where
//! `d = min(initial * 2^(n-1), max)`. The jitter keeps peers that failed together (a restart,
//! a partition healing) from redialing in lockstep. A success resets the peer. Time and
//! randomness come from the caller, so the schedule replays exactly under the simulator.
//!
//! Time is the runtime's wall clock, which may be stepped backwards (NTP, a VM resume). A peer
//! whose last failure appears to lie in the future is due at once: waiting for the clock to
//! catch up would stall its redials for as long as the jump, while an early redial costs one
//! dial and its failure starts the next wait from the new time (the doubling goes on).

use rand_core::Rng;
use std::{collections::BTreeMap, time::Duration, time::SystemTime};

/// Per-peer redial times.
#[derive(Clone, Debug)]
pub struct DialSchedule<P: Ord> {
    initial: Duration,
    max: Duration,
    peers: BTreeMap<P, Backoff>,
}

#[derive(Clone, Copy, Debug)]
struct Backoff {
    failures: u32,
    failed_at: SystemTime,
    not_before: SystemTime,
}

impl<P: Ord> DialSchedule<P> {
    /// A schedule whose first wait is up to `initial` and whose waits never exceed `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            peers: BTreeMap::new(),
        }
    }

    /// Whether `peer` may be dialed at `now`.
    pub fn is_due(&self, peer: &P, now: SystemTime) -> bool {
        self.peers
            .get(peer)
            .is_none_or(|backoff| backoff.not_before <= now || now < backoff.failed_at)
    }

    /// Records a failed dial of `peer` at `now`; returns how long it must wait.
    pub fn failed(&mut self, peer: P, now: SystemTime, rng: &mut impl Rng) -> Duration {
        let backoff = self.peers.entry(peer).or_insert(Backoff {
            failures: 0,
            failed_at: now,
            not_before: now,
        });
        backoff.failures = backoff.failures.saturating_add(1);
        backoff.failed_at = now;
        let doublings = backoff.failures - 1;
        let ceiling = if doublings >= 32 {
            self.max
        } else {
            self.initial.saturating_mul(1 << doublings).min(self.max)
        };
        // Uniform in [ceiling / 2, ceiling], at nanosecond resolution.
        let half = ceiling / 2;
        let spread = (ceiling - half).as_nanos() as u64;
        let jitter = if spread == 0 {
            0
        } else {
            rng.next_u64() % (spread + 1)
        };
        let wait = half + Duration::from_nanos(jitter);
        backoff.not_before = now + wait;
        wait
    }

    /// Failed dials of `peer` since it last connected (0 when none).
    pub fn failures(&self, peer: &P) -> u32 {
        self.peers.get(peer).map_or(0, |backoff| backoff.failures)
    }

    /// Records a successful connection: the next failure starts from `initial` again.
    pub fn succeeded(&mut self, peer: &P) {
        self.peers.remove(peer);
    }

    /// Forgets a peer that is no longer tracked.
    pub fn forget(&mut self, peer: &P) {
        self.peers.remove(peer);
    }

    /// Keeps only the peers `keep` accepts (drop peers that are no longer tracked).
    pub fn retain(&mut self, mut keep: impl FnMut(&P) -> bool) {
        self.peers.retain(|peer, _| keep(peer));
    }

    /// How many peers are backing off.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether no peer is backing off.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use std::time::UNIX_EPOCH;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn waits_double_within_jitter_and_stop_at_the_cap() {
        let mut schedule = DialSchedule::new(SECOND, 8 * SECOND);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let now = UNIX_EPOCH;
        for (failure, ceiling) in [1u32, 2, 4, 8, 8, 8].into_iter().enumerate() {
            let wait = schedule.failed(1u8, now, &mut rng);
            let ceiling = SECOND * ceiling;
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "failure {failure}: {wait:?}"
            );
        }
    }

    #[test]
    fn peer_is_due_again_after_its_wait_and_success_resets_it() {
        let mut schedule = DialSchedule::new(SECOND, 60 * SECOND);
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let start = UNIX_EPOCH + 100 * SECOND;
        assert!(schedule.is_due(&1u8, start));
        let wait = schedule.failed(1u8, start, &mut rng);
        assert!(!schedule.is_due(&1, start + wait - Duration::from_nanos(1)));
        assert!(schedule.is_due(&1, start + wait));
        assert!(schedule.is_due(&2, start), "other peers are unaffected");
        schedule.failed(1u8, start, &mut rng);
        schedule.succeeded(&1);
        assert!(schedule.is_due(&1, start));
        assert!(schedule.failed(1u8, start, &mut rng) <= SECOND);
    }

    #[test]
    fn clock_stepped_back_makes_the_peer_due_and_the_backoff_goes_on() {
        let mut schedule = DialSchedule::new(SECOND, 60 * SECOND);
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let start = UNIX_EPOCH + 1000 * SECOND;
        schedule.failed(1u8, start, &mut rng);
        schedule.failed(1u8, start, &mut rng);
        let stepped_back = start - 600 * SECOND;
        assert!(
            !schedule.is_due(&1, start),
            "still waiting at the failure time"
        );
        assert!(
            schedule.is_due(&1, stepped_back),
            "a jump back must not stall redials"
        );
        let third = schedule.failed(1u8, stepped_back, &mut rng);
        assert!(third >= 2 * SECOND && third <= 4 * SECOND, "{third:?}");
        assert!(!schedule.is_due(&1, stepped_back));
        assert!(schedule.is_due(&1, stepped_back + third));
    }

    #[test]
    fn same_seed_gives_the_same_waits() {
        let waits = |seed| {
            let mut schedule = DialSchedule::new(SECOND, 60 * SECOND);
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            (0..10)
                .map(|i| schedule.failed(i % 3, UNIX_EPOCH, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(waits(3), waits(3));
        assert_ne!(waits(3), waits(4));
    }

    #[test]
    fn endless_failures_neither_overflow_nor_exceed_the_cap() {
        let mut schedule = DialSchedule::new(Duration::from_millis(10), SECOND);
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        for _ in 0..200 {
            assert!(schedule.failed(1u8, UNIX_EPOCH, &mut rng) <= SECOND);
        }
        schedule.forget(&1);
        assert!(schedule.is_empty());
    }
}
