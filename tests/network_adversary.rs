//! The authorities as privacy gatekeepers, tried as an adversary would: real
//! `crux-node` processes on loopback (written by `crux-node init` into a
//! temporary folder), and this test acting as a dishonest processor (it holds
//! the processor's identity and sends hand-made requests) or as an intruder
//! (an unpinned certificate). Every attempt must be refused or detected, with
//! an error that says why. See SECURITY.md for the threat model.
//!
//! Node processes are killed when a test ends (the `Cluster` guard). Timeouts
//! are short and readiness is polled, so the file runs in seconds.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{data_path, MemoryCluster};
use crux::actors::error::TransportError;
use crux::actors::keys::{read_joint_key, resolve, transport_config, unix_now};
use crux::actors::tls::{generate_certificate, Identity};
use crux::actors::transport::{client_endpoint_for, Client, TransportConfig};
use crux::config::NodeConfig;
use crux::crypto::{combine_checked, CryptoError, EncryptionKey, PartialDecryption};
use crux::data::read_key_share;
use crux::protocol::processor::{ProcessorView, QueryDriver, Reply, Step};
use crux::protocol::wire::{decode, encode, DEFAULT_MAX_FRAME};
use crux::protocol::*;
use crux::stats::release::target;
use crux::stats::{Contribution, Epsilon, PlanStep, Planner, QueryParams, RelayTask, Release, Statistic};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::Scalar;
use rand::rngs::OsRng;
use rand::RngCore;

const BIN: &str = env!("CARGO_BIN_EXE_crux-node");
/// Column C of tests/data/areas.xlsx: 411 values; 137 on each of 3 relays.
const LABELS: [&str; 3] = ["Population", "All usual residents", "1996"];
const COUNT_C: u64 = 411;
const SUM_C: &str = "10630925";

/// Short timeouts for the node processes (config overrides by environment).
const NODE_ENV: [(&str, &str); 6] = [
    ("CRUX__TIMEOUTS__CONNECT_MS", "500"),
    ("CRUX__TIMEOUTS__REQUEST_MS", "10000"),
    ("CRUX__TIMEOUTS__QUERY_MS", "30000"),
    ("CRUX__TIMEOUTS__RETRIES", "1"),
    ("CRUX__TIMEOUTS__RETRY_BACKOFF_MS", "50"),
    ("RUST_LOG", "info"),
];

fn setup() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A base port P such that P..P+count are free UDP ports on 127.0.0.1;
/// clusters of one test run never share a range.
fn free_base_port(count: u32) -> u16 {
    static START: OnceLock<u32> = OnceLock::new();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = *START.get_or_init(|| OsRng.next_u32() % 2000 * 16);
    loop {
        let k = NEXT.fetch_add(1, Ordering::SeqCst);
        let base = 20_000 + (start + k * 16) % 40_000;
        let free = (base..base + count).all(|p| UdpSocket::bind(("127.0.0.1", u16::try_from(p).unwrap())).is_ok());
        if free {
            return u16::try_from(base).unwrap();
        }
    }
}

/// A cluster folder written by `crux-node init` and the node processes started
/// from it; every process is killed on drop.
struct Cluster {
    dir: tempfile::TempDir,
    nodes: Vec<(String, Child)>,
}

impl Cluster {
    /// 2 authorities (n-of-n), 3 relays over slices of areas.xlsx, min_relays 2.
    fn init(extra: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let base = free_base_port(6).to_string();
        let out = Command::new(BIN)
            .arg("init")
            .arg("--out")
            .arg(dir.path())
            .arg("--data")
            .arg(data_path("areas.xlsx"))
            .args([
                "--authorities",
                "2",
                "--relays",
                "3",
                "--dlog-bits",
                "12",
                "--dlog-range-bits",
                "28",
                "--base-port",
                &base,
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        Cluster { dir, nodes: Vec::new() }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn start(&mut self, name: &str) {
        let log = File::options().create(true).append(true).open(self.path(&format!("logs/{name}.log"))).unwrap();
        let child = Command::new(BIN)
            .arg("start")
            .arg("--config")
            .arg(self.path(&format!("{name}.yaml")))
            .envs(NODE_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes.push((name.to_string(), child));
    }

    fn start_all(&mut self, names: &[&str]) {
        for name in names {
            self.start(name);
        }
    }

    /// Stops a node: SIGKILL (a crash) or SIGTERM (graceful shutdown).
    fn stop(&mut self, name: &str, graceful: bool) {
        let index = self.nodes.iter().position(|(n, _)| n == name).unwrap();
        let (_, mut child) = self.nodes.remove(index);
        if graceful {
            let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
            assert!(status.success());
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().unwrap().is_none() {
                assert!(Instant::now() < deadline, "{name} did not stop on SIGTERM");
                std::thread::sleep(Duration::from_millis(50));
            }
        } else {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn logs(&self) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(self.path("logs")).unwrap() {
            let path = entry.unwrap().path();
            text.push_str(&format!("--- {}\n{}\n", path.display(), std::fs::read_to_string(&path).unwrap_or_default()));
        }
        text
    }

    /// A node's config as a client in this test uses it: short timeouts.
    fn config(&self, name: &str) -> NodeConfig {
        let mut cfg = NodeConfig::load(&self.path(&format!("{name}.yaml"))).unwrap();
        cfg.timeouts.connect = Duration::from_millis(500);
        cfg.timeouts.request = Duration::from_secs(10);
        cfg.timeouts.retries = 2;
        cfg.timeouts.retry_backoff = Duration::from_millis(50);
        cfg
    }

    /// `crux-node query ...` with a user config; short timeouts.
    fn query(&self, user_config: &Path, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("query")
            .args(args)
            .arg("--config")
            .arg(user_config)
            .envs([("CRUX__TIMEOUTS__CONNECT_MS", "1000"), ("CRUX__TIMEOUTS__RETRIES", "0"), ("RUST_LOG", "warn")])
            .output()
            .unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.nodes {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A client holding some node's identity: by default the processor's, i.e.
/// a dishonest processor that talks to the real relays and authorities.
struct Peer {
    cfg: NodeConfig,
    client: Client,
    endpoint: quinn::Endpoint,
}

impl Peer {
    fn new(cfg: NodeConfig) -> Peer {
        let tcfg = transport_config(&cfg).unwrap();
        Peer::with_transport(cfg, tcfg)
    }

    fn with_transport(cfg: NodeConfig, tcfg: TransportConfig) -> Peer {
        let target = resolve(&cfg.cluster.processor).unwrap();
        let endpoint = client_endpoint_for(target, &tcfg).unwrap();
        let client = Client::new(endpoint.clone(), &tcfg);
        Peer { cfg, client, endpoint }
    }

    fn addr(&self, name: &str) -> SocketAddr {
        let c = &self.cfg.cluster;
        let peer = std::iter::once(&c.processor)
            .chain(c.authorities.iter())
            .chain(c.relays.iter().map(|r| &r.peer))
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no node {name}"));
        resolve(peer).unwrap()
    }

    async fn raw<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        request: &Req,
    ) -> Result<Resp, TransportError> {
        let reply = self.client.request(name, self.addr(name), &encode(request).unwrap()).await?;
        Ok(decode(&reply, DEFAULT_MAX_FRAME).unwrap())
    }

    async fn authority(&self, name: &str, request: &AuthorityRequest) -> AuthorityResponse {
        self.raw(name, request).await.unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    async fn relay(&self, name: &str, request: &RelayRequest) -> RelayResponse {
        self.raw(name, request).await.unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// Polls each node with Status every 100 ms until it answers (at most 15 s).
    async fn wait_ready(&self, cluster: &Cluster, names: &[&str]) {
        let mut cfg = self.cfg.clone();
        cfg.timeouts.connect = Duration::from_millis(200);
        cfg.timeouts.retries = 0;
        let poller = Peer::new(cfg);
        let deadline = Instant::now() + Duration::from_secs(15);
        for name in names {
            loop {
                let answered = if name.starts_with("authority") {
                    matches!(
                        poller.raw::<_, AuthorityResponse>(name, &AuthorityRequest::Status).await,
                        Ok(AuthorityResponse::Status(_))
                    )
                } else if name.starts_with("relay") {
                    matches!(
                        poller.raw::<_, RelayResponse>(name, &RelayRequest::Status).await,
                        Ok(RelayResponse::Status(_))
                    )
                } else {
                    matches!(
                        poller.raw::<_, ProcessorResponse>(name, &ProcessorRequest::Status).await,
                        Ok(ProcessorResponse::Status(_))
                    )
                };
                if answered {
                    break;
                }
                assert!(Instant::now() < deadline, "{name} did not become ready:\n{}", cluster.logs());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        poller.endpoint.close(0u32.into(), b"done");
    }

    /// Starts a query as the processor would: Describe on relay-1 for the
    /// scale, then the plan's first round task.
    async fn new_query(&self, params: QueryParams) -> (QuerySpec, RelayTask) {
        let id = QueryId::random(&mut OsRng);
        let labels: Vec<String> = LABELS.iter().map(|s| s.to_string()).collect();
        let info = match self.relay("relay-1", &RelayRequest::Describe { query_id: id, labels: labels.clone() }).await {
            RelayResponse::Described(info) => info,
            other => panic!("describe: {other:?}"),
        };
        let decimals = info.decimals.max(params.parameter_decimals().unwrap());
        let spec = QuerySpec {
            id,
            issued_at: unix_now(),
            dataset: self.cfg.cluster.dataset.clone(),
            labels,
            params: params.clone(),
            decimals,
        };
        let PlanStep::Round { round: 0, task } = Planner::new(params, decimals, 20).unwrap().start().unwrap() else {
            panic!("a plan starts with round 0")
        };
        (spec, task)
    }

    /// A genuine contribution, signed by the real relay.
    async fn contribute(&self, spec: &QuerySpec, task: &RelayTask, relay: &str) -> SignedContribution {
        match self.relay(relay, &RelayRequest::Contribute { spec: spec.clone(), round: 0, task: task.clone() }).await {
            RelayResponse::Contribution(c) => *c,
            other => panic!("{relay}: {other:?}"),
        }
    }

    async fn contributions(&self, spec: &QuerySpec, task: &RelayTask, relays: &[&str]) -> Vec<SignedContribution> {
        let mut all = Vec::new();
        for relay in relays {
            all.push(self.contribute(spec, task, relay).await);
        }
        all
    }

    async fn register(
        &self,
        authority: &str,
        spec: &QuerySpec,
        task: &RelayTask,
        contributions: Vec<SignedContribution>,
    ) -> AuthorityResponse {
        let request = AuthorityRequest::Register { spec: spec.clone(), round: 0, task: task.clone(), contributions };
        self.authority(authority, &request).await
    }

    async fn decrypt(&self, authority: &str, id: QueryId, round: u32, release: Release) -> AuthorityResponse {
        self.authority(authority, &AuthorityRequest::Decrypt { query_id: id, round, release }).await
    }
}

fn refusal(response: AuthorityResponse) -> String {
    match response {
        AuthorityResponse::Refused { reason } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn registered(response: AuthorityResponse) -> Option<Epsilon> {
    match response {
        AuthorityResponse::Registered { remaining_budget } => remaining_budget,
        other => panic!("expected Registered, got {other:?}"),
    }
}

fn partial(response: AuthorityResponse) -> PartialDecryption {
    match response {
        AuthorityResponse::Partial(p) => p,
        other => panic!("expected a partial decryption, got {other:?}"),
    }
}

fn exact_sum() -> QueryParams {
    QueryParams::new(Statistic::Sum)
}

fn noisy_count(epsilon: &str) -> QueryParams {
    let mut p = QueryParams::new(Statistic::Count);
    p.exact = false;
    p.epsilon = Some(Epsilon::parse(epsilon).unwrap());
    p
}

const AUTHORITIES: [&str; 2] = ["authority-1", "authority-2"];
const RELAYS: [&str; 3] = ["relay-1", "relay-2", "relay-3"];
const BACKEND: [&str; 5] = ["authority-1", "authority-2", "relay-1", "relay-2", "relay-3"];

/// An exact cluster with authorities and relays running (no processor), and
/// the dishonest processor's client, ready.
async fn exact_backend() -> (Cluster, Peer) {
    setup();
    let mut cluster = Cluster::init(&["--exact"]);
    cluster.start_all(&BACKEND);
    let evil = Peer::new(cluster.config("processor"));
    evil.wait_ready(&cluster, &BACKEND).await;
    (cluster, evil)
}

// ------------------------------------------------------------------ 1

#[actix_rt::test]
async fn one_relays_contribution_is_never_decrypted() {
    let (_cluster, evil) = exact_backend().await;
    let (spec, task) = evil.new_query(exact_sum()).await;
    let c1 = evil.contribute(&spec, &task, "relay-1").await;
    for authority in AUTHORITIES {
        let reason = refusal(evil.register(authority, &spec, &task, vec![c1.clone()]).await);
        assert!(reason.contains("only 1 relays contributed (relay-1)") && reason.contains("at least 2"), "{reason}");
        // the same relay twice does not count as two
        let reason = refusal(evil.register(authority, &spec, &task, vec![c1.clone(), c1.clone()]).await);
        assert!(reason.contains("relay-1") && reason.contains("contributed twice"), "{reason}");
        // relay-1's contribution passed off as relay-2's: the signature is relay-1's
        let mut fake = c1.clone();
        fake.relay = "relay-2".into();
        let reason = refusal(evil.register(authority, &spec, &task, vec![c1.clone(), fake]).await);
        assert!(reason.contains("signature check failed for relay-2"), "{reason}");
        // an invented relay
        let mut stranger = c1.clone();
        stranger.relay = "relay-9".into();
        let reason = refusal(evil.register(authority, &spec, &task, vec![c1.clone(), stranger]).await);
        assert!(reason.contains("unknown relay relay-9"), "{reason}");
        // nothing was registered: no release of the query exists
        for release in [Release::Count, Release::SumLimb(0), Release::Sum] {
            let reason = refusal(evil.decrypt(authority, spec.id, 0, release).await);
            assert!(reason.contains("unknown or expired"), "{reason}");
        }
    }
}

// ------------------------------------------------------------------ 2

#[actix_rt::test]
async fn arbitrary_ciphertexts_and_unplanned_releases_are_not_decrypted() {
    let (_cluster, evil) = exact_backend().await;
    // a query id that was never registered
    let never = QueryId::random(&mut OsRng);
    for authority in AUTHORITIES {
        let reason = refusal(evil.decrypt(authority, never, 0, Release::Count).await);
        assert!(reason.contains(&never.to_string()) && reason.contains("unknown"), "{reason}");
    }
    // a valid two-relay sum query
    let (spec, task) = evil.new_query(exact_sum()).await;
    let contributions = evil.contributions(&spec, &task, &["relay-1", "relay-2"]).await;
    for authority in AUTHORITIES {
        registered(evil.register(authority, &spec, &task, contributions.clone()).await);
        // releases that a sum query's plan does not contain
        for release in [
            Release::HistBucket(0),
            Release::HistTotal,
            Release::HistPrefix(1),
            Release::SquaresLimb(0),
            Release::Squares,
            Release::SumLimb(99),
        ] {
            let reason = refusal(evil.decrypt(authority, spec.id, 0, release).await);
            assert!(reason.contains("is not part of") && reason.contains("sum query's plan"), "{release:?}: {reason}");
        }
        // a round that was never registered, and a second round a sum does not have
        let reason = refusal(evil.decrypt(authority, spec.id, 1, Release::Count).await);
        assert!(reason.contains("round 1 is not registered"), "{reason}");
        let request = AuthorityRequest::Register {
            spec: spec.clone(),
            round: 1,
            task: task.clone(),
            contributions: contributions.clone(),
        };
        let reason = refusal(evil.authority(authority, &request).await);
        assert!(reason.contains("beyond the 1 rounds"), "{reason}");
        // the planned release is answered, and a repeat gets the same share
        let first = partial(evil.decrypt(authority, spec.id, 0, Release::Count).await);
        assert_eq!(first.authority, authority);
        assert_eq!(partial(evil.decrypt(authority, spec.id, 0, Release::Count).await), first);
    }
}

// ------------------------------------------------------------------ 3

#[actix_rt::test]
async fn forged_altered_or_reused_relay_signatures_are_refused() {
    let (cluster, evil) = exact_backend().await;
    let (spec, task) = evil.new_query(exact_sum()).await;
    let genuine = evil.contributions(&spec, &task, &RELAYS).await;
    let (c1, c2, c3) = (genuine[0].clone(), genuine[1].clone(), genuine[2].clone());
    let joint = read_joint_key(&cluster.config("processor")).unwrap();
    let chosen = EncryptionKey::new(&joint).encrypt(42, &mut OsRng);
    for authority in AUTHORITIES {
        // a flipped signature byte
        let mut forged = c1.clone();
        forged.signature.0[10] ^= 1;
        let reason = refusal(evil.register(authority, &spec, &task, vec![forged, c2.clone()]).await);
        assert!(reason.contains("signature check failed for relay-1"), "{reason}");
        // a truncated signature
        let mut short = c2.clone();
        short.signature.0.truncate(10);
        let reason = refusal(evil.register(authority, &spec, &task, vec![c1.clone(), short]).await);
        assert!(reason.contains("signature check failed for relay-2"), "{reason}");
        // relay-3's ciphertexts under relay-1's signature
        let mut swapped = c1.clone();
        swapped.contribution = c3.contribution.clone();
        let reason = refusal(evil.register(authority, &spec, &task, vec![swapped, c2.clone()]).await);
        assert!(reason.contains("signature check failed for relay-1"), "{reason}");
        // a ciphertext of the attacker's choice (to get it decrypted) in relay-2's contribution
        let mut planted = c2.clone();
        if let Contribution::Moments { count, .. } = &mut planted.contribution {
            *count = chosen;
        }
        let reason = refusal(evil.register(authority, &spec, &task, vec![c1.clone(), planted]).await);
        assert!(reason.contains("signature check failed for relay-2"), "{reason}");
        // the round number is signed too
        let mut other_round = c1.clone();
        other_round.round = 1;
        let reason = refusal(evil.register(authority, &spec, &task, vec![other_round, c2.clone()]).await);
        assert!(reason.contains("relay-1") && reason.contains("signed round 1 not 0"), "{reason}");
    }
    // reuse: contributions signed for query A presented in query B (a fresh id)
    let mut other = spec.clone();
    other.id = QueryId::random(&mut OsRng);
    // ... or in query A with a changed statement (issue time, parameters, task)
    let mut later = spec.clone();
    later.issued_at += 1;
    let mut mean = spec.clone();
    mean.params.statistic = Statistic::Mean;
    let RelayTask::Moments { limb_bits, squares, sum_quantum, squares_quantum } = task.clone() else {
        panic!("moments")
    };
    let wider = RelayTask::Moments { limb_bits: limb_bits + 1, squares, sum_quantum, squares_quantum };
    for authority in AUTHORITIES {
        for (what, s, t) in [
            ("another query id", &other, &task),
            ("another issue time", &later, &task),
            ("another statistic", &mean, &task),
        ] {
            let reason = refusal(evil.register(authority, s, t, vec![c1.clone(), c2.clone()]).await);
            assert!(reason.contains("signature check failed for relay-1"), "{what}: {reason}");
        }
        let reason = refusal(evil.register(authority, &spec, &wider, vec![c1.clone(), c2.clone()]).await);
        assert!(reason.contains("signature check failed for relay-1"), "another task: {reason}");
        // the untouched contributions of query A are still good (positive control)
        registered(evil.register(authority, &spec, &task, vec![c1.clone(), c2.clone(), c3.clone()]).await);
    }
}

// ------------------------------------------------------------------ 4

#[actix_rt::test]
async fn replayed_query_ids_are_refused_also_after_an_authority_restart() {
    let (mut cluster, evil) = exact_backend().await;
    let (spec, task) = evil.new_query(exact_sum()).await;
    let contributions = evil.contributions(&spec, &task, &RELAYS).await;
    for authority in AUTHORITIES {
        registered(evil.register(authority, &spec, &task, contributions.clone()).await);
        partial(evil.decrypt(authority, spec.id, 0, Release::Count).await);
    }
    for authority in AUTHORITIES {
        let reason = refusal(evil.register(authority, &spec, &task, contributions.clone()).await);
        assert!(reason.contains(&spec.id.to_string()) && reason.contains("replayed query id"), "{reason}");
        // fresh contributions for the same query id do not help either
        let fresh = evil.contributions(&spec, &task, &["relay-2", "relay-3"]).await;
        let reason = refusal(evil.register(authority, &spec, &task, fresh).await);
        assert!(reason.contains("replayed query id"), "{reason}");
    }
    // a crash and restart of authority-1: its LMDB ledger keeps the query id
    cluster.stop("authority-1", false);
    cluster.start("authority-1");
    evil.wait_ready(&cluster, &["authority-1"]).await;
    let reason = refusal(evil.register("authority-1", &spec, &task, contributions.clone()).await);
    assert!(reason.contains("replayed query id"), "after restart: {reason}");
    // the restarted authority lost the query's aggregate: no release without a new registration
    let reason = refusal(evil.decrypt("authority-1", spec.id, 0, Release::SumLimb(0)).await);
    assert!(reason.contains("unknown or expired"), "{reason}");
    // stale and future issue times are refused (the replay window bounds the ledger)
    for (issued_at, what) in [(unix_now() - 2 * 86_400, "stale"), (unix_now() + 3_600, "future")] {
        let mut old = spec.clone();
        old.id = QueryId::random(&mut OsRng);
        old.issued_at = issued_at;
        let signed = evil.contributions(&old, &task, &["relay-1", "relay-2"]).await;
        let reason = refusal(evil.register("authority-1", &old, &task, signed).await);
        assert!(reason.contains("too old or from the future"), "{what}: {reason}");
    }
    // a new query id is admitted (positive control)
    let (fresh, task) = evil.new_query(exact_sum()).await;
    let signed = evil.contributions(&fresh, &task, &["relay-1", "relay-3"]).await;
    registered(evil.register("authority-1", &fresh, &task, signed).await);
}

// ------------------------------------------------------------------ 5

#[actix_rt::test]
async fn the_privacy_budget_holds_also_after_an_authority_restart() {
    setup();
    let mut cluster = Cluster::init(&["--budget", "2"]);
    cluster.start_all(&BACKEND);
    let evil = Peer::new(cluster.config("processor"));
    evil.wait_ready(&cluster, &BACKEND).await;

    // exact queries are refused by a noisy cluster
    let (spec, task) = evil.new_query(exact_sum()).await;
    let signed = evil.contributions(&spec, &task, &["relay-1", "relay-2"]).await;
    let reason = refusal(evil.register("authority-1", &spec, &task, signed).await);
    assert!(reason.contains("exact (noise-free) queries are disabled on authority authority-1"), "{reason}");

    // epsilon 1.5 of 2
    let (spec, task) = evil.new_query(noisy_count("1.5")).await;
    let signed = evil.contributions(&spec, &task, &RELAYS).await;
    for authority in AUTHORITIES {
        assert_eq!(
            registered(evil.register(authority, &spec, &task, signed.clone()).await),
            Some(Epsilon::parse("0.5").unwrap())
        );
        // averaging the noise away: a repeated release gets the very same noisy share
        let first = partial(evil.decrypt(authority, spec.id, 0, Release::Count).await);
        for _ in 0..3 {
            assert_eq!(partial(evil.decrypt(authority, spec.id, 0, Release::Count).await), first);
        }
        // the exact limbs do not exist in a noisy query
        let reason = refusal(evil.decrypt(authority, spec.id, 0, Release::SumLimb(0)).await);
        assert!(reason.contains("is not part of"), "{reason}");
    }
    // epsilon 1 does not fit in the 0.5 left
    let (spec, task) = evil.new_query(noisy_count("1")).await;
    let signed = evil.contributions(&spec, &task, &RELAYS).await;
    for authority in AUTHORITIES {
        let reason = refusal(evil.register(authority, &spec, &task, signed.clone()).await);
        assert!(reason.contains("budget") && reason.contains("remaining budget is epsilon 0.5"), "{reason}");
    }
    // a graceful restart of authority-1: the spent budget is in its LMDB ledger
    cluster.stop("authority-1", true);
    cluster.start("authority-1");
    evil.wait_ready(&cluster, &["authority-1"]).await;
    let (spec, task) = evil.new_query(noisy_count("1")).await;
    let signed = evil.contributions(&spec, &task, &RELAYS).await;
    let reason = refusal(evil.register("authority-1", &spec, &task, signed.clone()).await);
    assert!(reason.contains("budget") && reason.contains("remaining budget is epsilon 0.5"), "after restart: {reason}");
    match evil.authority("authority-1", &AuthorityRequest::Status).await {
        AuthorityResponse::Status(s) => {
            assert!(s.details.contains(&("remaining_epsilon".to_string(), "0.5".to_string())), "{:?}", s.details)
        }
        other => panic!("{other:?}"),
    }
    // and after a crash too
    cluster.stop("authority-1", false);
    cluster.start("authority-1");
    evil.wait_ready(&cluster, &["authority-1"]).await;
    let reason = refusal(evil.register("authority-1", &spec, &task, signed).await);
    assert!(reason.contains("remaining budget is epsilon 0.5"), "after a crash: {reason}");
    // what is left can be spent, once (positive control)
    let (spec, task) = evil.new_query(noisy_count("0.5")).await;
    let signed = evil.contributions(&spec, &task, &["relay-1", "relay-3"]).await;
    assert_eq!(registered(evil.register("authority-1", &spec, &task, signed).await), Some(Epsilon(0)));
}

// ------------------------------------------------------------------ 6

#[actix_rt::test]
async fn unknown_certificates_are_refused_at_the_handshake() {
    setup();
    let mut cluster = Cluster::init(&["--exact"]);
    cluster.start_all(&["authority-1", "relay-1"]);
    let honest = Peer::new(cluster.config("processor"));
    honest.wait_ready(&cluster, &["authority-1", "relay-1"]).await;

    // a fresh certificate claiming to be the processor, pinning the real nodes
    let cert = generate_certificate("processor", &["127.0.0.1".to_string()]).unwrap();
    let mut tcfg = transport_config(&cluster.config("processor")).unwrap();
    tcfg.identity = Identity::from_pem("processor", &cert.cert_pem, &cert.key_pem).unwrap();
    let impostor = Peer::with_transport(cluster.config("processor"), tcfg);
    for node in ["authority-1", "relay-1"] {
        let err = impostor.raw::<_, AuthorityResponse>(node, &AuthorityRequest::Status).await.err().unwrap();
        assert!(matches!(err, TransportError::Handshake { .. }), "{node}: {err}");
        assert!(err.to_string().contains(node), "{err}");
    }
    // genuine certificates of other roles: only the processor may talk to authorities and relays
    for (who, node) in
        [("relay-2", "authority-1"), ("user", "authority-1"), ("user", "relay-1"), ("authority-2", "relay-1")]
    {
        let mut tcfg = transport_config(&cluster.config(who)).unwrap();
        tcfg.peers = transport_config(&cluster.config("processor")).unwrap().peers;
        tcfg.peers.retain(|p| p.name != who);
        let peer = Peer::with_transport(cluster.config("processor"), tcfg);
        let err = peer.raw::<_, AuthorityResponse>(node, &AuthorityRequest::Status).await.err().unwrap();
        assert!(matches!(err, TransportError::Handshake { .. }), "{who} -> {node}: {err}");
    }
    // the nodes keep serving the real processor
    for _ in 0..2 {
        assert!(matches!(
            honest.authority("authority-1", &AuthorityRequest::Status).await,
            AuthorityResponse::Status(_)
        ));
        assert!(matches!(honest.relay("relay-1", &RelayRequest::Status).await, RelayResponse::Status(_)));
    }
}

// ------------------------------------------------------------------ 7

#[actix_rt::test]
async fn a_partial_decryption_with_a_bad_proof_is_detected() {
    let (cluster, evil) = exact_backend().await;
    let (spec, task) = evil.new_query(exact_sum()).await;
    let contributions = evil.contributions(&spec, &task, &RELAYS).await;
    let mut partials = Vec::new();
    for authority in AUTHORITIES {
        registered(evil.register(authority, &spec, &task, contributions.clone()).await);
        partials.push(partial(evil.decrypt(authority, spec.id, 0, Release::Count).await));
    }
    let joint = read_joint_key(&cluster.config("processor")).unwrap();
    let aggregate = Contribution::aggregate(&task, contributions.iter().map(|c| &c.contribution)).unwrap();
    let ciphertext = target(&task, &aggregate, Release::Count).unwrap();
    let context = decryption_context(&spec.id, 0, Release::Count);
    // genuine shares combine to the count of all three relays
    let point = combine_checked(&joint, &ciphertext, &context, &partials, true).unwrap();
    assert_eq!(point, RISTRETTO_BASEPOINT_POINT * Scalar::from(COUNT_C));

    let bad = |partials: &[PartialDecryption], context: &[u8]| {
        combine_checked(&joint, &ciphertext, context, partials, true).unwrap_err()
    };
    // authority-2's share shifted by G (the count would come out one lower)
    let mut shifted = partials.clone();
    shifted[1].share += RISTRETTO_BASEPOINT_POINT;
    assert_eq!(bad(&shifted, &context), CryptoError::InvalidDecryptionProof { authority: "authority-2".into() });
    // a share for another release (its proof is bound to the release)
    let other = decryption_context(&spec.id, 0, Release::SumLimb(0));
    assert_eq!(bad(&partials, &other), CryptoError::InvalidDecryptionProof { authority: "authority-1".into() });
    // a share relabelled as the other authority's
    let mut relabelled = partials.clone();
    relabelled[1] = partials[0].clone();
    relabelled[1].authority = "authority-2".into();
    assert_eq!(bad(&relabelled, &context), CryptoError::InvalidDecryptionProof { authority: "authority-2".into() });
    // a missing authority
    assert_eq!(bad(&partials[..1], &context), CryptoError::InvalidDecryptionProof { authority: "authority-2".into() });
    // a dishonest authority adding (well-proven) noise to an exact query
    let share = read_key_share(&cluster.path("keys/authority-2.share")).unwrap();
    let mut noisy = partials.clone();
    noisy[1] = share.partial_decrypt_noisy(&ciphertext, 5, &context, &mut OsRng);
    assert_eq!(bad(&noisy, &context), CryptoError::InvalidDecryptionProof { authority: "authority-2".into() });
    assert_eq!(
        combine_checked(&joint, &ciphertext, &context, &noisy, false).unwrap(),
        RISTRETTO_BASEPOINT_POINT * Scalar::from(COUNT_C + 5)
    );
}

fn status(name: &str, role: Role) -> NodeStatus {
    NodeStatus { name: name.to_string(), role, version: "test".into(), details: vec![] }
}

/// Drives an in-memory query; `tamper` may change the first decryption replies.
fn run_tampered(tamper: impl Fn(&mut Vec<Reply<AuthorityResponse>>)) -> ProtocolError {
    let mut cluster = MemoryCluster::new("areas.xlsx", 3, true, 2);
    let now = 1_700_000_000;
    let labels = LABELS.iter().map(|s| s.to_string()).collect();
    let (mut driver, mut step) =
        QueryDriver::new(cluster.view.clone(), QueryId::random(&mut OsRng), now, labels, exact_sum()).unwrap();
    loop {
        step = match step {
            Step::AskRelays(request) => {
                let active = driver.active_relays().to_vec();
                let mut replies = Vec::new();
                for (relay, source) in cluster.relays.iter_mut() {
                    let name = relay.name().to_string();
                    if active.contains(&name) {
                        let (response, _) =
                            relay.handle(request.clone(), source.as_ref(), || status(&name, Role::Relay), &mut OsRng);
                        replies.push((name, Ok(response)));
                    }
                }
                driver.on_relays(replies).unwrap()
            }
            Step::AskAuthorities(requests) => {
                let decrypting = requests.iter().any(|r| matches!(r, AuthorityRequest::Decrypt { .. }));
                let mut all = Vec::new();
                for request in requests {
                    let mut list = Vec::new();
                    for (authority, ledger) in cluster.authorities.iter_mut() {
                        let name = authority.name().to_string();
                        let response = authority.handle(
                            request.clone(),
                            ledger,
                            now + 1,
                            || status(&name, Role::Authority),
                            &mut OsRng,
                        );
                        list.push((name, Ok(response)));
                    }
                    all.push(list);
                }
                if decrypting {
                    tamper(&mut all[0]);
                    return driver.on_authorities(all).unwrap_err();
                }
                driver.on_authorities(all).unwrap()
            }
            Step::Solve(_) | Step::Done(_) => panic!("the query went on past its first decryption"),
        }
    }
}

#[test]
fn the_query_driver_refuses_a_tampered_partial_decryption() {
    setup();
    // authority-2's share shifted by G
    let err = run_tampered(|list| {
        if let Some((_, Ok(AuthorityResponse::Partial(p)))) = list.iter_mut().find(|(n, _)| n == "authority-2") {
            p.share += RISTRETTO_BASEPOINT_POINT;
        }
    });
    assert_eq!(err, ProtocolError::Crypto(CryptoError::InvalidDecryptionProof { authority: "authority-2".into() }));
    assert!(err.to_string().contains("authority-2") && err.to_string().contains("invalid proof"), "{err}");
    // authority-3 answering with authority-1's share
    let err = run_tampered(|list| {
        let first = list.iter().find_map(|(n, r)| (n == "authority-1").then(|| r.clone())).unwrap();
        if let Some((_, reply)) = list.iter_mut().find(|(n, _)| n == "authority-3") {
            *reply = first;
        }
    });
    assert!(err.to_string().contains("authority-3") && err.to_string().contains("another authority"), "{err}");
    // an authority that stays silent
    let err = run_tampered(|list| list.retain(|(n, _)| n != "authority-1"));
    assert!(err.to_string().contains("authority-1") && err.to_string().contains("did not answer"), "{err}");
}

// ------------------------------------------------------------------ 8

#[actix_rt::test]
async fn unknown_users_cannot_query() {
    setup();
    let mut cluster = Cluster::init(&["--exact"]);
    cluster.start_all(&BACKEND);
    cluster.start("processor");
    let user = Peer::new(cluster.config("user"));
    user.wait_ready(&cluster, &["processor"]).await;
    let query = ["sum", LABELS[0], LABELS[1], LABELS[2], "--exact", "--json"];

    // the configured user gets an answer (positive control)
    let out = cluster.query(&cluster.path("user.yaml"), &query);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), cluster.logs());
    assert!(String::from_utf8_lossy(&out.stdout).contains(SUM_C), "{}", String::from_utf8_lossy(&out.stdout));

    // eve is added to the folder, but the running processor does not pin her yet
    let added = Command::new(BIN).args(["init", "user", "eve", "--out"]).arg(cluster.path("")).output().unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let out = cluster.query(&cluster.path("user-eve.yaml"), &query);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "eve got an answer: {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.contains("handshake with peer processor"), "{stderr}");

    // mallory: a certificate of her own, in a copy of user.yaml; never pinned
    let cert = generate_certificate("user", &["127.0.0.1".to_string()]).unwrap();
    std::fs::write(cluster.path("certs/mallory.crt"), &cert.cert_pem).unwrap();
    std::fs::write(cluster.path("keys/mallory.key"), &cert.key_pem).unwrap();
    let text = std::fs::read_to_string(cluster.path("user.yaml")).unwrap();
    let text = text.replace("certs/user.crt", "certs/mallory.crt").replace("keys/user.key", "keys/mallory.key");
    assert!(text.contains("mallory.crt") && text.contains("mallory.key"));
    std::fs::write(cluster.path("mallory.yaml"), text).unwrap();
    let out = cluster.query(&cluster.path("mallory.yaml"), &query);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("handshake with peer processor"), "{stderr}");

    // a pinned node that is not a user (relay-1) is refused by the processor
    let relay = Peer::new(cluster.config("relay-1"));
    let request =
        ProcessorRequest::Query { labels: LABELS.iter().map(|s| s.to_string()).collect(), params: exact_sum() };
    match relay.raw::<_, ProcessorResponse>("processor", &request).await.unwrap() {
        ProcessorResponse::Error { message } => {
            assert!(message.contains("relay-1 is not a user of this processor"), "{message}")
        }
        other => panic!("relay-1 got {other:?}"),
    }

    // after a processor restart, eve's pin applies (the refusal above was the pin, not her config)
    cluster.stop("processor", true);
    cluster.start("processor");
    user.wait_ready(&cluster, &["processor"]).await;
    let out = cluster.query(&cluster.path("user-eve.yaml"), &query);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(SUM_C));
    // mallory still cannot
    let out = cluster.query(&cluster.path("mallory.yaml"), &query);
    assert!(!out.status.success());
}

// ------------------------------------------------------------------ transcript

/// Runs one query as an honest processor would, over QUIC to the real relays
/// and authorities, recording every request and reply.
async fn run_recorded(
    me: &Peer,
    view: std::sync::Arc<ProcessorView>,
    params: QueryParams,
    transcript: &mut Vec<Vec<u8>>,
) -> QueryAnswer {
    let solver = common::solver();
    let labels = LABELS.iter().map(|s| s.to_string()).collect();
    let (mut driver, mut step) =
        QueryDriver::new(view, QueryId::random(&mut OsRng), unix_now(), labels, params).unwrap();
    loop {
        step = match step {
            Step::AskRelays(request) => {
                let bytes = encode(&request).unwrap();
                transcript.push(bytes.clone());
                let mut replies = Vec::new();
                for name in driver.active_relays().to_vec() {
                    let reply = me.client.request(&name, me.addr(&name), &bytes).await.unwrap();
                    transcript.push(reply.clone());
                    replies.push((name, Ok(decode::<RelayResponse>(&reply, DEFAULT_MAX_FRAME).unwrap())));
                }
                driver.on_relays(replies).unwrap()
            }
            Step::AskAuthorities(requests) => {
                let mut all = Vec::new();
                for request in requests {
                    let bytes = encode(&request).unwrap();
                    transcript.push(bytes.clone());
                    let mut list = Vec::new();
                    for name in AUTHORITIES {
                        let reply = me.client.request(name, me.addr(name), &bytes).await.unwrap();
                        transcript.push(reply.clone());
                        list.push((
                            name.to_string(),
                            Ok(decode::<AuthorityResponse>(&reply, DEFAULT_MAX_FRAME).unwrap()),
                        ));
                    }
                    all.push(list);
                }
                driver.on_authorities(all).unwrap()
            }
            Step::Solve(points) => {
                let values = points.iter().map(|(r, p)| (*r, solver.solve_vartime(p).unwrap())).collect();
                driver.on_solved(values).unwrap()
            }
            Step::Done(answer) => return *answer,
        }
    }
}

#[actix_rt::test]
async fn no_plaintext_in_any_message_over_quic() {
    let (cluster, me) = exact_backend().await;
    let cfg = cluster.config("processor");
    let view = std::sync::Arc::new(ProcessorView {
        dataset: cfg.cluster.dataset.clone(),
        min_relays: cfg.cluster.min_relays,
        relays: cfg.cluster.relays.iter().map(|r| (r.peer.name.clone(), r.public_key)).collect(),
        authorities: AUTHORITIES.iter().map(|s| s.to_string()).collect(),
        joint: read_joint_key(&cfg).unwrap(),
        dlog_max_abs: common::solver().max_abs(),
    });
    let (_, labels, stats) = common::expected_columns().into_iter().find(|(c, _, _)| c == "C").unwrap();
    assert_eq!(labels, LABELS);
    let mut transcript = Vec::new();
    let a = run_recorded(&me, view.clone(), QueryParams::new(Statistic::Sum), &mut transcript).await;
    assert_eq!(a.result.value.exact_string(), SUM_C);
    assert_eq!(a.relays, RELAYS);
    let a = run_recorded(&me, view.clone(), QueryParams::new(Statistic::Variance), &mut transcript).await;
    let crux::stats::ExactValue::Ratio { num, den } = a.result.value else { panic!("variance is a ratio") };
    assert_eq!((num, den), common::fraction(stats["variance_pop_exact"].as_str().unwrap()));
    let a = run_recorded(&me, view, QueryParams::new(Statistic::Median), &mut transcript).await;
    assert_eq!(a.result.value.exact_string(), stats["median_lower"].as_str().unwrap());

    // needles: large single values, each relay's own sums, and the totals,
    // as msgpack integers and as text
    let column = crux::data::read_column(&crux::data::SourceSpec::new(data_path("areas.xlsx")), &labels).unwrap();
    let mut numbers: Vec<i128> = column.values.iter().copied().filter(|v| v.unsigned_abs() >= 100_000).collect();
    let expected = common::expected();
    let entry = expected["columns"].as_array().unwrap().iter().find(|c| c["column"] == "C").unwrap();
    for relay in entry["relays"]["3"].as_array().unwrap() {
        for key in ["sum", "sum_of_squares"] {
            numbers.push(relay[key].as_str().unwrap().parse().unwrap());
        }
    }
    for key in ["sum", "sum_of_squares"] {
        numbers.push(stats[key].as_str().unwrap().parse().unwrap());
    }
    assert!(numbers.len() > 10);
    let mut needles: Vec<Vec<u8>> = Vec::new();
    for v in &numbers {
        needles.push(rmp_serde::to_vec(&i64::try_from(*v).unwrap()).unwrap());
        needles.push(v.to_string().into_bytes());
    }
    // the search works: a message that did carry a number would be caught
    let probe = encode(&ProcessorRequest::Query { labels: vec![numbers[0].to_string()], params: exact_sum() }).unwrap();
    assert!(needles.iter().any(|n| probe.windows(n.len()).any(|w| w == n.as_slice())));
    for (i, msg) in transcript.iter().enumerate() {
        for (n, needle) in needles.iter().enumerate() {
            assert!(
                !msg.windows(needle.len()).any(|w| w == needle.as_slice()),
                "message {i} carries plaintext number {}",
                numbers[n / 2]
            );
        }
    }
    assert!(transcript.len() > 30, "{} messages", transcript.len());
}

// ------------------------------------------------------------------ regression

/// Regression: a relay's column cache was keyed by query id only, so a
/// processor could have a relay describe one column and then sign a
/// contribution of that column under another column's labels (e.g. to pass
/// off a known or blank column as the second relay of an "aggregate").
#[actix_rt::test]
async fn relay_contributes_the_column_its_signed_statement_names() {
    let (cluster, evil) = exact_backend().await;
    let (mut spec, task) = evil.new_query(QueryParams::new(Statistic::Count)).await;
    spec.id = QueryId::random(&mut OsRng);
    // column E (2006, no blanks: 138 values per relay) described under a fresh query id...
    let other = vec!["Population".to_string(), "All usual residents".to_string(), "2006".to_string()];
    match evil.relay("relay-1", &RelayRequest::Describe { query_id: spec.id, labels: other }).await {
        RelayResponse::Described(info) => assert_eq!(info.labels[2], "2006"),
        r => panic!("{r:?}"),
    }
    // ...then a contribution for column C (1996: 137 values per relay) under the same id
    let contributions = evil.contributions(&spec, &task, &["relay-1", "relay-2"]).await;
    let mut partials = Vec::new();
    for authority in AUTHORITIES {
        registered(evil.register(authority, &spec, &task, contributions.clone()).await);
        partials.push(partial(evil.decrypt(authority, spec.id, 0, Release::Count).await));
    }
    let joint = read_joint_key(&cluster.config("processor")).unwrap();
    let aggregate = Contribution::aggregate(&task, contributions.iter().map(|c| &c.contribution)).unwrap();
    let ciphertext = target(&task, &aggregate, Release::Count).unwrap();
    let point = combine_checked(&joint, &ciphertext, &decryption_context(&spec.id, 0, Release::Count), &partials, true)
        .unwrap();
    assert_ne!(
        point,
        RISTRETTO_BASEPOINT_POINT * Scalar::from(138u64 + 137),
        "relay-1 signed column E's data as column C"
    );
    assert_eq!(point, RISTRETTO_BASEPOINT_POINT * Scalar::from(137u64 + 137));
    // the same id with column C's labels describes column C
    let labels = LABELS.iter().map(|s| s.to_string()).collect();
    match evil.relay("relay-1", &RelayRequest::Describe { query_id: spec.id, labels }).await {
        RelayResponse::Described(info) => {
            assert_eq!(info.labels[2], "1996", "relay-1 described column E for column C's labels")
        }
        r => panic!("{r:?}"),
    }
}

/// Regression: the authority charged the budget of whatever dataset the
/// processor named in the (relay-signed) query spec, so a dishonest processor
/// got a fresh budget for every new dataset name.
#[actix_rt::test]
async fn authority_charges_its_own_dataset_whatever_the_spec_names() {
    setup();
    let mut cluster = Cluster::init(&["--budget", "2"]);
    cluster.start_all(&BACKEND);
    let evil = Peer::new(cluster.config("processor"));
    evil.wait_ready(&cluster, &BACKEND).await;
    let (spec, task) = evil.new_query(noisy_count("1.5")).await;
    let signed = evil.contributions(&spec, &task, &RELAYS).await;
    for authority in AUTHORITIES {
        assert_eq!(
            registered(evil.register(authority, &spec, &task, signed.clone()).await),
            Some(Epsilon::parse("0.5").unwrap())
        );
    }
    // the same data under another dataset name: relays sign it, authorities must refuse it
    for name in ["areas-2", "", "AREAS"] {
        let (mut spec, task) = evil.new_query(noisy_count("1")).await;
        spec.dataset = name.to_string();
        let signed = evil.contributions(&spec, &task, &RELAYS).await;
        for authority in AUTHORITIES {
            let reason = refusal(evil.register(authority, &spec, &task, signed.clone()).await);
            assert!(reason.contains("dataset") && reason.contains("\"areas\""), "{name:?}: {reason}");
        }
    }
    match evil.authority("authority-1", &AuthorityRequest::Status).await {
        AuthorityResponse::Status(s) => {
            assert!(s.details.contains(&("remaining_epsilon".to_string(), "0.5".to_string())), "{:?}", s.details)
        }
        other => panic!("{other:?}"),
    }
}
