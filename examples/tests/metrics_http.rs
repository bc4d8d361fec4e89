//! `/metrics` under a slow-loris attack on tokio over loopback: 64 connections from 32
//! addresses that send their request head a byte at a time and reconnect whenever they are
//! closed, while a scraper from another address asks for the metrics again and again. Every
//! scrape is answered (before the head deadline and eviction, the attackers held every slot
//! for 5 s at a time and the scraper's connections were closed unanswered).

mod support;

use commonware_runtime::{Runner as _, Spawner as _, Supervisor as _, tokio};
use palisade_examples::node::metrics_http;
use socket2::{Domain, Socket, Type};
use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use support::Folder;

/// A connection to `to` from `from` (any loopback address is this host's).
fn connect_from(from: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((from, 0)).into())?;
    socket.connect(&to.into())?;
    Ok(socket.into())
}

/// The body of `GET /metrics`, or why there is none.
fn scrape(to: SocketAddr) -> Result<String, String> {
    let mut stream = connect_from([127, 0, 0, 1], to).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(support::SAFETY_NET))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    if response.starts_with("HTTP/1.1 200") {
        Ok(response)
    } else {
        Err(format!("answered {response:?}"))
    }
}

#[test]
fn a_slow_loris_from_many_addresses_does_not_stop_scraping() {
    let folder = Folder::new("metrics-loris");
    let storage = folder.0.join("storage");
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let config = tokio::Config::new()
            .with_worker_threads(2)
            .with_storage_directory(&storage);
        tokio::Runner::new(config).start(|context| async move {
            let (bound, listening) = futures::channel::oneshot::channel();
            context.child("metrics").spawn(move |context| async move {
                let _ =
                    metrics_http::serve(context, "127.0.0.1:0".parse().unwrap(), bound, None).await;
            });
            address_tx.send(listening.await.unwrap()).unwrap();
            futures::future::pending::<()>().await
        });
    });
    let address = address_rx.recv_timeout(support::SAFETY_NET).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let attacks = Arc::new(AtomicU64::new(0));
    let attackers: Vec<_> = (0..64u8)
        .map(|index| {
            let (stop, attacks) = (stop.clone(), attacks.clone());
            std::thread::spawn(move || {
                let from = [127, 0, 1, 2 + index % 32];
                while !stop.load(Ordering::SeqCst) {
                    let Ok(mut stream) = connect_from(from, address) else {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    attacks.fetch_add(1, Ordering::SeqCst);
                    // A byte every 100 ms, never the end of the head.
                    for byte in b"GET /metrics HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
                        if stop.load(Ordering::SeqCst) || stream.write_all(&[*byte]).is_err() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            })
        })
        .collect();
    // Let the attack fill every slot first.
    while attacks.load(Ordering::SeqCst) < 64 {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut slowest = Duration::ZERO;
    for attempt in 0..20 {
        let started = Instant::now();
        let body = scrape(address).unwrap_or_else(|why| panic!("scrape {attempt}: {why}"));
        assert!(
            body.contains("# EOF") || body.contains("HTTP/1.1 200"),
            "{body}"
        );
        slowest = slowest.max(started.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::SeqCst);
    for attacker in attackers {
        attacker.join().unwrap();
    }
    eprintln!(
        "slow loris: {} attacking connections from 32 addresses; 20 of 20 scrapes answered, the slowest in {slowest:?}",
        attacks.load(Ordering::SeqCst)
    );
}
