//! Runnable demonstrations of palisade.
//!
//! [`handshake_demo`] runs two known peers and one stranger against a listener: the known
//! dialer completes the handshake and exchanges messages, the stranger is refused by the
//! bouncer before any signature is checked. It is generic over the runtime, so the binary runs
//! it over real TCP on tokio and the tests run it on the deterministic simulator.

pub mod hex;
pub mod keyfile;
pub mod mitm;
pub mod node;
pub mod proxy;
pub mod start;
pub mod validator;

use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
use commonware_runtime::{Clock, Listener as _, Network, Spawner, Supervisor};
use palisade_stream::{Config, Error, dial, listen};
use rand_core::CryptoRng;
use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

/// The namespace every peer of the demo agrees on.
pub const NAMESPACE: &[u8] = b"palisade-demo";

/// What happened during the demo, in order, for printing and for tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// One human-readable line per event.
    pub events: Vec<String>,
    /// Messages the dialer got back from the listener.
    pub echoes_received: usize,
    /// The reason the stranger's handshake failed on the listener's side.
    pub stranger_refusal: Option<&'static str>,
}

/// Runs the demo on `context`, with the listener bound to `address` (port 0 picks a free port).
///
/// # Panics
/// When the runtime cannot bind or dial loopback, or when a step that must succeed fails.
pub async fn handshake_demo<E>(context: E, address: SocketAddr) -> Report
where
    E: Spawner + Network + Clock + CryptoRng + Supervisor,
{
    let alice = PrivateKey::from_seed(1);
    let bob = PrivateKey::from_seed(2);
    let mallory = PrivateKey::from_seed(666);
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = {
        let events = events.clone();
        move |line: String| events.lock().expect("log lock").push(line)
    };

    let mut listener = context.bind(address).await.expect("bind the listener");
    let address = listener.local_addr().expect("listener address");
    log(format!(
        "bob listens on {address} as {}",
        short(bob.public_key())
    ));

    let known = alice.public_key();
    let bob_config = Config::recommended(bob.clone(), NAMESPACE);
    let bob_log = log.clone();
    let bob_task = context.child("bob").spawn(move |context| async move {
        let log = bob_log;
        let mut refusals = Vec::new();
        for _ in 0..2 {
            let (from, sink, stream) = listener.accept().await.expect("accept");
            let known = known.clone();
            let bouncer = move |claimed| async move { claimed == known };
            match listen(
                context.child("connection"),
                bob_config.clone(),
                bouncer,
                sink,
                stream,
            )
            .await
            {
                Err(error) => {
                    log(format!("bob refused {from}: {error}"));
                    refusals.push(error.reason());
                }
                Ok((peer, mut sender, mut receiver)) => {
                    log(format!("bob authenticated {}", short(peer)));
                    loop {
                        match receiver.recv().await {
                            Ok(message) => {
                                let mut reply = b"echo: ".to_vec();
                                reply.extend_from_slice(message.as_ref());
                                sender.send(reply).await.expect("echo");
                            }
                            Err(Error::Closed) => {
                                log("bob saw an authenticated close".to_string());
                                break;
                            }
                            Err(error) => {
                                log(format!("bob's connection failed: {error}"));
                                break;
                            }
                        }
                    }
                }
            }
        }
        refusals
    });

    // Mallory is not in bob's set: bob's bouncer refuses her before any crypto runs.
    let (sink, stream) = context.dial(address).await.expect("dial");
    let mallory_config = Config::recommended(mallory.clone(), NAMESPACE);
    let refused = dial(
        context.child("mallory"),
        mallory_config,
        bob.public_key(),
        sink,
        stream,
    )
    .await;
    log(format!(
        "mallory ({}) dialed bob: {}",
        short(mallory.public_key()),
        outcome(&refused)
    ));

    // Alice is known: the handshake completes and messages flow both ways.
    let (sink, stream) = context.dial(address).await.expect("dial");
    let alice_config = Config::recommended(alice.clone(), NAMESPACE);
    let (mut sender, mut receiver) = dial(
        context.child("alice"),
        alice_config,
        bob.public_key(),
        sink,
        stream,
    )
    .await
    .expect("alice's handshake");
    log(format!(
        "alice ({}) completed the handshake with bob",
        short(alice.public_key())
    ));
    let mut echoes = 0;
    for text in ["hello bob", "validators unite", "goodbye"] {
        sender.send(text.as_bytes().to_vec()).await.expect("send");
        let reply = receiver.recv().await.expect("receive");
        log(format!(
            "alice sent {text:?}, got back {:?}",
            String::from_utf8_lossy(reply.as_ref())
        ));
        echoes += 1;
    }
    sender.close().await.expect("close");
    log("alice closed her side".to_string());

    let refusals = bob_task.await.expect("bob's task");
    let events = events.lock().expect("log lock").clone();
    Report {
        events,
        echoes_received: echoes,
        stranger_refusal: refusals.first().copied(),
    }
}

fn outcome<T>(result: &Result<T, Error>) -> String {
    match result {
        Ok(_) => "connected".to_string(),
        Err(error) => format!("failed ({error}); bob sent no reason"),
    }
}

fn short(key: impl AsRef<[u8]>) -> String {
    key.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
