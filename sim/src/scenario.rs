//! A scenario: what a simulated validator network looks like and what happens to it.
//!
//! A [`Scenario`] names the nodes, the links between them, a schedule of faults in simulated
//! time, and a workload (every node broadcasts messages of one size at one rate on one
//! channel). [`Scenario::validate`] checks it before anything runs and answers a bad one with
//! a [`ScenarioError`] that names the field; it never panics. Scenarios read from and write
//! to JSON (durations in seconds), so the `simulate` command takes the same scenarios as the
//! Rust API.
//!
//! Node `i` of a scenario has the address `10.x.y.z:9000` given by [`node_address`] and the
//! identity `ed25519::PrivateKey::from_seed(i)`. Outsiders come after the members: they run
//! the same stack, know the members' addresses, and are in no member's peer set, so none of
//! what they send may ever be delivered.

use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

/// The most nodes (members and outsiders) a scenario may have.
pub const MAX_NODES: usize = 10_000;

/// The smallest message the workload sends: sender, sequence number and send time.
pub const MIN_MESSAGE_BYTES: usize = crate::probe::HEADER_BYTES;

/// The most segments a scenario's links may lose, in percent: beyond half, TCP connections
/// stall far more than they move.
pub const MAX_LOSS_PERCENT: f64 = 50.0;

/// The largest message the workload sends (the p2p channel limit under the stream's 4 MiB).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// A simulated validator network and what happens to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Members of the peer set: they all know and connect to each other.
    pub nodes: usize,
    /// Nodes outside the peer set that try to connect and broadcast all the same.
    #[serde(default)]
    pub outsiders: usize,
    /// Simulated time the run lasts.
    #[serde(with = "seconds", rename = "duration_seconds")]
    pub duration: Duration,
    /// Fixed one-way delay of every link.
    #[serde(with = "seconds", rename = "latency_seconds")]
    pub latency: Duration,
    /// Extra one-way delay, uniform in `[0, jitter]`, per write.
    #[serde(with = "seconds", rename = "jitter_seconds")]
    pub jitter: Duration,
    /// Percent of TCP segments every link loses (0 to 50): a write with a lost segment, and
    /// everything after it on its connection, waits a retransmission timeout (see
    /// [`crate::Link`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub loss_percent: f64,
    /// Each node's uplink and downlink in bytes per second; `None` is unlimited.
    #[serde(default)]
    pub bandwidth_bytes_per_second: Option<u64>,
    /// What the nodes send.
    pub workload: Workload,
    /// What happens to the network, in simulated time.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// The p2p timers every node runs with.
    #[serde(default)]
    pub timing: Timing,
    /// How often connected pairs are sampled (the mesh times are measured at this grain).
    #[serde(
        with = "seconds",
        default = "default_sample_interval",
        rename = "sample_interval_seconds"
    )]
    pub sample_interval: Duration,
    /// Run simplex consensus on every member with these timers (see [`crate::consensus`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consensus: Option<crate::consensus::Settings>,
}

/// Every member broadcasts `message_bytes`-byte messages at `messages_per_second` on
/// `channel`, between `start` and `stop` (simulated time since the run began).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// The p2p channel.
    pub channel: u64,
    /// Size of each message.
    pub message_bytes: usize,
    /// Broadcasts per second by each node.
    pub messages_per_second: f64,
    /// When the nodes start sending.
    #[serde(with = "seconds", rename = "start_seconds")]
    pub start: Duration,
    /// When they stop (leave time before the end for the last messages to arrive).
    #[serde(with = "seconds", rename = "stop_seconds")]
    pub stop: Duration,
}

/// One fault at one moment of simulated time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// When it happens, since the run began.
    #[serde(with = "seconds", rename = "at_seconds")]
    pub at: Duration,
    /// What happens.
    #[serde(flatten)]
    pub action: Action,
}

/// What a fault does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Nodes in different groups cannot reach each other; nodes no group names form one more
    /// group. Replaces any partition in force.
    Partition {
        /// Node indices, by group.
        groups: Vec<Vec<usize>>,
    },
    /// Ends the partition.
    Heal,
    /// The node stops: its tasks end and its connections are cut.
    Crash {
        /// The node's index.
        node: usize,
    },
    /// A crashed node starts again with the same identity.
    Restart {
        /// The node's index.
        node: usize,
    },
    /// Random connections are cut, `per_second` on average, until `until`.
    Resets {
        /// Mean resets per second over the whole network.
        per_second: f64,
        /// When the resets stop, since the run began.
        #[serde(with = "seconds", rename = "until_seconds")]
        until: Duration,
    },
}

/// The p2p timers of every node; the rest of the node's settings are
/// `palisade_p2p::Config::recommended`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// How often a node dials the members it is not connected to.
    #[serde(with = "seconds", rename = "dial_interval_seconds")]
    pub dial_interval: Duration,
    /// First wait before redialing a member after a failure.
    #[serde(with = "seconds", rename = "dial_backoff_initial_seconds")]
    pub dial_backoff_initial: Duration,
    /// Longest wait before redialing a member.
    #[serde(with = "seconds", rename = "dial_backoff_max_seconds")]
    pub dial_backoff_max: Duration,
    /// How often a connected peer is pinged.
    #[serde(with = "seconds", rename = "ping_interval_seconds")]
    pub ping_interval: Duration,
    /// How long a connection may stay silent before it is closed.
    #[serde(with = "seconds", rename = "max_silence_seconds")]
    pub max_silence: Duration,
}

impl Default for Timing {
    /// Dial every 250 ms, back off from 250 ms to 2 s, ping every second, close after 10 s
    /// of silence: a validator network that wants its mesh back within seconds.
    fn default() -> Self {
        Self {
            dial_interval: Duration::from_millis(250),
            dial_backoff_initial: Duration::from_millis(250),
            dial_backoff_max: Duration::from_secs(2),
            ping_interval: Duration::from_secs(1),
            max_silence: Duration::from_secs(10),
        }
    }
}

fn default_sample_interval() -> Duration {
    Duration::from_millis(100)
}

impl Default for Scenario {
    /// [`Scenario::standard`] with 20 members over 60 simulated seconds.
    fn default() -> Self {
        Self::standard(20, Duration::from_secs(60))
    }
}

impl Scenario {
    /// A validator network of `nodes` members and one outsider over 50 ms (+ up to 20 ms)
    /// links at 10 MB/s each way per node, each member broadcasting ten 1 KiB messages a
    /// second, through one of each fault. Times scale with `duration`; for 60 s:
    ///
    /// - the workload runs from 5 s to 55 s;
    /// - 20-28 s: the members split into two halves;
    /// - 33-38 s: member 3 (or the last, with fewer) crashes and restarts;
    /// - 40-45 s: random connections are cut, two a second.
    pub fn standard(nodes: usize, duration: Duration) -> Self {
        let at = |sixtieths: u32| duration * sixtieths / 60;
        let crashed = 3.min(nodes.saturating_sub(1));
        Self {
            nodes,
            outsiders: 1,
            duration,
            latency: Duration::from_millis(50),
            jitter: Duration::from_millis(20),
            loss_percent: 0.0,
            bandwidth_bytes_per_second: Some(10_000_000),
            workload: Workload {
                channel: 0,
                message_bytes: 1024,
                messages_per_second: 10.0,
                start: at(5),
                stop: at(55),
            },
            faults: vec![
                Fault {
                    at: at(20),
                    action: Action::Partition {
                        groups: vec![(0..nodes / 2).collect(), (nodes / 2..nodes).collect()],
                    },
                },
                Fault {
                    at: at(28),
                    action: Action::Heal,
                },
                Fault {
                    at: at(33),
                    action: Action::Crash { node: crashed },
                },
                Fault {
                    at: at(38),
                    action: Action::Restart { node: crashed },
                },
                Fault {
                    at: at(40),
                    action: Action::Resets {
                        per_second: 2.0,
                        until: at(45),
                    },
                },
            ],
            timing: Timing::default(),
            sample_interval: default_sample_interval(),
            consensus: None,
        }
    }

    /// The standard scenario with consensus instead of the message workload: simplex on
    /// every member with [`Settings::default`](crate::consensus::Settings), the same faults.
    pub fn consensus(nodes: usize, duration: Duration) -> Self {
        let mut scenario = Self::standard(nodes, duration);
        scenario.workload.messages_per_second = 0.0;
        scenario.consensus = Some(crate::consensus::Settings::default());
        scenario
    }
}

/// Why a scenario cannot run.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// No members.
    #[error("a scenario needs at least one node")]
    NoNodes,
    /// More nodes than a run supports.
    #[error("{nodes} nodes (members and outsiders) is more than the {max} a run supports")]
    TooManyNodes {
        /// Members and outsiders.
        nodes: usize,
        /// [`MAX_NODES`].
        max: usize,
    },
    /// A rate that is negative, not a number, or infinite.
    #[error("{field} must be a finite number of at least zero, not {value}")]
    InvalidRate {
        /// Which rate.
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// A bandwidth of zero bytes a second: nothing could ever cross a link.
    #[error("bandwidth_bytes_per_second must be at least 1 (or absent, for unlimited), not 0")]
    ZeroBandwidth,
    /// A loss outside 0 to [`MAX_LOSS_PERCENT`], or not a number.
    #[error("loss_percent must be from 0 to {max}, not {value}", max = MAX_LOSS_PERCENT)]
    InvalidLoss {
        /// The value given.
        value: f64,
    },
    /// `Options::metrics_of` (`simulate --metrics`) names a node the scenario does not have.
    #[error("metrics of node {node} asked for, but the nodes are 0..{nodes}")]
    UnknownMetricsNode {
        /// The node asked for.
        node: usize,
        /// Members and outsiders.
        nodes: usize,
    },
    /// A duration that must not be zero is.
    #[error("{field} must be longer than zero")]
    ZeroDuration {
        /// Which duration.
        field: &'static str,
    },
    /// A ping interval no shorter than the silence that closes a connection: an idle
    /// connection would be closed between two pings.
    #[error(
        "timing.ping_interval_seconds ({ping_interval:?}) must be shorter than timing.max_silence_seconds ({max_silence:?})"
    )]
    PingNotWithinSilence {
        /// `timing.ping_interval`.
        ping_interval: Duration,
        /// `timing.max_silence`.
        max_silence: Duration,
    },
    /// A message size the workload cannot send.
    #[error("workload.message_bytes is {size}; it must be between {min} and {max}")]
    MessageSize {
        /// The size asked for.
        size: usize,
        /// [`MIN_MESSAGE_BYTES`].
        min: usize,
        /// [`MAX_MESSAGE_BYTES`].
        max: usize,
    },
    /// The workload's window does not fit the run.
    #[error(
        "the workload runs from {start:?} to {stop:?}; it must start no later than it stops, and stop within the run's {duration:?}"
    )]
    WorkloadWindow {
        /// `workload.start`.
        start: Duration,
        /// `workload.stop`.
        stop: Duration,
        /// The run's duration.
        duration: Duration,
    },
    /// A fault is scheduled after the run ends.
    #[error("fault {fault} is at {at:?}, after the run's end at {duration:?}")]
    FaultAfterEnd {
        /// Index of the fault in the schedule.
        fault: usize,
        /// When it was scheduled.
        at: Duration,
        /// The run's duration.
        duration: Duration,
    },
    /// A fault names a node the scenario does not have.
    #[error("fault {fault} names node {node}, but the members are 0..{nodes}")]
    UnknownNode {
        /// Index of the fault in the schedule.
        fault: usize,
        /// The node it names.
        node: usize,
        /// How many members there are.
        nodes: usize,
    },
    /// A partition puts a node in two groups.
    #[error("fault {fault} puts node {node} in more than one group")]
    NodeInTwoGroups {
        /// Index of the fault in the schedule.
        fault: usize,
        /// The node.
        node: usize,
    },
    /// A crash of a node that is down, or a restart of one that is up.
    #[error("fault {fault} {action}s node {node}, which is already {state}")]
    NodeState {
        /// Index of the fault in the schedule.
        fault: usize,
        /// The node.
        node: usize,
        /// `crash` or `restart`.
        action: &'static str,
        /// `down` or `up`.
        state: &'static str,
    },
    /// The consensus settings cannot run: timers out of order, or a channel taken.
    #[error("consensus: {reason}")]
    InvalidConsensus {
        /// Which rule they break.
        reason: &'static str,
    },
    /// Resets that end before they start.
    #[error("fault {fault} resets connections until {until:?}, before it starts at {at:?}")]
    ResetsEndBeforeStart {
        /// Index of the fault in the schedule.
        fault: usize,
        /// When the resets start.
        at: Duration,
        /// When they were to end.
        until: Duration,
    },
}

impl Scenario {
    /// Checks the scenario; returns its faults in the order they happen (faults at the same
    /// moment keep their order in the schedule).
    ///
    /// # Errors
    /// The first problem found, as a [`ScenarioError`].
    pub fn validate(&self) -> Result<Vec<Fault>, ScenarioError> {
        if self.nodes == 0 {
            return Err(ScenarioError::NoNodes);
        }
        let total = self.nodes.saturating_add(self.outsiders);
        if total > MAX_NODES {
            return Err(ScenarioError::TooManyNodes {
                nodes: total,
                max: MAX_NODES,
            });
        }
        for (field, duration) in [
            ("duration_seconds", self.duration),
            ("sample_interval_seconds", self.sample_interval),
            ("timing.dial_interval_seconds", self.timing.dial_interval),
            (
                "timing.dial_backoff_initial_seconds",
                self.timing.dial_backoff_initial,
            ),
            ("timing.ping_interval_seconds", self.timing.ping_interval),
            ("timing.max_silence_seconds", self.timing.max_silence),
        ] {
            if duration.is_zero() {
                return Err(ScenarioError::ZeroDuration { field });
            }
        }
        if self.timing.ping_interval >= self.timing.max_silence {
            return Err(ScenarioError::PingNotWithinSilence {
                ping_interval: self.timing.ping_interval,
                max_silence: self.timing.max_silence,
            });
        }
        if let Some(consensus) = &self.consensus {
            if consensus.leader_timeout.is_zero() || consensus.timeout_retry.is_zero() {
                return Err(ScenarioError::InvalidConsensus {
                    reason: "leader_timeout_seconds and timeout_retry_seconds must be longer than zero",
                });
            }
            if crate::consensus::CHANNELS.contains(&self.workload.channel) {
                return Err(ScenarioError::InvalidConsensus {
                    reason: "workload.channel is one of consensus's channels (1000-1002)",
                });
            }
            if consensus.certification_timeout <= consensus.leader_timeout {
                return Err(ScenarioError::InvalidConsensus {
                    reason: "certification_timeout must be longer than leader_timeout",
                });
            }
        }
        if self.bandwidth_bytes_per_second == Some(0) {
            return Err(ScenarioError::ZeroBandwidth);
        }
        if !(0.0..=MAX_LOSS_PERCENT).contains(&self.loss_percent) {
            return Err(ScenarioError::InvalidLoss {
                value: self.loss_percent,
            });
        }
        let workload = &self.workload;
        check_rate("workload.messages_per_second", workload.messages_per_second)?;
        if !(MIN_MESSAGE_BYTES..=MAX_MESSAGE_BYTES).contains(&workload.message_bytes) {
            return Err(ScenarioError::MessageSize {
                size: workload.message_bytes,
                min: MIN_MESSAGE_BYTES,
                max: MAX_MESSAGE_BYTES,
            });
        }
        if workload.start > workload.stop || workload.stop > self.duration {
            return Err(ScenarioError::WorkloadWindow {
                start: workload.start,
                stop: workload.stop,
                duration: self.duration,
            });
        }
        let mut order: Vec<usize> = (0..self.faults.len()).collect();
        order.sort_by_key(|&index| self.faults[index].at);
        let mut down = BTreeSet::new();
        for index in order.iter().copied() {
            self.check_fault(index, &mut down)?;
        }
        Ok(order.into_iter().map(|i| self.faults[i].clone()).collect())
    }

    /// Checks fault `index`, given the nodes `down` before it; updates `down`.
    fn check_fault(&self, index: usize, down: &mut BTreeSet<usize>) -> Result<(), ScenarioError> {
        let fault = &self.faults[index];
        if fault.at > self.duration {
            return Err(ScenarioError::FaultAfterEnd {
                fault: index,
                at: fault.at,
                duration: self.duration,
            });
        }
        let member = |node: usize| {
            if node < self.nodes {
                Ok(node)
            } else {
                Err(ScenarioError::UnknownNode {
                    fault: index,
                    node,
                    nodes: self.nodes,
                })
            }
        };
        let state =
            |node: usize, action: &'static str, state: &'static str| ScenarioError::NodeState {
                fault: index,
                node,
                action,
                state,
            };
        match &fault.action {
            Action::Partition { groups } => {
                let mut seen = BTreeSet::new();
                for node in groups.iter().flatten().copied() {
                    if !seen.insert(member(node)?) {
                        return Err(ScenarioError::NodeInTwoGroups { fault: index, node });
                    }
                }
            }
            Action::Heal => {}
            Action::Crash { node } => {
                if !down.insert(member(*node)?) {
                    return Err(state(*node, "crash", "down"));
                }
            }
            Action::Restart { node } => {
                if !down.remove(&member(*node)?) {
                    return Err(state(*node, "restart", "up"));
                }
            }
            Action::Resets { per_second, until } => {
                check_rate("faults.resets.per_second", *per_second)?;
                if *until < fault.at {
                    return Err(ScenarioError::ResetsEndBeforeStart {
                        fault: index,
                        at: fault.at,
                        until: *until,
                    });
                }
            }
        }
        Ok(())
    }

    /// The members and outsiders together.
    pub fn total_nodes(&self) -> usize {
        self.nodes + self.outsiders
    }

    /// When the last fault is over: the latest fault time, or the end of the latest resets.
    pub fn last_fault_over(&self) -> Option<Duration> {
        self.faults
            .iter()
            .map(|fault| match fault.action {
                Action::Resets { until, .. } => until.max(fault.at),
                _ => fault.at,
            })
            .max()
    }

    /// How long after the last fault is over the full mesh must be back:
    ///
    /// - a dial under way across a partition when it heals still fails, after the network's
    ///   `unreachable_dial_delay` (as a connect towards an unreachable host times out);
    /// - the member then waits its redial backoff, at most `dial_backoff_max`, and up to one
    ///   `dial_interval` more until its dialer looks again;
    /// - the dial and handshake take a few one-way delays (40 are allowed, for queues behind
    ///   the workload), and the mesh is seen at the next sample;
    /// - with loss, the handshake's writes may wait for retransmissions: seven retransmission
    ///   timeouts are allowed (one segment lost three times in a row, or a few lost once).
    pub fn mesh_bound(&self) -> Duration {
        self.mesh_bound_inner()
    }

    /// How long after the last fault is over a view must be finalized again, with consensus:
    ///
    /// - the mesh is back within [`mesh_bound`](Self::mesh_bound);
    /// - the view members are stuck in times out (`certification_timeout`) and their skip
    ///   votes are repeated every `timeout_retry`; two repeats are allowed for votes lost on
    ///   connections the fault cut;
    /// - members that fell behind fetch the certificates they missed, and the next leader
    ///   proposes: a few more one-way delays (20 are allowed) and a second `leader_timeout`
    ///   for a leader that is itself still catching up.
    ///
    /// `None` without consensus.
    pub fn consensus_bound(&self) -> Option<Duration> {
        let consensus = self.consensus.as_ref()?;
        Some(
            self.mesh_bound()
                + consensus.certification_timeout
                + consensus.timeout_retry * 2
                + consensus.leader_timeout * 2
                + (self.latency + self.jitter) * 20,
        )
    }

    fn mesh_bound_inner(&self) -> Duration {
        crate::Config::default().unreachable_dial_delay
            + self.timing.dial_backoff_max
            + self.timing.dial_interval
            + self.sample_interval
            + (self.latency + self.jitter) * 40
            + self.retransmission_allowance()
    }

    fn retransmission_allowance(&self) -> Duration {
        if self.loss_percent > 0.0 {
            ((self.latency + self.jitter) * 2 + crate::link::MIN_RETRANSMISSION_TIMEOUT) * 7
        } else {
            Duration::ZERO
        }
    }
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

fn check_rate(field: &'static str, value: f64) -> Result<(), ScenarioError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(ScenarioError::InvalidRate { field, value })
    }
}

/// The IP address of node `index`: `10.x.y.z`, counting from `10.0.0.1` and skipping
/// addresses whose last byte is 0 or above 250.
pub fn node_ip(index: usize) -> IpAddr {
    let [x, y] = ((index / 250) as u16).to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(10, x, y, (index % 250) as u8 + 1))
}

/// The address node `index` listens on.
pub fn node_address(index: usize) -> SocketAddr {
    SocketAddr::new(node_ip(index), 9000)
}

/// Durations as seconds (a float) in JSON.
pub(crate) mod seconds {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(
        duration: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(duration.as_secs_f64())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let value = f64::deserialize(deserializer)?;
        Duration::try_from_secs_f64(value).map_err(|_| {
            D::Error::custom(format!(
                "{value} is not a duration in seconds (it must be a finite number of at least zero)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_faults(faults: Vec<Fault>) -> Scenario {
        Scenario {
            faults,
            ..Scenario::default()
        }
    }

    fn at(seconds: u64, action: Action) -> Fault {
        Fault {
            at: Duration::from_secs(seconds),
            action,
        }
    }

    #[test]
    fn the_default_scenario_is_valid_and_its_faults_come_in_time_order() {
        let scenario = with_faults(vec![
            at(30, Action::Heal),
            at(10, Action::Crash { node: 1 }),
            at(20, Action::Restart { node: 1 }),
        ]);
        let plan = scenario.validate().unwrap();
        let times: Vec<u64> = plan.iter().map(|fault| fault.at.as_secs()).collect();
        assert_eq!(times, [10, 20, 30]);
        Scenario::default().validate().unwrap();
        for nodes in [1, 2, 5, 200] {
            for seconds in [1, 10, 3600] {
                Scenario::standard(nodes, Duration::from_secs(seconds))
                    .validate()
                    .unwrap();
            }
        }
    }

    #[test]
    fn zero_nodes_is_refused() {
        let scenario = Scenario {
            nodes: 0,
            ..Scenario::default()
        };
        assert_eq!(scenario.validate(), Err(ScenarioError::NoNodes));
    }

    #[test]
    fn too_many_nodes_is_refused() {
        let scenario = Scenario {
            nodes: MAX_NODES,
            outsiders: 1,
            ..Scenario::default()
        };
        assert_eq!(
            scenario.validate(),
            Err(ScenarioError::TooManyNodes {
                nodes: MAX_NODES + 1,
                max: MAX_NODES
            })
        );
    }

    #[test]
    fn negative_and_non_finite_rates_are_refused() {
        for value in [-1.0, f64::NAN, f64::INFINITY] {
            let mut scenario = Scenario::default();
            scenario.workload.messages_per_second = value;
            let error = scenario.validate().unwrap_err();
            assert!(
                matches!(error, ScenarioError::InvalidRate { field: "workload.messages_per_second", value: v } if v.to_bits() == value.to_bits()),
                "{error:?}"
            );
        }
        let scenario = with_faults(vec![at(
            1,
            Action::Resets {
                per_second: -0.5,
                until: Duration::from_secs(2),
            },
        )]);
        assert_eq!(
            scenario.validate(),
            Err(ScenarioError::InvalidRate {
                field: "faults.resets.per_second",
                value: -0.5
            })
        );
        let scenario = Scenario {
            bandwidth_bytes_per_second: Some(0),
            ..Scenario::default()
        };
        assert_eq!(scenario.validate(), Err(ScenarioError::ZeroBandwidth));
        for value in [-1.0, 50.5, f64::NAN, f64::INFINITY] {
            let scenario = Scenario {
                loss_percent: value,
                ..Scenario::standard(4, Duration::from_secs(10))
            };
            let error = scenario.validate().unwrap_err();
            assert!(
                matches!(error, ScenarioError::InvalidLoss { value: v } if v.to_bits() == value.to_bits()),
                "{error:?}"
            );
            assert!(
                error
                    .to_string()
                    .starts_with("loss_percent must be from 0 to 50")
            );
        }
    }

    #[test]
    fn zero_durations_are_refused() {
        let scenario = Scenario {
            duration: Duration::ZERO,
            ..Scenario::default()
        };
        assert_eq!(
            scenario.validate(),
            Err(ScenarioError::ZeroDuration {
                field: "duration_seconds"
            })
        );
        let mut scenario = Scenario::default();
        scenario.timing.dial_interval = Duration::ZERO;
        assert_eq!(
            scenario.validate(),
            Err(ScenarioError::ZeroDuration {
                field: "timing.dial_interval_seconds"
            })
        );
    }

    #[test]
    fn message_sizes_outside_the_bounds_are_refused() {
        for size in [MIN_MESSAGE_BYTES - 1, MAX_MESSAGE_BYTES + 1] {
            let mut scenario = Scenario::default();
            scenario.workload.message_bytes = size;
            assert_eq!(
                scenario.validate(),
                Err(ScenarioError::MessageSize {
                    size,
                    min: MIN_MESSAGE_BYTES,
                    max: MAX_MESSAGE_BYTES
                })
            );
        }
    }

    #[test]
    fn a_workload_outside_the_run_is_refused() {
        let mut scenario = Scenario::default();
        scenario.workload.stop = scenario.duration + Duration::from_secs(1);
        assert!(matches!(
            scenario.validate(),
            Err(ScenarioError::WorkloadWindow { .. })
        ));
        let mut scenario = Scenario::default();
        scenario.workload.start = scenario.workload.stop + Duration::from_secs(1);
        assert!(matches!(
            scenario.validate(),
            Err(ScenarioError::WorkloadWindow { .. })
        ));
    }

    #[test]
    fn a_partition_naming_an_unknown_node_is_refused() {
        let scenario = with_faults(vec![at(
            1,
            Action::Partition {
                groups: vec![vec![0, 1], vec![20]],
            },
        )]);
        assert_eq!(
            scenario.validate(),
            Err(ScenarioError::UnknownNode {
                fault: 0,
                node: 20,
                nodes: 20
            })
        );
    }

    #[test]
    fn a_partition_with_a_node_in_two_groups_is_refused() {
        let scenario = with_faults(vec![at(
            1,
            Action::Partition {
                groups: vec![vec![0, 1], vec![1, 2]],
            },
        )]);
        assert_eq!(
            scenario.validate(),
            Err(ScenarioError::NodeInTwoGroups { fault: 0, node: 1 })
        );
    }

    #[test]
    fn crashes_and_restarts_must_alternate() {
        let scenario = with_faults(vec![at(1, Action::Restart { node: 2 })]);
        assert_eq!(
            scenario.validate(),
            Err(ScenarioError::NodeState {
                fault: 0,
                node: 2,
                action: "restart",
                state: "up"
            })
        );
        let scenario = with_faults(vec![
            at(1, Action::Crash { node: 2 }),
            at(2, Action::Crash { node: 2 }),
        ]);
        assert_eq!(
            scenario.validate(),
            Err(ScenarioError::NodeState {
                fault: 1,
                node: 2,
                action: "crash",
                state: "down"
            })
        );
        let scenario = with_faults(vec![at(1, Action::Crash { node: 99 })]);
        assert!(matches!(
            scenario.validate(),
            Err(ScenarioError::UnknownNode { node: 99, .. })
        ));
    }

    #[test]
    fn faults_after_the_end_and_resets_that_end_first_are_refused() {
        let scenario = with_faults(vec![at(61, Action::Heal)]);
        assert!(matches!(
            scenario.validate(),
            Err(ScenarioError::FaultAfterEnd { fault: 0, .. })
        ));
        let scenario = with_faults(vec![at(
            10,
            Action::Resets {
                per_second: 1.0,
                until: Duration::from_secs(5),
            },
        )]);
        assert!(matches!(
            scenario.validate(),
            Err(ScenarioError::ResetsEndBeforeStart { fault: 0, .. })
        ));
    }

    #[test]
    fn scenarios_round_trip_through_json_with_durations_in_seconds() {
        let scenario = Scenario::default();
        let json = serde_json::to_string_pretty(&scenario).unwrap();
        // Every duration names its unit.
        assert!(json.contains("\"duration_seconds\": 60.0"), "{json}");
        assert!(json.contains("\"latency_seconds\":"), "{json}");
        assert!(json.contains("\"at_seconds\":"), "{json}");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let mut names = Vec::new();
        collect_names(&value, &mut names);
        for name in names {
            assert!(
                ![
                    "duration", "latency", "jitter", "at", "until", "start", "stop"
                ]
                .contains(&name.as_str()),
                "`{name}` without its unit in {json}"
            );
        }
        assert!(json.contains("\"kind\": \"partition\""), "{json}");
        let back: Scenario = serde_json::from_str(&json).unwrap();
        assert_eq!(back, scenario);
    }

    /// Every object key anywhere in `value`.
    fn collect_names(value: &serde_json::Value, names: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (name, inner) in map {
                    names.push(name.clone());
                    collect_names(inner, names);
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    collect_names(item, names);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn a_duration_without_its_unit_is_refused_by_name() {
        let json = serde_json::to_string(&Scenario::default()).unwrap();
        let bare = json.replace("\"latency_seconds\"", "\"latency\"");
        let error = serde_json::from_str::<Scenario>(&bare).unwrap_err();
        assert!(error.to_string().contains("latency"), "{error}");
    }

    #[test]
    fn negative_durations_and_unknown_fields_in_json_are_refused() {
        let json = serde_json::to_string(&Scenario::default()).unwrap();
        let negative = json.replace("\"duration_seconds\":60.0", "\"duration_seconds\":-1.0");
        assert_ne!(negative, json);
        let error = serde_json::from_str::<Scenario>(&negative).unwrap_err();
        assert!(error.to_string().contains("not a duration"), "{error}");
        let unknown = json.replacen('{', "{\"nodez\":3,", 1);
        let error = serde_json::from_str::<Scenario>(&unknown).unwrap_err();
        assert!(error.to_string().contains("nodez"), "{error}");
    }

    #[test]
    fn consensus_timers_out_of_order_or_a_taken_channel_are_refused() {
        let base = Scenario::consensus(4, Duration::from_secs(10));
        assert!(base.validate().is_ok());
        let mut zero = base.clone();
        zero.consensus.as_mut().unwrap().leader_timeout = Duration::ZERO;
        assert_eq!(
            zero.validate(),
            Err(ScenarioError::InvalidConsensus {
                reason: "leader_timeout_seconds and timeout_retry_seconds must be longer than zero"
            })
        );
        let mut order = base.clone();
        order.consensus.as_mut().unwrap().certification_timeout = Duration::from_secs(1);
        assert_eq!(
            order.validate(),
            Err(ScenarioError::InvalidConsensus {
                reason: "certification_timeout must be longer than leader_timeout"
            })
        );
        let mut taken = base.clone();
        taken.workload.channel = crate::consensus::CHANNELS[1];
        assert_eq!(
            taken.validate(),
            Err(ScenarioError::InvalidConsensus {
                reason: "workload.channel is one of consensus's channels (1000-1002)"
            })
        );
        // The same channel is fine without consensus.
        taken.consensus = None;
        assert!(taken.validate().is_ok());
    }

    #[test]
    fn a_consensus_scenario_round_trips_through_json() {
        let scenario = Scenario::consensus(7, Duration::from_secs(30));
        let json = serde_json::to_string(&scenario).unwrap();
        assert!(json.contains("\"leader_timeout_seconds\":1.0"), "{json}");
        assert_eq!(serde_json::from_str::<Scenario>(&json).unwrap(), scenario);
        assert!(
            !serde_json::to_string(&Scenario::default())
                .unwrap()
                .contains("consensus"),
            "absent unless used"
        );
    }

    #[test]
    fn node_addresses_are_distinct() {
        let ips: BTreeSet<IpAddr> = (0..MAX_NODES).map(node_ip).collect();
        assert_eq!(ips.len(), MAX_NODES);
        assert_eq!(node_ip(0), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(node_ip(250), IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1)));
    }
}
