//! Connection settings shared by [`dial`](crate::dial) and [`listen`](crate::listen).

use crate::{Error, frame::MAX_FRAME_BODY_BYTES, record::TAG_BYTES};
use commonware_cryptography::Signer;
use std::time::Duration;

/// The largest `max_message_size` a configuration may carry: a sealed record must fit the
/// 31-bit length field of a frame header.
pub const MAX_MESSAGE_SIZE_LIMIT: u32 = MAX_FRAME_BODY_BYTES - TAG_BYTES as u32;

/// Settings of one side of a connection.
///
/// Fields marked *must match* have to be equal on both peers or they will never connect
/// (namespace) or will drop each other's messages (size limit).
#[derive(Clone)]
pub struct Config<S: Signer> {
    /// Our static identity. Its public key is what peers name when they dial us.
    pub signer: S,
    /// Application namespace, agreed out of band (*must match*). Every handshake signature is
    /// made under it, so two applications sharing keys can never complete a handshake with
    /// each other.
    pub namespace: Vec<u8>,
    /// Largest plaintext message in bytes, for both sending and receiving (*must match*).
    /// At most [`MAX_MESSAGE_SIZE_LIMIT`]. A frame that announces more is rejected before any
    /// allocation or body read; a frame within the limit is read (and its buffer allocated)
    /// before its tag is checked, so this is also the memory one connection can be made to hold.
    pub max_message_size: u32,
    /// How far in the future a peer's handshake timestamp may be: tolerated clock skew.
    pub synchrony_bound: Duration,
    /// How old a peer's handshake timestamp may be: the replay window for a Hello.
    pub max_handshake_age: Duration,
    /// Deadline for the whole handshake, every read, write and the bouncer included.
    pub handshake_timeout: Duration,
}

impl<S: Signer> Config<S> {
    /// Defaults for production over the internet.
    ///
    /// - `max_message_size`: 4 MiB, room for a block or a batch of votes.
    /// - `synchrony_bound`: 5 s of tolerated clock skew.
    /// - `max_handshake_age`: 10 s; a captured Hello is refused once it is older than that
    ///   (a Hello stamped up to `synchrony_bound` ahead stays acceptable that much longer).
    /// - `handshake_timeout`: 5 s; three messages take a few round trips even on slow links,
    ///   while a peer that stalls holds our resources for no longer than this.
    pub fn recommended(signer: S, namespace: &[u8]) -> Self {
        Self {
            signer,
            namespace: namespace.to_vec(),
            max_message_size: 4 * 1024 * 1024,
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(5),
        }
    }

    /// Checks the limits that the wire format imposes.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `max_message_size` exceeds [`MAX_MESSAGE_SIZE_LIMIT`] or
    /// `handshake_timeout` is zero.
    pub fn validate(&self) -> Result<(), Error> {
        if self.max_message_size > MAX_MESSAGE_SIZE_LIMIT {
            return Err(Error::InvalidConfig(
                "max_message_size exceeds MAX_MESSAGE_SIZE_LIMIT",
            ));
        }
        if self.handshake_timeout.is_zero() {
            return Err(Error::InvalidConfig("handshake_timeout is zero"));
        }
        Ok(())
    }
}
