//! The authenticated peer network of palisade, built on [`palisade_stream`].
//!
//! This crate will hold peer sets, the dial and listen loops, channels with quotas and
//! priorities, and metrics. Until then it re-exports the stream layer it stands on.

pub use palisade_stream as stream;
