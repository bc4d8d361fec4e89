//! A listener fed arbitrary bytes as everything the dialer sends: every handshake decoder on
//! the listening side (frame header, Hello, Confirmation) sees hostile input. It must end
//! with an error, never panic, hang, or admit a peer.

#![no_main]

use commonware_runtime::{Sink as _, mocks};
use libfuzzer_sys::fuzz_target;
use palisade_fuzz::{admits_dialer, config, listener_key, run};

fuzz_target!(|data: &[u8]| {
    let data = data.to_vec();
    run(|context| async move {
        let (mut dialer_sink, listener_stream) = mocks::Channel::init();
        let (listener_sink, _dialer_stream) = mocks::Channel::init();
        if !data.is_empty() {
            dialer_sink.send(data).await.expect("mock send");
        }
        drop(dialer_sink);
        let outcome = palisade_stream::listen(
            context,
            config(listener_key()),
            admits_dialer,
            listener_sink,
            listener_stream,
        )
        .await;
        // Without the dialer's secret key no input completes a handshake.
        assert!(outcome.is_err(), "a forged handshake was accepted");
    });
});
