//! Which connection survives when two peers dial each other at the same time.
//!
//! Each side may end up with two authenticated connections to the same peer: the one it dialed
//! and the one it accepted. Both sides keep **the connection dialed by the smaller public key**
//! (in the keys' byte order) and close the other. The rule needs no message exchange and both
//! sides compute the same answer, so exactly one connection remains, and no side waits for a
//! cooldown to retry.

/// Whether the connection we dialed to `peer` is the one to keep (otherwise the one `peer`
/// dialed to us is). `me` and `peer` must differ.
pub fn keep_dialed(me: &[u8], peer: &[u8]) -> bool {
    debug_assert_ne!(me, peer, "a node never connects to itself");
    me < peer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_keep_the_same_single_connection() {
        let (a, b) = ([1u8, 2, 3], [1u8, 2, 4]);
        // a's dialed connection is b's accepted one, and vice versa.
        let a_keeps_its_dial = keep_dialed(&a, &b);
        let b_keeps_its_dial = keep_dialed(&b, &a);
        assert!(a_keeps_its_dial);
        assert!(!b_keeps_its_dial);
        assert_ne!(
            a_keeps_its_dial, b_keeps_its_dial,
            "exactly one connection survives"
        );
    }
}
