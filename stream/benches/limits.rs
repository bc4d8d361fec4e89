//! The physical limits under palisade-stream's figures, on one core of this machine: what the
//! cipher alone seals and opens per second at each message size, what a copy costs beside it,
//! and the public-key operations one handshake needs on each side.
//!
//! Both palisade and the reference (commonware-stream on x86_64 and aarch64) seal records with
//! aws-lc-rs's ChaCha20-Poly1305 and sign with commonware's ed25519, so these are the ceilings
//! of both. `cargo bench -p palisade-stream --bench limits`; `PALISADE_BENCH_ROUNDS` (default 5)
//! rounds, medians reported.

use aws_lc_rs::{
    aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey},
    agreement::{PrivateKey as AgreementKey, UnparsedPublicKey, X25519, agree},
};
use commonware_cryptography::{Signer as _, Verifier as _, ed25519::PrivateKey};
use std::{hint::black_box, time::Instant};

/// Bytes sealed per measurement at each size: enough for tens of milliseconds.
const BYTES_PER_MEASUREMENT: usize = 256 * 1024 * 1024;
/// Operations per measurement of a public-key operation.
const OPERATIONS: u32 = 2_000;

fn rounds() -> usize {
    std::env::var("PALISADE_BENCH_ROUNDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(5)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn nonce(counter: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

/// MB/s of sealing, opening and copying `size`-byte messages, one after another.
fn cipher(size: usize) -> (f64, f64, f64) {
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &[7u8; 32]).unwrap());
    let count = (BYTES_PER_MEASUREMENT / size).max(1);
    let mb = (count * size) as f64 / 1e6;
    let mut data = vec![1u8; size];

    let started = Instant::now();
    let mut tags = Vec::with_capacity(count);
    for counter in 0..count as u64 {
        let tag = key
            .seal_in_place_separate_tag(nonce(counter), Aad::from(&[0u8; 4]), &mut data)
            .unwrap();
        tags.push(tag);
    }
    let seal = mb / started.elapsed().as_secs_f64();

    // Open what was sealed last, again and again (the tag checks every time).
    let mut sealed = data.clone();
    sealed.extend_from_slice(tags.last().unwrap().as_ref());
    let last = count as u64 - 1;
    let mut work = sealed.clone();
    let started = Instant::now();
    for _ in 0..count {
        work.copy_from_slice(&sealed);
        key.open_in_place(nonce(last), Aad::from(&[0u8; 4]), &mut work)
            .unwrap();
    }
    let open_and_copy = started.elapsed().as_secs_f64();

    let source = vec![3u8; size + 16];
    let started = Instant::now();
    for _ in 0..count {
        work.copy_from_slice(black_box(&source));
        black_box(&mut work);
    }
    let copy_seconds = started.elapsed().as_secs_f64();
    // The open loop copied the record back each time; take that copy out.
    let open = mb / (open_and_copy - copy_seconds).max(f64::EPSILON);
    (seal, open, mb / copy_seconds)
}

/// Microseconds per operation of `f`.
fn per_operation(mut f: impl FnMut()) -> f64 {
    let started = Instant::now();
    for _ in 0..OPERATIONS {
        f();
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(OPERATIONS)
}

fn main() {
    let rounds = rounds();
    println!("one core, medians of {rounds} rounds\n");
    println!("| message size | seal (MB/s) | open (MB/s) | copy (MB/s) |");
    println!("|---|---|---|---|");
    for (name, size) in [
        ("64 B", 64),
        ("1 KiB", 1024),
        ("64 KiB", 64 * 1024),
        ("1 MiB", 1024 * 1024),
    ] {
        let runs: Vec<_> = (0..rounds).map(|_| cipher(size)).collect();
        let seal = median(runs.iter().map(|r| r.0).collect());
        let open = median(runs.iter().map(|r| r.1).collect());
        let copy = median(runs.iter().map(|r| r.2).collect());
        println!("| {name} | {seal:.0} | {open:.0} | {copy:.0} |");
    }

    let signer = PrivateKey::from_seed(1);
    let public = signer.public_key();
    let message = [9u8; 200];
    let signature = signer.sign(b"palisade-bench", &message);
    let peer = AgreementKey::generate(&X25519).unwrap();
    let peer_public = peer.compute_public_key().unwrap();
    let mut sign = Vec::new();
    let mut verify = Vec::new();
    let mut generate = Vec::new();
    let mut exchange = Vec::new();
    for _ in 0..rounds {
        sign.push(per_operation(|| {
            black_box(signer.sign(b"palisade-bench", black_box(&message)));
        }));
        verify.push(per_operation(|| {
            assert!(public.verify(b"palisade-bench", black_box(&message), &signature));
        }));
        generate.push(per_operation(|| {
            let key = AgreementKey::generate(&X25519).unwrap();
            black_box(key.compute_public_key().unwrap());
        }));
        exchange.push(per_operation(|| {
            let key = AgreementKey::generate(&X25519).unwrap();
            let theirs = UnparsedPublicKey::new(&X25519, peer_public.as_ref());
            agree(&key, theirs, aws_lc_rs::error::Unspecified, |shared| {
                black_box(shared);
                Ok(())
            })
            .unwrap();
        }));
    }
    let (sign, verify) = (median(sign), median(verify));
    let generate = median(generate);
    // The exchange loop generated a key too; take that out.
    let exchange = median(exchange) - generate;
    println!("\n| operation | us |");
    println!("|---|---|");
    println!("| ed25519 sign | {sign:.1} |");
    println!("| ed25519 verify | {verify:.1} |");
    println!("| X25519 key generation | {generate:.1} |");
    println!("| X25519 shared secret | {exchange:.1} |");
    let side = sign + verify + generate + exchange;
    println!(
        "| one side of a handshake (one of each) | {side:.1} |\n| both sides | {:.1} |",
        2.0 * side
    );
}
