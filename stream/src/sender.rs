//! The sending half of an established connection.

use crate::{
    Error,
    record::Sealer,
    writer::{self, QUEUE_LIMIT_BYTES, SharedQueue, lock},
};
use commonware_runtime::IoBufs;
use futures::channel::oneshot;
use std::{future::poll_fn, task::Poll};

/// Encrypts messages and queues them, in order, for the connection's writer task.
///
/// `send` and `send_many` return once the messages are sealed and queued; the writer hands
/// them to the sink, batching whatever accumulated while the previous write was in flight.
/// A write failure is reported by the next call. [`flush`](Self::flush) waits until everything
/// queued has been written, [`close`](Self::close) ends the direction with an authenticated
/// close record. Dropping the sender lets the writer write what is queued and then close the
/// connection; [`abort`](Self::abort) drops the connection at once.
pub struct Sender {
    sealer: Sealer,
    queue: SharedQueue,
    abort: Option<oneshot::Sender<()>>,
    /// Reused buffer that messages are sealed into before they are queued.
    staging: Vec<u8>,
    /// Set once an error was reported; every later call returns `Unusable`.
    failed: bool,
}

impl Sender {
    pub(crate) fn new(sealer: Sealer, queue: SharedQueue, abort: oneshot::Sender<()>) -> Self {
        Self {
            sealer,
            queue,
            abort: Some(abort),
            staging: Vec::new(),
            failed: false,
        }
    }

    /// Encrypts one message and queues it for sending.
    ///
    /// Waits only while the queue holds 256 KiB or more.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] (nothing queued, sender still usable),
    /// [`Error::NonceExhausted`], [`Error::Io`] when an earlier write failed, or
    /// [`Error::Unusable`] after an earlier error.
    ///
    /// # Cancel safety
    /// Cancel safe: the only wait happens before anything is sealed or queued.
    pub async fn send(&mut self, message: impl Into<IoBufs>) -> Result<(), Error> {
        self.send_many(std::iter::once(message)).await
    }

    /// Encrypts a batch of messages and queues them together.
    ///
    /// Every size is checked first: if any message is too large, nothing is queued, no nonce is
    /// used, and the sender stays usable.
    ///
    /// # Errors
    /// As for [`send`](Self::send).
    ///
    /// # Cancel safety
    /// Cancel safe, as for [`send`](Self::send).
    pub async fn send_many(
        &mut self,
        messages: impl IntoIterator<Item = impl Into<IoBufs>>,
    ) -> Result<(), Error> {
        self.ensure_usable()?;
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
        self.wait_for_room().await?;
        self.staging.reserve(total);
        for message in &messages {
            self.sealer.seal_message(message, &mut self.staging)?;
        }
        lock(&self.queue).push(&mut self.staging);
        Ok(())
    }

    /// Waits until every message queued so far has been handed to the sink.
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
            if state.failed() || state.stopped() {
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
        if let Err(error) = self.sealer.seal_close(&mut self.staging) {
            self.failed = true;
            return Err(error);
        }
        {
            let mut state = lock(&self.queue);
            state.push(&mut self.staging);
            state.finish();
        }
        let queue = self.queue.clone();
        poll_fn(|cx| {
            let mut state = lock(&queue);
            if state.stopped() {
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

    /// Waits while the queue is full; reports a writer failure.
    async fn wait_for_room(&mut self) -> Result<(), Error> {
        let queue = self.queue.clone();
        let outcome = poll_fn(|cx| {
            let mut state = lock(&queue);
            if state.failed() || state.stopped() {
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

impl Drop for Sender {
    fn drop(&mut self) {
        // Let the writer write what is queued, then close the connection.
        lock(&self.queue).finish();
    }
}

/// Sets up the write path: the sender and the writer task's future.
pub(crate) fn split_writer<O: commonware_runtime::Sink>(
    sealer: Sealer,
    sink: O,
) -> (Sender, impl Future<Output = ()> + Send + 'static) {
    let queue = SharedQueue::default();
    let (abort, aborted) = oneshot::channel();
    let task = writer::run(queue.clone(), sink, aborted);
    (Sender::new(sealer, queue, abort), task)
}
