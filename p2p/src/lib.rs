//! An authenticated peer-to-peer network over [`palisade_stream`]: peer sets by index, one
//! connection per peer, channels with quotas and priorities, keepalive and metrics.
//!
//! # Design
//!
//! [`Network::new`] creates a node and its [`Oracle`]; [`Network::register`] adds channels;
//! [`Network::start`] runs the listener and dialer loops (see `network.rs`, which draws the
//! whole structure). The oracle registers peer sets by increasing index; the union of the
//! newest `tracked_peer_sets` is who may connect. Every connection is one task that runs the
//! stream handshake and then the peer actor: a reader routing what arrives into channel
//! backlogs, and a writer taking queued messages, high priority first, into batched writes.
//!
//! - **One connection per peer.** Of two peers, the one with the smaller key dials; the other
//!   dials only after a grace period. If both connections exist anyway, both sides keep the
//!   one dialed by the smaller key ([`duplicate`]). Messages queued on the connection that is
//!   closed are not moved to the survivor: they are counted as `dropped_disconnected`. A
//!   connection that ends within 5 s counts as a failed dial, so it is retried with backoff.
//! - **Dialing.** Every `dial_interval`, missing peers are dialed in an order shuffled by the
//!   runtime's RNG, with per-peer exponential backoff and jitter ([`dial_schedule`]).
//! - **Listening.** Before any crypto: a per-IP handshake rate and a cap on concurrent
//!   handshakes; then the stream's bouncer admits only tracked, unblocked peers before any
//!   signature is checked.
//! - **Channels.** A quota per peer in each direction and a bounded backlog per channel;
//!   anything dropped is counted (see *Metrics*). An unknown channel, a malformed message or an
//!   oversized record ends the connection. Pings measure round trips; a connection silent for
//!   `max_silence` is closed. A connection that ends cleanly sends the stream's authenticated
//!   close.
//!
//! # Security
//!
//! Everything [`palisade_stream`] provides, plus: peers outside the tracked sets or blocked
//! never complete a handshake and cost no signature check; per-IP and concurrency limits
//! bound handshake work; every queue is bounded (per peer and lane, per channel backlog).
//! Not provided: protection against a tracked peer that uses its own quota to the full, or
//! against many IP addresses (the per-IP limit is per address).
//!
//! # Metrics
//!
//! Registered on the context given to [`Network::new`]: `connected_peers`;
//! `handshakes{direction,outcome,reason}`; `dials{outcome}`;
//! `messages{channel,direction,fate}` with fates `sent`, `received`, `rate_limited`,
//! `dropped_full`, `dropped_disconnected`, `unknown_channel` and direction `outbound` (what this
//! node sends) or `inbound` (what it receives); `bytes{channel,direction,fate}`; `rtt_seconds`;
//! `connections_closed{reason}` (`stopped` by this node, or the failure: `silence`,
//! `malformed`, `unknown_channel`, or the stream's error reason such as `message_too_large`).
//! `sent` means handed to the stream: a connection cut afterwards can still lose it on the
//! wire, which the stream reports to neither side.
//!
//! # Example
//!
//! ```
//! use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
//! use commonware_runtime::{Quota, Runner as _, Supervisor as _, deterministic};
//! use palisade_p2p::{Config, Network, Recipients};
//! use std::{net::SocketAddr, num::NonZeroU32};
//!
//! deterministic::Runner::seeded(1).start(|context| async move {
//!     let keys: Vec<_> = (0..2).map(PrivateKey::from_seed).collect();
//!     let address = |i: u16| SocketAddr::from(([127, 0, 0, 1], 3000 + i));
//!     let set: Vec<_> = (0..2).map(|i| (keys[i].public_key(), address(i as u16))).collect();
//!     let mut channels = Vec::new();
//!     for (i, key) in keys.iter().enumerate() {
//!         let node = context.child("node").with_attribute("index", i);
//!         let config = Config::local(key.clone(), b"my-app", address(i as u16));
//!         let (mut network, mut oracle) = Network::new(node, config);
//!         let quota = Quota::per_second(NonZeroU32::new(100).unwrap());
//!         channels.push(network.register(0, quota, 1024));
//!         oracle.track(0, set.clone()).await;
//!         network.start();
//!     }
//!     // Retry until the connection is up, then receive on the other side.
//!     let (sender, _) = &mut channels[0];
//!     while sender.send(Recipients::All, b"hello".to_vec(), false).await.unwrap().is_empty() {
//!         commonware_runtime::Clock::sleep(&context, std::time::Duration::from_millis(10)).await;
//!     }
//!     let (from, message) = channels[1].1.recv().await.unwrap();
//!     assert_eq!((from, message.as_ref()), (keys[0].public_key(), &b"hello"[..]));
//! });
//! ```

pub mod channels;
mod config;
mod context;
pub mod dial_schedule;
mod dialer;
mod directory;
pub mod duplicate;
mod listener;
mod metrics;
mod network;
mod oracle;
mod peer;
pub mod tracker;
pub mod wire;

pub use channels::Recipients;
pub use config::Config;
pub use context::Context;
pub use network::Network;
pub use oracle::Oracle;
pub use palisade_stream as stream;
