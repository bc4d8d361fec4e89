//! The p2p wire decoder on arbitrary messages: it never panics, and whatever it accepts as
//! data encodes back to the same bytes.

#![no_main]

use commonware_runtime::IoBuf;
use libfuzzer_sys::fuzz_target;
use palisade_p2p::wire::{self, Message};

fuzz_target!(|data: &[u8]| {
    let encoded = match wire::decode(IoBuf::from(data.to_vec())) {
        Ok(Message::Data { channel, payload }) => wire::encode_data(channel, payload).coalesce(),
        Ok(Message::Ping(nonce)) => wire::encode_ping(nonce),
        Ok(Message::Pong(nonce)) => wire::encode_pong(nonce),
        Ok(Message::Keep) => wire::encode_keep(),
        Err(_) => return,
    };
    assert_eq!(encoded.as_ref(), data, "decode and encode disagree");
});
