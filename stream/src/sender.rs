//! The sending half of an established connection.

use crate::{
    Error,
    record::{Sealer, TAG_BYTES},
};
use commonware_runtime::{IoBufs, Sink};

/// Encrypts messages and writes them to the sink, in order.
///
/// A message over `max_message_size` is refused without side effects. Any sink error leaves
/// the sender unusable (the sink may hold a partial write).
pub struct Sender<O: Sink> {
    sink: O,
    sealer: Sealer,
    failed: bool,
}

impl<O: Sink> Sender<O> {
    pub(crate) fn new(sink: O, sealer: Sealer) -> Self {
        Self {
            sink,
            sealer,
            failed: false,
        }
    }

    /// Encrypts and sends one message.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] (nothing sent, sender still usable), [`Error::NonceExhausted`],
    /// [`Error::Io`], or [`Error::Unusable`] after an earlier failure.
    ///
    /// # Cancel safety
    /// Not cancel safe: dropping the future part-way may leave a partial record on the wire,
    /// after which the sender is unusable.
    pub async fn send(&mut self, message: impl Into<IoBufs>) -> Result<(), Error> {
        self.send_many(std::iter::once(message)).await
    }

    /// Encrypts a batch of messages and sends them with one write.
    ///
    /// Every size is checked first: if any message is too large, nothing is sent, no nonce is
    /// used, and the sender stays usable.
    ///
    /// # Errors
    /// As for [`send`](Self::send).
    ///
    /// # Cancel safety
    /// Not cancel safe, as for [`send`](Self::send).
    pub async fn send_many(
        &mut self,
        messages: impl IntoIterator<Item = impl Into<IoBufs>>,
    ) -> Result<(), Error> {
        if self.failed {
            return Err(Error::Unusable);
        }
        let messages: Vec<IoBufs> = messages.into_iter().map(Into::into).collect();
        let mut total = 0usize;
        for message in &messages {
            self.sealer.check_size(message.len())?;
            total += Sealer::record_bytes(message.len());
        }
        if (messages.len() as u128) > self.sealer.remaining_nonces() {
            self.failed = true;
            return Err(Error::NonceExhausted);
        }
        let mut wire = Vec::with_capacity(total);
        for message in &messages {
            self.sealer.seal_message(message, &mut wire)?;
        }
        self.write(wire).await
    }

    /// Sends the authenticated close record and releases the sink.
    ///
    /// The peer's receiver then reports [`Error::Closed`] after every earlier message.
    ///
    /// # Errors
    /// [`Error::NonceExhausted`], [`Error::Io`], or [`Error::Unusable`].
    pub async fn close(mut self) -> Result<(), Error> {
        if self.failed {
            return Err(Error::Unusable);
        }
        let mut wire = Vec::with_capacity(Sealer::record_bytes(0));
        if let Err(error) = self.sealer.seal_close(&mut wire) {
            self.failed = true;
            return Err(error);
        }
        debug_assert_eq!(wire.len(), crate::frame::HEADER_BYTES + TAG_BYTES);
        self.write(wire).await
    }

    async fn write(&mut self, wire: Vec<u8>) -> Result<(), Error> {
        // Marked failed while the write is in flight, so a cancelled send leaves it unusable.
        self.failed = true;
        self.sink.send(wire).await.map_err(Error::Io)?;
        self.failed = false;
        Ok(())
    }
}
