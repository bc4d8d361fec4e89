//! Sans-IO tests of the record layer.

use super::{
    CipherKey, NonceCounter, Opened, Opener, Sealer, TAG_BYTES,
    cipher::{fast, portable},
};
use crate::{
    Error,
    frame::{HEADER_BYTES, Header},
};
use commonware_runtime::IoBufs;

const MAX: u32 = 1024;
const KEY: [u8; 32] = [7; 32];

fn pair() -> (Sealer, Opener) {
    (
        Sealer::new(CipherKey::new(&KEY), MAX),
        Opener::new(CipherKey::new(&KEY), MAX),
    )
}

fn seal(sealer: &mut Sealer, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    sealer
        .seal_message(&IoBufs::from(message.to_vec()), &mut out)
        .unwrap();
    out
}

/// Feeds one wire record to the opener, as the receiver does.
fn open(opener: &mut Opener, record: &[u8]) -> Result<Opened, Error> {
    let header = opener.check_header(record[..HEADER_BYTES].try_into().unwrap())?;
    let mut body = record[HEADER_BYTES..].to_vec();
    assert_eq!(
        body.len(),
        header.body_bytes as usize,
        "test feeds whole records"
    );
    opener.open(header, &mut body)
}

fn open_message(opener: &mut Opener, record: &[u8]) -> Result<Vec<u8>, Error> {
    let header = opener.check_header(record[..HEADER_BYTES].try_into().unwrap())?;
    let mut body = record[HEADER_BYTES..].to_vec();
    match opener.open(header, &mut body)? {
        Opened::Message(len) => Ok(body[..len].to_vec()),
        Opened::Close => Err(Error::Closed),
    }
}

#[test]
fn messages_of_every_boundary_size_round_trip() {
    let (mut sealer, mut opener) = pair();
    for size in [0, 1, MAX as usize - 1, MAX as usize] {
        let message: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let record = seal(&mut sealer, &message);
        assert_eq!(record.len(), Sealer::record_bytes(size));
        assert_eq!(open_message(&mut opener, &record).unwrap(), message);
    }
}

#[test]
fn multi_chunk_message_seals_like_a_contiguous_one() {
    let (mut a, _) = pair();
    let (mut b, _) = pair();
    let chunked: IoBufs = vec![
        commonware_runtime::IoBuf::from(b"hel".to_vec()),
        b"lo".to_vec().into(),
    ]
    .into();
    let mut out = Vec::new();
    a.seal_message(&chunked, &mut out).unwrap();
    assert_eq!(out, seal(&mut b, b"hello"));
}

#[test]
fn oversized_message_is_refused_by_the_sealer_without_using_a_nonce() {
    let (sealer, _) = pair();
    assert!(matches!(
        sealer.check_size(MAX as usize + 1),
        Err(Error::MessageTooLarge { size, max: MAX }) if size == MAX as u64 + 1
    ));
    assert_eq!(sealer.remaining_nonces(), 1 << 96);
}

#[test]
fn every_single_bit_flip_of_a_data_record_is_rejected() {
    let (mut sealer, _) = pair();
    let record = seal(&mut sealer, b"attack at dawn");
    for byte in 0..record.len() {
        for bit in 0..8 {
            let (_, mut opener) = pair();
            let mut tampered = record.clone();
            tampered[byte] ^= 1 << bit;
            // A flipped header may announce another length. If the opener accepts it, the
            // receiver reads that many bytes (here: the record, cut or padded with zeros as
            // the following stream bytes would) and authentication must fail.
            let result = opener
                .check_header(tampered[..HEADER_BYTES].try_into().unwrap())
                .and_then(|header| {
                    let mut body = tampered[HEADER_BYTES..].to_vec();
                    body.resize(header.body_bytes as usize, 0);
                    opener.open(header, &mut body)
                });
            assert!(result.is_err(), "byte {byte} bit {bit} was accepted");
            assert!(
                matches!(opener.ensure_open(), Err(Error::Unusable)),
                "byte {byte} bit {bit} left the opener usable"
            );
        }
    }
}

#[test]
fn flipping_the_close_bit_is_rejected() {
    let (mut sealer, mut opener) = pair();
    let mut close = Vec::new();
    sealer.seal_close(&mut close).unwrap();
    close[0] ^= 0x80;
    assert!(matches!(
        open(&mut opener, &close),
        Err(Error::DecryptionFailed)
    ));
}

#[test]
fn replayed_record_is_rejected() {
    let (mut sealer, mut opener) = pair();
    let record = seal(&mut sealer, b"once");
    assert_eq!(open_message(&mut opener, &record).unwrap(), b"once");
    assert!(matches!(
        open_message(&mut opener, &record),
        Err(Error::DecryptionFailed)
    ));
    assert!(matches!(opener.ensure_open(), Err(Error::Unusable)));
}

#[test]
fn reordered_records_are_rejected() {
    let (mut sealer, mut opener) = pair();
    let _first = seal(&mut sealer, b"first");
    let second = seal(&mut sealer, b"second");
    assert!(matches!(
        open_message(&mut opener, &second),
        Err(Error::DecryptionFailed)
    ));
}

#[test]
fn record_under_another_key_is_rejected() {
    let mut sealer = Sealer::new(CipherKey::new(&[8; 32]), MAX);
    let (_, mut opener) = pair();
    let record = seal(&mut sealer, b"x");
    assert!(matches!(
        open_message(&mut opener, &record),
        Err(Error::DecryptionFailed)
    ));
}

#[test]
fn header_announcing_more_than_the_limit_is_rejected_before_the_body() {
    let (_, mut opener) = pair();
    let header = Header {
        body_bytes: MAX + TAG_BYTES as u32 + 1,
        close: false,
    }
    .encode();
    assert!(matches!(
        opener.check_header(header),
        Err(Error::MessageTooLarge { size, max: MAX }) if size == MAX as u64 + 1
    ));
    assert!(matches!(opener.ensure_open(), Err(Error::Unusable)));
}

#[test]
fn header_shorter_than_a_tag_or_close_with_payload_is_rejected() {
    for header in [
        Header {
            body_bytes: TAG_BYTES as u32 - 1,
            close: false,
        },
        Header {
            body_bytes: 0,
            close: false,
        },
        Header {
            body_bytes: TAG_BYTES as u32 + 1,
            close: true,
        },
    ] {
        let (_, mut opener) = pair();
        assert!(matches!(
            opener.check_header(header.encode()),
            Err(Error::InvalidFrameSize { size }) if size == header.body_bytes
        ));
        assert!(matches!(opener.ensure_open(), Err(Error::Unusable)));
    }
}

#[test]
fn close_record_ends_the_direction_cleanly() {
    let (mut sealer, mut opener) = pair();
    let message = seal(&mut sealer, b"last words");
    let mut close = Vec::new();
    sealer.seal_close(&mut close).unwrap();
    assert_eq!(close.len(), HEADER_BYTES + TAG_BYTES);
    assert_eq!(open_message(&mut opener, &message).unwrap(), b"last words");
    assert!(matches!(open(&mut opener, &close), Ok(Opened::Close)));
    assert!(matches!(opener.ensure_open(), Err(Error::Closed)));
}

#[test]
fn sealer_refuses_once_the_last_nonce_is_used() {
    let (sealer, opener) = pair();
    let mut sealer = sealer.with_nonce(NonceCounter::starting_at((1 << 96) - 1));
    let mut opener = opener.with_nonce(NonceCounter::starting_at((1 << 96) - 1));
    let last = seal(&mut sealer, b"last");
    assert_eq!(open_message(&mut opener, &last).unwrap(), b"last");
    let mut out = Vec::new();
    assert!(matches!(
        sealer.seal_message(&IoBufs::from(b"more".to_vec()), &mut out),
        Err(Error::NonceExhausted)
    ));
    assert!(
        out.is_empty(),
        "nothing is written when the nonce is exhausted"
    );
    assert!(matches!(
        sealer.seal_close(&mut out),
        Err(Error::NonceExhausted)
    ));
}

#[test]
fn opener_refuses_once_the_last_nonce_is_used() {
    let (_, opener) = pair();
    let mut opener = opener.with_nonce(NonceCounter::starting_at(1 << 96));
    let mut sealer = Sealer::new(CipherKey::new(&KEY), MAX);
    let record = seal(&mut sealer, b"x");
    assert!(matches!(
        open_message(&mut opener, &record),
        Err(Error::NonceExhausted)
    ));
    assert!(matches!(opener.ensure_open(), Err(Error::Unusable)));
}

#[test]
fn fast_and_portable_backends_agree_byte_for_byte() {
    let fast = fast::Key::new(&KEY);
    let portable = portable::Key::new(&KEY);
    for size in [0usize, 1, 63, 64, 65, 1000, 4096] {
        let nonce = [size as u8; 12];
        let aad = [1, 2, 3, size as u8];
        let plain: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
        let mut a = plain.clone();
        let mut b = plain.clone();
        let tag_a = fast.seal_in_place(nonce, &aad, &mut a);
        let tag_b = portable.seal_in_place(nonce, &aad, &mut b);
        assert_eq!((&a, tag_a), (&b, tag_b), "size {size}");
        // Each opens what the other sealed, and each rejects a flipped bit.
        let sealed = [a, tag_a.to_vec()].concat();
        let (mut for_portable, mut for_fast) = (sealed.clone(), sealed.clone());
        portable
            .open_in_place(nonce, &aad, &mut for_portable)
            .unwrap();
        fast.open_in_place(nonce, &aad, &mut for_fast).unwrap();
        assert_eq!(&for_portable[..size], &plain[..]);
        assert_eq!(&for_fast[..size], &plain[..]);
        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert!(
            portable
                .open_in_place(nonce, &aad, &mut tampered.clone())
                .is_err()
        );
        assert!(fast.open_in_place(nonce, &aad, &mut tampered).is_err());
    }
}

/// Pins the bytes of two records and a close under a fixed key.
#[test]
fn golden_record_bytes() {
    let (mut sealer, _) = pair();
    let mut wire = seal(&mut sealer, b"");
    wire.extend(seal(&mut sealer, b"palisade"));
    sealer.seal_close(&mut wire).unwrap();
    assert_eq!(&wire[..4], &[0, 0, 0, 16]);
    assert_eq!(&wire[20..24], &[0, 0, 0, 24]);
    assert_eq!(&wire[48..52], &[0x80, 0, 0, 16]);
    assert_eq!(
        blake3::hash(&wire).to_hex().as_str(),
        "00cb96e21a5ca823f9d952ab91c64998dc10d8555743fed903e0f6feda816165"
    );
}
