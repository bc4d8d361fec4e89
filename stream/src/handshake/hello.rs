//! The Hello message: encoding, parsing and the signed payload.
//!
//! Wire layout (all fixed size; for ed25519 that is 176 bytes):
//!
//! | field | bytes |
//! |---|---|
//! | namespace tag | 8 |
//! | recipient static public key | `P::SIZE` |
//! | sender static public key | `P::SIZE` |
//! | sender ephemeral X25519 key | 32 |
//! | timestamp, ms since the UNIX epoch, big-endian | 8 |
//! | signature | `Signature::SIZE` |
//!
//! The signature is made under the *hello namespace*, the application namespace followed by
//! [`HELLO_NAMESPACE_SUFFIX`], over
//! `DOMAIN || role || tag || recipient || sender || ephemeral || timestamp || binding`, where
//! `role` is one byte (0 dialer, 1 listener) and `binding` is empty for the dialer and, for the
//! listener, the BLAKE3 hash of the dialer's Hello it answers. An application that signs its
//! own messages with the same key and namespace therefore never makes a signature that
//! verifies as a Hello.
//!
//! The namespace tag is the first 8 bytes of a BLAKE3 key derived from the application
//! namespace. It lets a peer configured with another namespace be told apart from a forgery,
//! before any signature is checked ([`Error::NamespaceMismatch`]). It is a hint, not a proof
//! (anyone can copy a tag), and it reveals only that two peers share a namespace, which
//! their traffic shows anyway.

use crate::{Config, Error};
use commonware_codec::{Copying, DecodeExt, FixedSize};
use commonware_cryptography::{PublicKey, Signer};

/// Domain label that starts every signed Hello payload.
const DOMAIN: &[u8] = b"palisade-stream/v1/hello";

/// Appended to the application namespace to give the namespace Hellos are signed under.
pub const HELLO_NAMESPACE_SUFFIX: &[u8] = b"_PALISADE_STREAM_HELLO";

/// The BLAKE3 key-derivation context of the namespace tag.
const TAG_CONTEXT: &str = "palisade-stream/v1 namespace tag";

/// Bytes of the namespace tag.
pub(crate) const TAG_BYTES: usize = 8;

use super::ephemeral::X25519_BYTES as EPHEMERAL_BYTES;
const TIMESTAMP_BYTES: usize = 8;

/// Which side signed a Hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Dialer = 0,
    Listener = 1,
}

/// Size in bytes of a Hello for keys of type `P`.
pub(crate) const fn hello_bytes<P: PublicKey>() -> usize {
    TAG_BYTES + 2 * P::SIZE + EPHEMERAL_BYTES + TIMESTAMP_BYTES + <P::Signature as FixedSize>::SIZE
}

/// The namespace tag of `namespace`.
pub(crate) fn namespace_tag(namespace: &[u8]) -> [u8; TAG_BYTES] {
    let key = blake3::derive_key(TAG_CONTEXT, namespace);
    key[..TAG_BYTES].try_into().expect("a key is 32 bytes")
}

/// The namespace Hellos are signed under: `namespace` followed by [`HELLO_NAMESPACE_SUFFIX`].
pub(crate) fn hello_namespace(namespace: &[u8]) -> Vec<u8> {
    [namespace, HELLO_NAMESPACE_SUFFIX].concat()
}

/// A Hello split into its fields; borrowed from the received bytes.
pub(crate) struct HelloView<'a> {
    pub(crate) tag: &'a [u8],
    pub(crate) recipient: &'a [u8],
    pub(crate) sender: &'a [u8],
    pub(crate) ephemeral: [u8; EPHEMERAL_BYTES],
    pub(crate) timestamp_ms: u64,
    signed_fields: &'a [u8],
    signature: &'a [u8],
}

impl<'a> HelloView<'a> {
    /// Splits `bytes`, which must be exactly [`hello_bytes`] long.
    pub(crate) fn split<P: PublicKey>(bytes: &'a [u8]) -> Self {
        assert_eq!(
            bytes.len(),
            hello_bytes::<P>(),
            "caller checks the frame size"
        );
        let (tag, rest) = bytes.split_at(TAG_BYTES);
        let (recipient, rest) = rest.split_at(P::SIZE);
        let (sender, rest) = rest.split_at(P::SIZE);
        let (ephemeral, rest) = rest.split_at(EPHEMERAL_BYTES);
        let (timestamp, signature) = rest.split_at(TIMESTAMP_BYTES);
        Self {
            tag,
            recipient,
            sender,
            ephemeral: ephemeral.try_into().expect("split at EPHEMERAL_BYTES"),
            timestamp_ms: u64::from_be_bytes(timestamp.try_into().expect("split at 8")),
            signed_fields: &bytes[..bytes.len() - signature.len()],
            signature,
        }
    }

    /// Whether the tag is that of `namespace`; a mismatch is
    /// [`Error::NamespaceMismatch`].
    pub(crate) fn check_namespace(&self, namespace: &[u8]) -> Result<(), Error> {
        if self.tag != namespace_tag(namespace) {
            return Err(Error::NamespaceMismatch);
        }
        Ok(())
    }

    /// Verifies the signature as made by `sender` in `role`, under the hello namespace
    /// derived from the application `namespace`.
    pub(crate) fn verify<P: PublicKey>(
        &self,
        sender: &P,
        namespace: &[u8],
        role: Role,
        binding: Option<&blake3::Hash>,
    ) -> Result<(), Error> {
        let signature =
            P::Signature::decode(Copying(self.signature)).map_err(|_| Error::InvalidSignature)?;
        let payload = signed_payload(role, self.signed_fields, binding);
        if !sender.verify(&hello_namespace(namespace), &payload, &signature) {
            return Err(Error::InvalidSignature);
        }
        Ok(())
    }
}

/// Checks a peer's timestamp against `[now - max_handshake_age, now + synchrony_bound]`.
pub(crate) fn check_timestamp<S: Signer>(
    config: &Config<S>,
    timestamp_ms: u64,
    now_ms: u64,
) -> Result<(), Error> {
    let oldest = now_ms.saturating_sub(saturating_ms(config.max_handshake_age));
    let newest = now_ms.saturating_add(saturating_ms(config.synchrony_bound));
    if timestamp_ms < oldest {
        return Err(Error::TimestampTooOld);
    }
    if timestamp_ms > newest {
        return Err(Error::TimestampInFuture);
    }
    Ok(())
}

/// Milliseconds in `duration`, saturating at `u64::MAX`.
pub(crate) fn saturating_ms(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn signed_payload(role: Role, signed_fields: &[u8], binding: Option<&blake3::Hash>) -> Vec<u8> {
    let mut payload = Vec::with_capacity(DOMAIN.len() + 1 + signed_fields.len() + blake3::OUT_LEN);
    payload.extend_from_slice(DOMAIN);
    payload.push(role as u8);
    payload.extend_from_slice(signed_fields);
    if let Some(binding) = binding {
        payload.extend_from_slice(binding.as_bytes());
    }
    payload
}

/// Builds and signs a Hello.
pub(crate) fn encode<S: Signer>(
    config: &Config<S>,
    role: Role,
    recipient: &S::PublicKey,
    ephemeral: &[u8; EPHEMERAL_BYTES],
    timestamp_ms: u64,
    binding: Option<&blake3::Hash>,
) -> Vec<u8> {
    let mut hello = Vec::with_capacity(hello_bytes::<S::PublicKey>());
    hello.extend_from_slice(&namespace_tag(&config.namespace));
    hello.extend_from_slice(recipient.as_ref());
    hello.extend_from_slice(config.signer.public_key().as_ref());
    hello.extend_from_slice(ephemeral);
    hello.extend_from_slice(&timestamp_ms.to_be_bytes());
    let signature = config.signer.sign(
        &hello_namespace(&config.namespace),
        &signed_payload(role, &hello, binding),
    );
    hello.extend_from_slice(signature.as_ref());
    debug_assert_eq!(hello.len(), hello_bytes::<S::PublicKey>());
    hello
}
