//! An authenticated peer-to-peer network over [`palisade_stream`]: peer sets by index, one
//! connection per peer, channels with quotas and priorities, keepalive and metrics.
//!
//! # Design
//!
//! [`Network::new`] creates a node and its [`Oracle`]; [`Network::register`] adds channels;
//! [`Network::start`] runs the listener and dialer loops (see `network.rs`, which draws the
//! whole structure). The oracle registers peer sets by increasing index; the union of the
//! newest `tracked_peer_sets` (primary and secondary peers) is who may connect. Every connection is one task that runs the
//! stream handshake and then the peer actor: a reader routing what arrives into channel
//! backlogs, and a writer taking queued messages, high priority first, into batched writes.
//!
//! - **One connection per peer, nothing lost when dials meet.** Of two peers, the one with
//!   the smaller key (the pair's arbiter) dials; the other dials only after a grace period.
//!   If both connections complete anyway, the arbiter keeps one and says so with the first
//!   message on it; the other side sends nothing on a connection until it is kept
//!   ([`duplicate`]). So no message is queued on a connection that is then closed as a
//!   duplicate. A newer connection that replaces an older one (the peer reconnected) takes
//!   over the queues towards the peer, in order; `dropped_disconnected` counts what was queued
//!   for a peer whose connection ended with none to replace it, and what was being written
//!   when it ended. A connection that ends within 5 s counts as a failed dial, so it is
//!   retried with backoff.
//! - **Dialing.** Every `dial_interval`, missing primary peers are dialed in an order shuffled
//!   by the runtime's RNG, with per-peer exponential backoff and jitter ([`dial_schedule`]). A
//!   DNS ingress is resolved through the runtime's resolver at each dial (one of its addresses,
//!   picked at random); a name that does not resolve counts as a failed dial
//!   (`dials{outcome="resolve_failed"}`). The ingress and egress IPs of the tracked peers
//!   decide who may take the handshake slots kept for members (see *Listening*); nobody is
//!   refused for coming from another address: the bouncer admits by key.
//! - **Listening.** Before anything is read: handshake rates per address and per subnet (a
//!   tracked peer's own address is exempt from its subnet's), at most `max_handshakes_per_ip`
//!   at once from one address, and a cap on concurrent handshakes of which
//!   `reserved_handshakes` only tracked peers' addresses may take; then the dialer has
//!   `hello_timeout` to send its Hello, and the stream's bouncer admits only tracked,
//!   unblocked peers before any signature is checked.
//! - **Channels.** A quota per peer in each direction and a bounded backlog per channel.
//!   Outbound, a send over quota leaves that peer out (`LimitedSender::check` says when to
//!   retry). Inbound, a message over the peer's quota is held until the quota admits it, up
//!   to 1 s: the connection's reader waits, so the sender is slowed by transport backpressure
//!   (as commonware-p2p does), and an honest sender that pays its quota never loses a
//!   message to timing jitter. Meanwhile that peer's other channels wait too: only a peer
//!   that ignores the quota (palisade's and commonware's senders check it before sending)
//!   delays itself this way. A message that would wait longer is dropped. Anything dropped is
//!   counted (see *Metrics*). An unknown channel, a malformed message or an
//!   oversized record ends the connection. Pings measure round trips; a connection silent for
//!   `max_silence` is closed. A connection that ends cleanly sends the stream's authenticated
//!   close.
//! - **Status.** [`Oracle::peers`] lists every tracked peer with its state (connected,
//!   dialing, blocked, disconnected), address, dial failures, queued bytes, last ping round
//!   trip, and its traffic and drops over all its connections while tracked ([`Traffic`]):
//!   the per-peer view that the metrics leave out to keep their labels bounded.
//!
//! # Security
//!
//! Everything [`palisade_stream`] provides, plus: peers outside the tracked sets or blocked
//! never complete a handshake and cost no signature check; per-IP and concurrency limits
//! bound handshake work; every queue is bounded in messages and in bytes (per peer, per
//! channel backlog). Not provided: protection against a tracked peer that uses its own quota
//! to the full. Strangers with addresses in many subnets can still take the unreserved
//! handshake slots (each for at most the hello timeout); they cannot take the reserved ones.
//!
//! # Memory
//!
//! What a node holds, at most, in payload bytes (`M` is `max_message_size`; a bounded queue
//! always takes one message when empty, hence the `max`):
//!
//! - **per connected peer**: `max(max_queued_bytes, M)` queued towards it, plus the batch
//!   being written (at most 128 KiB plus one message), plus the one message its reader holds
//!   (at most `M`, also while it waits for the peer's quota). With `recommended`, 16 MiB +
//!   4 MiB + 4 MiB + 128 KiB: about 24 MiB for a peer that sends and receives the largest
//!   messages as fast as it may and never reads; an idle connection holds none of it.
//! - **per channel**: `max(max_backlog_bytes, M)` waiting for the application, from all
//!   peers together (64 MiB with `recommended`).
//! - The stream below adds its frame buffers per connection (see [`palisade_stream`]).
//! - **per peer that is not yet connected**: at most two connections waiting for the
//!   arbiter's `Keep` (one inbound, one dialed), each for at most `handshake_timeout`, each
//!   with its stream's buffers (at most one message of `M` being read).
//!
//! # Metrics
//!
//! Registered on the context given to [`Network::new`]: `connected_peers`;
//! `handshakes{direction,outcome,reason}`; `dials{outcome}` (`connected`, `resolve_failed`,
//! `connect_failed`, `handshake_failed`, or why the connection was not used: `not_kept`,
//! `keep_timeout`, `malformed`, `duplicate`, `not_allowed`, `stopped`);
//! `messages{channel,direction,fate}` with fates `sent`, `received`, `rate_limited`, `delayed`,
//! `dropped_full`, `dropped_disconnected`, `unknown_channel` and direction `outbound` (what this
//! node sends) or `inbound` (what it receives), and inbound `delayed` for messages that
//! waited for the peer's quota before going on (they are counted again as received or
//! dropped); `bytes{channel,direction,fate}`; `rtt_seconds`;
//! `connections_closed{reason}` (`stopped` by this node, or the failure: `silence`,
//! `malformed`, `unknown_channel`, or the stream's error reason such as `message_too_large`;
//! for a connection that never carried messages: `duplicate` when this node, as arbiter,
//! kept another, `not_kept` when the arbiter closed it unkept, `keep_timeout`, `malformed`
//! (its first message was not `Keep`), `superseded` (a newer one from the peer waits for its
//! `Keep`), `not_allowed`, `stopped`).
//! `sent` means handed to the stream: a connection cut afterwards can still lose it on the
//! wire, which the stream reports to neither side.
//!
//! # The commonware-p2p traits
//!
//! palisade-p2p is used through commonware-p2p 2026.10.0's application traits, so an engine
//! written against them (simplex consensus, the resolver, broadcast) runs on it unchanged:
//!
//! | trait | implemented by | palisade's meaning |
//! |---|---|---|
//! | [`LimitedSender`] (and so [`Sender`]) | [`channels::Sender`] (`Clone`) | `check` resolves the recipients among connected peers and takes one unit of each one's channel quota; when every one is over quota it returns the time all are within quota again |
//! | [`CheckedSender`] | [`channels::Checked`] | `send` queues towards each recipient (high or low lane); `Rejected` when every queue was full, `Outcome(Closed)` once the network stopped |
//! | [`Receiver`] | [`channels::Receiver`] | `capacity()` is the channel's backlog |
//! | [`Blocker`] | [`Oracle`] | `block` disconnects and refuses for `block_duration`; `blocked()` yields the set now and after every block and expiry |
//! | [`Provider`] | [`Oracle`] | `peer_set(id)` while tracked; `subscribe()` starts with the newest set |
//! | [`AddressableManager`] | [`Oracle`] | `track` registers a set with [`Address`]es (a DNS ingress is resolved at each dial); `overwrite` moves peers without a new set |
//! | [`Manager`] | [`Oracle`] | `track` by keys alone: such peers may connect, and are dialed once an address is known |
//!
//! Secondary peers may connect and receive (`Recipients::All` includes them once connected)
//! but are never dialed, and `TrackedPeers::primary` never lists them. Beyond the traits,
//! palisade keeps its own knobs as methods: [`Network::register`] takes a backlog per channel,
//! [`channels::Sender::max_payload`] tells the payload limit, and [`Config`] holds every limit.
//!
//! # Example
//!
//! ```
//! use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
//! use commonware_runtime::{Quota, Runner as _, Supervisor as _, deterministic};
//! use commonware_utils::ordered::Map;
//! use palisade_p2p::{
//!     Address, AddressableManager as _, Config, Network, Receiver as _, Recipients, Sender as _,
//! };
//! use std::{net::SocketAddr, num::NonZeroU32};
//!
//! deterministic::Runner::seeded(1).start(|context| async move {
//!     let keys: Vec<_> = (0..2).map(PrivateKey::from_seed).collect();
//!     let address = |i: u16| SocketAddr::from(([127, 0, 0, 1], 3000 + i));
//!     let set: Map<_, Address> = Map::from_iter_dedup(
//!         (0..2).map(|i| (keys[i].public_key(), address(i as u16).into())),
//!     );
//!     let mut channels = Vec::new();
//!     for (i, key) in keys.iter().enumerate() {
//!         let node = context.child("node").with_attribute("index", i);
//!         let config = Config::local(key.clone(), b"my-app", address(i as u16));
//!         let (mut network, mut oracle) = Network::new(node, config);
//!         let quota = Quota::per_second(NonZeroU32::new(100).unwrap());
//!         channels.push(network.register(0, quota, 1024));
//!         oracle.track(0, set.clone());
//!         network.start();
//!     }
//!     // Retry until the connection is up, then receive on the other side.
//!     let (sender, _) = &mut channels[0];
//!     while sender.send(Recipients::All, b"hello".to_vec(), false).is_empty() {
//!         commonware_runtime::Clock::sleep(&context, std::time::Duration::from_millis(10)).await;
//!     }
//!     let (from, message) = channels[1].1.recv().await.unwrap();
//!     assert_eq!((from, message.as_ref()), (keys[0].public_key(), &b"hello"[..]));
//! });
//! ```

mod admission;
mod budget;
pub mod channels;
mod config;
mod context;
pub mod dial_schedule;
mod dialer;
mod directory;
pub mod duplicate;
mod error;
mod establish;
mod events;
mod listener;
mod metrics;
mod network;
mod oracle;
mod peer;
mod status;
pub mod tracker;
pub mod wire;

pub use config::Config;
pub use context::Context;
pub use error::Error;
pub use network::Network;
pub use oracle::Oracle;
pub use palisade_stream as stream;
pub use status::{PeerState, PeerStatus, Traffic};

/// The crates whose types this API names (keys and signers, runtime traits and quotas,
/// ordered sets and maps), re-exported so that a user needs no version of their own.
pub use commonware_cryptography as cryptography;
pub use commonware_runtime as runtime;
pub use commonware_utils as utils;

pub use commonware_actor::{Feedback, Unreliable};

pub use commonware_p2p::{
    Address, AddressableManager, AddressableTrackedPeers, Blocker, CheckedSender, Ingress,
    LimitedSender, Manager, PeerSetUpdate, Provider, Receiver, Recipients, Sender, TrackedPeers,
};
