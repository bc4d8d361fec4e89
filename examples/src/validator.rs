//! The `validator` example: commonware-consensus simplex on palisade-p2p over real TCP, from the
//! `node` example's TOML file.
//!
//! The file's key is the validator's identity for both the p2p handshake and its votes; its
//! peers (and itself) are the validator set; `storage` is where simplex keeps its journal, so
//! a validator that is stopped and started again resumes from where it was. The application
//! under simplex is the one the simulation runs (`palisade_sim::consensus`): a payload is the
//! hash of its view and its parent, so any validator verifies a proposal without fetching
//! anything. Every finalization is printed as `finalized view N payload P` and counted in the
//! `finalized_view` gauge at `/metrics`.

use crate::{
    keyfile,
    node::{NodeError, config::NodeConfig, p2p, peer_set, serve_metrics},
};
use commonware_cryptography::{Signer as _, ed25519, sha256::Digest};
use commonware_runtime::{
    Storage, Supervisor,
    telemetry::metrics::{MetricsExt as _, raw::Gauge},
};
use commonware_utils::ordered::Set;
use palisade_p2p::AddressableManager as _;
use palisade_sim::consensus::{self, Observer, Settings, Validator};
use std::sync::Arc;

/// A finalization, as the validator prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finalized {
    /// The finalized view.
    pub view: u64,
    /// The finalized payload.
    pub payload: Digest,
}

impl std::fmt::Display for Finalized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let payload = crate::hex::encode(self.payload.as_ref());
        write!(f, "finalized view {} payload {}", self.view, &payload[..16])
    }
}

/// Hands finalizations to a printer and keeps the `finalized_view` gauge.
struct Printer<F> {
    print: Arc<F>,
    view: Gauge,
}

impl<F> Clone for Printer<F> {
    fn clone(&self) -> Self {
        Self {
            print: self.print.clone(),
            view: self.view.clone(),
        }
    }
}

impl<F: Fn(Finalized) + Send + Sync + 'static> Observer for Printer<F> {
    fn proposed(&self, view: u64) {
        tracing::debug!(view, "proposed");
    }

    fn finalized(&self, view: u64, payload: &Digest) {
        self.view.set(i64::try_from(view).unwrap_or(i64::MAX));
        (self.print)(Finalized {
            view,
            payload: *payload,
        });
    }
}

/// Runs a validator until the network stops; every finalization goes to `print`.
///
/// # Errors
/// [`NodeError`].
pub async fn run<E>(
    context: E,
    config: NodeConfig,
    key: ed25519::PrivateKey,
    print: impl Fn(Finalized) + Send + Sync + 'static,
) -> Result<(), NodeError>
where
    E: palisade_p2p::Context + Storage + Supervisor,
{
    let me = key.public_key();
    let set = peer_set(&config, &me);
    let participants = Set::from_iter_dedup(set.keys().iter().cloned());
    let (mut network, mut oracle) = p2p(&context, &config, key.clone());
    let page =
        crate::node::status_page::snapshot(oracle.clone(), &me, context.child("status_page"));
    serve_metrics(&context, config.metrics, Some(page)).await?;
    oracle.track(0, set);
    let view = context.gauge(
        "finalized_view",
        "highest view this validator saw finalized",
    );
    let validator = Validator {
        key,
        participants,
        settings: Settings::default(),
        partition: "simplex".to_string(),
        observer: Printer {
            print: Arc::new(print),
            view: (*view).clone(),
        },
    };
    let _engine = consensus::start(context.child("consensus"), validator, &mut network, &oracle);
    let handle = network.start();
    tracing::info!(
        public_key = %keyfile::public_key_hex(&me),
        listen = %config.listen,
        validators = config.peers.len() + 1,
        "validator started"
    );
    match handle.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(NodeError::Network(error)),
        Err(_) => Err(NodeError::NetworkClosed),
    }
}
