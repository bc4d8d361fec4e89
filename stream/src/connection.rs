//! The async layer: move handshake frames between the sink, the stream and the sans-IO steps,
//! all under one deadline, then hand out the [`Sender`] and [`Receiver`].

use crate::{
    Config, Error, Receiver, Sender,
    frame::{self, HEADER_BYTES},
    handshake::{self, AwaitingReply, CONFIRMATION_BYTES, SessionKeys, hello_bytes},
    record::{CipherKey, Opener, Sealer},
};
use commonware_cryptography::Signer;
use commonware_runtime::{Buf, Clock, Sink, Stream};
use futures::future::{Either, select};
use rand_core::CryptoRng;
use std::{future::Future, pin::pin};

/// Dials `peer` over an already-connected `sink` and `stream` and runs the handshake.
///
/// `context` gives the handshake its time and randomness; nothing is spawned on it, so the
/// connection lives exactly as long as the returned halves.
///
/// # Errors
/// Any handshake error of [`Error`], [`Error::HandshakeTimeout`] when the whole exchange takes
/// longer than `config.handshake_timeout`, or [`Error::InvalidConfig`].
///
/// # Cancel safety
/// Dropping the future abandons the connection; `sink` and `stream` are dropped with it.
pub async fn dial<E, S, O, I>(
    mut context: E,
    config: Config<S>,
    peer: S::PublicKey,
    mut sink: O,
    mut stream: I,
) -> Result<(Sender<O>, Receiver<I>), Error>
where
    E: Clock + CryptoRng,
    S: Signer,
    O: Sink,
    I: Stream,
{
    config.validate()?;
    let deadline = context.current() + config.handshake_timeout;
    let timer = context.sleep_until(deadline);
    let handshake = async {
        let (state, hello) = handshake::start(&config, peer, context.current(), &mut context)?;
        write_frame(&mut sink, &hello).await?;
        let reply = read_frame(&mut stream, AwaitingReply::<S>::reply_bytes()).await?;
        let established = state.receive_reply(&config, &reply, context.current())?;
        write_frame(&mut sink, &established.confirmation).await?;
        Ok(established.keys)
    };
    let keys = within(timer, handshake).await?;
    Ok(split(keys, config.max_message_size, sink, stream))
}

/// Answers a dial over an accepted `sink` and `stream` and runs the handshake.
///
/// `bouncer` receives the identity the dialer claims, before any signature is verified or any
/// key exchange is done, and returns whether to continue. Returns the authenticated identity of
/// the dialer.
///
/// As for [`dial`], nothing is spawned on `context`.
///
/// # Errors
/// [`Error::RejectedByBouncer`], any other handshake error of [`Error`],
/// [`Error::HandshakeTimeout`] (the bouncer's time counts), or [`Error::InvalidConfig`].
///
/// # Cancel safety
/// Dropping the future abandons the connection; `sink` and `stream` are dropped with it.
pub async fn listen<E, S, O, I, B, F>(
    mut context: E,
    config: Config<S>,
    bouncer: B,
    mut sink: O,
    mut stream: I,
) -> Result<(S::PublicKey, Sender<O>, Receiver<I>), Error>
where
    E: Clock + CryptoRng,
    S: Signer,
    O: Sink,
    I: Stream,
    B: FnOnce(S::PublicKey) -> F,
    F: Future<Output = bool>,
{
    config.validate()?;
    let deadline = context.current() + config.handshake_timeout;
    let timer = context.sleep_until(deadline);
    let hello_timer = context.sleep(config.hello_timeout);
    let handshake = async {
        let reading = read_frame(&mut stream, hello_bytes::<S::PublicKey>());
        let hello = match select(pin!(reading), pin!(hello_timer)).await {
            Either::Left((hello, _)) => hello?,
            Either::Right(((), _)) => return Err(Error::HelloTimeout),
        };
        let claimed = handshake::receive_hello(&config, &hello, context.current())?;
        let peer = claimed.peer().clone();
        if !bouncer(peer.clone()).await {
            return Err(Error::RejectedByBouncer);
        }
        let (state, reply) = claimed.respond(&config, context.current(), &mut context)?;
        write_frame(&mut sink, &reply).await?;
        let confirmation = read_frame(&mut stream, CONFIRMATION_BYTES).await?;
        Ok((peer, state.receive_confirmation(&confirmation)?))
    };
    let (peer, keys) = within(timer, handshake).await?;
    let (sender, receiver) = split(keys, config.max_message_size, sink, stream);
    Ok((peer, sender, receiver))
}

/// Runs `work` unless `timer` fires first.
async fn within<T>(
    timer: impl Future<Output = ()>,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match select(pin!(work), pin!(timer)).await {
        Either::Left((result, _)) => result,
        Either::Right(((), _)) => Err(Error::HandshakeTimeout),
    }
}

/// Builds the two halves' record layers from the session keys.
fn split<O: Sink, I: Stream>(
    keys: SessionKeys,
    max_message_size: u32,
    sink: O,
    stream: I,
) -> (Sender<O>, Receiver<I>) {
    let sealer = Sealer::new(CipherKey::new(&keys.send), max_message_size);
    let opener = Opener::new(CipherKey::new(&keys.receive), max_message_size);
    (Sender::new(sealer, sink), Receiver::new(stream, opener))
}

async fn write_frame<O: Sink>(sink: &mut O, body: &[u8]) -> Result<(), Error> {
    sink.send(frame::handshake_frame(body))
        .await
        .map_err(Error::Io)
}

/// Reads one handshake frame whose body must be exactly `expected` bytes; a header announcing
/// any other size is rejected before the body is read.
async fn read_frame<I: Stream>(stream: &mut I, expected: usize) -> Result<Vec<u8>, Error> {
    let mut header = [0u8; HEADER_BYTES];
    stream
        .recv(HEADER_BYTES)
        .await
        .map_err(Error::Io)?
        .copy_to_slice(&mut header);
    frame::check_handshake_header(header, expected)?;
    let body = stream.recv(expected).await.map_err(Error::Io)?;
    Ok(body.coalesce().as_ref().to_vec())
}
