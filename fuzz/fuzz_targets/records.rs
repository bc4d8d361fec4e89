//! The record decoder after a real handshake: the dialer and listener complete their
//! handshake through a relay, which then sends the listener arbitrary bytes in place of the
//! dialer's records. No input may be delivered (nobody without the session key can make a
//! record the listener accepts), and the listener must end with an error, never panic, hang
//! or allocate what a header merely announces.

#![no_main]

use commonware_cryptography::Signer as _;
use commonware_runtime::{IoBufs, Sink as _, Spawner as _, Stream as _, Supervisor as _, mocks};
use libfuzzer_sys::fuzz_target;
use palisade_fuzz::{admits_dialer, config, dialer_key, listener_key, run};

fuzz_target!(|data: &[u8]| {
    let data = data.to_vec();
    let delivered = run(|context| async move {
        let (dialer_sink, mut relay_in) = mocks::Channel::init();
        let (mut relay_out, listener_stream) = mocks::Channel::init();
        let (listener_sink, dialer_stream) = mocks::Channel::init();
        // Pass the dialer's Hello and Confirmation, then send the input instead of records.
        context.child("relay").spawn(move |_| async move {
            for _ in 0..2 {
                let Ok(header) = relay_in.recv(4).await else {
                    return;
                };
                let header = header.coalesce();
                let length = (u32::from_be_bytes(header.as_ref().try_into().unwrap()) & 0x7fff_ffff)
                    as usize;
                let Ok(body) = relay_in.recv(length).await else {
                    return;
                };
                let mut frame = header.as_ref().to_vec();
                frame.extend_from_slice(body.coalesce().as_ref());
                if relay_out.send(IoBufs::from(frame)).await.is_err() {
                    return;
                }
            }
            if !data.is_empty() {
                let _ = relay_out.send(IoBufs::from(data)).await;
            }
            // Dropping both ends closes the listener's stream after the input.
        });
        context.child("dialer").spawn(move |context| async move {
            let dialed = palisade_stream::dial(
                context.child("stream"),
                config(dialer_key()),
                listener_key().public_key(),
                dialer_sink,
                dialer_stream,
            )
            .await;
            // Keep the connection open until the listener is done.
            let _halves = dialed;
            futures::future::pending::<()>().await;
        });
        let (_, _sender, mut receiver) = palisade_stream::listen(
            context.child("listener"),
            config(listener_key()),
            admits_dialer,
            listener_sink,
            listener_stream,
        )
        .await
        .expect("the relay passed the handshake unchanged");
        let mut delivered = 0;
        while receiver.recv().await.is_ok() {
            delivered += 1;
        }
        delivered
    });
    assert_eq!(delivered, 0, "a record nobody sealed was delivered");
});
