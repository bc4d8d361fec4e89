//! Which peers the network may talk to: the tracked peer sets and the blocked peers.
//!
//! [`Book`] is plain data with no I/O or clock of its own (the caller passes the time), so the
//! tracker actor stays a thin loop around it and the rules are tested directly.

mod book;

pub use book::{Book, Changes, StaleIndex};
