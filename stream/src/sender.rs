//! The sending half of an established connection.
//!
//! The sender owns the sink: a send seals its messages in the caller's task, into one buffer,
//! and hands that buffer to the sink in one write before it returns. There is no writer task
//! and no queue, so nothing depends on which task owns the connection, and nothing handed to a
//! send that returned `Ok` can be lost by a task ending afterwards. Batching is the caller's:
//! [`Sender::send_many`] puts any number of records in one write (palisade-p2p sends whatever
//! queued while the previous write was in flight).

use crate::{Error, record::Sealer};
use commonware_runtime::{IoBuf, IoBufs, Sink};

/// Encrypts messages and writes them, in order, to the connection.
///
/// [`send`](Self::send) and [`send_many`](Self::send_many) return once the sink has taken every
/// record (for TCP: once the bytes are in the kernel's send buffer); [`close`](Self::close)
/// ends the direction with an authenticated close record. Dropping the sender (or
/// [`abort`](Self::abort)) drops the sink: the peer sees the connection cut, not a clean close.
///
/// A write failure is returned as [`Error::Io`]; every call after an error, or after a send
/// whose future was dropped before it finished, returns [`Error::Unusable`].
pub struct Sender<O: Sink> {
    sealer: Sealer,
    sink: O,
    /// Set before a write and cleared when it succeeds: a write that failed or was cancelled
    /// leaves it set, and every later call returns `Unusable`.
    failed: bool,
}

impl<O: Sink> Sender<O> {
    pub(crate) fn new(sealer: Sealer, sink: O) -> Self {
        Self {
            sealer,
            sink,
            failed: false,
        }
    }

    /// Encrypts one message and writes it.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] (nothing sent, sender still usable),
    /// [`Error::NonceExhausted`], [`Error::Io`] when the write failed, or [`Error::Unusable`]
    /// after an earlier error.
    ///
    /// # Cancel safety
    /// Not cancel safe: a send dropped part-way may have written part of a record, so the
    /// sender is unusable afterwards (the peer's receiver fails on the partial record).
    pub async fn send(&mut self, message: impl Into<IoBufs>) -> Result<(), Error> {
        self.send_many(std::iter::once(message)).await
    }

    /// Encrypts a batch of messages and writes them together, in one write.
    ///
    /// Every size is checked first: if any message is too large, nothing is sent, no nonce is
    /// used, and the sender stays usable. An empty batch writes nothing.
    ///
    /// # Errors
    /// As for [`send`](Self::send).
    ///
    /// # Cancel safety
    /// As for [`send`](Self::send).
    pub async fn send_many(
        &mut self,
        messages: impl IntoIterator<Item = impl Into<IoBufs>>,
    ) -> Result<(), Error> {
        self.ensure_usable()?;
        let messages: Vec<IoBufs> = messages.into_iter().map(Into::into).collect();
        if messages.is_empty() {
            return Ok(());
        }
        let mut total = 0usize;
        for message in &messages {
            self.sealer.check_size(message.len())?;
            total += Sealer::record_bytes(message.len());
        }
        if (messages.len() as u128) > self.sealer.remaining_nonces() {
            self.failed = true;
            return Err(Error::NonceExhausted);
        }
        let mut sealed = Vec::with_capacity(total);
        for message in &messages {
            self.sealer.seal_message(message, &mut sealed)?;
        }
        self.write(sealed).await
    }

    /// Writes the authenticated close record and drops the sink.
    ///
    /// The peer's receiver then reports [`Error::Closed`] after every earlier message.
    ///
    /// # Errors
    /// [`Error::NonceExhausted`], [`Error::Io`], or [`Error::Unusable`].
    pub async fn close(mut self) -> Result<(), Error> {
        self.ensure_usable()?;
        let mut sealed = Vec::new();
        if let Err(error) = self.sealer.seal_close(&mut sealed) {
            self.failed = true;
            return Err(error);
        }
        self.write(sealed).await
    }

    /// Drops the connection's sending side at once, without a close record: the peer sees the
    /// connection cut. The same as dropping the sender, said explicitly.
    pub fn abort(self) {}

    fn ensure_usable(&self) -> Result<(), Error> {
        if self.failed {
            return Err(Error::Unusable);
        }
        Ok(())
    }

    async fn write(&mut self, sealed: Vec<u8>) -> Result<(), Error> {
        // Set across the await: if this future is dropped mid-write, it stays set.
        self.failed = true;
        self.sink
            .send(IoBuf::from(sealed))
            .await
            .map_err(Error::Io)?;
        self.failed = false;
        Ok(())
    }
}

impl<O: Sink> std::fmt::Debug for Sender<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}
