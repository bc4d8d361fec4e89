//! commonware-p2p's `lookup` network with two upgraders, palisade's (`Palisade`) and its own
//! (SakeCups), on the deterministic runtime's own network: the wall time for [`PEERS`] nodes
//! to form a full mesh, which is [`PEERS`] x ([`PEERS`] - 1) / 2 handshakes and little else
//! (the runtime's network has no latency, so the time is the handshakes' CPU and lookup's
//! own work around them, identical for both).
//!
//! After one untimed run of each, rounds alternate the order (A-B-B-A); figures are medians
//! over `PALISADE_BENCH_ROUNDS` rounds (default 9), reported per handshake.
//!
//! `cargo bench -p palisade-stream --bench upgrader`.

use commonware_cryptography::{ChaCha20Poly1305, Signer as _, ed25519};
use commonware_p2p::{
    Address, AddressableManager as _, Recipients, Sender as _, authenticated::lookup,
};
use commonware_runtime::{Clock as _, Quota, Runner as _, Supervisor as _, deterministic};
use commonware_stream::{
    Upgrader,
    cups::{self, Cups},
    sake::{self, Sake},
};
use commonware_utils::{NZU32, NZUsize, ordered::Map};
use palisade_stream::upgrader::Palisade;
use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

const PEERS: usize = 16;
const NAMESPACE: &[u8] = b"palisade-upgrader-bench";

fn sakecups(signer: ed25519::PrivateKey) -> Cups<Sake<ed25519::PrivateKey>, ChaCha20Poly1305> {
    Cups::new(
        Sake {
            signer,
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            version: sake::Version::V1,
        },
        cups::Version::V1,
    )
}

/// Wall time until `PEERS` lookup nodes built with `upgrader` reach each other.
fn mesh<U>(seed: u64, upgrader: fn(ed25519::PrivateKey) -> U) -> Duration
where
    U: Upgrader<PublicKey = ed25519::PublicKey>,
{
    deterministic::Runner::seeded(seed).start(|context| async move {
        let signers: Vec<_> = (0..PEERS as u64)
            .map(ed25519::PrivateKey::from_seed)
            .collect();
        let address = |i: usize| SocketAddr::from(([127, 0, 0, 1], 6000 + i as u16));
        let set: Map<_, Address> =
            Map::from_iter_dedup((0..PEERS).map(|i| (signers[i].public_key(), address(i).into())));
        let wall = Instant::now();
        let (mut senders, mut receivers) = (Vec::new(), Vec::new());
        for (i, signer) in signers.iter().enumerate() {
            let mut config = lookup::Config::local(
                upgrader(signer.clone()),
                NAMESPACE,
                address(i),
                NZUsize!(PEERS),
                64 * 1024,
                NZUsize!(1024),
            );
            config.dial_frequency = Duration::from_millis(10);
            config.peer_connection_cooldown = Duration::from_millis(10);
            config.allowed_handshake_rate_per_ip = Quota::per_second(NZU32!(100_000));
            config.allowed_handshake_rate_per_subnet = Quota::per_second(NZU32!(100_000));
            let node = context.child("node").with_attribute("index", i);
            let (mut network, mut oracle) = lookup::Network::new(node, config);
            let _ = oracle.track(0, set.clone());
            let (sender, receiver) = network.register(0, Quota::per_second(NZU32!(1000)));
            network.start();
            senders.push(sender);
            receivers.push(receiver);
        }
        loop {
            let reached: usize = senders
                .iter_mut()
                .map(|sender| sender.send(Recipients::All, b"probe".to_vec(), false).len())
                .sum();
            if reached == PEERS * (PEERS - 1) {
                drop(receivers);
                return wall.elapsed();
            }
            context.sleep(Duration::from_millis(10)).await;
        }
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rounds: u64 = std::env::var("PALISADE_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(9);
    let handshakes = (PEERS * (PEERS - 1) / 2) as f64;
    // One untimed run of each first: the first runs of a process pay for page faults and
    // lazily built tables.
    mesh(0, Palisade::recommended);
    mesh(0, sakecups);
    let (mut palisade, mut reference) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let run_palisade =
            || mesh(round + 1, Palisade::recommended).as_secs_f64() * 1e6 / handshakes;
        let run_reference = || mesh(round + 1, sakecups).as_secs_f64() * 1e6 / handshakes;
        if round % 2 == 0 {
            palisade.push(run_palisade());
            reference.push(run_reference());
        } else {
            reference.push(run_reference());
            palisade.push(run_palisade());
        }
        eprintln!(
            "round {}: palisade {:.0} us, SakeCups {:.0} us per handshake",
            round + 1,
            palisade.last().unwrap(),
            reference.last().unwrap()
        );
    }
    let (p, r) = (median(palisade), median(reference));
    println!(
        "\nlookup, {PEERS} nodes to a full mesh on the deterministic runtime; wall time per \
         handshake, medians of {rounds} rounds\n"
    );
    println!("| upgrader | us per handshake |");
    println!("|---|---|");
    println!("| palisade (Palisade) | {p:.0} |");
    println!("| SakeCups | {r:.0} |");
    println!("\npalisade / SakeCups: {:.2}x (target <= 0.9x)", p / r);
}
