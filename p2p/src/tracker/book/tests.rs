use super::*;
use commonware_p2p::Ingress;
use std::{
    net::SocketAddr,
    time::{Duration, UNIX_EPOCH},
};

fn addr(port: u16) -> Address {
    Address::Symmetric(SocketAddr::from(([127, 0, 0, 1], port)))
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn listed(peers: &[(u8, u16)]) -> Vec<Entry<u8>> {
    peers
        .iter()
        .map(|(peer, port)| (*peer, Some(addr(*port))))
        .collect()
}

fn none() -> Vec<Entry<u8>> {
    Vec::new()
}

#[test]
fn union_of_the_latest_sets_rotates_out_old_peers() {
    let mut book = Book::new(0u8, 2);
    let first = book.track(1, listed(&[(1, 1), (2, 2)]), none()).unwrap();
    assert_eq!(first.added, vec![1, 2]);
    let second = book.track(2, listed(&[(2, 2), (3, 3)]), none()).unwrap();
    assert_eq!(second.added, vec![3]);
    assert!(second.removed.is_empty());
    // The third set pushes out the first: peer 1 is in no tracked set any more.
    let third = book.track(3, listed(&[(3, 3), (4, 4)]), none()).unwrap();
    assert_eq!(third.added, vec![4]);
    assert_eq!(third.removed, vec![1]);
    assert_eq!(book.union().into_iter().collect::<Vec<_>>(), vec![2, 3, 4]);
    assert_eq!(book.address(&1), None, "a peer that left is forgotten");
}

#[test]
fn stale_or_repeated_index_is_ignored() {
    let mut book = Book::new(0u8, 3);
    book.track(5, listed(&[(1, 1)]), none()).unwrap();
    assert_eq!(
        book.track(5, listed(&[(2, 2)]), none()),
        Err(StaleIndex {
            index: 5,
            latest: 5
        })
    );
    assert_eq!(
        book.track(4, listed(&[(2, 2)]), none()),
        Err(StaleIndex {
            index: 4,
            latest: 5
        })
    );
    assert!(!book.is_tracked(&2));
    assert!(book.track(6, listed(&[(2, 2)]), none()).is_ok());
}

#[test]
fn newer_set_moves_a_peer_to_its_new_address() {
    let mut book = Book::new(0u8, 3);
    book.track(1, listed(&[(1, 1)]), none()).unwrap();
    let changes = book.track(2, listed(&[(1, 11)]), none()).unwrap();
    assert_eq!(changes.moved, vec![1]);
    assert_eq!(book.address(&1), Some(&addr(11)));
    // Repeating the same address is not a move.
    assert!(
        book.track(3, listed(&[(1, 11)]), none())
            .unwrap()
            .moved
            .is_empty()
    );
    // Nor is a set that lists the peer without an address: the known one stays.
    assert!(
        book.track(4, vec![(1, None)], none())
            .unwrap()
            .moved
            .is_empty()
    );
    assert_eq!(book.address(&1), Some(&addr(11)));
}

#[test]
fn overwrite_moves_only_tracked_peers_whose_address_changed() {
    let mut book = Book::new(0u8, 3);
    book.track(1, listed(&[(1, 1), (2, 2)]), none()).unwrap();
    let moved = book.overwrite([(1, addr(1)), (2, addr(22)), (9, addr(9)), (0, addr(5))]);
    assert_eq!(moved, vec![2]);
    assert_eq!(book.address(&2), Some(&addr(22)));
    assert!(!book.is_tracked(&9), "overwrite registers nobody");
    assert_eq!(book.address(&9), None);
    assert_eq!(book.latest_index(), Some(1), "no new set");
}

#[test]
fn own_key_is_kept_in_the_set_but_never_allowed_or_dialed() {
    let mut book = Book::new(7u8, 1);
    let changes = book.track(1, listed(&[(7, 7), (1, 1)]), none()).unwrap();
    assert_eq!(changes.added, vec![1]);
    assert!(!book.is_allowed(&7, at(0)));
    assert!(book.is_allowed(&1, at(0)));
    assert!(book.peer_set(1).unwrap().primary.contains(&7));
    assert_eq!(
        book.dialable(at(0)).into_iter().collect::<Vec<_>>(),
        vec![1]
    );
}

#[test]
fn secondary_peers_are_allowed_but_not_dialed_and_primary_wins() {
    let mut book = Book::new(0u8, 2);
    book.track(1, listed(&[(1, 1)]), listed(&[(1, 1), (2, 2)]))
        .unwrap();
    let set = book.peer_set(1).unwrap();
    assert_eq!(set.primary.iter().copied().collect::<Vec<_>>(), vec![1]);
    assert_eq!(set.secondary.iter().copied().collect::<Vec<_>>(), vec![2]);
    assert!(book.is_allowed(&2, at(0)));
    assert!(!book.is_primary(&2));
    assert_eq!(
        book.dialable(at(0)).into_iter().collect::<Vec<_>>(),
        vec![1]
    );
    // Primary in a newer set: primary across all, and dialed.
    book.track(2, listed(&[(2, 2)]), none()).unwrap();
    let all = book.all();
    assert_eq!(all.primary.iter().copied().collect::<Vec<_>>(), vec![1, 2]);
    assert!(all.secondary.is_empty());
    assert_eq!(book.dialable(at(0)).len(), 2);
}

#[test]
fn a_peer_without_an_address_is_allowed_and_dialed_once_one_is_known() {
    let mut book = Book::new(0u8, 2);
    book.track(1, vec![(1, None)], none()).unwrap();
    assert!(book.is_allowed(&1, at(0)));
    assert!(book.dialable(at(0)).is_empty());
    let dns = Address::Asymmetric {
        ingress: Ingress::Dns {
            host: commonware_utils::hostname!("peer.example"),
            port: 4000,
        },
        egress: SocketAddr::from(([10, 0, 0, 1], 0)),
    };
    assert_eq!(book.overwrite([(1, dns.clone())]), vec![1]);
    assert_eq!(book.address(&1), Some(&dns));
    assert_eq!(book.dialable(at(0)).len(), 1);
}

#[test]
fn blocked_peer_is_refused_until_the_block_expires() {
    let mut book = Book::new(0u8, 1);
    book.track(1, listed(&[(1, 1), (2, 2)]), none()).unwrap();
    book.block(1, at(100), at(0));
    assert!(!book.is_allowed(&1, at(99)));
    assert_eq!(book.blocked(at(99)), vec![1]);
    assert_eq!(
        book.dialable(at(99)).into_iter().collect::<Vec<_>>(),
        vec![2]
    );
    assert!(book.is_allowed(&1, at(100)));
    assert!(book.blocked(at(100)).is_empty());
    // A shorter block does not shorten a longer one.
    book.block(1, at(200), at(100));
    book.block(1, at(150), at(100));
    assert!(book.is_blocked(&1, at(199)));
    // Untracked peers are never allowed, blocked or not.
    assert!(!book.is_allowed(&3, at(0)));
}

#[test]
fn expired_blocks_are_forgotten() {
    let mut book = Book::new(0u8, 1);
    for peer in 1..=100u8 {
        book.block(peer, at(10), at(0));
    }
    book.block(200, at(30), at(20));
    assert_eq!(book.blocked_until.len(), 1);
    assert!(!book.expire_blocks(at(29)));
    assert!(book.expire_blocks(at(30)));
    assert!(book.blocked_until.is_empty());
}
