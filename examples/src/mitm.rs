//! A man in the middle: a relay between two palisade peers that sees every frame and can
//! flip a bit in one.
//!
//! The relay understands only palisade's framing (a 4-byte big-endian header whose low 31
//! bits give the body length); everything inside is ciphertext to it. [`relay`] forwards
//! frames both ways and reports each one; with a [`Flip`] it flips one bit of one frame on
//! the way. The receiving peer's AEAD then rejects that record
//! (`Error::DecryptionFailed`), drops the connection, and delivers nothing altered.

use commonware_runtime::{IoBufs, Network, Sink, Spawner, Stream, Supervisor};
use futures::{FutureExt as _, select};
use std::{fmt, net::SocketAddr, sync::Arc};

/// Largest frame body the relay forwards (palisade's default message limit, 4 MiB, plus
/// the tag); a larger header ends the relay rather than make it allocate.
pub const MAX_FRAME_BODY_BYTES: usize = 4 * 1024 * 1024 + 64;

/// Which way a frame travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the peer that dialed the relay to the peer behind it.
    DialerToListener,
    /// Back.
    ListenerToDialer,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DialerToListener => "dialer -> listener",
            Self::ListenerToDialer => "listener -> dialer",
        })
    }
}

/// Flip bit 0 of the first body byte of frame `frame` (counting from 0) going `direction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flip {
    /// Which way.
    pub direction: Direction,
    /// Which frame in that direction.
    pub frame: usize,
}

impl Flip {
    /// The first data record from the dialer: its frames 0 and 1 are the handshake's Hello
    /// and Confirmation.
    pub const FIRST_RECORD_FROM_DIALER: Self = Self {
        direction: Direction::DialerToListener,
        frame: 2,
    };
}

/// One frame the relay forwarded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Which way it went.
    pub direction: Direction,
    /// Its place in that direction, from 0.
    pub index: usize,
    /// The whole frame as forwarded (header and body, after any flip).
    pub bytes: Vec<u8>,
    /// Whether the relay flipped a bit in it.
    pub flipped: bool,
}

impl fmt::Display for Frame {
    /// `dialer -> listener  frame 2  46 bytes  0000002a 5f3c…` (the first 32 bytes in hex).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = &self.bytes[..self.bytes.len().min(32)];
        write!(
            f,
            "{}  frame {}  {} bytes  {}{}{}",
            self.direction,
            self.index,
            self.bytes.len(),
            crate::hex::encode(shown),
            if self.bytes.len() > shown.len() {
                "…"
            } else {
                ""
            },
            if self.flipped {
                "  (one bit flipped)"
            } else {
                ""
            }
        )
    }
}

/// Accepts one connection on `listener`, connects to `upstream`, and forwards frames both
/// ways until either side ends; `seen` gets every frame after it was forwarded.
///
/// # Errors
/// When the accept or the connection upstream fails.
pub async fn relay<E, L>(
    context: E,
    mut listener: L,
    upstream: SocketAddr,
    flip: Option<Flip>,
    seen: impl Fn(Frame) + Send + Sync + 'static,
) -> Result<(), commonware_runtime::Error>
where
    E: Network + Spawner + Supervisor,
    L: commonware_runtime::Listener,
{
    let (_, dialer_sink, dialer_stream) = listener.accept().await?;
    let (listener_sink, listener_stream) = context.dial(upstream).await?;
    let seen: Arc<dyn Fn(Frame) + Send + Sync> = Arc::new(seen);
    let report = |seen: Arc<dyn Fn(Frame) + Send + Sync>| move |frame| seen(frame);
    let there = forward(
        dialer_stream,
        listener_sink,
        Direction::DialerToListener,
        flip,
        report(seen.clone()),
    )
    .fuse();
    let back = forward(
        listener_stream,
        dialer_sink,
        Direction::ListenerToDialer,
        flip,
        report(seen),
    )
    .fuse();
    futures::pin_mut!(there, back);
    // When one way ends the other is dropped, which closes both connections.
    select! {
        () = there => {},
        () = back => {},
    }
    Ok(())
}

/// Forwards frames from `stream` to `sink` until either fails or a header is too large.
async fn forward(
    mut stream: impl Stream,
    mut sink: impl Sink,
    direction: Direction,
    flip: Option<Flip>,
    seen: impl Fn(Frame),
) {
    for index in 0.. {
        let Ok(header) = stream.recv(4).await else {
            return;
        };
        let header = header.coalesce();
        let word = u32::from_be_bytes(header.as_ref().try_into().expect("4 bytes"));
        let body_bytes = (word & 0x7fff_ffff) as usize;
        if body_bytes > MAX_FRAME_BODY_BYTES {
            return;
        }
        let mut bytes = header.as_ref().to_vec();
        if body_bytes > 0 {
            let Ok(body) = stream.recv(body_bytes).await else {
                return;
            };
            bytes.extend_from_slice(body.coalesce().as_ref());
        }
        let flipped =
            flip == Some(Flip {
                direction,
                frame: index,
            }) && bytes.len() > 4;
        if flipped {
            bytes[4] ^= 1;
        }
        if sink.send(IoBufs::from(bytes.clone())).await.is_err() {
            return;
        }
        seen(Frame {
            direction,
            index,
            bytes,
            flipped,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_print_as_hex_with_their_place() {
        let frame = Frame {
            direction: Direction::DialerToListener,
            index: 2,
            bytes: vec![0, 0, 0, 2, 0xab, 0xcd],
            flipped: true,
        };
        assert_eq!(
            frame.to_string(),
            "dialer -> listener  frame 2  6 bytes  00000002abcd  (one bit flipped)"
        );
    }
}
