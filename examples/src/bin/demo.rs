//! Two peers handshake over real TCP on loopback and exchange messages; a third, unknown peer
//! is refused. Prints what happened.

use commonware_runtime::{Runner as _, tokio};
use palisade_examples::handshake_demo;

fn main() {
    let storage = std::env::temp_dir().join(format!("palisade-demo-{}", std::process::id()));
    let runner = tokio::Runner::new(
        tokio::Config::new()
            .with_worker_threads(2)
            .with_storage_directory(&storage),
    );
    let report =
        runner.start(|context| handshake_demo(context, "127.0.0.1:0".parse().expect("address")));
    let _ = std::fs::remove_dir_all(&storage);
    for line in &report.events {
        println!("{line}");
    }
    println!(
        "summary: {} echoes received; stranger {}",
        report.echoes_received,
        report.stranger_refusal.unwrap_or("was NOT refused")
    );
}
