//! Async tests that need crate internals: nonce exhaustion through `Sender` and `Receiver`.

use crate::{
    Error, Receiver, Sender,
    record::{CipherKey, NonceCounter, Opener, Sealer},
};
use commonware_runtime::{Runner as _, deterministic, mocks};

const KEY: [u8; 32] = [3; 32];
const LAST: u128 = (1 << 96) - 1;

fn pair(sender_next: u128, receiver_next: u128) -> (Sender<mocks::Sink>, Receiver<mocks::Stream>) {
    let (sink, stream) = mocks::Channel::init();
    let sealer =
        Sealer::new(CipherKey::new(&KEY), 1024).with_nonce(NonceCounter::starting_at(sender_next));
    let opener = Opener::new(CipherKey::new(&KEY), 1024)
        .with_nonce(NonceCounter::starting_at(receiver_next));
    (Sender::new(sealer, sink), Receiver::new(stream, opener))
}

#[test]
fn sender_fails_before_the_counter_would_wrap() {
    deterministic::Runner::seeded(1).start(|_| async move {
        let (mut sender, mut receiver) = pair(LAST - 1, LAST - 1);
        // A batch larger than the nonces left sends nothing.
        let batch = [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()];
        sender.send(b"first".to_vec()).await.unwrap();
        assert!(matches!(
            sender.send_many(batch).await,
            Err(Error::NonceExhausted)
        ));
        assert!(matches!(
            sender.send(b"x".to_vec()).await,
            Err(Error::Unusable)
        ));
        assert_eq!(receiver.recv().await.unwrap(), b"first");
    });
}

#[test]
fn last_nonce_is_usable_and_the_next_send_is_refused() {
    deterministic::Runner::seeded(2).start(|_| async move {
        let (mut sender, mut receiver) = pair(LAST, LAST);
        sender.send(b"last".to_vec()).await.unwrap();
        assert_eq!(receiver.recv().await.unwrap(), b"last");
        assert!(matches!(
            sender.send(b"more".to_vec()).await,
            Err(Error::NonceExhausted)
        ));
    });
}

#[test]
fn close_is_refused_when_no_nonce_is_left() {
    deterministic::Runner::seeded(3).start(|_| async move {
        let (sender, _receiver) = pair(LAST + 1, 0);
        assert!(matches!(sender.close().await, Err(Error::NonceExhausted)));
    });
}

#[test]
fn receiver_with_an_exhausted_counter_refuses_records() {
    deterministic::Runner::seeded(4).start(|_| async move {
        let (mut sender, mut receiver) = pair(0, LAST + 1);
        sender.send(b"x".to_vec()).await.unwrap();
        assert!(matches!(receiver.recv().await, Err(Error::NonceExhausted)));
        assert!(matches!(receiver.recv().await, Err(Error::Unusable)));
    });
}
