//! Why a network stopped by itself: what the task of [`Network::start`](crate::Network::start)
//! returns when it ends without being aborted.

use std::net::SocketAddr;

/// A failure that stopped the whole network. Each is also logged at error level and counted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listen address could not be bound (taken by another process, or not an address of
    /// this host); counted as `handshakes{direction="inbound",reason="bind_failed"}`. Nothing
    /// is dialed either: a node that cannot be reached would only look half alive.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The configured listen address.
        address: SocketAddr,
        /// What the runtime reported.
        #[source]
        source: commonware_runtime::Error,
    },
}
