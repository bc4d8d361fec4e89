//! `chat`: three processes, three people; a line one types appears on the other two, with
//! the sender's name.

mod support;

use std::{
    io::Write as _,
    net::TcpListener,
    time::{Duration, Instant},
};
use support::{Running, SAFETY_NET};

const CHAT: &str = env!("CARGO_BIN_EXE_chat");

/// A port with the next two free as well.
fn three_free_ports() -> u16 {
    let start = 20_000 + (std::process::id() % 20_000) as u16;
    (start..start + 5_000)
        .step_by(3)
        .find(|&base| (base..base + 3).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok()))
        .expect("three free ports")
}

/// The logs that say what became of each typed line (`line sent peers=N`, at debug).
const LOGS: &str = "warn,palisade_examples=debug";

/// `people[from]` (called `name`) types numbered lines until one is sent to both others; that
/// line must then arrive at both. Nothing here is timed: each step waits for the event that
/// ends it, and the safety net only stops a hung test.
fn say_to_both(people: &mut [Running], from: usize, name: &str, text: &str) {
    let started = Instant::now();
    for attempt in 0.. {
        let line = format!("{text} {attempt}");
        writeln!(people[from].stdin, "{line}").unwrap();
        people[from].stdin.flush().unwrap();
        let sent = people[from].expect_line("line sent", SAFETY_NET);
        let peers: usize = sent
            .rsplit("peers=")
            .next()
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or_else(|| panic!("no peer count in {sent:?}"));
        if peers == 2 {
            // Sent to both: both must show it, with nothing lost to the mesh settling.
            for (index, person) in people.iter().enumerate() {
                if index != from {
                    person.expect_line(&format!("{name}: {line}"), SAFETY_NET);
                }
            }
            return;
        }
        // Only one of the others is connected yet: another line, a little later.
        assert!(
            started.elapsed() < SAFETY_NET,
            "{name} never reached both others"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_line_typed_by_one_appears_on_the_other_two() {
    let base = three_free_ports().to_string();
    let mut people: Vec<Running> = ["alice", "bob", "carol"]
        .iter()
        .map(|name| Running::start_logged(CHAT, &[name, "--base-port", &base], LOGS))
        .collect();
    for person in &people {
        person.expect_line("type a line", SAFETY_NET);
    }
    say_to_both(&mut people, 0, "alice", "hello");
    say_to_both(&mut people, 2, "carol", "hi alice, carol here");
}

#[test]
fn an_unknown_name_is_refused() {
    let output = std::process::Command::new(CHAT)
        .arg("mallory")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("alice, bob, carol"));
}

#[test]
fn a_second_alice_on_the_same_ports_exits_naming_the_address() {
    // Only alice's port is used here; a port of its own keeps clear of the other test's.
    let base = support::free_ports(1)[0].min(u16::MAX - 2);
    let _first = Running::start(CHAT, &["alice", "--base-port", &base.to_string()]);
    _first.expect_line("type a line", SAFETY_NET);
    // The first one is listening once it printed its greeting and its port accepts.
    support::wait_until("the first alice listening", SAFETY_NET, || {
        std::net::TcpStream::connect(("127.0.0.1", base)).is_ok()
    });
    let mut second = std::process::Command::new(CHAT)
        .args(["alice", "--base-port", &base.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let code = support::exit_code(&mut second, SAFETY_NET);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    let expected = format!("chat: cannot listen on 127.0.0.1:{base}");
    assert!(stderr.contains(&expected), "{expected:?} not in {stderr}");
}
