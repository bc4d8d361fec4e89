//! The network: read this file first. [`Network::new`] builds the shared state and the
//! [`Oracle`]; [`Network::register`] adds channels; [`Network::start`] spawns the listener and
//! the dialer loops, under one task whose end stops everything.
//!
//! ```text
//!             Oracle ──track/block──┐
//!                                   ▼
//!  Listener ──accept, limit,──▶  Directory  ◀──take dials── Dialer
//!  (bouncer asks the directory)  (book, connections,        │
//!        │                        backoff)                  │
//!        └──── connection task: handshake, register, then peer::run ◀─┘
//!                     ▲ lanes (high, low)        │ channel backlogs
//!  channels::Sender ──┘                          └──▶ channels::Receiver
//! ```
//!
//! All shared state sits in the directory behind one mutex that is never held across an
//! await. Each connection is one task (its reader and its writer loop are two futures in it),
//! so stopping the network task stops every connection.

use crate::{
    Config,
    budget::ByteBudget,
    channels::{self, Inbound, InboundChannels},
    context::Context,
    dialer,
    directory::{Directory, Registration, SharedDirectory, lock},
    error::Error,
    events::WarnThrottle,
    listener,
    metrics::Metrics,
    oracle::Oracle,
    peer::{Peer, Timers},
};
use commonware_cryptography::Signer;
use commonware_runtime::{Handle, KeyedRateLimiter, Quota};
use futures::{FutureExt as _, StreamExt as _, channel::mpsc};
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

/// Dial intervals the peer with the larger key waits for the other to dial first.
const DIAL_GRACE_INTERVALS: u32 = 4;

/// What every task of the network shares.
pub(crate) struct Shared<S: Signer, E: Context> {
    pub(crate) config: Arc<Config<S>>,
    pub(crate) directory: SharedDirectory<S::PublicKey>,
    pub(crate) channels: InboundChannels<S::PublicKey, E>,
    pub(crate) metrics: Metrics,
    pub(crate) warnings: Arc<WarnThrottle>,
}

impl<S: Signer, E: Context> Clone for Shared<S, E> {
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
            directory: self.directory.clone(),
            channels: self.channels.clone(),
            metrics: self.metrics.clone(),
            warnings: self.warnings.clone(),
        }
    }
}

impl<S: Signer, E: Context> Shared<S, E> {
    pub(crate) fn peer(
        &self,
        peer: S::PublicKey,
        registration: Registration,
    ) -> Peer<S::PublicKey, E> {
        Peer {
            send_keep: lock(&self.directory).is_arbiter(&peer),
            peer,
            registration,
            channels: self.channels.clone(),
            directory: self.directory.clone(),
            metrics: self.metrics.clone(),
            timers: Timers {
                ping_interval: self.config.ping_interval,
                max_silence: self.config.max_silence,
                close_timeout: self.config.handshake_timeout,
            },
        }
    }
}

/// Marks the directory closed when dropped.
struct CloseOnDrop<P: commonware_cryptography::PublicKey>(SharedDirectory<P>);

impl<P: commonware_cryptography::PublicKey> Drop for CloseOnDrop<P> {
    fn drop(&mut self) {
        crate::directory::lock(&self.0).close();
    }
}

/// A node of an authenticated peer-to-peer network.
pub struct Network<E: Context, S: Signer> {
    context: E,
    config: Config<S>,
    directory: SharedDirectory<S::PublicKey>,
    channels: BTreeMap<u64, Inbound<S::PublicKey, E>>,
    metrics: Metrics,
}

impl<E: Context, S: Signer> std::fmt::Debug for Network<E, S> {
    /// The configuration (secret redacted) and the registered channels.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("config", &self.config)
            .field("channels", &self.channels.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<E: Context, S: Signer> Network<E, S> {
    /// Creates a node and the [`Oracle`] that tells it which peers it may talk to.
    pub fn new(context: E, config: Config<S>) -> (Self, Oracle<E, S::PublicKey>) {
        let metrics = Metrics::new(&context);
        let directory = Arc::new(Mutex::new(Directory::new(
            config.signer.public_key(),
            config.tracked_peer_sets,
            config.dial_backoff_initial,
            config.dial_backoff_max,
            (config.max_queued_messages, config.max_queued_bytes),
            (*metrics.connected_peers).clone(),
            config.dial_interval.saturating_mul(DIAL_GRACE_INTERVALS),
        )));
        let oracle = Oracle::new(
            context.child("oracle"),
            directory.clone(),
            config.block_duration,
        );
        let network = Self {
            context,
            config,
            directory,
            channels: BTreeMap::new(),
            metrics,
        };
        (network, oracle)
    }

    /// Registers `channel`: at most `quota` messages per peer in each direction, and up to
    /// `backlog` received messages waiting for the application (plus one per connected peer).
    ///
    /// # Panics
    /// If `channel` is already registered, or `backlog` is zero.
    pub fn register(
        &mut self,
        channel: u64,
        quota: Quota,
        backlog: usize,
    ) -> (
        channels::Sender<S::PublicKey, E>,
        channels::Receiver<S::PublicKey>,
    ) {
        assert!(backlog > 0, "a channel needs room for at least one message");
        let (backlog_tx, backlog_rx) = mpsc::channel(backlog - 1);
        let inbound =
            KeyedRateLimiter::hashmap_with_clock(quota, self.context.child("channel_quota"));
        let backlog_bytes = Arc::new(ByteBudget::new(self.config.max_backlog_bytes));
        let previous = self.channels.insert(
            channel,
            Inbound {
                quota: inbound,
                backlog: backlog_tx,
                backlog_bytes: backlog_bytes.clone(),
            },
        );
        assert!(previous.is_none(), "channel {channel} registered twice");
        let outbound =
            KeyedRateLimiter::hashmap_with_clock(quota, self.context.child("channel_quota"));
        let sender = channels::Sender::new(
            channel,
            channels::max_payload(self.config.max_message_size),
            self.directory.clone(),
            outbound,
            self.metrics.clone(),
        );
        let capacity = std::num::NonZeroUsize::new(backlog).expect("checked above");
        (
            sender,
            channels::Receiver::new(backlog_rx, capacity, backlog_bytes),
        )
    }

    /// Starts listening and dialing. Aborting the returned handle, or stopping the runtime,
    /// stops every task of the network and closes every connection; from then on senders
    /// report `Feedback::Closed`, receivers end once drained, and subscriptions end.
    ///
    /// The task ends by itself only on a failure that stops the network, which it returns
    /// (and logs): [`Error::Bind`] when the listen address cannot be bound.
    pub fn start(self) -> Handle<Result<(), Error>> {
        let shared = Shared {
            config: Arc::new(self.config),
            directory: self.directory,
            channels: Arc::new(self.channels),
            metrics: self.metrics,
            warnings: Arc::default(),
        };
        self.context
            .child("network")
            .spawn(move |context| async move {
                // However the task ends (returns, is aborted, or the runtime stops), the
                // directory learns that the network is closed.
                let _closed = CloseOnDrop(shared.directory.clone());
                let address = shared.config.listen;
                let bound = match context.bind(address).await {
                    Ok(bound) => bound,
                    Err(source) => {
                        shared.metrics.handshake("inbound", "bind_failed");
                        tracing::error!(%address, %source, "cannot listen: the network stops");
                        return Err(Error::Bind { address, source });
                    }
                };
                tracing::info!(%address, "listening");
                let mut live = lock(&shared.directory).watch_live();
                // Held until this task ends, so the runtime's `stop` waits for the closes.
                let mut stopped = context.stopped();
                let close_timeout = shared.config.handshake_timeout;
                let directory = shared.directory.clone();
                let listening = context.child("listener").spawn({
                    let shared = shared.clone();
                    move |context| listener::run(context, shared, bound)
                });
                let dialing = context
                    .child("dialer")
                    .spawn(move |context| dialer::run(context, shared));
                let mut loops = futures::future::join(listening, dialing).fuse();
                futures::select! {
                    _ = loops => {},
                    _ = (&mut stopped).fuse() => {
                        tracing::info!("runtime stopping: closing every connection");
                        lock(&directory).close();
                        // Each connection's close is bounded by the close timeout; the
                        // margin only covers tasks that had yet to notice the stop.
                        let drained = live.next().fuse();
                        let deadline = context.sleep(close_timeout * 2).fuse();
                        futures::pin_mut!(drained, deadline);
                        futures::select! {
                            _ = drained => {},
                            _ = deadline => {
                                tracing::warn!("connections still closing when the network stopped");
                            },
                        }
                    },
                }
                Ok(())
            })
    }
}
