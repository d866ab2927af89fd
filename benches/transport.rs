//! Loopback figures for the QUIC transport (not a test): request/reply round
//! trip for a small payload, sequential and with many requests in flight,
//! and the cost of a new connection (handshake with pinned mutual TLS).
//! Run: `cargo bench --bench transport` (release) or add `--profile dev`.
//! Prints plain figures; the handler echoes bytes, no msgpack, no actor hop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use crux::actors::tls::{generate_certificate, Identity, PinnedPeer};
use crux::actors::transport::{bind_endpoint, serve, Client, TransportConfig};

fn node(name: &str) -> (Identity, PinnedPeer) {
    let cert = generate_certificate(name, &[]).unwrap();
    (
        Identity::from_pem(name, &cert.cert_pem, &cert.key_pem).unwrap(),
        PinnedPeer::from_pem(name, &cert.cert_pem).unwrap(),
    )
}

fn config(identity: &Identity, peer: &PinnedPeer) -> TransportConfig {
    TransportConfig {
        identity: identity.clone(),
        peers: vec![peer.clone()],
        max_frame_bytes: 16 << 20,
        request_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
        retries: 0,
        retry_backoff: Duration::from_millis(10),
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let index = (sorted.len().saturating_sub(1) * p) / 100;
    sorted.get(index).copied().unwrap_or_default()
}

fn report(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let total: Duration = samples.iter().sum();
    let mean = total / u32::try_from(samples.len()).unwrap();
    println!(
        "{label:<44} n={:<6} mean={:>9.1?} p50={:>9.1?} p90={:>9.1?} p99={:>9.1?}",
        samples.len(),
        mean,
        percentile(&samples, 50),
        percentile(&samples, 90),
        percentile(&samples, 99),
    );
}

async fn run() {
    let (server_id, server_pin) = node("authority-1");
    let (client_id, client_pin) = node("processor");
    let server_cfg = config(&server_id, &client_pin);
    let client_cfg = config(&client_id, &server_pin);
    let endpoint = bind_endpoint("127.0.0.1:0".parse().unwrap(), &server_cfg).unwrap();
    let addr = endpoint.local_addr().unwrap();
    actix_rt::spawn(serve(endpoint.clone(), &server_cfg, |_peer, request| async move { request }));

    let client_ep = bind_endpoint("127.0.0.1:0".parse().unwrap(), &client_cfg).unwrap();
    let client = Client::new(client_ep.clone(), &client_cfg);

    for &size in &[64usize, 1024, 64 * 1024, 1 << 20] {
        let payload = vec![0xa5u8; size];
        let iterations = if size >= 1 << 20 {
            50
        } else if size >= 64 * 1024 {
            500
        } else {
            5000
        };
        for _ in 0..iterations.min(200) {
            client.request("authority-1", addr, &payload).await.unwrap();
        }
        let mut samples = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let started = Instant::now();
            let reply = client.request("authority-1", addr, &payload).await.unwrap();
            samples.push(started.elapsed());
            assert_eq!(reply.len(), size);
        }
        report(&format!("round trip, {size} B, sequential"), samples);
    }

    // Many requests in flight on one connection.
    let in_flight = 32usize;
    let rounds = 200usize;
    let payload = vec![0x5au8; 64];
    let started = Instant::now();
    for _ in 0..rounds {
        let tasks: Vec<_> = (0..in_flight)
            .map(|_| {
                let client = client.clone();
                let payload = payload.clone();
                actix_rt::spawn(async move { client.request("authority-1", addr, &payload).await.unwrap() })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    }
    let elapsed = started.elapsed();
    let count = u32::try_from(in_flight * rounds).unwrap();
    println!(
        "{:<44} {} requests in {:.2?}: {:.1?} per request, {:.0} requests/s",
        format!("64 B, {in_flight} in flight"),
        count,
        elapsed,
        elapsed / count,
        f64::from(count) / elapsed.as_secs_f64()
    );

    // New connection each time: handshake with pinned mutual TLS + one request.
    let mut samples = Vec::new();
    for _ in 0..100 {
        let ep = bind_endpoint("127.0.0.1:0".parse().unwrap(), &client_cfg).unwrap();
        let fresh = Client::new(ep.clone(), &client_cfg);
        let started = Instant::now();
        fresh.request("authority-1", addr, b"x").await.unwrap();
        samples.push(started.elapsed());
        ep.close(0u32.into(), b"");
    }
    report("connect (mutual TLS) + first 1 B request", samples);
    endpoint.close(0u32.into(), b"");
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    actix_rt::System::new().block_on(run());
}
