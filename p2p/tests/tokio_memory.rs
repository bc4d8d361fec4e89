//! Memory bounded in bytes, over real TCP on loopback (tokio): a member sends the largest
//! messages as fast as its queues take them to a channel whose application never reads. The
//! process's resident memory grows by the stated byte bounds at most (a channel backlog of
//! 64 MiB, 16 MiB queued towards the peer, a few messages in flight), not by what was
//! offered; the excess is dropped and counted; another channel keeps flowing.

use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
use commonware_runtime::{Clock as _, Metrics as _, Quota, Runner as _, Supervisor as _, tokio};
use commonware_utils::ordered::Map;
use palisade_p2p::{
    Address, AddressableManager as _, Config, Network, Receiver as _, Recipients, Sender as _,
};
use std::{net::SocketAddr, num::NonZeroU32, time::Duration};

fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn resident_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .and_then(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

fn sum(context: &tokio::Context, prefix: &str, labels: &[&str]) -> u64 {
    context
        .encode()
        .lines()
        .filter(|line| line.starts_with(prefix) && labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[test]
fn a_member_sending_the_largest_messages_to_a_reader_that_never_reads_costs_only_the_bounds() {
    let storage = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("palisade-p2p-memory");
    let runner = tokio::Runner::new(
        tokio::Config::new()
            .with_worker_threads(2)
            .with_storage_directory(storage),
    );
    runner.start(|context| async move {
        let (keys, addresses) = (
            [PrivateKey::from_seed(1), PrivateKey::from_seed(2)],
            [free_address(), free_address()],
        );
        let set: Map<_, Address> = Map::from_iter_dedup(
            (0..2).map(|i| (keys[i].public_key(), Address::Symmetric(addresses[i]))),
        );
        let quota = Quota::per_second(NonZeroU32::new(1000).unwrap());
        let mut nodes = Vec::new();
        for i in 0..2 {
            let config = Config::local(keys[i].clone(), b"memory-over-tcp", addresses[i]);
            let (mut network, mut oracle) = Network::new(context.child(["a", "b"][i]), config);
            // Room for 1,000 messages of 4 MiB by count: only the byte bound holds it.
            let bulk = network.register(0, quota, 1000);
            let other = network.register(1, quota, 16);
            oracle.track(0, set.clone());
            let handle = network.start();
            nodes.push((bulk, other, handle));
        }
        let victim = keys[1].public_key();
        while nodes[0].0.0.send(Recipients::One(victim.clone()), vec![0], false).is_empty() {
            context.sleep(Duration::from_millis(20)).await;
        }
        context.sleep(Duration::from_millis(500)).await;
        let before = resident_mib();
        let payload = nodes[0].0.0.max_payload();
        // 200 of the largest messages, 800 MiB offered, each as soon as a queue takes it.
        let mut offered = 0usize;
        for _ in 0..200 {
            let message = vec![7u8; payload];
            offered += message.len();
            nodes[0].0.0.send(Recipients::One(victim.clone()), message, false);
            context.sleep(Duration::from_millis(5)).await;
        }
        context.sleep(Duration::from_secs(2)).await;
        let after = resident_mib();
        // The other channel still flows.
        nodes[0]
            .1
            .0
            .send(Recipients::One(victim.clone()), b"still here".to_vec(), false);
        let (_, message) = nodes[1].1.1.recv().await.unwrap();
        assert_eq!(message.as_ref(), b"still here");
        let held = nodes[1].0.1.backlog_bytes();
        let dropped = sum(&context, "b_messages", &["direction=\"inbound\"", "fate=\"dropped_full\""])
            + sum(&context, "a_messages", &["direction=\"outbound\"", "fate=\"dropped_full\""]);
        eprintln!(
            "{} MiB offered in the largest messages to a reader that never reads: the backlog holds {} MiB, {dropped} dropped and counted, resident memory {before} -> {after} MiB",
            offered >> 20,
            held >> 20
        );
        assert!(held <= 64 << 20, "{held} bytes in the backlog");
        assert!(dropped > 0);
        // The backlog's 64 MiB, the queue's 16 MiB, a message in each reader and writer and
        // the stream buffers: well under 256 MiB, where 800 MiB were offered.
        assert!(after.saturating_sub(before) < 256, "{before} -> {after} MiB");
    });
}
