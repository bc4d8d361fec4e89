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
//! examples do) unless the run is meant to be public; binding elsewhere is warned about on
//! standard error. A request whose `Host` is a name other than `localhost` is refused (403):
//! a web page the operator visits cannot rebind its own name to this address and read the
//! view ([`host_is_address`]). The server reads nothing from a client
//! but the request line and headers (no body, no query is used), serves only its embedded
//! files and the log, and sends a content security policy that lets the page load nothing
//! from anywhere else.

mod hub;

/// Whether the `Host` header `host` names the server by address (an IP literal, bracketed
/// for IPv6, or `localhost`, with or without a port), as a browser that was pointed at the
/// address sends it. A page that rebinds its own domain to a loopback address sends that
/// domain instead, and is refused.
pub fn host_is_address(host: &str) -> bool {
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        Some(bracketed) => {
            return bracketed
                .split(']')
                .next()
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                name
            } else {
                host
            }
        }),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::host_is_address;

    #[test]
    fn only_addresses_and_localhost_are_hosts() {
        for good in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "localhost:80",
            "LOCALHOST",
            "[::1]:8080",
            "[::1]",
            "10.1.2.3:9",
        ] {
            assert!(host_is_address(good), "{good}");
        }
        for bad in [
            "evil.example:8080",
            "evil.example",
            "",
            "localhost.evil.example",
            "127.0.0.1.nip.io:80",
            "[evil]:80",
            "::1",
        ] {
            assert!(!host_is_address(bad), "{bad}");
        }
    }
}
mod server;

pub use hub::{Counts, MAX_CLIENTS};
pub use server::{HEADER_TIMEOUT, MAX_CONNECTIONS, STALL_TIMEOUT, Viewer};
