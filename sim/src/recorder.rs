//! Turns a running simulation into the records of its event log ([`crate::record`]).
//!
//! The run hands the recorder what it already observes: each fault as it is applied, the
//! metrics text of a crashing node, and at every sample of the scenario each node's view of
//! its peers (`Oracle::peers`), the runtime's metrics text and the deliveries. The recorder
//! keeps the last view of every link and the last counters it wrote, and writes only what
//! changed: link records at every sample, counters every recording interval.
//!
//! Everything it keeps is ordered (`BTreeMap`) and comes from the simulated world, so the
//! records are the same for the same seed.

use crate::{
    Fault,
    metrics_text::{self, Totals},
    record::{LinkChange, LinkCounters, LinkState, NodeCounters, Record, Sample},
    run::by_labels,
};
use commonware_cryptography::ed25519;
use palisade_p2p::{PeerState, PeerStatus};
use std::{collections::BTreeMap, time::Duration};

/// Called with every record of a run, in order.
pub type RecordFn = Box<dyn FnMut(&Record) + Send>;

type Pk = ed25519::PublicKey;

/// What the run shows the recorder of one node at a sample.
pub(crate) struct NodeView {
    pub(crate) up: bool,
    pub(crate) incarnation: u32,
    /// Its peers as its p2p stack lists them (`None` for the reference stack).
    pub(crate) peers: Option<Vec<PeerStatus<Pk>>>,
}

/// Everything a sample reads.
pub(crate) struct Observation<'a> {
    pub(crate) now: Duration,
    pub(crate) nodes: &'a [NodeView],
    /// The index of each member's key.
    pub(crate) members: &'a BTreeMap<Pk, usize>,
    /// Whether two nodes can reach each other (no partition between them).
    pub(crate) reachable: &'a dyn Fn(usize, usize) -> bool,
    /// The runtime's metrics text.
    pub(crate) text: &'a str,
    /// Deliveries to each node by sender.
    pub(crate) delivered: &'a dyn Fn(usize) -> Vec<(usize, u64)>,
    pub(crate) connected_pairs: u64,
    pub(crate) possible_pairs: u64,
    /// Invariant violations so far.
    pub(crate) violations: crate::Violations,
    /// With consensus: its progress, and each node's highest finalized view.
    pub(crate) consensus: Option<(crate::record::ConsensusProgress, Vec<Option<u64>>)>,
}

/// One node's last-seen view of one peer.
#[derive(Clone, PartialEq, Eq)]
struct View {
    state: LinkState,
    connections: u64,
    closed_reason: Option<&'static str>,
}

pub(crate) struct Recorder {
    sink: RecordFn,
    every: Duration,
    next_sample: Duration,
    /// When the newest sample was taken.
    last_sample: Option<Duration>,
    /// Counters of each node's crashed incarnations.
    retired: BTreeMap<usize, Totals>,
    views: BTreeMap<(usize, usize), View>,
    counters: BTreeMap<(usize, usize), LinkCounters>,
}

impl Recorder {
    pub(crate) fn new(sink: RecordFn, every: Duration) -> Self {
        Self {
            sink,
            every: every.max(Duration::from_millis(1)),
            next_sample: Duration::ZERO,
            last_sample: None,
            retired: BTreeMap::new(),
            views: BTreeMap::new(),
            counters: BTreeMap::new(),
        }
    }

    pub(crate) fn write(&mut self, record: &Record) {
        (self.sink)(record);
    }

    pub(crate) fn fault(&mut self, fault: &Fault) {
        self.write(&Record::Fault(crate::record::FaultRecord {
            fault: fault.clone(),
        }));
    }

    /// Node `node`'s incarnation `incarnation` is crashing: keep its counters from `text`.
    pub(crate) fn retire(&mut self, node: usize, text: &str, incarnation: u32) {
        let totals = self.retired.entry(node).or_default();
        metrics_text::add_node(totals, text, node, incarnation);
    }

    /// Writes the link changes `observation` shows, and a sample when one is due (or
    /// `force`d, at the end).
    pub(crate) fn observe(&mut self, observation: &Observation<'_>, force: bool) {
        let at_seconds = observation.now.as_secs_f64();
        for (from, node) in observation.nodes.iter().enumerate() {
            let Some(peers) = &node.peers else {
                if !node.up {
                    self.down(from, at_seconds);
                }
                continue;
            };
            for (to, status) in by_index(peers, observation.members) {
                let state = link_state(status, (observation.reachable)(from, to));
                let view = View {
                    state,
                    connections: status.traffic.connections,
                    closed_reason: status.traffic.last_closed,
                };
                self.change(from, to, view, at_seconds);
            }
        }
        let due = observation.now >= self.next_sample;
        if (due || force) && self.last_sample != Some(observation.now) {
            self.last_sample = Some(observation.now);
            while self.next_sample <= observation.now {
                self.next_sample += self.every;
            }
            let sample = self.sample(observation);
            self.write(&Record::Sample(sample));
        }
    }

    /// Every link of `from` goes `Down` (it crashed).
    fn down(&mut self, from: usize, at_seconds: f64) {
        let links: Vec<(usize, View)> = self
            .views
            .range((from, 0)..=(from, usize::MAX))
            .filter(|(_, view)| view.state != LinkState::Down)
            .map(|(&(_, to), view)| {
                let view = View {
                    state: LinkState::Down,
                    ..view.clone()
                };
                (to, view)
            })
            .collect();
        for (to, view) in links {
            self.change(from, to, view, at_seconds);
        }
    }

    fn change(&mut self, from: usize, to: usize, view: View, at_seconds: f64) {
        if self.views.get(&(from, to)) == Some(&view) {
            return;
        }
        let record = Record::Link(LinkChange {
            at_seconds,
            from,
            to,
            state: view.state,
            connections: view.connections,
            closed_reason: view.closed_reason.map(str::to_string),
        });
        self.views.insert((from, to), view);
        self.write(&record);
    }

    fn sample(&mut self, observation: &Observation<'_>) -> Sample {
        // One pass over the text: each running node's current incarnation.
        let mut current: BTreeMap<usize, Totals> = BTreeMap::new();
        for sample in metrics_text::node_samples(observation.text) {
            let (Some(index), Some(incarnation)) = (sample.index, sample.incarnation) else {
                continue;
            };
            let Some(node) = observation.nodes.get(index) else {
                continue;
            };
            if node.up && node.incarnation == incarnation {
                *current
                    .entry(index)
                    .or_default()
                    .entry((sample.name.to_string(), sample.labels))
                    .or_default() += sample.value;
            }
        }
        let mut nodes = Vec::with_capacity(observation.nodes.len());
        let mut links = Vec::new();
        for (index, node) in observation.nodes.iter().enumerate() {
            let mut totals = self.retired.get(&index).cloned().unwrap_or_default();
            let running = current.remove(&index).unwrap_or_default();
            for (key, value) in &running {
                *totals.entry(key.clone()).or_default() += value;
            }
            let delivered = (observation.delivered)(index);
            let mut counters = node_counters(index, node, &totals, &running);
            counters.delivered = delivered.iter().map(|(_, count)| count).sum();
            counters.finalized_view = observation
                .consensus
                .as_ref()
                .and_then(|(_, views)| views.get(index).copied().flatten());
            if let Some(peers) = &node.peers {
                counters.rtt_ms = median_rtt_ms(peers);
                for (to, status) in by_index(peers, observation.members) {
                    let from_to = delivered
                        .iter()
                        .find(|(sender, _)| *sender == to)
                        .map_or(0, |(_, count)| *count);
                    let link = link_counters(index, to, status, from_to);
                    if self.counters.get(&(index, to)) != Some(&link) {
                        self.counters.insert((index, to), link.clone());
                        links.push(link);
                    }
                }
            }
            nodes.push(counters);
        }
        Sample {
            at_seconds: observation.now.as_secs_f64(),
            connected_pairs: observation.connected_pairs,
            possible_pairs: observation.possible_pairs,
            violations: observation.violations,
            consensus: observation
                .consensus
                .as_ref()
                .map(|(progress, _)| *progress),
            nodes,
            links,
        }
    }
}

/// The peers that are members, by index.
fn by_index<'a>(
    peers: &'a [PeerStatus<Pk>],
    members: &BTreeMap<Pk, usize>,
) -> Vec<(usize, &'a PeerStatus<Pk>)> {
    let mut indexed: Vec<_> = peers
        .iter()
        .filter_map(|status| Some((*members.get(&status.peer)?, status)))
        .collect();
    indexed.sort_unstable_by_key(|(index, _)| *index);
    indexed
}

/// What `status` shows, with the partition's say.
fn link_state(status: &PeerStatus<Pk>, reachable: bool) -> LinkState {
    match status.state {
        PeerState::Connected { .. } => LinkState::Connected,
        _ if !reachable => LinkState::Partitioned,
        PeerState::Blocked => LinkState::Blocked,
        PeerState::Dialing => LinkState::Dialing,
        _ if status.dial_failures > 0 => LinkState::Refused,
        _ => LinkState::Idle,
    }
}

fn node_counters(index: usize, node: &NodeView, totals: &Totals, running: &Totals) -> NodeCounters {
    let sum = |name: &str, with: &[(&str, &str)]| metrics_text::sum(totals, name, with) as u64;
    NodeCounters {
        node: index,
        up: node.up,
        incarnation: node.incarnation,
        connected_peers: metrics_text::sum(running, "connected_peers", &[]) as u64,
        messages: by_labels(totals, "messages_total", &["direction", "fate"]),
        bytes_sent: sum("bytes_total", &[("direction", "outbound")]),
        bytes_received: sum("bytes_total", &[("direction", "inbound")]),
        delivered: 0,
        handshakes: by_labels(
            totals,
            "handshakes_total",
            &["direction", "outcome", "reason"],
        ),
        connections_closed: by_labels(totals, "connections_closed_total", &["reason"]),
        rtt_ms: None,
        finalized_view: None,
    }
}

fn link_counters(from: usize, to: usize, status: &PeerStatus<Pk>, delivered: u64) -> LinkCounters {
    let traffic = &status.traffic;
    let dropped = traffic
        .drops()
        .map(|(reason, count)| (reason.to_string(), count))
        .collect();
    LinkCounters {
        from,
        to,
        messages_sent: traffic.messages_sent,
        bytes_sent: traffic.bytes_sent,
        messages_received: traffic.messages_received,
        bytes_received: traffic.bytes_received,
        delivered,
        dropped,
        queued_bytes: status.queued_bytes as u64,
        rtt_ms: traffic.rtt.map(milliseconds),
    }
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The median of the connected peers' newest round trips.
fn median_rtt_ms(peers: &[PeerStatus<Pk>]) -> Option<f64> {
    let mut rtts: Vec<Duration> = peers
        .iter()
        .filter(|status| matches!(status.state, PeerState::Connected { .. }))
        .filter_map(|status| status.traffic.rtt)
        .collect();
    rtts.sort_unstable();
    rtts.get(rtts.len() / 2).copied().map(milliseconds)
}
