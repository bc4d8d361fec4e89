//! From an authenticated stream to a registered connection: the arbiter's `Keep` and the
//! duplicate rule (see [`crate::duplicate`]), shared by the dialer and the listener.
//!
//! Unless this node is the pair's arbiter, a connection is used only once its first message
//! is `Keep`. While it waits, the connection is in no directory entry, so the wait is bounded
//! twice: by the handshake timeout, and to one inbound connection per peer (a newer one
//! supersedes the older). A dial needs no such bound: a peer is dialed once at a time.

use crate::{
    context::Context,
    directory::{Refusal, Registration, lock},
    events,
    network::Shared,
    peer,
};
use commonware_cryptography::Signer;
use commonware_runtime::Stream;
use palisade_stream::Receiver;

/// Waits for the peer's `Keep` unless we are the arbiter, then registers the connection.
/// Returns the registration and the receiver to read on.
///
/// # Errors
/// Why the connection will never carry a message, as a `connections_closed` reason:
/// `not_kept`, `keep_timeout`, `malformed`, `superseded` (from the wait), `duplicate` or
/// `not_allowed` (from the registration).
pub(crate) async fn establish<E: Context, S: Signer, I: Stream>(
    context: &E,
    shared: &Shared<S, E>,
    peer: &S::PublicKey,
    dialed: bool,
    receiver: Receiver<I>,
) -> Result<(Registration, Receiver<I>), &'static str> {
    let (arbiter, wait) = {
        let mut directory = lock(&shared.directory);
        let arbiter = directory.is_arbiter(peer);
        let wait = (!arbiter && !dialed).then(|| directory.await_keep(peer));
        (arbiter, wait)
    };
    let receiver = if arbiter {
        receiver
    } else {
        let (wait_id, superseded) = wait.unzip();
        let timeout = shared.config.handshake_timeout;
        let kept = Box::pin(peer::await_keep(context, receiver, timeout, superseded)).await;
        if let Some(id) = wait_id {
            lock(&shared.directory).keep_awaited(peer, id);
        }
        match kept {
            Ok(receiver) => receiver,
            Err(reason) => {
                events::not_kept(&shared.warnings, context.current(), reason);
                return Err(reason);
            }
        }
    };
    let registered = lock(&shared.directory).register(peer.clone(), dialed, context.current());
    match registered {
        Ok(registration) => Ok((registration, receiver)),
        Err(refusal) => {
            if refusal == Refusal::Duplicate {
                tracing::debug!(
                    "the peer and we dialed each other at once: keeping the other connection"
                );
            }
            Err(refusal.reason())
        }
    }
}
