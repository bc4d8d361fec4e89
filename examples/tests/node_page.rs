//! The node's live page, in headless Chromium and over plain HTTP: two `node`s on loopback,
//! the first one's `/` shows its peer connected, with the line it sent counted, and the peer
//! gone once it stops; `/peers` is the same as JSON, `/events` streams it.

#[path = "../../sim/tests/support/browser.rs"]
mod browser;
#[path = "../../sim/tests/support/http.rs"]
mod http;
mod support;

use browser::{evaluate, screenshot, text};
use serde_json::Value;
use std::io::{Read as _, Write as _};
use support::{Folder, NodeFiles, Running, SAFETY_NET, wait_until};

const NODE: &str = env!("CARGO_BIN_EXE_node");

/// `GET path` on `port`: the status line's code and the body.
fn get(port: u16, path: &str) -> (u16, String) {
    http::request(("127.0.0.1", port), "GET", path).unwrap()
}

fn peers(port: u16) -> Option<Value> {
    let (code, body) = get(port, "/peers");
    (code == 200).then(|| serde_json::from_str(&body).ok())?
}

#[test]
fn the_page_shows_the_nodes_peers_live() {
    let folder = Folder::new("node-page");
    let files = NodeFiles::write(NODE, &folder, 2, "");
    let mut nodes: Vec<Running> = files
        .configs
        .iter()
        .map(|config| Running::start(NODE, &["run", config.to_str().unwrap()]))
        .collect();
    let port = files.metrics[0];
    wait_until("node 0 connected to node 1", SAFETY_NET, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && peers(port).is_some_and(|peers| peers["connected"] == 1)
    });
    writeln!(nodes[0].stdin, "hello page").unwrap();
    nodes[0].stdin.flush().unwrap();
    nodes[1].expect_line("hello page", SAFETY_NET);
    // The sender counts a message once its write returned, which on a busy machine can be a
    // moment after the peer printed it.
    wait_until("node 0 counted the message sent", SAFETY_NET, || {
        peers(port).is_some_and(|peers| peers["peers"][0]["messages_sent"] == 1)
    });

    // Plain HTTP: the snapshot, the stream, and nothing else.
    let snapshot = peers(port).unwrap();
    assert_eq!(snapshot["key"], files.keys[0]);
    let peer = &snapshot["peers"][0];
    assert_eq!(peer["key"], files.keys[1]);
    assert_eq!(peer["state"], "connected");
    assert_eq!(peer["address"], format!("127.0.0.1:{}", files.listen[1]));
    assert_eq!(peer["messages_sent"], 1);
    assert!(peer["rtt_ms"].is_number() || peer["rtt_ms"].is_null());
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(SAFETY_NET)).unwrap();
    write!(stream, "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&received).contains("\n\n") {
        let read = stream.read(&mut buffer).unwrap();
        assert!(read > 0, "the stream ended");
        received.extend_from_slice(&buffer[..read]);
    }
    let streamed = String::from_utf8_lossy(&received).into_owned();
    assert!(streamed.starts_with("HTTP/1.1 200 OK"), "{streamed}");
    assert!(
        streamed.contains("Content-Type: text/event-stream"),
        "{streamed}"
    );
    let event = streamed.split("data: ").nth(1).unwrap().trim_end();
    let event: Value = serde_json::from_str(event).unwrap();
    assert_eq!(event["peers"][0]["state"], "connected");
    drop(stream);
    assert_eq!(get(port, "/nope").0, 404);

    // The page, in a browser.
    let browser = browser::browser();
    let tab = browser.new_tab().unwrap();
    tab.navigate_to(&format!("http://127.0.0.1:{port}/"))
        .unwrap();
    tab.wait_until_navigated().unwrap();
    let row = "document.querySelector('#peers tbody tr')";
    browser::wait_until("the peer on the page", || {
        evaluate(
            &tab,
            &format!("{row} ? {row}.querySelector('.sent').textContent : ''"),
        )
        .as_str()
        .is_some_and(|sent| sent.starts_with("1 ("))
    });
    assert_eq!(text(&tab, "status"), "live");
    assert_eq!(text(&tab, "connected"), "1");
    assert_eq!(text(&tab, "tracked"), "1");
    let state = evaluate(
        &tab,
        &format!("{row}.querySelector('[class^=state-]').textContent"),
    );
    assert!(state.as_str().unwrap().starts_with("connected"), "{state}");
    let key = evaluate(&tab, &format!("{row}.dataset.peer"));
    assert_eq!(key, files.keys[1].as_str());
    screenshot(&tab, "node-page.png");

    // The peer stops: the page says so within a few snapshots.
    drop(nodes.pop());
    browser::wait_until("the peer shown not connected", || {
        text(&tab, "connected") == "0"
    });
    let state = evaluate(
        &tab,
        &format!("{row}.querySelector('[class^=state-]').textContent"),
    );
    assert!(!state.as_str().unwrap().starts_with("connected"), "{state}");
    screenshot(&tab, "node-page-peer-gone.png");
}
