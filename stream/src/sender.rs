//! The sending half of an established connection.

use crate::{
    Error,
    record::Sealer,
    writer::{self, DIRECT_WRITE_BYTES, QUEUE_LIMIT_BYTES, SharedQueue, SinkLease, lock},
};
use commonware_runtime::{IoBuf, IoBufs, Sink};
use futures::channel::oneshot;
use std::{future::poll_fn, task::Poll};

/// Encrypts messages and sends them, in order, through the connection's write path.
///
/// Small messages are sealed and queued: `send` returns at once and the connection's writer
/// task writes whatever accumulated, in as few writes as possible. Messages of 16 KiB or more
/// are written by `send` itself when nothing is queued. [`flush`](Self::flush) waits until
/// everything queued has been written; [`close`](Self::close) ends the direction with an
/// authenticated close record. Dropping the sender lets the writer write what is queued and
/// then close the connection; [`abort`](Self::abort) drops the connection at once.
///
/// A write failure is reported by the next call, as [`Error::Io`]; every call after an error
/// returns [`Error::Unusable`].
pub struct Sender<O: Sink> {
    sealer: Sealer,
    queue: SharedQueue<O>,
    abort: Option<oneshot::Sender<()>>,
    /// Reused buffer that small messages are sealed into before they are queued.
    staging: Vec<u8>,
    /// Set once an error was reported; every later call returns `Unusable`.
    failed: bool,
}

impl<O: Sink> Sender<O> {
    /// Encrypts one message and sends it (see the type's documentation for when it is written).
    ///
    /// Waits while the queue holds 256 KiB or more, and during a direct write.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] (nothing sent, sender still usable),
    /// [`Error::NonceExhausted`], [`Error::Io`] when a write failed, or [`Error::Unusable`]
    /// after an earlier error.
    ///
    /// # Cancel safety
    /// Cancel safe while waiting for room in the queue (nothing is sealed yet). A direct write
    /// of a large message dropped part-way cuts the connection: the sender then reports
    /// [`Error::Io`].
    pub async fn send(&mut self, message: impl Into<IoBufs>) -> Result<(), Error> {
        self.send_many(std::iter::once(message)).await
    }

    /// Encrypts a batch of messages and sends them together.
    ///
    /// Every size is checked first: if any message is too large, nothing is sent, no nonce is
    /// used, and the sender stays usable.
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
        self.wait_for_room().await?;
        let mut sealed = if total >= DIRECT_WRITE_BYTES {
            Vec::with_capacity(total)
        } else {
            std::mem::take(&mut self.staging)
        };
        for message in &messages {
            self.sealer.seal_message(message, &mut sealed)?;
        }
        let lent = {
            let mut state = lock(&self.queue);
            let lent = if total >= DIRECT_WRITE_BYTES {
                state.lend_sink()
            } else {
                None
            };
            if lent.is_none() {
                state.push(&mut sealed);
            }
            lent
        };
        match lent {
            Some(sink) => {
                let lease = SinkLease::new(self.queue.clone(), sink);
                lease
                    .write(IoBuf::from(sealed))
                    .await
                    .map_err(|error| self.fail(Some(error)))
            }
            None => {
                self.staging = sealed;
                Ok(())
            }
        }
    }

    /// Waits until every message sent so far has been handed to the sink.
    ///
    /// # Errors
    /// [`Error::Io`] when a write failed, or [`Error::Unusable`] after an earlier error.
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is lost by dropping the future.
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.ensure_usable()?;
        let queue = self.queue.clone();
        let outcome = poll_fn(|cx| {
            let mut state = lock(&queue);
            if state.ended() {
                return Poll::Ready(Err(state.take_failure()));
            }
            if state.drained() {
                return Poll::Ready(Ok(()));
            }
            state.wait_for_writer(cx.waker());
            Poll::Pending
        })
        .await;
        outcome.map_err(|failure| self.fail(failure))
    }

    /// Queues the authenticated close record, waits until everything is written, and closes
    /// the connection's sending side.
    ///
    /// The peer's receiver then reports [`Error::Closed`] after every earlier message.
    ///
    /// # Errors
    /// [`Error::NonceExhausted`], [`Error::Io`], or [`Error::Unusable`].
    pub async fn close(mut self) -> Result<(), Error> {
        self.ensure_usable()?;
        self.wait_for_room().await?;
        let mut sealed = std::mem::take(&mut self.staging);
        if let Err(error) = self.sealer.seal_close(&mut sealed) {
            self.failed = true;
            return Err(error);
        }
        {
            let mut state = lock(&self.queue);
            state.push(&mut sealed);
            state.finish();
        }
        let queue = self.queue.clone();
        poll_fn(|cx| {
            let mut state = lock(&queue);
            if state.ended() {
                return Poll::Ready(match state.take_failure() {
                    Some(failure) => Err(Error::Io(failure)),
                    None if state.failed() => Err(Error::Unusable),
                    None => Ok(()),
                });
            }
            state.wait_for_writer(cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Drops the connection at once, discarding anything not yet written. The peer sees the
    /// connection cut, not a clean close.
    pub fn abort(mut self) {
        if let Some(abort) = self.abort.take() {
            let _ = abort.send(());
        }
    }

    fn ensure_usable(&self) -> Result<(), Error> {
        if self.failed {
            return Err(Error::Unusable);
        }
        Ok(())
    }

    /// Waits while the queue is full; reports a failed write path.
    async fn wait_for_room(&mut self) -> Result<(), Error> {
        let queue = self.queue.clone();
        let outcome = poll_fn(|cx| {
            let mut state = lock(&queue);
            if state.ended() {
                return Poll::Ready(Err(state.take_failure()));
            }
            if state.pending_bytes() < QUEUE_LIMIT_BYTES {
                return Poll::Ready(Ok(()));
            }
            state.wait_for_writer(cx.waker());
            Poll::Pending
        })
        .await;
        outcome.map_err(|failure| self.fail(failure))
    }

    fn fail(&mut self, failure: Option<commonware_runtime::Error>) -> Error {
        self.failed = true;
        match failure {
            Some(failure) => Error::Io(failure),
            None => Error::Unusable,
        }
    }
}

impl<O: Sink> std::fmt::Debug for Sender<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl<O: Sink> Drop for Sender<O> {
    fn drop(&mut self) {
        // Let the writer write what is queued, then close the connection.
        lock(&self.queue).finish();
    }
}

/// Sets up the write path: the sender and the writer task's future.
pub(crate) fn split_writer<O: Sink>(
    sealer: Sealer,
    sink: O,
) -> (Sender<O>, impl Future<Output = ()> + Send + 'static) {
    let queue = writer::new_queue(sink);
    let (abort, aborted) = oneshot::channel();
    let task = writer::run(queue.clone(), aborted);
    let sender = Sender {
        sealer,
        queue,
        abort: Some(abort),
        staging: Vec::new(),
        failed: false,
    };
    (sender, task)
}
