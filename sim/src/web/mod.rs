//! A live web view of a run: an HTTP server that streams the run's event log
//! ([`crate::record`]) to a page in the browser, as the run makes it or from a recorded file.
//!
//! # Design
//!
//! - [`Viewer::start`] binds the address at once (so a bad address is an error to the
//!   caller, not a log line) and serves from a thread of its own, on a tokio runtime, with
//!   axum's router over hyper. The simulation calls [`Viewer::publish`] with each record and
//!   [`Viewer::finish`] at the end; publishing never waits for a browser.
//! - Routes: `/` the page, `/app.js` and `/style.css` its code and style (all embedded in
//!   the binary: no network at run time, no build step), `/events` the log as server-sent
//!   events (one record per event, from the start of the run, then live), `/status` the
//!   server's own counts as JSON. Anything else is 404; a method other than `GET` is 405.
//! - Memory: the log is kept once, in memory, for every client (a client is a cursor into
//!   it, see `hub`); at most [`MAX_CLIENTS`] read at once, at most [`MAX_CONNECTIONS`]
//!   connections are open, and a request's head must arrive within [`HEADER_TIMEOUT`].
//! - A client that stops reading is dropped: once it is behind and has taken nothing for
//!   the stall timeout ([`STALL_TIMEOUT`] unless set), its connection is closed and counted
//!   (`clients_dropped_slow` in `/status`).
//!
//! # Security
//!
//! The page and its data are for whoever can reach the address: bind it to loopback (the
//! examples do) unless the run is meant to be public. The server reads nothing from a client
//! but the request line and headers (no body, no query is used), serves only its embedded
//! files and the log, and sends a content security policy that lets the page load nothing
//! from anywhere else.

mod hub;
mod server;

pub use hub::{Counts, MAX_CLIENTS};
pub use server::{HEADER_TIMEOUT, MAX_CONNECTIONS, STALL_TIMEOUT, Viewer};
