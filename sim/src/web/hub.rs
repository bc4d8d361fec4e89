//! The viewer's shared state, without I/O: the log so far and the clients reading it.
//!
//! Every record is kept once, serialized, in arrival order; each client is a cursor into
//! that history, so a client costs a few words however far behind it is, and a client that
//! joins late reads the run from its start. A client makes progress each time its
//! connection takes the next record; one that is behind the head and has made none for the
//! stall timeout is dropped (its connection closed by the server) and counted. Publishing
//! never waits for a client, so no client can slow the simulation.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

/// Clients served at once; more are refused.
pub const MAX_CLIENTS: usize = 32;

/// The log so far and the clients reading it. Times are given by the caller (any monotonic
/// clock), so the rules are tested without one.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    lines: Vec<Arc<str>>,
    bytes: u64,
    finished: bool,
    clients: BTreeMap<u64, Client>,
    next_client: u64,
    counts: Counts,
}

#[derive(Clone, Copy, Debug)]
struct Client {
    /// The next record it reads.
    cursor: usize,
    /// When it last took a record (or joined, or was caught up).
    progress_at: Duration,
    /// Whether it has taken the end of a finished log.
    done: bool,
}

/// What a client reads next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// This record.
    Record(Arc<str>),
    /// Nothing yet: wait for the next publish.
    Wait,
    /// The log is over and the client has read all of it.
    Done,
    /// The client is not reading any more (dropped as stalled, or gone).
    Gone,
}

/// What the viewer counts, for its operator (`/status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Records published.
    pub records: u64,
    /// Their bytes, serialized.
    pub bytes: u64,
    /// Clients reading now.
    pub clients: u64,
    /// Clients ever served.
    pub clients_served: u64,
    /// Clients refused because [`MAX_CLIENTS`] were reading.
    pub clients_refused: u64,
    /// Clients dropped for not reading (behind, no progress for the stall timeout).
    pub clients_dropped_slow: u64,
    /// Whether the run is over (no more records will come).
    pub finished: bool,
}

impl Hub {
    /// Adds a record at `now`. Clients that had read everything were waiting, not stalled:
    /// their stall is counted from now.
    pub(crate) fn publish(&mut self, line: Arc<str>, now: Duration) {
        self.caught_up_at(now);
        self.bytes += line.len() as u64;
        self.lines.push(line);
    }

    /// The log is over at `now`.
    pub(crate) fn finish(&mut self, now: Duration) {
        self.caught_up_at(now);
        self.finished = true;
    }

    fn caught_up_at(&mut self, now: Duration) {
        let head = self.lines.len();
        for client in self.clients.values_mut() {
            if client.cursor == head {
                client.progress_at = now;
            }
        }
    }

    /// A new client at `now`, reading from the first record; `None` when too many read.
    pub(crate) fn join(&mut self, now: Duration) -> Option<u64> {
        if self.clients.len() >= MAX_CLIENTS {
            self.counts.clients_refused += 1;
            return None;
        }
        let id = self.next_client;
        self.next_client += 1;
        self.counts.clients_served += 1;
        self.clients.insert(
            id,
            Client {
                cursor: 0,
                progress_at: now,
                done: false,
            },
        );
        Some(id)
    }

    pub(crate) fn leave(&mut self, id: u64) {
        self.clients.remove(&id);
    }

    /// What client `id` reads next, taken at `now`.
    pub(crate) fn next(&mut self, id: u64, now: Duration) -> Next {
        let Some(client) = self.clients.get_mut(&id) else {
            return Next::Gone;
        };
        client.progress_at = now;
        match self.lines.get(client.cursor) {
            Some(line) => {
                client.cursor += 1;
                Next::Record(line.clone())
            }
            None if self.finished => {
                client.done = true;
                Next::Done
            }
            // Caught up: waiting for the simulation is not a stall.
            None => Next::Wait,
        }
    }

    /// The clients that are behind (records, or the end of a finished log, not yet taken) and
    /// have taken nothing for `timeout` by `now`: they are forgotten and counted, and their
    /// connections are to be closed.
    pub(crate) fn drop_stalled(&mut self, now: Duration, timeout: Duration) -> Vec<u64> {
        let (head, finished) = (self.lines.len(), self.finished);
        let stalled: Vec<u64> = self
            .clients
            .iter()
            .filter(|(_, client)| {
                let behind = client.cursor < head || (finished && !client.done);
                behind && now.saturating_sub(client.progress_at) >= timeout
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &stalled {
            self.clients.remove(id);
        }
        self.counts.clients_dropped_slow += stalled.len() as u64;
        stalled
    }

    pub(crate) fn counts(&self) -> Counts {
        Counts {
            records: self.lines.len() as u64,
            bytes: self.bytes,
            clients: self.clients.len() as u64,
            finished: self.finished,
            ..self.counts
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn line(text: &str) -> Arc<str> {
        Arc::from(text)
    }

    #[test]
    fn a_late_client_reads_from_the_start_and_ends_with_the_log() {
        let mut hub = Hub::default();
        hub.publish(line("a"), S);
        hub.publish(line("b"), S);
        let client = hub.join(S).unwrap();
        assert_eq!(hub.next(client, S), Next::Record(line("a")));
        assert_eq!(hub.next(client, S), Next::Record(line("b")));
        assert_eq!(hub.next(client, S), Next::Wait, "nothing new yet");
        hub.publish(line("c"), S);
        hub.finish(S);
        assert_eq!(hub.next(client, S), Next::Record(line("c")));
        assert_eq!(hub.next(client, S), Next::Done, "the log is over");
        let counts = hub.counts();
        assert_eq!(
            (counts.records, counts.bytes, counts.finished),
            (3, 3, true)
        );
    }

    #[test]
    fn a_client_that_stops_reading_is_dropped_and_counted_and_others_are_not() {
        let mut hub = Hub::default();
        let stuck = hub.join(Duration::ZERO).unwrap();
        let reader = hub.join(Duration::ZERO).unwrap();
        let stops_later = hub.join(Duration::ZERO).unwrap();
        for second in 1..=20u64 {
            let now = S * second as u32;
            hub.publish(line("x"), now);
            while let Next::Record(_) = hub.next(reader, now) {}
            // `stops_later` reads until 10 s, then stops.
            if second <= 10 {
                while let Next::Record(_) = hub.next(stops_later, now) {}
            }
            let dropped = hub.drop_stalled(now, S * 5);
            match second {
                // Each was caught up when the record after its last read came: 1 s, 11 s.
                6 => assert_eq!(dropped, vec![stuck]),
                16 => assert_eq!(dropped, vec![stops_later]),
                _ => assert!(dropped.is_empty(), "at {second} s: {dropped:?}"),
            }
        }
        assert_eq!(
            hub.next(stuck, S * 21),
            Next::Gone,
            "a dropped client reads no more"
        );
        assert_eq!(hub.counts().clients_dropped_slow, 2);
        assert_eq!(hub.counts().clients, 1);
        // A client that has read everything is not stalled, however long nothing comes.
        assert!(hub.drop_stalled(S * 500, S * 5).is_empty());
    }

    #[test]
    fn a_long_wait_for_the_simulation_is_no_stall_but_an_unread_end_is() {
        let mut hub = Hub::default();
        let waiting = hub.join(Duration::ZERO).unwrap();
        assert_eq!(hub.next(waiting, Duration::ZERO), Next::Wait);
        // The next record comes a minute later; the client has not been polled yet.
        hub.publish(line("late"), S * 60);
        assert!(hub.drop_stalled(S * 61, S * 5).is_empty());
        assert_eq!(hub.next(waiting, S * 62), Next::Record(line("late")));
        // The log ends; a client that never takes its end holds no slot for ever.
        hub.finish(S * 62);
        assert!(hub.drop_stalled(S * 63, S * 5).is_empty());
        assert_eq!(hub.drop_stalled(S * 67, S * 5), vec![waiting]);
        // One that takes it is not dropped.
        let reader = hub.join(S * 70).unwrap();
        assert_eq!(hub.next(reader, S * 70), Next::Record(line("late")));
        assert_eq!(hub.next(reader, S * 70), Next::Done);
        assert!(hub.drop_stalled(S * 500, S * 5).is_empty());
    }

    #[test]
    fn clients_beyond_the_limit_are_refused_and_counted() {
        let mut hub = Hub::default();
        let ids: Vec<u64> = (0..MAX_CLIENTS).map(|_| hub.join(S).unwrap()).collect();
        assert_eq!(hub.join(S), None);
        hub.leave(ids[0]);
        assert!(hub.join(S).is_some(), "a place freed");
        let counts = hub.counts();
        assert_eq!((counts.clients_refused, counts.clients_served), (1, 33));
    }
}
