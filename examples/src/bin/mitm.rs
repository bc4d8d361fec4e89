//! `mitm`: what a man in the middle sees of a palisade connection, and what happens when he
//! changes one bit.
//!
//! ```sh
//! cargo run -p palisade-examples --bin mitm            # alice -> relay -> bob, relay prints frames
//! cargo run -p palisade-examples --bin mitm -- --flip  # the relay flips one bit of alice's first record
//! ```
//!
//! Without `--flip`, bob receives alice's messages while the relay prints only ciphertext.
//! With it, bob's stream rejects the altered record (`decryption_failed`), drops the
//! connection, and delivers nothing altered. `--listen A --to B` relays one real connection
//! (for example between two `node`s) instead of running the demo.

use clap::Parser;
use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
use commonware_runtime::{Listener as _, Network as _, Spawner as _, Supervisor as _, tokio};
use palisade_examples::{
    mitm::{Flip, Frame, relay},
    start,
};
use palisade_stream::{Config, dial, listen};
use std::{
    net::SocketAddr,
    process::ExitCode,
    sync::{Arc, Mutex},
};

/// Messages alice sends through the relay.
const MESSAGES: [&str; 2] = ["attack at dawn", "the password is swordfish"];
const NAMESPACE: &[u8] = b"palisade-mitm-demo";

#[derive(Parser)]
#[command(
    name = "mitm",
    version,
    about = "What a man in the middle sees of a palisade connection"
)]
struct Cli {
    /// Flip one bit of the first data record from the dialer.
    #[arg(long)]
    flip: bool,
    /// Relay one real connection from this address (with --to) instead of running the demo.
    #[arg(long, requires = "to")]
    listen: Option<SocketAddr>,
    /// Where the relayed connection goes.
    #[arg(long, requires = "listen")]
    to: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let flip = cli.flip.then_some(Flip::FIRST_RECORD_FROM_DIALER);
    let runtime = tokio::Config::new().with_worker_threads(2);
    start::on_tokio("mitm", runtime, |context| async move {
        match (cli.listen, cli.to) {
            (Some(listen), Some(to)) => relay_only(context, listen, to, flip).await,
            _ => demo(context, flip).await,
        }
    })
}

fn print_frame(frame: Frame) {
    println!("relay saw  {frame}");
}

async fn relay_only(
    context: tokio::Context,
    listen: SocketAddr,
    to: SocketAddr,
    flip: Option<Flip>,
) -> ExitCode {
    let listener = match context.bind(listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("mitm: cannot listen on {listen}: {error}");
            return ExitCode::from(2);
        }
    };
    println!("relaying one connection from {listen} to {to}");
    match relay(context, listener, to, flip, print_frame).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mitm: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(context: tokio::Context, flip: Option<Flip>) -> ExitCode {
    let alice = PrivateKey::from_seed(0xA11CE);
    let bob = PrivateKey::from_seed(0xB0B);
    let local = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut bob_listener = context.bind(local).await.expect("bind bob");
    let bob_address = bob_listener.local_addr().expect("bob's address");
    let relay_listener = context.bind(local).await.expect("bind the relay");
    let relay_address = relay_listener.local_addr().expect("the relay's address");
    println!("alice -> relay {relay_address} -> bob {bob_address}");
    println!("alice sends: {MESSAGES:?}");

    let delivered = Arc::new(Mutex::new(Vec::new()));
    let bob_task = {
        let (alice_key, delivered) = (alice.public_key(), delivered.clone());
        context.child("bob").spawn(move |context| async move {
            let (_, sink, stream) = bob_listener.accept().await.expect("accept");
            let bouncer = move |claimed| {
                let known = claimed == alice_key;
                async move { known }
            };
            let config = Config::recommended(bob, NAMESPACE);
            let (_, _sender, mut receiver) =
                match listen(context.child("stream"), config, bouncer, sink, stream).await {
                    Ok(halves) => halves,
                    Err(error) => {
                        println!("bob: handshake failed: {error} ({})", error.reason());
                        return;
                    }
                };
            loop {
                match receiver.recv().await {
                    Ok(message) => {
                        let text = String::from_utf8_lossy(message.as_ref()).into_owned();
                        println!("bob received: {text}");
                        delivered.lock().expect("lock").push(text);
                    }
                    Err(error) => {
                        println!("bob: connection ended: {error} ({})", error.reason());
                        return;
                    }
                }
            }
        })
    };
    let seen = Arc::new(Mutex::new(Vec::<Frame>::new()));
    let relay_task = {
        let seen = seen.clone();
        context.child("relay").spawn(move |context| async move {
            let _ = relay(context, relay_listener, bob_address, flip, move |frame| {
                print_frame(frame.clone());
                seen.lock().expect("lock").push(frame);
            })
            .await;
        })
    };
    let (sink, stream) = context.dial(relay_address).await.expect("dial the relay");
    let config = Config::recommended(alice, NAMESPACE);
    match dial(
        context.child("alice"),
        config,
        PrivateKey::from_seed(0xB0B).public_key(),
        sink,
        stream,
    )
    .await
    {
        Ok((mut sender, _receiver)) => {
            for message in MESSAGES {
                let _ = sender.send(message.as_bytes().to_vec()).await;
            }
            let _ = sender.close().await;
        }
        Err(error) => println!("alice: handshake failed: {error}"),
    }
    let _ = bob_task.await;
    relay_task.abort();

    let delivered = delivered.lock().expect("lock").clone();
    let frames = seen.lock().expect("lock").clone();
    let leaked = frames.iter().any(|frame| {
        MESSAGES
            .iter()
            .any(|message| contains(&frame.bytes, message.as_bytes()))
    });
    println!(
        "summary: bob received {} of {} messages; the relay saw {} frames; plaintext on the wire: {}",
        delivered.len(),
        MESSAGES.len(),
        frames.len(),
        if leaked { "YES" } else { "none" }
    );
    let altered = delivered
        .iter()
        .any(|text| !MESSAGES.contains(&text.as_str()));
    if leaked || altered {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
