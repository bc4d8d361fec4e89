//! Two peers that dial each other at once lose nothing: at every offset of the dial grace
//! period, with both sides sending from the moment `send` names the other as a recipient,
//! every message arrives once and in order.
//!
//! The peer with the larger key waits the dial grace (4 dial intervals, 200 ms with
//! `Config::local`) before it dials; the peer with the smaller key learns of the other only
//! `offset` after the start, and dials at once. Sweeping the offset across the grace period and
//! a handshake beyond it makes the two dials meet at every phase of each other's handshake.

use commonware_cryptography::{Signer as _, ed25519};
use commonware_runtime::{
    Clock as _, Metrics as _, Quota, Runner as _, Spawner as _, Supervisor as _, deterministic,
};
use commonware_utils::ordered::Map;
use palisade_p2p::{
    Address, AddressableManager as _, Config, Receiver as _, Recipients, Sender as _,
};
use palisade_sim::{Config as SimConfig, Context, Link, Network};
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

const NAMESPACE: &[u8] = b"palisade-simultaneous-dials";
const CHANNEL: u64 = 0;
/// How long both sides send, from the start.
const SENDING: Duration = Duration::from_millis(1500);
/// One message per side this often, whenever the other is a recipient.
const SEND_EVERY: Duration = Duration::from_millis(1);

fn address(index: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, index as u8 + 1)), 9000)
}

/// What one run saw.
struct Outcome {
    /// Per side: the sequence numbers `send` accepted for the other side, in order.
    sent: [Vec<u32>; 2],
    /// Per side: what arrived from the other side, in order.
    received: [Vec<u32>; 2],
    /// Whether both sides completed a dial of their own (the two connections met).
    both_dialed: bool,
}

fn run(seed: u64, offset: Duration) -> Outcome {
    deterministic::Runner::seeded(seed).start(move |context| async move {
        let keys = [
            ed25519::PrivateKey::from_seed(1),
            ed25519::PrivateKey::from_seed(2),
        ];
        // `first` has the smaller key: it dials at once, the other after the grace period.
        let first = usize::from(keys[1].public_key() < keys[0].public_key());
        let network = Network::new(
            context.child("sim"),
            SimConfig {
                default_link: Link::new(Duration::from_millis(20), Duration::from_millis(5)),
                ..SimConfig::default()
            },
        );
        let set: Map<ed25519::PublicKey, Address> = Map::from_iter_dedup(
            (0..2).map(|i| (keys[i].public_key(), Address::Symmetric(address(i)))),
        );
        let sent: [Arc<Mutex<Vec<u32>>>; 2] = Default::default();
        let received: [Arc<Mutex<Vec<u32>>>; 2] = Default::default();
        let mut oracles = Vec::new();
        for (index, key) in keys.iter().enumerate() {
            let ip = address(index).ip();
            network.add_node(ip).unwrap();
            let node = Context::new(
                context.child("node").with_attribute("index", index),
                network.node(ip).unwrap(),
            );
            let (mut p2p, oracle) = palisade_p2p::Network::new(
                node,
                Config::local(key.clone(), NAMESPACE, address(index)),
            );
            let quota = Quota::per_second(NonZeroU32::new(1_000_000).unwrap());
            let (mut sender, mut receiver) = p2p.register(CHANNEL, quota, 100_000);
            p2p.start();
            oracles.push(oracle);
            let log = sent[index].clone();
            context.child("sender").spawn(move |context| async move {
                let mut sequence = 0u32;
                while context
                    .current()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    < SENDING
                {
                    if !sender
                        .send(Recipients::All, sequence.to_be_bytes().to_vec(), false)
                        .is_empty()
                    {
                        log.lock().unwrap().push(sequence);
                        sequence += 1;
                    }
                    context.sleep(SEND_EVERY).await;
                }
            });
            let log = received[index].clone();
            context.child("receiver").spawn(move |_| async move {
                while let Ok((_, message)) = receiver.recv().await {
                    let sequence = u32::from_be_bytes(message.as_ref().try_into().unwrap());
                    log.lock().unwrap().push(sequence);
                }
            });
        }
        // The later dialer knows the other from the start; the first dialer after `offset`.
        let later = 1 - first;
        oracles[later].track(0, set.clone());
        context.sleep(offset).await;
        oracles[first].track(0, set);
        // Sending ends at `SENDING`; a second more delivers whatever is in flight.
        context
            .sleep(SENDING + Duration::from_secs(1) - offset)
            .await;
        let encoded = context.encode();
        let dialed = |index: usize| {
            let label = format!("index=\"{index}\"");
            encoded.lines().any(|line| {
                line.starts_with("node_handshakes_total")
                    && line.contains(&label)
                    && line.contains("direction=\"outbound\"")
                    && line.contains("outcome=\"ok\"")
                    && !line.ends_with(" 0")
            })
        };
        let both_dialed = dialed(0) && dialed(1);
        let take = |logs: &[Arc<Mutex<Vec<u32>>>; 2]| {
            [
                logs[0].lock().unwrap().clone(),
                logs[1].lock().unwrap().clone(),
            ]
        };
        Outcome {
            sent: take(&sent),
            received: take(&received),
            both_dialed,
        }
    })
}

#[test]
fn simultaneous_dials_at_every_offset_of_the_grace_period_lose_nothing() {
    // The grace period is 200 ms and a handshake over these links takes about 100 ms.
    let mut met = 0;
    for step in 0..=80u64 {
        let offset = Duration::from_millis(step * 5);
        let outcome = run(step, offset);
        for side in 0..2 {
            let (sent, received) = (&outcome.sent[side], &outcome.received[1 - side]);
            assert!(
                sent.len() > 100,
                "offset {offset:?}: side {side} sent only {}",
                sent.len()
            );
            assert!(
                received == sent,
                "offset {offset:?}: side {side} sent {} messages, the other received {} \
                 (first difference at index {:?})",
                sent.len(),
                received.len(),
                sent.iter().zip(received).position(|(a, b)| a != b)
            );
        }
        met += usize::from(outcome.both_dialed);
    }
    eprintln!("the two dials met at {met} of 81 offsets");
    // The sweep is only worth something if the dials did meet.
    assert!(met >= 10, "the two dials met at only {met} offsets");
}
