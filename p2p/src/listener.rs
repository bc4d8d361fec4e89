//! The listener loop: accept, then before any crypto apply the per-IP handshake rate and the
//! cap on concurrent handshakes; the stream's bouncer then admits only tracked, unblocked
//! peers before any signature is checked.

use crate::{context::Context, directory::lock, network::Shared, peer};
use commonware_cryptography::Signer;
use commonware_runtime::{KeyedRateLimiter, Listener as _};
use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

/// Releases a handshake slot when the handshake ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(crate) async fn run<E: Context, S: Signer>(context: E, shared: Shared<S>) {
    let mut listener = match context.bind(shared.config.listen).await {
        Ok(listener) => listener,
        Err(_) => {
            shared.metrics.handshake("inbound", "bind_failed");
            return;
        }
    };
    let per_ip = KeyedRateLimiter::hashmap_with_clock(
        shared.config.handshakes_per_ip,
        context.child("per_ip"),
    );
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((address, sink, stream)) = listener.accept().await else {
            continue;
        };
        if per_ip.check_key(&address.ip()).is_err() {
            shared.metrics.handshake("inbound", "rate_limited");
            continue;
        }
        if active.load(Ordering::SeqCst) >= shared.config.max_concurrent_handshakes {
            shared.metrics.handshake("inbound", "too_many_handshakes");
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(active.clone());
        let shared = shared.clone();
        context
            .child("connection")
            .spawn(move |context| async move {
                let now = context.current();
                let directory = shared.directory.clone();
                let bouncer = move |claimed| {
                    let allowed = lock(&directory).is_allowed(&claimed, now);
                    async move { allowed }
                };
                let handshake = palisade_stream::listen(
                    context.child("stream"),
                    shared.config.stream(),
                    bouncer,
                    sink,
                    stream,
                )
                .await;
                drop(slot);
                let (peer, sender, receiver) = match handshake {
                    Ok(halves) => halves,
                    Err(error) => {
                        shared.metrics.handshake("inbound", error.reason());
                        return;
                    }
                };
                shared.metrics.handshake("inbound", "ok");
                let registered =
                    lock(&shared.directory).register(peer.clone(), false, context.current());
                if let Ok(registration) = registered {
                    let peer = shared.peer(peer, registration);
                    peer::run(context, peer, sender, receiver).await;
                }
            });
    }
}
