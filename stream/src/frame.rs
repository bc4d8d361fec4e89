//! Framing: every handshake message and every record travels as a 4-byte header and a body.
//!
//! The header is a big-endian `u32`. Its top bit marks a close record; the other 31 bits give
//! the body length in bytes. Readers check the length against what the protocol allows at that
//! point *before* reading or allocating the body. For records the header is also the AEAD
//! associated data, so flipping the close bit or the length breaks authentication.

use crate::Error;

/// Bytes in a frame header.
pub const HEADER_BYTES: usize = 4;

/// Top bit of the header: this record closes the sending direction.
const CLOSE_FLAG: u32 = 1 << 31;

/// Largest body a header can describe.
pub(crate) const MAX_FRAME_BODY_BYTES: u32 = CLOSE_FLAG - 1;

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// Body length in bytes.
    pub(crate) body_bytes: u32,
    /// Whether the frame is a close record.
    pub(crate) close: bool,
}

impl Header {
    pub(crate) fn encode(self) -> [u8; HEADER_BYTES] {
        debug_assert!(self.body_bytes <= MAX_FRAME_BODY_BYTES);
        let flag = if self.close { CLOSE_FLAG } else { 0 };
        (self.body_bytes | flag).to_be_bytes()
    }

    pub(crate) fn decode(bytes: [u8; HEADER_BYTES]) -> Self {
        let word = u32::from_be_bytes(bytes);
        Self {
            body_bytes: word & MAX_FRAME_BODY_BYTES,
            close: word & CLOSE_FLAG != 0,
        }
    }
}

/// Checks a handshake frame header: no close flag, and exactly `expected` body bytes.
pub(crate) fn check_handshake_header(
    bytes: [u8; HEADER_BYTES],
    expected: usize,
) -> Result<(), Error> {
    let word = u32::from_be_bytes(bytes);
    if word as usize != expected {
        return Err(Error::InvalidFrameSize { size: word });
    }
    Ok(())
}

/// Prefixes a handshake message with its header.
pub(crate) fn handshake_frame(body: &[u8]) -> Vec<u8> {
    let header = Header {
        body_bytes: body.len() as u32,
        close: false,
    };
    let mut frame = Vec::with_capacity(HEADER_BYTES + body.len());
    frame.extend_from_slice(&header.encode());
    frame.extend_from_slice(body);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_length_and_close_flag() {
        for (len, close) in [
            (0, false),
            (17, true),
            (MAX_FRAME_BODY_BYTES, false),
            (MAX_FRAME_BODY_BYTES, true),
        ] {
            let header = Header {
                body_bytes: len,
                close,
            };
            assert_eq!(Header::decode(header.encode()), header);
        }
        assert_eq!(
            Header {
                body_bytes: 5,
                close: true
            }
            .encode(),
            [0x80, 0, 0, 5]
        );
    }

    #[test]
    fn handshake_header_with_close_flag_or_other_length_is_rejected() {
        assert!(check_handshake_header([0, 0, 0, 32], 32).is_ok());
        assert!(matches!(
            check_handshake_header([0, 0, 0, 33], 32),
            Err(Error::InvalidFrameSize { size: 33 })
        ));
        assert!(matches!(
            check_handshake_header([0x80, 0, 0, 32], 32),
            Err(Error::InvalidFrameSize { size: 0x8000_0020 })
        ));
    }
}
