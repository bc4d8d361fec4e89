//! Opening records back into messages.

use super::{CipherKey, NonceCounter, TAG_BYTES};
use crate::{
    Error,
    frame::{HEADER_BYTES, Header},
};

/// What an authenticated record turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Opened {
    /// A message; its plaintext is the first `len` bytes of the buffer.
    Message(usize),
    /// The peer's authenticated close.
    Close,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    Closed,
    Failed,
}

/// The receiving direction's cipher state. Any failure is final.
pub(crate) struct Opener {
    key: CipherKey,
    nonce: NonceCounter,
    max_message_size: u32,
    state: State,
}

impl Opener {
    pub(crate) fn new(key: CipherKey, max_message_size: u32) -> Self {
        Self {
            key,
            nonce: NonceCounter::new(),
            max_message_size,
            state: State::Open,
        }
    }

    #[cfg(test)]
    pub(crate) fn with_nonce(mut self, nonce: NonceCounter) -> Self {
        self.nonce = nonce;
        self
    }

    /// Refuses use after a close or a failure.
    pub(crate) fn ensure_open(&self) -> Result<(), Error> {
        match self.state {
            State::Open => Ok(()),
            State::Closed => Err(Error::Closed),
            State::Failed => Err(Error::Unusable),
        }
    }

    /// Records a failure found outside the opener (I/O, a cancelled read); later calls
    /// return `Unusable`.
    pub(crate) fn fail(&mut self) {
        self.state = State::Failed;
    }

    /// Checks a record header and returns how many body bytes to read.
    ///
    /// Runs before any body byte is read or any buffer allocated.
    pub(crate) fn check_header(&mut self, bytes: [u8; HEADER_BYTES]) -> Result<Header, Error> {
        self.ensure_open()?;
        let header = Header::decode(bytes);
        let result = if (header.body_bytes as usize) < TAG_BYTES
            || (header.close && header.body_bytes as usize != TAG_BYTES)
        {
            Err(Error::InvalidFrameSize {
                size: header.body_bytes,
            })
        } else if header.body_bytes as u64 > self.max_message_size as u64 + TAG_BYTES as u64 {
            Err(Error::MessageTooLarge {
                size: (header.body_bytes as usize - TAG_BYTES) as u64,
                max: self.max_message_size,
            })
        } else {
            Ok(header)
        };
        if result.is_err() {
            self.fail();
        }
        result
    }

    /// Authenticates and decrypts `sealed` (the body announced by `header`) in place.
    pub(crate) fn open(&mut self, header: Header, sealed: &mut [u8]) -> Result<Opened, Error> {
        self.ensure_open()?;
        debug_assert_eq!(sealed.len(), header.body_bytes as usize);
        let nonce = match self.nonce.peek() {
            Ok(nonce) => nonce,
            Err(error) => {
                self.fail();
                return Err(error);
            }
        };
        if self
            .key
            .open_in_place(nonce, &header.encode(), sealed)
            .is_err()
        {
            self.fail();
            return Err(Error::DecryptionFailed);
        }
        self.nonce.advance();
        if header.close {
            self.state = State::Closed;
            return Ok(Opened::Close);
        }
        Ok(Opened::Message(sealed.len() - TAG_BYTES))
    }
}
