//! The dialer loop: every `dial_interval`, dial each tracked peer that is not connected, not
//! being dialed and out of backoff, in an order shuffled by the runtime's RNG.
//!
//! Each dial runs in its own task, which becomes the connection's task on success, so the
//! connection lives exactly as long as that task.

use crate::{
    context::Context, directory::lock, establish::establish, events, network::Shared, peer,
};
use commonware_cryptography::Signer;
use commonware_p2p::Ingress;
use futures::{FutureExt as _, select_biased};
use rand_core::Rng;
use std::net::SocketAddr;
use tracing::Instrument as _;

pub(crate) async fn run<E: Context, S: Signer>(mut context: E, shared: Shared<S, E>) {
    loop {
        let now = context.current();
        // Blocks that ended first: a peer whose block ended is dialed on this tick.
        lock(&shared.directory).expire_blocks(now);
        let mut dials = lock(&shared.directory).take_dials(now);
        shuffle(&mut dials, &mut context);
        for (peer, ingress) in dials {
            let shared = shared.clone();
            let span = tracing::info_span!(
                "connection",
                direction = "outbound",
                %peer,
                address = %IngressText(&ingress),
            );
            // Boxed: the runtime's task wrapper would otherwise hold the future twice over.
            context.child("connection").spawn(move |context| {
                Box::pin(dial(context, shared, peer, ingress)).instrument(span)
            });
        }
        for inbound in shared.channels.values() {
            inbound.quota.retain_recent();
        }
        context.sleep(shared.config.dial_interval).await;
    }
}

/// Fisher-Yates with the runtime's RNG, so the order replays under the simulator.
fn shuffle<T>(items: &mut [T], rng: &mut impl Rng) {
    for i in (1..items.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// An ingress as an operator writes it: `ip:port` or `name:port`.
struct IngressText<'a>(&'a Ingress);

impl std::fmt::Display for IngressText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Ingress::Socket(address) => write!(f, "{address}"),
            Ingress::Dns { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Most addresses of one name tried in one dial.
const MAX_ADDRESSES_PER_DIAL: usize = 8;

/// The socket addresses to try, in order, for `ingress`: itself, or the addresses its name
/// resolves to (at most [`MAX_ADDRESSES_PER_DIAL`]), shuffled with the runtime's RNG so that
/// a name with several addresses spreads the dials. `None` when the name does not resolve.
async fn resolve<E: Context>(context: &mut E, ingress: &Ingress) -> Option<Vec<SocketAddr>> {
    match ingress {
        Ingress::Socket(address) => Some(vec![*address]),
        Ingress::Dns { host, port } => {
            let mut ips = match context.resolve(host.as_str()).await {
                Ok(ips) if !ips.is_empty() => ips,
                Ok(_) => {
                    tracing::debug!(%host, "name resolved to no address");
                    return None;
                }
                Err(error) => {
                    tracing::debug!(%host, %error, "name did not resolve");
                    return None;
                }
            };
            shuffle(&mut ips, context);
            ips.truncate(MAX_ADDRESSES_PER_DIAL);
            Some(
                ips.into_iter()
                    .map(|ip| SocketAddr::new(ip, *port))
                    .collect(),
            )
        }
    }
}

async fn dial<E: Context, S: Signer>(
    mut context: E,
    shared: Shared<S, E>,
    peer: S::PublicKey,
    ingress: Ingress,
) {
    let Some(addresses) = resolve(&mut context, &ingress).await else {
        shared.metrics.dial("resolve_failed");
        let (failures, retry) =
            lock(&shared.directory).dial_failed(peer, context.current(), &mut context);
        events::dial_failed("resolve_failed", failures, retry);
        return;
    };
    // The connect, the handshake and the connection each live in a box of their own: the
    // task then holds only the step it is in, not room for the largest of them, which is
    // most of a connection's memory in a large network.
    // Each address in turn (a name may resolve to an IPv6 and an IPv4 address of which only
    // one listens), each with an equal share of the dial timeout, so an address that drops
    // every packet cannot use up the time of the others.
    let share = shared.config.dial_timeout / addresses.len().max(1) as u32;
    let connected = Box::pin(async {
        for address in addresses {
            let connecting = context.dial(address).fuse();
            let timeout = context.sleep(share).fuse();
            futures::pin_mut!(connecting, timeout);
            let attempt = select_biased! {
                result = connecting => result.ok(),
                _ = timeout => None,
            };
            if let Some(connection) = attempt {
                return Some((address, connection));
            }
        }
        None
    })
    .await;
    let Some((address, (sink, stream))) = connected else {
        shared.metrics.dial("connect_failed");
        let (failures, retry) =
            lock(&shared.directory).dial_failed(peer, context.current(), &mut context);
        events::dial_failed("connect_failed", failures, retry);
        return;
    };
    let handshake = Box::pin(palisade_stream::dial(
        context.child("stream"),
        shared.config.stream(),
        peer.clone(),
        sink,
        stream,
    ))
    .await;
    let (sender, receiver) = match handshake {
        Ok(halves) => halves,
        Err(error) => {
            shared.metrics.dial("handshake_failed");
            shared.metrics.handshake("outbound", error.reason());
            events::handshake_failed(&shared.warnings, context.current(), &error);
            let (failures, retry) =
                lock(&shared.directory).dial_failed(peer, context.current(), &mut context);
            events::dial_failed("handshake_failed", failures, retry);
            return;
        }
    };
    shared.metrics.handshake("outbound", "ok");
    // Unless we are the arbiter of the pair, the connection is ours to use only once the
    // peer keeps it; until then the peer stays marked as being dialed.
    match Box::pin(establish(&context, &shared, &peer, true, receiver)).await {
        Ok((registration, receiver)) => {
            shared.metrics.dial("connected");
            tracing::debug!(%address, "connected");
            let peer = Box::new(shared.peer(peer, registration));
            Box::pin(peer::run(context, peer, sender, receiver)).await;
        }
        Err(reason) => {
            shared.metrics.dial(reason);
            shared.metrics.connection_closed(reason);
            let mut directory = lock(&shared.directory);
            if directory.is_connected(&peer) {
                // The two dials met and the pair uses the other connection.
                directory.dial_superseded(&peer);
            } else {
                let (failures, retry) =
                    directory.dial_failed(peer, context.current(), &mut context);
                drop(directory);
                events::dial_failed(reason, failures, retry);
            }
        }
    }
}
