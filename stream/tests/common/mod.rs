//! Helpers shared by the integration tests: keys, configs, connected pairs, raw frames and a
//! man-in-the-middle relay.
#![allow(dead_code, unreachable_pub)]

use commonware_cryptography::{Signer as _, ed25519};
use commonware_runtime::{
    Buf, Clock as _, IoBufs, Sink, Spawner, Stream, Supervisor as _, deterministic, mocks,
};
use palisade_stream::{Config, Error, Receiver, Sender, dial, listen};
use std::time::Duration;

pub type Key = ed25519::PrivateKey;
pub type Pk = ed25519::PublicKey;
pub type MockSender = Sender<mocks::Sink>;
pub type MockReceiver = Receiver<mocks::Stream>;

pub const NAMESPACE: &[u8] = b"palisade-stream-tests";
pub const MAX_MESSAGE: u32 = 64 * 1024;

pub fn key(seed: u64) -> Key {
    Key::from_seed(seed)
}

/// A test configuration: small message limit, the recommended time bounds.
pub fn config(seed: u64) -> Config<Key> {
    let mut config = Config::recommended(key(seed), NAMESPACE);
    config.max_message_size = MAX_MESSAGE;
    config
}

/// Two crossed in-memory channels: (a_sink, a_stream) talks to (b_sink, b_stream).
pub fn wire() -> ((mocks::Sink, mocks::Stream), (mocks::Sink, mocks::Stream)) {
    let (a_sink, b_stream) = mocks::Channel::init();
    let (b_sink, a_stream) = mocks::Channel::init();
    ((a_sink, a_stream), (b_sink, b_stream))
}

pub struct Connected {
    pub dialer_sender: MockSender,
    pub dialer_receiver: MockReceiver,
    pub listener_sender: MockSender,
    pub listener_receiver: MockReceiver,
}

/// What `dial` and `listen` returned.
pub type Outcome = (
    Result<(MockSender, MockReceiver), Error>,
    Result<(Pk, MockSender, MockReceiver), Error>,
);

/// Runs `dial` and `listen` against each other over in-memory channels.
pub async fn try_connect(
    context: &deterministic::Context,
    dialer: Config<Key>,
    listener: Config<Key>,
) -> Outcome {
    let (dialer_end, listener_end) = wire();
    handshake_over(context, dialer, listener, dialer_end, listener_end).await
}

/// Runs `dial` over `dialer_end` and `listen` over `listener_end`.
pub async fn handshake_over(
    context: &deterministic::Context,
    dialer: Config<Key>,
    listener: Config<Key>,
    (dialer_sink, dialer_stream): (mocks::Sink, mocks::Stream),
    (listener_sink, listener_stream): (mocks::Sink, mocks::Stream),
) -> Outcome {
    let listener_key = listener.signer.public_key();
    // The connection's writer is a child of the context given to `listen`: take it from the
    // test's root so the connection outlives the task that runs the handshake.
    let connection = context.child("listener_connection");
    let listener_task = context.child("listener").spawn(move |_| async move {
        listen(
            connection,
            listener,
            |_| async { true },
            listener_sink,
            listener_stream,
        )
        .await
    });
    let dialed = dial(
        context.child("dialer"),
        dialer,
        listener_key,
        dialer_sink,
        dialer_stream,
    )
    .await;
    // A failed dial drops its connection, which ends the listener's handshake too.
    let listened = listener_task.await.expect("listener task");
    (dialed, listened)
}

/// Connects `config(1)` (dialer) to `config(2)` (listener) and expects success.
pub async fn connect(context: &deterministic::Context) -> Connected {
    connect_with(context, config(1), config(2)).await
}

pub async fn connect_with(
    context: &deterministic::Context,
    dialer: Config<Key>,
    listener: Config<Key>,
) -> Connected {
    let dialer_key = dialer.signer.public_key();
    let (dialed, listened) = try_connect(context, dialer, listener).await;
    let (dialer_sender, dialer_receiver) = dialed.expect("dial");
    let (peer, listener_sender, listener_receiver) = listened.expect("listen");
    assert_eq!(peer, dialer_key);
    Connected {
        dialer_sender,
        dialer_receiver,
        listener_sender,
        listener_receiver,
    }
}

/// Wraps a handshake body in its frame header.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// Reads one whole frame (header included) from a raw stream.
pub async fn read_raw_frame(
    stream: &mut impl Stream,
) -> Result<Vec<u8>, commonware_runtime::Error> {
    let mut header = [0u8; 4];
    stream.recv(4).await?.copy_to_slice(&mut header);
    let len = (u32::from_be_bytes(header) & 0x7fff_ffff) as usize;
    let body = stream.recv(len).await?.coalesce();
    let mut frame = header.to_vec();
    frame.extend_from_slice(body.as_ref());
    Ok(frame)
}

/// What a relay does with one frame.
pub enum Relay {
    /// Forward these frames (none, one, or several) in this order.
    Forward(Vec<Vec<u8>>),
    /// Stop relaying and drop the connection (a cut).
    Cut,
}

/// A man in the middle between `from` and `to` that sees whole frames, numbered from 0 (the
/// dialer's Hello is 0 and its Confirmation 1 on the dialer-to-listener path), and decides what
/// to forward. The relay keeps `to` open after its input ends so that only `Cut` closes it.
pub fn relay<F>(
    context: &deterministic::Context,
    mut from: mocks::Stream,
    mut to: mocks::Sink,
    mut decide: F,
) where
    F: FnMut(usize, Vec<u8>) -> Relay + Send + 'static,
{
    context.child("relay").spawn(move |context| async move {
        let mut index = 0;
        while let Ok(frame) = read_raw_frame(&mut from).await {
            match decide(index, frame) {
                Relay::Forward(frames) => {
                    for frame in frames {
                        if to.send(frame).await.is_err() {
                            return;
                        }
                    }
                }
                Relay::Cut => return,
            }
            index += 1;
        }
        // Input ended: hold the output open until the test ends.
        context.sleep(Duration::from_secs(3600)).await;
        drop(to);
    });
}

/// A connection whose dialer-to-listener path runs through `decide`.
pub async fn connect_through<F>(context: &deterministic::Context, decide: F) -> Connected
where
    F: FnMut(usize, Vec<u8>) -> Relay + Send + 'static,
{
    let (dialer_sink, relay_in) = mocks::Channel::init();
    let (relay_out, listener_stream) = mocks::Channel::init();
    let (listener_sink, dialer_stream) = mocks::Channel::init();
    relay(context, relay_in, relay_out, decide);
    let (dialed, listened) = handshake_over(
        context,
        config(1),
        config(2),
        (dialer_sink, dialer_stream),
        (listener_sink, listener_stream),
    )
    .await;
    let (dialer_sender, dialer_receiver) = dialed.expect("dial");
    let (_, listener_sender, listener_receiver) = listened.expect("listen");
    Connected {
        dialer_sender,
        dialer_receiver,
        listener_sender,
        listener_receiver,
    }
}

/// Concatenates received chunks.
pub fn bytes(bufs: impl Into<IoBufs>) -> Vec<u8> {
    bufs.into().coalesce().as_ref().to_vec()
}
