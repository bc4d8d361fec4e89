//! The write path: a queue of sealed bytes shared by the [`Sender`](crate::Sender) and one
//! writer task that owns the sink.
//!
//! The sender seals messages in the caller's task and appends them to the queue; the writer
//! takes everything queued and hands it to the sink in one write. While a write is in flight,
//! new messages collect in the queue and go out together in the next write, so a stream of
//! small messages costs far fewer writes (system calls, on TCP) than messages, while a lone
//! message goes out as soon as the writer task runs. Sealing and writing also overlap, on
//! separate cores under a multi-threaded runtime.
//!
//! Memory is bounded: a sender waits while [`QUEUE_LIMIT_BYTES`] or more are queued, so at most
//! that much plus one batch sits in the queue, and one more batch is in flight.

use commonware_runtime::{Error as RuntimeError, Sink};
use futures::{
    channel::oneshot,
    future::{Either, select},
};
use std::{
    future::poll_fn,
    pin::pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Poll, Waker},
};

/// Queued bytes above which a sender waits for the writer.
pub(crate) const QUEUE_LIMIT_BYTES: usize = 256 * 1024;

/// State shared by the sender and the writer task.
#[derive(Default)]
pub(crate) struct Queue {
    /// Sealed records not yet handed to the sink.
    pending: Vec<u8>,
    /// Whether a write is in progress.
    writing: bool,
    /// The sender will queue nothing more: write what is pending, then stop.
    finishing: bool,
    /// The writer task has stopped (finished, failed or aborted).
    stopped: bool,
    /// The sink's error, kept until the sender reports it.
    failure: Option<RuntimeError>,
    /// Whether the sink failed (stays true after `failure` is taken).
    failed: bool,
    writer_waker: Option<Waker>,
    sender_waker: Option<Waker>,
}

/// The handle both sides hold.
pub(crate) type SharedQueue = Arc<Mutex<Queue>>;

pub(crate) fn lock(queue: &SharedQueue) -> MutexGuard<'_, Queue> {
    // A panic while holding the lock leaves only plain data behind; keep going.
    queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Queue {
    pub(crate) fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    pub(crate) fn failed(&self) -> bool {
        self.failed
    }

    pub(crate) fn stopped(&self) -> bool {
        self.stopped
    }

    /// Whether everything queued has reached the sink.
    pub(crate) fn drained(&self) -> bool {
        self.pending.is_empty() && !self.writing
    }

    pub(crate) fn take_failure(&mut self) -> Option<RuntimeError> {
        self.failure.take()
    }

    /// Appends sealed records; takes the buffer itself when the queue is empty.
    pub(crate) fn push(&mut self, sealed: &mut Vec<u8>) {
        if self.pending.is_empty() {
            std::mem::swap(&mut self.pending, sealed);
        } else {
            self.pending.extend_from_slice(sealed);
            sealed.clear();
        }
        wake(&mut self.writer_waker);
    }

    /// Asks the writer to write what is pending and stop.
    pub(crate) fn finish(&mut self) {
        self.finishing = true;
        wake(&mut self.writer_waker);
    }

    /// Registers the sender to be woken when the writer makes progress.
    pub(crate) fn wait_for_writer(&mut self, waker: &Waker) {
        self.sender_waker = Some(waker.clone());
    }
}

fn wake(waker: &mut Option<Waker>) {
    if let Some(waker) = waker.take() {
        waker.wake();
    }
}

/// Marks the queue stopped however the writer ends: finished, failed, aborted through
/// [`Sender::abort`](crate::Sender::abort), or dropped because its parent task ended.
struct StopGuard {
    queue: SharedQueue,
    finished: bool,
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        let mut state = lock(&self.queue);
        if !self.finished && !state.failed {
            // Cut off before the sender asked to finish: the connection is gone.
            state.failure = Some(RuntimeError::Closed);
            state.failed = true;
        }
        state.writing = false;
        state.stopped = true;
        wake(&mut state.sender_waker);
    }
}

/// The writer task: hands queued bytes to the sink until told to finish, the sink fails, or
/// `abort` fires. Dropping the sink at the end closes the connection.
///
/// The stop guard is created before the task first runs, so even a task dropped unpolled
/// marks the queue stopped.
pub(crate) fn run<O: Sink>(
    queue: SharedQueue,
    sink: O,
    abort: oneshot::Receiver<()>,
) -> impl Future<Output = ()> + Send + 'static {
    let guard = StopGuard {
        queue: queue.clone(),
        finished: false,
    };
    write_loop(queue, sink, abort, guard)
}

async fn write_loop<O: Sink>(
    queue: SharedQueue,
    mut sink: O,
    abort: oneshot::Receiver<()>,
    mut guard: StopGuard,
) {
    // Fires on `Sender::abort`; a sender that is merely dropped lets the writer finish.
    let mut aborted = pin!(async move {
        if abort.await.is_err() {
            std::future::pending::<()>().await;
        }
    });
    loop {
        let next = poll_fn(|cx| {
            let mut state = lock(&queue);
            if !state.pending.is_empty() {
                state.writing = true;
                let batch = std::mem::take(&mut state.pending);
                // Room just opened up for a sender waiting on a full queue.
                wake(&mut state.sender_waker);
                return Poll::Ready(Some(batch));
            }
            state.writing = false;
            if state.finishing {
                return Poll::Ready(None);
            }
            wake(&mut state.sender_waker);
            state.writer_waker = Some(cx.waker().clone());
            Poll::Pending
        });
        // The abort signal is polled first so that it wins over queued bytes.
        let batch = match select(aborted.as_mut(), pin!(next)).await {
            Either::Right((Some(batch), _)) => batch,
            Either::Right((None, _)) => {
                guard.finished = true;
                return;
            }
            Either::Left(_) => return,
        };
        let written = match select(aborted.as_mut(), pin!(sink.send(batch))).await {
            Either::Right((result, _)) => result,
            Either::Left(_) => return,
        };
        if let Err(error) = written {
            let mut state = lock(&queue);
            state.failure = Some(error);
            state.failed = true;
            return;
        }
    }
}
