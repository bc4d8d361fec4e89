//! What a link does to bytes: latency, jitter and bandwidth, as pure arithmetic on time.
//!
//! A write of `n` bytes from node `a` to node `b` is modelled as a fluid: it leaves `a` when
//! `a`'s uplink is free and takes `n / egress` to transmit, travels for the link's latency
//! plus a jitter drawn by the caller, then enters `b` when `b`'s downlink is free and takes
//! `n / ingress` to receive. It is readable at the end of that. Writes on one connection are
//! never reordered: a write is due no earlier than the one before it.
//!
//! Loss is modelled as TCP shows it to the application: a write is cut into segments of
//! [`SEGMENT_BYTES`], each lost with the link's probability; a write with a lost segment is
//! readable only after a retransmission timeout (the round trip plus Linux's 200 ms minimum,
//! doubling for each time the retransmission is lost again), and since nothing overtakes it,
//! every later write on the connection waits too. Bytes are never lost or reordered. Dials
//! are not subject to loss (on a real link a lost SYN delays the connect by a second).
//!
//! Nothing here reads a clock or draws randomness, so the same inputs always give the same
//! times.

use std::time::{Duration, SystemTime};

/// Latency between two nodes, one way, and the loss of its segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// Fixed one-way delay.
    pub latency: Duration,
    /// Extra one-way delay, drawn uniformly from `[0, jitter]` for every write.
    pub jitter: Duration,
    /// The probability that a segment is lost, in millionths (10,000 is 1%).
    pub loss_per_million: u32,
}

/// Payload bytes of one TCP segment (a 1,500-byte MTU less IP and TCP headers with
/// timestamps).
pub const SEGMENT_BYTES: usize = 1448;

/// Linux's smallest retransmission timeout beyond the round trip.
pub const MIN_RETRANSMISSION_TIMEOUT: Duration = Duration::from_millis(200);

/// Most times one segment's retransmission is lost again before it is let through: beyond
/// that the stall (64 retransmission timeouts) would outlast any run.
const MAX_RETRANSMISSIONS: u32 = 6;

impl Link {
    /// A link with this latency and jitter that loses nothing.
    pub const fn new(latency: Duration, jitter: Duration) -> Self {
        Self {
            latency,
            jitter,
            loss_per_million: 0,
        }
    }

    /// This link, losing each segment with probability `per_million` / 1,000,000 (at most
    /// 1,000,000).
    pub const fn with_loss(self, per_million: u32) -> Self {
        Self {
            loss_per_million: if per_million > 1_000_000 {
                1_000_000
            } else {
                per_million
            },
            ..self
        }
    }

    /// The delay of one write, given a uniform draw `random`.
    pub(crate) fn delay(&self, random: u64) -> Duration {
        let spread = self.jitter.as_nanos().min(u128::from(u64::MAX - 1)) as u64;
        let extra = if spread == 0 {
            0
        } else {
            random % (spread + 1)
        };
        self.latency + Duration::from_nanos(extra)
    }

    /// How long a write of `bytes` waits for retransmissions, and how many it took, given
    /// the uniform draw `random` (the same one [`Self::delay`] takes: the draws here are
    /// mixed from it, so they do not follow the jitter).
    pub(crate) fn retransmission(&self, bytes: usize, random: u64) -> (Duration, u32) {
        if self.loss_per_million == 0 {
            return (Duration::ZERO, 0);
        }
        let loss = f64::from(self.loss_per_million) / 1_000_000.0;
        let segments = bytes.div_ceil(SEGMENT_BYTES).max(1);
        // The chance that at least one of the write's segments is lost.
        let hit = 1.0 - (1.0 - loss).powi(segments.min(i32::MAX as usize) as i32);
        let mut draw = random;
        let mut uniform = || {
            draw = mix(draw);
            (draw >> 11) as f64 / (1u64 << 53) as f64
        };
        if uniform() >= hit {
            return (Duration::ZERO, 0);
        }
        let mut timeout = self.latency * 2 + MIN_RETRANSMISSION_TIMEOUT;
        let mut stall = timeout;
        let mut retransmissions = 1;
        while retransmissions < MAX_RETRANSMISSIONS && uniform() < loss {
            timeout *= 2;
            stall += timeout;
            retransmissions += 1;
        }
        (stall, retransmissions)
    }
}

/// SplitMix64's finalizer: a well-spread 64-bit value from another.
fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Default for Link {
    /// 10 ms one way, up to 5 ms of jitter: nodes in one region.
    fn default() -> Self {
        Self::new(Duration::from_millis(10), Duration::from_millis(5))
    }
}

/// A node's bandwidth, in bytes per second each way; `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bandwidth {
    /// Uplink: what the node sends, over all its connections.
    pub egress_bytes_per_second: Option<u64>,
    /// Downlink: what the node receives, over all its connections.
    pub ingress_bytes_per_second: Option<u64>,
}

impl Bandwidth {
    /// Unlimited both ways.
    pub const UNLIMITED: Self = Self {
        egress_bytes_per_second: None,
        ingress_bytes_per_second: None,
    };

    /// The same limit both ways.
    pub const fn symmetric(bytes_per_second: u64) -> Self {
        Self {
            egress_bytes_per_second: Some(bytes_per_second),
            ingress_bytes_per_second: Some(bytes_per_second),
        }
    }
}

/// When a node's uplink and downlink are next free.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pacing {
    egress_free: SystemTime,
    ingress_free: SystemTime,
}

impl Pacing {
    pub(crate) fn new(now: SystemTime) -> Self {
        Self {
            egress_free: now,
            ingress_free: now,
        }
    }
}

/// How long `bytes` take at `rate` bytes per second (zero when unlimited).
fn transmission(bytes: usize, rate: Option<u64>) -> Duration {
    match rate {
        None | Some(0) => Duration::ZERO,
        Some(rate) => {
            let nanos = (bytes as u128 * 1_000_000_000).div_ceil(u128::from(rate));
            Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64)
        }
    }
}

/// One write of `bytes` from a node to another.
pub(crate) struct Write<'a> {
    pub(crate) now: SystemTime,
    pub(crate) bytes: usize,
    pub(crate) delay: Duration,
    pub(crate) sender: (&'a mut Pacing, Bandwidth),
    pub(crate) receiver: (&'a mut Pacing, Bandwidth),
    /// When the previous write on this connection became readable.
    pub(crate) previous_due: SystemTime,
}

impl Write<'_> {
    /// When the write becomes readable at the receiver; advances both nodes' pacing.
    pub(crate) fn schedule(self) -> SystemTime {
        let (sender, sender_bandwidth) = self.sender;
        let (receiver, receiver_bandwidth) = self.receiver;
        let start = self.now.max(sender.egress_free);
        let sent = start + transmission(self.bytes, sender_bandwidth.egress_bytes_per_second);
        sender.egress_free = sent;
        let arrives = sent + self.delay;
        let enters = arrives.max(receiver.ingress_free);
        let received =
            enters + transmission(self.bytes, receiver_bandwidth.ingress_bytes_per_second);
        receiver.ingress_free = received;
        received.max(self.previous_due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const MS: Duration = Duration::from_millis(1);

    fn write(
        now: SystemTime,
        bytes: usize,
        sender: &mut Pacing,
        receiver: &mut Pacing,
        bandwidth: Bandwidth,
        previous_due: SystemTime,
    ) -> SystemTime {
        Write {
            now,
            bytes,
            delay: 10 * MS,
            sender: (sender, bandwidth),
            receiver: (receiver, bandwidth),
            previous_due,
        }
        .schedule()
    }

    #[test]
    fn unlimited_write_arrives_after_the_delay() {
        let (mut a, mut b) = (Pacing::new(UNIX_EPOCH), Pacing::new(UNIX_EPOCH));
        let due = write(
            UNIX_EPOCH,
            1 << 20,
            &mut a,
            &mut b,
            Bandwidth::UNLIMITED,
            UNIX_EPOCH,
        );
        assert_eq!(due, UNIX_EPOCH + 10 * MS);
    }

    #[test]
    fn bandwidth_serializes_writes_on_the_uplink_and_the_downlink() {
        // 1 MB/s: 1,000 bytes take 1 ms to send and 1 ms to receive.
        let bandwidth = Bandwidth::symmetric(1_000_000);
        let (mut a, mut b) = (Pacing::new(UNIX_EPOCH), Pacing::new(UNIX_EPOCH));
        let first = write(UNIX_EPOCH, 1000, &mut a, &mut b, bandwidth, UNIX_EPOCH);
        assert_eq!(first, UNIX_EPOCH + 12 * MS);
        // Queued behind the first on both links: sent at 2 ms, in at 12 ms, read at 13 ms.
        let second = write(UNIX_EPOCH, 1000, &mut a, &mut b, bandwidth, first);
        assert_eq!(second, UNIX_EPOCH + 13 * MS);
    }

    #[test]
    fn a_write_is_never_due_before_the_previous_one() {
        let (mut a, mut b) = (Pacing::new(UNIX_EPOCH), Pacing::new(UNIX_EPOCH));
        let later = UNIX_EPOCH + 50 * MS;
        let due = write(UNIX_EPOCH, 1, &mut a, &mut b, Bandwidth::UNLIMITED, later);
        assert_eq!(due, later);
    }

    #[test]
    fn jitter_stays_within_its_bound() {
        let link = Link::new(10 * MS, 5 * MS);
        for random in [0, 1, 4_999_999, 5_000_000, 5_000_001, u64::MAX] {
            let delay = link.delay(random);
            assert!(delay >= 10 * MS && delay <= 15 * MS, "{delay:?}");
        }
        assert_eq!(Link::new(MS, Duration::ZERO).delay(u64::MAX), MS);
    }

    #[test]
    fn a_lossless_link_never_stalls() {
        let link = Link::new(10 * MS, 5 * MS);
        for random in [0, 1, u64::MAX / 2, u64::MAX] {
            assert_eq!(link.retransmission(1 << 20, random), (Duration::ZERO, 0));
        }
    }

    #[test]
    fn a_lost_segment_stalls_the_write_for_a_retransmission_timeout() {
        // Everything lost: each write waits the round trip plus 200 ms, doubling for each of
        // the retransmissions that are lost too, up to the cap.
        let link = Link::new(10 * MS, Duration::ZERO).with_loss(2_000_000);
        assert_eq!(link.loss_per_million, 1_000_000);
        let (stall, retransmissions) = link.retransmission(1, 7);
        assert_eq!(retransmissions, MAX_RETRANSMISSIONS);
        let timeout = 220 * MS;
        assert_eq!(stall, timeout * (1 + 2 + 4 + 8 + 16 + 32));
    }

    #[test]
    fn loss_hits_writes_as_often_as_their_segments_say() {
        // 1% of segments: about 1% of one-segment writes stall, and about 1 - 0.99^10 (9.6%)
        // of ten-segment writes.
        let link = Link::new(10 * MS, Duration::ZERO).with_loss(10_000);
        let share = |bytes: usize| {
            let stalled = (0..100_000u64)
                .filter(|&random| link.retransmission(bytes, random).1 > 0)
                .count();
            stalled as f64 / 100_000.0
        };
        let one = share(100);
        let ten = share(10 * SEGMENT_BYTES);
        assert!((0.008..0.012).contains(&one), "{one}");
        assert!((0.088..0.104).contains(&ten), "{ten}");
        // The same draw always gives the same answer.
        assert_eq!(link.retransmission(5000, 42), link.retransmission(5000, 42));
    }

    #[test]
    fn huge_writes_on_slow_links_saturate_instead_of_overflowing() {
        assert_eq!(
            transmission(usize::MAX, Some(1)),
            Duration::from_nanos(u64::MAX)
        );
        assert_eq!(transmission(10, Some(0)), Duration::ZERO);
    }
}
