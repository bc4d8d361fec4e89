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
///
/// The runtime's stream may bound how long one read waits (the tokio runtime's default is
/// 60 s): on such a runtime a connection that stays silent longer fails with [`Error::Io`].
/// Keep connections alive with traffic of your own (palisade-p2p sends pings).
pub struct Receiver<I: Stream> {
    stream: I,
    opener: Opener,
    /// Set while a `recv` is in progress, so a cancelled one is noticed.
    reading: bool,
}

impl<I: Stream> Receiver<I> {
    pub(crate) fn new(stream: I, opener: Opener) -> Self {
        Self {
            stream,
            opener,
            reading: false,
        }
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
    /// Not cancel safe: a future dropped part-way may have consumed part of a record, so the
    /// receiver refuses further use ([`Error::Unusable`]). Give it its own task rather than
    /// racing it in a `select!`.
    pub async fn recv(&mut self) -> Result<IoBuf, Error> {
        if self.reading {
            // The previous call was dropped part-way: the stream has lost its place.
            self.opener.fail();
        }
        self.opener.ensure_open()?;
        self.reading = true;
        let result = self.read_record().await;
        self.reading = false;
        match result {
            Ok(Some(message)) => Ok(message),
            Ok(None) => Err(Error::Closed),
            Err(error) => {
                self.opener.fail();
                Err(error)
            }
        }
    }

    /// Reads and opens one record: `Some(message)`, or `None` for the peer's close.
    async fn read_record(&mut self) -> Result<Option<IoBuf>, Error> {
        // When the header is already buffered, read header and body with one call.
        let buffered = <[u8; HEADER_BYTES]>::try_from(self.stream.peek(HEADER_BYTES)).ok();
        let (header, offset) = match buffered {
            Some(bytes) => (self.opener.check_header(bytes)?, HEADER_BYTES),
            None => {
                let bytes = self.read_header().await?;
                (self.opener.check_header(bytes)?, 0)
            }
        };
        let wanted = offset + header.body_bytes as usize;
        let frame = self
            .stream
            .recv(wanted)
            .await
            .map_err(Error::Io)?
            .coalesce();
        let mut frame: IoBufMut = frame
            .try_into_mut()
            .unwrap_or_else(|shared| IoBufMut::from(shared.as_ref()));
        match self.opener.open(header, &mut frame.as_mut()[offset..])? {
            Opened::Message(len) => {
                frame.truncate(offset + len);
                Ok(Some(frame.freeze().slice(offset..)))
            }
            Opened::Close => Ok(None),
        }
    }

    async fn read_header(&mut self) -> Result<[u8; HEADER_BYTES], Error> {
        let mut bufs = self.stream.recv(HEADER_BYTES).await.map_err(Error::Io)?;
        let mut header = [0u8; HEADER_BYTES];
        bufs.copy_to_slice(&mut header);
        Ok(header)
    }
}

impl<I: Stream> std::fmt::Debug for Receiver<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("reading", &self.reading)
            .finish_non_exhaustive()
    }
}
