//! Async tests that need crate internals: nonce exhaustion through `Sender` and `Receiver`, and
//! messages sealed in place.

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

/// A sender with a 1 MiB limit on a raw in-memory connection, and the raw stream.
fn raw_sender() -> (Sender<mocks::Sink>, mocks::Stream) {
    let (sink, stream) = mocks::Channel::init_with_buffer_size(1 << 20);
    let sealer = Sealer::new(CipherKey::new(&KEY), 1 << 20);
    (Sender::new(sealer, sink), stream)
}

#[test]
fn a_message_sealed_in_place_is_the_same_record_as_a_copied_one() {
    deterministic::Runner::seeded(5).start(|_| async move {
        use commonware_runtime::{IoBuf, Stream as _};
        let message: Vec<u8> = (0..crate::IN_PLACE_MIN_BYTES * 2)
            .map(|i| (i % 251) as u8)
            .collect();
        let record = crate::HEADER_BYTES + message.len() + 16;
        // The only handle: sealed in place.
        let (mut owner, mut owned_wire) = raw_sender();
        owner.send(message.clone()).await.unwrap();
        // A handle the caller keeps a clone of: copied.
        let (mut sharer, mut shared_wire) = raw_sender();
        let shared = IoBuf::from(message.clone());
        let kept = shared.clone();
        sharer.send(shared).await.unwrap();
        assert_eq!(
            kept.as_ref(),
            &message[..],
            "a shared buffer is left as it was"
        );
        let owned = owned_wire.recv(record).await.unwrap().coalesce();
        let copied = shared_wire.recv(record).await.unwrap().coalesce();
        assert_eq!(owned.as_ref(), copied.as_ref());
    });
}

#[test]
fn a_batch_of_owned_shared_and_small_messages_arrives_in_order() {
    deterministic::Runner::seeded(6).start(|_| async move {
        use commonware_runtime::{IoBuf, IoBufs};
        // Room for the whole batch, so the send returns before anything is read.
        let (sink, stream) = mocks::Channel::init_with_buffer_size(1 << 20);
        let sender = Sender::new(Sealer::new(CipherKey::new(&KEY), 1 << 20), sink);
        let mut receiver = Receiver::new(stream, Opener::new(CipherKey::new(&KEY), 1 << 20));
        let mut sender = sender;
        let big = |fill: u8| vec![fill; crate::IN_PLACE_MIN_BYTES + usize::from(fill)];
        let shared = IoBuf::from(big(2));
        let _kept = shared.clone();
        let batch: Vec<IoBufs> = vec![
            big(1).into(),
            shared.into(),
            b"small".to_vec().into(),
            big(3).into(),
            big(4).into(),
            // In two pieces: copied.
            IoBufs::from(vec![IoBuf::from(big(5)), IoBuf::from(b"!".to_vec())]),
        ];
        sender.send_many(batch).await.unwrap();
        let mut last = big(5);
        last.push(b'!');
        let expected = [big(1), big(2), b"small".to_vec(), big(3), big(4), last];
        for (index, expected) in expected.iter().enumerate() {
            let message = receiver.recv().await.unwrap();
            assert_eq!(message.as_ref(), &expected[..], "message {index}");
        }
    });
}
