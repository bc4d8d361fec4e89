//! The sending half of an established connection.
//!
//! The sender owns the sink: a send seals its messages in the caller's task and hands them to
//! the sink in one write before it returns. A message of at least [`IN_PLACE_MIN_BYTES`] that
//! the caller hands over as the only owner of one buffer (a `Vec<u8>`, an `IoBufMut`, an
//! `IoBuf` nobody else holds) is sealed where it lies and written between its header and tag:
//! no copy. Any other message (shared, in several pieces, or small) is copied into one buffer
//! with the rest of the batch and sealed there. There is no writer task
//! and no queue, so nothing depends on which task owns the connection, and nothing handed to a
//! send that returned `Ok` can be lost by a task ending afterwards. Batching is the caller's:
//! [`Sender::send_many`] puts any number of records in one write (palisade-p2p sends whatever
//! queued while the previous write was in flight).

use crate::{Error, record::Sealer};
use commonware_runtime::{IoBuf, IoBufMut, IoBufs, Sink};
use std::ops::Range;

/// Smallest message sealed in place when the caller hands over its only handle: below this a
/// copy costs less than the extra pieces of the write.
pub const IN_PLACE_MIN_BYTES: usize = 16 * 1024;

/// One piece of a write: a range of the batch's shared buffer (copied records, and the
/// headers and tags of messages sealed in place), or a message sealed in place.
enum Piece {
    Copied(Range<usize>),
    InPlace(IoBuf),
}

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
        // Each message as its one writable buffer when it can be sealed in place.
        let messages: Vec<Result<IoBufMut, IoBufs>> =
            messages.into_iter().map(|m| owned(m.into())).collect();
        if messages.is_empty() {
            return Ok(());
        }
        // Bytes copied into the shared buffer: whole records, or a header and a tag.
        let mut shared_bytes = 0usize;
        for message in &messages {
            let len = message.as_ref().map_or_else(IoBufs::len, IoBufMut::len);
            self.sealer.check_size(len)?;
            shared_bytes += match message {
                Ok(_) => Sealer::record_bytes(0),
                Err(_) => Sealer::record_bytes(len),
            };
        }
        if (messages.len() as u128) > self.sealer.remaining_nonces() {
            self.failed = true;
            return Err(Error::NonceExhausted);
        }
        // From the first seal until the write succeeds, a failure leaves the sender unusable:
        // a nonce used by a record that was never written would put a gap in the stream.
        self.failed = true;
        // Messages that arrive as the only handle to one large buffer are sealed where they
        // lie; the rest are copied into `shared`, which also holds the headers and tags.
        let mut shared = Vec::with_capacity(shared_bytes);
        let mut pieces: Vec<Piece> = Vec::new();
        for message in messages {
            match message {
                Ok(mut body) => {
                    let (header, tag) = self.sealer.seal_in_place(body.as_mut())?;
                    push_copied(&mut pieces, &mut shared, &header);
                    pieces.push(Piece::InPlace(body.freeze()));
                    push_copied(&mut pieces, &mut shared, &tag);
                }
                Err(message) => {
                    let start = shared.len();
                    self.sealer.seal_message(&message, &mut shared)?;
                    extend(&mut pieces, start..shared.len());
                }
            }
        }
        let shared = IoBuf::from(shared);
        let write: IoBufs = pieces
            .into_iter()
            .map(|piece| match piece {
                Piece::Copied(range) => shared.slice(range),
                Piece::InPlace(body) => body,
            })
            .collect();
        self.write(write).await
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
        self.write(IoBuf::from(sealed).into()).await
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

    async fn write(&mut self, sealed: IoBufs) -> Result<(), Error> {
        // Set across the await: if this future is dropped mid-write, it stays set.
        self.failed = true;
        self.sink.send(sealed).await.map_err(Error::Io)?;
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

/// The message's one buffer, writable, when the caller handed over the only handle to it and
/// it is large enough to be worth sealing in place; the message back otherwise.
fn owned(message: IoBufs) -> Result<IoBufMut, IoBufs> {
    if message.len() < IN_PLACE_MIN_BYTES {
        return Err(message);
    }
    let single = message.try_into_single()?;
    single.try_into_mut().map_err(IoBufs::from)
}

/// Appends `bytes` to the shared buffer as part of the write.
fn push_copied(pieces: &mut Vec<Piece>, shared: &mut Vec<u8>, bytes: &[u8]) {
    let start = shared.len();
    shared.extend_from_slice(bytes);
    extend(pieces, start..shared.len());
}

/// Adds `range` of the shared buffer to the write, joined to the previous piece when that
/// ends where it starts.
fn extend(pieces: &mut Vec<Piece>, range: Range<usize>) {
    if let Some(Piece::Copied(last)) = pieces.last_mut()
        && last.end == range.start
    {
        last.end = range.end;
        return;
    }
    pieces.push(Piece::Copied(range));
}
