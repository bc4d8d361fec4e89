//! What the fuzz targets share: fixed identities and one deterministic run per input.

use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
use commonware_runtime::{Runner as _, deterministic};
use palisade_stream::Config;
use std::future::Future;

/// The namespace of every fuzzed connection.
pub const NAMESPACE: &[u8] = b"palisade-fuzz";

/// The dialer's identity.
pub fn dialer_key() -> PrivateKey {
    PrivateKey::from_seed(1)
}

/// The listener's identity.
pub fn listener_key() -> PrivateKey {
    PrivateKey::from_seed(2)
}

/// Stream settings for `key`.
pub fn config(key: PrivateKey) -> Config<PrivateKey> {
    Config::recommended(key, NAMESPACE)
}

/// The listener's bouncer: admits the dialer only.
pub fn admits_dialer(
    claimed: commonware_cryptography::ed25519::PublicKey,
) -> impl Future<Output = bool> {
    let known = claimed == dialer_key().public_key();
    async move { known }
}

/// Runs `f` on a fresh deterministic runtime (seeded 0, so each input replays exactly). A
/// run that outlives 60 simulated seconds has hung: that is a finding.
pub fn run<F, Fut, T>(f: F) -> T
where
    F: FnOnce(deterministic::Context) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let config = deterministic::Config::new()
        .with_seed(0)
        .with_timeout(Some(std::time::Duration::from_secs(60)));
    deterministic::Runner::new(config).start(f)
}
