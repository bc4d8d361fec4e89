//! The same dial/listen over real TCP on loopback, on the tokio runtime.

use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
use commonware_runtime::{
    Listener as _, Network as _, Runner as _, Spawner as _, Supervisor as _, tokio,
};
use palisade_stream::{Config, Error, dial, listen};

fn runner() -> tokio::Runner {
    let storage = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("palisade-stream-tokio");
    tokio::Runner::new(
        tokio::Config::new()
            .with_worker_threads(2)
            .with_storage_directory(storage),
    )
}

#[test]
fn peers_handshake_and_exchange_messages_over_loopback_tcp() {
    runner().start(|context| async move {
        let alice = PrivateKey::from_seed(1);
        let bob = PrivateKey::from_seed(2);
        let stranger = PrivateKey::from_seed(3);
        let mut listener = context.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let address = listener.local_addr().unwrap();
        let allowed = alice.public_key();
        let bob_config = Config::recommended(bob.clone(), b"tokio-test");
        let serving = context.child("bob").spawn(move |context| async move {
            let mut outcomes = Vec::new();
            for _ in 0..2 {
                let (_, sink, stream) = listener.accept().await.unwrap();
                let allowed = allowed.clone();
                let bouncer = move |peer| async move { peer == allowed };
                match listen(
                    context.child("conn"),
                    bob_config.clone(),
                    bouncer,
                    sink,
                    stream,
                )
                .await
                {
                    Ok((peer, mut sender, mut receiver)) => {
                        // Echo until the peer closes.
                        loop {
                            match receiver.recv().await {
                                Ok(message) => sender.send(message).await.unwrap(),
                                Err(Error::Closed) => break,
                                Err(error) => panic!("unexpected {error}"),
                            }
                        }
                        outcomes.push(Ok(peer));
                    }
                    Err(error) => outcomes.push(Err(error.reason())),
                }
            }
            outcomes
        });

        // A stranger is refused.
        let (sink, stream) = context.dial(address).await.unwrap();
        let refused = dial(
            context.child("stranger"),
            Config::recommended(stranger, b"tokio-test"),
            bob.public_key(),
            sink,
            stream,
        )
        .await;
        assert!(
            matches!(refused, Err(Error::Io(_))),
            "stranger got {:?}",
            refused.err()
        );

        // Alice gets through and her messages come back.
        let (sink, stream) = context.dial(address).await.unwrap();
        let (mut sender, mut receiver) = dial(
            context.child("alice"),
            Config::recommended(alice.clone(), b"tokio-test"),
            bob.public_key(),
            sink,
            stream,
        )
        .await
        .unwrap();
        for size in [0usize, 1, 1000, 1 << 20] {
            let message = vec![size as u8; size];
            sender.send(message.clone()).await.unwrap();
            assert_eq!(receiver.recv().await.unwrap(), message.as_slice());
        }
        sender
            .send_many((0..64u8).map(|i| vec![i; 64]))
            .await
            .unwrap();
        for i in 0..64u8 {
            assert_eq!(receiver.recv().await.unwrap(), vec![i; 64].as_slice());
        }
        sender.close().await.unwrap();

        let outcomes = serving.await.unwrap();
        assert_eq!(
            outcomes,
            vec![Err("rejected_by_bouncer"), Ok(alice.public_key())]
        );
    });
}
