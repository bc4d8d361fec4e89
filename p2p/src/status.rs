//! What a node knows about each tracked peer right now: [`Oracle::peers`](crate::Oracle::peers).
//!
//! # Design
//!
//! Every tracked peer that has had a connection gets one [`TrafficCounters`], shared by the
//! directory, the queues towards the peer (for sends refused at the queue) and each of its
//! connections (for what they write, read, drop and measure). The counters are relaxed
//! atomics: a snapshot is a consistent view of each field, not of all fields at one instant.
//! They live while the peer is tracked and add up over all its connections, so a connection
//! that replaces another, or a reconnection, continues the same counts. A peer that leaves
//! every tracked set is forgotten with its counters.
//!
//! # Security
//!
//! The status holds counts and one `&'static str` reason, nothing the peer chose: its memory
//! is fixed per tracked peer, and tracked peers are the application's choice. Labels of the
//! `metrics` counters stay peer-free; the per-peer view is only returned to the caller.

use crate::metrics::Fate;
use commonware_p2p::Address;
use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

/// A tracked peer as the node sees it now.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PeerStatus<P> {
    /// The peer's key.
    pub peer: P,
    /// Where it is dialed, if an address is known.
    pub address: Option<Address>,
    /// Whether it is in a tracked set's primary list (dialed) rather than only its secondary
    /// one (allowed to connect).
    pub primary: bool,
    /// What the node is doing about it.
    pub state: PeerState,
    /// Dials of it that failed in a row (reset by a connection that lasts).
    pub dial_failures: u32,
    /// Payload bytes queued towards it, not yet written.
    pub queued_bytes: usize,
    /// What went to and came from it, over all its connections while tracked.
    pub traffic: Traffic,
}

/// What the node is doing about one tracked peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerState {
    /// An authenticated connection is in use.
    Connected {
        /// When it was registered.
        since: SystemTime,
        /// Whether this node dialed it (rather than accepted it).
        dialed: bool,
    },
    /// A dial is under way.
    Dialing,
    /// Blocked: no connection either way until the block expires.
    Blocked,
    /// Not connected: waiting for the next dial (or for the peer to dial, when it is the
    /// pair's first to dial or only a secondary peer).
    Disconnected,
}

impl PeerState {
    /// A short name: `connected`, `dialing`, `blocked` or `disconnected`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Connected { .. } => "connected",
            Self::Dialing => "dialing",
            Self::Blocked => "blocked",
            Self::Disconnected => "disconnected",
        }
    }
}

/// Counts of one peer's traffic, over all its connections while tracked. Messages and
/// payload bytes are those of the application's channels (not pings, framing or the
/// handshake).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Traffic {
    /// Messages written to it.
    pub messages_sent: u64,
    /// Their payload bytes.
    pub bytes_sent: u64,
    /// Messages from it handed to a channel's backlog.
    pub messages_received: u64,
    /// Their payload bytes.
    pub bytes_received: u64,
    /// Sends refused because the queue towards it was full (messages or bytes).
    pub dropped_queue_full: u64,
    /// Sends refused by a channel's quota towards it.
    pub dropped_rate_limited_outbound: u64,
    /// Messages queued towards it whose connection ended before they were written.
    pub dropped_disconnected: u64,
    /// Messages from it over a channel's quota by more than the reader waits.
    pub dropped_rate_limited_inbound: u64,
    /// Messages from it dropped because a channel's backlog was full.
    pub dropped_backlog_full: u64,
    /// Connections registered with it.
    pub connections: u64,
    /// The newest ping round trip, if one has completed.
    pub rtt: Option<Duration>,
    /// Why its newest connection ended (a `connections_closed` reason), if one has.
    pub last_closed: Option<&'static str>,
}

impl Traffic {
    /// The drops by reason, those that happened: `queue_full`, `rate_limited_outbound`,
    /// `disconnected`, `rate_limited_inbound`, `backlog_full`.
    pub fn drops(&self) -> impl Iterator<Item = (&'static str, u64)> {
        [
            ("queue_full", self.dropped_queue_full),
            ("rate_limited_outbound", self.dropped_rate_limited_outbound),
            ("disconnected", self.dropped_disconnected),
            ("rate_limited_inbound", self.dropped_rate_limited_inbound),
            ("backlog_full", self.dropped_backlog_full),
        ]
        .into_iter()
        .filter(|(_, count)| *count > 0)
    }
}

/// Index of each counter in [`TrafficCounters::counts`].
#[derive(Clone, Copy)]
enum Count {
    MessagesSent,
    BytesSent,
    MessagesReceived,
    BytesReceived,
    QueueFull,
    RateLimitedOutbound,
    Disconnected,
    RateLimitedInbound,
    BacklogFull,
    Connections,
}

const COUNTS: usize = Count::Connections as usize + 1;

/// The live counters behind one peer's [`Traffic`].
#[derive(Debug, Default)]
pub(crate) struct TrafficCounters {
    counts: [AtomicU64; COUNTS],
    /// The newest round trip in nanoseconds plus one (0: none yet).
    rtt: AtomicU64,
    last_closed: Mutex<Option<&'static str>>,
}

impl TrafficCounters {
    fn add(&self, count: Count, value: u64) {
        self.counts[count as usize].fetch_add(value, Ordering::Relaxed);
    }

    fn get(&self, count: Count) -> u64 {
        self.counts[count as usize].load(Ordering::Relaxed)
    }

    /// Counts one message's fate (the same fates as the `messages` metric).
    pub(crate) fn message(&self, fate: Fate, bytes: usize) {
        let (messages, payload) = match fate {
            Fate::Sent => (Count::MessagesSent, Some(Count::BytesSent)),
            Fate::Received => (Count::MessagesReceived, Some(Count::BytesReceived)),
            Fate::QueueFull => (Count::QueueFull, None),
            Fate::RateLimitedOutbound => (Count::RateLimitedOutbound, None),
            Fate::DroppedDisconnected => (Count::Disconnected, None),
            Fate::RateLimitedInbound => (Count::RateLimitedInbound, None),
            Fate::BacklogFull => (Count::BacklogFull, None),
            // Held, then counted again as received or dropped; or ends the connection, whose
            // reason says so.
            Fate::DelayedInbound | Fate::UnknownChannel => return,
        };
        self.add(messages, 1);
        if let Some(payload) = payload {
            self.add(payload, bytes as u64);
        }
    }

    /// A connection with the peer was registered.
    pub(crate) fn opened(&self) {
        self.add(Count::Connections, 1);
    }

    /// A registered connection with the peer ended for `reason`.
    pub(crate) fn closed(&self, reason: &'static str) {
        *self
            .last_closed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(reason);
    }

    /// A ping round trip completed.
    pub(crate) fn rtt(&self, rtt: Duration) {
        let nanos = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX - 1);
        self.rtt.store(nanos + 1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Traffic {
        let rtt = match self.rtt.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos - 1)),
        };
        Traffic {
            messages_sent: self.get(Count::MessagesSent),
            bytes_sent: self.get(Count::BytesSent),
            messages_received: self.get(Count::MessagesReceived),
            bytes_received: self.get(Count::BytesReceived),
            dropped_queue_full: self.get(Count::QueueFull),
            dropped_rate_limited_outbound: self.get(Count::RateLimitedOutbound),
            dropped_disconnected: self.get(Count::Disconnected),
            dropped_rate_limited_inbound: self.get(Count::RateLimitedInbound),
            dropped_backlog_full: self.get(Count::BacklogFull),
            connections: self.get(Count::Connections),
            rtt,
            last_closed: *self
                .last_closed
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fate_lands_in_its_own_count() {
        let counters = TrafficCounters::default();
        counters.message(Fate::Sent, 10);
        counters.message(Fate::Sent, 5);
        counters.message(Fate::Received, 7);
        counters.message(Fate::QueueFull, 100);
        counters.message(Fate::RateLimitedOutbound, 0);
        counters.message(Fate::DroppedDisconnected, 3);
        counters.message(Fate::RateLimitedInbound, 4);
        counters.message(Fate::BacklogFull, 4);
        counters.message(Fate::DelayedInbound, 4);
        counters.message(Fate::UnknownChannel, 4);
        counters.opened();
        counters.closed("silence");
        counters.rtt(Duration::from_millis(80));
        let traffic = counters.snapshot();
        assert_eq!(
            traffic.drops().collect::<Vec<_>>(),
            [
                ("queue_full", 1),
                ("rate_limited_outbound", 1),
                ("disconnected", 1),
                ("rate_limited_inbound", 1),
                ("backlog_full", 1)
            ]
        );
        assert_eq!(Traffic::default().drops().count(), 0);
        assert_eq!(
            traffic,
            Traffic {
                messages_sent: 2,
                bytes_sent: 15,
                messages_received: 1,
                bytes_received: 7,
                dropped_queue_full: 1,
                dropped_rate_limited_outbound: 1,
                dropped_disconnected: 1,
                dropped_rate_limited_inbound: 1,
                dropped_backlog_full: 1,
                connections: 1,
                rtt: Some(Duration::from_millis(80)),
                last_closed: Some("silence"),
            }
        );
    }

    #[test]
    fn a_zero_round_trip_is_not_mistaken_for_none() {
        let counters = TrafficCounters::default();
        assert_eq!(counters.snapshot().rtt, None);
        counters.rtt(Duration::ZERO);
        assert_eq!(counters.snapshot().rtt, Some(Duration::ZERO));
    }
}
