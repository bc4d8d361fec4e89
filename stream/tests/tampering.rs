//! A man in the middle on the dialer-to-listener path: whatever it changes in the record stream,
//! the listener's receiver fails and stays failed; it can never forge a clean close.
//! (Every single-bit flip of a record is covered exhaustively by the record layer's unit tests.)

mod common;

use common::*;
use commonware_runtime::{Runner as _, deterministic};
use palisade_stream::Error;

/// Frame numbers on the dialer-to-listener path: 0 Hello, 1 Confirmation, then records.
const FIRST_RECORD: usize = 2;

async fn send_three(c: &mut Connected) {
    for message in [&b"first"[..], b"second", b"third"] {
        c.dialer_sender.send(message.to_vec()).await.unwrap();
    }
}

#[test]
fn flipped_bits_in_a_record_fail_decryption_and_end_the_receiver() {
    for (byte, bit) in [(4, 0), (9, 3), (20, 7)] {
        deterministic::Runner::seeded(1).start(move |context| async move {
            let mut c = connect_through(&context, move |index, mut frame| {
                if index == FIRST_RECORD {
                    frame[byte] ^= 1 << bit;
                }
                Relay::Forward(vec![frame])
            })
            .await;
            send_three(&mut c).await;
            assert!(matches!(
                c.listener_receiver.recv().await,
                Err(Error::DecryptionFailed)
            ));
            assert!(matches!(
                c.listener_receiver.recv().await,
                Err(Error::Unusable)
            ));
        });
    }
}

#[test]
fn replayed_record_is_rejected() {
    deterministic::Runner::seeded(2).start(|context| async move {
        let mut c = connect_through(&context, |index, frame| {
            if index == FIRST_RECORD {
                return Relay::Forward(vec![frame.clone(), frame]);
            }
            Relay::Forward(vec![frame])
        })
        .await;
        send_three(&mut c).await;
        assert_eq!(c.listener_receiver.recv().await.unwrap(), b"first");
        assert!(matches!(
            c.listener_receiver.recv().await,
            Err(Error::DecryptionFailed)
        ));
    });
}

#[test]
fn reordered_records_are_rejected() {
    deterministic::Runner::seeded(3).start(|context| async move {
        let mut held = None;
        let mut c = connect_through(&context, move |index, frame| match index {
            i if i == FIRST_RECORD => {
                held = Some(frame);
                Relay::Forward(vec![])
            }
            i if i == FIRST_RECORD + 1 => Relay::Forward(vec![frame, held.take().unwrap()]),
            _ => Relay::Forward(vec![frame]),
        })
        .await;
        send_three(&mut c).await;
        assert!(matches!(
            c.listener_receiver.recv().await,
            Err(Error::DecryptionFailed)
        ));
    });
}

#[test]
fn dropped_record_is_detected_at_the_next_one() {
    deterministic::Runner::seeded(4).start(|context| async move {
        let mut c = connect_through(&context, |index, frame| {
            Relay::Forward(if index == FIRST_RECORD {
                vec![]
            } else {
                vec![frame]
            })
        })
        .await;
        send_three(&mut c).await;
        assert!(matches!(
            c.listener_receiver.recv().await,
            Err(Error::DecryptionFailed)
        ));
    });
}

#[test]
fn length_prefix_over_the_limit_is_rejected_without_reading_a_body() {
    deterministic::Runner::seeded(5).start(|context| async move {
        let mut c = connect_through(&context, |index, frame| {
            if index == FIRST_RECORD {
                // Only a header announcing one byte more than the limit allows; no body follows,
                // and the relay keeps the connection open.
                let announced = MAX_MESSAGE + 16 + 1;
                return Relay::Forward(vec![announced.to_be_bytes().to_vec()]);
            }
            Relay::Forward(vec![frame])
        })
        .await;
        c.dialer_sender.send(b"x".to_vec()).await.unwrap();
        let result = c.listener_receiver.recv().await;
        assert!(matches!(result, Err(Error::MessageTooLarge { size, max: MAX_MESSAGE }) if size == MAX_MESSAGE as u64 + 1));
        assert!(matches!(c.listener_receiver.recv().await, Err(Error::Unusable)));
    });
}

#[test]
fn cutting_the_connection_is_not_a_clean_close() {
    deterministic::Runner::seeded(6).start(|context| async move {
        let mut c = connect_through(&context, |index, frame| {
            if index == FIRST_RECORD + 1 {
                return Relay::Cut;
            }
            Relay::Forward(vec![frame])
        })
        .await;
        send_three(&mut c).await;
        c.dialer_sender.close().await.unwrap();
        assert_eq!(c.listener_receiver.recv().await.unwrap(), b"first");
        assert!(matches!(
            c.listener_receiver.recv().await,
            Err(Error::Io(_))
        ));
    });
}

#[test]
fn setting_the_close_bit_on_a_record_cannot_forge_a_close() {
    deterministic::Runner::seeded(7).start(|context| async move {
        let mut c = connect_through(&context, |index, mut frame| {
            if index == FIRST_RECORD {
                frame[0] |= 0x80;
            }
            Relay::Forward(vec![frame])
        })
        .await;
        c.dialer_sender.send(Vec::<u8>::new()).await.unwrap();
        // An empty message has the same length as a close record, so only the tag tells them apart.
        assert!(matches!(
            c.listener_receiver.recv().await,
            Err(Error::DecryptionFailed)
        ));
    });
}

#[test]
fn relayed_connection_without_tampering_works() {
    deterministic::Runner::seeded(8).start(|context| async move {
        let mut c = connect_through(&context, |_, frame| Relay::Forward(vec![frame])).await;
        send_three(&mut c).await;
        c.dialer_sender.close().await.unwrap();
        for want in [&b"first"[..], b"second", b"third"] {
            assert_eq!(c.listener_receiver.recv().await.unwrap(), want);
        }
        assert!(matches!(
            c.listener_receiver.recv().await,
            Err(Error::Closed)
        ));
    });
}
