//! The event log of a run: what happened, when, to which node and link, as one JSON object
//! per line (NDJSON). `simulate --record FILE` writes it; `simulate --view FILE` replays it.
//!
//! # Format
//!
//! Every line is one [`Record`], an object whose `type` field says which. Times are simulated
//! seconds since the run began (`at_seconds`). Nodes are indices: members `0..nodes`, then
//! the outsiders. A link is directed: `from`'s view of its peer `to`.
//!
//! 1. `start` ([`Start`]), once, first: the format version, the seed, the stack, the whole
//!    scenario, and every node's key and address.
//! 2. Then, in simulated-time order:
//!    - `fault` ([`FaultRecord`]): a fault as it is applied (partition, heal, crash, restart,
//!      resets); the fields after `at_seconds` are the scenario's own fault format.
//!    - `link` ([`LinkChange`]): a node's view of a peer changed state (see [`LinkState`]),
//!      or a connection to it opened or closed (with the reason), checked every sample
//!      interval of the scenario (100 ms by default).
//!    - `sample` ([`Sample`]): every recording interval (1 s by default) and at the end,
//!      each node's counters and the counters of every link that changed since the previous
//!      sample. A node's counters are cumulative since the start of the run, over all its
//!      incarnations; a link's are its node's current incarnation's (they start again from
//!      zero when the node restarts), except `delivered`, which covers the whole run.
//! 3. `end` ([`End`]), once, last: the report's totals and the run's digest. The last
//!    sample's node counters add up to these totals: `delivered` to `messages.delivered`,
//!    `handshakes` to `handshakes`, `connections_closed` to `connections_closed`.
//!
//! # Determinism
//!
//! Nothing in the log depends on the wall clock: the same scenario and seed give the same
//! file, byte for byte (the report's `wall_seconds` is left out for that reason).
//!
//! # Reading
//!
//! [`read`] parses a log and checks its shape (a `start` first, one at most, known version,
//! times that never go back); an error names the line.

use crate::{
    Fault, Scenario, Violations,
    report::{LatencySummary, Mesh, Messages, NetworkSummary},
};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, io::BufRead};

/// The version of the format [`Start::version`] names; readers refuse others.
pub const FORMAT_VERSION: u32 = 1;

/// Longest line [`read`] takes: a sample of a large run is long, but not this long.
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// Most nodes a log [`read`] takes may name (a run of that size is far beyond one machine).
pub const MAX_NODES: usize = 100_000;

/// Latest time a record [`read`] takes may have: about 31 years of simulated time.
pub const MAX_AT_SECONDS: f64 = 1e9;

/// One line of the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// The run's settings; the first line.
    Start(Start),
    /// A fault applied.
    Fault(FaultRecord),
    /// A change in one node's view of one peer.
    Link(LinkChange),
    /// Counters of every node and of the links that changed.
    Sample(Sample),
    /// The report's totals; the last line.
    End(End),
}

impl Record {
    /// When it happened, in simulated seconds since the start (0 for `start`).
    pub fn at_seconds(&self) -> f64 {
        match self {
            Self::Start(_) => 0.0,
            Self::Fault(fault) => fault.fault.at.as_secs_f64(),
            Self::Link(change) => change.at_seconds,
            Self::Sample(sample) => sample.at_seconds,
            Self::End(end) => end.at_seconds,
        }
    }
}

/// The run's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Start {
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// The runtime's seed.
    pub seed: u64,
    /// The p2p stack every node ran (`palisade`, `lookup-recommended`, `lookup-local`).
    pub stack: String,
    /// Simulated seconds between samples.
    pub record_interval_seconds: f64,
    /// What was run.
    pub scenario: Scenario,
    /// Every node, by index.
    pub nodes: Vec<NodeInfo>,
}

/// One node of the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Its index.
    pub index: usize,
    /// Whether it is in the peer set (an outsider is not).
    pub member: bool,
    /// Its public key, in hex.
    pub key: String,
    /// Its listening address.
    pub address: String,
}

/// A fault as it was applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// The fault, in the scenario's format (`at_seconds`, `kind` and its fields).
    #[serde(flatten)]
    pub fault: Fault,
}

/// What a node's view of one peer shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// An authenticated connection is in use.
    Connected,
    /// A dial is under way.
    Dialing,
    /// Not connected, and the last dials failed (refused, timed out, or handshake failed).
    Refused,
    /// A partition lies between the two.
    Partitioned,
    /// The node blocked the peer.
    Blocked,
    /// Not connected, no dial failed: waiting to dial, or for the peer to dial.
    Idle,
    /// The node itself is down.
    Down,
}

/// A change in node `from`'s view of peer `to`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkChange {
    /// When it was seen.
    pub at_seconds: f64,
    /// The node whose view it is.
    pub from: usize,
    /// The peer.
    pub to: usize,
    /// The view now.
    pub state: LinkState,
    /// Connections `from` has registered with `to` so far (in this incarnation of `from`).
    pub connections: u64,
    /// Why the newest of them ended, if one has (a `connections_closed` reason).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub closed_reason: Option<String>,
}

/// Counters of every node and of the links that changed since the previous sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When it was taken.
    pub at_seconds: f64,
    /// Pairs of members connected to each other (both ends count the connection).
    pub connected_pairs: u64,
    /// Pairs of members that are up.
    pub possible_pairs: u64,
    /// Invariant violations so far (all zero in a correct run).
    pub violations: Violations,
    /// How far consensus has come, when the run has it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub consensus: Option<ConsensusProgress>,
    /// Every node, by index.
    pub nodes: Vec<NodeCounters>,
    /// The links whose counters changed since the previous sample, by `(from, to)`.
    pub links: Vec<LinkCounters>,
}

/// One node's counters, cumulative over its incarnations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeCounters {
    /// Its index.
    pub node: usize,
    /// Whether it runs now.
    pub up: bool,
    /// How many times it was restarted.
    pub incarnation: u32,
    /// Peers it has a connection with now (0 while down).
    pub connected_peers: u64,
    /// Channel messages by `direction fate` (`outbound sent`, `inbound received`,
    /// `outbound dropped_full`, ...), as its `messages` metric counts them.
    pub messages: BTreeMap<String, u64>,
    /// Channel payload bytes it wrote.
    pub bytes_sent: u64,
    /// Channel payload bytes it received.
    pub bytes_received: u64,
    /// Workload messages its application received, each checked.
    pub delivered: u64,
    /// Handshakes by `direction outcome reason` (`dialer ok`, `listener failed timeout`, ...).
    pub handshakes: BTreeMap<String, u64>,
    /// Ended connections by reason.
    pub connections_closed: BTreeMap<String, u64>,
    /// The median of its peers' newest ping round trips, in milliseconds, while up.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rtt_ms: Option<f64>,
    /// With consensus: the highest view this member saw finalized.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub finalized_view: Option<u64>,
}

/// Consensus so far, over all members.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsensusProgress {
    /// Views with a finalization.
    pub finalized_views: u64,
    /// The highest finalized view.
    pub highest_view: u64,
    /// Median proposal-to-finalization time so far, simulated milliseconds.
    pub latency_p50_ms: f64,
    /// Its 99th percentile.
    pub latency_p99_ms: f64,
}

/// Node `from`'s counters for peer `to` (its current incarnation's, while tracked).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkCounters {
    /// The node.
    pub from: usize,
    /// The peer.
    pub to: usize,
    /// Channel messages written to `to`.
    pub messages_sent: u64,
    /// Their payload bytes.
    pub bytes_sent: u64,
    /// Channel messages received from `to`.
    pub messages_received: u64,
    /// Their payload bytes.
    pub bytes_received: u64,
    /// Workload messages from `to` that `from`'s application received (over the whole run).
    pub delivered: u64,
    /// Drops by reason (`queue_full`, `rate_limited_outbound`, `disconnected`,
    /// `rate_limited_inbound`, `backlog_full`); only those that happened.
    pub dropped: BTreeMap<String, u64>,
    /// Payload bytes queued towards `to`, not yet written.
    pub queued_bytes: u64,
    /// The newest ping round trip, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rtt_ms: Option<f64>,
}

/// The report's figures that the log must agree with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct End {
    /// The end of the run.
    pub at_seconds: f64,
    /// The run's fingerprint ([`crate::Report::digest`]).
    pub digest: String,
    /// How the mesh formed and recovered.
    pub mesh: Mesh,
    /// What happened to the workload's messages.
    pub messages: Messages,
    /// Invariant violations (all zero in a correct run).
    pub violations: Violations,
    /// Delivery latency.
    pub latency: LatencySummary,
    /// Handshakes by `direction outcome reason`, over all nodes.
    pub handshakes: BTreeMap<String, u64>,
    /// Ended connections by reason, over all nodes.
    pub connections_closed: BTreeMap<String, u64>,
    /// What the simulated network carried and cut.
    pub network: NetworkSummary,
    /// The consensus figures, when the run has consensus.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub consensus: Option<crate::consensus::Summary>,
}

impl End {
    /// The report's figures, at `at_seconds` (when the run ended: its duration, or a little
    /// after when its last step ran past it).
    pub fn of(report: &crate::Report, at_seconds: f64) -> Self {
        Self {
            at_seconds,
            digest: report.digest.clone(),
            mesh: report.mesh.clone(),
            messages: report.messages.clone(),
            violations: report.violations,
            latency: report.latency,
            handshakes: report.handshakes.clone(),
            connections_closed: report.connections_closed.clone(),
            network: report.network,
            consensus: report.consensus.clone(),
        }
    }
}

/// A log that [`read`] refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The log could not be read.
    #[error("cannot read the log: {0}")]
    Io(#[from] std::io::Error),
    /// Line `line` (from 1) is not a record, or not where it may be.
    #[error("line {line}: {reason}")]
    Line {
        /// The line's number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The log has no line at all.
    #[error("the log is empty")]
    Empty,
}

/// Reads a whole log: every record, in order, after checking that it starts with one
/// `start` of [`FORMAT_VERSION`] naming at most [`MAX_NODES`] nodes, has no second `start`,
/// nothing after an `end`, times that never go back (nor past [`MAX_AT_SECONDS`]), and names
/// only nodes the `start` lists. A log without `end` (a run cut short) is accepted.
///
/// # Errors
/// The first line that is not a record or breaks those rules, a line over
/// [`MAX_LINE_BYTES`], or the reader's error.
pub fn read(mut reader: impl BufRead) -> Result<Vec<Record>, ReadError> {
    let mut records = Vec::new();
    let mut last_at = 0.0f64;
    let mut ended = false;
    let mut line = String::new();
    let mut number = 0;
    loop {
        line.clear();
        number += 1;
        let read = match std::io::Read::take(&mut reader, MAX_LINE_BYTES as u64 + 1)
            .read_line(&mut line)
        {
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::InvalidData => {
                return Err(ReadError::Line {
                    line: number,
                    reason: "not UTF-8 text".into(),
                });
            }
            Err(error) => return Err(error.into()),
        };
        if read == 0 {
            break;
        }
        let fail = |reason: String| ReadError::Line {
            line: number,
            reason,
        };
        if line.len() > MAX_LINE_BYTES {
            return Err(fail(format!("longer than {MAX_LINE_BYTES} bytes")));
        }
        let text = line.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        let record: Record =
            serde_json::from_str(text).map_err(|error| fail(format!("not a record: {error}")))?;
        match (&record, records.is_empty()) {
            (Record::Start(start), true) if start.version != FORMAT_VERSION => {
                return Err(fail(format!(
                    "format version {} (this build reads version {FORMAT_VERSION})",
                    start.version
                )));
            }
            (Record::Start(_), true) => {}
            (_, true) => return Err(fail("the first record is not `start`".into())),
            (Record::Start(_), false) => return Err(fail("a second `start`".into())),
            _ if ended => return Err(fail("a record after `end`".into())),
            _ => {}
        }
        let at = record.at_seconds();
        if !at.is_finite() || at < last_at {
            return Err(fail(format!(
                "at {at} s, before the record above it ({last_at} s)"
            )));
        }
        if at > MAX_AT_SECONDS {
            return Err(fail(format!("at {at} s, past {MAX_AT_SECONDS} s")));
        }
        let nodes = match (&record, records.first()) {
            (Record::Start(start), _) => start.nodes.len(),
            (_, Some(Record::Start(start))) => start.nodes.len(),
            _ => 0,
        };
        if nodes > MAX_NODES {
            return Err(fail(format!("{nodes} nodes, more than {MAX_NODES}")));
        }
        if let Some(node) = named_nodes(&record).find(|&node| node >= nodes) {
            return Err(fail(format!("node {node}, of {nodes} nodes")));
        }
        last_at = at;
        ended = matches!(record, Record::End(_));
        records.push(record);
    }
    if records.is_empty() {
        return Err(ReadError::Empty);
    }
    Ok(records)
}

/// Every node index `record` names.
fn named_nodes(record: &Record) -> Box<dyn Iterator<Item = usize> + '_> {
    use crate::Action;
    match record {
        Record::Start(start) => Box::new(start.nodes.iter().map(|node| node.index)),
        Record::Fault(fault) => match &fault.fault.action {
            Action::Partition { groups } => Box::new(groups.iter().flatten().copied()),
            Action::Crash { node } | Action::Restart { node } => Box::new([*node].into_iter()),
            Action::Heal | Action::Resets { .. } => Box::new(std::iter::empty()),
        },
        Record::Link(change) => Box::new([change.from, change.to].into_iter()),
        Record::Sample(sample) => Box::new(
            sample
                .nodes
                .iter()
                .map(|node| node.node)
                .chain(sample.links.iter().flat_map(|link| [link.from, link.to])),
        ),
        Record::End(_) => Box::new(std::iter::empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Action;
    use std::time::Duration;

    fn start_line() -> String {
        let start = Record::Start(Start {
            version: FORMAT_VERSION,
            seed: 3,
            stack: "palisade".into(),
            record_interval_seconds: 1.0,
            scenario: Scenario::standard(4, Duration::from_secs(10)),
            nodes: (0..3)
                .map(|index| NodeInfo {
                    index,
                    member: true,
                    key: "ab".into(),
                    address: format!("10.0.0.{}:9000", index + 1),
                })
                .collect(),
        });
        serde_json::to_string(&start).unwrap()
    }

    fn fault_line(at: u64) -> String {
        serde_json::to_string(&Record::Fault(FaultRecord {
            fault: Fault {
                at: Duration::from_secs(at),
                action: Action::Crash { node: 2 },
            },
        }))
        .unwrap()
    }

    #[test]
    fn records_read_back_as_written() {
        let fault = fault_line(4);
        assert!(
            fault.starts_with(r#"{"type":"fault","at_seconds":4.0,"kind":"crash","node":2"#),
            "{fault}"
        );
        let link = serde_json::to_string(&Record::Link(LinkChange {
            at_seconds: 4.5,
            from: 1,
            to: 2,
            state: LinkState::Refused,
            connections: 1,
            closed_reason: Some("closed".into()),
        }))
        .unwrap();
        let log = format!("{}\n{fault}\n\n{link}\n", start_line());
        let records = read(log.as_bytes()).unwrap();
        assert_eq!(records.len(), 3);
        assert!(
            matches!(&records[1], Record::Fault(f) if f.fault.action == Action::Crash { node: 2 })
        );
        assert!(
            matches!(&records[2], Record::Link(l) if l.state == LinkState::Refused && l.to == 2)
        );
    }

    #[test]
    fn a_bad_log_is_refused_naming_the_line() {
        let start = start_line();
        let cases = [
            (
                format!("{start}\n{{\"type\":\"fault\"\n"),
                2,
                "not a record",
            ),
            (format!("{start}\nnot json\n"), 2, "not a record"),
            (
                format!("{}\n", fault_line(1)),
                1,
                "first record is not `start`",
            ),
            (format!("{start}\n{start}\n"), 2, "a second `start`"),
            (
                format!("{start}\n{}\n{}\n", fault_line(5), fault_line(4)),
                3,
                "before the record above it",
            ),
            (
                start.replace("\"version\":1", "\"version\":99") + "\n",
                1,
                "format version 99",
            ),
            (
                format!(
                    "{start}\n{}\n",
                    fault_line(1).replace("\"node\":2", "\"node\":7")
                ),
                2,
                "node 7, of 3 nodes",
            ),
            (
                format!(
                    "{start}\n{}\n",
                    fault_line(1).replace("\"at_seconds\":1.0", "\"at_seconds\":1e12")
                ),
                2,
                "past",
            ),
        ];
        for (log, line, reason) in cases {
            match read(log.as_bytes()) {
                Err(ReadError::Line {
                    line: at,
                    reason: why,
                }) => {
                    assert_eq!(at, line, "{why}");
                    assert!(why.contains(reason), "{why}");
                }
                other => panic!("{log}: {other:?}"),
            }
        }
        assert!(matches!(read(&b""[..]), Err(ReadError::Empty)));
        assert!(matches!(read(&b"\n\n"[..]), Err(ReadError::Empty)));
        let binary = format!("{start}\n")
            .into_bytes()
            .into_iter()
            .chain([0xff, b'\n']);
        match read(&binary.collect::<Vec<u8>>()[..]) {
            Err(ReadError::Line { line: 2, reason }) => assert!(reason.contains("UTF-8")),
            other => panic!("{other:?}"),
        }
    }
}
