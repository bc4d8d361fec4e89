//! Denial of service over real TCP on loopback (tokio): connections that open and never
//! speak are capped and freed at the handshake timeout, and a length prefix far over the
//! limit is refused before any body is read. (Per-address floods need distinct source
//! addresses; they run on the simulated network in `tests/tests/dos.rs`.)

use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
use commonware_runtime::{
    Clock as _, Metrics as _, Network as _, Quota, Runner as _, Sink as _, Stream as _,
    Supervisor as _, tokio,
};
use palisade_p2p::{Config, Network};
use std::{net::SocketAddr, num::NonZeroU32, time::Duration};

const CAP: usize = 16;
const SILENT: usize = 64;

fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn metric(context: &tokio::Context, reason: &str) -> u64 {
    let reason = format!("reason=\"{reason}\"");
    context
        .encode()
        .lines()
        .filter(|line| line.starts_with("victim_handshakes") && line.contains(&reason))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[test]
fn silent_connections_are_capped_and_freed_and_oversized_prefixes_refused_over_tcp() {
    let storage = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("palisade-p2p-dos");
    let runner = tokio::Runner::new(
        tokio::Config::new()
            .with_worker_threads(2)
            .with_storage_directory(storage),
    );
    runner.start(|context| async move {
        let address = free_address();
        let victim = PrivateKey::from_seed(1);
        let mut config = Config::local(victim.clone(), b"dos-over-tcp", address);
        config.max_concurrent_handshakes = CAP;
        config.handshake_timeout = Duration::from_secs(2);
        config.handshakes_per_ip = Quota::per_second(NonZeroU32::new(100_000).unwrap());
        let (network, mut oracle) = Network::new(context.child("victim"), config);
        oracle.track(0, vec![(victim.public_key(), address)]).await;
        let _handle = network.start();
        // Wait until the listener answers (a probe connection, closed at once).
        for attempt in 0.. {
            assert!(attempt < 100, "the listener never came up");
            if context.dial(address).await.is_ok() {
                break;
            }
            context.sleep(Duration::from_millis(20)).await;
        }
        context.sleep(Duration::from_millis(100)).await;

        // 64 connections that never send: 16 hold the handshake slots, 48 are closed at once.
        let mut silent = Vec::new();
        let opened = context.current();
        for _ in 0..SILENT {
            // A connection the victim closes at once (with a reset) can fail the dial itself.
            if let Ok(connection) = context.dial(address).await {
                silent.push(connection);
            }
        }
        let mut refused = 0;
        for _ in 0..50 {
            refused = metric(&context, "too_many_handshakes");
            if refused == (SILENT - CAP) as u64 {
                break;
            }
            context.sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(refused, (SILENT - CAP) as u64);
        // The held ones are closed at the 2 s handshake timeout, not before.
        assert_eq!(metric(&context, "handshake_timeout"), 0);
        let mut freed = 0;
        while freed < CAP as u64 {
            assert!(
                context.current().duration_since(opened).unwrap() < Duration::from_secs(6),
                "only {freed} of {CAP} freed"
            );
            context.sleep(Duration::from_millis(50)).await;
            freed = metric(&context, "handshake_timeout");
        }
        let freed_after = context.current().duration_since(opened).unwrap();
        assert!(
            freed_after >= Duration::from_millis(1900),
            "freed after {freed_after:?}"
        );
        // Every silent connection reads its end.
        for (_, mut stream) in silent {
            assert!(stream.recv(1).await.is_err());
        }

        // A length prefix of 2 GiB - 1: refused at once, nothing allocated or awaited.
        let (mut sink, mut stream) = context.dial(address).await.unwrap();
        let sent = context.current();
        sink.send(0x7fff_ffffu32.to_be_bytes().to_vec())
            .await
            .unwrap();
        assert!(stream.recv(1).await.is_err());
        let closed_after = context.current().duration_since(sent).unwrap();
        assert!(
            closed_after < Duration::from_secs(1),
            "closed after {closed_after:?}"
        );
        assert_eq!(metric(&context, "invalid_frame_size"), 1);
    });
}
