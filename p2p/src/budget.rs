//! A bound in bytes on what a queue holds, shared by its two ends: whoever adds a message
//! reserves its bytes first, whoever takes it out releases them.
//!
//! A reservation that would go over the bound fails, except into an empty queue: one message
//! always fits, so a queue bounded below the largest message still makes progress. What a
//! queue holds is therefore at most `max(bound, largest message)` bytes.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes held by one queue, and its bound.
#[derive(Debug)]
pub(crate) struct ByteBudget {
    held: AtomicUsize,
    max: usize,
}

impl ByteBudget {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            held: AtomicUsize::new(0),
            max,
        }
    }

    /// Reserves `bytes`; `false` (and nothing reserved) when they do not fit.
    pub(crate) fn try_reserve(&self, bytes: usize) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                let total = held.checked_add(bytes)?;
                (held == 0 || total <= self.max).then_some(total)
            })
            .is_ok()
    }

    /// Gives back `bytes` reserved earlier.
    pub(crate) fn release(&self, bytes: usize) {
        let previous = self.held.fetch_sub(bytes, Ordering::AcqRel);
        debug_assert!(previous >= bytes, "released more than was reserved");
    }

    /// Bytes held now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_stop_at_the_bound_but_one_message_always_fits() {
        let budget = ByteBudget::new(100);
        assert!(budget.try_reserve(60));
        assert!(budget.try_reserve(40));
        assert!(!budget.try_reserve(1), "full");
        assert_eq!(budget.held(), 100);
        budget.release(100);
        assert!(
            budget.try_reserve(1_000),
            "an empty queue takes one message of any size"
        );
        assert!(!budget.try_reserve(1));
        budget.release(1_000);
        assert_eq!(budget.held(), 0);
        assert!(!budget.try_reserve(usize::MAX) || budget.held() == usize::MAX);
    }
}
