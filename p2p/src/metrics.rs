//! What the network counts, registered through the runtime's `Metrics` context.
//!
//! Labels stay bounded: channels (registered by the application), outcomes and reasons (fixed
//! sets). Nothing is labelled by peer.

use commonware_runtime::{
    Metrics as RuntimeMetrics,
    telemetry::metrics::{CounterFamily, Gauge, Histogram, MetricsExt, raw},
};

use std::{
    collections::BTreeMap,
    sync::{Arc, OnceLock, RwLock},
};

type Labels = Vec<(&'static str, String)>;

/// The network's metrics; cheap to clone and small (one pointer: every connection holds it).
#[derive(Clone)]
pub(crate) struct Metrics(Arc<Handles>);

impl std::ops::Deref for Metrics {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        &self.0
    }
}

/// Handles to the registered metrics.
pub(crate) struct Handles {
    pub(crate) connected_peers: Gauge,
    handshakes: CounterFamily<Labels>,
    dials: CounterFamily<Labels>,
    messages: CounterFamily<Labels>,
    bytes: CounterFamily<Labels>,
    rtt_seconds: Histogram,
    connections_closed: CounterFamily<Labels>,
    /// The `messages` and `bytes` counters of each registered channel, found without building
    /// labels: counting is on the path of every message sent and received. Only channels the
    /// node registered get an entry (a message on any other is counted through the labels).
    by_channel: RwLock<BTreeMap<u64, Arc<ChannelCounters>>>,
}

/// One channel's counters, each resolved from its family the first time it counts.
#[derive(Default)]
struct ChannelCounters {
    messages: [OnceLock<raw::Counter>; Fate::COUNT],
    bytes: [OnceLock<raw::Counter>; Fate::COUNT],
}

/// What happened to a message, for the `messages` counter.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fate {
    Sent,
    Received,
    /// Dropped because the queue towards a peer was full.
    QueueFull,
    /// Dropped because a channel's backlog was full.
    BacklogFull,
    /// Over the channel's quota towards a peer.
    RateLimitedOutbound,
    /// Over the channel's quota from a peer by more than the reader waits: dropped.
    RateLimitedInbound,
    /// Over the channel's quota from a peer, and held until the quota admitted it (then
    /// received or dropped, and counted as such too).
    DelayedInbound,
    /// Arrived on a channel nobody registered (the connection ends).
    UnknownChannel,
    /// Queued towards a peer whose connection ended before it was written.
    DroppedDisconnected,
}

impl Fate {
    /// How many fates there are.
    const COUNT: usize = 9;

    /// A distinct index below [`Self::COUNT`].
    fn index(self) -> usize {
        match self {
            Self::Sent => 0,
            Self::Received => 1,
            Self::QueueFull => 2,
            Self::BacklogFull => 3,
            Self::RateLimitedOutbound => 4,
            Self::RateLimitedInbound => 5,
            Self::DelayedInbound => 6,
            Self::UnknownChannel => 7,
            Self::DroppedDisconnected => 8,
        }
    }

    /// The `fate` label: drops for the same cause share it whichever side they happen on.
    fn label(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Received => "received",
            Self::QueueFull | Self::BacklogFull => "dropped_full",
            Self::RateLimitedOutbound | Self::RateLimitedInbound => "rate_limited",
            Self::UnknownChannel => "unknown_channel",
            Self::DroppedDisconnected => "dropped_disconnected",
            Self::DelayedInbound => "delayed",
        }
    }

    /// The `direction` label: `outbound` for what this node sends, `inbound` for what it
    /// receives.
    fn direction(self) -> &'static str {
        match self {
            Self::Sent
            | Self::QueueFull
            | Self::RateLimitedOutbound
            | Self::DroppedDisconnected => "outbound",
            Self::Received
            | Self::BacklogFull
            | Self::RateLimitedInbound
            | Self::DelayedInbound
            | Self::UnknownChannel => "inbound",
        }
    }
}

impl Metrics {
    pub(crate) fn new(context: &impl RuntimeMetrics) -> Self {
        Self(Arc::new(Handles {
            connected_peers: context.gauge("connected_peers", "peers with an open connection"),
            handshakes: context.family(
                "handshakes",
                "handshakes by direction, outcome and failure reason",
            ),
            dials: context.family("dials", "outbound dials by outcome"),
            messages: context.family("messages", "channel messages by channel, direction and fate"),
            bytes: context.family("bytes", "channel payload bytes sent and received"),
            connections_closed: context.family(
                "connections_closed",
                "ended connections by reason (stopped by the node, or the stream's or reader's failure)",
            ),
            rtt_seconds: context.histogram(
                "rtt_seconds",
                "ping round-trip times",
                [
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            by_channel: RwLock::default(),
        }))
    }

    pub(crate) fn handshake(&self, direction: &'static str, reason: &'static str) {
        let outcome = if reason == "ok" { "ok" } else { "failed" };
        self.handshakes
            .get_or_create(&vec![
                ("direction", direction.to_string()),
                ("outcome", outcome.to_string()),
                ("reason", reason.to_string()),
            ])
            .inc();
    }

    pub(crate) fn dial(&self, outcome: &'static str) {
        self.dials
            .get_or_create(&vec![("outcome", outcome.to_string())])
            .inc();
    }

    /// Counts a message on `channel` and, when it was sent or received, its bytes.
    ///
    /// Every fate but `UnknownChannel` comes from a channel the node registered (its sender,
    /// or a received message whose channel was found), so the cache holds only those; a
    /// channel nobody registered is counted as `unknown` and never cached, so a peer cannot
    /// grow the cache.
    pub(crate) fn message(&self, channel: u64, fate: Fate, bytes: usize) {
        if matches!(fate, Fate::UnknownChannel) {
            // A channel nobody registered is the peer's choice: never let it become a label.
            self.messages
                .get_or_create(&Self::labels("unknown".to_string(), fate))
                .inc();
            return;
        }
        let counters = self.channel(channel);
        let index = fate.index();
        counters.messages[index]
            .get_or_init(|| {
                self.messages
                    .get_or_create(&Self::labels(channel.to_string(), fate))
                    .clone()
            })
            .inc();
        if matches!(fate, Fate::Sent | Fate::Received) {
            counters.bytes[index]
                .get_or_init(|| {
                    self.bytes
                        .get_or_create(&Self::labels(channel.to_string(), fate))
                        .clone()
                })
                .inc_by(bytes as u64);
        }
    }

    fn labels(channel: String, fate: Fate) -> Labels {
        vec![
            ("channel", channel),
            ("direction", fate.direction().to_string()),
            ("fate", fate.label().to_string()),
        ]
    }

    /// The counters of `channel`, made on first use.
    fn channel(&self, channel: u64) -> Arc<ChannelCounters> {
        if let Some(counters) = self
            .by_channel
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&channel)
        {
            return counters.clone();
        }
        self.by_channel
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(channel)
            .or_default()
            .clone()
    }

    pub(crate) fn connection_closed(&self, reason: &'static str) {
        self.connections_closed
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    pub(crate) fn rtt(&self, seconds: f64) {
        self.rtt_seconds.observe(seconds);
    }
}
