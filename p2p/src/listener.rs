//! The listener loop: accept, then before any crypto apply the per-IP handshake rate and the
//! cap on concurrent handshakes; the stream's bouncer then admits only tracked, unblocked
//! peers before any signature is checked.

use crate::{context::Context, directory::lock, events, network::Shared, peer};
use commonware_cryptography::Signer;
use commonware_runtime::{KeyedRateLimiter, Listener as _};
use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};
use std::time::Duration;
use tracing::Instrument as _;

/// Wait after a failed accept.
const ACCEPT_RETRY: Duration = Duration::from_millis(10);

/// How often the per-IP rate state is pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(10);

/// Releases a handshake slot when the handshake ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

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
    let active = Arc::new(AtomicUsize::new(0));
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
            pruned = now;
        }
        if per_ip.check_key(&address.ip()).is_err() {
            shared.metrics.handshake("inbound", "rate_limited");
            tracing::debug!(%address, "connection refused: over the per-address handshake rate");
            continue;
        }
        if active.load(Ordering::SeqCst) >= shared.config.max_concurrent_handshakes {
            shared.metrics.handshake("inbound", "too_many_handshakes");
            tracing::debug!(%address, "connection refused: too many handshakes under way");
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(active.clone());
        let shared = shared.clone();
        let span = tracing::info_span!(
            "connection",
            direction = "inbound",
            %address,
            peer = tracing::field::Empty,
        );
        context.child("connection").spawn(move |context| {
            async move {
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
                let registered =
                    lock(&shared.directory).register(peer.clone(), false, context.current());
                if let Ok(registration) = registered {
                    let peer = shared.peer(peer, registration);
                    Box::pin(peer::run(context, peer, sender, receiver)).await;
                }
            }
            .instrument(span)
        });
    }
}
