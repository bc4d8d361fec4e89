//! The application's handle on who may connect.

use crate::directory::{SharedDirectory, lock};
use commonware_cryptography::PublicKey;
use commonware_runtime::Clock;
use std::{net::SocketAddr, time::Duration};

/// Tells the network which peer sets to track and which peers to block.
pub struct Oracle<C: Clock, P: PublicKey> {
    clock: C,
    directory: SharedDirectory<P>,
    block_duration: Duration,
}

impl<C: Clock, P: PublicKey> Oracle<C, P> {
    pub(crate) fn new(clock: C, directory: SharedDirectory<P>, block_duration: Duration) -> Self {
        Self {
            clock,
            directory,
            block_duration,
        }
    }

    /// Registers the peer set `index` (peers with their addresses). The network keeps the
    /// union of the newest `tracked_peer_sets` sets; peers that leave every set are
    /// disconnected, peers whose address changed are redialed. Returns false, changing
    /// nothing, when `index` is not newer than every tracked index.
    pub async fn track(&mut self, index: u64, peers: Vec<(P, SocketAddr)>) -> bool {
        lock(&self.directory).track(index, peers)
    }

    /// Disconnects `peer` at once and refuses it for `block_duration`.
    pub async fn block(&mut self, peer: P) {
        let now = self.clock.current();
        lock(&self.directory).block(peer, now + self.block_duration, now);
    }
}
