//! Settings of a network node, with the reasons for the defaults.
//!
//! Fields marked *must match* have to be equal on every peer of a network: peers that differ
//! never connect (namespace) or refuse each other's traffic (message size, time bounds).

use commonware_cryptography::Signer;
use commonware_runtime::Quota;
use std::{net::SocketAddr, num::NonZeroU32, time::Duration};

/// Settings of one node. Start from a preset ([`Config::recommended`], [`Config::local`])
/// and change fields; more may be added in a minor release.
#[derive(Clone)]
#[non_exhaustive]
pub struct Config<S: Signer> {
    /// Our static identity.
    pub signer: S,
    /// Application namespace (*must match*); see `palisade_stream::Config::namespace`.
    pub namespace: Vec<u8>,
    /// Address the listener binds to.
    pub listen: SocketAddr,
    /// Largest stream message in bytes (*must match*); a channel payload may use this minus
    /// [`wire::MAX_DATA_OVERHEAD_BYTES`](crate::wire::MAX_DATA_OVERHEAD_BYTES).
    pub max_message_size: u32,
    /// Tolerated clock skew for handshakes (*must match*).
    pub synchrony_bound: Duration,
    /// Oldest handshake timestamp accepted (*must match*).
    pub max_handshake_age: Duration,
    /// Deadline for one whole handshake, in either direction.
    pub handshake_timeout: Duration,
    /// Deadline for a dialer's first message, on the listener's side; see
    /// `palisade_stream::Config::hello_timeout`.
    pub hello_timeout: Duration,

    /// How many of the newest peer sets are tracked (their union may connect).
    pub tracked_peer_sets: usize,
    /// How long a blocked peer is refused.
    pub block_duration: Duration,

    /// How often the dialer looks for tracked peers that are not connected.
    pub dial_interval: Duration,
    /// Deadline for a TCP connect.
    pub dial_timeout: Duration,
    /// First wait before redialing a peer after a failure; it doubles per failure.
    pub dial_backoff_initial: Duration,
    /// Longest wait before redialing a peer.
    pub dial_backoff_max: Duration,

    /// Handshakes the listener runs at once; connections beyond are closed unanswered.
    pub max_concurrent_handshakes: usize,
    /// Of those, how many only connections from a tracked peer's address may take (at most
    /// half of them): strangers, with any number of addresses, never hold more than the rest.
    pub reserved_handshakes: usize,
    /// Handshakes one source address may run at once.
    pub max_handshakes_per_ip: usize,
    /// Handshakes accepted per source IP address; the excess is closed before any crypto.
    pub handshakes_per_ip: Quota,
    /// Handshakes accepted per source subnet (see `subnet_prefix_v4`/`_v6`), however many
    /// addresses of it are used; the excess is closed before any crypto.
    pub handshakes_per_subnet: Quota,
    /// The prefix length of an IPv4 subnet for `handshakes_per_subnet` (24: a /24).
    pub subnet_prefix_v4: u8,
    /// The prefix length of an IPv6 subnet for `handshakes_per_subnet` (64: a /64, which one
    /// host usually has whole).
    pub subnet_prefix_v6: u8,

    /// How often a connected peer is pinged.
    pub ping_interval: Duration,
    /// How long a connection may stay silent (no message at all) before it is closed.
    pub max_silence: Duration,
    /// Messages queued towards one peer per priority lane; sends beyond are dropped for that
    /// peer and counted.
    pub max_queued_messages: usize,
    /// Bytes of payload queued towards one peer, both lanes together; a send that does not fit
    /// is dropped for that peer and counted as `dropped_full` (an empty queue always takes one
    /// message, whatever its size).
    pub max_queued_bytes: usize,
    /// Bytes of payload a channel's backlog holds for the application, from all peers
    /// together; a message that does not fit is dropped and counted as `dropped_full` (an
    /// empty backlog always takes one).
    pub max_backlog_bytes: usize,
}

/// Shows every setting but the signer's secret (only its public key).
impl<S: Signer> std::fmt::Debug for Config<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("public_key", &self.signer.public_key())
            .field("namespace", &String::from_utf8_lossy(&self.namespace))
            .field("listen", &self.listen)
            .field("max_message_size", &self.max_message_size)
            .field("synchrony_bound", &self.synchrony_bound)
            .field("max_handshake_age", &self.max_handshake_age)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("hello_timeout", &self.hello_timeout)
            .field("tracked_peer_sets", &self.tracked_peer_sets)
            .field("block_duration", &self.block_duration)
            .field("dial_interval", &self.dial_interval)
            .field("dial_timeout", &self.dial_timeout)
            .field("dial_backoff_initial", &self.dial_backoff_initial)
            .field("dial_backoff_max", &self.dial_backoff_max)
            .field("max_concurrent_handshakes", &self.max_concurrent_handshakes)
            .field("reserved_handshakes", &self.reserved_handshakes)
            .field("max_handshakes_per_ip", &self.max_handshakes_per_ip)
            .field("handshakes_per_ip", &self.handshakes_per_ip)
            .field("handshakes_per_subnet", &self.handshakes_per_subnet)
            .field("subnet_prefix_v4", &self.subnet_prefix_v4)
            .field("subnet_prefix_v6", &self.subnet_prefix_v6)
            .field("ping_interval", &self.ping_interval)
            .field("max_silence", &self.max_silence)
            .field("max_queued_messages", &self.max_queued_messages)
            .field("max_queued_bytes", &self.max_queued_bytes)
            .field("max_backlog_bytes", &self.max_backlog_bytes)
            .finish()
    }
}

impl<S: Signer> Config<S> {
    /// Defaults for a production network over the internet.
    ///
    /// - `max_message_size`: 4 MiB, room for a block.
    /// - `synchrony_bound` 5 s, `max_handshake_age` 10 s, `handshake_timeout` 5 s,
    ///   `hello_timeout` 1 s: as `palisade_stream::Config::recommended`.
    /// - `tracked_peer_sets`: 3 (previous, current and next epoch).
    /// - `block_duration`: 1 hour, long enough to matter, short enough to forgive a bug.
    /// - `dial_interval` 1 s, `dial_timeout` 5 s, backoff 1 s doubling to 60 s: a lost peer is
    ///   retried quickly at first, then once a minute.
    /// - `max_concurrent_handshakes` 128, of which 32 are kept for tracked peers' addresses;
    ///   at most 2 at once per address; 4 handshakes per IP per second (burst 8) and 16 per
    ///   subnet (/24, or /64 for IPv6) per second (burst 32): enough for a validator set
    ///   reconnecting at once, little for a flood, and no more for a thousand addresses of
    ///   one network than for a few.
    /// - `ping_interval` 5 s, `max_silence` 30 s: a dead peer is noticed within half a minute,
    ///   well inside the tokio runtime's 60 s bound on one read.
    /// - `max_queued_messages`: 4096 per lane; `max_queued_bytes`: 16 MiB per peer, four
    ///   messages of the largest size or thousands of votes, while a peer that stops reading
    ///   costs at most that much (a thousand such peers, 16 GB, is the worst case to plan for:
    ///   lower it for large sets of big messages).
    /// - `max_backlog_bytes`: 64 MiB per channel: sixteen of the largest messages waiting for
    ///   an application that reads slower than its peers send.
    pub fn recommended(signer: S, namespace: &[u8], listen: SocketAddr) -> Self {
        Self {
            signer,
            namespace: namespace.to_vec(),
            listen,
            max_message_size: 4 * 1024 * 1024,
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(5),
            hello_timeout: Duration::from_secs(1),
            tracked_peer_sets: 3,
            block_duration: Duration::from_secs(3600),
            dial_interval: Duration::from_secs(1),
            dial_timeout: Duration::from_secs(5),
            dial_backoff_initial: Duration::from_secs(1),
            dial_backoff_max: Duration::from_secs(60),
            max_concurrent_handshakes: 128,
            reserved_handshakes: 32,
            max_handshakes_per_ip: 2,
            handshakes_per_ip: Quota::per_second(NonZeroU32::new(4).expect("non-zero"))
                .allow_burst(NonZeroU32::new(8).expect("non-zero")),
            handshakes_per_subnet: Quota::per_second(NonZeroU32::new(16).expect("non-zero"))
                .allow_burst(NonZeroU32::new(32).expect("non-zero")),
            subnet_prefix_v4: 24,
            subnet_prefix_v6: 64,
            ping_interval: Duration::from_secs(5),
            max_silence: Duration::from_secs(30),
            max_queued_messages: 4096,
            max_queued_bytes: 16 * 1024 * 1024,
            max_backlog_bytes: 64 * 1024 * 1024,
        }
    }

    /// Fast timers and open limits for tests and a laptop, where every peer shares one IP.
    ///
    /// Differs from [`recommended`](Self::recommended) in: `dial_interval` 50 ms, backoff
    /// 100 ms doubling to 2 s, `handshakes_per_ip` and `handshakes_per_subnet` 10,000 per
    /// second and `max_handshakes_per_ip` 128 (every peer shares one address),
    /// `block_duration` 60 s, `ping_interval` 1 s, `max_silence` 10 s.
    pub fn local(signer: S, namespace: &[u8], listen: SocketAddr) -> Self {
        Self {
            dial_interval: Duration::from_millis(50),
            dial_backoff_initial: Duration::from_millis(100),
            dial_backoff_max: Duration::from_secs(2),
            handshakes_per_ip: Quota::per_second(NonZeroU32::new(10_000).expect("non-zero")),
            handshakes_per_subnet: Quota::per_second(NonZeroU32::new(10_000).expect("non-zero")),
            max_handshakes_per_ip: 128,
            block_duration: Duration::from_secs(60),
            ping_interval: Duration::from_secs(1),
            max_silence: Duration::from_secs(10),
            ..Self::recommended(signer, namespace, listen)
        }
    }

    /// The stream settings this node uses for every connection.
    pub fn stream(&self) -> palisade_stream::Config<S> {
        let mut stream = palisade_stream::Config::recommended(self.signer.clone(), &self.namespace);
        stream.max_message_size = self.max_message_size;
        stream.synchrony_bound = self.synchrony_bound;
        stream.max_handshake_age = self.max_handshake_age;
        stream.handshake_timeout = self.handshake_timeout;
        stream.hello_timeout = self.hello_timeout;
        stream
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::ed25519::PrivateKey;

    #[test]
    fn presets_are_consistent() {
        let listen = SocketAddr::from(([127, 0, 0, 1], 3000));
        for config in [
            Config::recommended(PrivateKey::from_seed(1), b"app", listen),
            Config::local(PrivateKey::from_seed(1), b"app", listen),
        ] {
            assert!(config.stream().validate().is_ok());
            assert!(config.dial_backoff_initial <= config.dial_backoff_max);
            assert!(config.ping_interval < config.max_silence);
            assert!(
                config.max_silence < Duration::from_secs(60),
                "inside tokio's read bound"
            );
            assert!(config.tracked_peer_sets > 0 && config.max_queued_messages > 0);
        }
    }

    #[test]
    fn debug_shows_the_settings_and_never_the_secret() {
        use commonware_codec::Encode as _;
        let key = PrivateKey::from_seed(9);
        let secret: String = key.encode().iter().map(|b| format!("{b:02x}")).collect();
        let config = Config::recommended(key, b"app", SocketAddr::from(([127, 0, 0, 1], 3000)));
        let shown = format!("{config:?} {:?}", config.stream());
        assert!(shown.contains("max_queued_messages") && shown.contains("127.0.0.1:3000"));
        assert!(!shown.contains(&secret), "{shown}");
        assert!(!shown.contains(&secret[..16]), "{shown}");
    }
}
