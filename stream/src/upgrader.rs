//! palisade's handshake and records behind commonware-stream's [`Upgrader`] trait, so a network
//! written against it (commonware-p2p's `authenticated::lookup` and `discovery`) can run on
//! palisade-stream in place of SakeCups.
//!
//! The trait hands each attempt the namespace and the message limit; [`Palisade`] supplies the
//! rest of a [`Config`]. The caller enforces its own deadline, as the trait asks; palisade's
//! `handshake_timeout` still bounds each attempt from inside. The halves are palisade's own
//! [`Sender`] and [`Receiver`]: a send returns once its bytes are handed to the sink, as the
//! trait's users expect, and nothing is spawned.
//!
//! # Example
//!
//! ```
//! use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
//! use commonware_stream::Upgrader as _;
//! use palisade_stream::upgrader::Palisade;
//!
//! let upgrader = Palisade::recommended(PrivateKey::from_seed(1));
//! assert_eq!(Palisade::<PrivateKey>::MAX_SIZE, palisade_stream::MAX_MESSAGE_SIZE_LIMIT);
//! # let _ = upgrader;
//! ```

use crate::{Config, Error, MAX_MESSAGE_SIZE_LIMIT, Receiver, Sender, dial, listen};
use commonware_cryptography::Signer;
use commonware_runtime::{Clock, IoBufs, Sink, Stream};
use commonware_stream::Upgrader;
use rand_core::CryptoRng;
use std::{future::Future, time::Duration};

/// palisade's handshake as a commonware-stream [`Upgrader`].
#[derive(Clone)]
#[non_exhaustive]
pub struct Palisade<S: Signer> {
    /// Our static identity.
    pub signer: S,
    /// Tolerated clock skew (*must match* on every peer); see [`Config::synchrony_bound`].
    pub synchrony_bound: Duration,
    /// Oldest handshake timestamp accepted (*must match*); see [`Config::max_handshake_age`].
    pub max_handshake_age: Duration,
    /// Deadline palisade applies to one attempt, inside the caller's.
    pub handshake_timeout: Duration,
    /// Deadline for a dialer's Hello, on the listener's side; see [`Config::hello_timeout`].
    pub hello_timeout: Duration,
}

impl<S: Signer> std::fmt::Debug for Palisade<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Palisade")
            .field("public_key", &self.signer.public_key())
            .field("synchrony_bound", &self.synchrony_bound)
            .field("max_handshake_age", &self.max_handshake_age)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("hello_timeout", &self.hello_timeout)
            .finish()
    }
}

impl<S: Signer> Palisade<S> {
    /// The time bounds of [`Config::recommended`].
    pub fn recommended(signer: S) -> Self {
        let config = Config::recommended(signer, b"");
        Self {
            signer: config.signer,
            synchrony_bound: config.synchrony_bound,
            max_handshake_age: config.max_handshake_age,
            handshake_timeout: config.handshake_timeout,
            hello_timeout: config.hello_timeout,
        }
    }

    fn config(self, namespace: &[u8], max_message_size: u32) -> Config<S> {
        assert!(
            max_message_size <= MAX_MESSAGE_SIZE_LIMIT,
            "max_message_size {max_message_size} exceeds {MAX_MESSAGE_SIZE_LIMIT}"
        );
        let mut config = Config::recommended(self.signer, namespace);
        config.max_message_size = max_message_size;
        config.synchrony_bound = self.synchrony_bound;
        config.max_handshake_age = self.max_handshake_age;
        config.handshake_timeout = self.handshake_timeout;
        config.hello_timeout = self.hello_timeout;
        config
    }
}

impl<S: Signer> Upgrader for Palisade<S> {
    const MAX_SIZE: u32 = MAX_MESSAGE_SIZE_LIMIT;
    type PublicKey = S::PublicKey;
    type Error = Error;
    type Sender<I: Stream, O: Sink> = Sender<O>;
    type Receiver<I: Stream, O: Sink> = Receiver<I>;

    fn public_key(&self) -> S::PublicKey {
        self.signer.public_key()
    }

    /// # Panics
    /// If `max_message_size` exceeds [`MAX_MESSAGE_SIZE_LIMIT`].
    fn dial<C, I, O>(
        self,
        context: C,
        namespace: &[u8],
        max_message_size: u32,
        peer: S::PublicKey,
        stream: I,
        sink: O,
    ) -> impl Future<Output = Result<(Sender<O>, Receiver<I>), Error>> + Send
    where
        C: Clock + CryptoRng,
        I: Stream,
        O: Sink,
    {
        let config = self.config(namespace, max_message_size);
        dial(context, config, peer, sink, stream)
    }

    /// # Panics
    /// If `max_message_size` exceeds [`MAX_MESSAGE_SIZE_LIMIT`].
    fn listen<C, I, O, B, F>(
        self,
        context: C,
        namespace: &[u8],
        max_message_size: u32,
        bouncer: B,
        stream: I,
        sink: O,
    ) -> impl Future<Output = Result<(S::PublicKey, Sender<O>, Receiver<I>), Error>> + Send
    where
        C: Clock + CryptoRng,
        I: Stream,
        O: Sink,
        B: FnOnce(S::PublicKey) -> F + Send,
        F: Future<Output = bool> + Send,
    {
        let config = self.config(namespace, max_message_size);
        listen(context, config, bouncer, sink, stream)
    }
}

impl<O: Sink> commonware_stream::Sender for Sender<O> {
    type Error = Error;

    fn send(
        &mut self,
        message: impl Into<IoBufs> + Send,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        Sender::send(self, message)
    }

    fn send_many<M>(&mut self, messages: M) -> impl Future<Output = Result<(), Error>> + Send
    where
        M: IntoIterator + Send,
        M::Item: Into<IoBufs> + Send,
        M::IntoIter: Send,
    {
        Sender::send_many(self, messages)
    }
}

impl<I: Stream> commonware_stream::Receiver for Receiver<I> {
    type Error = Error;

    async fn recv(&mut self) -> Result<IoBufs, Error> {
        Receiver::recv(self).await.map(IoBufs::from)
    }
}
