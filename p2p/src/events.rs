//! What the network tells its operator through `tracing`, and at which level.
//!
//! Every connection runs in a `connection` span at info level (fields `direction`, `address`,
//! and `peer` once known), so each event below names who and where. Levels:
//!
//! - **warn**: what points at a misconfiguration an operator must fix: a peer that uses
//!   another namespace ([`Error::NamespaceMismatch`]), a dialer that expects another key for
//!   this node ([`Error::WrongRecipient`]), a listener at a peer's address that has another
//!   key than configured ([`Error::UnexpectedPeer`]), a Hello outside the clock window (clock
//!   skew), and a signature that does not verify for a tracked key (a forgery, or the wrong
//!   key file on that peer's side).
//! - **info**: a peer that becomes unreachable (the first failed dial in a row), a listen
//!   address bound, the network stopping.
//! - **debug**: routine churn: every other failed dial and handshake, connections opened and
//!   closed, peers refused by the bouncer (not tracked, or blocked).
//!
//! What is and is not told apart: a namespace mismatch is recognised from the Hello's
//! namespace tag, before any signature is checked; the tag can be copied, so an attacker can
//! make a connection look like a mismatch, but never look authenticated. A forged signature
//! and a signature by the right key over other bytes cannot be told apart, and nothing here
//! tries. Nothing of this is ever sent to the peer.
//!
//! Anyone who can reach the listener can cause these warnings (a stranger can send a Hello
//! with another namespace tag, or claim a tracked key and sign badly), at up to the rate the
//! listener accepts connections. So each warning is logged at most once per
//! [`WARN_INTERVAL`] and reason, with the number of the same left out since (`suppressed`);
//! the ones left out go to debug, and every one is counted in the `handshakes` metric.

use palisade_stream::Error;
use std::{
    collections::BTreeMap,
    sync::Mutex,
    time::{Duration, SystemTime},
};

/// Shortest time between two warnings for the same reason.
pub(crate) const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// When each warning reason was last logged, and how many were left out since.
#[derive(Debug, Default)]
pub(crate) struct WarnThrottle {
    last: Mutex<BTreeMap<&'static str, (SystemTime, u64)>>,
}

impl WarnThrottle {
    /// `Some(left out since the last one)` when a warning for `reason` may be logged at
    /// `now`; `None` (and one more left out) when it must not.
    fn allow(&self, reason: &'static str, now: SystemTime) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match last.get_mut(reason) {
            Some((at, suppressed))
                if now.duration_since(*at).unwrap_or_default() < WARN_INTERVAL =>
            {
                *suppressed += 1;
                None
            }
            Some((at, suppressed)) => {
                let left_out = *suppressed;
                *at = now;
                *suppressed = 0;
                Some(left_out)
            }
            None => {
                last.insert(reason, (now, 0));
                Some(0)
            }
        }
    }
}

/// Logs why a handshake failed, at the level its reason calls for (warnings throttled by
/// `throttle`, see the module docs).
pub(crate) fn handshake_failed(throttle: &WarnThrottle, now: SystemTime, error: &Error) {
    let reason = error.reason();
    let warns = matches!(
        error,
        Error::NamespaceMismatch
            | Error::WrongRecipient
            | Error::UnexpectedPeer
            | Error::TimestampTooOld
            | Error::TimestampInFuture
            | Error::InvalidSignature
    );
    let suppressed = match warns.then(|| throttle.allow(reason, now)).flatten() {
        Some(suppressed) => suppressed,
        None if warns => {
            tracing::debug!(reason, %error, "handshake refused (warned about recently)");
            return;
        }
        None => 0,
    };
    match error {
        Error::NamespaceMismatch => tracing::warn!(
            reason,
            suppressed,
            "handshake refused: the peer uses another namespace (another network, or a \
             misconfigured node)"
        ),
        Error::WrongRecipient => tracing::warn!(
            reason,
            suppressed,
            "handshake refused: the peer expects another public key for this node (its \
             configuration has a wrong or old key for us)"
        ),
        Error::UnexpectedPeer => tracing::warn!(
            reason,
            suppressed,
            "handshake refused: the node at this address has another key than configured for \
             the peer"
        ),
        Error::TimestampTooOld | Error::TimestampInFuture => tracing::warn!(
            reason,
            suppressed,
            "handshake refused: the peer's clock is too far from ours"
        ),
        Error::InvalidSignature => tracing::warn!(
            reason,
            suppressed,
            "handshake refused: the signature does not verify for the key the peer claims \
             (anyone may claim a tracked key; if it is that peer, it runs with another key \
             file)"
        ),
        Error::RejectedByBouncer => tracing::debug!(
            reason,
            "handshake refused: the claimed key is not tracked or is blocked"
        ),
        _ => tracing::debug!(reason, %error, "handshake failed"),
    }
}

/// Logs why a connection never carried a message (see `establish`). A first message other
/// than `Keep` from the pair's arbiter points at a peer that runs an incompatible version:
/// warned about (throttled like the handshake warnings); the rest is churn.
pub(crate) fn not_kept(throttle: &WarnThrottle, now: SystemTime, reason: &'static str) {
    if reason != "malformed" {
        tracing::debug!(reason, "connection closed before it was used");
        return;
    }
    match throttle.allow("first_message_not_keep", now) {
        Some(suppressed) => tracing::warn!(
            reason,
            suppressed,
            "connection refused: the peer's first message is not Keep (it runs an \
             incompatible version of palisade-p2p)"
        ),
        None => tracing::debug!(
            reason,
            "connection refused: the peer's first message is not Keep (warned about recently)"
        ),
    }
}

/// Logs a failed dial: at info the first time in a row (the peer just became unreachable),
/// at debug after that.
pub(crate) fn dial_failed(reason: &str, failures: u32, retry_in: std::time::Duration) {
    if failures <= 1 {
        tracing::info!(
            reason,
            ?retry_in,
            "peer unreachable; dialing again with backoff"
        );
    } else {
        tracing::debug!(reason, failures, ?retry_in, "dial failed");
    }
}
