//! Sealing messages into records.

use super::{CipherKey, NonceCounter, TAG_BYTES};
use crate::{
    Error,
    frame::{HEADER_BYTES, Header},
};
use commonware_runtime::IoBufs;

/// The sending direction's cipher state.
pub(crate) struct Sealer {
    key: CipherKey,
    nonce: NonceCounter,
    max_message_size: u32,
}

impl Sealer {
    pub(crate) fn new(key: CipherKey, max_message_size: u32) -> Self {
        Self {
            key,
            nonce: NonceCounter::new(),
            max_message_size,
        }
    }

    #[cfg(test)]
    pub(crate) fn with_nonce(mut self, nonce: NonceCounter) -> Self {
        self.nonce = nonce;
        self
    }

    /// Wire bytes of a record carrying `message_bytes` of plaintext.
    pub(crate) const fn record_bytes(message_bytes: usize) -> usize {
        HEADER_BYTES + message_bytes + TAG_BYTES
    }

    /// Rejects a message over `max_message_size`; consumes nothing.
    pub(crate) fn check_size(&self, message_bytes: usize) -> Result<(), Error> {
        if message_bytes > self.max_message_size as usize {
            return Err(Error::MessageTooLarge {
                size: message_bytes as u64,
                max: self.max_message_size,
            });
        }
        Ok(())
    }

    /// Nonces left before this direction is exhausted.
    pub(crate) fn remaining_nonces(&self) -> u128 {
        self.nonce.remaining()
    }

    /// Appends the record for `message` to `out`.
    ///
    /// The size must have passed [`check_size`](Self::check_size). On error nothing is appended
    /// and no nonce is used.
    pub(crate) fn seal_message(
        &mut self,
        message: &IoBufs,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        debug_assert!(message.len() <= self.max_message_size as usize);
        self.seal(message, false, out)
    }

    /// Seals `body`, a whole message, where it lies; returns the record's header and tag,
    /// which go on the wire before and after it. Nothing is copied.
    ///
    /// The size must have passed [`check_size`](Self::check_size). On error `body` is
    /// untouched and no nonce is used.
    pub(crate) fn seal_in_place(
        &mut self,
        body: &mut [u8],
    ) -> Result<([u8; HEADER_BYTES], [u8; TAG_BYTES]), Error> {
        debug_assert!(body.len() <= self.max_message_size as usize);
        let nonce = self.nonce.peek()?;
        let header = Header {
            body_bytes: (body.len() + TAG_BYTES) as u32,
            close: false,
        }
        .encode();
        let tag = self.key.seal_in_place(nonce, &header, body);
        self.nonce.advance();
        Ok((header, tag))
    }

    /// Appends the close record to `out`.
    pub(crate) fn seal_close(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.seal(&IoBufs::default(), true, out)
    }

    fn seal(&mut self, message: &IoBufs, close: bool, out: &mut Vec<u8>) -> Result<(), Error> {
        let nonce = self.nonce.peek()?;
        let header = Header {
            body_bytes: (message.len() + TAG_BYTES) as u32,
            close,
        }
        .encode();
        out.reserve(Self::record_bytes(message.len()));
        out.extend_from_slice(&header);
        let start = out.len();
        message.for_each_chunk(|chunk| out.extend_from_slice(chunk));
        let tag = self.key.seal_in_place(nonce, &header, &mut out[start..]);
        out.extend_from_slice(&tag);
        self.nonce.advance();
        Ok(())
    }
}
