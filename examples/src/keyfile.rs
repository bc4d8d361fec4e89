//! Identity key files: one line, the ed25519 private key in hex, readable by its owner only.
//!
//! [`generate`] creates the file with permissions 0600 and never overwrites one; [`read`]
//! refuses a file that others may read, as ssh does, since anyone who reads it can pose as
//! the node. Every error names the file.

use crate::hex;
use commonware_codec::{Copying, DecodeExt as _, Encode as _};
use commonware_cryptography::{Signer as _, ed25519};
use commonware_math::algebra::Random as _;
use rand_core::CryptoRng;
use std::{
    fs::OpenOptions,
    io::{Read as _, Write as _},
    os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};
use zeroize::{Zeroize as _, Zeroizing};

/// `open(2)` flag: fail on a symbolic link (Linux and most Unix systems).
const O_NOFOLLOW: i32 = 0o400_000;

/// Why a key file cannot be written or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file cannot be read or created.
    #[error("key file {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// Group or others may read or write the file.
    #[error("key file {path}: permissions {mode:o} let others read it; run `chmod 600 {path}`")]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file does not hold a key.
    #[error("key file {path}: {problem}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// Creates `path` (which must not exist) with a new random key, readable by its owner only;
/// returns the key's public half.
///
/// # Errors
/// [`KeyFileError::Io`] when the file exists or cannot be written.
pub fn generate(path: &Path, rng: impl CryptoRng) -> Result<ed25519::PublicKey, KeyFileError> {
    let key = ed25519::PrivateKey::random(rng);
    let io = |error| KeyFileError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    let mut encoded = key.encode_mut();
    let mut line = Zeroizing::new(String::with_capacity(2 * encoded.len() + 1));
    hex::encode_into(&encoded, &mut line);
    encoded[..].zeroize();
    line.push('\n');
    file.write_all(line.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(key.public_key())
}

/// Bytes of a key file read at most: the key's 64 hex digits and some room for whitespace.
const MAX_KEY_FILE_BYTES: u64 = 256;

/// The key in `path`.
///
/// The file is opened once, without following a symbolic link, and what is checked (a
/// regular file, readable by its owner only) is what is read, at most
/// [`MAX_KEY_FILE_BYTES`].
///
/// # Errors
/// [`KeyFileError::Io`], [`KeyFileError::TooOpen`] or [`KeyFileError::Malformed`].
pub fn read(path: &Path) -> Result<ed25519::PrivateKey, KeyFileError> {
    let io = |error| KeyFileError::Io {
        path: path.to_path_buf(),
        error,
    };
    let malformed = |problem: String| KeyFileError::Malformed {
        path: path.to_path_buf(),
        problem,
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(O_NOFOLLOW)
        .open(path)
        .map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    if !metadata.is_file() {
        return Err(malformed("is not a regular file".into()));
    }
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut text = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_BYTES as usize + 1));
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(io)?;
    if text.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(malformed(format!(
            "is longer than {MAX_KEY_FILE_BYTES} bytes"
        )));
    }
    let text = std::str::from_utf8(&text).map_err(|_| malformed("is not text".into()))?;
    let bytes = Zeroizing::new(
        hex::decode(text.trim()).map_err(|error| malformed(format!("not a hex key: {error}")))?,
    );
    if bytes.len() != 32 {
        return Err(malformed(format!(
            "holds {} bytes; an ed25519 private key has 32",
            bytes.len()
        )));
    }
    ed25519::PrivateKey::decode(Copying(bytes.as_slice()))
        .map_err(|error| malformed(format!("not an ed25519 private key: {error}")))
}

/// A public key from its hex form.
///
/// # Errors
/// A message saying what is wrong.
pub fn public_key(text: &str) -> Result<ed25519::PublicKey, String> {
    let bytes = hex::decode(text.trim()).map_err(|error| format!("not hex: {error}"))?;
    if bytes.len() != 32 {
        return Err(format!(
            "{} bytes; an ed25519 public key has 32",
            bytes.len()
        ));
    }
    ed25519::PublicKey::decode(Copying(bytes.as_slice()))
        .map_err(|error| format!("not an ed25519 public key: {error}"))
}

/// A public key in hex.
pub fn public_key_hex(key: &ed25519::PublicKey) -> String {
    hex::encode(key.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng as _;

    fn directory(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("palisade-keyfile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(1)
    }

    #[test]
    fn a_generated_key_reads_back_and_is_private() {
        let dir = directory("roundtrip");
        let path = dir.join("node.key");
        let public = generate(&path, rng()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read(&path).unwrap().public_key(), public);
        assert_eq!(public_key(&public_key_hex(&public)).unwrap(), public);
        // Never overwritten.
        let error = generate(&path, rng()).unwrap_err();
        assert!(
            matches!(error, KeyFileError::Io { ref error, .. } if error.kind() == std::io::ErrorKind::AlreadyExists)
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_key_file_others_can_read_is_refused() {
        let dir = directory("open");
        let path = dir.join("node.key");
        generate(&path, rng()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = read(&path).unwrap_err();
        assert!(
            matches!(error, KeyFileError::TooOpen { mode: 0o644, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("chmod 600"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_and_malformed_key_files_name_the_file() {
        let dir = directory("malformed");
        let missing = dir.join("missing.key");
        let error = read(&missing).unwrap_err();
        assert!(matches!(error, KeyFileError::Io { .. }));
        assert!(error.to_string().contains("missing.key"), "{error}");
        for (name, content, expected) in [
            ("short.key", "abcd\n", "holds 2 bytes"),
            ("nothex.key", "zz\n", "not a hex key"),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, content).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let error = read(&path).unwrap_err();
            assert!(matches!(error, KeyFileError::Malformed { .. }));
            let text = error.to_string();
            assert!(text.contains(name) && text.contains(expected), "{text}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn links_and_oversized_files_are_refused() {
        let dir = directory("links");
        let key = dir.join("node.key");
        generate(&key, rng()).unwrap();
        let link = dir.join("link.key");
        std::os::unix::fs::symlink(&key, &link).unwrap();
        let error = read(&link).unwrap_err();
        assert!(matches!(error, KeyFileError::Io { .. }), "{error}");
        let big = dir.join("big.key");
        std::fs::write(&big, "0".repeat(1000)).unwrap();
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
        let error = read(&big).unwrap_err();
        assert!(
            error.to_string().contains("longer than 256 bytes"),
            "{error}"
        );
        let error = read(&dir).unwrap_err();
        assert!(matches!(
            error,
            KeyFileError::Malformed { .. } | KeyFileError::Io { .. }
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn malformed_public_keys_are_refused() {
        assert!(public_key("00").unwrap_err().contains("1 bytes"));
        assert!(public_key("xy").unwrap_err().contains("not hex"));
    }
}
