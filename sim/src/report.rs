//! What a run reports: the figures a person reads at the end of `simulate`, and the same as
//! JSON for tools.
//!
//! Everything but `wall_seconds` comes from the simulated world, so two runs of one scenario
//! on one seed give the same report except for that field.

use crate::{Scenario, Violations, network::Stats};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, fmt};

/// The outcome of one run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The runtime's seed.
    pub seed: u64,
    /// What was run.
    pub scenario: Scenario,
    /// Wall-clock time the run took (the one figure that varies between identical runs).
    pub wall_seconds: f64,
    /// Fingerprint of the run: a hash of the runtime auditor's state and of every byte
    /// written into the simulated network. Same seed and scenario, same digest.
    pub digest: String,
    /// How the mesh formed and recovered.
    pub mesh: Mesh,
    /// Connected member pairs, once per simulated second.
    pub connected_pairs: Vec<PairsAt>,
    /// What happened to the workload's messages.
    pub messages: Messages,
    /// Invariant violations (all zero in a correct run).
    pub violations: Violations,
    /// Delivery latency in simulated time, from the send call to the receiver's `recv`.
    pub latency: LatencySummary,
    /// Handshakes by `direction outcome reason`, over all nodes and incarnations.
    pub handshakes: BTreeMap<String, u64>,
    /// Ended connections by reason, over all nodes.
    pub connections_closed: BTreeMap<String, u64>,
    /// What the simulated network carried and cut.
    pub network: NetworkSummary,
    /// Consensus figures, when the scenario runs consensus.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consensus: Option<crate::consensus::Summary>,
}

/// How the mesh formed and recovered. A mesh is full when every pair of members that are up
/// is connected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mesh {
    /// Simulated seconds from the start to the first full mesh.
    pub first_full_after_seconds: Option<f64>,
    /// When the last fault was over (seconds since the start).
    pub last_fault_over_at_seconds: Option<f64>,
    /// Simulated seconds from the last fault being over to a full mesh again.
    pub restored_after_seconds: Option<f64>,
    /// The bound the mesh must come back within after the last fault
    /// ([`Scenario::mesh_bound`]).
    pub bound_seconds: f64,
    /// Whether the mesh was full at the end.
    pub full_at_end: bool,
}

/// Connected pairs at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PairsAt {
    /// Simulated seconds since the start.
    pub at_seconds: u64,
    /// Pairs of members connected to each other (as both ends count them).
    pub connected: u64,
    /// Pairs of members that are up.
    pub possible: u64,
}

/// What happened to the workload's messages; one message to one peer counts once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Messages {
    /// Broadcasts × the other members: every delivery the workload asked for.
    pub sent: u64,
    /// Deliveries to the receiving application (each checked in order and exactly once).
    pub delivered: u64,
    /// Why the rest were not delivered:
    /// - `no_connection`: the recipient was not connected when the message was sent;
    /// - `rate_limited_outbound`, `queue_full`: refused by the sender's quota or queue;
    /// - `dropped_disconnected`: queued, but the connection ended before it was written;
    /// - `rate_limited_inbound`, `backlog_full`: dropped by the receiver's quota (over it by
    ///   more than the receiver waits) or its full backlog;
    /// - `cut_in_flight`: written, but the connection was cut before it arrived (or still in
    ///   flight, or waiting for the receiver's quota, when the run ended).
    pub not_delivered: BTreeMap<String, u64>,
    /// Broadcasts by outsiders, and to how many members they were handed (always 0: no
    /// member ever connects to an outsider).
    pub outsider_broadcasts: u64,
    /// Members an outsider's broadcasts were handed to.
    pub outsider_recipients: u64,
}

/// Latency quantiles in simulated milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Deliveries measured.
    pub samples: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

/// What the simulated network did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSummary {
    /// Bytes written into connections (handshakes, records, pings).
    pub bytes_written: u64,
    /// Dials that connected.
    pub dials_connected: u64,
    /// Dials refused (node down or not listening, or its backlog full).
    pub dials_refused: u64,
    /// Dials across a partition.
    pub dials_unreachable: u64,
    /// Connections cut by faults.
    pub connections_reset: u64,
    /// Segment retransmissions the links' loss caused.
    pub retransmissions: u64,
}

impl From<Stats> for NetworkSummary {
    fn from(stats: Stats) -> Self {
        Self {
            bytes_written: stats.bytes_written,
            dials_connected: stats.dials_connected,
            dials_refused: stats.dials_refused,
            dials_unreachable: stats.dials_unreachable,
            connections_reset: stats.connections_reset,
            retransmissions: stats.retransmissions,
        }
    }
}

fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "never".to_string(), |s| format!("{s:.2} s"))
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scenario = &self.scenario;
        writeln!(
            f,
            "palisade simulation: {} members + {} outsiders, {:.0} simulated s, seed {}",
            scenario.nodes,
            scenario.outsiders,
            scenario.duration.as_secs_f64(),
            self.seed
        )?;
        let mesh = &self.mesh;
        writeln!(f, "\nmesh")?;
        writeln!(
            f,
            "  first full mesh after            {}",
            seconds(mesh.first_full_after_seconds)
        )?;
        if let Some(at) = mesh.last_fault_over_at_seconds {
            writeln!(
                f,
                "  back to full after last fault    {} (last fault over at {at:.2} s; bound {:.2} s)",
                seconds(mesh.restored_after_seconds),
                mesh.bound_seconds
            )?;
        }
        writeln!(f, "  full at the end                  {}", mesh.full_at_end)?;
        writeln!(f, "  connected pairs over time (every 5 s):")?;
        let line: Vec<String> = self
            .connected_pairs
            .iter()
            .filter(|pairs| pairs.at_seconds % 5 == 0)
            .map(|pairs| {
                format!(
                    "{}s {}/{}",
                    pairs.at_seconds, pairs.connected, pairs.possible
                )
            })
            .collect();
        for chunk in line.chunks(6) {
            writeln!(f, "    {}", chunk.join("  "))?;
        }
        let messages = &self.messages;
        writeln!(f, "\nmessages (one message to one member counts once)")?;
        writeln!(f, "  sent                             {}", messages.sent)?;
        writeln!(
            f,
            "  delivered                        {} ({:.2}%)",
            messages.delivered,
            percent(messages.delivered, messages.sent)
        )?;
        for (reason, count) in &messages.not_delivered {
            writeln!(f, "    not delivered: {reason:<28}{count}")?;
        }
        writeln!(
            f,
            "  outsider broadcasts              {} (handed to {} members)",
            messages.outsider_broadcasts, messages.outsider_recipients
        )?;
        let latency = &self.latency;
        writeln!(
            f,
            "  latency (simulated)              p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            latency.p50_ms, latency.p99_ms, latency.max_ms
        )?;
        let v = &self.violations;
        writeln!(
            f,
            "  invariants                       {}",
            if v.none() {
                "held (no outsider, duplicate, reordering, or forgery)".to_string()
            } else {
                format!("VIOLATED: {v:?}")
            }
        )?;
        if let Some(consensus) = &self.consensus {
            write!(f, "{consensus}")?;
        }
        writeln!(f, "\nhandshakes")?;
        for (kind, count) in &self.handshakes {
            writeln!(f, "  {kind:<32} {count}")?;
        }
        writeln!(f, "\nconnections closed")?;
        for (reason, count) in &self.connections_closed {
            writeln!(f, "  {reason:<32} {count}")?;
        }
        let network = &self.network;
        writeln!(f, "\nnetwork")?;
        writeln!(
            f,
            "  bytes written                    {}",
            network.bytes_written
        )?;
        writeln!(
            f,
            "  dials connected / refused / unreachable   {} / {} / {}",
            network.dials_connected, network.dials_refused, network.dials_unreachable
        )?;
        writeln!(
            f,
            "  connections cut by faults        {}",
            network.connections_reset
        )?;
        if scenario.loss_percent > 0.0 {
            writeln!(
                f,
                "  retransmissions ({}% loss)        {}",
                scenario.loss_percent, network.retransmissions
            )?;
        }
        writeln!(f, "\ndigest {}", self.digest)?;
        write!(f, "wall time {:.1} s", self.wall_seconds)
    }
}
