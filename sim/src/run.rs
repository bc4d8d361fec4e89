//! Runs a [`Scenario`]: the real palisade-p2p stack on every node, over the simulated
//! network, on the deterministic runtime, from one seed.
//!
//! # How a run goes
//!
//! 1. Every node (members, then outsiders) is added to a [`Network`] and started: a
//!    palisade-p2p node with the scenario's timers, one channel, the members' peer set (an
//!    outsider tracks the members and itself), a sender task for the workload and a receiver
//!    task that checks every delivery ([`Deliveries`]).
//! 2. The main task sleeps from event to event: each fault at its time, and a sample of the
//!    nodes' `connected_peers` gauges every `sample_interval`, read from the Prometheus text
//!    the runtime encodes, as a monitoring system would.
//! 3. At the end the nodes' counters (those of crashed incarnations were kept when they
//!    crashed) make the [`Report`].
//!
//! # Determinism
//!
//! Time and randomness (jitter, phases, resets) come from the runtime; every map is ordered;
//! reset intervals are drawn uniformly (no floating-point functions whose last bit could
//! differ between platforms). The digest hashes the auditor's state and every byte the
//! network carried.

use crate::{
    Bandwidth, Config as NetworkConfig, Context, Link, Network,
    deliveries::{Deliveries, Violations},
    metrics_text::{self, Totals},
    probe::Probe,
    record::{self, NodeInfo, Record},
    recorder::{NodeView, Observation, RecordFn, Recorder},
    report::{LatencySummary, Mesh, Messages, PairsAt, Report},
    scenario::{Action, Fault, Scenario, ScenarioError, node_address, node_ip},
};
use crate::{
    consensus::{self, lock as lock_ledger},
    reference::{self, Stack},
};
use commonware_cryptography::{Signer as _, ed25519};
use commonware_runtime::{
    Clock as _, Handle, Metrics as _, Quota, Runner as _, Spawner as _, Supervisor as _,
    deterministic,
};
use commonware_utils::ordered::{Map, Set};
use palisade_p2p::{Address, AddressableManager as _, Recipients};
use rand_core::Rng as _;
use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    num::NonZeroU32,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

type Pk = ed25519::PublicKey;
type NodeContext = Context<deterministic::Context>;

/// The namespace every node of a run uses.
pub const NAMESPACE: &[u8] = b"palisade-simulation";

/// Messages a channel's backlog holds for the receiver task.
const BACKLOG: usize = 4096;

/// Called with the run's progress.
pub type ProgressFn = Box<dyn FnMut(&Progress) + Send>;

/// How a run is watched; the scenario says what runs.
pub struct Options {
    /// The runtime's seed.
    pub seed: u64,
    /// Called every `progress_every` of simulated time.
    pub progress: Option<ProgressFn>,
    /// How often `progress` is called.
    pub progress_every: Duration,
    /// Keep the Prometheus text of this node (its incarnation at the end).
    pub metrics_of: Option<usize>,
    /// The p2p stack every node runs: palisade-p2p, or the reference for comparison (whose
    /// connection gauges palisade's mesh samples do not read, so mesh figures stay empty).
    pub stack: Stack,
    /// Called with every record of the run's event log, in order ([`crate::record`]).
    pub record: Option<RecordFn>,
    /// Simulated time between two samples of the event log's counters.
    pub record_every: Duration,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("seed", &self.seed)
            .field("progress", &self.progress.is_some())
            .field("progress_every", &self.progress_every)
            .field("metrics_of", &self.metrics_of)
            .field("record", &self.record.is_some())
            .field("record_every", &self.record_every)
            .finish_non_exhaustive()
    }
}

impl Options {
    /// Seed `seed`, no progress, no metrics text.
    pub fn seed(seed: u64) -> Self {
        Self {
            seed,
            progress: None,
            progress_every: Duration::from_secs(5),
            metrics_of: None,
            stack: Stack::Palisade,
            record: None,
            record_every: Duration::from_secs(1),
        }
    }
}

/// Where a run is, for progress output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Simulated time since the start.
    pub at: Duration,
    /// Connected member pairs.
    pub connected_pairs: u64,
    /// Pairs of members that are up.
    pub possible_pairs: u64,
    /// Deliveries so far.
    pub delivered: u64,
    /// Tasks alive in the runtime (its `runtime_tasks_running` gauges): flat in a run that
    /// leaks none.
    pub tasks: u64,
    /// Connections the simulated network holds (cut ones until both ends are dropped).
    pub connections_open: u64,
}

/// A finished run.
#[derive(Debug)]
pub struct Outcome {
    /// The figures.
    pub report: Report,
    /// The Prometheus text of the node `Options::metrics_of` named.
    pub metrics: Option<String>,
}

/// Runs `scenario` on the deterministic runtime.
///
/// # Errors
/// The scenario's first problem ([`Scenario::validate`]), or
/// [`ScenarioError::UnknownMetricsNode`] for a `metrics_of` node the scenario does not have.
pub fn run(scenario: &Scenario, options: Options) -> Result<Outcome, ScenarioError> {
    let plan = scenario.validate()?;
    if let Some(node) = options.metrics_of
        && node >= scenario.total_nodes()
    {
        return Err(ScenarioError::UnknownMetricsNode {
            node,
            nodes: scenario.total_nodes(),
        });
    }
    let wall = std::time::Instant::now();
    // A run that outlives its scenario by this much has stalled: fail loudly.
    let deadline = scenario.duration + Duration::from_secs(600);
    let config = deterministic::Config::new()
        .with_seed(options.seed)
        .with_timeout(Some(deadline));
    let scenario = scenario.clone();
    let mut outcome = deterministic::Runner::new(config).start(|context| async move {
        Simulation::new(context, scenario, options).run(plan).await
    });
    outcome.report.wall_seconds = wall.elapsed().as_secs_f64();
    Ok(outcome)
}

/// What the tasks of all nodes share.
#[derive(Default)]
struct Shared {
    deliveries: Deliveries,
    /// The next sequence number of each node's workload (kept across restarts).
    next_sequence: Vec<u64>,
    sends: Sends,
}

/// What the workload's senders counted.
#[derive(Clone, Copy, Debug, Default)]
struct Sends {
    /// Broadcasts by members × the other members.
    sent: u64,
    /// Recipients palisade-p2p took members' broadcasts for.
    accepted: u64,
    outsider_broadcasts: u64,
    outsider_recipients: u64,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A node's tasks.
struct Running {
    tasks: Vec<Handle<()>>,
    /// palisade-p2p's network task (the reference stack's is among `tasks`).
    network: Option<Handle<Result<(), palisade_p2p::Error>>>,
    /// palisade-p2p's oracle, which lists the node's peers (none for the reference stack).
    oracle: Option<palisade_p2p::Oracle<NodeContext, Pk>>,
}

struct Simulation {
    context: deterministic::Context,
    scenario: Scenario,
    options: Options,
    network: Network<deterministic::Context>,
    begin: SystemTime,
    keys: Vec<ed25519::PrivateKey>,
    set: Vec<(Pk, SocketAddr)>,
    members: Arc<BTreeMap<Pk, usize>>,
    shared: Arc<Mutex<Shared>>,
    running: Vec<Option<Running>>,
    incarnation: Vec<u32>,
    /// Each node's workload phase within one send interval, drawn once.
    phase: Vec<Duration>,
    /// Counters of incarnations that crashed.
    retired: Totals,
    observed: Observed,
    /// What the members' consensus engines finalized.
    ledger: Arc<Mutex<consensus::Ledger>>,
    /// Writes the event log, when one is asked for.
    recorder: Option<Recorder>,
}

/// What the samples saw.
#[derive(Default)]
struct Observed {
    first_full: Option<Duration>,
    restored: Option<Duration>,
    full: bool,
    pairs: Vec<PairsAt>,
    next_progress: Duration,
}

impl Simulation {
    fn new(mut context: deterministic::Context, scenario: Scenario, mut options: Options) -> Self {
        let network = Network::new(
            context.child("sim"),
            NetworkConfig {
                default_link: Link::new(scenario.latency, scenario.jitter)
                    .with_loss((scenario.loss_percent * 10_000.0).round() as u32),
                default_bandwidth: scenario
                    .bandwidth_bytes_per_second
                    .map_or(Bandwidth::UNLIMITED, Bandwidth::symmetric),
                ..NetworkConfig::default()
            },
        );
        let total = scenario.total_nodes();
        let keys: Vec<_> = (0..total as u64)
            .map(ed25519::PrivateKey::from_seed)
            .collect();
        let set: Vec<_> = (0..scenario.nodes)
            .map(|i| (keys[i].public_key(), node_address(i)))
            .collect();
        let members = set
            .iter()
            .enumerate()
            .map(|(i, (key, _))| (key.clone(), i))
            .collect();
        let interval = send_interval(scenario.workload.messages_per_second);
        let phase = (0..total)
            .map(|_| match interval {
                Some(interval) => {
                    let nanos = interval.as_nanos().min(u128::from(u64::MAX)) as u64;
                    Duration::from_nanos(context.next_u64() % nanos.max(1))
                }
                None => Duration::ZERO,
            })
            .collect();
        let begin = context.current();
        let shared = Shared {
            next_sequence: vec![0; total],
            ..Shared::default()
        };
        Self {
            network,
            begin,
            keys,
            set,
            members: Arc::new(members),
            shared: Arc::new(Mutex::new(shared)),
            running: (0..total).map(|_| None).collect(),
            incarnation: vec![0; total],
            phase,
            retired: Totals::new(),
            observed: Observed::default(),
            ledger: Arc::default(),
            recorder: options
                .record
                .take()
                .map(|sink| Recorder::new(sink, options.record_every)),
            context,
            scenario,
            options,
        }
    }

    fn now(&self) -> Duration {
        since(self.begin, self.context.current())
    }

    async fn run(mut self, plan: Vec<Fault>) -> Outcome {
        for index in 0..self.scenario.total_nodes() {
            self.network
                .add_node(node_ip(index))
                .expect("validated: addresses are distinct");
        }
        if let Some(recorder) = &mut self.recorder {
            let nodes = (0..self.scenario.total_nodes())
                .map(|index| NodeInfo {
                    index,
                    member: index < self.scenario.nodes,
                    key: self.keys[index].public_key().to_string(),
                    address: node_address(index).to_string(),
                })
                .collect();
            recorder.write(&Record::Start(record::Start {
                version: record::FORMAT_VERSION,
                seed: self.options.seed,
                stack: self.options.stack.name().to_string(),
                record_interval_seconds: self.options.record_every.as_secs_f64(),
                scenario: self.scenario.clone(),
                nodes,
            }));
        }
        for index in 0..self.scenario.total_nodes() {
            self.start(index).await;
        }
        let mut faults = plan.into_iter().peekable();
        let mut next_sample = Duration::ZERO;
        loop {
            let now = self.now();
            while let Some(fault) = faults.next_if(|fault| fault.at <= now) {
                self.apply(fault).await;
            }
            if now >= next_sample {
                self.sample(now);
                next_sample += self.scenario.sample_interval;
            }
            if now >= self.scenario.duration {
                break;
            }
            let wake = faults
                .peek()
                .map_or(next_sample, |fault| fault.at.min(next_sample))
                .min(self.scenario.duration);
            self.context.sleep_until(self.begin + wake).await;
        }
        self.finish()
    }

    fn is_member(&self, index: usize) -> bool {
        index < self.scenario.nodes
    }

    async fn start(&mut self, index: usize) {
        let node = self
            .context
            .child("node")
            .with_attribute("index", index)
            .with_attribute("incarnation", self.incarnation[index]);
        let node_network = self.network.node(node_ip(index)).expect("added");
        let node = Context::new(node, node_network);
        let consensus_context = node.child("consensus");
        let workload = &self.scenario.workload;
        // Room for four times the workload's rate, so the quota only stops a runaway peer.
        let per_second = (workload.messages_per_second * 4.0)
            .ceil()
            .clamp(100.0, 1e9) as u32;
        let quota = Quota::per_second(NonZeroU32::new(per_second).expect("at least 100"));
        let channel = workload.channel;
        let mut set = self.set.clone();
        if !self.is_member(index) {
            set.push((self.keys[index].public_key(), node_address(index)));
        }
        let set: Map<Pk, Address> =
            Map::from_iter_dedup(set.into_iter().map(|(key, address)| (key, address.into())));
        let validator = self.validator(index, &consensus_context);
        let mut tasks = Vec::new();
        let mut network = None;
        let mut listed = None;
        match self.options.stack {
            Stack::Palisade => {
                let (mut p2p, mut oracle) =
                    palisade_p2p::Network::new(node, self.palisade_config(index));
                let (sender, receiver) = p2p.register(channel, quota, BACKLOG);
                oracle.track(0, set);
                if let Some(validator) = validator {
                    tasks.push(consensus::start(
                        consensus_context,
                        validator,
                        &mut p2p,
                        &oracle,
                    ));
                }
                network = Some(p2p.start());
                listed = Some(oracle);
                tasks.push(self.spawn_receiver(index, receiver));
                tasks.extend(self.spawn_sender(index, sender));
            }
            stack => {
                let max_message = palisade_p2p::Config::recommended(
                    self.keys[index].clone(),
                    NAMESPACE,
                    node_address(index),
                )
                .max_message_size;
                let (mut p2p, mut oracle) = reference::node(
                    node,
                    stack,
                    self.keys[index].clone(),
                    NAMESPACE,
                    node_address(index),
                    self.scenario.total_nodes(),
                    max_message - palisade_p2p::wire::MAX_DATA_OVERHEAD_BYTES as u32,
                );
                let (sender, receiver) = p2p.register(channel, quota);
                oracle.track(0, set);
                if let Some(validator) = validator {
                    let channels =
                        consensus::CHANNELS.map(|id| p2p.register(id, consensus::quota()));
                    tasks.push(consensus::start_on(
                        consensus_context,
                        validator,
                        oracle.clone(),
                        channels,
                    ));
                }
                tasks.extend([p2p.start(), self.spawn_receiver(index, receiver)]);
                tasks.extend(self.spawn_sender(index, sender));
            }
        }
        self.running[index] = Some(Running {
            tasks,
            network,
            oracle: listed,
        });
    }

    /// palisade-p2p's settings for node `index`: recommended, with the scenario's timers.
    fn palisade_config(&self, index: usize) -> palisade_p2p::Config<ed25519::PrivateKey> {
        let timing = &self.scenario.timing;
        let mut config = palisade_p2p::Config::recommended(
            self.keys[index].clone(),
            NAMESPACE,
            node_address(index),
        );
        config.dial_interval = timing.dial_interval;
        config.dial_backoff_initial = timing.dial_backoff_initial;
        config.dial_backoff_max = timing.dial_backoff_max;
        config.ping_interval = timing.ping_interval;
        config.max_silence = timing.max_silence;
        config
    }

    /// Member `index`'s validator, when the scenario runs consensus.
    fn validator(
        &self,
        index: usize,
        context: &NodeContext,
    ) -> Option<consensus::Validator<consensus::LedgerObserver<NodeContext>>> {
        let settings = self.scenario.consensus.as_ref()?;
        if !self.is_member(index) {
            return None;
        }
        let observer = consensus::LedgerObserver {
            member: index,
            clock: Arc::new(context.child("clock")),
            begin: self.begin,
            ledger: self.ledger.clone(),
        };
        Some(consensus::Validator {
            key: self.keys[index].clone(),
            participants: Set::from_iter_dedup(self.members.keys().cloned()),
            settings: settings.clone(),
            // The same partition across restarts: a restarted member finds its journal.
            partition: format!("simplex-member-{index}"),
            observer,
        })
    }

    fn spawn_sender(
        &mut self,
        index: usize,
        mut sender: impl palisade_p2p::Sender<PublicKey = Pk>,
    ) -> Option<Handle<()>> {
        let workload = &self.scenario.workload;
        let interval = send_interval(workload.messages_per_second)?;
        let first = workload.start + self.phase[index];
        let (stop, size) = (workload.stop, workload.message_bytes);
        let member = self.is_member(index);
        let expected = if member {
            self.scenario.nodes as u64 - 1
        } else {
            0
        };
        let (shared, begin) = (self.shared.clone(), self.begin);
        let context = self
            .context
            .child("workload")
            .with_attribute("index", index);
        Some(context.spawn(move |context| async move {
            // The first tick not in the past (a restarted node picks up its old rhythm).
            let now = since(begin, context.current());
            let mut tick = now
                .saturating_sub(first)
                .as_nanos()
                .div_ceil(interval.as_nanos());
            loop {
                let at = first + Duration::from_nanos((interval.as_nanos() * tick) as u64);
                if at >= stop {
                    break;
                }
                context.sleep_until(begin + at).await;
                let sequence = {
                    let mut shared = lock(&shared);
                    let sequence = shared.next_sequence[index];
                    shared.next_sequence[index] += 1;
                    sequence
                };
                let probe = Probe {
                    sender: index as u32,
                    sequence,
                    sent_at: since(begin, context.current()),
                };
                let recipients = sender.send(Recipients::All, probe.encode(size), false);
                let sends = &mut lock(&shared).sends;
                if member {
                    sends.sent += expected;
                    sends.accepted += recipients.len() as u64;
                } else {
                    sends.outsider_broadcasts += 1;
                    sends.outsider_recipients += recipients.len() as u64;
                }
                tick += 1;
            }
        }))
    }

    fn spawn_receiver(
        &mut self,
        index: usize,
        mut receiver: impl palisade_p2p::Receiver<PublicKey = Pk>,
    ) -> Handle<()> {
        let member = self.is_member(index);
        let (shared, begin, members) = (self.shared.clone(), self.begin, self.members.clone());
        let context = self
            .context
            .child("deliveries")
            .with_attribute("index", index);
        context.spawn(move |context| async move {
            while let Ok((from, message)) = receiver.recv().await {
                let now = since(begin, context.current());
                lock(&shared).deliveries.deliver(
                    index,
                    member,
                    members.get(&from).copied(),
                    message.as_ref(),
                    now,
                );
            }
        })
    }

    async fn apply(&mut self, fault: Fault) {
        if let Some(recorder) = &mut self.recorder {
            recorder.fault(&fault);
        }
        match fault.action {
            Action::Partition { groups } => {
                let groups: Vec<Vec<_>> = groups
                    .iter()
                    .map(|group| group.iter().copied().map(node_ip).collect())
                    .collect();
                self.network
                    .partition(&groups)
                    .expect("validated: members only, one group each");
            }
            Action::Heal => self.network.heal(),
            Action::Crash { node } => {
                let text = self.context.encode();
                metrics_text::add_node(&mut self.retired, &text, node, self.incarnation[node]);
                if let Some(recorder) = &mut self.recorder {
                    recorder.retire(node, &text, self.incarnation[node]);
                }
                let running = self.running[node].take().expect("validated: up");
                for task in running.tasks {
                    task.abort();
                }
                if let Some(network) = running.network {
                    network.abort();
                }
                self.network.crash(node_ip(node)).expect("added");
            }
            Action::Restart { node } => {
                self.network.restart(node_ip(node)).expect("added");
                self.incarnation[node] += 1;
                self.start(node).await;
            }
            Action::Resets { per_second, until } => self.spawn_resets(per_second, until),
        }
    }

    /// Cuts random connections at `per_second` on average until `until`: each wait is
    /// uniform in `[0, 2 / per_second]`.
    fn spawn_resets(&mut self, per_second: f64, until: Duration) {
        if per_second <= 0.0 {
            return;
        }
        let mean = Duration::from_secs_f64(1.0 / per_second);
        let spread = (mean.as_nanos() * 2).min(u128::from(u64::MAX - 1)) as u64;
        let (network, begin) = (self.network.clone(), self.begin);
        self.context
            .child("resets")
            .spawn(move |mut context| async move {
                loop {
                    let wait = Duration::from_nanos(context.next_u64() % (spread + 1));
                    let at = since(begin, context.current()) + wait;
                    if at > until {
                        break;
                    }
                    context.sleep_until(begin + at).await;
                    network.reset_random_connection();
                }
            });
    }

    /// Connections between running members, counted once from each end: a pair counts only
    /// when each of the two has a connection to the other, so a member that crashed (which
    /// its peers have not noticed yet) is never counted. For the reference stack, whose
    /// connections are not listed, the sum of the running members' `connected_peers` gauges.
    fn connected_directed(&self, text: &str) -> u64 {
        let members = self.scenario.nodes;
        if self.running[..members]
            .iter()
            .flatten()
            .all(|running| running.oracle.is_some())
        {
            let index = &self.members;
            let lists: Vec<BTreeSet<usize>> = (0..members)
                .map(|i| match &self.running[i] {
                    Some(Running {
                        oracle: Some(oracle),
                        ..
                    }) => oracle
                        .connected()
                        .iter()
                        .filter_map(|peer| index.get(peer).copied())
                        .filter(|&j| j < members)
                        .collect(),
                    _ => BTreeSet::new(),
                })
                .collect();
            return (0..members)
                .map(|i| lists[i].iter().filter(|&&j| lists[j].contains(&i)).count() as u64)
                .sum();
        }
        metrics_text::node_samples(text)
            .filter(|sample| sample.name == "connected_peers")
            .filter_map(|sample| {
                let index = sample.index?;
                (index < members
                    && self.running[index].is_some()
                    && sample.incarnation == Some(self.incarnation[index]))
                .then_some(sample.value as u64)
            })
            .sum()
    }

    /// Hands the recorder, if any, what the nodes show at `now`: it writes what changed, and
    /// a sample when one is due or `force`d.
    fn record(
        &mut self,
        now: Duration,
        text: &str,
        (connected, possible): (u64, u64),
        force: bool,
    ) {
        let Some(recorder) = &mut self.recorder else {
            return;
        };
        let nodes: Vec<NodeView> = self
            .running
            .iter()
            .zip(&self.incarnation)
            .map(|(running, &incarnation)| NodeView {
                up: running.is_some(),
                incarnation,
                peers: running
                    .as_ref()
                    .and_then(|running| running.oracle.as_ref())
                    .map(|oracle| oracle.peers()),
            })
            .collect();
        let network = &self.network;
        let reachable = |a: usize, b: usize| network.reachable(node_ip(a), node_ip(b));
        let shared = lock(&self.shared);
        let delivered = |node: usize| shared.deliveries.delivered_to(node).collect();
        let consensus = self.scenario.consensus.is_some().then(|| {
            let ledger = lock_ledger(&self.ledger);
            let views = (0..nodes.len())
                .map(|node| ledger.highest_of(node))
                .collect();
            (ledger.progress(), views)
        });
        recorder.observe(
            &Observation {
                now,
                nodes: &nodes,
                members: &self.members,
                reachable: &reachable,
                text,
                delivered: &delivered,
                connected_pairs: connected,
                possible_pairs: possible,
                violations: shared.deliveries.violations,
                consensus,
            },
            force,
        );
    }

    /// Reads every member's connections and records the mesh's state at `now`.
    fn sample(&mut self, now: Duration) {
        let members = self.scenario.nodes;
        let text = self.context.encode();
        let up = self.running[..members]
            .iter()
            .filter(|running| running.is_some())
            .count() as u64;
        let possible = up * up.saturating_sub(1);
        let directed = self.connected_directed(&text).min(possible);
        let observed = &mut self.observed;
        observed.full = directed == possible;
        if observed.full && observed.first_full.is_none() {
            observed.first_full = Some(now);
        }
        if let Some(last) = self.scenario.last_fault_over()
            && now >= last
            && observed.full
            && observed.restored.is_none()
        {
            observed.restored = Some(now - last);
        }
        self.record(now, &text, (directed / 2, possible / 2), false);
        let observed = &mut self.observed;
        let second = now.as_secs();
        if observed
            .pairs
            .last()
            .is_none_or(|pairs| pairs.at_seconds < second)
        {
            observed.pairs.push(PairsAt {
                at_seconds: second,
                connected: directed / 2,
                possible: possible / 2,
            });
        }
        if now >= observed.next_progress {
            let every = self
                .options
                .progress_every
                .max(self.scenario.sample_interval);
            while observed.next_progress <= now {
                observed.next_progress += every;
            }
            if let Some(progress) = &mut self.options.progress {
                progress(&Progress {
                    at: now,
                    connected_pairs: directed / 2,
                    possible_pairs: possible / 2,
                    delivered: lock(&self.shared).deliveries.delivered,
                    tasks: running_tasks(&text),
                    connections_open: self.network.stats().connections_open,
                });
            }
        }
    }

    fn finish(mut self) -> Outcome {
        let text = self.context.encode();
        let now = self.now();
        if self.recorder.is_some() {
            let pairs = self
                .observed
                .pairs
                .last()
                .map_or((0, 0), |pairs| (pairs.connected, pairs.possible));
            self.record(now, &text, pairs, true);
        }
        let mut totals = self.retired.clone();
        for (index, running) in self.running.iter().enumerate() {
            if running.is_some() {
                metrics_text::add_node(&mut totals, &text, index, self.incarnation[index]);
            }
        }
        let metrics = self
            .options
            .metrics_of
            .map(|node| metrics_text::node_text(&text, node, self.incarnation[node]));
        let shared = lock(&self.shared);
        let messages = account(
            shared.sends,
            shared.deliveries.delivered,
            &totals,
            self.scenario.workload.channel,
        );
        let violations: Violations = shared.deliveries.violations;
        let latencies = &shared.deliveries.latencies;
        let millis = |d: Duration| d.as_secs_f64() * 1000.0;
        let latency = LatencySummary {
            samples: latencies.count(),
            p50_ms: millis(latencies.quantile(0.5)),
            p99_ms: millis(latencies.quantile(0.99)),
            max_ms: millis(latencies.max()),
        };
        let mut digest = blake3::Hasher::new();
        digest.update(self.context.auditor().state().as_bytes());
        digest.update(&self.network.digest());
        let seconds = |d: Duration| d.as_secs_f64();
        let report = Report {
            seed: self.options.seed,
            wall_seconds: 0.0,
            digest: digest.finalize().to_hex().to_string(),
            mesh: Mesh {
                first_full_after_seconds: self.observed.first_full.map(seconds),
                last_fault_over_at_seconds: self.scenario.last_fault_over().map(seconds),
                restored_after_seconds: self.observed.restored.map(seconds),
                bound_seconds: seconds(self.scenario.mesh_bound()),
                full_at_end: self.observed.full,
            },
            connected_pairs: self.observed.pairs.clone(),
            messages,
            violations,
            latency,
            handshakes: by_labels(
                &totals,
                "handshakes_total",
                &["direction", "outcome", "reason"],
            ),
            connections_closed: by_labels(&totals, "connections_closed_total", &["reason"]),
            network: self.network.stats().into(),
            consensus: self.scenario.consensus_bound().map(|bound| {
                lock_ledger(&self.ledger).summary(
                    self.scenario.duration,
                    self.scenario.last_fault_over(),
                    bound,
                )
            }),
            scenario: self.scenario.clone(),
        };
        drop(shared);
        if let Some(recorder) = &mut self.recorder {
            recorder.write(&Record::End(record::End::of(&report, now.as_secs_f64())));
        }
        Outcome { report, metrics }
    }
}

/// Where every message of the workload went; see [`Messages::not_delivered`].
fn account(counted: Sends, delivered: u64, totals: &Totals, channel: u64) -> Messages {
    let accepted = counted.accepted;
    let channel = channel.to_string();
    let channel_total = |direction: &str, fate: &str| {
        metrics_text::sum(
            totals,
            "messages_total",
            &[
                ("channel", channel.as_str()),
                ("direction", direction),
                ("fate", fate),
            ],
        ) as u64
    };
    let rate_limited_outbound = channel_total("outbound", "rate_limited");
    let queue_full = channel_total("outbound", "dropped_full");
    let dropped_disconnected = channel_total("outbound", "dropped_disconnected");
    let written = channel_total("outbound", "sent");
    let received = channel_total("inbound", "received");
    let rate_limited_inbound = channel_total("inbound", "rate_limited");
    let backlog_full = channel_total("inbound", "dropped_full");
    let not_delivered = BTreeMap::from([
        (
            "no_connection".to_string(),
            counted
                .sent
                .saturating_sub(accepted + rate_limited_outbound + queue_full),
        ),
        ("rate_limited_outbound".into(), rate_limited_outbound),
        ("queue_full".into(), queue_full),
        (
            "queued_at_crash_or_end".into(),
            accepted.saturating_sub(written + dropped_disconnected),
        ),
        ("dropped_disconnected".into(), dropped_disconnected),
        (
            "cut_in_flight".into(),
            written.saturating_sub(received + rate_limited_inbound + backlog_full),
        ),
        ("rate_limited_inbound".into(), rate_limited_inbound),
        ("backlog_full".into(), backlog_full),
        (
            "in_backlog_at_crash_or_end".into(),
            received.saturating_sub(delivered),
        ),
    ]);
    Messages {
        sent: counted.sent,
        delivered,
        not_delivered,
        outsider_broadcasts: counted.outsider_broadcasts,
        outsider_recipients: counted.outsider_recipients,
    }
}

/// Sums of counter `name` keyed by the values of `keys` joined by spaces (a value `ok`
/// after the first is left out: `inbound ok`, not `inbound ok ok`).
pub(crate) fn by_labels(totals: &Totals, name: &str, keys: &[&str]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for ((n, labels), value) in totals {
        if n != name {
            continue;
        }
        let mut key: Vec<&str> = Vec::new();
        for value in keys
            .iter()
            .filter_map(|key| metrics_text::label(labels, key))
        {
            if !(value == "ok" && key.contains(&"ok")) {
                key.push(value);
            }
        }
        *out.entry(key.join(" ")).or_default() += *value as u64;
    }
    out
}

/// The sum of the runtime's `runtime_tasks_running` gauges in `text`.
fn running_tasks(text: &str) -> u64 {
    text.lines()
        .filter(|line| line.starts_with("runtime_tasks_running"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn send_interval(per_second: f64) -> Option<Duration> {
    (per_second > 0.0)
        .then(|| Duration::from_secs_f64(1.0 / per_second).max(Duration::from_nanos(1)))
}

fn since(begin: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(begin).unwrap_or_default()
}
