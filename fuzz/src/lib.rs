//! What the fuzz targets share: fixed identities and one deterministic run per input.

use commonware_cryptography::{
    Signer as _,
    ed25519::{PrivateKey, PublicKey},
};
use commonware_runtime::{Runner as _, deterministic};
use palisade_stream::Config;
use std::{future::Future, sync::OnceLock};

/// The namespace of every fuzzed connection.
pub const NAMESPACE: &[u8] = b"palisade-fuzz";

/// The dialer's identity (derived once per process: a key derivation is a scalar
/// multiplication, which under the fuzzer's instrumentation costs as much as a handshake step).
pub fn dialer_key() -> PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::from_seed(1)).clone()
}

/// The listener's identity (derived once per process).
pub fn listener_key() -> PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::from_seed(2)).clone()
}

/// The dialer's public key.
pub fn dialer_public_key() -> PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| dialer_key().public_key()).clone()
}

/// Stream settings for `key`.
pub fn config(key: PrivateKey) -> Config<PrivateKey> {
    Config::recommended(key, NAMESPACE)
}

/// The listener's bouncer: admits the dialer only.
pub fn admits_dialer(
    claimed: commonware_cryptography::ed25519::PublicKey,
) -> impl Future<Output = bool> {
    let known = claimed == dialer_public_key();
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
