//! Key schedule: transcript hash, the four derived keys and the confirmations.
//!
//! ```text
//! transcript = BLAKE3-derive_key("palisade-stream/v1 transcript",
//!                  len(namespace) as u64 LE || namespace || dialer Hello || listener Hello)
//! key_X      = BLAKE3-derive_key(context_X, x25519_secret || transcript)
//! confirm    = BLAKE3-keyed(confirmation key of the sender's direction, transcript)
//! ```
//! Four distinct contexts give the traffic keys dialer->listener and listener->dialer and the
//! two confirmation keys. Confirmations are compared in constant time.
//!
//! Every secret lives in its own heap allocation that is wiped on drop and never moves, and
//! the hashers that saw secret input are wiped after use. (Copies the compiler makes in
//! registers or on the stack cannot be wiped from safe Rust.)

use super::ephemeral::SharedSecret;
use crate::Error;
use zeroize::{Zeroize, Zeroizing};

/// Bytes of a Confirmation message.
pub(crate) const CONFIRMATION_BYTES: usize = blake3::OUT_LEN;

const TRANSCRIPT: &str = "palisade-stream/v1 transcript";
const TRAFFIC_DIALER_TO_LISTENER: &str = "palisade-stream/v1 traffic dialer to listener";
const TRAFFIC_LISTENER_TO_DIALER: &str = "palisade-stream/v1 traffic listener to dialer";
const CONFIRM_DIALER_TO_LISTENER: &str = "palisade-stream/v1 confirmation dialer to listener";
const CONFIRM_LISTENER_TO_DIALER: &str = "palisade-stream/v1 confirmation listener to dialer";

/// A 32-byte secret on the heap, wiped on drop; moving it moves only the pointer.
pub(crate) type SecretKey = Box<Zeroizing<[u8; 32]>>;

/// Derives a key from `material` under `context`, wiping the hasher state afterwards.
fn derive_key(context: &str, material: &[u8]) -> SecretKey {
    let mut key = Box::new(Zeroizing::new([0u8; 32]));
    let mut hasher = blake3::Hasher::new_derive_key(context);
    hasher.update(material);
    let mut output = hasher.finalize_xof();
    output.fill(&mut key[..]);
    output.zeroize();
    hasher.zeroize();
    key
}

/// The keyed hash of `message` under a secret `key`, wiping the hasher state afterwards.
fn keyed_hash(key: &[u8; 32], message: &[u8]) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new_keyed(key);
    hasher.update(message);
    let hash = hasher.finalize();
    hasher.zeroize();
    hash
}

/// Hash of everything both sides said, under the namespace.
pub(crate) fn transcript_hash(
    namespace: &[u8],
    dialer_hello: &[u8],
    listener_hello: &[u8],
) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(TRANSCRIPT);
    hasher.update(&(namespace.len() as u64).to_le_bytes());
    hasher.update(namespace);
    hasher.update(dialer_hello);
    hasher.update(listener_hello);
    *hasher.finalize().as_bytes()
}

/// The traffic keys of one side of an established connection.
///
/// Only a completed handshake produces them. They are wiped on drop and never printed.
pub struct SessionKeys {
    pub(crate) send: SecretKey,
    pub(crate) receive: SecretKey,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

/// All keys derived from one handshake.
pub(crate) struct KeySchedule {
    transcript: [u8; 32],
    traffic_dialer_to_listener: SecretKey,
    traffic_listener_to_dialer: SecretKey,
    confirm_dialer_to_listener: SecretKey,
    confirm_listener_to_dialer: SecretKey,
}

impl KeySchedule {
    /// Derives the keys from a contributory shared secret (see [`super::ephemeral`]).
    pub(crate) fn derive(shared: &SharedSecret, transcript: [u8; 32]) -> Self {
        let mut material = Zeroizing::new([0u8; 64]);
        material[..32].copy_from_slice(&shared[..]);
        material[32..].copy_from_slice(&transcript);
        let derive = |context| derive_key(context, &material[..]);
        Self {
            transcript,
            traffic_dialer_to_listener: derive(TRAFFIC_DIALER_TO_LISTENER),
            traffic_listener_to_dialer: derive(TRAFFIC_LISTENER_TO_DIALER),
            confirm_dialer_to_listener: derive(CONFIRM_DIALER_TO_LISTENER),
            confirm_listener_to_dialer: derive(CONFIRM_LISTENER_TO_DIALER),
        }
    }

    pub(crate) fn dialer_confirmation(&self) -> blake3::Hash {
        keyed_hash(&self.confirm_dialer_to_listener, &self.transcript)
    }

    pub(crate) fn listener_confirmation(&self) -> blake3::Hash {
        keyed_hash(&self.confirm_listener_to_dialer, &self.transcript)
    }

    pub(crate) fn into_dialer_keys(self) -> SessionKeys {
        SessionKeys {
            send: self.traffic_dialer_to_listener,
            receive: self.traffic_listener_to_dialer,
        }
    }

    pub(crate) fn into_listener_keys(self) -> SessionKeys {
        SessionKeys {
            send: self.traffic_listener_to_dialer,
            receive: self.traffic_dialer_to_listener,
        }
    }
}

/// Compares a received confirmation with the expected one in constant time.
pub(crate) fn check_confirmation(expected: blake3::Hash, received: &[u8]) -> Result<(), Error> {
    let received: [u8; CONFIRMATION_BYTES] = received
        .try_into()
        .map_err(|_| Error::InvalidConfirmation)?;
    // `blake3::Hash` equality is constant time.
    if expected != blake3::Hash::from_bytes(received) {
        return Err(Error::InvalidConfirmation);
    }
    Ok(())
}
