//! `chat`: three processes, three people; a line one types appears on the other two, with
//! the sender's name.

mod support;

use std::{io::Write as _, net::TcpListener, time::Duration};
use support::Running;

const CHAT: &str = env!("CARGO_BIN_EXE_chat");

/// A port with the next two free as well.
fn three_free_ports() -> u16 {
    let start = 20_000 + (std::process::id() % 20_000) as u16;
    (start..start + 5_000)
        .step_by(3)
        .find(|&base| (base..base + 3).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok()))
        .expect("three free ports")
}

#[test]
fn a_line_typed_by_one_appears_on_the_other_two() {
    let base = three_free_ports().to_string();
    let mut people: Vec<Running> = ["alice", "bob", "carol"]
        .iter()
        .map(|name| Running::start(CHAT, &[name, "--base-port", &base]))
        .collect();
    for person in &people {
        person.expect_line("type a line", Duration::from_secs(10));
    }
    // Lines typed before the mesh is up reach nobody: repeat until both others have one.
    let mut seen = [false, false];
    for attempt in 0..100 {
        writeln!(people[0].stdin, "hello {attempt}").unwrap();
        people[0].stdin.flush().unwrap();
        for (index, person) in people[1..].iter().enumerate() {
            if !seen[index] {
                seen[index] = person.try_line("alice: hello", Duration::from_millis(200));
            }
        }
        if seen == [true, true] {
            break;
        }
    }
    assert_eq!(seen, [true, true], "alice's lines never arrived");
    // Carol's line likewise: while the mesh settles, the duplicate-connection rule may still
    // close a connection with the line queued on it (counted as `dropped_disconnected`).
    let mut seen = [false, false];
    for attempt in 0..100 {
        writeln!(people[2].stdin, "hi alice, carol here {attempt}").unwrap();
        people[2].stdin.flush().unwrap();
        for (index, person) in people[..2].iter().enumerate() {
            if !seen[index] {
                seen[index] =
                    person.try_line("carol: hi alice, carol here", Duration::from_millis(200));
            }
        }
        if seen == [true, true] {
            break;
        }
    }
    assert_eq!(seen, [true, true], "carol's lines never arrived");
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
    _first.expect_line("type a line", Duration::from_secs(10));
    // The first one is listening once it printed its greeting and its port accepts.
    support::wait_until("the first alice listening", Duration::from_secs(60), || {
        std::net::TcpStream::connect(("127.0.0.1", base)).is_ok()
    });
    let mut second = std::process::Command::new(CHAT)
        .args(["alice", "--base-port", &base.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let code = support::exit_code(&mut second, Duration::from_secs(60));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    let expected = format!("chat: cannot listen on 127.0.0.1:{base}");
    assert!(stderr.contains(&expected), "{expected:?} not in {stderr}");
}
