//! A dialer whose listener answers with arbitrary bytes: the Hello+Confirmation decoder and
//! the frame header checks on the dialing side see hostile input. The handshake must fail,
//! never panic or hang.

#![no_main]

use commonware_cryptography::Signer as _;
use commonware_runtime::{Sink as _, mocks};
use libfuzzer_sys::fuzz_target;
use palisade_fuzz::{config, dialer_key, listener_key, run};

fuzz_target!(|data: &[u8]| {
    let data = data.to_vec();
    run(|context| async move {
        let (dialer_sink, _listener_stream) = mocks::Channel::init();
        let (mut listener_sink, dialer_stream) = mocks::Channel::init();
        if !data.is_empty() {
            listener_sink.send(data).await.expect("mock send");
        }
        drop(listener_sink);
        let outcome = palisade_stream::dial(
            context,
            config(dialer_key()),
            listener_key().public_key(),
            dialer_sink,
            dialer_stream,
        )
        .await;
        assert!(outcome.is_err(), "a forged reply completed the handshake");
    });
});
