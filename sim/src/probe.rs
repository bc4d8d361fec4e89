//! The workload's messages: each says who sent it, its place in the sender's sequence and
//! when it was sent, so that a receiver can check order and duplicates and measure latency.
//!
//! Layout (big-endian): sender index `u32`, sequence number `u64`, send time in nanoseconds
//! of simulated time `u64`, then zero padding up to the message size.

use std::time::Duration;

/// Bytes of the header every message starts with.
pub(crate) const HEADER_BYTES: usize = 4 + 8 + 8;

/// What a message says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Probe {
    pub(crate) sender: u32,
    pub(crate) sequence: u64,
    /// Simulated time since the run began.
    pub(crate) sent_at: Duration,
}

impl Probe {
    /// The message of `size` bytes (at least [`HEADER_BYTES`]) that carries this probe.
    pub(crate) fn encode(&self, size: usize) -> Vec<u8> {
        let mut message = Vec::with_capacity(size.max(HEADER_BYTES));
        message.extend_from_slice(&self.sender.to_be_bytes());
        message.extend_from_slice(&self.sequence.to_be_bytes());
        let nanos = u64::try_from(self.sent_at.as_nanos()).unwrap_or(u64::MAX);
        message.extend_from_slice(&nanos.to_be_bytes());
        message.resize(size.max(HEADER_BYTES), 0);
        message
    }

    /// The probe in `message`, or `None` if it is too short to hold one.
    pub(crate) fn decode(message: &[u8]) -> Option<Self> {
        let header = message.get(..HEADER_BYTES)?;
        let (sender, rest) = header.split_at(4);
        let (sequence, sent_at) = rest.split_at(8);
        Some(Self {
            sender: u32::from_be_bytes(sender.try_into().ok()?),
            sequence: u64::from_be_bytes(sequence.try_into().ok()?),
            sent_at: Duration::from_nanos(u64::from_be_bytes(sent_at.try_into().ok()?)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_survives_encoding_at_any_size() {
        let probe = Probe {
            sender: 7,
            sequence: 1 << 40,
            sent_at: Duration::from_millis(12_345),
        };
        for size in [HEADER_BYTES, 100, 4096] {
            let message = probe.encode(size);
            assert_eq!(message.len(), size);
            assert_eq!(Probe::decode(&message), Some(probe));
        }
        assert_eq!(
            Probe::decode(&probe.encode(HEADER_BYTES)[..HEADER_BYTES - 1]),
            None
        );
    }
}
