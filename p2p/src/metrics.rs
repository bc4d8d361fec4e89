//! What the network counts, registered through the runtime's `Metrics` context.
//!
//! Labels stay bounded: channels (registered by the application), outcomes and reasons (fixed
//! sets). Nothing is labelled by peer.

use commonware_runtime::{
    Metrics as RuntimeMetrics,
    telemetry::metrics::{CounterFamily, Gauge, Histogram, MetricsExt},
};

type Labels = Vec<(&'static str, String)>;

/// The network's metrics; cheap to clone (handles to shared metrics).
#[derive(Clone)]
pub(crate) struct Metrics {
    pub(crate) connected_peers: Gauge,
    handshakes: CounterFamily<Labels>,
    dials: CounterFamily<Labels>,
    messages: CounterFamily<Labels>,
    bytes: CounterFamily<Labels>,
    rtt_seconds: Histogram,
    connections_closed: CounterFamily<Labels>,
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
        Self {
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
        }
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

    pub(crate) fn message(&self, channel: u64, fate: Fate, bytes: usize) {
        // A channel nobody registered is the peer's choice: never let it become a label.
        let channel = match fate {
            Fate::UnknownChannel => "unknown".to_string(),
            _ => channel.to_string(),
        };
        let labels = vec![
            ("channel", channel),
            ("direction", fate.direction().to_string()),
            ("fate", fate.label().to_string()),
        ];
        self.messages.get_or_create(&labels).inc();
        if matches!(fate, Fate::Sent | Fate::Received) {
            self.bytes.get_or_create(&labels).inc_by(bytes as u64);
        }
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
