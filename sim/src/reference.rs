//! The reference stack: commonware-p2p's `authenticated::lookup` with its own handshake and
//! records (SakeCups), on a simulated node, so the same scenario runs on palisade-p2p and on
//! the reference over the very same links (see [`Stack`]).
//!
//! The reference is sized as its own documentation sizes it, in either of its presets:
//! `lookup::Config::recommended` (its production settings) or `lookup::Config::local` (its
//! settings for demos on one machine). Two settings differ from the preset because the
//! simulation needs them: private addresses are allowed (simulated nodes live in 10.0.0.0/8)
//! and the peer set limit is the run's size. Channels use the workload's quota and consensus's
//! quota, as palisade's do.

use crate::Context;
use commonware_cryptography::{ChaCha20Poly1305, ed25519};
use commonware_p2p::authenticated::lookup;
use commonware_runtime::deterministic;
use commonware_stream::{
    SakeCups,
    cups::{self, Cups},
    sake::{self, Sake},
};
use serde::{Deserialize, Serialize};
use std::{net::SocketAddr, num::NonZeroUsize, time::Duration};

/// Which p2p stack the members run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stack {
    /// palisade-p2p (the default).
    #[default]
    Palisade,
    /// commonware-p2p `lookup` with SakeCups, `recommended` settings.
    LookupRecommended,
    /// commonware-p2p `lookup` with SakeCups, `local` settings.
    LookupLocal,
}

impl Stack {
    /// Its name on the command line: `palisade`, `lookup-recommended`, `lookup-local`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Palisade => "palisade",
            Self::LookupRecommended => "lookup-recommended",
            Self::LookupLocal => "lookup-local",
        }
    }
}

type Upgrader = SakeCups<ed25519::PrivateKey, ChaCha20Poly1305>;

/// A lookup node and its oracle.
pub(crate) type Lookup = (
    lookup::Network<Context<deterministic::Context>, Upgrader>,
    lookup::Oracle<ed25519::PublicKey>,
);

/// A lookup node for `key` at `listen`, among `peers` (ourselves included), in `stack`'s
/// preset.
pub(crate) fn node(
    context: Context<deterministic::Context>,
    stack: Stack,
    key: ed25519::PrivateKey,
    namespace: &[u8],
    listen: SocketAddr,
    peers: usize,
    max_message_size: u32,
) -> Lookup {
    let handshake = Cups::<_, ChaCha20Poly1305>::new(
        Sake {
            signer: key,
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            version: sake::Version::V1,
        },
        cups::Version::V1,
    );
    let max_peers_per_set = NonZeroUsize::new(peers.max(1)).expect("non-zero");
    let mailbox = NonZeroUsize::new(1024).expect("non-zero");
    let preset = match stack {
        Stack::LookupLocal => lookup::Config::local,
        _ => lookup::Config::recommended,
    };
    let mut config = preset(
        handshake,
        namespace,
        listen,
        max_peers_per_set,
        max_message_size,
        mailbox,
    );
    config.allow_private_ips = true;
    lookup::Network::new(context, config)
}
