//! The write path: a queue of sealed records shared by the [`Sender`](crate::Sender) and one
//! writer task, and the sink that either of them holds while writing.
//!
//! Small messages are sealed in the caller's task and queued; the writer task takes everything
//! queued and hands it to the sink in one write. While a write is in flight, new messages
//! collect in the queue and go out together in the next write, so a stream of small messages
//! costs far fewer writes (system calls, on TCP) than messages, while a lone message goes out
//! as soon as the writer task runs.
//!
//! A large batch (at least [`DIRECT_WRITE_BYTES`]) costs more to hand to another task than a
//! write costs, so when the queue is empty and no write is in flight the sender borrows the
//! sink and writes it itself. Order is kept: the sender is the only producer, and it writes
//! directly only when nothing is queued or being written.
//!
//! Memory is bounded: a sender waits while [`QUEUE_LIMIT_BYTES`] or more are queued, so at most
//! that much plus one batch sits in the queue, and one more batch is in flight.

use commonware_runtime::{Error as RuntimeError, IoBuf, IoBufs, Sink};
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

/// Batches at least this large are written by the sender itself when the queue is idle.
pub(crate) const DIRECT_WRITE_BYTES: usize = 16 * 1024;

/// Sealed batches at least this large are queued as their own chunk (no copy); smaller ones
/// are appended to the last chunk, so a write of many small records stays one buffer.
const OWN_CHUNK_BYTES: usize = 16 * 1024;

/// State shared by the sender and the writer task.
pub(crate) struct Queue<O> {
    /// Sealed records not yet handed to the sink, in order, in one or more chunks.
    pending: Vec<Vec<u8>>,
    /// Bytes in `pending`.
    pending_bytes: usize,
    /// The sink, when nobody is writing to it. `None` during a write and after the end.
    sink: Option<O>,
    /// The sender will queue nothing more: write what is pending, then stop.
    finishing: bool,
    /// The write path has ended (finished, failed, aborted, or the writer task is gone).
    stopped: bool,
    /// The sink's error, kept until the sender reports it.
    failure: Option<RuntimeError>,
    /// Whether the write path failed (stays true after `failure` is taken).
    failed: bool,
    /// The writer task, waiting for work or for the sink.
    writer_waker: Option<Waker>,
    /// The sender, waiting for room, a drained queue, or the end.
    sender_waker: Option<Waker>,
    /// A direct write, waiting to learn that the write path stopped.
    lease_waker: Option<Waker>,
    /// Wakers to call once the lock is released (see [`Locked`]).
    due: Due,
}

/// Which wakers are due once the lock is released.
#[derive(Default)]
struct Due {
    writer: bool,
    sender: bool,
    lease: bool,
}

/// The handle both sides hold.
pub(crate) type SharedQueue<O> = Arc<Mutex<Queue<O>>>;

pub(crate) fn new_queue<O>(sink: O) -> SharedQueue<O> {
    Arc::new(Mutex::new(Queue {
        pending: Vec::new(),
        pending_bytes: 0,
        sink: Some(sink),
        finishing: false,
        stopped: false,
        failure: None,
        failed: false,
        writer_waker: None,
        sender_waker: None,
        lease_waker: None,
        due: Due::default(),
    }))
}

/// The locked queue. Wakers are called after the lock is released, so a woken task never
/// finds the lock held by the task that woke it.
pub(crate) struct Locked<'a, O> {
    guard: Option<MutexGuard<'a, Queue<O>>>,
}

pub(crate) fn lock<O>(queue: &SharedQueue<O>) -> Locked<'_, O> {
    // A panic while holding the lock leaves only plain data behind; keep going.
    let guard = queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Locked { guard: Some(guard) }
}

impl<O> std::ops::Deref for Locked<'_, O> {
    type Target = Queue<O>;
    fn deref(&self) -> &Queue<O> {
        self.guard.as_ref().expect("held until drop")
    }
}

impl<O> std::ops::DerefMut for Locked<'_, O> {
    fn deref_mut(&mut self) -> &mut Queue<O> {
        self.guard.as_mut().expect("held until drop")
    }
}

impl<O> Drop for Locked<'_, O> {
    fn drop(&mut self) {
        let Some(mut state) = self.guard.take() else {
            return;
        };
        let due = std::mem::take(&mut state.due);
        let wakers = [
            due.writer.then(|| state.writer_waker.take()).flatten(),
            due.sender.then(|| state.sender_waker.take()).flatten(),
            due.lease.then(|| state.lease_waker.take()).flatten(),
        ];
        drop(state);
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
    }
}

impl<O> Queue<O> {
    pub(crate) fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Whether the write path failed.
    pub(crate) fn failed(&self) -> bool {
        self.failed
    }

    /// Whether the write path has ended or failed.
    pub(crate) fn ended(&self) -> bool {
        self.failed || self.stopped
    }

    /// Whether everything queued has reached the sink.
    pub(crate) fn drained(&self) -> bool {
        self.pending.is_empty() && self.sink.is_some()
    }

    pub(crate) fn take_failure(&mut self) -> Option<RuntimeError> {
        self.failure.take()
    }

    /// Queues sealed records, taking the buffer when it is large or starts a new chunk.
    pub(crate) fn push(&mut self, sealed: &mut Vec<u8>) {
        self.pending_bytes += sealed.len();
        match self.pending.last_mut() {
            Some(last) if sealed.len() < OWN_CHUNK_BYTES && last.len() < OWN_CHUNK_BYTES => {
                last.extend_from_slice(sealed);
                sealed.clear();
            }
            _ => self.pending.push(std::mem::take(sealed)),
        }
        self.due.writer = true;
    }

    /// Lends the sink for a direct write if nothing is queued or being written.
    pub(crate) fn lend_sink(&mut self) -> Option<O> {
        if self.pending.is_empty() && !self.ended() {
            return self.sink.take();
        }
        None
    }

    /// Asks the writer to write what is pending and stop.
    pub(crate) fn finish(&mut self) {
        self.finishing = true;
        self.due.writer = true;
    }

    /// Registers the sender to be woken when the writer makes progress.
    pub(crate) fn wait_for_writer(&mut self, waker: &Waker) {
        self.sender_waker = Some(waker.clone());
    }

    fn fail(&mut self, error: RuntimeError) {
        if !self.failed {
            self.failure = Some(error);
            self.failed = true;
        }
        self.due.writer = true;
        self.due.sender = true;
    }
}

/// The sink, borrowed by the sender for one direct write. If the write does not complete (the
/// future is dropped part-way), the sink may hold a partial record: it is dropped, cutting the
/// connection, and the write path is marked failed.
pub(crate) struct SinkLease<O> {
    queue: SharedQueue<O>,
    sink: Option<O>,
}

impl<O: Sink> SinkLease<O> {
    pub(crate) fn new(queue: SharedQueue<O>, sink: O) -> Self {
        Self {
            queue,
            sink: Some(sink),
        }
    }

    /// Writes `batch`, then returns the sink to the queue (or drops it if the path ended).
    ///
    /// If the write path stops meanwhile (the writer task was aborted), the write is abandoned
    /// and the sink dropped at once, so the connection is cut as promised.
    pub(crate) async fn write(mut self, batch: IoBuf) -> Result<(), RuntimeError> {
        let queue = self.queue.clone();
        let stopped = poll_fn(|cx| {
            let mut state = lock(&queue);
            if state.stopped {
                return Poll::Ready(());
            }
            state.lease_waker = Some(cx.waker().clone());
            Poll::Pending
        });
        let sink = self
            .sink
            .as_mut()
            .expect("a lease holds the sink until it ends");
        let result = match select(pin!(stopped), pin!(sink.send(batch))).await {
            Either::Left(_) => Err(RuntimeError::Closed),
            Either::Right((result, _)) => result,
        };
        let sink = self.sink.take().expect("still held");
        let mut state = lock(&self.queue);
        match result {
            Ok(()) if !state.ended() => {
                state.sink = Some(sink);
                // The writer waits for the sink only when it has something to do.
                if state.finishing || !state.pending.is_empty() {
                    state.due.writer = true;
                }
                Ok(())
            }
            Ok(()) => Ok(()),
            Err(error) => {
                state.failed = true;
                state.due.writer = true;
                Err(error)
            }
        }
    }
}

impl<O> Drop for SinkLease<O> {
    fn drop(&mut self) {
        if self.sink.take().is_some() {
            lock(&self.queue).fail(RuntimeError::Closed);
        }
    }
}

/// Marks the write path ended however the writer ends: finished, failed, aborted through
/// [`Sender::abort`](crate::Sender::abort), or dropped because its parent task ended. Drops
/// the sink if it is in the queue, which closes the connection.
struct StopGuard<O> {
    queue: SharedQueue<O>,
    finished: bool,
}

impl<O> Drop for StopGuard<O> {
    fn drop(&mut self) {
        let sink = {
            let mut state = lock(&self.queue);
            if !self.finished && !state.failed {
                // Cut off before the sender asked to finish: the connection is gone.
                state.failure = Some(RuntimeError::Closed);
                state.failed = true;
            }
            state.stopped = true;
            state.due.sender = true;
            state.due.lease = true;
            state.sink.take()
        };
        drop(sink);
    }
}

/// What the writer does next.
enum Step<O> {
    Write(O, IoBufs),
    Finish,
    Stop,
}

/// The writer task: hands queued bytes to the sink until told to finish, the write path fails,
/// or `abort` fires.
///
/// The stop guard is created before the task first runs, so even a task dropped unpolled
/// marks the queue stopped and releases the sink.
pub(crate) fn run<O: Sink>(
    queue: SharedQueue<O>,
    abort: oneshot::Receiver<()>,
) -> impl Future<Output = ()> + Send + 'static {
    let guard = StopGuard {
        queue: queue.clone(),
        finished: false,
    };
    write_loop(queue, abort, guard)
}

async fn write_loop<O: Sink>(
    queue: SharedQueue<O>,
    abort: oneshot::Receiver<()>,
    mut guard: StopGuard<O>,
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
            if state.failed {
                return Poll::Ready(Step::Stop);
            }
            if state.sink.is_some() {
                if !state.pending.is_empty() {
                    let sink = state.sink.take().expect("checked");
                    state.pending_bytes = 0;
                    let batch: IoBufs = std::mem::take(&mut state.pending)
                        .into_iter()
                        .map(IoBuf::from)
                        .collect();
                    // Room just opened up for a sender waiting on a full queue.
                    state.due.sender = true;
                    return Poll::Ready(Step::Write(sink, batch));
                }
                if state.finishing {
                    return Poll::Ready(Step::Finish);
                }
            }
            state.due.sender = true;
            state.writer_waker = Some(cx.waker().clone());
            Poll::Pending
        });
        // The abort signal is polled first so that it wins over queued bytes.
        let (mut sink, batch) = match select(aborted.as_mut(), pin!(next)).await {
            Either::Right((Step::Write(sink, batch), _)) => (sink, batch),
            Either::Right((Step::Finish, _)) => {
                guard.finished = true;
                return;
            }
            Either::Right((Step::Stop, _)) | Either::Left(_) => return,
        };
        let written = match select(aborted.as_mut(), pin!(sink.send(batch))).await {
            Either::Right((result, _)) => result,
            // Dropping the sink mid-write cuts the connection.
            Either::Left(_) => return,
        };
        let mut state = lock(&queue);
        match written {
            Ok(()) => state.sink = Some(sink),
            Err(error) => {
                state.fail(error);
                return;
            }
        }
    }
}
