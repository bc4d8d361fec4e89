//! The handshake as plain values: bytes, the current time and an RNG in; bytes and a decision out.
//!
//! Each step consumes the state before it, so the steps cannot run out of order, and the traffic
//! keys ([`SessionKeys`]) exist only as the result of the final, verified step.
//!
//! ```text
//! dialer                                            listener
//! start()          --- Hello (dialer) ---------->   receive_hello()   cheap checks, claimed identity
//!                                                   (bouncer, async, outside this module)
//!                                                   ClaimedHello::respond()   signature, DH, keys
//! receive_reply()  <-- Hello (listener) + Conf ---
//!                  --- Conf ----------------------> AwaitingConfirmation::receive_confirmation()
//! ```
//!
//! See the crate documentation for the wire format, the key schedule and the security argument.

mod dialer;
mod ephemeral;
mod hello;
mod keys;
mod listener;

pub use dialer::{AwaitingReply, Established, start};
pub use hello::HELLO_NAMESPACE_SUFFIX;
pub use keys::SessionKeys;
pub use listener::{AwaitingConfirmation, ClaimedHello, receive_hello};

/// Size in bytes of a Hello for keys of type `P` (176 for ed25519).
pub const fn hello_bytes<P: commonware_cryptography::PublicKey>() -> usize {
    hello::hello_bytes::<P>()
}

/// Size in bytes of a Confirmation.
pub const CONFIRMATION_BYTES: usize = keys::CONFIRMATION_BYTES;

#[cfg(test)]
mod tests;

/// Milliseconds since the UNIX epoch, saturating at 0 for times before it.
pub(crate) fn unix_ms(now: std::time::SystemTime) -> u64 {
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, hello::saturating_ms)
}
