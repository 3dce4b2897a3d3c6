//! The emulator harness: it starts on a free port, serves the SDK, and stops with its owner.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use jit_local::Emulator;

fn address(endpoint: &str) -> String {
    endpoint.trim_start_matches("http://").to_owned()
}

#[tokio::test]
async fn emulators_get_their_own_ports_and_stop_when_dropped() {
    let a = tokio::task::spawn_blocking(Emulator::start)
        .await
        .unwrap()
        .unwrap();
    let b = tokio::task::spawn_blocking(Emulator::start)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(a.endpoint(), b.endpoint());
    assert!(a.endpoint().starts_with("http://127.0.0.1:"));

    // It answers AWS calls.
    let dynamodb = aws_sdk_dynamodb::Client::new(&a.sdk_config().await);
    let tables = dynamodb.list_tables().send().await.unwrap();
    assert!(tables.table_names().is_empty());

    // Dropping the owner closes the lifeline; the emulator exits and frees its port.
    let addr = address(a.endpoint());
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&addr).is_ok() {
        assert!(Instant::now() < deadline, "the emulator outlived its owner");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(TcpStream::connect(address(b.endpoint())).is_ok());
}
