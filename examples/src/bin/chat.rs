//! `chat`: the friendliest demo. Three people, three terminals, one palisade network on this
//! machine:
//!
//! ```sh
//! cargo run -p palisade-examples --bin chat -- alice    # terminal 1
//! cargo run -p palisade-examples --bin chat -- bob      # terminal 2
//! cargo run -p palisade-examples --bin chat -- carol    # terminal 3
//! ```
//!
//! Whatever one types appears on the other two, sent over authenticated, encrypted
//! connections. The three identities are fixed demo keys derived from the names, so anyone
//! can take part: never use them for anything but this demo (`node` uses real key files).

use clap::Parser;
use commonware_cryptography::{Signer as _, ed25519};
use commonware_runtime::tokio;
use palisade_examples::{
    node::{
        self, Received,
        config::{Channel, NodeConfig, Preset},
    },
    start,
};
use std::{io::Write as _, net::SocketAddr, num::NonZeroU32, process::ExitCode};

const PEOPLE: [&str; 3] = ["alice", "bob", "carol"];

/// Chat with two others over palisade on this machine.
#[derive(Parser)]
#[command(name = "chat", version)]
struct Cli {
    /// Who you are: alice, bob or carol.
    name: String,
    /// The first of the three ports (alice's; bob and carol take the next two).
    #[arg(long, default_value_t = 7400)]
    base_port: u16,
}

fn key(index: usize) -> ed25519::PrivateKey {
    // Demo keys: fixed, public, and only for this demo.
    ed25519::PrivateKey::from_seed(0xC4A7_0000 + index as u64)
}

fn main() -> ExitCode {
    // Warnings, and the node's own notes (a line waiting for a peer, a line dropped).
    start::log_to_stderr("warn,palisade_examples=info");
    let cli = Cli::parse();
    let Some(me) = PEOPLE.iter().position(|name| *name == cli.name) else {
        eprintln!("chat: `{}` is not one of {}", cli.name, PEOPLE.join(", "));
        return ExitCode::from(2);
    };
    let Some(last_port) = cli.base_port.checked_add(PEOPLE.len() as u16 - 1) else {
        eprintln!(
            "chat: --base-port {} leaves no room for three ports",
            cli.base_port
        );
        return ExitCode::from(2);
    };
    let address = |index: usize| SocketAddr::from(([127, 0, 0, 1], cli.base_port + index as u16));
    let config = NodeConfig {
        key_file: Default::default(),
        listen: address(me),
        advertise: palisade_p2p::Ingress::Socket(address(me)),
        namespace: "palisade-chat".into(),
        metrics: None,
        preset: Preset::Local,
        peers: (0..PEOPLE.len())
            .filter(|&index| index != me)
            .map(|index| {
                let ingress = palisade_p2p::Ingress::Socket(address(index));
                (key(index).public_key(), ingress)
            })
            .collect(),
        channels: vec![Channel {
            id: 0,
            messages_per_second: NonZeroU32::new(10).expect("non-zero"),
            backlog: 256,
        }],
        storage: None,
    };
    let names: Vec<(ed25519::PublicKey, &str)> = PEOPLE
        .iter()
        .enumerate()
        .map(|(index, name)| (key(index).public_key(), *name))
        .collect();
    let print = move |received: Received| {
        let name = names
            .iter()
            .find(|(key, _)| *key == received.from)
            .map_or("?", |(_, name)| name);
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{name}: {}", received.text);
        let _ = stdout.flush();
    };
    let input = start::stdin_lines();
    let runtime = tokio::Config::new().with_worker_threads(1);
    let greeting = format!(
        "{} here, on 127.0.0.1:{} (ports {}-{last_port}); type a line and press enter",
        PEOPLE[me],
        address(me).port(),
        cli.base_port
    );
    let result = start::on_tokio("chat", runtime, |context| async move {
        start::stop_on_signals(&context, "chat").await;
        // Greeted once Ctrl-C is a graceful stop.
        println!("{greeting}");
        node::run(context, config, key(me), input, print).await
    });
    if let Err(error) = result {
        eprintln!("chat: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
