//! Application channels: how messages go out to peers and come in from them.
//!
//! A channel is a `u64` the application registers once, with a rate quota per peer (applied to
//! what we send to each peer and to what each peer sends us) and a backlog: the number of
//! received messages that may wait for the application. Nothing is dropped silently: a full
//! backlog, a full queue towards a peer, or a quota overrun drops the message and counts it in
//! the `messages` metric with its fate.

use crate::{
    directory::{SharedDirectory, lock},
    metrics::{Fate, Metrics},
    wire,
};
use commonware_cryptography::PublicKey;
use commonware_runtime::{Clock, IoBuf, IoBufs, KeyedRateLimiter};
use futures::{StreamExt, channel::mpsc};
use std::{collections::BTreeMap, sync::Arc};

/// Whom a message goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipients<P> {
    /// Every connected peer.
    All,
    /// These peers, where connected.
    Some(Vec<P>),
    /// This peer, if connected.
    One(P),
}

/// Why a send or receive failed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The message is larger than a channel payload may be.
    #[error("message of {size} bytes exceeds the channel limit of {max} bytes")]
    MessageTooLarge {
        /// The message size in bytes.
        size: usize,
        /// The largest payload a channel carries.
        max: usize,
    },
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
}

/// Every registered channel, by number.
pub(crate) type InboundChannels<P, C> = Arc<BTreeMap<u64, Inbound<P, C>>>;

/// Sends messages on one channel.
pub struct Sender<P: PublicKey, C: Clock> {
    channel: u64,
    max_payload: usize,
    directory: SharedDirectory<P>,
    quota: Arc<KeyedRateLimiter<P, C>>,
    metrics: Metrics,
    sends: u64,
}

/// Sends between two prunings of a sender's per-peer quota state.
const PRUNE_EVERY_SENDS: u64 = 1024;

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
            sends: 0,
        }
    }

    /// Queues `message` towards the connected `recipients`; `priority` messages go ahead of
    /// the others in each peer's queue. Returns the peers it was queued for: a recipient that
    /// is not connected, over this channel's quota, or whose queue is full is left out (and
    /// the last two are counted).
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] when the message exceeds the channel payload limit.
    ///
    /// # Cancel safety
    /// Cancel safe: it never waits.
    pub async fn send(
        &mut self,
        recipients: Recipients<P>,
        message: impl Into<IoBufs>,
        priority: bool,
    ) -> Result<Vec<P>, Error> {
        let message = message.into().coalesce();
        if message.len() > self.max_payload {
            return Err(Error::MessageTooLarge {
                size: message.len(),
                max: self.max_payload,
            });
        }
        let directory = lock(&self.directory);
        let targets: Vec<(P, _)> = match recipients {
            Recipients::All => directory
                .connected()
                .map(|(peer, lanes)| (peer.clone(), lanes.clone()))
                .collect(),
            Recipients::Some(peers) => peers
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter_map(|peer| directory.lanes(&peer).cloned().map(|lanes| (peer, lanes)))
                .collect(),
            Recipients::One(peer) => directory
                .lanes(&peer)
                .cloned()
                .map(|lanes| (peer, lanes))
                .into_iter()
                .collect(),
        };
        drop(directory);
        self.sends = self.sends.wrapping_add(1);
        if self.sends.is_multiple_of(PRUNE_EVERY_SENDS) {
            // Forget peers whose quota has fully replenished, so the map stays small.
            self.quota.retain_recent();
        }
        let mut sent_to = Vec::with_capacity(targets.len());
        for (peer, mut lanes) in targets {
            if self.quota.check_key(&peer).is_err() {
                self.metrics
                    .message(self.channel, Fate::RateLimitedOutbound, message.len());
                continue;
            }
            let lane = if priority {
                &mut lanes.high
            } else {
                &mut lanes.low
            };
            match lane.try_send((self.channel, message.clone())) {
                Ok(()) => sent_to.push(peer),
                Err(error) if error.is_full() => {
                    self.metrics
                        .message(self.channel, Fate::QueueFull, message.len());
                }
                // The connection is ending; it is no longer a recipient.
                Err(_) => {}
            }
        }
        Ok(sent_to)
    }
}

/// Receives the messages peers send on one channel, in the order each peer sent them.
pub struct Receiver<P> {
    messages: mpsc::Receiver<(P, IoBuf)>,
}

impl<P> Receiver<P> {
    pub(crate) fn new(messages: mpsc::Receiver<(P, IoBuf)>) -> Self {
        Self { messages }
    }

    /// The next message and its sender.
    ///
    /// # Errors
    /// [`Error::NetworkClosed`] once the network has stopped.
    ///
    /// # Cancel safety
    /// Cancel safe: a message is only taken when this returns it.
    pub async fn recv(&mut self) -> Result<(P, IoBuf), Error> {
        self.messages.next().await.ok_or(Error::NetworkClosed)
    }
}

/// Most bytes a channel payload may have under a stream limit of `max_message_size`.
pub(crate) fn max_payload(max_message_size: u32) -> usize {
    (max_message_size as usize).saturating_sub(wire::MAX_DATA_OVERHEAD_BYTES)
}
