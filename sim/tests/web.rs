//! The viewer's HTTP server under good and bad clients, over loopback: the page and its
//! files, 404 and 405 for anything else, the event stream from the start of the log with a
//! `done` at its end, and a client that stops reading dropped and counted without holding up
//! publishing or the other clients.

#![cfg(feature = "web")]

mod support;

use palisade_sim::web::{MAX_CLIENTS, Viewer};
use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    sync::Arc,
    time::{Duration, Instant},
};

/// Far longer than anything here takes; only a hung test reaches it.
const SAFETY_NET: Duration = Duration::from_secs(120);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(SAFETY_NET)).unwrap();
    stream
}

/// `method path`: the status code and the body.
fn request(address: SocketAddr, method: &str, path: &str) -> (u16, String) {
    support::http::request(address, method, path).unwrap()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < SAFETY_NET, "waited too long for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A line that reads like a record to the server (it only passes lines through).
fn line(index: usize, padding: usize) -> Arc<str> {
    format!(
        "{{\"type\":\"link\",\"at_seconds\":{index},\"pad\":\"{}\"}}",
        "x".repeat(padding)
    )
    .into()
}

#[test]
fn the_page_its_files_and_nothing_else_are_served() {
    let viewer = Viewer::start(loopback()).unwrap();
    let address = viewer.local_addr();
    let (status, page) = request(address, "GET", "/");
    assert_eq!(status, 200);
    assert!(page.contains("<script src=\"/app.js\""), "{page}");
    assert_eq!(request(address, "GET", "/app.js").0, 200);
    assert_eq!(request(address, "GET", "/style.css").0, 200);
    for path in ["/nope", "/../Cargo.toml", "/events/x", "/index.html"] {
        assert_eq!(request(address, "GET", path).0, 404, "{path}");
    }
    assert_eq!(request(address, "POST", "/").0, 405);
    assert_eq!(request(address, "DELETE", "/events").0, 405);
    // A page that rebinds its own name to this address is refused.
    let mut rebound = connect(address);
    write!(
        rebound,
        "GET /events HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    rebound.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    let (status, counts) = request(address, "GET", "/status");
    assert_eq!(status, 200);
    assert!(counts.contains("\"records\":0"), "{counts}");
}

#[test]
fn a_client_reads_the_log_from_its_start_then_live_then_done() {
    let viewer = Viewer::start(loopback()).unwrap();
    viewer.publish_line(line(0, 0));
    viewer.publish_line(line(1, 0));
    let mut client = connect(viewer.local_addr());
    write!(client, "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    wait_until("the client to join", || viewer.counts().clients == 1);
    viewer.publish_line(line(2, 0));
    viewer.finish();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&received).contains("event: done") {
        let read = client.read(&mut buffer).unwrap();
        assert!(read > 0, "the stream ended before `done`");
        received.extend_from_slice(&buffer[..read]);
    }
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("text/event-stream"), "{text}");
    let data: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|data| !data.is_empty())
        .collect();
    assert_eq!(data.len(), 3, "{text}");
    for (index, data) in data.iter().enumerate() {
        assert!(
            data.starts_with(&format!("{{\"type\":\"link\",\"at_seconds\":{index},")),
            "{data}"
        );
    }
}

#[test]
fn a_client_that_stops_reading_is_dropped_and_holds_up_nobody() {
    let viewer = Viewer::with_stall_timeout(loopback(), Duration::from_secs(1)).unwrap();
    let address = viewer.local_addr();
    // Asks for the stream and never reads: once the socket buffers are full, it takes
    // nothing more.
    let mut stuck = connect(address);
    write!(stuck, "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    wait_until("the stuck client to join", || viewer.counts().clients == 1);
    // Far more than the socket buffers hold, published without waiting for anyone.
    let started = Instant::now();
    for index in 0..40_000 {
        viewer.publish_line(line(index, 1000));
    }
    viewer.finish();
    let publishing = started.elapsed();
    assert!(
        publishing < SAFETY_NET,
        "publishing waited for a client: {publishing:?}"
    );
    // A client that reads gets everything, meanwhile.
    let reader = std::thread::spawn(move || {
        let mut stream = connect(address);
        write!(stream, "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut tail = Vec::new();
        let mut buffer = vec![0u8; 1 << 16];
        let mut events = 0usize;
        loop {
            let read = stream.read(&mut buffer).unwrap();
            assert!(read > 0, "the stream ended before `done`");
            tail.extend_from_slice(&buffer[..read]);
            // Count whole events; keep the unfinished rest.
            let text = String::from_utf8_lossy(&tail).into_owned();
            let complete = text.rfind("\n\n").map_or(0, |at| at + 2);
            events += text[..complete].matches("data: {").count();
            if text[..complete].contains("event: done") {
                return events;
            }
            tail.drain(..complete);
        }
    });
    wait_until("the stuck client to be dropped", || {
        viewer.counts().clients_dropped_slow == 1
    });
    // Its connection is closed: after what the buffers held, the stream ends.
    let mut sink = Vec::new();
    let _ = stuck.read_to_end(&mut sink);
    let received = String::from_utf8_lossy(&sink);
    assert!(
        !received.contains("event: done"),
        "the stuck client got to the end"
    );
    assert!(
        received.matches("data: {").count() < 40_000,
        "the stuck client was not behind"
    );
    assert_eq!(reader.join().unwrap(), 40_000);
    let counts = viewer.counts();
    assert_eq!(counts.clients_dropped_slow, 1);
    assert_eq!(counts.records, 40_000);
}

#[test]
fn clients_beyond_the_limit_are_refused_with_503() {
    let viewer = Viewer::start(loopback()).unwrap();
    let address = viewer.local_addr();
    let clients: Vec<TcpStream> = (0..MAX_CLIENTS)
        .map(|_| {
            let mut client = connect(address);
            write!(client, "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
            client
        })
        .collect();
    wait_until("every client to join", || {
        viewer.counts().clients == MAX_CLIENTS as u64
    });
    let (status, _) = request(address, "GET", "/events");
    assert_eq!(status, 503);
    assert_eq!(viewer.counts().clients_refused, 1);
    drop(clients);
    // A server learns that a client left when it next writes to it.
    viewer.publish_line(line(0, 0));
    wait_until("the clients to leave", || viewer.counts().clients == 0);
    viewer.finish();
    assert_eq!(request(address, "GET", "/events").0, 200);
}
