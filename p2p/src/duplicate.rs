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
//! So when two dials meet, the pair ends up with one connection on which messages are sent,
//! the same one on both sides, and nothing is queued on, written to or read from the other:
//! nothing is lost or reordered. The cost falls on a dial by the non-arbiter: it sends its
//! last handshake message and waits for `Keep` to come back (one round trip) before sending.
//! A connection the arbiter dialed is usable on both sides as soon as its handshake
//! completes, since `Keep` follows the handshake's last message.
//!
//! When a connection replaces another to the same peer, the queues towards the peer carry
//! over: what was queued and not yet written on the old connection is written on the new one,
//! before anything queued later, and nothing of it is counted as dropped. What the old
//! connection's writer was writing when it was replaced is counted as `dropped_disconnected`
//! (resending it could deliver it twice). A replacement happens only when the peer
//! reconnected, so the old connection was already given up on the peer's side. (The
//! non-arbiter takes the `Keep` it reads last as the newer one; if it read the `Keep` of a
//! connection the arbiter has since given up after a newer one's, it uses a closed
//! connection until that connection's end is noticed, and both sides connect again.)
//!
//! # Security
//!
//! `Keep` is sent inside the authenticated stream, so only the peer itself can send it. A peer
//! (any member may pick a key that makes it the arbiter) that never sends it holds at most
//! one connection per direction that is in no directory entry: one inbound (a newer one
//! supersedes it) and the one we dialed (a peer is dialed once at a time), each for at most
//! the handshake timeout. A hostile arbiter can make the other side switch connections as
//! often as it completes handshakes, which the listener's per-address limits bound already.

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
