//! Lower-case hexadecimal, for keys in files and on the command line.
//!
//! Not `commonware_formatting::{hex, from_hex}`: a key file holds a secret, and those return a
//! fresh `String` or `Option<Vec<u8>>` (no way to write into a buffer sized once and zeroized
//! after), and `from_hex` cannot say which character of a configuration value is wrong.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as lower-case hex.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    encode_into(bytes, &mut out);
    out
}

/// Appends `bytes` as lower-case hex to `out` (which should have the room, so that a secret
/// is never copied by a reallocation).
pub fn encode_into(bytes: &[u8], out: &mut String) {
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
}

/// Why a string is not hex.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// An odd number of digits.
    #[error("odd number of hex digits ({0})")]
    OddLength(usize),
    /// A character that is not a hex digit.
    #[error("`{character}` at position {position} is not a hex digit")]
    NotHex {
        /// The character.
        character: char,
        /// Its position.
        position: usize,
    },
}

/// The bytes that `text` (hex, either case) spells, in a buffer allocated once at its final
/// size.
pub fn decode(text: &str) -> Result<Vec<u8>, HexError> {
    if let Some((position, character)) = text.char_indices().find(|(_, c)| !c.is_ascii()) {
        return Err(HexError::NotHex {
            character,
            position,
        });
    }
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(HexError::OddLength(digits.len()));
    }
    let digit = |position: usize| {
        let character = char::from(digits[position]);
        character
            .to_digit(16)
            .map(|value| value as u8)
            .ok_or(HexError::NotHex {
                character,
                position,
            })
    };
    let mut bytes = Vec::with_capacity(digits.len() / 2);
    for index in 0..digits.len() / 2 {
        bytes.push(digit(2 * index)? << 4 | digit(2 * index + 1)?);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
        assert_eq!(decode("ABcd").unwrap(), [0xab, 0xcd]);
    }

    #[test]
    fn malformed_hex_is_refused() {
        assert_eq!(decode("abc"), Err(HexError::OddLength(3)));
        assert_eq!(
            decode("0g"),
            Err(HexError::NotHex {
                character: 'g',
                position: 1
            })
        );
        assert!(matches!(
            decode("é00"),
            Err(HexError::NotHex {
                character: 'é', ..
            })
        ));
    }
}
