//! The messages peers exchange inside an established stream.
//!
//! Every stream message is one of:
//!
//! | kind | bytes |
//! |---|---|
//! | data | `0x00`, channel as unsigned LEB128 (1-10 bytes, shortest form), payload (the rest) |
//! | ping | `0x01`, nonce (8 bytes, big-endian) |
//! | pong | `0x02`, nonce (8 bytes, big-endian) |
//! | keep | `0x03` alone: the first message of a connection the arbiter keeps (see [`crate::duplicate`]) |
//!
//! The stream already authenticates and bounds each message, so the encoding carries no length
//! of its own. Decoding is strict: an unknown kind, a channel in a longer form than needed, or a
//! ping or pong of any other length, or a keep with any byte after its kind, is an error, so every message has exactly one encoding.
//! Encoding a data message never copies the payload: the header and the payload travel as two
//! chunks of one [`IoBufs`].

use commonware_runtime::{IoBuf, IoBufs};

const DATA: u8 = 0;
const PING: u8 = 1;
const PONG: u8 = 2;
const KEEP: u8 = 3;

/// Most bytes a LEB128 `u64` takes.
const MAX_VARINT_BYTES: usize = 10;

/// Most bytes a data message adds to its payload.
pub const MAX_DATA_OVERHEAD_BYTES: usize = 1 + MAX_VARINT_BYTES;

/// Bytes of a ping or pong.
pub const KEEPALIVE_BYTES: usize = 9;

/// One decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Application data for `channel`.
    Data {
        /// The channel the payload belongs to.
        channel: u64,
        /// The payload, a view into the received buffer.
        payload: IoBuf,
    },
    /// A keepalive probe; the peer answers with a pong carrying the same nonce.
    Ping(u64),
    /// The answer to a ping.
    Pong(u64),
    /// The arbiter of the pair (the peer with the smaller key) keeps this connection: the
    /// first message it sends on it, and never sent again.
    Keep,
}

/// Why bytes are not a valid message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message has no bytes.
    #[error("empty message")]
    Empty,
    /// The first byte names no known kind.
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    /// The channel number is cut short, too long for a `u64`, or not in its shortest form.
    #[error("invalid channel encoding")]
    InvalidChannel,
    /// A ping or pong is not exactly [`KEEPALIVE_BYTES`] long.
    #[error("keepalive of {0} bytes")]
    InvalidKeepalive(usize),
    /// A keep message is longer than its one byte.
    #[error("keep message of {0} bytes")]
    InvalidKeep(usize),
}

/// Encodes a data message as a header chunk followed by the payload, uncopied.
pub fn encode_data(channel: u64, payload: impl Into<IoBufs>) -> IoBufs {
    let mut header = Vec::with_capacity(MAX_DATA_OVERHEAD_BYTES);
    header.push(DATA);
    let mut rest = channel;
    loop {
        let byte = (rest & 0x7f) as u8;
        rest >>= 7;
        if rest == 0 {
            header.push(byte);
            break;
        }
        header.push(byte | 0x80);
    }
    let mut message = payload.into();
    message.prepend(IoBuf::from(header));
    message
}

/// Encodes a ping.
pub fn encode_ping(nonce: u64) -> IoBuf {
    keepalive(PING, nonce)
}

/// Encodes a pong.
pub fn encode_pong(nonce: u64) -> IoBuf {
    keepalive(PONG, nonce)
}

/// Encodes the arbiter's keep message.
pub fn encode_keep() -> IoBuf {
    IoBuf::from(vec![KEEP])
}

fn keepalive(kind: u8, nonce: u64) -> IoBuf {
    let mut bytes = Vec::with_capacity(KEEPALIVE_BYTES);
    bytes.push(kind);
    bytes.extend_from_slice(&nonce.to_be_bytes());
    IoBuf::from(bytes)
}

/// Decodes one message; a data payload is a view into `message`, not a copy.
///
/// # Errors
/// A [`DecodeError`] for anything but the exact encodings above.
pub fn decode(message: IoBuf) -> Result<Message, DecodeError> {
    let bytes = message.as_ref();
    let (&kind, rest) = bytes.split_first().ok_or(DecodeError::Empty)?;
    match kind {
        DATA => {
            let (channel, used) = decode_varint(rest)?;
            Ok(Message::Data {
                channel,
                payload: message.slice(1 + used..),
            })
        }
        PING | PONG => {
            let nonce: [u8; 8] = rest
                .try_into()
                .map_err(|_| DecodeError::InvalidKeepalive(bytes.len()))?;
            let nonce = u64::from_be_bytes(nonce);
            Ok(if kind == PING {
                Message::Ping(nonce)
            } else {
                Message::Pong(nonce)
            })
        }
        KEEP if rest.is_empty() => Ok(Message::Keep),
        KEEP => Err(DecodeError::InvalidKeep(bytes.len())),
        other => Err(DecodeError::UnknownKind(other)),
    }
}

/// Reads a shortest-form LEB128 `u64`; returns it and the bytes it took.
fn decode_varint(bytes: &[u8]) -> Result<(u64, usize), DecodeError> {
    let mut value = 0u64;
    for (index, &byte) in bytes.iter().take(MAX_VARINT_BYTES).enumerate() {
        let bits = u64::from(byte & 0x7f);
        let shift = 7 * index as u32;
        // The tenth byte may only hold the top bit of a u64.
        if index == MAX_VARINT_BYTES - 1 && byte > 1 {
            return Err(DecodeError::InvalidChannel);
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            // A zero final byte after the first means a longer form than needed.
            if byte == 0 && index > 0 {
                return Err(DecodeError::InvalidChannel);
            }
            return Ok((value, index + 1));
        }
    }
    Err(DecodeError::InvalidChannel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(bufs: IoBufs) -> Vec<u8> {
        bufs.coalesce().as_ref().to_vec()
    }

    #[test]
    fn golden_encodings() {
        assert_eq!(flat(encode_data(0, b"hi".to_vec())), [0, 0, b'h', b'i']);
        assert_eq!(flat(encode_data(127, Vec::<u8>::new())), [0, 0x7f]);
        assert_eq!(flat(encode_data(128, b"x".to_vec())), [0, 0x80, 0x01, b'x']);
        assert_eq!(flat(encode_data(300, Vec::<u8>::new())), [0, 0xac, 0x02]);
        assert_eq!(
            flat(encode_data(u64::MAX, Vec::<u8>::new())),
            [
                0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ]
        );
        assert_eq!(encode_ping(0x0102030405060708), [1, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(encode_pong(9), [2, 0, 0, 0, 0, 0, 0, 0, 9]);
        assert_eq!(encode_keep(), [3]);
    }

    #[test]
    fn every_kind_round_trips() {
        for channel in [0, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            for payload in [Vec::new(), vec![7u8; 1000]] {
                let encoded = encode_data(channel, payload.clone()).coalesce();
                assert_eq!(
                    decode(encoded),
                    Ok(Message::Data {
                        channel,
                        payload: IoBuf::from(payload)
                    })
                );
            }
        }
        assert_eq!(decode(encode_ping(42)), Ok(Message::Ping(42)));
        assert_eq!(decode(encode_pong(u64::MAX)), Ok(Message::Pong(u64::MAX)));
        assert_eq!(decode(encode_keep()), Ok(Message::Keep));
    }

    #[test]
    fn malformed_messages_are_rejected_with_their_reason() {
        let cases: [(&[u8], DecodeError); 10] = [
            (&[], DecodeError::Empty),
            (&[4], DecodeError::UnknownKind(4)),
            (&[3, 0], DecodeError::InvalidKeep(2)),
            (&[0xff, 0], DecodeError::UnknownKind(0xff)),
            (&[0], DecodeError::InvalidChannel),
            (&[0, 0x80], DecodeError::InvalidChannel),
            // 1 written in two bytes instead of one.
            (&[0, 0x81, 0x00], DecodeError::InvalidChannel),
            // Eleven bytes, or a tenth byte beyond the 64th bit.
            (
                &[
                    0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                ],
                DecodeError::InvalidChannel,
            ),
            (
                &[
                    0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
                ],
                DecodeError::InvalidChannel,
            ),
            (&[1, 0, 0, 0, 0, 0, 0, 0], DecodeError::InvalidKeepalive(8)),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                decode(IoBuf::copy_from_slice(bytes)),
                Err(expected),
                "{bytes:?}"
            );
        }
        assert_eq!(
            decode(IoBuf::copy_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
            Err(DecodeError::InvalidKeepalive(10))
        );
    }

    #[test]
    fn data_payload_is_a_view_not_a_copy() {
        let encoded = encode_data(5, vec![1u8; 64]).coalesce();
        let start = encoded.as_ref().as_ptr() as usize;
        let Ok(Message::Data { payload, .. }) = decode(encoded) else {
            panic!("data")
        };
        assert_eq!(payload.as_ref().as_ptr() as usize, start + 2);
    }
}
