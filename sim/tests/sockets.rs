//! The simulated sockets on their own: timing, bandwidth, windows, ends, ports and errors.

use commonware_runtime::{
    Clock as _, Listener as _, Network as _, Runner as _, Sink as _, Spawner as _, Stream as _,
    Supervisor as _, deterministic,
};
use palisade_sim::{Bandwidth, Config, Error, Link, Network};
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

const MS: Duration = Duration::from_millis(1);

fn ip(index: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, index))
}

fn config(latency: Duration) -> Config {
    Config {
        default_link: Link::new(latency, Duration::ZERO),
        ..Config::default()
    }
}

#[test]
fn dial_takes_a_round_trip_and_bytes_take_the_latency() {
    deterministic::Runner::seeded(1).start(|context| async move {
        let network = Network::new(context.child("network"), config(10 * MS));
        let (a, b) = (
            network.add_node(ip(1)).unwrap(),
            network.add_node(ip(2)).unwrap(),
        );
        let mut listener = b.bind(SocketAddr::new(ip(2), 9000)).await.unwrap();
        let start = context.current();
        let accept = context.child("accept").spawn(move |_| async move {
            let (from, sink, mut stream) = listener.accept().await.unwrap();
            let received = stream.recv(5).await.unwrap().coalesce();
            (from, received, sink)
        });
        let (mut sink, _stream) = a.dial(SocketAddr::new(ip(2), 9000)).await.unwrap();
        assert_eq!(context.current().duration_since(start).unwrap(), 20 * MS);
        sink.send(b"hello".to_vec()).await.unwrap();
        let (from, received, _sink) = accept.await.unwrap();
        // The runtime's clock moves in steps of one cycle (1 ms): allow one for the join.
        let elapsed = context.current().duration_since(start).unwrap();
        assert!(elapsed >= 30 * MS && elapsed <= 31 * MS, "{elapsed:?}");
        assert_eq!(from.ip(), ip(1));
        assert_eq!(received.as_ref(), b"hello");
    });
}

#[test]
fn bandwidth_paces_a_transfer() {
    deterministic::Runner::seeded(2).start(|context| async move {
        let network = Network::new(context.child("network"), config(MS));
        let (a, b) = (
            network.add_node(ip(1)).unwrap(),
            network.add_node(ip(2)).unwrap(),
        );
        network
            .set_bandwidth(ip(1), Bandwidth::symmetric(1_000_000))
            .unwrap();
        let mut listener = b.bind(SocketAddr::new(ip(2), 9000)).await.unwrap();
        let reader = context.child("reader").spawn(move |context| async move {
            let (_, _sink, mut stream) = listener.accept().await.unwrap();
            let start = context.current();
            stream.recv(1_000_000).await.unwrap();
            context.current().duration_since(start).unwrap()
        });
        let (mut sink, _stream) = a.dial(SocketAddr::new(ip(2), 9000)).await.unwrap();
        for _ in 0..100 {
            sink.send(vec![1u8; 10_000]).await.unwrap();
        }
        // 1 MB over a 1 MB/s uplink: one second, plus the latency.
        let took = reader.await.unwrap();
        assert!(
            took >= Duration::from_secs(1) && took <= Duration::from_secs(1) + 2 * MS,
            "{took:?}"
        );
    });
}

#[test]
fn a_reader_that_does_not_read_holds_the_writer_at_its_window() {
    deterministic::Runner::seeded(3).start(|context| async move {
        let window = 64 * 1024;
        let network = Network::new(
            context.child("network"),
            Config {
                window_bytes: window,
                ..config(MS)
            },
        );
        let (a, b) = (
            network.add_node(ip(1)).unwrap(),
            network.add_node(ip(2)).unwrap(),
        );
        let mut listener = b.bind(SocketAddr::new(ip(2), 9000)).await.unwrap();
        let (mut sink, _stream) = a.dial(SocketAddr::new(ip(2), 9000)).await.unwrap();
        let (_, _sink, _idle_stream) = listener.accept().await.unwrap();
        let writer = context.child("writer").spawn(move |_| async move {
            for _ in 0..100 {
                sink.send(vec![0u8; 4096]).await.unwrap();
            }
        });
        context.sleep(Duration::from_secs(10)).await;
        let written = network.stats().bytes_written;
        assert!(
            written >= window as u64 && written < window as u64 + 4096,
            "{written}"
        );
        writer.abort();
    });
}

#[test]
fn writer_close_delivers_what_is_in_flight_then_ends_the_stream() {
    deterministic::Runner::seeded(4).start(|context| async move {
        let network = Network::new(context.child("network"), config(5 * MS));
        let (a, b) = (
            network.add_node(ip(1)).unwrap(),
            network.add_node(ip(2)).unwrap(),
        );
        let mut listener = b.bind(SocketAddr::new(ip(2), 9000)).await.unwrap();
        let (mut sink, stream) = a.dial(SocketAddr::new(ip(2), 9000)).await.unwrap();
        let (_, _sink, mut received) = listener.accept().await.unwrap();
        sink.send(b"last words".to_vec()).await.unwrap();
        drop(sink);
        drop(stream);
        assert_eq!(
            received.recv(10).await.unwrap().coalesce().as_ref(),
            b"last words"
        );
        assert!(matches!(
            received.recv(1).await,
            Err(commonware_runtime::Error::RecvFailed)
        ));
    });
}

#[test]
fn crash_cuts_connections_and_refuses_dials_until_restart() {
    deterministic::Runner::seeded(5).start(|context| async move {
        let network = Network::new(context.child("network"), config(10 * MS));
        let (a, b) = (
            network.add_node(ip(1)).unwrap(),
            network.add_node(ip(2)).unwrap(),
        );
        let address = SocketAddr::new(ip(2), 9000);
        let mut listener = b.bind(address).await.unwrap();
        let (mut sink, mut stream) = a.dial(address).await.unwrap();
        let (_, _b_sink, _b_stream) = listener.accept().await.unwrap();
        assert_eq!(network.crash(ip(2)).unwrap(), 1);
        assert!(
            listener.accept().await.is_err(),
            "the crashed node's listener closes"
        );
        assert!(stream.recv(1).await.is_err());
        assert!(sink.send(b"x".to_vec()).await.is_err());
        let start = context.current();
        assert!(a.dial(address).await.is_err());
        assert_eq!(
            context.current().duration_since(start).unwrap(),
            20 * MS,
            "refused after a round trip"
        );
        assert!(
            b.bind(address).await.is_err(),
            "a crashed node cannot listen"
        );
        drop(listener);
        network.restart(ip(2)).unwrap();
        let mut listener = b.bind(address).await.unwrap();
        let _connection = a.dial(address).await.unwrap();
        listener.accept().await.unwrap();
        let stats = network.stats();
        assert_eq!(
            (
                stats.dials_connected,
                stats.dials_refused,
                stats.connections_reset
            ),
            (2, 1, 1)
        );
    });
}

#[test]
fn partition_cuts_across_groups_and_blocks_dials_until_healed() {
    deterministic::Runner::seeded(6).start(|context| async move {
        let network = Network::new(context.child("network"), config(MS));
        let nodes: Vec<_> = (1..=3).map(|i| network.add_node(ip(i)).unwrap()).collect();
        let mut listeners = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            listeners.push(
                node.bind(SocketAddr::new(ip(i as u8 + 1), 9000))
                    .await
                    .unwrap(),
            );
        }
        let to_2 = nodes[0].dial(SocketAddr::new(ip(2), 9000)).await.unwrap();
        let to_3 = nodes[0].dial(SocketAddr::new(ip(3), 9000)).await.unwrap();
        // Node 3 is named in no group: it is with the other unnamed nodes, alone here.
        assert_eq!(network.partition(&[vec![ip(1), ip(2)]]).unwrap(), 1);
        let (mut to_2, mut to_3) = (to_2, to_3);
        assert!(to_3.0.send(b"x".to_vec()).await.is_err());
        to_2.0.send(b"x".to_vec()).await.unwrap();
        let start = context.current();
        assert!(nodes[0].dial(SocketAddr::new(ip(3), 9000)).await.is_err());
        let waited = context.current().duration_since(start).unwrap();
        assert_eq!(waited, 2 * MS + Config::default().unreachable_dial_delay);
        network.heal();
        nodes[0].dial(SocketAddr::new(ip(3), 9000)).await.unwrap();
        assert_eq!(network.stats().dials_unreachable, 1);
    });
}

#[test]
fn bad_requests_get_typed_errors() {
    deterministic::Runner::seeded(7).start(|context| async move {
        let network = Network::new(context.child("network"), config(MS));
        let a = network.add_node(ip(1)).unwrap();
        network.add_node(ip(2)).unwrap();
        assert_eq!(
            network.add_node(ip(1)).err(),
            Some(Error::DuplicateNode(ip(1)))
        );
        assert_eq!(network.node(ip(9)).err(), Some(Error::UnknownNode(ip(9))));
        assert_eq!(network.crash(ip(9)), Err(Error::UnknownNode(ip(9))));
        assert_eq!(
            network.partition(&[vec![ip(9)]]),
            Err(Error::UnknownNode(ip(9)))
        );
        assert_eq!(
            network.partition(&[vec![ip(1)], vec![ip(2), ip(1)]]),
            Err(Error::NodeInTwoGroups(ip(1)))
        );
        assert_eq!(
            network.set_link(ip(1), ip(9), Link::default()),
            Err(Error::UnknownNode(ip(9)))
        );
        // Another node's address, and an address already bound.
        assert!(a.bind(SocketAddr::new(ip(2), 9000)).await.is_err());
        let _listener = a.bind(SocketAddr::new(ip(1), 9000)).await.unwrap();
        assert!(a.bind(SocketAddr::new(ip(1), 9000)).await.is_err());
        // Nobody listens: refused.
        assert!(a.dial(SocketAddr::new(ip(2), 9000)).await.is_err());
    });
}

#[test]
fn ephemeral_ports_are_reused_so_connections_never_run_out() {
    deterministic::Runner::seeded(8).start(|context| async move {
        let network = Network::new(context.child("network"), config(Duration::ZERO));
        let (a, b) = (
            network.add_node(ip(1)).unwrap(),
            network.add_node(ip(2)).unwrap(),
        );
        let mut listener = b.bind(SocketAddr::new(ip(2), 9000)).await.unwrap();
        // More connections than the ephemeral range has ports, one after another.
        let span =
            usize::from(palisade_sim::EPHEMERAL_PORTS.end - palisade_sim::EPHEMERAL_PORTS.start);
        for _ in 0..span + 100 {
            let dialed = a.dial(SocketAddr::new(ip(2), 9000)).await.unwrap();
            let accepted = listener.accept().await.unwrap();
            drop((dialed, accepted));
        }
        let stats = network.stats();
        assert_eq!(stats.dials_connected, span as u64 + 100);
        assert_eq!(stats.connections_open, 0);
    });
}

#[test]
fn reset_random_connection_cuts_one_open_connection() {
    deterministic::Runner::seeded(9).start(|context| async move {
        let network = Network::new(context.child("network"), config(MS));
        let (a, b) = (
            network.add_node(ip(1)).unwrap(),
            network.add_node(ip(2)).unwrap(),
        );
        assert_eq!(network.reset_random_connection(), None);
        let mut listener = b.bind(SocketAddr::new(ip(2), 9000)).await.unwrap();
        let (_sink, mut stream) = a.dial(SocketAddr::new(ip(2), 9000)).await.unwrap();
        let _accepted = listener.accept().await.unwrap();
        let (dialer, listener_address) = network.reset_random_connection().unwrap();
        assert_eq!(
            (dialer.ip(), listener_address),
            (ip(1), SocketAddr::new(ip(2), 9000))
        );
        assert!(stream.recv(1).await.is_err());
        assert_eq!(network.reset_random_connection(), None, "already cut");
    });
}

#[test]
fn a_full_listen_backlog_refuses_dials_until_the_listener_accepts() {
    deterministic::Runner::seeded(10).start(|context| async move {
        let network = Network::new(
            context.child("network"),
            Config {
                accept_backlog: 3,
                ..config(MS)
            },
        );
        let (a, b) = (
            network.add_node(ip(1)).unwrap(),
            network.add_node(ip(2)).unwrap(),
        );
        let address = SocketAddr::new(ip(2), 9000);
        let mut listener = b.bind(address).await.unwrap();
        let mut dialed = Vec::new();
        for _ in 0..3 {
            dialed.push(a.dial(address).await.unwrap());
        }
        assert!(
            a.dial(address).await.is_err(),
            "a fourth waits beyond the backlog"
        );
        assert_eq!(network.stats().dials_refused, 1);
        let _first = listener.accept().await.unwrap();
        dialed.push(a.dial(address).await.unwrap());
        assert_eq!(network.stats().dials_connected, 4);
    });
}
