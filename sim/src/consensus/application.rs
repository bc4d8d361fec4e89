//! The application each member runs under simplex: it proposes a payload derived from the
//! view and the parent, verifies that a proposal is exactly that, and tells its
//! [`Observer`] of every proposal and finalization.
//!
//! A payload is `SHA-256(view || parent view || parent payload)`: every honest member computes
//! the same one for a context, so verification is a real check (a payload built on another
//! parent, or for another view, is refused) and needs nothing from the network.

use super::{Observer, Scheme};
use commonware_actor::Feedback;
use commonware_consensus::{
    Automaton, CertifiableAutomaton, Relay, Reporter, Viewable as _,
    simplex::{
        Plan,
        types::{Activity, Context},
    },
};
use commonware_cryptography::{Hasher as _, Sha256, ed25519::PublicKey, sha256::Digest};
use commonware_utils::channel::oneshot;

/// The payload every honest member proposes and accepts for `context`.
pub(crate) fn payload(context: &Context<Digest, PublicKey>) -> Digest {
    let (parent_view, parent) = &context.parent;
    Sha256::hash(&[
        &context.view().get().to_be_bytes(),
        &parent_view.get().to_be_bytes(),
        parent.as_ref(),
    ])
}

/// One member's automaton, relay and reporter.
#[derive(Clone)]
pub(crate) struct Application<O> {
    pub(crate) observer: O,
}

impl<O: Observer> Automaton for Application<O> {
    type Context = Context<Digest, PublicKey>;
    type Digest = Digest;

    async fn propose(&mut self, context: Self::Context) -> oneshot::Receiver<Digest> {
        self.observer.proposed(context.view().get());
        let (sender, receiver) = oneshot::channel();
        let _ = sender.send(payload(&context));
        receiver
    }

    async fn verify(
        &mut self,
        context: Self::Context,
        proposed: Digest,
    ) -> oneshot::Receiver<bool> {
        let (sender, receiver) = oneshot::channel();
        let _ = sender.send(proposed == payload(&context));
        receiver
    }
}

impl<O: Observer> CertifiableAutomaton for Application<O> {}

impl<O: Observer> Relay for Application<O> {
    type Digest = Digest;
    type PublicKey = PublicKey;
    type Plan = Plan<PublicKey>;

    /// Payloads are digests every member derives itself: there is nothing to carry.
    fn broadcast(&mut self, _payload: Digest, _plan: Self::Plan) -> Feedback {
        Feedback::Ok
    }
}

impl<O: Observer> Reporter for Application<O> {
    type Activity = Activity<Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        if let Activity::Finalization(finalization) = activity {
            self.observer
                .finalized(finalization.view().get(), &finalization.proposal.payload);
        }
        Feedback::Ok
    }
}
