//! Application channels: how messages go out to peers and come in from them.
//!
//! A channel is a `u64` the application registers once, with a rate quota per peer (applied to
//! what we send to each peer and to what each peer sends us) and a backlog: the number of
//! received messages that may wait for the application (and, from the configuration, how many
//! bytes). Nothing is dropped silently: a full backlog or a full queue towards a peer (in
//! messages or in bytes), a send over quota, or a message that arrives far over its peer's
//! quota (one a little over is held until the quota admits it) drops the message and counts it
//! in the `messages` metric with its fate.
//!
//! [`Sender`] is commonware-p2p's [`LimitedSender`]: [`check`](LimitedSender::check) resolves
//! the recipients among the connected peers and takes one unit of each one's quota, and
//! [`CheckedSender::send`] queues the message towards them. commonware-p2p's blanket
//! [`Sender`](commonware_p2p::Sender) does both in one call. [`Receiver`] is commonware-p2p's
//! [`Receiver`](commonware_p2p::Receiver).

use crate::{
    budget::ByteBudget,
    directory::{SharedDirectory, lock},
    metrics::{Fate, Metrics},
    wire,
};
use commonware_actor::{Feedback, Unreliable};
use commonware_cryptography::PublicKey;
use commonware_p2p::{CheckedSender, LimitedSender, Message, Recipients};
use commonware_runtime::{Clock, IoBuf, IoBufs, KeyedRateLimiter};
use futures::{StreamExt, channel::mpsc};
use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    num::NonZeroUsize,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::SystemTime,
};

/// Why a receive failed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The network has stopped.
    #[error("network closed")]
    NetworkClosed,
}

/// One registered channel, as peers see it when routing what they receive.
pub(crate) struct Inbound<P: PublicKey, C: Clock> {
    /// The per-peer quota on what peers send us; shared by all connections, so a peer that
    /// reconnects does not get a fresh burst.
    pub(crate) quota: KeyedRateLimiter<P, C>,
    pub(crate) backlog: mpsc::Sender<(P, IoBuf)>,
    /// Bytes waiting in the backlog, bounded by `max_backlog_bytes`; the receiver releases
    /// what the application takes.
    pub(crate) backlog_bytes: Arc<ByteBudget>,
}

/// Every registered channel, by number.
pub(crate) type InboundChannels<P, C> = Arc<BTreeMap<u64, Inbound<P, C>>>;

/// Sends messages on one channel. Clones share the channel's per-peer quota.
pub struct Sender<P: PublicKey, C: Clock> {
    channel: u64,
    max_payload: usize,
    directory: SharedDirectory<P>,
    quota: Arc<KeyedRateLimiter<P, C>>,
    metrics: Metrics,
    checks: Arc<AtomicU64>,
}

impl<P: PublicKey, C: Clock> Clone for Sender<P, C> {
    fn clone(&self) -> Self {
        Self {
            channel: self.channel,
            max_payload: self.max_payload,
            directory: self.directory.clone(),
            quota: self.quota.clone(),
            metrics: self.metrics.clone(),
            checks: self.checks.clone(),
        }
    }
}

impl<P: PublicKey, C: Clock> fmt::Debug for Sender<P, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("channel", &self.channel)
            .field("max_payload", &self.max_payload)
            .finish_non_exhaustive()
    }
}

/// Checks between two prunings of a sender's per-peer quota state.
const PRUNE_EVERY_CHECKS: u64 = 1024;

impl<P: PublicKey, C: Clock> Sender<P, C> {
    pub(crate) fn new(
        channel: u64,
        max_payload: usize,
        directory: SharedDirectory<P>,
        quota: KeyedRateLimiter<P, C>,
        metrics: Metrics,
    ) -> Self {
        Self {
            channel,
            max_payload,
            directory,
            quota: Arc::new(quota),
            metrics,
            checks: Arc::default(),
        }
    }

    /// The channel this sender sends on.
    pub fn channel(&self) -> u64 {
        self.channel
    }

    /// The largest payload, in bytes, this channel carries; a larger one makes
    /// [`CheckedSender::send`] panic, as commonware-p2p's contract says.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }
}

impl<P: PublicKey, C: Clock> LimitedSender for Sender<P, C> {
    type PublicKey = P;
    type Checked<'a>
        = Checked<'a, P, C>
    where
        Self: 'a;

    /// Resolves `recipients` among the connected peers (`All` is every connected peer, primary
    /// or secondary; a recipient that is not connected is left out) and takes one unit of each
    /// one's quota on this channel. Recipients over quota are left out and counted as
    /// `rate_limited`.
    ///
    /// # Errors
    /// When every connected recipient is over quota: the earliest time at which all of them
    /// are within quota again (the time commonware-p2p's contract names). When no recipient
    /// is connected, the check succeeds with no recipients.
    fn check(&mut self, recipients: Recipients<P>) -> Result<Checked<'_, P, C>, SystemTime> {
        let directory = lock(&self.directory);
        let closed = directory.is_closed();
        let targets: Vec<P> = match recipients {
            Recipients::All => directory
                .connected()
                .map(|(peer, _)| peer.clone())
                .collect(),
            Recipients::Some(peers) => peers
                .into_iter()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .filter(|peer| directory.lanes(peer).is_some())
                .collect(),
            Recipients::One(peer) => directory
                .lanes(&peer)
                .is_some()
                .then_some(peer)
                .into_iter()
                .collect(),
        };
        drop(directory);
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY_CHECKS)
        {
            // Forget peers whose quota has fully replenished, so the map stays small.
            self.quota.retain_recent();
        }
        let mut allowed = Vec::with_capacity(targets.len());
        let mut limited = Vec::new();
        let mut retry: Option<SystemTime> = None;
        for peer in targets {
            match self.quota.check_key(&peer) {
                Ok(()) => allowed.push(peer),
                Err(not_until) => {
                    self.metrics
                        .message(self.channel, Fate::RateLimitedOutbound, 0);
                    let earliest = not_until.earliest_possible();
                    retry = Some(retry.map_or(earliest, |latest| latest.max(earliest)));
                    limited.push(peer);
                }
            }
        }
        if !limited.is_empty() {
            let directory = lock(&self.directory);
            for peer in &limited {
                if let Some(traffic) = directory.traffic(peer) {
                    traffic.message(Fate::RateLimitedOutbound, 0);
                }
            }
        }
        if allowed.is_empty()
            && let Some(retry) = retry
        {
            return Err(retry);
        }
        Ok(Checked {
            sender: self,
            targets: allowed,
            closed,
        })
    }
}

/// Recipients that passed [`LimitedSender::check`], ready to take one message.
pub struct Checked<'a, P: PublicKey, C: Clock> {
    sender: &'a mut Sender<P, C>,
    targets: Vec<P>,
    closed: bool,
}

impl<P: PublicKey, C: Clock> fmt::Debug for Checked<'_, P, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checked")
            .field("channel", &self.sender.channel)
            .field("recipients", &self.targets.len())
            .finish_non_exhaustive()
    }
}

impl<P: PublicKey, C: Clock> CheckedSender for Checked<'_, P, C> {
    type PublicKey = P;

    fn recipients(&self) -> Vec<P> {
        self.targets.clone()
    }

    /// Queues `message` towards every checked recipient; `priority` messages go ahead of the
    /// others in each peer's queue. Never waits.
    ///
    /// Returns `Outcome(Ok)` when at least one queue took the message (or there was no
    /// recipient), [`Unreliable::Rejected`] when every recipient's queue was full (each
    /// counted as `dropped_full`), and `Outcome(Closed)` once the network has stopped. A
    /// recipient whose connection ended meanwhile is skipped.
    ///
    /// # Panics
    /// If `message` is larger than [`Sender::max_payload`].
    fn send(self, message: impl Into<IoBufs> + Send, priority: bool) -> Unreliable<Feedback> {
        let message = message.into().coalesce();
        let (channel, max_payload) = (self.sender.channel, self.sender.max_payload);
        assert!(
            message.len() <= max_payload,
            "message of {} bytes exceeds channel {channel}'s limit of {max_payload} bytes",
            message.len(),
        );
        if self.closed {
            return Unreliable::new(Feedback::Closed);
        }
        let mut queued = 0usize;
        let mut full = 0usize;
        // The directory's own queue handles, not clones: a clone of a bounded sender brings a
        // slot of its own, which would make the queue unbounded.
        let mut directory = lock(&self.sender.directory);
        for peer in &self.targets {
            // The connection ended since the check: no longer a recipient.
            let Some(lanes) = directory.lanes_mut(peer) else {
                continue;
            };
            // Bytes first: a queue over its byte bound refuses like a queue over its count.
            if !lanes.bytes.try_reserve(message.len()) {
                full += 1;
                self.sender
                    .metrics
                    .message(channel, Fate::QueueFull, message.len());
                lanes.traffic.message(Fate::QueueFull, message.len());
                continue;
            }
            let lane = if priority {
                &mut lanes.high
            } else {
                &mut lanes.low
            };
            match lane.try_send((channel, message.clone())) {
                Ok(()) => queued += 1,
                Err(error) => {
                    lanes.bytes.release(message.len());
                    // Otherwise the connection is ending; it is no longer a recipient.
                    if error.is_full() {
                        full += 1;
                        self.sender
                            .metrics
                            .message(channel, Fate::QueueFull, message.len());
                        lanes.traffic.message(Fate::QueueFull, message.len());
                    }
                }
            }
        }
        if queued == 0 && full > 0 {
            Unreliable::Rejected
        } else {
            Unreliable::new(Feedback::Ok)
        }
    }
}

/// Receives the messages peers send on one channel, in the order each peer sent them.
pub struct Receiver<P> {
    messages: mpsc::Receiver<(P, IoBuf)>,
    capacity: NonZeroUsize,
    bytes: Arc<ByteBudget>,
}

impl<P> fmt::Debug for Receiver<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<P> Receiver<P> {
    pub(crate) fn new(
        messages: mpsc::Receiver<(P, IoBuf)>,
        capacity: NonZeroUsize,
        bytes: Arc<ByteBudget>,
    ) -> Self {
        Self {
            messages,
            capacity,
            bytes,
        }
    }

    /// Bytes of payload waiting in the channel's backlog now.
    pub fn backlog_bytes(&self) -> usize {
        self.bytes.held()
    }
}

impl<P: PublicKey> commonware_p2p::Receiver for Receiver<P> {
    type Error = Error;
    type PublicKey = P;

    /// The next message and its sender.
    ///
    /// # Errors
    /// [`Error::NetworkClosed`] once the network has stopped and the backlog is empty.
    ///
    /// # Cancel safety
    /// Cancel safe: a message is only taken when this returns it.
    async fn recv(&mut self) -> Result<Message<P>, Error> {
        let (peer, message) = self.messages.next().await.ok_or(Error::NetworkClosed)?;
        self.bytes.release(message.len());
        Ok((peer, message))
    }

    /// The channel's backlog: how many received messages may wait before arrivals are dropped
    /// (each connected peer has room for one more of its own on top).
    fn capacity(&self) -> NonZeroUsize {
        self.capacity
    }
}

/// Most bytes a channel payload may have under a stream limit of `max_message_size`.
pub(crate) fn max_payload(max_message_size: u32) -> usize {
    (max_message_size as usize).saturating_sub(wire::MAX_DATA_OVERHEAD_BYTES)
}
