//! The event log: the same seed writes the same bytes, its totals equal the report's, and
//! its link records follow the faults (a partition cuts the links across it, a crash takes
//! a node's links down, a restart brings them back).

use palisade_sim::{
    Action, Options, Report, Scenario,
    record::{self, End, LinkCounters, LinkState, Record},
    run,
};
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

/// The standard faults (a partition, a crash and restart of node 3, resets) on six members
/// and one outsider over 20 s.
fn scenario() -> Scenario {
    Scenario::standard(6, Duration::from_secs(20))
}

/// Runs `scenario` on `seed`; returns the report and the log's bytes.
fn recorded(scenario: &Scenario, seed: u64) -> (Report, Vec<u8>) {
    let bytes = Arc::new(Mutex::new(Vec::new()));
    let sink = bytes.clone();
    let options = Options {
        record: Some(Box::new(move |record: &Record| {
            let mut bytes = sink.lock().unwrap();
            serde_json::to_writer(&mut *bytes, record).unwrap();
            bytes.push(b'\n');
        })),
        ..Options::seed(seed)
    };
    let report = run(scenario, options).unwrap().report;
    let bytes = std::mem::take(&mut *bytes.lock().unwrap());
    (report, bytes)
}

fn add(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (key, value) in from {
        *into.entry(key.clone()).or_default() += value;
    }
}

#[test]
fn the_same_seed_writes_the_same_bytes() {
    let scenario = scenario();
    let (first_report, first) = recorded(&scenario, 5);
    let (_, second) = recorded(&scenario, 5);
    assert!(first.len() > 10_000, "{} bytes", first.len());
    assert!(first == second, "the same seed wrote another log");
    let (other_report, other) = recorded(&scenario, 6);
    assert_ne!(first_report.digest, other_report.digest);
    assert!(first != other, "another seed wrote the same log");
}

#[test]
fn the_log_adds_up_to_the_report() {
    let (report, bytes) = recorded(&scenario(), 7);
    let records = record::read(&bytes[..]).unwrap();
    let Some(Record::Start(start)) = records.first() else {
        panic!("no start");
    };
    assert_eq!((start.seed, start.nodes.len()), (7, 7));
    assert!(start.nodes[..6].iter().all(|node| node.member));
    assert!(!start.nodes[6].member);
    let Some(Record::End(end)) = records.last() else {
        panic!("no end");
    };
    assert!(
        end.at_seconds >= 20.0 && end.at_seconds < 20.1,
        "{}",
        end.at_seconds
    );
    assert_eq!(*end, End::of(&report, end.at_seconds));

    let samples: Vec<_> = records
        .iter()
        .filter_map(|record| match record {
            Record::Sample(sample) => Some(sample),
            _ => None,
        })
        .collect();
    // One a second from 0 to 20 s, the last at the end.
    assert_eq!(samples.len(), 21);
    let last = samples.last().unwrap();
    assert_eq!(last.at_seconds, end.at_seconds);
    let (mut delivered, mut handshakes, mut closed) = (0, BTreeMap::new(), BTreeMap::new());
    for node in &last.nodes {
        delivered += node.delivered;
        add(&mut handshakes, &node.handshakes);
        add(&mut closed, &node.connections_closed);
    }
    assert!(report.messages.delivered > 1000);
    assert_eq!(delivered, report.messages.delivered);
    assert_eq!(handshakes, report.handshakes);
    assert_eq!(closed, report.connections_closed);
    let pairs = report.connected_pairs.last().unwrap();
    assert_eq!(
        (last.connected_pairs, last.possible_pairs),
        (pairs.connected, pairs.possible)
    );

    // The newest counters of each link add up to its node's deliveries.
    let mut links: BTreeMap<(usize, usize), &LinkCounters> = BTreeMap::new();
    for sample in &samples {
        for link in &sample.links {
            links.insert((link.from, link.to), link);
        }
    }
    for node in last.nodes.iter().filter(|node| node.node < 6) {
        let from_links: u64 = links
            .range((node.node, 0)..=(node.node, usize::MAX))
            .map(|(_, link)| link.delivered)
            .sum();
        assert_eq!(from_links, node.delivered, "node {}", node.node);
    }
    // Every member sent to every other member, and measured its round trip.
    for from in 0..6 {
        for to in (0..6).filter(|&to| to != from) {
            let link = links[&(from, to)];
            assert!(link.messages_sent > 0 && link.bytes_sent > 0, "{link:?}");
            assert!(link.rtt_ms.is_some_and(|rtt| rtt >= 100.0), "{link:?}");
        }
    }
}

#[test]
fn link_records_follow_the_faults() {
    let scenario = scenario();
    let at = |kind: fn(&Action) -> bool| {
        scenario
            .faults
            .iter()
            .find(|fault| kind(&fault.action))
            .unwrap()
            .at
            .as_secs_f64()
    };
    let partition = at(|action| matches!(action, Action::Partition { .. }));
    let heal = at(|action| matches!(action, Action::Heal));
    let crash = at(|action| matches!(action, Action::Crash { node: 3 }));
    let restart = at(|action| matches!(action, Action::Restart { node: 3 }));
    let (_, bytes) = recorded(&scenario, 8);
    let records = record::read(&bytes[..]).unwrap();
    let faults = records
        .iter()
        .filter(|record| matches!(record, Record::Fault(_)))
        .count();
    assert_eq!(faults, scenario.faults.len());

    let links: Vec<_> = records
        .iter()
        .filter_map(|record| match record {
            Record::Link(change) => Some(change),
            _ => None,
        })
        .collect();
    // Across the partition (members 0-2 | 3-5; the outsider, in no group, is cut from all).
    let partitioned: Vec<_> = links
        .iter()
        .filter(|change| change.state == LinkState::Partitioned && change.from < 6)
        .collect();
    assert!(!partitioned.is_empty());
    for change in &partitioned {
        assert!((change.from < 3) != (change.to < 3), "{change:?}");
        assert!(
            change.at_seconds >= partition && change.at_seconds <= heal + 0.1,
            "{change:?}"
        );
    }
    let cut = links
        .iter()
        .find(|change| change.state == LinkState::Partitioned && change.from == 0)
        .unwrap();
    assert!(
        cut.closed_reason.is_some(),
        "a cut connection has a reason: {cut:?}"
    );

    // The crash: node 3's own links go down at once; the others lose their connection to it.
    let down: Vec<_> = links
        .iter()
        .filter(|change| change.state == LinkState::Down)
        .collect();
    assert_eq!(down.len(), 5, "node 3 tracks five members: {down:?}");
    assert!(
        down.iter()
            .all(|change| change.from == 3 && change.at_seconds == crash)
    );
    for from in [0, 1, 2, 4, 5] {
        let lost = links
            .iter()
            .find(|change| {
                change.from == from
                    && change.to == 3
                    && change.at_seconds >= crash
                    && change.state != LinkState::Connected
            })
            .unwrap_or_else(|| panic!("node {from} never lost node 3"));
        assert!(lost.at_seconds < restart, "{lost:?}");
        // And it is connected again after the restart.
        assert!(
            links.iter().any(|change| change.from == from
                && change.to == 3
                && change.at_seconds >= restart
                && change.state == LinkState::Connected),
            "node {from} never reconnected to node 3"
        );
    }
    // Node 3's samples: down between crash and restart, incarnation 1 after.
    for record in &records {
        if let Record::Sample(sample) = record {
            let node = &sample.nodes[3];
            let down = sample.at_seconds >= crash && sample.at_seconds < restart;
            assert_eq!(node.up, !down, "at {}", sample.at_seconds);
            assert_eq!(
                node.incarnation,
                u32::from(sample.at_seconds >= restart),
                "at {}",
                sample.at_seconds
            );
        }
    }
}

#[test]
fn a_consensus_run_records_each_members_finalized_view() {
    let scenario = Scenario::consensus(4, Duration::from_secs(12));
    let (report, bytes) = recorded(&scenario, 9);
    let records = record::read(&bytes[..]).unwrap();
    let summary = report.consensus.clone().expect("a consensus run");
    assert!(summary.finalized_views > 0);
    let Some(Record::End(end)) = records.last() else {
        panic!("no end");
    };
    assert_eq!(end.consensus.as_ref(), Some(&summary));
    let last = records
        .iter()
        .rev()
        .find_map(|record| match record {
            Record::Sample(sample) => Some(sample),
            _ => None,
        })
        .unwrap();
    let progress = last.consensus.expect("samples say how far consensus came");
    assert_eq!(progress.finalized_views, summary.finalized_views);
    assert_eq!(progress.highest_view, summary.highest_view);
    assert_eq!(progress.latency_p50_ms, summary.latency_p50_ms);
    let lowest = last.nodes[..4]
        .iter()
        .map(|node| node.finalized_view.expect("every member finalized"))
        .min();
    assert_eq!(lowest, Some(summary.lowest_member_view));
    // Views only go up from sample to sample.
    let mut previous = 0;
    for record in &records {
        if let Record::Sample(sample) = record {
            let views = sample.consensus.unwrap().finalized_views;
            assert!(views >= previous);
            previous = views;
        }
    }
}
