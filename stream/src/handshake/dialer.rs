//! The dialer's side: send a Hello, verify the reply, send a Confirmation.

use super::{
    ephemeral::EphemeralKey,
    hello::{self, HelloView, Role, hello_bytes},
    keys::{CONFIRMATION_BYTES, KeySchedule, SessionKeys, check_confirmation, transcript_hash},
    unix_ms,
};
use crate::{Config, Error};
use commonware_cryptography::Signer;
use rand_core::CryptoRng;
use std::time::SystemTime;

/// Starts a handshake towards `peer`: returns the state to keep and the Hello to send.
///
/// # Errors
/// [`Error::SelfDial`] when `peer` is our own key.
pub fn start<S: Signer, R: CryptoRng + ?Sized>(
    config: &Config<S>,
    peer: S::PublicKey,
    now: SystemTime,
    rng: &mut R,
) -> Result<(AwaitingReply<S>, Vec<u8>), Error> {
    if peer == config.signer.public_key() {
        return Err(Error::SelfDial);
    }
    let ephemeral = EphemeralKey::generate(rng);
    let hello = hello::encode(
        config,
        Role::Dialer,
        &peer,
        &ephemeral.public(),
        unix_ms(now),
        None,
    );
    let state = AwaitingReply {
        peer,
        ephemeral,
        hello: hello.clone(),
        _signer: std::marker::PhantomData,
    };
    Ok((state, hello))
}

/// The dialer after sending its Hello, waiting for the listener's Hello + Confirmation.
pub struct AwaitingReply<S: Signer> {
    peer: S::PublicKey,
    ephemeral: EphemeralKey,
    hello: Vec<u8>,
    _signer: std::marker::PhantomData<S>,
}

impl<S: Signer> std::fmt::Debug for AwaitingReply<S> {
    /// The peer only: the ephemeral secret is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwaitingReply")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// A dialer whose handshake succeeded: its keys and the Confirmation still to send.
#[derive(Debug)]
pub struct Established {
    /// The traffic keys.
    pub keys: SessionKeys,
    /// The final message of the handshake, to send to the listener.
    pub confirmation: Vec<u8>,
}

impl<S: Signer> AwaitingReply<S> {
    /// Size in bytes of the reply this state accepts.
    pub const fn reply_bytes() -> usize {
        hello_bytes::<S::PublicKey>() + CONFIRMATION_BYTES
    }

    /// Verifies the listener's reply and derives the session keys.
    ///
    /// Checks run cheapest first: size, recipient, sender, timestamp, then the signature, the
    /// key exchange and the listener's confirmation.
    ///
    /// # Errors
    /// [`Error::InvalidFrameSize`], [`Error::WrongRecipient`], [`Error::UnexpectedPeer`],
    /// [`Error::TimestampTooOld`], [`Error::TimestampInFuture`], [`Error::InvalidSignature`],
    /// [`Error::NonContributory`] or [`Error::InvalidConfirmation`].
    pub fn receive_reply(
        self,
        config: &Config<S>,
        reply: &[u8],
        now: SystemTime,
    ) -> Result<Established, Error> {
        if reply.len() != Self::reply_bytes() {
            return Err(Error::InvalidFrameSize {
                size: reply.len() as u32,
            });
        }
        let (listener_hello, confirmation) = reply.split_at(hello_bytes::<S::PublicKey>());
        let view = HelloView::split::<S::PublicKey>(listener_hello);
        view.check_namespace(&config.namespace)?;
        if view.recipient != config.signer.public_key().as_ref() {
            return Err(Error::WrongRecipient);
        }
        if view.sender != self.peer.as_ref() {
            return Err(Error::UnexpectedPeer);
        }
        hello::check_timestamp(config, view.timestamp_ms, unix_ms(now))?;
        let binding = blake3::hash(&self.hello);
        view.verify(
            &self.peer,
            &config.namespace,
            Role::Listener,
            Some(&binding),
        )?;

        let shared = self.ephemeral.agree(&view.ephemeral)?;
        let transcript = transcript_hash(&config.namespace, &self.hello, listener_hello);
        let schedule = KeySchedule::derive(&shared, transcript);
        check_confirmation(schedule.listener_confirmation(), confirmation)?;
        let confirmation = schedule.dialer_confirmation().as_bytes().to_vec();
        Ok(Established {
            keys: schedule.into_dialer_keys(),
            confirmation,
        })
    }
}
