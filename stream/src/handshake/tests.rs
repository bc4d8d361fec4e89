//! Sans-IO tests of the handshake: every rejection path with its exact error, and a golden test
//! pinning the wire bytes of one seeded handshake.

use super::{
    AwaitingConfirmation, AwaitingReply, CONFIRMATION_BYTES, SessionKeys, hello, hello::Role,
    hello_bytes, receive_hello, start,
};
use crate::{Config, Error};
use commonware_cryptography::{Signer as _, ed25519};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type Key = ed25519::PrivateKey;
type Pk = ed25519::PublicKey;

const NAMESPACE: &[u8] = b"palisade-test";
const HELLO: usize = hello_bytes::<Pk>();
const SIGNATURE: usize = 64;

fn config(seed: u64) -> Config<Key> {
    Config::recommended(Key::from_seed(seed), NAMESPACE)
}

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

const NOW: u64 = 1_700_000_000_000;

struct Run {
    dialer_hello: Vec<u8>,
    reply: Vec<u8>,
    confirmation: Vec<u8>,
    dialer_keys: SessionKeys,
    listener_keys: SessionKeys,
}

/// A full successful handshake between `config(1)` (dialer) and `config(2)` (listener).
fn handshake(dialer: &Config<Key>, listener: &Config<Key>) -> Result<Run, Error> {
    let mut rng = rng(99);
    let (state, dialer_hello) = start(dialer, listener.signer.public_key(), at(NOW), &mut rng)?;
    let claimed = receive_hello(listener, &dialer_hello, at(NOW))?;
    assert_eq!(claimed.peer(), &dialer.signer.public_key());
    let (awaiting, reply) = claimed.respond(listener, at(NOW), &mut rng)?;
    let established = state.receive_reply(dialer, &reply, at(NOW))?;
    let listener_keys = awaiting.receive_confirmation(&established.confirmation)?;
    Ok(Run {
        dialer_hello,
        reply,
        confirmation: established.confirmation,
        dialer_keys: established.keys,
        listener_keys,
    })
}

/// The first two messages of a handshake, with the RNG seeded by `seed`.
struct Exchange {
    state: AwaitingReply<Key>,
    awaiting: AwaitingConfirmation,
    reply: Vec<u8>,
}

fn exchange(dialer: &Config<Key>, listener: &Config<Key>, seed: u64) -> Exchange {
    let mut rng = rng(seed);
    let (state, hello) = start(dialer, listener.signer.public_key(), at(NOW), &mut rng).unwrap();
    let claimed = receive_hello(listener, &hello, at(NOW)).unwrap();
    let (awaiting, reply) = claimed.respond(listener, at(NOW), &mut rng).unwrap();
    Exchange {
        state,
        awaiting,
        reply,
    }
}

fn flip(bytes: &[u8], byte: usize, bit: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[byte] ^= 1 << bit;
    out
}

#[test]
fn handshake_derives_matching_keys_per_direction() {
    let run = handshake(&config(1), &config(2)).unwrap();
    assert_eq!(run.dialer_hello.len(), HELLO);
    assert_eq!(run.reply.len(), HELLO + CONFIRMATION_BYTES);
    assert_eq!(run.confirmation.len(), CONFIRMATION_BYTES);
    assert_eq!(*run.dialer_keys.send, *run.listener_keys.receive);
    assert_eq!(*run.dialer_keys.receive, *run.listener_keys.send);
    assert_ne!(*run.dialer_keys.send, *run.dialer_keys.receive);
}

#[test]
fn handshakes_with_fresh_ephemerals_derive_different_keys() {
    let (dialer, listener) = (config(1), config(2));
    let mut rng = rng(5);
    let mut keys = Vec::new();
    for _ in 0..2 {
        let (state, hello) =
            start(&dialer, listener.signer.public_key(), at(NOW), &mut rng).unwrap();
        let claimed = receive_hello(&listener, &hello, at(NOW)).unwrap();
        let (_, reply) = claimed.respond(&listener, at(NOW), &mut rng).unwrap();
        keys.push(
            *state
                .receive_reply(&dialer, &reply, at(NOW))
                .unwrap()
                .keys
                .send,
        );
    }
    assert_ne!(keys[0], keys[1]);
}

#[test]
fn dialing_own_key_is_refused() {
    let dialer = config(1);
    let result = start(&dialer, dialer.signer.public_key(), at(NOW), &mut rng(0));
    assert!(matches!(result, Err(Error::SelfDial)));
}

#[test]
fn hello_for_another_recipient_is_rejected() {
    let (dialer, listener, other) = (config(1), config(2), config(3));
    let (_, hello) = start(&dialer, other.signer.public_key(), at(NOW), &mut rng(0)).unwrap();
    assert!(matches!(
        receive_hello(&listener, &hello, at(NOW)),
        Err(Error::WrongRecipient)
    ));
}

#[test]
fn hello_signed_with_the_receivers_own_key_is_rejected() {
    let listener = config(2);
    let own = listener.signer.public_key();
    let hello = hello::encode(&listener, Role::Dialer, &own, &[9; 32], NOW, None);
    assert!(matches!(
        receive_hello(&listener, &hello, at(NOW)),
        Err(Error::OwnKey)
    ));
}

#[test]
fn hello_with_undecodable_sender_key_is_rejected() {
    let (dialer, listener) = (config(1), config(2));
    let (_, hello) = start(&dialer, listener.signer.public_key(), at(NOW), &mut rng(0)).unwrap();
    let sender = 40..72;
    // Find a 32-byte string that is not a valid ed25519 point encoding.
    let invalid = (0..=255u8)
        .map(|b| [b; 32])
        .find(|candidate| {
            use commonware_codec::DecodeExt;
            Pk::decode(commonware_codec::Copying(candidate)).is_err()
        })
        .expect("some constant string is not a curve point");
    let mut tampered = hello.clone();
    tampered[sender].copy_from_slice(&invalid);
    assert!(matches!(
        receive_hello(&listener, &tampered, at(NOW)),
        Err(Error::InvalidPeerKey)
    ));
}

#[test]
fn hello_of_wrong_size_is_rejected() {
    let (dialer, listener) = (config(1), config(2));
    let (_, hello) = start(&dialer, listener.signer.public_key(), at(NOW), &mut rng(0)).unwrap();
    for len in [0, HELLO - 1] {
        let result = receive_hello(&listener, &hello[..len], at(NOW));
        assert!(matches!(result, Err(Error::InvalidFrameSize { size }) if size as usize == len));
    }
    let mut long = hello.clone();
    long.push(0);
    assert!(matches!(
        receive_hello(&listener, &long, at(NOW)),
        Err(Error::InvalidFrameSize { .. })
    ));
}

#[test]
fn timestamps_outside_the_window_are_rejected_and_bounds_are_inclusive() {
    let (dialer, listener) = (config(1), config(2));
    let age = listener.max_handshake_age.as_millis() as u64;
    let bound = listener.synchrony_bound.as_millis() as u64;
    let cases = [
        (NOW - age - 1, Some("old")),
        (NOW - age, None),
        (NOW + bound, None),
        (NOW + bound + 1, Some("future")),
    ];
    for (sent_at, expected) in cases {
        let (_, hello) = start(
            &dialer,
            listener.signer.public_key(),
            at(sent_at),
            &mut rng(0),
        )
        .unwrap();
        let result = receive_hello(&listener, &hello, at(NOW));
        match expected {
            None => assert!(result.is_ok(), "timestamp {sent_at} should pass"),
            Some("old") => assert!(matches!(result, Err(Error::TimestampTooOld))),
            Some(_) => assert!(matches!(result, Err(Error::TimestampInFuture))),
        }
    }
}

#[test]
fn timestamp_window_saturates_near_the_epoch() {
    let (dialer, listener) = (config(1), config(2));
    let (_, hello) = start(&dialer, listener.signer.public_key(), at(0), &mut rng(0)).unwrap();
    assert!(receive_hello(&listener, &hello, at(1)).is_ok());
}

#[test]
fn listener_reply_with_stale_or_future_timestamp_is_rejected() {
    let (dialer, listener) = (config(1), config(2));
    let age = dialer.max_handshake_age.as_millis() as u64;
    let bound = dialer.synchrony_bound.as_millis() as u64;
    for (reply_at, old) in [(NOW - age - 1, true), (NOW + bound + 1, false)] {
        let mut rng = rng(3);
        let (state, hello) =
            start(&dialer, listener.signer.public_key(), at(NOW), &mut rng).unwrap();
        let claimed = receive_hello(&listener, &hello, at(NOW)).unwrap();
        let (_, reply) = claimed.respond(&listener, at(reply_at), &mut rng).unwrap();
        let result = state.receive_reply(&dialer, &reply, at(NOW));
        if old {
            assert!(matches!(result, Err(Error::TimestampTooOld)));
        } else {
            assert!(matches!(result, Err(Error::TimestampInFuture)));
        }
    }
}

#[test]
fn every_bit_flip_in_signed_hello_fields_fails_the_signature() {
    let (dialer, listener) = (config(1), config(2));
    let (_, hello) = start(&dialer, listener.signer.public_key(), at(NOW), &mut rng(0)).unwrap();
    // Ephemeral key, the last byte of the timestamp (a small change stays in the
    // window), and the signature itself.
    let ephemeral = 72..104;
    let timestamp_low = 111..112;
    let signature = 112..HELLO;
    for byte in ephemeral.chain(timestamp_low).chain(signature) {
        for bit in 0..8 {
            let claimed = receive_hello(&listener, &flip(&hello, byte, bit), at(NOW));
            let result = claimed
                .and_then(|claimed| claimed.respond(&listener, at(NOW), &mut rng(1)).map(|_| ()));
            assert!(
                matches!(result, Err(Error::InvalidSignature)),
                "byte {byte} bit {bit}"
            );
        }
    }
}

#[test]
fn hello_under_another_namespace_is_told_apart_before_any_signature() {
    let dialer = config(1);
    let mut listener = config(2);
    listener.namespace = b"another-app".to_vec();
    let (_, hello) = start(&dialer, listener.signer.public_key(), at(NOW), &mut rng(0)).unwrap();
    assert!(matches!(
        receive_hello(&listener, &hello, at(NOW)),
        Err(Error::NamespaceMismatch)
    ));
}

#[test]
fn a_copied_namespace_tag_does_not_pass_the_signature() {
    let mut dialer = config(1);
    dialer.namespace = b"another-app".to_vec();
    let listener = config(2);
    let (_, mut hello) =
        start(&dialer, listener.signer.public_key(), at(NOW), &mut rng(0)).unwrap();
    // The tag says "same namespace"; the signature was made under another one.
    hello[..hello::TAG_BYTES].copy_from_slice(&hello::namespace_tag(&listener.namespace));
    let claimed = receive_hello(&listener, &hello, at(NOW)).unwrap();
    assert!(matches!(
        claimed.respond(&listener, at(NOW), &mut rng(1)),
        Err(Error::InvalidSignature)
    ));
}

#[test]
fn a_signature_under_the_bare_application_namespace_is_no_hello() {
    // An application that signs its own bytes with the same key and namespace: even bytes
    // shaped exactly like a Hello's signed payload do not verify as a Hello.
    let (dialer, listener) = (config(1), config(2));
    let (_, mut hello) =
        start(&dialer, listener.signer.public_key(), at(NOW), &mut rng(0)).unwrap();
    let signed = hello.len() - SIGNATURE;
    let mut payload = b"palisade-stream/v1/hello".to_vec();
    payload.push(0);
    payload.extend_from_slice(&hello[..signed]);
    let signature = dialer.signer.sign(&dialer.namespace, &payload);
    hello[signed..].copy_from_slice(signature.as_ref());
    let claimed = receive_hello(&listener, &hello, at(NOW)).unwrap();
    assert!(matches!(
        claimed.respond(&listener, at(NOW), &mut rng(1)),
        Err(Error::InvalidSignature)
    ));
    // The same payload signed under the hello namespace is accepted: the test above is
    // about the namespace alone.
    let signature = dialer
        .signer
        .sign(&hello::hello_namespace(&dialer.namespace), &payload);
    hello[signed..].copy_from_slice(signature.as_ref());
    let claimed = receive_hello(&listener, &hello, at(NOW)).unwrap();
    assert!(claimed.respond(&listener, at(NOW), &mut rng(1)).is_ok());
}

#[test]
fn namespaces_that_differ_only_by_a_suffix_never_connect() {
    let mut dialer = config(1);
    let mut listener = config(2);
    dialer.namespace = b"app".to_vec();
    listener.namespace = b"app\0".to_vec();
    assert!(matches!(
        handshake(&dialer, &listener),
        Err(Error::NamespaceMismatch)
    ));
}

#[test]
fn low_order_ephemeral_key_is_rejected_as_non_contributory() {
    let (dialer, listener) = (config(1), config(2));
    // Both the identity (all zeros) and the order-2 point (u = 1) give an all-zero secret.
    let mut one = [0u8; 32];
    one[0] = 1;
    for ephemeral in [[0u8; 32], one] {
        let hello = hello::encode(
            &dialer,
            Role::Dialer,
            &listener.signer.public_key(),
            &ephemeral,
            NOW,
            None,
        );
        let claimed = receive_hello(&listener, &hello, at(NOW)).unwrap();
        let result = claimed.respond(&listener, at(NOW), &mut rng(1));
        assert!(matches!(result, Err(Error::NonContributory)));
    }
}

#[test]
fn listener_reply_with_low_order_ephemeral_is_rejected_as_non_contributory() {
    let (dialer, listener) = (config(1), config(2));
    let (state, hello) =
        start(&dialer, listener.signer.public_key(), at(NOW), &mut rng(0)).unwrap();
    let binding = blake3::hash(&hello);
    let mut reply = hello::encode(
        &listener,
        Role::Listener,
        &dialer.signer.public_key(),
        &[0; 32],
        NOW,
        Some(&binding),
    );
    reply.extend_from_slice(&[0; CONFIRMATION_BYTES]);
    assert!(matches!(
        state.receive_reply(&dialer, &reply, at(NOW)),
        Err(Error::NonContributory)
    ));
}

#[test]
fn tampered_listener_confirmation_is_rejected() {
    let (dialer, listener) = (config(1), config(2));
    for bit in 0..8 {
        let Exchange { state, reply, .. } = exchange(&dialer, &listener, 4);
        let tampered = flip(&reply, HELLO + (bit as usize * 3), bit);
        assert!(matches!(
            state.receive_reply(&dialer, &tampered, at(NOW)),
            Err(Error::InvalidConfirmation)
        ));
    }
}

#[test]
fn reflected_listener_confirmation_is_rejected_in_the_same_session() {
    let (dialer, listener) = (config(1), config(2));
    let Exchange {
        awaiting, reply, ..
    } = exchange(&dialer, &listener, 6);
    // Same transcript, same keys: only the direction differs, and that is enough.
    let reflected = awaiting.receive_confirmation(&reply[HELLO..]);
    assert!(matches!(reflected, Err(Error::InvalidConfirmation)));
}

#[test]
fn confirmations_differ_by_direction() {
    let (dialer, listener) = (config(1), config(2));
    let Exchange { state, reply, .. } = exchange(&dialer, &listener, 6);
    let established = state.receive_reply(&dialer, &reply, at(NOW)).unwrap();
    assert_ne!(&established.confirmation[..], &reply[HELLO..]);
}

#[test]
fn tampered_dialer_confirmation_is_rejected() {
    let (dialer, listener) = (config(1), config(2));
    for (byte, bit) in [(0, 0), (13, 4), (31, 7)] {
        let Exchange {
            state,
            awaiting,
            reply,
            ..
        } = exchange(&dialer, &listener, 6);
        let established = state.receive_reply(&dialer, &reply, at(NOW)).unwrap();
        let tampered = flip(&established.confirmation, byte, bit);
        assert!(matches!(
            awaiting.receive_confirmation(&tampered),
            Err(Error::InvalidConfirmation)
        ));
    }
}

#[test]
fn confirmation_of_wrong_size_is_rejected() {
    let (dialer, listener) = (config(1), config(2));
    let Exchange {
        state,
        awaiting,
        reply,
        ..
    } = exchange(&dialer, &listener, 6);
    let established = state.receive_reply(&dialer, &reply, at(NOW)).unwrap();
    let short = &established.confirmation[..CONFIRMATION_BYTES - 1];
    assert!(matches!(
        awaiting.receive_confirmation(short),
        Err(Error::InvalidConfirmation)
    ));
}

/// Every single-bit flip anywhere in the dialer's Hello is rejected, each field with the
/// error its check gives.
#[test]
fn every_bit_flip_of_a_dialer_hello_is_rejected_by_the_right_check() {
    let (dialer, listener) = (config(1), config(2));
    let (_, hello) = start(&dialer, listener.signer.public_key(), at(NOW), &mut rng(0)).unwrap();
    for byte in 0..HELLO {
        for bit in 0..8 {
            let tampered = flip(&hello, byte, bit);
            let result = receive_hello(&listener, &tampered, at(NOW))
                .and_then(|claimed| claimed.respond(&listener, at(NOW), &mut rng(1)).map(|_| ()));
            let ok = match byte {
                0..8 => matches!(result, Err(Error::NamespaceMismatch)),
                8..40 => matches!(result, Err(Error::WrongRecipient)),
                // A flipped sender key either does not decode or is another key.
                40..72 => matches!(result, Err(Error::InvalidPeerKey | Error::InvalidSignature)),
                72..104 => matches!(result, Err(Error::InvalidSignature)),
                // High timestamp bytes move it out of the window; low ones break the signature.
                104..112 => matches!(
                    result,
                    Err(Error::TimestampTooOld
                        | Error::TimestampInFuture
                        | Error::InvalidSignature)
                ),
                _ => matches!(result, Err(Error::InvalidSignature)),
            };
            assert!(ok, "byte {byte} bit {bit}: {result:?}");
        }
    }
}

/// Every single-bit flip anywhere in the listener's reply is rejected by the dialer.
#[test]
fn every_bit_flip_of_a_listener_reply_is_rejected() {
    let (dialer, listener) = (config(1), config(2));
    let Exchange { reply, .. } = exchange(&dialer, &listener, 12);
    // `receive_reply` consumes its state; rebuild an identical one (same seed) for every flip.
    let fresh = || {
        let mut rng = self::rng(12);
        start(&dialer, listener.signer.public_key(), at(NOW), &mut rng)
            .unwrap()
            .0
    };
    for byte in 0..reply.len() {
        for bit in 0..8 {
            let result = fresh().receive_reply(&dialer, &flip(&reply, byte, bit), at(NOW));
            let ok = match byte {
                0..8 => matches!(result, Err(Error::NamespaceMismatch)),
                8..40 => matches!(result, Err(Error::WrongRecipient)),
                40..72 => matches!(result, Err(Error::UnexpectedPeer)),
                104..112 => matches!(
                    result,
                    Err(Error::TimestampTooOld
                        | Error::TimestampInFuture
                        | Error::InvalidSignature)
                ),
                b if b < HELLO => matches!(result, Err(Error::InvalidSignature)),
                _ => matches!(result, Err(Error::InvalidConfirmation)),
            };
            assert!(
                ok,
                "byte {byte} bit {bit}: {}",
                result.err().map_or("accepted", |e| e.reason())
            );
        }
    }
}

#[test]
fn huge_time_bounds_saturate_instead_of_wrapping() {
    let (dialer, mut listener) = (config(1), config(2));
    listener.max_handshake_age = Duration::MAX;
    listener.synchrony_bound = Duration::MAX;
    for sent_at in [0, NOW, u64::MAX / 2] {
        let (_, hello) = start(
            &dialer,
            listener.signer.public_key(),
            at(sent_at),
            &mut rng(0),
        )
        .unwrap();
        assert!(
            receive_hello(&listener, &hello, at(NOW)).is_ok(),
            "sent at {sent_at}"
        );
    }
}

#[test]
fn reflected_hello_is_rejected_by_the_dialer() {
    let (dialer, listener) = (config(1), config(2));
    let (state, hello) =
        start(&dialer, listener.signer.public_key(), at(NOW), &mut rng(0)).unwrap();
    let mut reflected = hello.clone();
    reflected.extend_from_slice(&[0; CONFIRMATION_BYTES]);
    assert!(matches!(
        state.receive_reply(&dialer, &reflected, at(NOW)),
        Err(Error::WrongRecipient)
    ));
}

#[test]
fn reply_from_an_unexpected_peer_is_rejected() {
    let (dialer, listener, impostor) = (config(1), config(2), config(3));
    let mut rng = rng(7);
    let (state, _) = start(&dialer, listener.signer.public_key(), at(NOW), &mut rng).unwrap();
    // The impostor answers a genuine Hello that was addressed to it.
    let (_, hello_to_impostor) =
        start(&dialer, impostor.signer.public_key(), at(NOW), &mut rng).unwrap();
    let claimed = receive_hello(&impostor, &hello_to_impostor, at(NOW)).unwrap();
    let (_, reply) = claimed.respond(&impostor, at(NOW), &mut rng).unwrap();
    assert!(matches!(
        state.receive_reply(&dialer, &reply, at(NOW)),
        Err(Error::UnexpectedPeer)
    ));
}

#[test]
fn reply_spliced_from_another_session_fails_the_signature() {
    let (dialer, listener) = (config(1), config(2));
    let mut rng = rng(8);
    let (first, _) = start(&dialer, listener.signer.public_key(), at(NOW), &mut rng).unwrap();
    let (_, second_hello) =
        start(&dialer, listener.signer.public_key(), at(NOW), &mut rng).unwrap();
    let claimed = receive_hello(&listener, &second_hello, at(NOW)).unwrap();
    let (_, second_reply) = claimed.respond(&listener, at(NOW), &mut rng).unwrap();
    assert!(matches!(
        first.receive_reply(&dialer, &second_reply, at(NOW)),
        Err(Error::InvalidSignature)
    ));
}

#[test]
fn reply_of_wrong_size_is_rejected() {
    let (dialer, listener) = (config(1), config(2));
    let (state, _) = start(&dialer, listener.signer.public_key(), at(NOW), &mut rng(0)).unwrap();
    let reply = vec![0u8; AwaitingReply::<Key>::reply_bytes() - 1];
    assert!(matches!(
        state.receive_reply(&dialer, &reply, at(NOW)),
        Err(Error::InvalidFrameSize { .. })
    ));
}

/// Pins the exact wire bytes of one seeded handshake. A change here breaks compatibility
/// with deployed peers: bump the protocol's domain labels instead of updating the hashes.
#[test]
fn golden_handshake_bytes() {
    let run = handshake(&config(1), &config(2)).unwrap();
    let digest = |bytes: &[u8]| blake3::hash(bytes).to_hex().to_string();
    let expected = [
        (
            digest(&run.dialer_hello),
            "24c61e6ecd17c5fdd7e1da4c2f42eb0414bdf6dd98c6ae1ed9a901a1ad29f242",
        ),
        (
            digest(&run.reply),
            "abc67538847f4e0c58cfbd3c695ae5b6eadc5e81f56d258ee03efacedb9ef3e2",
        ),
        (
            digest(&run.confirmation),
            "a9e61d53e51ad2ee3aacddf9884ec5f3c738950e0563ea663b1273de0f16234e",
        ),
        (
            digest(&run.dialer_keys.send[..]),
            "71a968e2c13f0ea6c00eb9a07a8d11a2624f4769e73195833b285ce8dcd7047e",
        ),
    ];
    let actual: Vec<_> = expected.iter().map(|(a, _)| a.as_str()).collect();
    let pinned: Vec<_> = expected.iter().map(|(_, p)| *p).collect();
    assert_eq!(actual, pinned);
    // The plain fields sit where the format says.
    let dialer_key = config(1).signer.public_key();
    let listener_key = config(2).signer.public_key();
    assert_eq!(
        &run.dialer_hello[..8],
        &hello::namespace_tag(NAMESPACE)[..],
        "tag"
    );
    assert_eq!(&run.dialer_hello[8..40], listener_key.as_ref());
    assert_eq!(&run.dialer_hello[40..72], dialer_key.as_ref());
    assert_eq!(&run.dialer_hello[104..112], &NOW.to_be_bytes());
    assert_eq!(&run.reply[8..40], dialer_key.as_ref());
    assert_eq!(&run.reply[40..72], listener_key.as_ref());
}
