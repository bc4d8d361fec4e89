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
    /// When it last took a record (or joined).
    progress_at: Duration,
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
    pub(crate) fn publish(&mut self, line: Arc<str>) {
        self.bytes += line.len() as u64;
        self.lines.push(line);
    }

    pub(crate) fn finish(&mut self) {
        self.finished = true;
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
            },
        );
        Some(id)
    }

    pub(crate) fn leave(&mut self, id: u64) {
        self.clients.remove(&id);
    }

    /// Client `id`'s next record, taken at `now`: `Ok(Some)` a record, `Ok(None)` nothing new
    /// yet, `Err(())` the log is over (or the client was dropped).
    #[allow(clippy::result_unit_err)]
    pub(crate) fn next(&mut self, id: u64, now: Duration) -> Result<Option<Arc<str>>, ()> {
        let Some(client) = self.clients.get_mut(&id) else {
            return Err(());
        };
        match self.lines.get(client.cursor) {
            Some(line) => {
                client.cursor += 1;
                client.progress_at = now;
                Ok(Some(line.clone()))
            }
            None if self.finished => Err(()),
            None => {
                // Caught up: stops_later for the simulation is not a stall.
                client.progress_at = now;
                Ok(None)
            }
        }
    }

    /// The clients that are behind and have taken nothing for `timeout` by `now`: they are
    /// forgotten and counted, and their connections are to be closed.
    pub(crate) fn drop_stalled(&mut self, now: Duration, timeout: Duration) -> Vec<u64> {
        let head = self.lines.len();
        let stalled: Vec<u64> = self
            .clients
            .iter()
            .filter(|(_, client)| {
                client.cursor < head && now.saturating_sub(client.progress_at) >= timeout
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
        hub.publish(line("a"));
        hub.publish(line("b"));
        let client = hub.join(S).unwrap();
        assert_eq!(hub.next(client, S).unwrap().as_deref(), Some("a"));
        assert_eq!(hub.next(client, S).unwrap().as_deref(), Some("b"));
        assert_eq!(hub.next(client, S), Ok(None), "nothing new yet");
        hub.publish(line("c"));
        hub.finish();
        assert_eq!(hub.next(client, S).unwrap().as_deref(), Some("c"));
        assert_eq!(hub.next(client, S), Err(()), "the log is over");
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
            hub.publish(line("x"));
            while let Ok(Some(_)) = hub.next(reader, now) {}
            // `stops_later` reads until 10 s, then stops.
            if second <= 10 {
                while let Ok(Some(_)) = hub.next(stops_later, now) {}
            }
            let dropped = hub.drop_stalled(now, S * 5);
            match second {
                5 => assert_eq!(dropped, vec![stuck]),
                15 => assert_eq!(dropped, vec![stops_later]),
                _ => assert!(dropped.is_empty(), "at {second} s: {dropped:?}"),
            }
        }
        assert_eq!(
            hub.next(stuck, S * 21),
            Err(()),
            "a dropped client reads no more"
        );
        assert_eq!(hub.counts().clients_dropped_slow, 2);
        assert_eq!(hub.counts().clients, 1);
        // A client that has read everything is not stalled, however long nothing comes.
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
