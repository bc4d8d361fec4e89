//! How a network starts and stops: a listen address that cannot be bound ends the network's
//! task with a typed error (and dials nothing); stopping the runtime closes every connection
//! with the stream's authenticated close before the network's task ends.

mod common;

use common::*;
use commonware_runtime::{
    Clock as _, Network as _, Runner as _, Spawner as _, Supervisor as _, deterministic,
};
use std::time::Duration;

#[test]
fn a_taken_listen_address_ends_the_network_with_a_bind_error() {
    deterministic::Runner::seeded(1).start(|context| async move {
        let set = peer_set(0..2);
        let _holder = context.bind(address(0)).await.unwrap();
        let other = start_node(&context, 1, &set, open_quota(), 16).await;
        let node = start_node(&context, 0, &set, open_quota(), 16).await;
        match node.handle.await {
            Ok(Err(palisade_p2p::Error::Bind { address: bound, .. })) => {
                assert_eq!(bound, address(0))
            }
            other => panic!("expected a bind error, got {other:?}"),
        }
        assert_eq!(
            metric(&context, "handshakes", 0, &["reason=\"bind_failed\""]),
            1
        );
        // It dialed nothing: the other node never saw a connection from it.
        context.sleep(Duration::from_secs(2)).await;
        assert_eq!(connected(&context, 1), 0);
        assert_eq!(metric(&context, "dials", 0, &[]), 0);
        drop(other);
    });
}

#[test]
fn stopping_the_runtime_closes_every_connection_cleanly_and_ends_the_network() {
    deterministic::Runner::seeded(2).start(|context| async move {
        let nodes = start_mesh(&context, 3).await;
        wait_for(&context, &[0, 1, 2], 2).await;
        context
            .child("stopper")
            .stop(0, Some(Duration::from_secs(10)))
            .await
            .unwrap();
        for (index, node) in nodes.into_iter().enumerate() {
            assert!(matches!(node.handle.await, Ok(Ok(()))), "node {index}");
            assert_eq!(connected(&context, index), 0, "node {index}");
            // Each of its two connections ended by this node's stop or the peer's close;
            // none was cut.
            let stopped = metric(
                &context,
                "connections_closed",
                index,
                &["reason=\"stopped\""],
            );
            let closed = metric(
                &context,
                "connections_closed",
                index,
                &["reason=\"closed\""],
            );
            assert_eq!(stopped + closed, 2, "node {index}");
            assert_eq!(
                metric(&context, "connections_closed", index, &["reason=\"io\""]),
                0
            );
        }
    });
}
