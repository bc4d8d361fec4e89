//! commonware-p2p's application traits, one test per contract: what an engine written against
//! them (simplex, the resolver, broadcast) relies on.

mod common;

use common::*;
use commonware_actor::{Feedback, Unreliable};
use commonware_cryptography::Signer as _;
use commonware_p2p::{AddressableTrackedPeers, TrackedPeers};
use commonware_runtime::{Clock as _, Runner as _, deterministic};
use commonware_utils::ordered::{Map, Set};
use futures::StreamExt as _;
use palisade_p2p::{
    Address, AddressableManager, Blocker as _, CheckedSender as _, Ingress, LimitedSender as _,
    Manager, Provider as _, Receiver as _, Recipients, Sender as _, channels::Error,
};
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

fn keys(set: &[(Pk, SocketAddr)]) -> Set<Pk> {
    Set::from_iter_dedup(set.iter().map(|(peer, _)| peer.clone()))
}

#[test]
fn check_refused_for_every_recipient_returns_when_all_are_free_again() {
    deterministic::Runner::seeded(1).start(|context| async move {
        let set = peer_set(0..3);
        let mut node = start_node(&context, 0, &set, per_second(5), 100).await;
        let _one = start_node(&context, 1, &set, open_quota(), 100).await;
        let _two = start_node(&context, 2, &set, open_quota(), 100).await;
        wait_for(&context, &[0, 1, 2], 2).await;
        let (one, two) = (key(1).public_key(), key(2).public_key());
        // The burst of 5 towards peer 1 now, towards peer 2 100 ms later.
        for _ in 0..5 {
            assert_eq!(
                node.sender
                    .check(Recipients::One(one.clone()))
                    .unwrap()
                    .recipients(),
                vec![one.clone()]
            );
        }
        let start = context.current();
        let refused = node
            .sender
            .check(Recipients::One(one.clone()))
            .err()
            .unwrap();
        assert_eq!(
            refused.duration_since(start).unwrap(),
            Duration::from_millis(200)
        );
        context.sleep(Duration::from_millis(100)).await;
        for _ in 0..5 {
            assert!(node.sender.check(Recipients::One(two.clone())).is_ok());
        }
        // Both are limited: the answer is when both are free, the later of the two.
        let both = node
            .sender
            .check(Recipients::Some(vec![one.clone(), two.clone()]))
            .err()
            .unwrap();
        assert_eq!(
            both.duration_since(start).unwrap(),
            Duration::from_millis(300)
        );
        // At the first one's time, only it passes.
        context.sleep_until(refused).await;
        let checked = node.sender.check(Recipients::All).unwrap();
        assert_eq!(checked.recipients(), vec![one.clone()]);
        assert_eq!(
            checked.send(b"x".to_vec(), false),
            Unreliable::new(Feedback::Ok)
        );
        assert!(
            metric(
                &context,
                "messages",
                0,
                &["fate=\"rate_limited\"", "direction=\"outbound\""]
            ) >= 3
        );
    });
}

#[test]
fn check_with_no_connected_recipient_is_not_a_refusal() {
    deterministic::Runner::seeded(2).start(|context| async move {
        let set = peer_set(0..2);
        let mut node = start_node(&context, 0, &set, per_second(1), 100).await;
        // Peer 1 never starts: nobody is connected, and no quota is taken.
        for _ in 0..3 {
            let checked = node
                .sender
                .check(Recipients::One(key(1).public_key()))
                .unwrap();
            assert!(checked.recipients().is_empty());
            assert_eq!(
                checked.send(b"x".to_vec(), false),
                Unreliable::new(Feedback::Ok)
            );
        }
        assert!(
            node.sender
                .send(Recipients::All, b"x".to_vec(), false)
                .is_empty()
        );
    });
}

#[test]
fn full_queues_reject_and_a_closed_network_says_closed() {
    deterministic::Runner::seeded(3).start(|context| async move {
        let set = peer_set(0..2);
        let mut node = start_node_with(
            &context,
            0,
            &set,
            Setup {
                configure: |config| config.max_queued_messages = 1,
                ..Setup::new(0)
            },
        )
        .await;
        let _peer = start_node(&context, 1, &set, open_quota(), 100).await;
        wait_for(&context, &[0, 1], 1).await;
        // Without yielding, the writer cannot drain: the lane's room (1, plus the sender's
        // own slot) fills, and then a send is rejected and counted.
        let mut outcomes = Vec::new();
        for _ in 0..4 {
            let checked = node.sender.check(Recipients::All).unwrap();
            outcomes.push(checked.send(vec![0u8; 16], false));
        }
        assert_eq!(outcomes[0], Unreliable::new(Feedback::Ok));
        assert_eq!(outcomes[3], Unreliable::Rejected);
        assert!(metric(&context, "messages", 0, &["fate=\"dropped_full\""]) >= 1);

        node.handle.abort();
        context.sleep(Duration::from_millis(10)).await;
        let checked = node.sender.check(Recipients::All).unwrap();
        assert_eq!(
            checked.send(b"late".to_vec(), false),
            Unreliable::new(Feedback::Closed)
        );
        assert!(
            node.sender
                .send(Recipients::All, b"late".to_vec(), false)
                .is_empty()
        );
        assert_eq!(
            AddressableManager::track(&mut node.oracle, 1, addressed(&set)),
            Feedback::Closed
        );
        assert_eq!(node.oracle.block(key(1).public_key()), Feedback::Closed);
        // The receiver drains what arrived, then reports the network closed.
        while node.receiver.recv().await.is_ok() {}
        assert_eq!(
            node.receiver.recv().await.unwrap_err(),
            Error::NetworkClosed
        );
    });
}

#[test]
fn receiver_capacity_is_the_backlog() {
    deterministic::Runner::seeded(4).start(|context| async move {
        let set = peer_set(0..1);
        let node = start_node(&context, 0, &set, open_quota(), 321).await;
        assert_eq!(node.receiver.capacity().get(), 321);
    });
}

#[test]
fn blocked_sees_a_block_at_once_and_its_expiry() {
    deterministic::Runner::seeded(5).start(|context| async move {
        let mut nodes = start_mesh(&context, 2).await;
        wait_for(&context, &[0, 1], 1).await;
        let mut blocked = nodes[0].oracle.blocked();
        assert_eq!(
            blocked.next().await.unwrap(),
            Set::default(),
            "the current set first"
        );
        let peer = key(1).public_key();
        let started = context.current();
        assert_eq!(nodes[0].oracle.block(peer.clone()), Feedback::Ok);
        let now_blocked = blocked
            .try_recv()
            .expect("published by the time block returns");
        assert_eq!(now_blocked, Set::from_iter_dedup([peer.clone()]));
        assert_eq!(connected(&context, 0), 0, "disconnected at once");
        // `Config::local` blocks for 60 s; the expiry is published within a dial interval.
        let expired = blocked.next().await.unwrap();
        assert_eq!(expired, Set::default());
        let waited = context.current().duration_since(started).unwrap();
        assert!(
            waited >= Duration::from_secs(60) && waited <= Duration::from_millis(60_100),
            "{waited:?}"
        );
        wait_for(&context, &[0, 1], 1).await;
        // A second subscriber starts from the current (empty) set too.
        assert_eq!(
            nodes[0].oracle.blocked().next().await.unwrap(),
            Set::default()
        );
    });
}

#[test]
fn subscribe_starts_with_the_newest_set_and_sees_every_new_one_in_order() {
    deterministic::Runner::seeded(6).start(|context| async move {
        let set = peer_set(0..5);
        let mut node = start_node(&context, 0, &set, open_quota(), 100).await;
        let mut updates = node.oracle.subscribe().await;
        let first = updates.recv().await.unwrap();
        assert_eq!(first.index, 0);
        assert_eq!(first.latest.primary.len(), 5, "our own key stays listed");
        // Three more sets, each with one peer fewer; `Config::local` tracks three sets.
        for index in 1..=3u64 {
            let peers = peer_set(0..5 - index as usize);
            AddressableManager::track(&mut node.oracle, index, addressed(&peers));
        }
        for index in 1..=3u64 {
            let update = updates.recv().await.unwrap();
            assert_eq!(update.index, index);
            assert_eq!(update.latest.primary.len(), 5 - index as usize);
            // The union of the three newest sets: sets 1..=3 when index is 3.
            let expected = if index < 3 { 5 } else { 4 };
            assert_eq!(update.all.primary.len(), expected, "index {index}");
        }
        assert!(updates.try_recv().is_err(), "nothing else");
        assert_eq!(node.oracle.peer_set(3).await.unwrap().primary.len(), 2);
        assert!(
            node.oracle.peer_set(0).await.is_none(),
            "fell out of the window"
        );
        // A stale index publishes nothing.
        AddressableManager::track(&mut node.oracle, 2, addressed(&set));
        assert!(updates.try_recv().is_err());
    });
}

#[test]
fn overwrite_sends_the_next_dial_to_the_new_address() {
    deterministic::Runner::seeded(7).start(|context| async move {
        // Node 1 listens at 3101, but node 0 is told 3001 first (nobody listens there).
        let moved = SocketAddr::from(([127, 0, 0, 1], 3101));
        let wrong = peer_set(0..2);
        let right = vec![wrong[0].clone(), (key(1).public_key(), moved)];
        let mut dialer = start_node(&context, 0, &wrong, open_quota(), 100).await;
        let mut listener = start_node_with(
            &context,
            1,
            &[],
            Setup {
                address: moved,
                ..Setup::new(1)
            },
        )
        .await;
        // Node 1 knows node 0 by key alone, so it never dials: only node 0's dials count.
        Manager::track(&mut listener.oracle, 1, TrackedPeers::primary(keys(&right)));
        context.sleep(Duration::from_secs(2)).await;
        assert_eq!(connected(&context, 0), 0);
        assert!(metric(&context, "dials", 0, &["outcome=\"connect_failed\""]) > 0);
        let overwrite = Map::from_iter_dedup([(key(1).public_key(), Address::Symmetric(moved))]);
        assert_eq!(dialer.oracle.overwrite(overwrite), Feedback::Ok);
        wait_for(&context, &[0, 1], 1).await;
        assert_eq!(
            dialer.oracle.peer_set(0).await.unwrap().primary.len(),
            2,
            "no new set"
        );
    });
}

#[test]
fn every_address_of_a_name_is_tried_in_one_dial() {
    // Seeds decide which address comes first; over several, both orders occur, and the
    // first dial connects either way.
    for seed in 0..6 {
        deterministic::Runner::seeded(seed).start(|context| async move {
            let host = commonware_utils::hostname!("two-addresses.palisade.test");
            // One address where nobody listens, one where node 1 does.
            context.resolver_register(
                host.as_str(),
                Some(vec![
                    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)),
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                ]),
            );
            let named = vec![
                (key(0).public_key(), Address::Symmetric(address(0))),
                (
                    key(1).public_key(),
                    Address::Asymmetric {
                        ingress: Ingress::Dns {
                            host,
                            port: address(1).port(),
                        },
                        egress: address(1),
                    },
                ),
            ];
            let mut dialer = start_node(&context, 0, &[], open_quota(), 100).await;
            AddressableManager::track(&mut dialer.oracle, 1, Map::from_iter_dedup(named));
            let mut listener = start_node(&context, 1, &[], open_quota(), 100).await;
            Manager::track(
                &mut listener.oracle,
                1,
                TrackedPeers::primary(keys(&peer_set(0..2))),
            );
            wait_for(&context, &[0, 1], 1).await;
            assert_eq!(
                metric(&context, "dials", 0, &["outcome=\"connect_failed\""]),
                0
            );
            assert_eq!(metric(&context, "dials", 0, &["outcome=\"connected\""]), 1);
        });
    }
}

#[test]
fn a_dns_ingress_is_resolved_at_dial_time_and_a_name_that_fails_is_counted() {
    deterministic::Runner::seeded(8).start(|context| async move {
        let host = commonware_utils::hostname!("validator-1.palisade.test");
        context.resolver_register(host.as_str(), Some(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]));
        let dns = |host| Address::Asymmetric {
            ingress: Ingress::Dns {
                host,
                port: address(1).port(),
            },
            egress: address(1),
        };
        let named: Vec<_> = vec![
            (key(0).public_key(), Address::Symmetric(address(0))),
            (key(1).public_key(), dns(host.clone())),
        ];
        let mut dialer = start_node(&context, 0, &[], open_quota(), 100).await;
        let unknown = commonware_utils::hostname!("nowhere.palisade.test");
        let unresolvable = vec![named[0].clone(), (key(1).public_key(), dns(unknown))];
        AddressableManager::track(&mut dialer.oracle, 1, Map::from_iter_dedup(unresolvable));
        let mut listener = start_node(&context, 1, &[], open_quota(), 100).await;
        Manager::track(
            &mut listener.oracle,
            1,
            TrackedPeers::primary(keys(&peer_set(0..2))),
        );
        context.sleep(Duration::from_secs(1)).await;
        assert_eq!(connected(&context, 0), 0);
        assert!(metric(&context, "dials", 0, &["outcome=\"resolve_failed\""]) > 0);
        AddressableManager::track(&mut dialer.oracle, 2, Map::from_iter_dedup(named));
        wait_for(&context, &[0, 1], 1).await;
    });
}

#[test]
fn secondary_peers_connect_and_receive_but_are_not_primary_or_dialed() {
    deterministic::Runner::seeded(9).start(|context| async move {
        let primary = peer_set(0..2);
        let with_follower =
            AddressableTrackedPeers::new(addressed(&primary), addressed(&peer_set(2..3)));
        let mut hub = start_node(&context, 0, &[], open_quota(), 100).await;
        AddressableManager::track(&mut hub.oracle, 1, with_follower);
        let _member = start_node(&context, 1, &primary, open_quota(), 100).await;
        // The follower lists the hub as secondary too: neither side dials.
        let follower_view =
            AddressableTrackedPeers::new(addressed(&peer_set(2..3)), addressed(&peer_set(0..1)));
        let mut follower = start_node(&context, 2, &[], open_quota(), 100).await;
        AddressableManager::track(&mut follower.oracle, 1, follower_view);
        context.sleep(Duration::from_secs(5)).await;
        assert_eq!(connected(&context, 0), 1, "only the primary member");
        assert_eq!(connected(&context, 2), 0, "a secondary is never dialed");
        let set = hub.oracle.peer_set(1).await.unwrap();
        assert_eq!(set.primary.len(), 2);
        assert!(set.primary.position(&key(2).public_key()).is_none());
        assert_eq!(set.secondary.len(), 1);

        // Once the follower dials the hub (as its primary), the hub accepts it and includes
        // it in broadcasts, though it is still not primary.
        AddressableManager::track(&mut follower.oracle, 2, addressed(&peer_set(0..1)));
        wait_for(&context, &[0], 2).await;
        let recipients = hub.sender.send(Recipients::All, b"to all".to_vec(), false);
        assert_eq!(recipients.len(), 2);
        let (from, message) = follower.receiver.recv().await.unwrap();
        assert_eq!(
            (from, message.as_ref()),
            (key(0).public_key(), &b"to all"[..])
        );
    });
}

#[test]
fn peers_tracked_by_key_alone_may_connect_to_us() {
    deterministic::Runner::seeded(10).start(|context| async move {
        let mut listener = start_node(&context, 0, &[], open_quota(), 100).await;
        let keys: Set<_> = Set::from_iter_dedup([key(0).public_key(), key(1).public_key()]);
        assert_eq!(
            Manager::track(&mut listener.oracle, 1, TrackedPeers::primary(keys)),
            Feedback::Ok
        );
        let _dialer = start_node(&context, 1, &peer_set(0..2), open_quota(), 100).await;
        wait_for(&context, &[0, 1], 1).await;
        assert_eq!(listener.oracle.peer_set(1).await.unwrap().primary.len(), 2);
    });
}
