//! Connection limits and the idle timeout: connections over a limit are
//! closed as they arrive while the others carry on; a silent connection is
//! closed after `connections_max_idle_ms`.

mod common;

use std::time::{Duration, Instant};

use common::security::start_with_config;
use kafka_protocol::messages::MetadataRequest;
use silt::client::Client;
use tokio::io::AsyncReadExt;

/// Whether a client at `addr` gets an answer (ApiVersions, then Metadata).
async fn served(addr: &str) -> Option<Client> {
    let mut client = Client::connect(addr).await.ok()?;
    client.call(MetadataRequest::default(), 12).await.ok()?;
    Some(client)
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_over_the_per_ip_limit_are_closed_and_others_carry_on() {
    let (broker, _dir) = start_with_config("[limits]\nmax_connections_per_ip = 3\n");
    // The broker's own start-up check may still hold a connection: wait
    // until three can be open at once.
    let mut open = Vec::new();
    let started = Instant::now();
    while open.len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "three connections"
        );
        if let Some(c) = served(&broker.addr).await {
            open.push(c);
        }
    }
    assert!(served(&broker.addr).await.is_none(), "a fourth is refused");
    for client in &mut open {
        client
            .call(MetadataRequest::default(), 12)
            .await
            .expect("the others are served");
    }
    drop(open.pop());
    let started = Instant::now();
    while served(&broker.addr).await.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a closed connection frees its place"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_opened_too_fast_are_refused() {
    let (broker, _dir) = start_with_config("[limits]\nmax_connection_creation_rate = 5\n");
    let mut admitted = 0;
    let mut refused = 0;
    for _ in 0..30 {
        match served(&broker.addr).await {
            Some(_) => admitted += 1,
            None => refused += 1,
        }
    }
    assert!(
        admitted >= 1 && refused >= 10,
        "admitted {admitted}, refused {refused}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let (broker, _dir) = start_with_config("[limits]\nconnections_max_idle_ms = 300\n");
    let mut socket = tokio::net::TcpStream::connect(&broker.addr).await.unwrap();
    let opened = Instant::now();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf))
        .await
        .expect("closed well within the deadline");
    assert!(matches!(read, Ok(0) | Err(_)), "closed: {read:?}");
    assert!(
        opened.elapsed() >= Duration::from_millis(250),
        "not before the timeout"
    );
    // A busy client is not idle.
    let mut client = Client::connect(&broker.addr).await.unwrap();
    for _ in 0..10 {
        client.call(MetadataRequest::default(), 12).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
