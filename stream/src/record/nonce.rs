//! The per-direction 96-bit counter nonce.

use super::cipher::NONCE_BYTES;
use crate::Error;

/// The largest counter value a nonce may carry.
const MAX_COUNTER: u128 = (1 << 96) - 1;

/// Hands out nonces 0, 1, 2, ... as 12 big-endian bytes, and refuses once 2^96 - 1 was used.
#[derive(Debug)]
pub(crate) struct NonceCounter {
    next: u128,
}

impl NonceCounter {
    pub(crate) fn new() -> Self {
        Self { next: 0 }
    }

    /// A counter that starts at `next`, so tests can reach exhaustion.
    #[cfg(test)]
    pub(crate) fn starting_at(next: u128) -> Self {
        Self { next }
    }

    /// The nonce for the next record, without consuming it.
    pub(crate) fn peek(&self) -> Result<[u8; NONCE_BYTES], Error> {
        if self.next > MAX_COUNTER {
            return Err(Error::NonceExhausted);
        }
        let bytes = self.next.to_be_bytes();
        let mut nonce = [0u8; NONCE_BYTES];
        nonce.copy_from_slice(&bytes[16 - NONCE_BYTES..]);
        Ok(nonce)
    }

    /// Marks the nonce returned by the last [`peek`](Self::peek) as used.
    pub(crate) fn advance(&mut self) {
        self.next += 1;
    }

    /// How many nonces are left.
    pub(crate) fn remaining(&self) -> u128 {
        (MAX_COUNTER + 1).saturating_sub(self.next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_count_up_from_zero_big_endian() {
        let mut counter = NonceCounter::new();
        assert_eq!(counter.peek().unwrap(), [0; 12]);
        counter.advance();
        assert_eq!(
            counter.peek().unwrap(),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        );
        let counter = NonceCounter::starting_at(1 << 64);
        assert_eq!(
            counter.peek().unwrap(),
            [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn counter_refuses_after_the_last_nonce_instead_of_wrapping() {
        let mut counter = NonceCounter::starting_at(MAX_COUNTER);
        assert_eq!(counter.remaining(), 1);
        assert_eq!(counter.peek().unwrap(), [0xff; 12]);
        counter.advance();
        assert_eq!(counter.remaining(), 0);
        assert!(matches!(counter.peek(), Err(Error::NonceExhausted)));
    }
}
