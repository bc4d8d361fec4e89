//! `mitm`: a relay between two peers sees only ciphertext, and a flipped bit kills the
//! connection without anything altered being delivered.

use palisade_examples::hex;
use std::process::Command;

const MITM: &str = env!("CARGO_BIN_EXE_mitm");
const MESSAGES: [&str; 2] = ["attack at dawn", "the password is swordfish"];

fn run(args: &[&str]) -> (bool, String) {
    let output = Command::new(MITM).args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

/// The relay's lines (at least `frames`): neither the plaintext nor its hex appears in any.
fn assert_relay_saw_only_ciphertext(stdout: &str, frames: usize) {
    let relay: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("relay saw"))
        .collect();
    assert!(relay.len() >= frames, "{stdout}");
    for line in relay {
        for message in MESSAGES {
            assert!(!line.contains(message), "plaintext in {line}");
            assert!(
                !line.contains(&hex::encode(message.as_bytes())[..16]),
                "plaintext in {line}"
            );
        }
    }
    assert!(stdout.contains("plaintext on the wire: none"), "{stdout}");
}

#[test]
fn the_relay_sees_only_ciphertext_and_bob_gets_every_message() {
    let (success, stdout) = run(&[]);
    assert!(success, "{stdout}");
    // Hello, reply, confirmation, two records and the close.
    assert_relay_saw_only_ciphertext(&stdout, 6);
    for message in MESSAGES {
        assert!(
            stdout.contains(&format!("bob received: {message}")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("bob received 2 of 2"), "{stdout}");
}

#[test]
fn a_flipped_bit_ends_the_connection_and_nothing_altered_is_delivered() {
    let (success, stdout) = run(&["--flip"]);
    assert!(success, "{stdout}");
    // Up to the altered record; bob may cut the connection before the rest goes through.
    assert_relay_saw_only_ciphertext(&stdout, 4);
    assert!(stdout.contains("(one bit flipped)"), "{stdout}");
    assert!(
        stdout.contains("record decryption failed (decryption_failed)"),
        "{stdout}"
    );
    // The altered record was the first: nothing at all reaches bob.
    assert!(!stdout.contains("bob received:"), "{stdout}");
    assert!(stdout.contains("bob received 0 of 2"), "{stdout}");
}
