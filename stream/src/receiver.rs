//! The receiving half of an established connection.

use crate::{
    Error,
    frame::HEADER_BYTES,
    record::{Opened, Opener},
};
use commonware_runtime::{Buf, IoBuf, IoBufMut, Stream};

/// Reads records from the stream and returns their authenticated plaintexts, in order.
///
/// Any error (a bad tag, a bad length, an I/O failure) ends the receiver for good: later calls
/// return [`Error::Unusable`]. After the peer's authenticated close, calls return
/// [`Error::Closed`].
pub struct Receiver<I: Stream> {
    stream: I,
    opener: Opener,
}

impl<I: Stream> Receiver<I> {
    pub(crate) fn new(stream: I, opener: Opener) -> Self {
        Self { stream, opener }
    }

    /// Receives the next message.
    ///
    /// The length prefix is checked against `max_message_size` before the body is read or any
    /// buffer allocated. The body is decrypted in place.
    ///
    /// # Errors
    /// [`Error::Closed`] after the peer's authenticated close; [`Error::MessageTooLarge`],
    /// [`Error::InvalidFrameSize`], [`Error::DecryptionFailed`], [`Error::NonceExhausted`] or
    /// [`Error::Io`] (including a connection cut mid-stream) otherwise.
    ///
    /// # Cancel safety
    /// Not cancel safe: dropping the future part-way loses stream bytes, and the receiver must
    /// be discarded. Give it its own task rather than racing it in a `select!`.
    pub async fn recv(&mut self) -> Result<IoBuf, Error> {
        self.opener.ensure_open()?;
        let header = match self.read_header().await {
            Ok(bytes) => self.opener.check_header(bytes)?,
            Err(error) => {
                self.opener.fail();
                return Err(error);
            }
        };
        let body = match self.stream.recv(header.body_bytes as usize).await {
            Ok(body) => body.coalesce(),
            Err(error) => {
                self.opener.fail();
                return Err(Error::Io(error));
            }
        };
        let mut body: IoBufMut = body
            .try_into_mut()
            .unwrap_or_else(|shared| IoBufMut::from(shared.as_ref()));
        match self.opener.open(header, body.as_mut())? {
            Opened::Message(len) => {
                body.truncate(len);
                Ok(body.freeze())
            }
            Opened::Close => Err(Error::Closed),
        }
    }

    async fn read_header(&mut self) -> Result<[u8; HEADER_BYTES], Error> {
        let mut bufs = self.stream.recv(HEADER_BYTES).await.map_err(Error::Io)?;
        let mut header = [0u8; HEADER_BYTES];
        bufs.copy_to_slice(&mut header);
        Ok(header)
    }
}
