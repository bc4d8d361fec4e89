//! An authenticated, encrypted, ordered message stream between two peers whose static
//! identities are known in advance.
//!
//! [`dial`] and [`listen`] turn a raw connection (a `commonware_runtime` [`Sink`] and
//! [`Stream`]: a TCP socket under the tokio runtime, an in-memory pipe under the deterministic
//! simulator) into a [`Sender`] and a [`Receiver`] of messages.
//!
//! # Design
//!
//! The protocol lives in plain values that never await: [`handshake`] (three steps, each
//! consuming the state before it) and the record layer (sealing and opening of frames). The
//! async functions only move frames between the connection and those steps, under one deadline.
//!
//! ## Handshake
//!
//! Three messages, each a frame with a fixed, exact size (see [`handshake::hello_bytes`]):
//!
//! 1. dialer -> listener: **Hello** = namespace tag, recipient static key, sender static key,
//!    sender ephemeral X25519 key, timestamp (ms since the UNIX epoch, from the runtime
//!    [`Clock`]), signature.
//! 2. listener -> dialer: the listener's **Hello** followed by its **Confirmation**.
//! 3. dialer -> listener: the dialer's **Confirmation**.
//!
//! The namespace tag is 8 bytes derived from the application namespace with BLAKE3; a Hello
//! with another tag is refused as [`Error::NamespaceMismatch`] before anything else is
//! checked, so a peer configured for another network is told apart from a forgery (the tag is
//! a hint: copying it gains nothing, since the signature covers the namespace).
//!
//! Each Hello is signed with the sender's static key under the *hello namespace*: the
//! application namespace followed by [`handshake::HELLO_NAMESPACE_SUFFIX`] (the [`Signer`]
//! encodes the namespace unambiguously, length first), so no signature an application makes
//! with the same key under its own namespace can pass for a Hello. The signed bytes are a
//! domain label, the role (dialer or listener), the tag, both static keys, the ephemeral key
//! and the timestamp. The listener's
//! signature also covers the hash of the dialer's Hello it answers, so a reply cannot be
//! spliced into another session.
//!
//! The key schedule hashes the namespace and both Hellos into a transcript, combines it with
//! the X25519 secret of the two ephemeral keys (an all-zero secret is rejected) and derives,
//! with BLAKE3 under four distinct contexts, the traffic keys dialer->listener and
//! listener->dialer and one confirmation key per direction. A Confirmation is the keyed hash of
//! the transcript under its sender's confirmation key: it proves the sender derived the same
//! keys over the same transcript.
//!
//! ## Records
//!
//! After the handshake each message travels as a frame: a 4-byte big-endian header (top bit:
//! close record; 31 bits: body length) and `ChaCha20-Poly1305(message) || tag`, with the header
//! as associated data. Each direction has its own key and a 96-bit counter nonce that starts at 0
//! and is never sent. [`Sender::close`] sends an authenticated close record, which the peer's
//! [`Receiver::recv`] reports as [`Error::Closed`].
//!
//! ## Write path
//!
//! The [`Sender`] owns the sink. [`Sender::send`] and [`Sender::send_many`] seal their
//! messages in the caller's task (copied into one buffer, or, for a message of at least
//! [`IN_PLACE_MIN_BYTES`] handed over as the only handle to its buffer, where it lies) and
//! hand them to the sink in one write before returning, so a send that returned `Ok` has given its bytes to the connection (for TCP, to
//! the kernel) and no later event in the program, such as the owning task ending, can lose
//! them. Nothing is spawned: [`dial`] and [`listen`] need only a clock and an RNG, the same as
//! commonware-stream's [`Upgrader`](commonware_stream::Upgrader) contract, which
//! [`upgrader::Palisade`] implements. A caller that sends many small messages batches them with
//! [`Sender::send_many`], one write for the whole batch.
//!
//! # Security
//!
//! ## Requirements
//! - Each peer knows the static public key of the peer it dials; the listener's bouncer admits
//!   only keys it knows. (A bouncer that admits any key authenticates nothing about who the
//!   dialer is: anyone can make a key.) Keys are honestly generated: ed25519 verification here
//!   follows ZIP-215, under which a small-order public key verifies forged signatures, so such
//!   a key must never be in a peer set.
//! - Both peers use the same namespace, and their clocks differ by less than `synchrony_bound`.
//! - The runtime context's RNG is a cryptographically secure generator.
//!
//! ## Provided
//! - **Mutual authentication**: both Hellos are signed and name their recipient; a Hello for
//!   someone else, from our own key, or towards ourselves is rejected.
//! - **Confidentiality, integrity and order**: every record is authenticated under a counter
//!   nonce, so tampered, replayed, dropped or reordered records fail, and the receiver stays
//!   failed.
//! - **Forward secrecy**: traffic keys come from ephemeral X25519 keys that are wiped after use.
//!   Leaking a static key later does not reveal past traffic.
//! - **Session binding**: keys depend on the whole transcript and namespace; a reflected
//!   message or a reply from another session fails.
//! - **Bounded work before authentication**: every handshake frame has one exact size, checked
//!   before the body is read; the listener checks the recipient, the timestamp and asks the
//!   bouncer before any signature verification or key exchange; one deadline covers the whole
//!   handshake.
//! - **Bounded memory**: a record length above `max_message_size` is rejected before any
//!   allocation or body read; the send queue is bounded. A peer (or anyone able to inject
//!   bytes into the connection) can still make the receiver allocate up to
//!   `max_message_size` for one record before its tag is checked: size the limit accordingly.
//! - **Authenticated close**: a clean end ([`Error::Closed`]) cannot be forged by cutting the
//!   connection; a cut surfaces as [`Error::Io`].
//! - **Nothing leaks to the peer**: no failure reason is ever sent; a failed side just drops
//!   the connection.
//! - **Secrets are wiped**: ephemeral scalars, the shared secret and all derived keys live in
//!   heap memory that is zeroized on drop, and hashers that saw them are wiped after use
//!   (best effort: copies the compiler makes in registers or on the stack are out of reach).
//!
//! ## Not provided
//! - Hiding identities: static public keys travel in the clear.
//! - Replay protection for a Hello within its timestamp window (`max_handshake_age` into the
//!   past plus `synchrony_bound` into the future): a replayed Hello that the bouncer admits costs
//!   the listener a signature check, a key exchange and a signature, and earns the replayer a
//!   signed reply, but the replayer cannot finish the handshake or read anything without the
//!   dialer's ephemeral secret.
//! - Protection against traffic analysis (message sizes and timing are visible).
//!
//! # Example
//!
//! ```
//! use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
//! use commonware_runtime::{Runner as _, Spawner as _, Supervisor as _, deterministic, mocks};
//! use palisade_stream::{Config, Error, dial, listen};
//!
//! deterministic::Runner::seeded(7).start(|context| async move {
//!     let alice = PrivateKey::from_seed(1);
//!     let bob = PrivateKey::from_seed(2);
//!     let (alice_sink, bob_stream) = mocks::Channel::init();
//!     let (bob_sink, alice_stream) = mocks::Channel::init();
//!
//!     let bob_connection = context.child("bob_connection");
//!     let bob_config = Config::recommended(bob.clone(), b"my-app");
//!     let known = alice.public_key();
//!     let listener = context.child("bob").spawn(move |_| async move {
//!         let bouncer = move |claimed| async move { claimed == known };
//!         listen(bob_connection, bob_config, bouncer, bob_sink, bob_stream).await
//!     });
//!     let alice_config = Config::recommended(alice.clone(), b"my-app");
//!     let (mut sender, mut receiver) =
//!         dial(context, alice_config, bob.public_key(), alice_sink, alice_stream).await.unwrap();
//!     let (peer, mut bob_sender, mut bob_receiver) = listener.await.unwrap().unwrap();
//!     assert_eq!(peer, alice.public_key());
//!
//!     sender.send(b"hello bob".to_vec()).await.unwrap();
//!     assert_eq!(bob_receiver.recv().await.unwrap(), b"hello bob");
//!     bob_sender.send(b"hello alice".to_vec()).await.unwrap();
//!     assert_eq!(receiver.recv().await.unwrap(), b"hello alice");
//!     sender.close().await.unwrap();
//!     assert!(matches!(bob_receiver.recv().await, Err(Error::Closed)));
//! });
//! ```
//!
//! [`Sink`]: commonware_runtime::Sink
//! [`Stream`]: commonware_runtime::Stream
//! [`Clock`]: commonware_runtime::Clock
//! [`Signer`]: commonware_cryptography::Signer

mod config;
mod connection;
mod error;
mod frame;
pub mod handshake;
mod receiver;
mod record;
mod sender;
pub mod upgrader;

#[cfg(test)]
mod tests;

/// The crates whose types this API names (signers and keys, sinks, streams, clocks),
/// re-exported so that a user needs no version of their own.
pub use commonware_cryptography as cryptography;
pub use commonware_runtime as runtime;

pub use config::{Config, MAX_MESSAGE_SIZE_LIMIT};
pub use connection::{dial, listen};
pub use error::Error;
pub use frame::HEADER_BYTES;
pub use receiver::Receiver;
pub use sender::{IN_PLACE_MIN_BYTES, Sender};

/// Bytes a record adds to a message on the wire: the frame header and the authentication tag.
pub const RECORD_OVERHEAD_BYTES: usize = HEADER_BYTES + record::TAG_BYTES;
