//! Two peers handshake over real TCP on loopback and exchange messages; a third, unknown peer
//! is refused. Prints what happened.

use commonware_runtime::tokio;
use palisade_examples::{handshake_demo, start};

fn main() {
    let runtime = tokio::Config::new().with_worker_threads(2);
    let report = start::on_tokio("demo", runtime, |context| {
        handshake_demo(context, "127.0.0.1:0".parse().expect("address"))
    });
    for line in &report.events {
        println!("{line}");
    }
    println!(
        "summary: {} echoes received; stranger {}",
        report.echoes_received,
        report.stranger_refusal.unwrap_or("was NOT refused")
    );
}
