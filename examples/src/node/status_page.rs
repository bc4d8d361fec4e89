//! The node's live page: `GET /` shows this node's peers (state, address, round trip, bytes
//! each way, queue, drops), fed by `GET /events`, a server-sent event stream that sends a
//! snapshot of `Oracle::peers` every second; `GET /peers` is one snapshot as JSON.
//!
//! The page and its script and style are embedded in the binary; the page loads nothing
//! from anywhere else (its content security policy says so). A snapshot holds what the
//! operator may see on `/metrics` already, per peer: keys, addresses and counts.

use crate::keyfile;
use commonware_cryptography::ed25519;
use palisade_p2p::{Oracle, PeerState, PeerStatus};
use serde::Serialize;
use std::{collections::BTreeMap, sync::Arc, time::SystemTime};

pub(crate) const INDEX_HTML: &str = include_str!("assets/index.html");
pub(crate) const NODE_JS: &str = include_str!("assets/node.js");
pub(crate) const NODE_CSS: &str = include_str!("assets/node.css");

/// Lets the page load its own script and style and open its own event stream, nothing else.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Makes one snapshot of the node's peers, as JSON.
pub type Snapshot = Arc<dyn Fn() -> String + Send + Sync>;

/// One snapshot.
#[derive(Serialize)]
struct Peers {
    /// This node's public key, in hex.
    key: String,
    /// Seconds since the Unix epoch, by the node's clock.
    at_seconds: f64,
    connected: usize,
    peers: Vec<Peer>,
}

#[derive(Serialize)]
struct Peer {
    key: String,
    address: Option<String>,
    state: &'static str,
    /// Whether this node dialed the connection in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    dialed: Option<bool>,
    /// Seconds the connection in use has lasted.
    #[serde(skip_serializing_if = "Option::is_none")]
    connected_seconds: Option<f64>,
    dial_failures: u32,
    queued_bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtt_ms: Option<f64>,
    messages_sent: u64,
    bytes_sent: u64,
    messages_received: u64,
    bytes_received: u64,
    dropped: BTreeMap<&'static str, u64>,
    connections: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_closed: Option<&'static str>,
}

fn peer(status: PeerStatus<ed25519::PublicKey>, now: SystemTime) -> Peer {
    let traffic = status.traffic;
    let (dialed, connected_seconds) = match status.state {
        PeerState::Connected { since, dialed } => (
            Some(dialed),
            Some(now.duration_since(since).unwrap_or_default().as_secs_f64()),
        ),
        _ => (None, None),
    };
    let dropped = traffic.drops().collect();
    Peer {
        key: keyfile::public_key_hex(&status.peer),
        address: status
            .address
            .map(|address| super::display_ingress(&address.ingress())),
        state: status.state.name(),
        dialed,
        connected_seconds,
        dial_failures: status.dial_failures,
        queued_bytes: status.queued_bytes,
        rtt_ms: traffic.rtt.map(|rtt| rtt.as_secs_f64() * 1000.0),
        messages_sent: traffic.messages_sent,
        bytes_sent: traffic.bytes_sent,
        messages_received: traffic.messages_received,
        bytes_received: traffic.bytes_received,
        dropped,
        connections: traffic.connections,
        last_closed: traffic.last_closed,
    }
}

/// A snapshot maker for the node `me` whose peers `oracle` lists; `clock` says when.
pub(crate) fn snapshot<E>(
    oracle: Oracle<E, ed25519::PublicKey>,
    me: &ed25519::PublicKey,
    clock: E,
) -> Snapshot
where
    E: commonware_runtime::Clock + Send + Sync + 'static,
{
    let key = keyfile::public_key_hex(me);
    Arc::new(move || {
        let now = clock.current();
        let peers: Vec<Peer> = oracle
            .peers()
            .into_iter()
            .map(|status| peer(status, now))
            .collect();
        let snapshot = Peers {
            key: key.clone(),
            at_seconds: now
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64(),
            connected: peers
                .iter()
                .filter(|peer| peer.state == "connected")
                .count(),
            peers,
        };
        serde_json::to_string(&snapshot).expect("a snapshot serializes")
    })
}
