//! A small palisade-p2p network (four nodes on the deterministic runtime) driven by the
//! input through random sends, peer-set changes, blocks and pauses. Checked on every
//! delivery:
//!
//! - the message comes from the node its content names (authenticated sender);
//! - the receiver was one of the peers the send was queued for;
//! - nothing arrives twice, and from each sender messages arrive in the order sent.

#![no_main]

use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
use commonware_runtime::{Clock as _, Quota, Spawner as _, Supervisor as _};
use commonware_utils::ordered::Map;
use libfuzzer_sys::fuzz_target;
use palisade_fuzz::run;
use palisade_p2p::{
    Address, AddressableManager as _, Blocker as _, Config, Network, Receiver as _, Recipients,
    Sender as _,
};
use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

const NODES: usize = 4;
const MAX_OPS: usize = 64;
/// All pauses of a run together: with the second before and the two after, well inside the
/// 60 simulated seconds after which a run counts as hung (64 pauses of up to 1,020 ms each
/// could outlast it, which the long runs found).
const MAX_PAUSES: Duration = Duration::from_secs(40);

fn address(index: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 3000 + index as u16))
}

fn message(sender: usize, sequence: u32) -> Vec<u8> {
    let mut bytes = vec![sender as u8];
    bytes.extend_from_slice(&sequence.to_be_bytes());
    bytes
}

fuzz_target!(|data: &[u8]| {
    let data = data.to_vec();
    // (receiver, sender, sequence) for every delivery, and every (sender, sequence) ->
    // receivers it was queued for.
    let delivered: Arc<Mutex<Vec<(usize, usize, u32)>>> = Arc::default();
    let queued: Arc<Mutex<BTreeMap<(usize, u32), BTreeSet<usize>>>> = Arc::default();
    let (deliveries, queues) = (delivered.clone(), queued.clone());
    run(|context| async move {
        let keys: Vec<PrivateKey> = (0..NODES as u64)
            .map(|i| PrivateKey::from_seed(i + 10))
            .collect();
        let everyone: Vec<(_, Address)> = (0..NODES)
            .map(|i| (keys[i].public_key(), address(i).into()))
            .collect();
        let index_of: BTreeMap<_, _> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.public_key(), i))
            .collect();
        let mut senders = Vec::new();
        let mut oracles = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let node = context.child("node").with_attribute("index", i);
            let (mut network, mut oracle) =
                Network::new(node, Config::local(key.clone(), b"p2p-fuzz", address(i)));
            let quota = Quota::per_second(NonZeroU32::new(1_000_000).unwrap());
            let (sender, mut receiver) = network.register(0, quota, 4096);
            oracle.track(0, Map::from_iter_dedup(everyone.clone()));
            network.start();
            let (deliveries, index_of) = (deliveries.clone(), index_of.clone());
            context.child("drain").spawn(move |_| async move {
                while let Ok((from, bytes)) = receiver.recv().await {
                    let bytes = bytes.as_ref();
                    let claimed = usize::from(bytes[0]);
                    let sequence = u32::from_be_bytes(bytes[1..5].try_into().unwrap());
                    assert_eq!(index_of.get(&from), Some(&claimed), "misattributed message");
                    deliveries.lock().unwrap().push((i, claimed, sequence));
                }
            });
            senders.push(sender);
            oracles.push(oracle);
        }
        context.sleep(Duration::from_secs(1)).await;
        let mut next = vec![0u32; NODES];
        let mut set_index = vec![0u64; NODES];
        let mut paused = Duration::ZERO;
        for op in data.chunks(3).take(MAX_OPS) {
            let [kind, a, b] = [op[0], *op.get(1).unwrap_or(&0), *op.get(2).unwrap_or(&0)];
            let (a, b) = (usize::from(a) % NODES, usize::from(b) % NODES);
            match kind % 6 {
                0 | 1 => {
                    let recipients = if kind % 6 == 0 {
                        Recipients::All
                    } else {
                        Recipients::One(keys[b].public_key())
                    };
                    let sequence = next[a];
                    next[a] += 1;
                    let sent = senders[a].send(recipients, message(a, sequence), false);
                    let to: BTreeSet<usize> = sent.iter().map(|key| index_of[key]).collect();
                    queues.lock().unwrap().insert((a, sequence), to);
                }
                2 => {
                    // Node a tracks a new set: the members whose bit is set in b (itself always).
                    set_index[a] += 1;
                    let set = (0..NODES)
                        .filter(|&i| {
                            i == a || (usize::from(op.get(2).copied().unwrap_or(0)) >> i) & 1 == 1
                        })
                        .map(|i| everyone[i].clone());
                    oracles[a].track(set_index[a], Map::from_iter_dedup(set));
                }
                3 if a != b => {
                    oracles[a].block(keys[b].public_key());
                }
                _ => {
                    // A pause of up to about a second, within what is left of the budget.
                    let pause =
                        Duration::from_millis(u64::from(op.get(2).copied().unwrap_or(0)) * 4)
                            .min(MAX_PAUSES.saturating_sub(paused));
                    paused += pause;
                    context.sleep(pause).await
                }
            }
        }
        context.sleep(Duration::from_secs(2)).await;
    });
    let delivered = delivered.lock().unwrap();
    let queued = queued.lock().unwrap();
    let mut last: BTreeMap<(usize, usize), u32> = BTreeMap::new();
    for &(receiver, sender, sequence) in delivered.iter() {
        assert!(
            queued
                .get(&(sender, sequence))
                .is_some_and(|to| to.contains(&receiver)),
            "node {receiver} got message {sequence} of node {sender}, which was not queued for it"
        );
        if let Some(&previous) = last.get(&(receiver, sender)) {
            assert!(
                sequence > previous,
                "duplicate or reordered: {previous} then {sequence}"
            );
        }
        last.insert((receiver, sender), sequence);
    }
});
