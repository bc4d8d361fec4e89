//! The listener loop: accept, then before anything is read apply the handshake rates per
//! address and per subnet and take a handshake slot ([`crate::admission`]); the stream then
//! gives the dialer `hello_timeout` to send its Hello, and its bouncer admits only tracked,
//! unblocked peers before any signature is checked.

use crate::{
    admission::{self, Admission, Limits},
    context::Context,
    directory::lock,
    establish::establish,
    events,
    network::Shared,
    peer,
};
use commonware_cryptography::Signer;
use commonware_runtime::{KeyedRateLimiter, Listener as _};
use std::time::Duration;
use tracing::Instrument as _;

/// Wait after a failed accept.
const ACCEPT_RETRY: Duration = Duration::from_millis(10);

/// How often the per-IP rate state is pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(10);

/// Accepts on `listener` (already bound by the network task) until the network stops.
pub(crate) async fn run<E: Context, S: Signer>(
    context: E,
    shared: Shared<S, E>,
    mut listener: E::Listener,
) {
    let per_ip = KeyedRateLimiter::hashmap_with_clock(
        shared.config.handshakes_per_ip,
        context.child("per_ip"),
    );
    let per_subnet = KeyedRateLimiter::hashmap_with_clock(
        shared.config.handshakes_per_subnet,
        context.child("per_subnet"),
    );
    let slots = Admission::new(Limits {
        total: shared.config.max_concurrent_handshakes,
        reserved: shared.config.reserved_handshakes,
        per_ip: shared.config.max_handshakes_per_ip,
    });
    let mut pruned = context.current();
    loop {
        let Ok((address, sink, stream)) = listener.accept().await else {
            // Do not spin on a persistent error (out of file descriptors, say).
            shared.metrics.handshake("inbound", "accept_failed");
            context.sleep(ACCEPT_RETRY).await;
            continue;
        };
        // A stopping network takes no new connection while its own ones close.
        if lock(&shared.directory).is_closed() {
            continue;
        }
        // Forget addresses whose rate state has fully replenished, so the map stays small.
        let now = context.current();
        if now.duration_since(pruned).unwrap_or_default() >= PRUNE_INTERVAL {
            per_ip.retain_recent();
            per_subnet.retain_recent();
            pruned = now;
        }
        // An IPv4 client of a dual-stack listener shows as `::ffff:a.b.c.d`: judge it by its
        // IPv4 address, or every IPv4 client would share one /64.
        let ip = address.ip().to_canonical();
        if per_ip.check_key(&ip).is_err() {
            shared.metrics.handshake("inbound", "rate_limited");
            tracing::debug!(%address, "connection refused: over the per-address handshake rate");
            continue;
        }
        let subnet = admission::subnet(
            ip,
            shared.config.subnet_prefix_v4,
            shared.config.subnet_prefix_v6,
        );
        // A tracked peer's own address answers for itself alone: its subnet's rate is not
        // its to share with whoever else is in that subnet.
        let tracked = lock(&shared.directory).is_tracked_ip(&ip);
        if !tracked && per_subnet.check_key(&subnet).is_err() {
            shared.metrics.handshake("inbound", "subnet_rate_limited");
            tracing::debug!(%address, "connection refused: over the per-subnet handshake rate");
            continue;
        }
        let slot = match admission::admit(&slots, ip, tracked) {
            Ok(slot) => slot,
            Err(refusal) => {
                shared.metrics.handshake("inbound", refusal.reason());
                tracing::debug!(%address, reason = refusal.reason(), "connection refused");
                continue;
            }
        };
        let shared = shared.clone();
        let span = tracing::info_span!(
            "connection",
            direction = "inbound",
            %address,
            peer = tracing::field::Empty,
        );
        // Boxed: the runtime's task wrapper would otherwise hold the future twice over.
        context.child("connection").spawn(move |context| {
            Box::pin(async move {
                let now = context.current();
                let directory = shared.directory.clone();
                let bouncer = move |claimed| {
                    let allowed = lock(&directory).is_allowed(&claimed, now);
                    async move { allowed }
                };
                // Boxed, as in the dialer: the task holds only the step it is in.
                let handshake = Box::pin(palisade_stream::listen(
                    context.child("stream"),
                    shared.config.stream(),
                    bouncer,
                    sink,
                    stream,
                ))
                .await;
                drop(slot);
                let (peer, sender, receiver) = match handshake {
                    Ok(halves) => halves,
                    Err(error) => {
                        shared.metrics.handshake("inbound", error.reason());
                        events::handshake_failed(&shared.warnings, context.current(), &error);
                        return;
                    }
                };
                shared.metrics.handshake("inbound", "ok");
                tracing::Span::current().record("peer", tracing::field::display(&peer));
                tracing::debug!("connected");
                // Unless we are the pair's arbiter, the peer's `Keep` comes first.
                match Box::pin(establish(&context, &shared, &peer, false, receiver)).await {
                    Ok((registration, receiver)) => {
                        let peer = Box::new(shared.peer(peer, registration));
                        Box::pin(peer::run(context, peer, sender, receiver)).await;
                    }
                    Err(reason) => shared.metrics.connection_closed(reason),
                }
            })
            .instrument(span)
        });
    }
}
