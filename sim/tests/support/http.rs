//! Plain HTTP/1.1 requests over loopback, one a connection, for the tests of the servers
//! (the simulator's view and the node's page).

#![allow(dead_code)]

use std::{
    io::{Read as _, Write as _},
    net::{TcpStream, ToSocketAddrs},
    time::Duration,
};

/// `method path` on `address`, asking for the server by its address: the status code and
/// the body, once the server closes the connection.
pub(crate) fn request(
    address: impl ToSocketAddrs,
    method: &str,
    path: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)?;
    // A safety net only: the server answers and closes at once.
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
