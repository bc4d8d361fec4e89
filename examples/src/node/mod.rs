//! The `node` example: one palisade-p2p node on real sockets, configured from a TOML file.
//!
//! It joins the network its configuration describes, broadcasts every line it is given on
//! the first channel, prints every message it receives, logs through `tracing`, and serves
//! its metrics in Prometheus text at `http://<metrics>/metrics`. Received text comes from
//! other machines: control characters are escaped before it reaches the terminal.

pub mod config;
pub mod metrics_http;
pub mod status_page;

use crate::keyfile;
use commonware_cryptography::{Signer as _, ed25519};
use commonware_runtime::{Clock, IoBuf, Quota, Supervisor};
use commonware_utils::ordered::Map;
use config::{NodeConfig, Preset};
use futures::{FutureExt as _, StreamExt as _, channel::mpsc, channel::oneshot, select};
use palisade_p2p::{
    Address, AddressableManager as _, CheckedSender as _, Feedback, Ingress, LimitedSender as _,
    Receiver as _, Recipients, channels::Sender,
};
use std::{net::SocketAddr, time::Duration};

/// Why a node stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The metrics endpoint could not be bound.
    #[error("cannot serve metrics on {0}: the address is taken or not local")]
    Metrics(SocketAddr),
    /// The network stopped by itself, for this reason (the listen address is taken, say).
    #[error(transparent)]
    Network(#[from] palisade_p2p::Error),
    /// The network stopped.
    #[error("the network stopped")]
    NetworkClosed,
}

/// A message a node received, as text fit for a terminal ([`printable`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// Who sent it.
    pub from: ed25519::PublicKey,
    /// On which channel.
    pub channel: u64,
    /// What it said.
    pub text: String,
}

impl std::fmt::Display for Received {
    /// `<first 8 hex digits of the sender's key>: <text>`, with `[channel] ` in front for
    /// channels other than 0.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sender = keyfile::public_key_hex(&self.from);
        if self.channel != 0 {
            write!(f, "[{}] ", self.channel)?;
        }
        write!(f, "{}: {}", &sender[..8], self.text)
    }
}

/// Runs the node until its network stops: broadcasts each of `lines` on the first channel and
/// hands each received message to `print`.
///
/// Input is never dropped quietly: a line waits (with a note in the log) until some peer is
/// connected, then goes to each connected peer as soon as that peer's quota allows; only a
/// line longer than a message may be, or one that a peer's full queue refuses, is dropped,
/// and that is logged at warn. Meanwhile no further line is read, so a fast producer is held
/// back rather than outrun.
///
/// # Errors
/// [`NodeError`]; the node ends without error when the runtime is stopped (see
/// [`crate::start::stop_on_signals`]).
pub async fn run<E>(
    context: E,
    config: NodeConfig,
    key: ed25519::PrivateKey,
    mut lines: mpsc::Receiver<String>,
    print: impl Fn(Received) + Send + Sync + Clone + 'static,
) -> Result<(), NodeError>
where
    E: palisade_p2p::Context + Supervisor,
{
    let me = key.public_key();
    let (mut network, mut oracle) = p2p(&context, &config, key);
    let page = status_page::snapshot(oracle.clone(), &me, context.child("status_page"));
    serve_metrics(&context, config.metrics, Some(page)).await?;
    let mut first_sender = None;
    for channel in &config.channels {
        let quota = Quota::per_second(channel.messages_per_second);
        let (sender, mut receiver) = network.register(channel.id, quota, channel.backlog);
        first_sender.get_or_insert(sender);
        let (id, print) = (channel.id, print.clone());
        context.child("receiver").spawn(move |_| async move {
            while let Ok((from, message)) = receiver.recv().await {
                print(Received {
                    from,
                    channel: id,
                    text: printable(message.as_ref()),
                });
            }
        });
    }
    let mut sender = first_sender.expect("a config has at least one channel");
    let peers: Vec<ed25519::PublicKey> = config.peers.iter().map(|(key, _)| key.clone()).collect();
    oracle.track(0, peer_set(&config, &me));
    let mut network = network.start().fuse();
    tracing::info!(
        public_key = %keyfile::public_key_hex(&me),
        listen = %config.listen,
        advertise = %display_ingress(&config.advertise),
        peers = config.peers.len(),
        "node started"
    );
    let outcome = loop {
        let line = select! {
            line = lines.next() => line,
            outcome = network => break outcome,
        };
        // Input ended: keep serving the network until the process is stopped.
        let Some(line) = line else {
            break (&mut network).await;
        };
        if line.len() > sender.max_payload() {
            tracing::warn!(
                bytes = line.len(),
                max = sender.max_payload(),
                "line dropped: longer than a message may be"
            );
            continue;
        }
        let sending = broadcast(&context, &mut sender, &peers, line.into_bytes()).fuse();
        futures::pin_mut!(sending);
        select! {
            _ = sending => {},
            outcome = network => break outcome,
        }
    };
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(NodeError::Network(error)),
        Err(_) => Err(NodeError::NetworkClosed),
    }
}

/// How often a line waiting for a connected peer looks again.
const WAIT_FOR_PEER: Duration = Duration::from_millis(50);

/// Sends `message` to each of `peers` that is connected, waiting for each one's quota, and
/// first (without a deadline) for at least one of them to be connected.
async fn broadcast<E: Clock>(
    context: &E,
    sender: &mut Sender<ed25519::PublicKey, E>,
    peers: &[ed25519::PublicKey],
    message: Vec<u8>,
) {
    let message = IoBuf::from(message);
    let mut noted = false;
    loop {
        let mut reached = 0usize;
        for peer in peers {
            loop {
                match sender.check(Recipients::One(peer.clone())) {
                    Err(free_at) => context.sleep_until(free_at).await,
                    // Not connected: this peer misses the line, as it would any broadcast.
                    Ok(checked) if checked.recipients().is_empty() => break,
                    Ok(checked) => {
                        match checked.send(message.clone(), false).outcome() {
                            Some(Feedback::Closed) => return,
                            Some(_) => reached += 1,
                            _ => tracing::warn!(
                                peer = %keyfile::public_key_hex(peer),
                                "line dropped for this peer: its send queue is full"
                            ),
                        }
                        break;
                    }
                }
            }
        }
        if reached > 0 {
            tracing::debug!(peers = reached, "line sent");
            return;
        }
        if !noted {
            tracing::info!("line waits for a connected peer");
            noted = true;
        }
        context.sleep(WAIT_FOR_PEER).await;
    }
}

/// Serves `/metrics` (and the live page of `page`'s peers at `/`) on `address`, if one is
/// given, and returns once it listens.
///
/// # Errors
/// [`NodeError::Metrics`] when the address cannot be bound.
pub(crate) async fn serve_metrics<E>(
    context: &E,
    address: Option<SocketAddr>,
    page: Option<status_page::Snapshot>,
) -> Result<(), NodeError>
where
    E: palisade_p2p::Context + Supervisor,
{
    let Some(address) = address else {
        return Ok(());
    };
    let (bound, listening) = oneshot::channel();
    context
        .child("metrics_http")
        .spawn(move |context| async move {
            if let Err(error) = metrics_http::serve(context, address, bound, page).await {
                tracing::error!(%address, %error, "metrics endpoint failed");
            }
        });
    let address = listening.await.map_err(|_| NodeError::Metrics(address))?;
    tracing::info!("metrics at http://{address}/metrics, live page at http://{address}/");
    Ok(())
}

/// The palisade-p2p node `config` describes, with `key` as its identity.
pub(crate) fn p2p<E>(
    context: &E,
    config: &NodeConfig,
    key: ed25519::PrivateKey,
) -> (
    palisade_p2p::Network<E, ed25519::PrivateKey>,
    palisade_p2p::Oracle<E, ed25519::PublicKey>,
)
where
    E: palisade_p2p::Context + Supervisor,
{
    let namespace = config.namespace.as_bytes();
    let p2p_config = match config.preset {
        Preset::Recommended => palisade_p2p::Config::recommended(key, namespace, config.listen),
        Preset::Local => palisade_p2p::Config::local(key, namespace, config.listen),
    };
    palisade_p2p::Network::new(context.child("p2p"), p2p_config)
}

/// The peer set `config` describes: its peers and `me` at the listen address.
pub(crate) fn peer_set(
    config: &NodeConfig,
    me: &ed25519::PublicKey,
) -> Map<ed25519::PublicKey, Address> {
    let peers = config
        .peers
        .iter()
        .map(|(peer, ingress)| (peer.clone(), address(ingress)));
    Map::from_iter_dedup(peers.chain([(me.clone(), address(&config.advertise))]))
}

/// The commonware-p2p address for dialing `ingress`. A name is resolved at each dial; the
/// egress (the address connections come from) is recorded but not checked by palisade-p2p,
/// so for a name it is only a placeholder.
fn address(ingress: &Ingress) -> Address {
    match ingress {
        Ingress::Socket(address) => Address::Symmetric(*address),
        Ingress::Dns { .. } => Address::Asymmetric {
            ingress: ingress.clone(),
            egress: SocketAddr::from(([0, 0, 0, 0], 0)),
        },
    }
}

/// `ingress` as written in a configuration: `ip:port` or `name:port`.
pub fn display_ingress(ingress: &Ingress) -> String {
    match ingress {
        Ingress::Socket(address) => address.to_string(),
        Ingress::Dns { host, port } => format!("{host}:{port}"),
    }
}

/// `message` as text fit for a terminal: invalid UTF-8 replaced; control characters (which
/// could move the cursor or rewrite the screen) and invisible formatting characters (which
/// could reverse or hide text, to disguise a line or its sender) escaped.
pub fn printable(message: &[u8]) -> String {
    let mut out = String::with_capacity(message.len());
    for c in String::from_utf8_lossy(message).chars() {
        if c.is_control() || is_invisible_format(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Unicode format characters that change how text around them shows: bidirectional
/// controls, zero-width characters and joiners, the byte-order mark, and tags.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(printable(b"hello"), "hello");
        assert_eq!(printable(b"a\x1b[2Jb\n"), "a\\u{1b}[2Jb\\u{a}");
        assert_eq!(
            printable("evil\u{202E}gnp.exe".as_bytes()),
            "evil\\u{202e}gnp.exe"
        );
        assert_eq!(printable("a\u{200B}b".as_bytes()), "a\\u{200b}b");
        assert_eq!(printable(&[0xff, b'x']), "\u{fffd}x");
    }
}
