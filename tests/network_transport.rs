//! Real QUIC between nodes on 127.0.0.1 port 0: pinned mutual TLS,
//! request/response, refusals, limits, timeouts. Each test runs inside an
//! actix System and keeps its timeouts small.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crux::actors::error::TransportError;
use crux::actors::tls::{generate_certificate, Identity, PinnedPeer};
use crux::actors::transport::{bind_endpoint, client_endpoint, serve, Client, TransportConfig};

struct Node {
    identity: Identity,
    pin: PinnedPeer,
}

fn node(name: &str) -> Node {
    let cert = generate_certificate(name, &["127.0.0.1".to_string()]).unwrap();
    let identity = Identity::from_pem(name, &cert.cert_pem, &cert.key_pem).unwrap();
    let pin = PinnedPeer::from_pem(name, &cert.cert_pem).unwrap();
    Node { identity, pin }
}

fn config(me: &Node, peers: &[&PinnedPeer]) -> TransportConfig {
    TransportConfig {
        identity: me.identity.clone(),
        peers: peers.iter().map(|p| (*p).clone()).collect(),
        max_frame_bytes: 1 << 20,
        request_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_millis(500),
        retries: 2,
        retry_backoff: Duration::from_millis(20),
    }
}

fn setup() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Starts a server whose handler replies `"<peer>|<request>"` (or sleeps
/// first if the request is "slow"), counting calls.
fn start_echo_server(cfg: &TransportConfig) -> (quinn::Endpoint, SocketAddr, Rc<Cell<u32>>) {
    let (endpoint, addr, calls, _) = start_echo_server_counting(cfg);
    (endpoint, addr, calls)
}

/// Like `start_echo_server`, also counting handler futures that ran to the end.
fn start_echo_server_counting(cfg: &TransportConfig) -> (quinn::Endpoint, SocketAddr, Rc<Cell<u32>>, Rc<Cell<u32>>) {
    let endpoint = bind_endpoint("127.0.0.1:0".parse().unwrap(), cfg).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let calls = Rc::new(Cell::new(0u32));
    let completed = Rc::new(Cell::new(0u32));
    let counter = Rc::clone(&calls);
    let done = Rc::clone(&completed);
    let handler = move |peer: String, request: Vec<u8>| {
        counter.set(counter.get() + 1);
        let done = Rc::clone(&done);
        async move {
            if request == b"slow" {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let mut reply = format!("{peer}|").into_bytes();
            reply.extend_from_slice(&request);
            done.set(done.get() + 1);
            reply
        }
    };
    actix_rt::spawn(serve(endpoint.clone(), cfg, handler));
    (endpoint, addr, calls, completed)
}

#[actix_rt::test]
async fn pinned_nodes_exchange_requests() {
    setup();
    let server = node("authority-1");
    let client = node("processor");
    let server_cfg = config(&server, &[&client.pin]);
    let client_cfg = config(&client, &[&server.pin]);
    let (endpoint, addr, calls) = start_echo_server(&server_cfg);

    let client_ep = bind_endpoint("127.0.0.1:0".parse().unwrap(), &client_cfg).unwrap();
    let client = Client::new(client_ep, &client_cfg);
    let reply = client.request("authority-1", addr, b"hello").await.unwrap();
    assert_eq!(reply, b"processor|hello");

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let client = client.clone();
            actix_rt::spawn(async move {
                let payload = format!("req-{i}").into_bytes();
                let reply = client.request("authority-1", addr, &payload).await.unwrap();
                assert_eq!(reply, format!("processor|req-{i}").into_bytes());
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(calls.get(), 21);

    // An empty request and an empty reply are fine too.
    assert_eq!(client.request("authority-1", addr, b"").await.unwrap(), b"processor|");

    // A client-only endpoint works as well (the CLI user).
    let user = node("user-alice");
    let server_cfg2 = config(&server, &[&user.pin]);
    let (_ep2, addr2, _) = start_echo_server(&server_cfg2);
    let user_cfg = config(&user, &[&server.pin]);
    let user_client = Client::new(client_endpoint(&user_cfg).unwrap(), &user_cfg);
    assert_eq!(user_client.request("authority-1", addr2, b"q").await.unwrap(), b"user-alice|q");
    endpoint.close(0u32.into(), b"done");
}

#[actix_rt::test]
async fn unknown_client_is_refused_before_any_request() {
    setup();
    let server = node("relay-1");
    let friend = node("processor");
    let stranger = node("processor"); // same name, different certificate
    let server_cfg = config(&server, &[&friend.pin]);
    let (_endpoint, addr, calls) = start_echo_server(&server_cfg);

    let stranger_cfg = config(&stranger, &[&server.pin]);
    let stranger_client =
        Client::new(bind_endpoint("127.0.0.1:0".parse().unwrap(), &stranger_cfg).unwrap(), &stranger_cfg);
    let err = stranger_client.request("relay-1", addr, b"let me in").await.unwrap_err();
    assert!(matches!(err, TransportError::Handshake { .. }), "unexpected error: {err}");
    assert!(err.to_string().contains("relay-1"), "{err}");
    assert_eq!(calls.get(), 0);

    let friend_cfg = config(&friend, &[&server.pin]);
    let friend_client = Client::new(bind_endpoint("127.0.0.1:0".parse().unwrap(), &friend_cfg).unwrap(), &friend_cfg);
    assert_eq!(friend_client.request("relay-1", addr, b"hi").await.unwrap(), b"processor|hi");
    assert_eq!(calls.get(), 1);
}

#[actix_rt::test]
async fn wrong_server_pin_fails_the_handshake() {
    setup();
    let server = node("authority-2");
    let impostor_pin = node("authority-2").pin;
    let client = node("processor");
    let server_cfg = config(&server, &[&client.pin]);
    let (_endpoint, addr, calls) = start_echo_server(&server_cfg);

    let client_cfg = config(&client, &[&impostor_pin]);
    let client = Client::new(bind_endpoint("127.0.0.1:0".parse().unwrap(), &client_cfg).unwrap(), &client_cfg);
    let err = client.request("authority-2", addr, b"x").await.unwrap_err();
    assert!(matches!(err, TransportError::Handshake { .. }), "unexpected error: {err}");
    assert_eq!(calls.get(), 0);

    // A peer name that is not pinned at all.
    let err = client.request("nobody", addr, b"x").await.unwrap_err();
    assert!(matches!(err, TransportError::UnknownPeer { .. }), "{err}");
}

#[actix_rt::test]
async fn oversized_frame_gets_no_reply_and_server_keeps_serving() {
    setup();
    let server = node("relay-2");
    let client = node("processor");
    let mut server_cfg = config(&server, &[&client.pin]);
    server_cfg.max_frame_bytes = 1024;
    let (_endpoint, addr, calls) = start_echo_server(&server_cfg);

    let client_cfg = config(&client, &[&server.pin]);
    let client = Client::new(bind_endpoint("127.0.0.1:0".parse().unwrap(), &client_cfg).unwrap(), &client_cfg);
    let err = client.request("relay-2", addr, &vec![7u8; 64 * 1024]).await.unwrap_err();
    assert!(matches!(err, TransportError::Refused { .. }), "unexpected error: {err}");
    assert_eq!(calls.get(), 0);
    assert_eq!(client.request("relay-2", addr, b"small").await.unwrap(), b"processor|small");

    // The client refuses to send more than its own limit.
    let err = client.request("relay-2", addr, &vec![0u8; (1 << 20) + 1]).await.unwrap_err();
    assert!(matches!(err, TransportError::FrameTooLarge { .. }), "{err}");
    // A reply bigger than the client's limit is refused as well.
    let mut small_cfg = config(&node("processor"), &[&server.pin]);
    small_cfg.identity = client_cfg.identity.clone();
    small_cfg.max_frame_bytes = 8;
    let small = Client::new(bind_endpoint("127.0.0.1:0".parse().unwrap(), &small_cfg).unwrap(), &small_cfg);
    let err = small.request("relay-2", addr, b"1234567").await.unwrap_err();
    assert!(matches!(err, TransportError::FrameTooLarge { .. }), "{err}");
    assert_eq!(calls.get(), 2);
}

#[actix_rt::test]
async fn nothing_listening_fails_fast_naming_peer_and_address() {
    setup();
    let server = node("relay-3");
    let client = node("processor");
    let mut client_cfg = config(&client, &[&server.pin]);
    client_cfg.connect_timeout = Duration::from_millis(200);
    client_cfg.retries = 2;
    let dead: SocketAddr = {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap()
    };
    let client = Client::new(bind_endpoint("127.0.0.1:0".parse().unwrap(), &client_cfg).unwrap(), &client_cfg);
    let started = Instant::now();
    let err = client.request("relay-3", dead, b"x").await.unwrap_err();
    let elapsed = started.elapsed();
    let message = err.to_string();
    assert!(message.contains("relay-3"), "{message}");
    assert!(message.contains(&dead.to_string()), "{message}");
    assert!(matches!(err, TransportError::Unreachable { attempts: 3, .. }), "{message}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

#[actix_rt::test]
async fn slow_handler_times_out_naming_the_peer() {
    setup();
    let server = node("authority-3");
    let client = node("processor");
    let server_cfg = config(&server, &[&client.pin]);
    let (_endpoint, addr, calls, completed) = start_echo_server_counting(&server_cfg);
    let mut client_cfg = config(&client, &[&server.pin]);
    client_cfg.request_timeout = Duration::from_millis(300);
    let client = Client::new(bind_endpoint("127.0.0.1:0".parse().unwrap(), &client_cfg).unwrap(), &client_cfg);
    let started = Instant::now();
    let err = client.request("authority-3", addr, b"slow").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(matches!(err, TransportError::Timeout { what: "request", .. }), "{err}");
    assert!(err.to_string().contains("authority-3"), "{err}");
    // Not retried: the handler ran once.
    assert_eq!(calls.get(), 1);
    // The connection is still usable.
    assert_eq!(client.request("authority-3", addr, b"fast").await.unwrap(), b"processor|fast");
    // The server dropped the abandoned slow request instead of finishing it.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(calls.get(), 2);
    assert_eq!(completed.get(), 1);
}

/// A raw quinn connection from `client` to `server` (pinned identities), for
/// tests that misbehave below the `Client` API.
async fn raw_connection(
    client: &Node,
    server: &Node,
    addr: SocketAddr,
    name: &str,
) -> (quinn::Endpoint, quinn::Connection) {
    let tls = crux::actors::tls::client_config(&client.identity, &server.pin).unwrap();
    let quic = std::sync::Arc::new(quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap());
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let connection = endpoint.connect_with(quinn::ClientConfig::new(quic), addr, name).unwrap().await.unwrap();
    (endpoint, connection)
}

#[actix_rt::test]
async fn aborted_and_unexpected_streams_do_not_stop_the_server() {
    setup();
    let server = node("relay-4");
    let client = node("processor");
    let server_cfg = config(&server, &[&client.pin]);
    let (_endpoint, addr, calls) = start_echo_server(&server_cfg);

    // A raw connection with the pinned identity, misbehaving on purpose.
    let (_raw_ep, connection) = raw_connection(&client, &server, addr, "relay-4").await;
    // A request stream reset halfway.
    let (mut send, _recv) = connection.open_bi().await.unwrap();
    send.write_all(b"half a req").await.unwrap();
    send.reset(42u32.into()).unwrap();
    // Unidirectional streams are not allowed at all.
    let uni = tokio::time::timeout(Duration::from_millis(200), connection.open_uni()).await;
    assert!(uni.is_err(), "server granted a unidirectional stream");
    // The same connection still carries a proper request.
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    send.write_all(b"ok").await.unwrap();
    send.finish().unwrap();
    assert_eq!(recv.read_to_end(1024).await.unwrap(), b"processor|ok");
    assert_eq!(calls.get(), 1);
}

#[actix_rt::test]
async fn concurrent_requests_to_a_dead_peer_do_not_queue_up() {
    setup();
    let server = node("relay-5");
    let client = node("processor");
    let mut client_cfg = config(&client, &[&server.pin]);
    client_cfg.connect_timeout = Duration::from_millis(200);
    client_cfg.retries = 1;
    let dead: SocketAddr = {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap()
    };
    let client = Client::new(bind_endpoint("127.0.0.1:0".parse().unwrap(), &client_cfg).unwrap(), &client_cfg);
    let started = Instant::now();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let client = client.clone();
            actix_rt::spawn(async move { client.request("relay-5", dead, b"x").await })
        })
        .collect();
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("relay-5"), "{err}");
    }
    // One connect timeout per round (2 rounds), not one per request.
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(1500), "took {elapsed:?}");
}

/// Runs an echo server in its own thread and actix System until `stop`
/// fires; then the runtime is dropped without closing connections, as in a
/// crash.
fn server_thread(
    cfg: TransportConfig,
    addr: SocketAddr,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>, std::thread::JoinHandle<()>) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let endpoint = bind_endpoint(addr, &cfg).unwrap();
            addr_tx.send(endpoint.local_addr().unwrap()).unwrap();
            let server = serve(endpoint, &cfg, |peer, request: Vec<u8>| async move {
                let mut reply = format!("{peer}|").into_bytes();
                reply.extend_from_slice(&request);
                reply
            });
            tokio::select! {
                _ = server => {}
                _ = stop_rx => {}
            }
        });
    });
    (addr_rx.recv().unwrap(), stop_tx, handle)
}

#[actix_rt::test]
async fn client_reconnects_after_the_server_restarts() {
    setup();
    let server = node("authority-4");
    let client = node("processor");
    let server_cfg = config(&server, &[&client.pin]);
    let (addr, stop, handle) = server_thread(server_cfg.clone(), "127.0.0.1:0".parse().unwrap());

    let mut client_cfg = config(&client, &[&server.pin]);
    client_cfg.request_timeout = Duration::from_secs(5);
    let client = Client::new(bind_endpoint("127.0.0.1:0".parse().unwrap(), &client_cfg).unwrap(), &client_cfg);
    assert_eq!(client.request("authority-4", addr, b"one").await.unwrap(), b"processor|one");

    stop.send(()).unwrap();
    handle.join().unwrap();
    let (addr2, stop, handle) = server_thread(server_cfg, addr);
    assert_eq!(addr, addr2);

    // The cached connection is dead; the client notices (stateless reset or
    // close) and reconnects well before the request timeout.
    let started = Instant::now();
    assert_eq!(client.request("authority-4", addr, b"two").await.unwrap(), b"processor|two");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    eprintln!("reconnect after restart took {elapsed:?}");
    stop.send(()).unwrap();
    handle.join().unwrap();
}

#[actix_rt::test]
async fn ambiguous_pins_are_rejected_at_bind() {
    setup();
    let me = node("processor");
    let a = node("relay-1");
    let mut twice = a.pin.clone();
    twice.name = "relay-9".to_string();
    let err = bind_endpoint("127.0.0.1:0".parse().unwrap(), &config(&me, &[&a.pin, &twice])).unwrap_err();
    assert!(matches!(err, TransportError::Config { .. }), "{err}");
    let b = node("relay-1");
    let err = bind_endpoint("127.0.0.1:0".parse().unwrap(), &config(&me, &[&a.pin, &b.pin])).unwrap_err();
    assert!(err.to_string().contains("relay-1"), "{err}");
}

/// Issue 9: a pinned peer could hold about 100 streams of 16 MiB each per
/// connection. Now at most `MAX_STREAMS_PER_CONNECTION` request streams are
/// open at once, and request bytes in flight per peer are capped at
/// `IN_FLIGHT_FRAMES_PER_PEER` frames: beyond that a request is stopped
/// (code `CODE_BUSY`) before its handler runs, and the server keeps serving.
#[actix_rt::test]
async fn a_peer_cannot_hold_unbounded_streams_or_bytes_in_flight() {
    use crux::actors::transport::{CODE_BUSY, IN_FLIGHT_FRAMES_PER_PEER, MAX_STREAMS_PER_CONNECTION};
    setup();
    let server = node("relay-5");
    let client = node("processor");
    let server_cfg = config(&server, &[&client.pin]);
    let (_endpoint, addr, calls) = start_echo_server(&server_cfg);
    let (_raw_ep, connection) = raw_connection(&client, &server, addr, "relay-5").await;

    // streams: the cap is reached, the next one waits, and frees up on reset
    let mut open = Vec::new();
    for _ in 0..MAX_STREAMS_PER_CONNECTION {
        let (mut send, recv) = connection.open_bi().await.unwrap();
        send.write_all(b"unfinished").await.unwrap();
        open.push((send, recv));
    }
    let extra = tokio::time::timeout(Duration::from_millis(300), connection.open_bi()).await;
    assert!(extra.is_err(), "a stream beyond the cap of {MAX_STREAMS_PER_CONNECTION} was granted");
    for (mut send, _) in open.drain(..) {
        send.reset(1u32.into()).unwrap();
    }
    let (mut send, mut recv) =
        tokio::time::timeout(Duration::from_secs(2), connection.open_bi()).await.unwrap().unwrap();
    send.write_all(b"ok").await.unwrap();
    send.finish().unwrap();
    assert_eq!(recv.read_to_end(1024).await.unwrap(), b"processor|ok");

    // bytes: unfinished 300 KiB requests until the peer's budget of 4 frames is spent
    let chunk = vec![7u8; 300 * 1024];
    let budget = server_cfg.max_frame_bytes * IN_FLIGHT_FRAMES_PER_PEER;
    let mut stopped_after = None;
    for i in 0..MAX_STREAMS_PER_CONNECTION {
        let (mut send, recv) = connection.open_bi().await.unwrap();
        let written = tokio::time::timeout(Duration::from_secs(2), async {
            send.write_all(&chunk).await?;
            // give the server time to read what was sent
            tokio::time::sleep(Duration::from_millis(50)).await;
            send.write_all(b"x").await
        })
        .await
        .unwrap();
        open.push((send, recv));
        if let Err(quinn::WriteError::Stopped(code)) = written {
            assert_eq!(code.into_inner(), u64::from(CODE_BUSY));
            stopped_after = Some(usize::try_from(i).unwrap() + 1);
            break;
        }
    }
    let n = stopped_after.expect("no request was stopped for bytes in flight");
    assert!(n * chunk.len() > budget && (n - 1) * chunk.len() <= budget + chunk.len(), "stopped after {n} requests");
    assert_eq!(calls.get(), 1, "no handler ran for the unfinished requests");
    // the server keeps serving once the peer lets go
    for (mut send, _) in open.drain(..) {
        let _ = send.reset(1u32.into());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    send.write_all(b"again").await.unwrap();
    send.finish().unwrap();
    assert_eq!(recv.read_to_end(1024).await.unwrap(), b"processor|again");
}

/// Runs `f` until it is true or 5 s have passed.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(5), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_rt::test]
async fn connections_beyond_the_limit_lose_no_request_in_flight() {
    use crux::actors::transport::MAX_CONNECTIONS_PER_PEER;
    setup();
    let server = node("processor");
    let user = node("user-alice");
    let server_cfg = config(&server, &[&user.pin]);
    let user_cfg = config(&user, &[&server.pin]);
    let (_endpoint, addr, calls) = start_echo_server(&server_cfg);
    let new_client = |cfg: &TransportConfig| Client::new(client_endpoint(cfg).unwrap(), cfg);

    // as many CLI connections as allowed, each with a 1 s query in flight
    let slow: Vec<_> = (0..MAX_CONNECTIONS_PER_PEER)
        .map(|_| {
            let client = new_client(&user_cfg);
            actix_rt::spawn(async move {
                let reply = client.request_at_most_once("processor", addr, b"slow").await;
                (client, reply)
            })
        })
        .collect();
    let limit = u32::try_from(MAX_CONNECTIONS_PER_PEER).unwrap();
    eventually("every slow request to be served", || calls.get() == limit).await;

    // one more: its connection is refused before any request is read (the
    // server used to close the oldest connection, losing its query); a
    // client that may wait only 200 ms gives up with that error
    let mut hasty = user_cfg.clone();
    hasty.request_timeout = Duration::from_millis(200);
    let t = Instant::now();
    let err = new_client(&hasty).request_at_most_once("processor", addr, b"extra").await.unwrap_err();
    assert!(matches!(err, TransportError::Busy { .. }), "{err}");
    assert!(err.to_string().contains("the request was not handled"), "{err}");
    assert!(t.elapsed() >= Duration::from_millis(200), "gave up before its request timeout");
    // a query that may wait its 2 s (retries 0: waiting for a busy peer is no retry) gets through
    let mut patient = user_cfg.clone();
    patient.retries = 0;
    let patient = new_client(&patient);
    let waiting = actix_rt::spawn(async move { patient.request_at_most_once("processor", addr, b"waited").await });

    // every query in flight gets its reply; the clients keep their connections open
    let mut idle = Vec::new();
    for task in slow {
        let (client, reply) = task.await.unwrap();
        assert_eq!(reply.unwrap(), b"user-alice|slow");
        idle.push(client);
    }
    assert_eq!(waiting.await.unwrap().unwrap(), b"user-alice|waited");
    // neither refused request ran twice or at all: 8 slow ones, the patient one once
    assert_eq!(calls.get(), limit + 1);

    // with all the user's connections idle, a new one closes the oldest idle one and is served
    assert_eq!(new_client(&user_cfg).request("processor", addr, b"next").await.unwrap(), b"user-alice|next");
    // the client of the closed connection reconnects on its next request
    assert_eq!(idle[0].request_at_most_once("processor", addr, b"back").await.unwrap(), b"user-alice|back");
}
