//! One direction of a simulated connection: writes in flight, each readable at its due time.
//!
//! The pipe holds what the writer sent and the reader has not taken yet, at most `window`
//! bytes before the writer must wait (like a socket's buffers), so a reader that stops
//! reading costs the writer its window and nothing more. It never reorders: due times only
//! grow. A reset drops everything at once; a writer that closes lets the reader drain what
//! is in flight first, then see the end.

use commonware_runtime::IoBuf;
use std::{collections::VecDeque, task::Waker, time::SystemTime};

/// What happened to the pipe's ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ends {
    /// Both ends in use.
    Open,
    /// The writer is gone: the reader gets what is in flight, then the end.
    WriterClosed,
    /// The reader is gone: writes fail.
    ReaderClosed,
    /// Cut (a fault, a crash, a partition): both ends fail at once.
    Reset,
}

/// A directional byte queue with due times.
#[derive(Debug)]
pub(crate) struct Pipe {
    in_flight: VecDeque<(SystemTime, IoBuf)>,
    in_flight_bytes: usize,
    last_due: SystemTime,
    window: usize,
    ends: Ends,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Pipe {
    pub(crate) fn new(window: usize, now: SystemTime) -> Self {
        Self {
            in_flight: VecDeque::new(),
            in_flight_bytes: 0,
            last_due: now,
            window,
            ends: Ends::Open,
            reader: None,
            writer: None,
        }
    }

    pub(crate) fn ends(&self) -> Ends {
        self.ends
    }

    /// When the last write became (or becomes) readable.
    pub(crate) fn last_due(&self) -> SystemTime {
        self.last_due
    }

    /// Whether a write may go in now (the window is not full).
    pub(crate) fn has_room(&self) -> bool {
        self.in_flight_bytes < self.window
    }

    /// Bytes written and not yet taken by the reader.
    #[cfg(test)]
    pub(crate) fn in_flight_bytes(&self) -> usize {
        self.in_flight_bytes
    }

    /// Adds a write, readable at `due` (which must not precede the last write's).
    pub(crate) fn push(&mut self, due: SystemTime, bytes: IoBuf) {
        debug_assert!(due >= self.last_due, "writes are never reordered");
        debug_assert_eq!(self.ends, Ends::Open);
        self.last_due = due;
        self.in_flight_bytes += bytes.len();
        self.in_flight.push_back((due, bytes));
        if let Some(reader) = self.reader.take() {
            reader.wake();
        }
    }

    /// Moves every write due by `now` to `out`; returns how many bytes moved.
    pub(crate) fn take_due(&mut self, now: SystemTime, out: &mut VecDeque<IoBuf>) -> usize {
        let mut moved = 0;
        while let Some((due, _)) = self.in_flight.front()
            && *due <= now
        {
            let (_, bytes) = self.in_flight.pop_front().expect("front exists");
            moved += bytes.len();
            out.push_back(bytes);
        }
        self.in_flight_bytes -= moved;
        if moved > 0
            && let Some(writer) = self.writer.take()
        {
            writer.wake();
        }
        moved
    }

    /// When the next write becomes readable, if one is in flight.
    pub(crate) fn next_due(&self) -> Option<SystemTime> {
        self.in_flight.front().map(|(due, _)| *due)
    }

    /// The reader waits for a write or an end.
    pub(crate) fn wait_to_read(&mut self, waker: &Waker) {
        self.reader = Some(waker.clone());
    }

    /// The writer waits for room or an end.
    pub(crate) fn wait_to_write(&mut self, waker: &Waker) {
        self.writer = Some(waker.clone());
    }

    /// Records an end and wakes both sides. A reset wins over everything; the first close
    /// of either end is kept otherwise.
    pub(crate) fn end(&mut self, end: Ends) {
        match (self.ends, end) {
            (Ends::Reset, _) => return,
            (_, Ends::Reset) => {
                self.ends = Ends::Reset;
                self.in_flight.clear();
                self.in_flight_bytes = 0;
            }
            (Ends::Open, end) => {
                self.ends = end;
                if end == Ends::ReaderClosed {
                    self.in_flight.clear();
                    self.in_flight_bytes = 0;
                }
            }
            // Both ends closed: nobody is left to notice.
            _ => {}
        }
        if let Some(reader) = self.reader.take() {
            reader.wake();
        }
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const MS: Duration = Duration::from_millis(1);

    fn bytes(n: usize) -> IoBuf {
        IoBuf::from(vec![7u8; n])
    }

    #[test]
    fn writes_become_readable_at_their_due_time_in_order() {
        let mut pipe = Pipe::new(1000, UNIX_EPOCH);
        pipe.push(UNIX_EPOCH + 10 * MS, bytes(3));
        pipe.push(UNIX_EPOCH + 20 * MS, bytes(4));
        let mut out = VecDeque::new();
        assert_eq!(pipe.take_due(UNIX_EPOCH + 9 * MS, &mut out), 0);
        assert_eq!(pipe.next_due(), Some(UNIX_EPOCH + 10 * MS));
        assert_eq!(pipe.take_due(UNIX_EPOCH + 10 * MS, &mut out), 3);
        assert_eq!(pipe.take_due(UNIX_EPOCH + 30 * MS, &mut out), 4);
        assert_eq!(out.iter().map(IoBuf::len).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(pipe.next_due(), None);
    }

    #[test]
    fn the_window_fills_and_frees_as_the_reader_takes() {
        let mut pipe = Pipe::new(10, UNIX_EPOCH);
        pipe.push(UNIX_EPOCH, bytes(6));
        assert!(pipe.has_room());
        pipe.push(UNIX_EPOCH, bytes(6));
        assert!(!pipe.has_room(), "12 of 10 bytes in flight");
        assert_eq!(pipe.in_flight_bytes(), 12);
        pipe.take_due(UNIX_EPOCH, &mut VecDeque::new());
        assert!(pipe.has_room());
        assert_eq!(pipe.in_flight_bytes(), 0);
    }

    #[test]
    fn a_reset_drops_what_is_in_flight_and_outlasts_later_closes() {
        let mut pipe = Pipe::new(100, UNIX_EPOCH);
        pipe.push(UNIX_EPOCH + MS, bytes(5));
        pipe.end(Ends::Reset);
        assert_eq!(pipe.in_flight_bytes(), 0);
        assert_eq!(pipe.next_due(), None);
        pipe.end(Ends::WriterClosed);
        assert_eq!(pipe.ends(), Ends::Reset);
    }

    #[test]
    fn a_closed_writer_leaves_its_bytes_for_the_reader() {
        let mut pipe = Pipe::new(100, UNIX_EPOCH);
        pipe.push(UNIX_EPOCH + MS, bytes(5));
        pipe.end(Ends::WriterClosed);
        assert_eq!(pipe.ends(), Ends::WriterClosed);
        assert_eq!(pipe.take_due(UNIX_EPOCH + MS, &mut VecDeque::new()), 5);
    }

    #[test]
    fn a_closed_reader_frees_the_window() {
        let mut pipe = Pipe::new(100, UNIX_EPOCH);
        pipe.push(UNIX_EPOCH + MS, bytes(50));
        pipe.end(Ends::ReaderClosed);
        assert_eq!(pipe.in_flight_bytes(), 0);
        assert_eq!(pipe.ends(), Ends::ReaderClosed);
    }
}
