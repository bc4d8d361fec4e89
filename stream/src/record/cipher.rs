//! ChaCha20-Poly1305 behind one small interface, on the fastest backend for the target.
//!
//! On x86_64 and aarch64 the backend is aws-lc-rs (assembly, about twice the throughput of the
//! portable crate measured on x86_64); elsewhere it is the RustCrypto `chacha20poly1305` crate.
//! Both are always compiled so the tests can check that they agree byte for byte.
//! Key bytes given to [`CipherKey::new`] are the caller's to zeroize; both backends wipe their own
//! key schedule on drop.

/// Bytes of the Poly1305 tag appended to every record.
pub(crate) const TAG_BYTES: usize = 16;
/// Bytes of a nonce.
pub(crate) const NONCE_BYTES: usize = 12;
/// Bytes of a key.
pub(crate) const KEY_BYTES: usize = 32;

/// The tag did not authenticate the record.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct OpenFailed;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) type CipherKey = fast::Key;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(crate) type CipherKey = portable::Key;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) mod fast {
    use super::{KEY_BYTES, NONCE_BYTES, OpenFailed, TAG_BYTES};
    use aws_lc_rs::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

    /// A ChaCha20-Poly1305 key on aws-lc-rs.
    pub(crate) struct Key(LessSafeKey);

    impl Key {
        pub(crate) fn new(key: &[u8; KEY_BYTES]) -> Self {
            let unbound = UnboundKey::new(&CHACHA20_POLY1305, key)
                .expect("a 32-byte key is valid for ChaCha20-Poly1305");
            Self(LessSafeKey::new(unbound))
        }

        pub(crate) fn seal_in_place(
            &self,
            nonce: [u8; NONCE_BYTES],
            aad: &[u8],
            data: &mut [u8],
        ) -> [u8; TAG_BYTES] {
            let tag = self
                .0
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    data,
                )
                .expect("sealing only fails for inputs beyond 256 GiB");
            let mut out = [0u8; TAG_BYTES];
            out.copy_from_slice(tag.as_ref());
            out
        }

        /// Opens `ciphertext || tag` in place; the plaintext is the first `len - TAG_BYTES` bytes.
        pub(crate) fn open_in_place(
            &self,
            nonce: [u8; NONCE_BYTES],
            aad: &[u8],
            sealed: &mut [u8],
        ) -> Result<(), OpenFailed> {
            self.0
                .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), sealed)
                .map(|_| ())
                .map_err(|_| OpenFailed)
        }
    }
}

// Compiled everywhere; on the fast targets only the cross-check tests use it.
#[cfg_attr(
    all(not(test), any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
pub(crate) mod portable {
    use super::{KEY_BYTES, NONCE_BYTES, OpenFailed, TAG_BYTES};
    use chacha20poly1305::{AeadInPlace, ChaCha20Poly1305, KeyInit, Tag};

    /// A ChaCha20-Poly1305 key on the portable RustCrypto implementation.
    pub(crate) struct Key(ChaCha20Poly1305);

    impl Key {
        pub(crate) fn new(key: &[u8; KEY_BYTES]) -> Self {
            Self(ChaCha20Poly1305::new(key.into()))
        }

        pub(crate) fn seal_in_place(
            &self,
            nonce: [u8; NONCE_BYTES],
            aad: &[u8],
            data: &mut [u8],
        ) -> [u8; TAG_BYTES] {
            self.0
                .encrypt_in_place_detached(&nonce.into(), aad, data)
                .expect("sealing only fails for inputs beyond 256 GiB")
                .into()
        }

        pub(crate) fn open_in_place(
            &self,
            nonce: [u8; NONCE_BYTES],
            aad: &[u8],
            sealed: &mut [u8],
        ) -> Result<(), OpenFailed> {
            let split = sealed.len().checked_sub(TAG_BYTES).ok_or(OpenFailed)?;
            let (data, tag) = sealed.split_at_mut(split);
            let tag = Tag::clone_from_slice(tag);
            self.0
                .decrypt_in_place_detached(&nonce.into(), aad, data, &tag)
                .map_err(|_| OpenFailed)
        }
    }
}
