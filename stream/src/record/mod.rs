//! The record layer: sealing and opening of framed ChaCha20-Poly1305 records, without I/O.
//!
//! # Format
//! A record is a frame (see [`crate::frame`]) whose body is `ciphertext || tag`. The frame header
//! is the associated data. Data records carry a message of 0..=`max_message_size` bytes; a
//! close record has the close bit set and an empty plaintext.
//!
//! # Nonces
//! Each direction has its own key and a 96-bit counter nonce that starts at 0, is never sent,
//! and increases by one per record. Both sides advance it in lock step, so a replayed, dropped
//! or reordered record fails authentication. A counter that would pass 2^96 - 1 fails the
//! direction with [`Error::NonceExhausted`](crate::Error::NonceExhausted) instead of wrapping.
//!
//! # Failure
//! Any error while opening leaves the [`Opener`] refusing all further records: once a peer has
//! sent one bad byte, nothing it sends afterwards is trusted.

mod cipher;
mod nonce;
mod open;
mod seal;

pub(crate) use cipher::{CipherKey, TAG_BYTES};
pub(crate) use nonce::NonceCounter;
pub(crate) use open::{Opened, Opener};
pub(crate) use seal::Sealer;

#[cfg(test)]
mod tests;
