//! `proxy`: a real TCP echo service behind the proxy pair answers byte for byte, for large
//! and for many requests; a proxy client whose key the server does not allow gets nothing.

mod support;

use std::{
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    process::Command,
    time::Duration,
};
use support::{Folder, Running, SAFETY_NET, free_ports};

const PROXY: &str = env!("CARGO_BIN_EXE_proxy");
const NODE: &str = env!("CARGO_BIN_EXE_node");

/// An echo service on a free port: each connection gets back what it sends, until it closes.
fn echo_backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for connection in listener.incoming() {
            let Ok(mut connection) = connection else {
                continue;
            };
            std::thread::spawn(move || {
                let mut reader = connection.try_clone().unwrap();
                let _ = std::io::copy(&mut reader, &mut connection);
            });
        }
    });
    port
}

fn keygen(path: &std::path::Path) -> String {
    let output = Command::new(NODE).arg("keygen").arg(path).output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// Pseudo-random bytes (xorshift), different per `seed`.
fn payload(size: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Sends `request` through `port` and returns everything that comes back for it.
fn round_trip(port: u16, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(SAFETY_NET)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sending = request.to_vec();
    let writing = std::thread::spawn(move || writer.write_all(&sending));
    let mut response = vec![0; request.len()];
    let read = stream.read_exact(&mut response);
    writing.join().unwrap().unwrap();
    read.map(|()| response).unwrap_or_default()
}

struct Pair {
    _folder: Folder,
    _server: Running,
    client: Running,
    _stranger: Running,
    client_port: u16,
    server_port: u16,
    stranger_port: u16,
}

fn start_pair(name: &str) -> Pair {
    let folder = Folder::new(name);
    let backend = echo_backend();
    let ports = free_ports(3);
    let path = |name: &str| folder.0.join(name).to_str().unwrap().to_string();
    let server_key = keygen(folder.0.join("server.key").as_path());
    let client_key = keygen(folder.0.join("client.key").as_path());
    keygen(folder.0.join("stranger.key").as_path());
    let server = Running::start(
        PROXY,
        &[
            "server",
            "--listen",
            &format!("127.0.0.1:{}", ports[0]),
            "--backend",
            &format!("127.0.0.1:{backend}"),
            "--key",
            &path("server.key"),
            "--allow",
            &client_key,
        ],
    );
    server.expect_line("proxy server listening on", SAFETY_NET);
    let client = |port: u16, key: &str| {
        let running = Running::start(
            PROXY,
            &[
                "client",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--server",
                &format!("127.0.0.1:{}", ports[0]),
                "--server-key",
                &server_key,
                "--key",
                &path(key),
            ],
        );
        running.expect_line("proxy client listening on", SAFETY_NET);
        running
    };
    Pair {
        client: client(ports[1], "client.key"),
        _stranger: client(ports[2], "stranger.key"),
        _server: server,
        _folder: folder,
        client_port: ports[1],
        server_port: ports[0],
        stranger_port: ports[2],
    }
}

#[test]
fn an_echo_service_answers_through_the_proxies_byte_for_byte() {
    let pair = start_pair("proxy-echo");
    // Large: 8 MiB in one connection, both ways at once.
    let request = payload(8 * 1024 * 1024, 1);
    assert!(
        round_trip(pair.client_port, &request) == request,
        "8 MiB echo differs"
    );
    // Many: 64 connections, 8 at a time, of 1 B to 200 KB.
    let port = pair.client_port;
    let workers: Vec<_> = (0..8u64)
        .map(|worker| {
            std::thread::spawn(move || {
                for round in 0..8u64 {
                    let seed = worker * 8 + round + 2;
                    let size = [1, 100, 4096, 65_537, 200_000][(seed % 5) as usize];
                    let request = payload(size, seed);
                    assert!(round_trip(port, &request) == request, "echo {seed} differs");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
}

#[test]
fn a_proxy_client_the_server_does_not_allow_gets_nothing() {
    let pair = start_pair("proxy-refused");
    // Without a shutdown of its own: an allowed client's echo would come back; the
    // stranger's connection is closed with nothing in it once the server refuses the
    // handshake.
    let mut stream = TcpStream::connect(("127.0.0.1", pair.stranger_port)).unwrap();
    stream.set_read_timeout(Some(SAFETY_NET)).unwrap();
    // The write may fail once the proxy has closed the connection.
    let _ = stream.write_all(b"let me in");
    let mut response = Vec::new();
    let ended = stream.read_to_end(&mut response);
    assert!(response.is_empty(), "got {response:?}");
    // Closed, not timed out.
    assert!(
        ended.is_ok()
            || ended
                .as_ref()
                .is_err_and(|error| error.kind() == std::io::ErrorKind::ConnectionReset),
        "{ended:?}"
    );
    // The allowed client still works.
    assert_eq!(round_trip(pair.client_port, b"still here"), b"still here");
}

#[test]
fn bad_arguments_get_a_clear_error() {
    let folder = Folder::new("proxy-args");
    let key = folder.0.join("k.key");
    keygen(&key);
    let output = Command::new(PROXY)
        .args([
            "server",
            "--listen",
            "127.0.0.1:1",
            "--backend",
            "127.0.0.1:2",
            "--key",
        ])
        .arg(&key)
        .args(["--allow", "nothex"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--allow #1: not hex"));
    let output = Command::new(PROXY)
        .args([
            "client",
            "--listen",
            "127.0.0.1:1",
            "--server",
            "127.0.0.1:2",
        ])
        .args(["--server-key", "00", "--key", "/nonexistent.key"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent.key"));
}

#[test]
fn sigterm_stops_a_proxy_that_carries_a_connection_cleanly() {
    let mut pair = start_pair("proxy-stop");
    let mut stream = TcpStream::connect(("127.0.0.1", pair.client_port)).unwrap();
    stream.set_read_timeout(Some(SAFETY_NET)).unwrap();
    stream.write_all(b"ping").unwrap();
    let mut echoed = [0u8; 4];
    stream.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"ping");
    support::signal(&pair.client.child, "TERM");
    assert_eq!(
        support::exit_code(&mut pair.client.child, SAFETY_NET),
        Some(0)
    );
    // The carried connection was ended, not left hanging: the plain client sees its end.
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{rest:?}");
}

/// A connection to `to` from the loopback address `from`, which then sends nothing.
fn silent_from(from: [u8; 4], to: u16) -> Option<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    socket
        .bind(&std::net::SocketAddr::from((from, 0)).into())
        .ok()?;
    socket
        .connect(&std::net::SocketAddr::from(([127, 0, 0, 1], to)).into())
        .ok()?;
    Some(socket.into())
}

#[test]
fn silent_floods_from_one_and_from_many_addresses_never_starve_an_allowed_client() {
    let pair = start_pair("proxy-flood");
    let server_port = pair.server_port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // One address and 128 addresses of one /24, each keeping its 16 newest silent
    // connections open and opening another every 5 ms: some 2,000 connections that never send
    // a byte, more than the 1,024 a proxy carries.
    let sources: Vec<[u8; 4]> = std::iter::once([127, 0, 3, 1])
        .chain((0..128u8).map(|i| [127, 0, 4, i + 1]))
        .collect();
    let floods: Vec<_> = sources
        .into_iter()
        .map(|from| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut held = std::collections::VecDeque::new();
                let mut made = 0u32;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    if let Some(connection) = silent_from(from, server_port) {
                        made += 1;
                        held.push_back(connection);
                        if held.len() > 16 {
                            held.pop_front();
                        }
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                made
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // Meanwhile the allowed client carries data, byte for byte, connection after connection.
    for seed in 0..10u64 {
        let request = payload(64 * 1024, 100 + seed);
        assert!(
            round_trip(pair.client_port, &request) == request,
            "echo {seed} during the flood differs"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let made: u32 = floods.into_iter().map(|flood| flood.join().unwrap()).sum();
    eprintln!(
        "proxy flood: {made} silent connections from 129 addresses; 10 of 10 echoes of 64 KiB byte-exact"
    );
}

#[test]
fn a_client_refuses_a_plain_listener_beyond_loopback_unless_told() {
    let folder = Folder::new("proxy-remote");
    let key = folder.0.join("k.key");
    let public = keygen(&key);
    let output = Command::new(PROXY)
        .args(["client", "--listen", "0.0.0.0:0", "--server", "127.0.0.1:9"])
        .args(["--server-key", &public, "--key"])
        .arg(&key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("0.0.0.0:0 is not a loopback one"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-remote-clients"), "{stderr}");
}
