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
/// (namespace) or will drop each other's messages (size limit). Start from
/// [`Config::recommended`] and change fields; more may be added in a minor release.
#[derive(Clone)]
#[non_exhaustive]
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
    /// Deadline, on the listener's side, for the dialer's Hello to arrive (the whole handshake
    /// still has `handshake_timeout`). An honest dialer sends its Hello as soon as it is
    /// connected, so a connection that stays silent longer is a stranger's, and it gives its
    /// resources back this much sooner.
    pub hello_timeout: Duration,
}

/// Shows every setting but the signer's secret (only its public key).
impl<S: Signer> std::fmt::Debug for Config<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("public_key", &self.signer.public_key())
            .field("namespace", &String::from_utf8_lossy(&self.namespace))
            .field("max_message_size", &self.max_message_size)
            .field("synchrony_bound", &self.synchrony_bound)
            .field("max_handshake_age", &self.max_handshake_age)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("hello_timeout", &self.hello_timeout)
            .finish()
    }
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
    /// - `hello_timeout`: 1 s for the first message, which an honest dialer sends at once:
    ///   half a second of one-way delay, with room to spare.
    pub fn recommended(signer: S, namespace: &[u8]) -> Self {
        Self {
            signer,
            namespace: namespace.to_vec(),
            max_message_size: 4 * 1024 * 1024,
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(5),
            hello_timeout: Duration::from_secs(1),
        }
    }

    /// Checks the limits that the wire format imposes.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `max_message_size` exceeds [`MAX_MESSAGE_SIZE_LIMIT`] or
    /// `handshake_timeout` or `hello_timeout` is zero.
    pub fn validate(&self) -> Result<(), Error> {
        if self.max_message_size > MAX_MESSAGE_SIZE_LIMIT {
            return Err(Error::InvalidConfig(
                "max_message_size exceeds MAX_MESSAGE_SIZE_LIMIT",
            ));
        }
        if self.handshake_timeout.is_zero() {
            return Err(Error::InvalidConfig("handshake_timeout is zero"));
        }
        if self.hello_timeout.is_zero() {
            return Err(Error::InvalidConfig("hello_timeout is zero"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::Encode;
    use commonware_cryptography::ed25519::PrivateKey;

    #[test]
    fn debug_output_never_shows_the_secret_key() {
        let signer = PrivateKey::from_seed(5);
        let secret = signer.encode();
        let shown = format!("{:?}", Config::recommended(signer, b"app"));
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let decimal = format!("{:?}", secret.as_ref());
        assert!(!shown.contains(&hex) && !shown.contains(&decimal[1..decimal.len() - 1]));
        assert!(shown.contains("max_message_size: 4194304"));
    }

    #[test]
    fn oversized_message_limit_and_zero_timeout_are_invalid() {
        let mut config = Config::recommended(PrivateKey::from_seed(5), b"app");
        assert!(config.validate().is_ok());
        config.max_message_size = MAX_MESSAGE_SIZE_LIMIT;
        assert!(config.validate().is_ok());
        config.max_message_size = MAX_MESSAGE_SIZE_LIMIT + 1;
        assert!(matches!(config.validate(), Err(Error::InvalidConfig(_))));
        config.max_message_size = 1024;
        config.handshake_timeout = Duration::ZERO;
        assert!(matches!(config.validate(), Err(Error::InvalidConfig(_))));
        config.handshake_timeout = Duration::from_secs(1);
        config.hello_timeout = Duration::ZERO;
        assert!(matches!(
            config.validate(),
            Err(Error::InvalidConfig("hello_timeout is zero"))
        ));
    }
}
