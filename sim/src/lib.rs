//! A deterministic simulated network that runs palisade's real stream and p2p code over
//! links with latency, jitter, bandwidth limits and faults.
//!
//! # Design
//!
//! - [`Network`] is the whole simulated network. Each node is added with its own IP address
//!   and gets a [`NodeNetwork`]: an implementation of `commonware_runtime::Network` (bind,
//!   dial, accept, sink, stream) for that node. [`Context`] wraps a runtime context so that
//!   everything spawned on a node uses the node's network; palisade-p2p runs on it unchanged.
//! - A connection is two pipes, one each way: each write becomes readable
//!   after the link's latency plus jitter, paced by the sender's uplink and the receiver's
//!   downlink ([`Bandwidth`]), never reordered. A pipe holds at most
//!   [`Config::window_bytes`] before the writer waits, so memory per connection is bounded
//!   whatever the reader does.
//! - Faults: partitions (dials across fail; connections across are cut), crash and restart of
//!   a node (its listeners close, its connections are cut; stopping its tasks is the
//!   caller's), and resets of random connections.
//! - Ports: each node has its own ephemeral ports, reused once a connection is gone, so a run
//!   can make any number of connections over time.
//! - Whole runs: a [`Scenario`] (members, outsiders, links, a workload and a schedule of
//!   faults) is checked by [`Scenario::validate`] and run by [`run`], which starts the real
//!   palisade-p2p on every node, checks every delivery (nothing from outside the peer set,
//!   no duplicate, order per sender) and returns a [`Report`]. The `simulate` command is
//!   the same from the command line.
//! - Consensus: with [`Scenario::consensus`] every member also runs commonware-consensus
//!   simplex on its palisade-p2p node ([`consensus`]); the report adds finalization figures
//!   and checks safety and liveness. [`consensus::start`] is the same validator for any
//!   palisade-p2p network, on tokio too.
//! - The event log: with [`Options::record`] a run hands every record of its log
//!   ([`record`]) to the caller as it happens: faults, each node's view of each peer as it
//!   changes, and counters of every node and link each second. `simulate --record FILE`
//!   writes it as NDJSON; the same seed writes the same bytes. With the `web` feature (on by
//!   default), [`web::Viewer`] serves a live page of a run from those records
//!   (`simulate --serve`), or of a recorded log (`simulate --view`).
//! - The reference: [`Options::stack`] runs commonware-p2p's `lookup` (SakeCups) on every node
//!   instead, over the same links, so both stacks carry the same scenario side by side
//!   ([`Stack`]). The node [`Context`] implements everything either needs, storage and name
//!   resolution included (both delegate to the runtime underneath).
//!
//! # Determinism
//!
//! Time comes from the runtime's clock, randomness (jitter, which connection to reset) from
//! its RNG, and every map is ordered. On `commonware_runtime::deterministic` the same seed
//! and the same scenario give the same run; [`Network::digest`] hashes every write
//! (connection, direction, due time, bytes), and together with the runtime's auditor state it
//! is the run's fingerprint.
//!
//! # Example
//!
//! ```
//! use commonware_runtime::{
//!     Clock as _, Listener as _, Network as _, Runner as _, Sink as _, Stream as _,
//!     Supervisor as _, deterministic,
//! };
//! use palisade_sim::{Config, Link, Network};
//! use std::{net::SocketAddr, time::Duration};
//!
//! deterministic::Runner::seeded(7).start(|context| async move {
//!     let config = Config {
//!         default_link: Link::new(Duration::from_millis(40), Duration::ZERO),
//!         ..Config::default()
//!     };
//!     let network = Network::new(context.child("sim"), config);
//!     let london = network.add_node([10, 0, 0, 1].into()).unwrap();
//!     let tokyo = network.add_node([10, 0, 0, 2].into()).unwrap();
//!     let mut listener = tokyo.bind(SocketAddr::from(([10, 0, 0, 2], 9000))).await.unwrap();
//!
//!     let start = context.current();
//!     let (mut sink, _stream) = london.dial(listener.local_addr().unwrap()).await.unwrap();
//!     let (_from, _sink, mut stream) = listener.accept().await.unwrap();
//!     sink.send(b"konnichiwa".to_vec()).await.unwrap();
//!     stream.recv(10).await.unwrap();
//!     // One round trip to connect, one way for the bytes.
//!     let elapsed = context.current().duration_since(start).unwrap();
//!     assert!(elapsed >= Duration::from_millis(120));
//!
//!     // Wherever two groups cannot reach each other, their connections are cut.
//!     assert_eq!(network.partition(&[vec![[10, 0, 0, 1].into()]]).unwrap(), 1);
//!     assert!(stream.recv(1).await.is_err());
//! });
//! ```
//!
//! # Not modelled
//!
//! Congestion control, reordering, and the TCP handshake beyond one round trip for a dial.
//! Loss is modelled as its effect on a reliable stream: a lost segment stalls its connection
//! for a retransmission timeout ([`Link::with_loss`]); nothing arrives out of order or twice.

pub mod consensus;
mod context;
mod deliveries;
mod latency;
mod link;
mod metrics_text;
mod network;
mod pipe;
mod probe;
pub mod record;
mod recorder;
mod reference;
pub mod report;
mod run;
pub mod scenario;
mod socket;
#[cfg(feature = "web")]
pub mod web;

pub use context::Context;
pub use deliveries::Violations;
pub use link::{Bandwidth, Link, MIN_RETRANSMISSION_TIMEOUT, SEGMENT_BYTES};
pub use network::{Config, EPHEMERAL_PORTS, Error, Network, NodeNetwork, Stats};
pub use recorder::RecordFn;
pub use reference::Stack;
pub use report::Report;
pub use run::{NAMESPACE, Options, Outcome, Progress, ProgressFn, run};
pub use scenario::{Action, Fault, MAX_LOSS_PERCENT, Scenario, ScenarioError, Timing, Workload};
pub use socket::{Listener, Sink, Stream};
