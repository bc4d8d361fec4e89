//! The Hello message: encoding, parsing and the signed payload.
//!
//! Wire layout (all fixed size; for ed25519 that is 168 bytes):
//!
//! | field | bytes |
//! |---|---|
//! | recipient static public key | `P::SIZE` |
//! | sender static public key | `P::SIZE` |
//! | sender ephemeral X25519 key | 32 |
//! | timestamp, ms since the UNIX epoch, big-endian | 8 |
//! | signature | `Signature::SIZE` |
//!
//! The signature is made with the application namespace over
//! `DOMAIN || role || recipient || sender || ephemeral || timestamp || binding`, where `role` is
//! one byte (0 dialer, 1 listener) and `binding` is empty for the dialer and, for the listener,
//! the BLAKE3 hash of the dialer's Hello it answers.

use crate::{Config, Error};
use commonware_codec::{Copying, DecodeExt, FixedSize};
use commonware_cryptography::{PublicKey, Signer};

/// Domain label that starts every signed Hello payload.
const DOMAIN: &[u8] = b"palisade-stream/v1/hello";

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
    2 * P::SIZE + EPHEMERAL_BYTES + TIMESTAMP_BYTES + <P::Signature as FixedSize>::SIZE
}

/// A Hello split into its fields; borrowed from the received bytes.
pub(crate) struct HelloView<'a> {
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
        let (recipient, rest) = bytes.split_at(P::SIZE);
        let (sender, rest) = rest.split_at(P::SIZE);
        let (ephemeral, rest) = rest.split_at(EPHEMERAL_BYTES);
        let (timestamp, signature) = rest.split_at(TIMESTAMP_BYTES);
        Self {
            recipient,
            sender,
            ephemeral: ephemeral.try_into().expect("split at EPHEMERAL_BYTES"),
            timestamp_ms: u64::from_be_bytes(timestamp.try_into().expect("split at 8")),
            signed_fields: &bytes[..bytes.len() - signature.len()],
            signature,
        }
    }

    /// Verifies the signature as made by `sender` in `role`.
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
        if !sender.verify(namespace, &payload, &signature) {
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
    hello.extend_from_slice(recipient.as_ref());
    hello.extend_from_slice(config.signer.public_key().as_ref());
    hello.extend_from_slice(ephemeral);
    hello.extend_from_slice(&timestamp_ms.to_be_bytes());
    let signature = config
        .signer
        .sign(&config.namespace, &signed_payload(role, &hello, binding));
    hello.extend_from_slice(signature.as_ref());
    debug_assert_eq!(hello.len(), hello_bytes::<S::PublicKey>());
    hello
}
