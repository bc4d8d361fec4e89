//! One authenticated connection: a reader that routes what the peer sends, and a writer loop
//! that batches what we send, keeps the connection alive with pings, and ends it cleanly.
//!
//! The reader and the writer loop are two futures of the connection's one task, so the reader
//! ends with the connection and a connection costs one task (one allocation for its state); a
//! connection keeps one ping timer and one silence timer, moved on only when they fire. The
//! connection ends when the directory says so (the peer left every set, was blocked, or a
//! newer connection replaced this one and takes over its queues), when the stream fails, when
//! the peer is silent for `max_silence`, or when it sends anything malformed: an undecodable
//! message, a second `Keep`, or a channel nobody registered. Of a pair, the arbiter's writer
//! sends `Keep` first; the other side reads it ([`await_keep`]) before the connection is
//! registered.

use crate::{
    budget::ByteBudget,
    channels::InboundChannels,
    context::Context,
    directory::{Outbound, Queues, Registration, SharedDirectory, lock},
    metrics::{Fate, Metrics},
    status::TrafficCounters,
    wire::{self, Message},
};
use commonware_cryptography::PublicKey;
use commonware_runtime::{IoBufs, Sink, Stream};
use futures::{
    FutureExt as _, StreamExt as _,
    channel::{mpsc, oneshot},
    future::{Either, Fuse},
    select_biased,
};
use palisade_stream::{Receiver, Sender};
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

/// Most messages one write takes from the queues.
const MAX_BATCH: usize = 256;

/// Payload bytes after which a write takes no more messages: large enough to amortize the
/// write, small enough that its buffer is reused by the allocator rather than mapped anew.
const MAX_BATCH_BYTES: usize = 128 * 1024;

/// Longest a reader holds a message from a peer for that peer's channel quota. Far beyond
/// the timing jitter an honest, quota-paced sender shows; a message that would wait longer
/// is dropped (and counted as `rate_limited`).
const MAX_QUOTA_WAIT: Duration = Duration::from_secs(1);

/// Bytes the reader routes before it lets other tasks run. A peer that keeps its connection
/// full would otherwise keep the reader busy for as long as the stream has buffered data,
/// while the application's receivers (and every other connection) wait, and the messages
/// routed meanwhile pile up in the backlogs.
const READ_BYTES_BEFORE_YIELD: usize = 16 * 1024;

/// Pongs waiting to be sent; a peer pinging faster than we answer loses pongs, not memory.
const PONG_QUEUE: usize = 8;

/// Timers of a connection.
#[derive(Clone, Copy)]
pub(crate) struct Timers {
    pub(crate) ping_interval: Duration,
    pub(crate) max_silence: Duration,
    pub(crate) close_timeout: Duration,
}

/// Everything a connection task needs besides its stream halves.
pub(crate) struct Peer<P: PublicKey, E: Context> {
    pub(crate) peer: P,
    pub(crate) registration: Registration,
    /// Whether we are the pair's arbiter, whose first message is `Keep`.
    pub(crate) send_keep: bool,
    pub(crate) channels: InboundChannels<P, E>,
    pub(crate) directory: SharedDirectory<P>,
    pub(crate) metrics: Metrics,
    pub(crate) timers: Timers,
}

/// The outstanding ping: its nonce and when it left.
type PendingPing = Mutex<Option<(u64, SystemTime)>>;

/// Fires when the directory ends the connection.
type Stop = Fuse<oneshot::Receiver<()>>;

/// Fires with the reason when the reader ends.
type ReaderEnded = Fuse<oneshot::Receiver<&'static str>>;

/// Waits for the arbiter's `Keep`, which must be the first message of a connection the
/// arbiter registered (see [`crate::duplicate`]); returns the receiver to read on.
///
/// # Errors
/// Why the connection is not used: `not_kept` when it ends first (the arbiter refused it, or
/// it broke), `keep_timeout` when nothing arrives within `timeout`, `malformed` when the first
/// message is anything else, `superseded` when `superseded` fires first (a newer connection
/// from the peer waits for its `Keep` instead).
pub(crate) async fn await_keep<E: Context, I: Stream>(
    context: &E,
    mut receiver: Receiver<I>,
    timeout: Duration,
    superseded: Option<oneshot::Receiver<()>>,
) -> Result<Receiver<I>, &'static str> {
    let first = {
        let receiving = receiver.recv().fuse();
        let timeout = context.sleep(timeout).fuse();
        let superseded = async move {
            match superseded {
                Some(superseded) => drop(superseded.await),
                None => futures::future::pending().await,
            }
        }
        .fuse();
        futures::pin_mut!(receiving, timeout, superseded);
        select_biased! {
            first = receiving => first,
            _ = superseded => return Err("superseded"),
            _ = timeout => return Err("keep_timeout"),
        }
    };
    match first.map(wire::decode) {
        Ok(Ok(Message::Keep)) => Ok(receiver),
        Ok(_) => Err("malformed"),
        Err(error) => {
            tracing::debug!(
                reason = error.reason(),
                "connection ended before the arbiter kept it"
            );
            Err("not_kept")
        }
    }
}

/// Runs `work` unless the directory ends the connection or the reader ends first: a slow
/// peer cannot hold a connection we want gone.
async fn unless_ended<T>(
    work: impl Future<Output = T>,
    mut stop: &mut Stop,
    mut reader_ended: &mut ReaderEnded,
) -> Result<T, End> {
    let work = work.fuse();
    futures::pin_mut!(work);
    select_biased! {
        _ = stop => Err(End::Stopped),
        reason = reader_ended => Err(End::Failed(reason.unwrap_or("reader_stopped"))),
        value = work => Ok(value),
    }
}

/// Runs the connection until it ends, then unregisters it.
///
/// A plain function returning an `async move` block rather than an `async fn`, and `peer`
/// boxed: an `async fn` keeps a second copy of its arguments in its state, and every idle
/// connection holds this state for as long as it lives.
#[allow(clippy::manual_async_fn)]
pub(crate) fn run<E, P, O, I>(
    mut context: E,
    peer: Box<Peer<P, E>>,
    mut sender: Sender<O>,
    mut receiver: Receiver<I>,
) -> impl Future<Output = ()>
where
    E: Context,
    P: PublicKey,
    O: Sink,
    I: Stream,
{
    async move {
        let Peer {
            peer,
            registration,
            send_keep,
            channels,
            directory,
            metrics,
            timers,
        } = *peer;
        let Registration {
            id,
            queues,
            bytes: queued_bytes,
            traffic,
            stop,
            // Dropped only when this task ends, after the authenticated close below.
            live: _live,
        } = registration;
        let metrics = Counters { metrics, traffic };
        let (pong_tx, mut pongs) = mpsc::channel(PONG_QUEUE);
        // Shared by reference: the reader and the writer loop are futures of this one task.
        let pending_ping: PendingPing = Mutex::default();
        // The reader reports why it ended, which the writer loop below notices.
        let (reader_alive, reader_ended) = oneshot::channel::<&'static str>();
        // The reader runs beside the writer loop in this task, not in a task of its own: a
        // connection is one task, whose state is one allocation.
        let reading = async {
            let reason = read(
                &context,
                &peer,
                &mut receiver,
                &channels,
                &metrics,
                pong_tx,
                &pending_ping,
                timers,
            )
            .await;
            let _ = reader_alive.send(reason);
        };
        let mut reader_ended = reader_ended.fuse();
        let mut stop = stop.fuse();
        // The queues, once the connection this one replaced (if any) has let go of them.
        let mut held = None;
        let writing = async {
            if send_keep {
                let keep = sender.send_many(vec![IoBufs::from(wire::encode_keep())]);
                match unless_ended(keep, &mut stop, &mut reader_ended).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => return End::Failed(error.reason()),
                    Err(end) => return end,
                }
            }
            let guard = match unless_ended(queues.lock(), &mut stop, &mut reader_ended).await {
                Ok(guard) => held.insert(guard),
                Err(end) => return end,
            };
            let Queues { high, low } = &mut **guard;
            let mut next_ping = context.current() + timers.ping_interval;
            let mut ping_nonce = 0u64;
            // One timer for the next ping, replaced only when it fires: a timer made anew for
            // every write would stay registered with the runtime until its deadline.
            let ping_due = context.sleep_until(next_ping).fuse();
            futures::pin_mut!(ping_due);
            loop {
                // What to write next: a pong, a ping, or a batch of queued messages.
                let (outgoing, batch): (Vec<IoBufs>, Vec<Outbound>) = select_biased! {
                    _ = stop => return End::Stopped,
                    reason = reader_ended => return End::Failed(reason.unwrap_or("reader_stopped")),
                    nonce = pongs.next() => match nonce {
                        Some(nonce) => (vec![wire::encode_pong(nonce).into()], Vec::new()),
                        None => return End::Failed("pong_queue_closed"),
                    },
                    message = high.next() => match message {
                        Some(message) => take_batch(message, high, low, &queued_bytes),
                        None => return End::Stopped,
                    },
                    message = low.next() => match message {
                        Some(message) => take_batch(message, high, low, &queued_bytes),
                        None => return End::Stopped,
                    },
                    _ = ping_due => {
                        ping_nonce += 1;
                        *pending_ping.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some((ping_nonce, context.current()));
                        next_ping = context.current() + timers.ping_interval;
                        ping_due.set(context.sleep_until(next_ping).fuse());
                        (vec![wire::encode_ping(ping_nonce).into()], Vec::new())
                    }
                };
                let written =
                    unless_ended(sender.send_many(outgoing), &mut stop, &mut reader_ended)
                        .await
                        .and_then(|result| result.map_err(|error| End::Failed(error.reason())));
                let fate = if written.is_ok() {
                    Fate::Sent
                } else {
                    Fate::DroppedDisconnected
                };
                for (channel, payload) in &batch {
                    metrics.message(*channel, fate, payload.len());
                }
                if let Err(end) = written {
                    return end;
                }
            }
        };
        let end = {
            futures::pin_mut!(reading, writing);
            match futures::future::select(reading, writing).await {
                // The writer loop ended first: the reader is dropped with this block, and nothing
                // more is delivered from this peer.
                Either::Right((end, _reading)) => end,
                // The reader ended and said why; the writer loop notices and ends.
                Either::Left(((), writing)) => writing.await,
            }
        };
        let reason = match end {
            End::Stopped => "stopped",
            End::Failed(reason) => reason,
        };
        metrics.metrics.connection_closed(reason);
        tracing::debug!(reason, "connection closed");
        let now = context.current();
        let handed_over = lock(&directory).unregister(&peer, id, &queues, now, &mut context);
        if !handed_over {
            // The peer's connection ended (a replaced one did not: its successor goes on).
            metrics.traffic.closed(reason);
        }
        if handed_over {
            // The connection that replaced this one writes what is still queued.
            drop(held);
        } else {
            // Nobody will write what is still queued: count it. (Whoever holds the queues now is
            // an older connection that is ending too.)
            let mut guard = match held {
                Some(guard) => guard,
                None => queues.lock().await,
            };
            let Queues { high, low } = &mut *guard;
            high.close();
            low.close();
            while let Some((channel, payload)) =
                high.try_recv().ok().or_else(|| low.try_recv().ok())
            {
                queued_bytes.release(payload.len());
                metrics.message(channel, Fate::DroppedDisconnected, payload.len());
            }
        }
        if matches!(end, End::Stopped) {
            // End with the stream's authenticated close, but never wait on a stuck peer for long.
            let closing = sender.close().fuse();
            let timeout = context.sleep(timers.close_timeout).fuse();
            futures::pin_mut!(closing, timeout);
            select_biased! {
                _ = closing => {},
                _ = timeout => {},
            }
        }
    }
}

/// Where a connection counts what happens to its messages: the node's metrics and the peer's
/// own traffic counters, always both.
#[derive(Clone)]
struct Counters {
    metrics: Metrics,
    traffic: Arc<TrafficCounters>,
}

impl Counters {
    fn message(&self, channel: u64, fate: Fate, bytes: usize) {
        self.metrics.message(channel, fate, bytes);
        self.traffic.message(fate, bytes);
    }

    fn rtt(&self, rtt: Duration) {
        self.metrics.rtt(rtt.as_secs_f64());
        self.traffic.rtt(rtt);
    }
}

/// Why a connection's writer loop ended.
enum End {
    /// The directory ended it (removed, blocked, replaced): close cleanly.
    Stopped,
    /// The stream or the reader failed, for this reason: just drop it.
    Failed(&'static str),
}

/// `first` and whatever else is queued, high priority first, up to [`MAX_BATCH`] messages or
/// [`MAX_BATCH_BYTES`], encoded for one write.
fn take_batch(
    first: Outbound,
    high: &mut mpsc::Receiver<Outbound>,
    low: &mut mpsc::Receiver<Outbound>,
    queued_bytes: &ByteBudget,
) -> (Vec<IoBufs>, Vec<Outbound>) {
    let mut bytes = first.1.len();
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
        match high.try_recv().ok().or_else(|| low.try_recv().ok()) {
            Some(message) => {
                bytes += message.1.len();
                batch.push(message);
            }
            None => break,
        }
    }
    // Out of the queue: what the batch holds is the writer's now.
    queued_bytes.release(bytes);
    let encoded = batch
        .iter()
        .map(|(channel, payload)| wire::encode_data(*channel, payload.clone()))
        .collect();
    (encoded, batch)
}

/// The reader: routes every message the peer sends until the connection fails; returns why.
#[allow(clippy::too_many_arguments)]
async fn read<E, P, I>(
    context: &E,
    peer: &P,
    receiver: &mut Receiver<I>,
    channels: &InboundChannels<P, E>,
    metrics: &Counters,
    mut pongs: mpsc::Sender<u64>,
    pending_ping: &PendingPing,
    timers: Timers,
) -> &'static str
where
    E: Context,
    P: PublicKey,
    I: Stream,
{
    let mut backlogs: BTreeMap<u64, mpsc::Sender<(P, commonware_runtime::IoBuf)>> = BTreeMap::new();
    let mut read_since_yield = 0;
    // The silence timer is set once and moved forward only when it fires, from the time the
    // last message arrived: a timer per message would stay registered with the runtime until
    // its deadline, however soon the next message came. The time a message then waits for its
    // quota (at most `MAX_QUOTA_WAIT`) counts towards the silence; with pings more frequent
    // than `max_silence`, the peer's next ping arrives long before that matters.
    let mut last_heard = context.current();
    let silence = context.sleep_until(last_heard + timers.max_silence).fuse();
    futures::pin_mut!(silence);
    loop {
        if read_since_yield >= READ_BYTES_BEFORE_YIELD {
            read_since_yield = 0;
            yield_now().await;
        }
        // A receive dropped by the timeout leaves the receiver unusable; the connection ends
        // then anyway.
        let received = {
            let receiving = receiver.recv().fuse();
            futures::pin_mut!(receiving);
            loop {
                let heard = select_biased! {
                    received = receiving => Some(received),
                    _ = silence => None,
                };
                if let Some(received) = heard {
                    break received;
                }
                // The timer was set from an earlier message; silent long enough only if
                // nothing arrived since.
                let deadline = last_heard + timers.max_silence;
                if context.current() >= deadline {
                    return "silence";
                }
                silence.set(context.sleep_until(deadline).fuse());
            }
        };
        last_heard = context.current();
        let message = match received {
            Ok(message) => message,
            Err(error) => return error.reason(),
        };
        read_since_yield += message.len();
        match wire::decode(message) {
            Err(_) => return "malformed",
            // `Keep` comes once, first, from the arbiter, and was read before this reader
            // started: another is malformed.
            Ok(Message::Keep) => return "malformed",
            Ok(Message::Ping(nonce)) => {
                // A full pong queue means the peer pings too fast: drop the pong.
                let _ = pongs.try_send(nonce);
            }
            Ok(Message::Pong(nonce)) => {
                let mut pending = pending_ping.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((expected, sent)) = *pending
                    && expected == nonce
                {
                    *pending = None;
                    let rtt = context.current().duration_since(sent).unwrap_or_default();
                    metrics.rtt(rtt);
                }
            }
            Ok(Message::Data { channel, payload }) => {
                let Some(inbound) = channels.get(&channel) else {
                    metrics.message(channel, Fate::UnknownChannel, payload.len());
                    return "unknown_channel";
                };
                // Over quota by a little: wait until the quota admits it rather than drop
                // it. An honest sender paced by its own quota can arrive a little early (its
                // first messages were delayed more than later ones) and must not lose
                // anything for that; meanwhile this peer's stream is not read, so transport
                // backpressure slows it. Over by more than `MAX_QUOTA_WAIT`: the peer ignores
                // the quota, and the message is dropped.
                if let Err(not_until) = inbound.quota.check_key(peer) {
                    let mut free_at = not_until.earliest_possible();
                    let waited_from = context.current();
                    let admitted = loop {
                        let wait = free_at
                            .duration_since(context.current())
                            .unwrap_or_default();
                        let waited = context
                            .current()
                            .duration_since(waited_from)
                            .unwrap_or_default();
                        if waited + wait > MAX_QUOTA_WAIT {
                            break false;
                        }
                        context.sleep_until(free_at).await;
                        match inbound.quota.check_key(peer) {
                            Ok(()) => break true,
                            Err(not_until) => free_at = not_until.earliest_possible(),
                        }
                    };
                    if !admitted {
                        metrics.message(channel, Fate::RateLimitedInbound, payload.len());
                        continue;
                    }
                    metrics.message(channel, Fate::DelayedInbound, payload.len());
                }
                let bytes = payload.len();
                // A full backlog, in bytes or in messages (or an application that stopped
                // reading), drops only this message; no other peer or channel waits.
                if !inbound.backlog_bytes.try_reserve(bytes) {
                    metrics.message(channel, Fate::BacklogFull, bytes);
                    continue;
                }
                let backlog = backlogs
                    .entry(channel)
                    .or_insert_with(|| inbound.backlog.clone());
                match backlog.try_send((peer.clone(), payload)) {
                    Ok(()) => metrics.message(channel, Fate::Received, bytes),
                    Err(_) => {
                        inbound.backlog_bytes.release(bytes);
                        metrics.message(channel, Fate::BacklogFull, bytes);
                    }
                }
            }
        }
    }
}

/// Lets every other ready task run once before this one continues.
async fn yield_now() {
    let mut yielded = false;
    futures::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}
