//! The listener's side: screen a Hello cheaply, answer it, check the Confirmation.

use super::{
    ephemeral::EphemeralKey,
    hello::{self, HelloView, Role, hello_bytes},
    keys::{KeySchedule, SessionKeys, check_confirmation, transcript_hash},
    unix_ms,
};
use crate::{Config, Error};
use commonware_codec::{Copying, DecodeExt};
use commonware_cryptography::Signer;
use rand_core::CryptoRng;
use std::time::SystemTime;

/// Screens a dialer's Hello with cheap checks only: size, namespace tag, recipient, sender
/// key, timestamp.
///
/// No signature is verified and no key exchange is done here, so an attacker who is not in
/// the peer set costs us almost nothing. The caller asks its bouncer about
/// [`ClaimedHello::peer`] before calling [`ClaimedHello::respond`].
///
/// # Errors
/// [`Error::InvalidFrameSize`], [`Error::NamespaceMismatch`], [`Error::WrongRecipient`],
/// [`Error::InvalidPeerKey`],
/// [`Error::OwnKey`], [`Error::TimestampTooOld`] or [`Error::TimestampInFuture`].
pub fn receive_hello<S: Signer>(
    config: &Config<S>,
    hello: &[u8],
    now: SystemTime,
) -> Result<ClaimedHello<S>, Error> {
    if hello.len() != hello_bytes::<S::PublicKey>() {
        return Err(Error::InvalidFrameSize {
            size: hello.len() as u32,
        });
    }
    let own_key = config.signer.public_key();
    let view = HelloView::split::<S::PublicKey>(hello);
    view.check_namespace(&config.namespace)?;
    if view.recipient != own_key.as_ref() {
        return Err(Error::WrongRecipient);
    }
    if view.sender == own_key.as_ref() {
        return Err(Error::OwnKey);
    }
    let peer = S::PublicKey::decode(Copying(view.sender)).map_err(|_| Error::InvalidPeerKey)?;
    hello::check_timestamp(config, view.timestamp_ms, unix_ms(now))?;
    Ok(ClaimedHello {
        peer,
        hello: hello.to_vec(),
    })
}

/// A Hello that passed the cheap checks; its sender is claimed, not yet proven.
pub struct ClaimedHello<S: Signer> {
    peer: S::PublicKey,
    hello: Vec<u8>,
}

impl<S: Signer> std::fmt::Debug for ClaimedHello<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimedHello")
            .field("claimed_peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl<S: Signer> ClaimedHello<S> {
    /// The identity the dialer claims. Not authenticated until [`respond`](Self::respond) succeeds.
    pub fn peer(&self) -> &S::PublicKey {
        &self.peer
    }

    /// Verifies the dialer's signature, does the key exchange, and builds the reply
    /// (our Hello followed by our Confirmation).
    ///
    /// # Errors
    /// [`Error::InvalidSignature`] or [`Error::NonContributory`].
    pub fn respond<R: CryptoRng + ?Sized>(
        self,
        config: &Config<S>,
        now: SystemTime,
        rng: &mut R,
    ) -> Result<(AwaitingConfirmation, Vec<u8>), Error> {
        let view = HelloView::split::<S::PublicKey>(&self.hello);
        view.verify(&self.peer, &config.namespace, Role::Dialer, None)?;

        let ephemeral = EphemeralKey::generate(rng);
        let ephemeral_public = ephemeral.public();
        let shared = ephemeral.agree(&view.ephemeral)?;
        let binding = blake3::hash(&self.hello);
        let mut reply = hello::encode(
            config,
            Role::Listener,
            &self.peer,
            &ephemeral_public,
            unix_ms(now),
            Some(&binding),
        );
        let transcript = transcript_hash(&config.namespace, &self.hello, &reply);
        let schedule = KeySchedule::derive(&shared, transcript);
        reply.extend_from_slice(schedule.listener_confirmation().as_bytes());
        Ok((AwaitingConfirmation { schedule }, reply))
    }
}

/// The listener after replying, waiting for the dialer's Confirmation.
pub struct AwaitingConfirmation {
    schedule: KeySchedule,
}

impl std::fmt::Debug for AwaitingConfirmation {
    /// Nothing of the key schedule is ever printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwaitingConfirmation")
            .finish_non_exhaustive()
    }
}

impl AwaitingConfirmation {
    /// Checks the dialer's Confirmation; on success the handshake is complete.
    ///
    /// # Errors
    /// [`Error::InvalidConfirmation`].
    pub fn receive_confirmation(self, confirmation: &[u8]) -> Result<SessionKeys, Error> {
        check_confirmation(self.schedule.dialer_confirmation(), confirmation)?;
        Ok(self.schedule.into_listener_keys())
    }
}
