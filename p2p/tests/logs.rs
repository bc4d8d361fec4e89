//! What an operator reads in the logs: a peer with another namespace and a peer configured
//! with the wrong key are each named at warn level, with the connection's address and peer,
//! and told apart from a forged signature, at most once per reason and interval; an
//! unreachable peer is reported once at info.

mod common;

use common::*;
use commonware_cryptography::Signer as _;
use commonware_runtime::{Clock as _, Runner as _, deterministic};
use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

/// Everything logged, as text without colours.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// The lines at `level` that contain every one of `parts`.
    fn lines(&self, level: &str, parts: &[&str]) -> Vec<String> {
        self.text()
            .lines()
            .filter(|line| line.contains(level) && parts.iter().all(|part| line.contains(part)))
            .map(str::to_string)
            .collect()
    }
}

/// Runs `test` on a deterministic runtime with every event at info and above captured.
fn logged(seed: u64, test: impl AsyncFnOnce(deterministic::Context) + Send + 'static) -> Captured {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        deterministic::Runner::seeded(seed).start(|context| async move { test(context).await });
    });
    captured
}

#[test]
fn a_peer_with_another_namespace_is_named_at_warn() {
    let logs = logged(1, async |context| {
        let set = peer_set(0..2);
        let _a = start_node(&context, 0, &set, open_quota(), 16).await;
        let other = Setup {
            configure: |config| config.namespace = b"another-network".to_vec(),
            ..Setup::new(1)
        };
        let _b = start_node_with(&context, 1, &set, other).await;
        context.sleep(Duration::from_secs(5)).await;
        assert_eq!(connected(&context, 0), 0);
        let refused: u64 = (0..2)
            .map(|node| {
                metric(
                    &context,
                    "handshakes",
                    node,
                    &["reason=\"namespace_mismatch\""],
                )
            })
            .sum();
        assert!(refused > 10, "{refused} refusals");
    });
    let warned = logs.lines(
        "WARN",
        &["uses another namespace", "reason=\"namespace_mismatch\""],
    );
    // Dozens of refusals in 5 s, one warning per node: the rest are throttled (an attacker
    // can cause these at will) and only counted.
    assert!(!warned.is_empty(), "{}", logs.text());
    assert!(warned.len() <= 2, "{warned:#?}");
    // The span names the connection: which way and from where. (The listener refuses before
    // it answers, so the dialer only sees the connection close.)
    assert!(
        warned
            .iter()
            .all(|line| line.contains("direction=\"inbound\"")
                && line.contains("address=127.0.0.1:")),
        "{warned:#?}"
    );
    // Never reported as a forgery.
    assert!(
        logs.lines("WARN", &["invalid_signature"]).is_empty(),
        "{}",
        logs.text()
    );
}

#[test]
fn a_peer_configured_with_the_wrong_key_for_us_is_named_at_warn() {
    let logs = logged(2, async |context| {
        // Node 0 believes node 1's address belongs to key 7: it dials node 1 expecting key 7.
        let mut wrong = peer_set(0..2);
        wrong[1].0 = key(7).public_key();
        let _a = start_node(&context, 0, &wrong, open_quota(), 16).await;
        let _b = start_node(&context, 1, &peer_set(0..2), open_quota(), 16).await;
        context.sleep(Duration::from_secs(5)).await;
    });
    // Node 1 sees a Hello addressed to another key...
    let refused = logs.lines(
        "WARN",
        &[
            "expects another public key for this node",
            "direction=\"inbound\"",
        ],
    );
    assert!(!refused.is_empty(), "{}", logs.text());
    // ...and node 0 reports the peer unreachable once, at info, naming it.
    let unreachable = logs.lines(
        "INFO",
        &["peer unreachable", &key(7).public_key().to_string()],
    );
    assert_eq!(unreachable.len(), 1, "{}", logs.text());
}

#[test]
fn an_unreachable_peer_is_reported_once_then_only_at_debug() {
    let logs = logged(3, async |context| {
        let _a = start_node(&context, 0, &peer_set(0..2), open_quota(), 16).await;
        // Node 1 never starts: dozens of dials fail over a minute.
        context.sleep(Duration::from_secs(60)).await;
        assert!(metric(&context, "dials", 0, &["outcome=\"connect_failed\""]) > 3);
    });
    let unreachable = logs.lines("INFO", &["peer unreachable", "reason=\"connect_failed\""]);
    assert_eq!(unreachable.len(), 1, "{}", logs.text());
}
