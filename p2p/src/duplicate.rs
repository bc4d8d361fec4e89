//! Which connection carries messages when two peers dial each other at the same time.
//!
//! # Design
//!
//! Of two peers, the one with the smaller public key (in the keys' byte order) is the
//! **arbiter** of their pair. It dials first (the other waits a grace period before dialing),
//! and it alone decides which connection the pair uses:
//!
//! - When a handshake completes, the arbiter registers the connection unless it already has one
//!   to that peer of the other direction (one it dialed against one it accepted): then the
//!   newcomer is refused and closed. Between two of the same direction, the newer one wins: the
//!   peer reconnected, so it has given the older one up.
//! - The first message the arbiter sends on a connection it registered is
//!   [`Keep`](crate::wire::Message::Keep).
//! - The other peer registers a connection only when its first message is `Keep`, within the
//!   handshake timeout. A connection that ends first, or starts with anything else, was refused
//!   (or is broken) and never carried a message. A newer kept connection replaces an older one.
//!
//! So at any moment the pair has at most one connection on which messages are sent, and it is
//! the same one on both sides: nothing is ever queued on, written to or read from a connection
//! that a duplicate rule then closes, and nothing is lost or reordered when dials meet. The
//! cost is half a round trip for the non-arbiter when it dialed: it waits for `Keep` before
//! sending (the arbiter sends `Keep` right after the handshake's last message, so a connection
//! the arbiter dialed is usable on both sides as soon as the handshake completes).
//!
//! When a connection replaces another to the same peer, the queues towards the peer carry
//! over: what was queued and not yet written on the old connection is written on the new one,
//! before anything queued later, and nothing of it is counted as dropped.
//!
//! # Security
//!
//! `Keep` is sent inside the authenticated stream, so only the peer itself can send it. A peer
//! that never sends it holds at most one unregistered connection per direction for at most the
//! handshake timeout. A hostile arbiter can make the other side switch connections as often as
//! it completes handshakes, which the listener's per-address limits bound already.

/// Whether `me` is the arbiter of its pair with `peer` (and so dials first). `me` and `peer`
/// must differ.
pub fn is_arbiter(me: &[u8], peer: &[u8]) -> bool {
    debug_assert_ne!(me, peer, "a node never connects to itself");
    me < peer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_of_a_pair_is_the_arbiter() {
        let (a, b) = ([1u8, 2, 3], [1u8, 2, 4]);
        assert!(is_arbiter(&a, &b));
        assert!(!is_arbiter(&b, &a));
    }
}
