//! An adversary between two honest peers: the input tells a relay, frame by frame, to pass,
//! flip a bit, drop, replay, hold back (reorder) or forge. The dialer sends three messages
//! and closes. Checked:
//!
//! - a handshake frame whose bytes were changed, or that was dropped, fails the handshake;
//! - what the listener delivers is always a prefix of what was sent: an altered, dropped,
//!   replayed, reordered or forged record is never delivered, and nothing after it is;
//! - with every frame passed unchanged, all three messages arrive.

#![no_main]

use commonware_cryptography::Signer as _;
use commonware_runtime::{IoBufs, Sink, Spawner as _, Stream, Supervisor as _, mocks};
use libfuzzer_sys::fuzz_target;
use palisade_fuzz::{admits_dialer, config, dialer_key, listener_key, run};
use std::sync::{Arc, Mutex};

const MESSAGES: [&[u8]; 3] = [b"one", b"two", b"three"];
/// Largest frame body the relay reads (the handshake and these records are far smaller).
const MAX_BODY: usize = 1 << 16;

#[derive(Default)]
struct Script {
    ops: Vec<u8>,
    next: usize,
    /// Frames passed so far in each direction (0: dialer to listener).
    frames: [usize; 2],
    /// A handshake frame's bytes were changed, or it was dropped.
    handshake_altered: bool,
    /// Any frame was touched at all.
    touched: bool,
}

impl Script {
    fn take(&mut self) -> u8 {
        let op = self.ops.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        op
    }
}

/// Handshake frames: the dialer's Hello and Confirmation, the listener's reply.
fn is_handshake(direction: usize, index: usize) -> bool {
    (direction == 0 && index < 2) || (direction == 1 && index == 0)
}

async fn relay(
    mut from: impl Stream,
    mut to: impl Sink,
    direction: usize,
    script: Arc<Mutex<Script>>,
) {
    // A frame held back, and whether it is a handshake frame.
    let mut held: Option<(Vec<u8>, bool)> = None;
    loop {
        let Ok(header) = from.recv(4).await else {
            break;
        };
        let header = header.coalesce();
        let length =
            (u32::from_be_bytes(header.as_ref().try_into().unwrap()) & 0x7fff_ffff) as usize;
        if length > MAX_BODY {
            break;
        }
        let mut frame = header.as_ref().to_vec();
        if length > 0 {
            let Ok(body) = from.recv(length).await else {
                break;
            };
            frame.extend_from_slice(body.coalesce().as_ref());
        }
        let mut out: Vec<Vec<u8>> = Vec::new();
        {
            let mut script = script.lock().unwrap();
            let index = script.frames[direction];
            script.frames[direction] += 1;
            let handshake = is_handshake(direction, index);
            match script.take() % 8 {
                // Pass (most of the time, so that runs go deep).
                0..=2 => out.push(frame),
                3 => {
                    let at = usize::from(script.take()) * 256 + usize::from(script.take());
                    let bit = script.take() % 8;
                    let at = at % frame.len();
                    frame[at] ^= 1 << bit;
                    script.handshake_altered |= handshake;
                    script.touched = true;
                    out.push(frame);
                }
                4 => {
                    script.handshake_altered |= handshake;
                    script.touched = true;
                }
                5 => {
                    script.touched = true;
                    out.push(frame.clone());
                    out.push(frame);
                }
                6 => {
                    // Hold this frame back and send it after the next one. Holding it again
                    // while one is held sends the first in its place: no reordering yet.
                    script.touched = true;
                    if let Some((previous, _)) = held.replace((frame, handshake)) {
                        out.push(previous);
                    }
                }
                _ => {
                    let length = usize::from(script.take() % 64);
                    let mut forged = (length as u32).to_be_bytes().to_vec();
                    forged.extend((0..length).map(|_| script.take()));
                    script.touched = true;
                    script.handshake_altered |= handshake;
                    out.push(forged);
                    out.push(frame);
                }
            }
            // A frame went out past the held one: that one now arrives out of order.
            if !out.is_empty()
                && let Some((previous, was_handshake)) = held.take()
            {
                script.handshake_altered |= was_handshake;
                out.push(previous);
            }
        }
        for frame in out {
            if to.send(IoBufs::from(frame)).await.is_err() {
                return;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let script = Arc::new(Mutex::new(Script {
        ops: data.to_vec(),
        ..Script::default()
    }));
    let observed = script.clone();
    let (handshake_ok, delivered) = run(|context| async move {
        let (dialer_sink, relay_in) = mocks::Channel::init();
        let (relay_to_listener, listener_stream) = mocks::Channel::init();
        let (listener_sink, relay_back_in) = mocks::Channel::init();
        let (relay_to_dialer, dialer_stream) = mocks::Channel::init();
        let there = script.clone();
        context
            .child("relay_there")
            .spawn(move |_| relay(relay_in, relay_to_listener, 0, there));
        context
            .child("relay_back")
            .spawn(move |_| relay(relay_back_in, relay_to_dialer, 1, script));
        let dialer = context.child("dialer").spawn(move |context| async move {
            let stream_context = context.child("stream");
            let Ok((mut sender, _receiver)) = palisade_stream::dial(
                stream_context,
                config(dialer_key()),
                listener_key().public_key(),
                dialer_sink,
                dialer_stream,
            )
            .await
            else {
                return;
            };
            for message in MESSAGES {
                if sender.send(message.to_vec()).await.is_err() {
                    return;
                }
            }
            let _ = sender.close().await;
        });
        let listener = context.child("listener").spawn(move |context| async move {
            let Ok((_, _sender, mut receiver)) = palisade_stream::listen(
                context.child("stream"),
                config(listener_key()),
                admits_dialer,
                listener_sink,
                listener_stream,
            )
            .await
            else {
                return (false, Vec::new());
            };
            let mut delivered = Vec::new();
            while let Ok(message) = receiver.recv().await {
                delivered.push(message.as_ref().to_vec());
            }
            (true, delivered)
        });
        let outcome = listener.await.unwrap();
        let _ = dialer.await;
        outcome
    });
    let script = observed.lock().unwrap();
    if script.handshake_altered {
        assert!(
            !handshake_ok,
            "the handshake survived an altered handshake frame"
        );
    }
    assert!(delivered.len() <= MESSAGES.len());
    for (got, sent) in delivered.iter().zip(MESSAGES) {
        assert_eq!(
            got.as_slice(),
            sent,
            "delivered something that was not sent, in order"
        );
    }
    if !script.touched {
        assert_eq!(
            delivered.len(),
            MESSAGES.len(),
            "an untouched run lost messages"
        );
    }
});
