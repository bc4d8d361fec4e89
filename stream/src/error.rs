//! The one error type of the crate.
//!
//! Variants fall in three groups:
//! - **Peer misbehaviour or attack** (`NamespaceMismatch` .. `DecryptionFailed`): the connection is
//!   unusable. These are for logs and metrics; the peer is never told which one happened.
//! - **Local state** (`SelfDial`, `MessageTooLarge`, `InvalidConfig`, `Unusable`): the caller asked
//!   for something that cannot be done.
//! - **Transport** (`Io`, `HandshakeTimeout`, `HelloTimeout`, `Closed`): the connection ended.
//!
//! [`Error::reason`] gives a short, stable label for each variant, suitable for a metric label.

use commonware_runtime::Error as RuntimeError;

/// Every way a handshake, a send or a receive can fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Hello carries the tag of another namespace: the peer is configured for another
    /// network (or copies nothing right). Checked before any signature.
    #[error("hello is for another namespace")]
    NamespaceMismatch,
    /// A Hello was addressed to a public key other than ours.
    #[error("hello is addressed to another peer")]
    WrongRecipient,
    /// The dialer was asked to dial its own public key.
    #[error("refusing to dial our own public key")]
    SelfDial,
    /// A Hello claimed to come from our own static key.
    #[error("hello claims to come from our own key")]
    OwnKey,
    /// A Hello carried a sender key that does not decode as a public key.
    #[error("hello carries an invalid public key")]
    InvalidPeerKey,
    /// The listener's reply came from a key other than the one we dialed.
    #[error("reply comes from a peer other than the one dialed")]
    UnexpectedPeer,
    /// The listener's bouncer refused the dialer's claimed identity.
    #[error("peer rejected by the bouncer")]
    RejectedByBouncer,
    /// A Hello's signature does not verify (wrong key, namespace, transcript or bytes).
    #[error("invalid handshake signature")]
    InvalidSignature,
    /// A Hello's timestamp is older than `max_handshake_age`.
    #[error("handshake timestamp is too old")]
    TimestampTooOld,
    /// A Hello's timestamp is further in the future than `synchrony_bound`.
    #[error("handshake timestamp is in the future")]
    TimestampInFuture,
    /// The X25519 exchange gave the all-zero secret (the peer sent a low-order point).
    #[error("key exchange was not contributory")]
    NonContributory,
    /// A Confirmation does not prove knowledge of the session keys.
    #[error("invalid handshake confirmation")]
    InvalidConfirmation,
    /// The handshake did not finish within `handshake_timeout`.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// The dialer's Hello did not arrive within `hello_timeout` (listener only).
    #[error("no hello within the hello timeout")]
    HelloTimeout,
    /// A frame's length prefix is not a length this point of the protocol allows.
    #[error("invalid frame size: {size} bytes")]
    InvalidFrameSize {
        /// The length the prefix announced.
        size: u32,
    },
    /// A message is larger than `max_message_size` (sending), or a frame announces one (receiving).
    #[error("message of {size} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The size of the message (plaintext bytes).
        size: u64,
        /// The configured `max_message_size`.
        max: u32,
    },
    /// A record failed authentication: tampered, replayed, reordered or forged.
    #[error("record decryption failed")]
    DecryptionFailed,
    /// The direction's nonce counter is used up; the connection must be replaced.
    #[error("nonce counter exhausted")]
    NonceExhausted,
    /// The peer closed its sending half with an authenticated close record.
    #[error("stream closed by peer")]
    Closed,
    /// An earlier error ended this half; it refuses further use.
    #[error("this half failed earlier and is unusable")]
    Unusable,
    /// The configuration cannot be used.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    /// The underlying sink or stream failed (including a connection cut mid-stream).
    #[error("transport error: {0}")]
    Io(#[source] RuntimeError),
}

impl Error {
    /// A short, stable name for this error, meant for metric labels and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NamespaceMismatch => "namespace_mismatch",
            Self::WrongRecipient => "wrong_recipient",
            Self::SelfDial => "self_dial",
            Self::OwnKey => "own_key",
            Self::InvalidPeerKey => "invalid_peer_key",
            Self::UnexpectedPeer => "unexpected_peer",
            Self::RejectedByBouncer => "rejected_by_bouncer",
            Self::InvalidSignature => "invalid_signature",
            Self::TimestampTooOld => "timestamp_too_old",
            Self::TimestampInFuture => "timestamp_in_future",
            Self::NonContributory => "non_contributory",
            Self::InvalidConfirmation => "invalid_confirmation",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::HelloTimeout => "hello_timeout",
            Self::InvalidFrameSize { .. } => "invalid_frame_size",
            Self::MessageTooLarge { .. } => "message_too_large",
            Self::DecryptionFailed => "decryption_failed",
            Self::NonceExhausted => "nonce_exhausted",
            Self::Closed => "closed",
            Self::Unusable => "unusable",
            Self::InvalidConfig(_) => "invalid_config",
            Self::Io(_) => "io",
        }
    }
}
