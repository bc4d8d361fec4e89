//! The consensus workload: commonware-consensus simplex (ed25519 certificates, round-robin
//! leaders) on every member, over palisade-p2p on the simulated links, through the scenario's
//! faults. A crashed member restarts with the same key and the same storage partition, so it
//! recovers its journal and rejoins.
//!
//! [`start`] runs one validator on any palisade-p2p network, simulated or on tokio (the
//! `validator` example runs the same code over TCP): it registers simplex's three channels,
//! and the application proposes `SHA-256(view || parent view || parent payload)` and accepts
//! exactly that, so every honest member can verify a proposal without fetching anything. An
//! [`Observer`] hears of every proposal and finalization.
//!
//! In a simulated run every member reports to one ledger, which checks safety (no two
//! members finalize different payloads at one view) and measures finalization latency (from
//! the leader's proposal to each member's finalization, in simulated time) and when
//! finalization resumed after the last fault.

mod application;

use crate::latency::Latencies;
use commonware_consensus::{
    simplex::{self, ForwardPolicy, SkipPolicy, elector::RoundRobin, max_payload_size},
    types::{Epoch, ViewDelta},
};
use commonware_cryptography::{Sha256, ed25519, sha256::Digest};
use commonware_parallel::Sequential;
use commonware_runtime::{
    Clock, Handle, Metrics, Quota, Spawner, Storage, buffer::paged::CacheRef,
};
use commonware_utils::{NZDuration, NZU16, NZUsize, ordered::Set};
use palisade_p2p::Oracle;
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    num::NonZeroU32,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

/// The certificate scheme: ed25519, attributable.
pub(crate) type Scheme = simplex::scheme::ed25519::Scheme;

/// The p2p channels simplex runs on: votes, certificates, resolver.
pub const CHANNELS: [u64; 3] = [1000, 1001, 1002];

/// Namespace of the consensus signatures (the p2p handshake has its own).
const NAMESPACE: &[u8] = b"palisade-simulation-consensus";

/// Messages each consensus channel's backlog holds.
const BACKLOG: usize = 4096;

/// Per-peer quota on each consensus channel, as simplex's own tests run it.
const QUOTA_PER_SECOND: u32 = 1024;

/// The simplex timers of every member, in simulated time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// How long a member waits for the leader's proposal before voting to skip the view.
    #[serde(with = "crate::scenario::seconds", rename = "leader_timeout_seconds")]
    pub leader_timeout: Duration,
    /// How long a member waits for a notarization to certify before voting to skip.
    #[serde(
        with = "crate::scenario::seconds",
        rename = "certification_timeout_seconds"
    )]
    pub certification_timeout: Duration,
    /// How often a member repeats its skip vote while a view is stuck.
    #[serde(with = "crate::scenario::seconds", rename = "timeout_retry_seconds")]
    pub timeout_retry: Duration,
}

impl Default for Settings {
    /// 1 s for the leader, 2 s to certify, 3 s between repeated skip votes: a few round
    /// trips of a 50-70 ms link each, so an honest leader is never skipped, and a crashed one
    /// costs about a second.
    fn default() -> Self {
        Self {
            leader_timeout: Duration::from_secs(1),
            certification_timeout: Duration::from_secs(2),
            timeout_retry: Duration::from_secs(3),
        }
    }
}

/// What the members' reporters saw.
#[derive(Default)]
pub(crate) struct Ledger {
    /// The payload first finalized at each view, and when.
    finalized: BTreeMap<u64, (Digest, Duration)>,
    /// When each view was first proposed.
    proposed_at: BTreeMap<u64, Duration>,
    /// Each member's highest finalized view.
    highest: BTreeMap<usize, u64>,
    /// Finalizations of a payload other than the one first finalized at that view.
    conflicts: u64,
    /// Proposal-to-finalization time, one sample per member and view.
    latencies: Latencies,
    /// Every time a view was finalized for the first time, in order.
    first_finalizations: Vec<Duration>,
}

pub(crate) fn lock(ledger: &Mutex<Ledger>) -> MutexGuard<'_, Ledger> {
    ledger
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Ledger {
    fn proposed(&mut self, view: u64, at: Duration) {
        self.proposed_at.entry(view).or_insert(at);
    }

    fn finalized(&mut self, member: usize, view: u64, payload: Digest, at: Duration) {
        match self.finalized.get(&view) {
            Some((first, _)) if *first != payload => self.conflicts += 1,
            Some(_) => {}
            None => {
                self.finalized.insert(view, (payload, at));
                self.first_finalizations.push(at);
            }
        }
        let highest = self.highest.entry(member).or_default();
        *highest = (*highest).max(view);
        if let Some(proposed) = self.proposed_at.get(&view) {
            self.latencies.record(at.saturating_sub(*proposed));
        }
    }

    /// Member `member`'s highest finalized view, if it finalized any.
    pub(crate) fn highest_of(&self, member: usize) -> Option<u64> {
        self.highest.get(&member).copied()
    }

    /// How far consensus has come: views finalized, the highest, and the latency quantiles
    /// so far.
    pub(crate) fn progress(&self) -> crate::record::ConsensusProgress {
        let millis = |d: Duration| d.as_secs_f64() * 1000.0;
        crate::record::ConsensusProgress {
            finalized_views: self.finalized.len() as u64,
            highest_view: self.finalized.keys().next_back().copied().unwrap_or(0),
            latency_p50_ms: millis(self.latencies.quantile(0.5)),
            latency_p99_ms: millis(self.latencies.quantile(0.99)),
        }
    }

    /// The figures for the report; `bound` is how soon after `last_fault` finalization must
    /// resume.
    pub(crate) fn summary(
        &self,
        duration: Duration,
        last_fault: Option<Duration>,
        bound: Duration,
    ) -> Summary {
        let millis = |d: Duration| d.as_secs_f64() * 1000.0;
        let resumed_after = last_fault.and_then(|fault| {
            self.first_finalizations
                .iter()
                .find(|at| **at > fault)
                .map(|at| (*at - fault).as_secs_f64())
        });
        let mut previous = Duration::ZERO;
        let mut longest_stall = Duration::ZERO;
        for at in self.first_finalizations.iter().copied().chain([duration]) {
            longest_stall = longest_stall.max(at.saturating_sub(previous));
            previous = at;
        }
        Summary {
            finalized_views: self.finalized.len() as u64,
            longest_stall_seconds: longest_stall.as_secs_f64(),
            highest_view: self.finalized.keys().next_back().copied().unwrap_or(0),
            lowest_member_view: self.highest.values().min().copied().unwrap_or(0),
            views_per_second: self.finalized.len() as f64 / duration.as_secs_f64().max(1e-9),
            latency_samples: self.latencies.count(),
            latency_p50_ms: millis(self.latencies.quantile(0.5)),
            latency_p99_ms: millis(self.latencies.quantile(0.99)),
            latency_max_ms: millis(self.latencies.max()),
            resumed_after_last_fault_seconds: resumed_after,
            last_fault_over_at_seconds: last_fault.map(|at| at.as_secs_f64()),
            resume_bound_seconds: bound.as_secs_f64(),
            conflicting_finalizations: self.conflicts,
        }
    }
}

/// Consensus figures of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Summary {
    /// Views with a finalization certificate.
    pub finalized_views: u64,
    /// The highest finalized view.
    pub highest_view: u64,
    /// The lowest of the members' highest finalized views (a member down at the end lags).
    pub lowest_member_view: u64,
    /// Finalized views per simulated second over the whole run.
    pub views_per_second: f64,
    /// The longest stretch of simulated time without a newly finalized view (from the start,
    /// and to the end).
    pub longest_stall_seconds: f64,
    /// Proposal-to-finalization samples (one per member and view).
    pub latency_samples: u64,
    /// Median proposal-to-finalization time, simulated.
    pub latency_p50_ms: f64,
    /// 99th percentile of the same.
    pub latency_p99_ms: f64,
    /// The longest.
    pub latency_max_ms: f64,
    /// From the end of the last fault to the first view finalized after it.
    pub resumed_after_last_fault_seconds: Option<f64>,
    /// When the last fault was over, if there was one.
    pub last_fault_over_at_seconds: Option<f64>,
    /// How soon after the last fault finalization must resume
    /// ([`Scenario::consensus_bound`](crate::Scenario::consensus_bound)).
    pub resume_bound_seconds: f64,
    /// Members that finalized a payload other than the one another member finalized at the
    /// same view: any is a safety violation.
    pub conflicting_finalizations: u64,
}

impl Summary {
    /// The consensus invariants this run broke, in words; empty when all held: safety (no
    /// conflicting finalization), progress (some view finalized), and liveness (finalization
    /// resumed after the last fault, within the bound).
    pub fn broken(&self) -> Vec<String> {
        let mut broken = Vec::new();
        if self.conflicting_finalizations > 0 {
            broken.push(format!(
                "safety: {} conflicting finalizations",
                self.conflicting_finalizations
            ));
        }
        if self.finalized_views == 0 {
            broken.push("progress: no view was finalized".to_string());
        }
        if let Some(at) = self.last_fault_over_at_seconds {
            match self.resumed_after_last_fault_seconds {
                None => broken.push(format!(
                    "liveness: nothing finalized after the last fault (over at {at:.2} s)"
                )),
                Some(after) if after > self.resume_bound_seconds => broken.push(format!(
                    "liveness: finalization resumed {after:.2} s after the last fault, over the \
                     {:.2} s bound",
                    self.resume_bound_seconds
                )),
                Some(_) => {}
            }
        }
        broken
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "\nconsensus (simplex, ed25519)")?;
        writeln!(
            f,
            "  finalized views                  {} (highest {}, every member at {} or above)",
            self.finalized_views, self.highest_view, self.lowest_member_view
        )?;
        writeln!(
            f,
            "  views per simulated second       {:.2}",
            self.views_per_second
        )?;
        writeln!(
            f,
            "  finalization latency (simulated) p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.latency_p50_ms, self.latency_p99_ms, self.latency_max_ms
        )?;
        writeln!(
            f,
            "  longest stall                    {:.2} s",
            self.longest_stall_seconds
        )?;
        if let Some(at) = self.last_fault_over_at_seconds {
            let resumed = self
                .resumed_after_last_fault_seconds
                .map_or_else(|| "never".to_string(), |s| format!("{s:.2} s"));
            writeln!(
                f,
                "  resumed after last fault         {resumed} (last fault over at {at:.2} s; bound {:.2} s)",
                self.resume_bound_seconds
            )?;
        }
        let broken = self.broken();
        writeln!(
            f,
            "  invariants                       {}",
            if broken.is_empty() {
                "held (safety: one payload per view; liveness: resumed after the faults)"
                    .to_string()
            } else {
                format!("BROKEN: {}", broken.join("; "))
            }
        )
    }
}

/// Hears what one validator's application sees.
pub trait Observer: Clone + Send + Sync + 'static {
    /// This validator, as leader, proposed at `view`.
    fn proposed(&self, view: u64);
    /// This validator saw `payload` finalized at `view`.
    fn finalized(&self, view: u64, payload: &Digest);
}

/// One validator.
pub struct Validator<O> {
    /// Its identity, which signs its votes (and its p2p handshakes).
    pub key: ed25519::PrivateKey,
    /// Every validator's public key, this one's included.
    pub participants: Set<ed25519::PublicKey>,
    /// simplex's timers.
    pub settings: Settings,
    /// The storage partition of its journal: keep it across restarts.
    pub partition: String,
    /// Who hears of its proposals and finalizations.
    pub observer: O,
}

impl<O> std::fmt::Debug for Validator<O> {
    /// The public key, never the private one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field(
                "public_key",
                &commonware_cryptography::Signer::public_key(&self.key),
            )
            .field("participants", &self.participants.len())
            .field("settings", &self.settings)
            .field("partition", &self.partition)
            .finish_non_exhaustive()
    }
}

/// The largest payload simplex sends among `participants` members: every channel of the
/// network must carry it.
pub fn max_message_bytes(participants: usize) -> usize {
    max_payload_size::<Scheme, Digest>(participants as u32)
}

/// Registers simplex's three channels ([`CHANNELS`]) on `network` and starts the engine on
/// them, on `context`; `oracle` is its blocker. Call before `network.start()`. The returned
/// handle ends the engine.
///
/// # Panics
/// If the network's channels cannot carry simplex's largest message, if the validator's key
/// is not among the participants, or if the settings break simplex's rules
/// ([`Scenario::validate`](crate::Scenario::validate) checks them).
pub fn start<C, S, O>(
    context: C,
    validator: Validator<O>,
    network: &mut palisade_p2p::Network<C, S>,
    oracle: &Oracle<C, ed25519::PublicKey>,
) -> Handle<()>
where
    C: palisade_p2p::Context + Storage + Clock + Spawner + Metrics + CryptoRng,
    S: commonware_cryptography::Signer<PublicKey = ed25519::PublicKey>,
    O: Observer,
{
    let [votes, certificates, resolver] =
        CHANNELS.map(|channel| network.register(channel, quota(), BACKLOG));
    assert!(
        votes.0.max_payload() >= max_message_bytes(validator.participants.len()),
        "the p2p message limit is below simplex's largest message"
    );
    start_on(
        context,
        validator,
        oracle.clone(),
        [votes, certificates, resolver],
    )
}

/// The per-peer quota of each consensus channel.
pub fn quota() -> Quota {
    Quota::per_second(NonZeroU32::new(QUOTA_PER_SECOND).expect("non-zero"))
}

/// Starts the engine on channels registered elsewhere (votes, certificates, resolver), with
/// `blocker`: the same validator on any network that implements commonware-p2p's traits.
///
/// # Panics
/// As for [`start`].
pub fn start_on<C, O, B, S, R>(
    context: C,
    validator: Validator<O>,
    blocker: B,
    [votes, certificates, resolver]: [(S, R); 3],
) -> Handle<()>
where
    C: Storage + Clock + Spawner + Metrics + CryptoRng,
    O: Observer,
    B: commonware_p2p::Blocker<PublicKey = ed25519::PublicKey>,
    S: commonware_p2p::Sender<PublicKey = ed25519::PublicKey>,
    R: commonware_p2p::Receiver<PublicKey = ed25519::PublicKey>,
{
    let scheme = Scheme::signer(NAMESPACE, validator.participants, validator.key)
        .expect("the validator is a participant");
    let application = application::Application {
        observer: validator.observer,
    };
    let settings = validator.settings;
    let config = simplex::Config {
        scheme,
        elector: RoundRobin::<Sha256>::default(),
        blocker,
        automaton: application.clone(),
        relay: application.clone(),
        reporter: application,
        strategy: Sequential,
        partition: validator.partition,
        mailbox_size: NZUsize!(1024),
        epoch: Epoch::zero(),
        floor: simplex::Floor::Genesis(genesis()),
        leader_timeout: settings.leader_timeout,
        certification_timeout: settings.certification_timeout,
        timeout_retry: settings.timeout_retry,
        fetch_timeout: NZDuration!(Duration::from_secs(1)),
        fetch_retry_delay: Duration::from_millis(100),
        view_retention: ViewDelta::new(10),
        skip: SkipPolicy::Disabled,
        replay_buffer: NZUsize!(1024 * 1024),
        write_buffer: NZUsize!(1024 * 1024),
        page_cache: CacheRef::new(NZU16!(1024), NZUsize!(10)),
        forward: ForwardPolicy::Disabled,
        track_historical_votes: false,
    };
    let engine = simplex::Engine::new(context.child("simplex"), config);
    engine.start(votes, certificates, resolver)
}

/// A simulated member's observer: it writes to the run's ledger, in simulated time.
pub(crate) struct LedgerObserver<C> {
    pub(crate) member: usize,
    pub(crate) clock: Arc<C>,
    pub(crate) begin: SystemTime,
    pub(crate) ledger: Arc<Mutex<Ledger>>,
}

impl<C> Clone for LedgerObserver<C> {
    fn clone(&self) -> Self {
        Self {
            member: self.member,
            clock: self.clock.clone(),
            begin: self.begin,
            ledger: self.ledger.clone(),
        }
    }
}

impl<C: Clock> LedgerObserver<C> {
    fn now(&self) -> Duration {
        self.clock
            .current()
            .duration_since(self.begin)
            .unwrap_or_default()
    }
}

impl<C: Clock> Observer for LedgerObserver<C> {
    fn proposed(&self, view: u64) {
        let now = self.now();
        lock(&self.ledger).proposed(view, now);
    }

    fn finalized(&self, view: u64, payload: &Digest) {
        let now = self.now();
        lock(&self.ledger).finalized(self.member, view, *payload, now);
    }
}

/// The payload every member starts from.
fn genesis() -> Digest {
    use commonware_cryptography::Hasher as _;
    Sha256::hash(&[b"palisade simulation genesis"])
}
