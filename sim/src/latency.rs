//! Delivery latencies in a fixed amount of memory: a log-linear histogram of microseconds.
//!
//! Values below 64 µs have a bucket each; above, every power of two is split into 64
//! buckets, so a quantile is reported within 1/64 (1.6%) of the true value, rounded up. The
//! maximum is exact. Memory is a few thousand counters whatever the number of deliveries.

use std::time::Duration;

/// Sub-buckets per power of two.
const SUB_BUCKETS: u64 = 64;
const SUB_BITS: u32 = SUB_BUCKETS.trailing_zeros();

/// A histogram of latencies.
#[derive(Clone, Debug)]
pub(crate) struct Latencies {
    counts: Vec<u64>,
    total: u64,
    max_micros: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    pub(crate) fn new() -> Self {
        let buckets = SUB_BUCKETS + u64::from(64 - SUB_BITS) * SUB_BUCKETS;
        Self {
            counts: vec![0; buckets as usize],
            total: 0,
            max_micros: 0,
        }
    }

    pub(crate) fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket(micros)] += 1;
        self.total += 1;
        self.max_micros = self.max_micros.max(micros);
    }

    pub(crate) fn count(&self) -> u64 {
        self.total
    }

    pub(crate) fn max(&self) -> Duration {
        Duration::from_micros(self.max_micros)
    }

    /// The latency at or below which a fraction `q` (0 to 1) of the recorded ones fall,
    /// rounded up to its bucket's upper bound; zero when nothing was recorded.
    pub(crate) fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Duration::from_micros(upper_bound(index as u64).min(self.max_micros));
            }
        }
        self.max()
    }
}

fn bucket(micros: u64) -> usize {
    if micros < SUB_BUCKETS {
        return micros as usize;
    }
    let exponent = 63 - micros.leading_zeros();
    let shift = exponent - SUB_BITS;
    let sub = (micros >> shift) - SUB_BUCKETS;
    (SUB_BUCKETS + u64::from(shift) * SUB_BUCKETS + sub) as usize
}

fn upper_bound(index: u64) -> u64 {
    if index < SUB_BUCKETS {
        return index;
    }
    let shift = (index - SUB_BUCKETS) / SUB_BUCKETS;
    let sub = (index - SUB_BUCKETS) % SUB_BUCKETS;
    let bound = (u128::from(SUB_BUCKETS + sub + 1) << shift) - 1;
    u64::try_from(bound).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_falls_in_a_bucket_whose_bound_is_within_two_percent() {
        for micros in (0..100_000).chain([u64::MAX / 3, u64::MAX]) {
            let index = bucket(micros);
            let bound = upper_bound(index as u64);
            assert!(bound >= micros, "{micros} above its bound {bound}");
            assert!(
                bound - micros <= micros / 64,
                "{micros}: bound {bound} too loose"
            );
        }
        assert_eq!(bucket(u64::MAX), Latencies::new().counts.len() - 1);
    }

    #[test]
    fn quantiles_of_a_uniform_spread() {
        let mut latencies = Latencies::new();
        assert_eq!(latencies.quantile(0.5), Duration::ZERO);
        for millis in 1..=1000 {
            latencies.record(Duration::from_millis(millis));
        }
        let within = |value: Duration, expected_ms: u64| {
            let expected = Duration::from_millis(expected_ms);
            assert!(
                value >= expected && value <= expected + expected / 64,
                "{value:?}"
            );
        };
        within(latencies.quantile(0.5), 500);
        within(latencies.quantile(0.99), 990);
        assert_eq!(latencies.quantile(1.0), Duration::from_secs(1));
        assert_eq!(latencies.max(), Duration::from_secs(1));
        assert_eq!(latencies.count(), 1000);
    }
}
