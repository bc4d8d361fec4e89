//! Which peers the network may talk to: the tracked peer sets, their addresses and the blocked
//! peers.
//!
//! [`Book`] is plain data with no I/O or clock of its own (the caller passes the time), so the
//! rules are tested directly and the directory that holds it stays thin.

mod book;

pub use book::{Book, Changes, Entry, PeerSet, StaleIndex};
