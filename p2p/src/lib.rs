//! The authenticated peer network of palisade, built on [`palisade_stream`].
//!
//! Work in progress: this crate will hold peer sets, the dial and listen loops, channels with
//! quotas and priorities, and metrics. What is here so far:
//! - [`Config`]: every setting of a node, with `recommended` and `local` presets.
//! - [`wire`]: the messages peers exchange inside a stream (data, ping, pong).
//! - [`tracker`]: the book of tracked peer sets and blocked peers, without I/O.
//! - [`dial_schedule`]: per-peer exponential backoff with jitter for redials.
//! - [`duplicate`]: the rule that leaves one connection when two peers dial each other.

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
