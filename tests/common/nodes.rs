//! Real `crux-node` processes for network tests: a cluster folder written by
//! `crux-node init` into a temporary directory, node processes started from
//! it (killed on drop), and `Peer`: a client holding some node's identity
//! (by default the processor's, i.e. a dishonest processor) that can run
//! each protocol step by hand: admissions, describe, contributions,
//! registrations and decryptions.
#![allow(dead_code, clippy::unwrap_used)]

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crux::actors::error::TransportError;
use crux::actors::keys::{resolve, transport_config, unix_now};
use crux::actors::transport::{client_endpoint_for, Client, TransportConfig};
use crux::config::NodeConfig;
use crux::protocol::wire::{decode, encode, DEFAULT_MAX_FRAME};
use crux::protocol::*;
use crux::stats::{PlanStep, Planner, QueryParams, RelayTask, Release};
use rand::rngs::OsRng;
use rand::RngCore;

use super::data_path;

pub const BIN: &str = env!("CARGO_BIN_EXE_crux-node");
/// Column C of tests/data/areas.xlsx: 411 values; 137 on each of 3 relays.
pub const LABELS: [&str; 3] = ["Population", "All usual residents", "1996"];
pub const AUTHORITIES: [&str; 2] = ["authority-1", "authority-2"];
pub const RELAYS: [&str; 3] = ["relay-1", "relay-2", "relay-3"];
pub const BACKEND: [&str; 5] = ["authority-1", "authority-2", "relay-1", "relay-2", "relay-3"];

/// Short timeouts for the node processes (config overrides by environment).
pub const NODE_ENV: [(&str, &str); 6] = [
    ("CRUX__TIMEOUTS__CONNECT_MS", "500"),
    ("CRUX__TIMEOUTS__REQUEST_MS", "10000"),
    ("CRUX__TIMEOUTS__QUERY_MS", "30000"),
    ("CRUX__TIMEOUTS__RETRIES", "1"),
    ("CRUX__TIMEOUTS__RETRY_BACKOFF_MS", "50"),
    ("RUST_LOG", "info"),
];

pub fn setup() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A base port P such that P..P+count are free UDP ports on 127.0.0.1;
/// clusters of one test run never share a range.
pub fn free_base_port(count: u32) -> u16 {
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
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<(String, Child)>,
}

impl Cluster {
    /// 2 authorities (n-of-n), 3 relays over slices of areas.xlsx, min_relays 2.
    pub fn init(extra: &[&str]) -> Cluster {
        let mut args = vec!["--header-rows", "3"];
        args.extend_from_slice(extra);
        Cluster::init_with_data(&data_path("areas.xlsx"), &args)
    }

    /// The same over another data file.
    pub fn init_with_data(data: &Path, extra: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let base = free_base_port(6).to_string();
        let out = Command::new(BIN)
            .arg("init")
            .arg("--out")
            .arg(dir.path())
            .arg("--data")
            .arg(data)
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

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub fn start(&mut self, name: &str) {
        self.start_with_env(name, &[]);
    }

    /// Starts a node with extra environment variables (config overrides).
    pub fn start_with_env(&mut self, name: &str, env: &[(&str, &str)]) {
        let log = File::options().create(true).append(true).open(self.path(&format!("logs/{name}.log"))).unwrap();
        let child = Command::new(BIN)
            .arg("start")
            .arg("--config")
            .arg(self.path(&format!("{name}.yaml")))
            .envs(NODE_ENV)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes.push((name.to_string(), child));
    }

    pub fn start_all(&mut self, names: &[&str]) {
        for name in names {
            self.start(name);
        }
    }

    /// Stops a node: SIGKILL (a crash) or SIGTERM (graceful shutdown).
    pub fn stop(&mut self, name: &str, graceful: bool) {
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

    pub fn logs(&self) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(self.path("logs")).unwrap() {
            let path = entry.unwrap().path();
            text.push_str(&format!("--- {}\n{}\n", path.display(), std::fs::read_to_string(&path).unwrap_or_default()));
        }
        text
    }

    /// A node's config as a client in this test uses it: short timeouts.
    pub fn config(&self, name: &str) -> NodeConfig {
        let mut cfg = NodeConfig::load(&self.path(&format!("{name}.yaml"))).unwrap();
        cfg.timeouts.connect = Duration::from_millis(500);
        cfg.timeouts.request = Duration::from_secs(10);
        cfg.timeouts.retries = 2;
        cfg.timeouts.retry_backoff = Duration::from_millis(50);
        cfg
    }

    /// `crux-node status` with a user config; short timeouts.
    pub fn status(&self, user_config: &Path) -> Output {
        Command::new(BIN)
            .arg("status")
            .arg("--config")
            .arg(user_config)
            .envs([("CRUX__TIMEOUTS__CONNECT_MS", "1000"), ("CRUX__TIMEOUTS__RETRIES", "0"), ("RUST_LOG", "warn")])
            .output()
            .unwrap()
    }

    /// `crux-node query ...` with a user config; short timeouts.
    pub fn query(&self, user_config: &Path, args: &[&str]) -> Output {
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
pub struct Peer {
    pub cfg: NodeConfig,
    pub client: Client,
    pub endpoint: quinn::Endpoint,
}

impl Peer {
    pub fn new(cfg: NodeConfig) -> Peer {
        let tcfg = transport_config(&cfg).unwrap();
        Peer::with_transport(cfg, tcfg)
    }

    pub fn with_transport(cfg: NodeConfig, tcfg: TransportConfig) -> Peer {
        let target = resolve(&cfg.cluster.processor).unwrap();
        let endpoint = client_endpoint_for(target, &tcfg).unwrap();
        let client = Client::new(endpoint.clone(), &tcfg);
        Peer { cfg, client, endpoint }
    }

    pub fn addr(&self, name: &str) -> SocketAddr {
        let c = &self.cfg.cluster;
        let peer = std::iter::once(&c.processor)
            .chain(c.authorities.iter())
            .chain(c.relays.iter().map(|r| &r.peer))
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no node {name}"));
        resolve(peer).unwrap()
    }

    pub async fn raw<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        request: &Req,
    ) -> Result<Resp, TransportError> {
        let reply = self.client.request(name, self.addr(name), &encode(request).unwrap()).await?;
        Ok(decode(&reply, DEFAULT_MAX_FRAME).unwrap())
    }

    pub async fn authority(&self, name: &str, request: &AuthorityRequest) -> AuthorityResponse {
        self.raw(name, request).await.unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    pub async fn relay(&self, name: &str, request: &RelayRequest) -> RelayResponse {
        self.raw(name, request).await.unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// Polls each node with Status every 100 ms until it answers (at most 15 s).
    pub async fn wait_ready(&self, cluster: &Cluster, names: &[&str]) {
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

    /// `AdmitQuery` at every authority; the admission or the first refusal.
    pub async fn admit_query(&self, query: &QueryIntent) -> Result<Admission, String> {
        let mut signatures = Vec::new();
        for authority in AUTHORITIES {
            match self
                .authority(authority, &AuthorityRequest::AdmitQuery { query: query.clone(), user: "user".into() })
                .await
            {
                AuthorityResponse::Admitted { signature, .. } => signatures.push((authority.to_string(), signature)),
                AuthorityResponse::Refused { reason } => return Err(format!("{authority}: {reason}")),
                other => panic!("{authority}: {other:?}"),
            }
        }
        Ok(Admission { signatures })
    }

    /// `AdmitRound` at every authority; the admission or the first refusal.
    pub async fn admit_round(&self, spec: &QuerySpec, round: u32, task: &RelayTask) -> Result<Admission, String> {
        let mut signatures = Vec::new();
        for authority in AUTHORITIES {
            let request = AuthorityRequest::AdmitRound { spec: spec.clone(), round, task: task.clone() };
            match self.authority(authority, &request).await {
                AuthorityResponse::Admitted { signature, .. } => signatures.push((authority.to_string(), signature)),
                AuthorityResponse::Refused { reason } => return Err(format!("{authority}: {reason}")),
                other => panic!("{authority}: {other:?}"),
            }
        }
        Ok(Admission { signatures })
    }

    /// A fresh query for `LABELS` issued now.
    pub fn intent(&self, params: QueryParams) -> QueryIntent {
        QueryIntent {
            id: QueryId::random(&mut OsRng),
            issued_at: unix_now(),
            dataset: self.cfg.cluster.dataset.clone(),
            labels: LABELS.iter().map(|s| s.to_string()).collect(),
            params,
        }
    }

    /// Runs a query's admission as the processor would: every authority
    /// admits it, relay-1 describes the column (scale), every authority
    /// admits round 0 of the plan. Panics on a refusal.
    pub async fn new_query(&self, params: QueryParams) -> Query {
        self.try_query(self.intent(params)).await.unwrap_or_else(|e| panic!("admission refused: {e}"))
    }

    pub async fn try_query(&self, intent: QueryIntent) -> Result<Query, String> {
        let admission = self.admit_query(&intent).await?;
        self.finish_admission(intent, admission).await
    }

    /// Describe (relay-1) and round-0 admission of an admitted query.
    pub async fn finish_admission(&self, intent: QueryIntent, admission: Admission) -> Result<Query, String> {
        let request = RelayRequest::Describe { query: intent.clone(), admission: admission.clone() };
        let info = match self.relay("relay-1", &request).await {
            RelayResponse::Described(info) => info,
            other => return Err(format!("describe: {other:?}")),
        };
        let decimals = info.decimals.max(intent.params.parameter_decimals().unwrap());
        let spec = QuerySpec::new(intent.clone(), decimals);
        let PlanStep::Round { round: 0, task } =
            Planner::new(intent.params.clone(), decimals, 20).unwrap().start().unwrap()
        else {
            panic!("a plan starts with round 0")
        };
        let round_admission = self.admit_round(&spec, 0, &task).await?;
        Ok(Query { spec, task, query_admission: admission, admission: round_admission })
    }

    /// A genuine round-0 contribution, signed and proved by the real relay.
    pub async fn contribute(&self, q: &Query, relay: &str) -> SignedContribution {
        let request = RelayRequest::Contribute {
            spec: q.spec.clone(),
            round: 0,
            task: q.task.clone(),
            admission: q.admission.clone(),
        };
        match self.relay(relay, &request).await {
            RelayResponse::Contribution(c) => *c,
            other => panic!("{relay}: {other:?}"),
        }
    }

    pub async fn contributions(&self, q: &Query, relays: &[&str]) -> Vec<SignedContribution> {
        let mut all = Vec::new();
        for relay in relays {
            all.push(self.contribute(q, relay).await);
        }
        all
    }

    pub async fn register(
        &self,
        authority: &str,
        spec: &QuerySpec,
        task: &RelayTask,
        contributions: Vec<SignedContribution>,
    ) -> AuthorityResponse {
        let request = AuthorityRequest::Register { spec: spec.clone(), round: 0, task: task.clone(), contributions };
        self.authority(authority, &request).await
    }

    pub async fn decrypt(&self, authority: &str, id: QueryId, round: u32, release: Release) -> AuthorityResponse {
        self.authority(authority, &AuthorityRequest::Decrypt { query_id: id, round, release }).await
    }
}

/// An admitted query: its spec, round 0's task, and the admissions.
#[derive(Clone, Debug)]
pub struct Query {
    pub spec: QuerySpec,
    pub task: RelayTask,
    pub query_admission: Admission,
    pub admission: Admission,
}

pub fn refusal(response: AuthorityResponse) -> String {
    match response {
        AuthorityResponse::Refused { reason } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

pub fn relay_error(response: RelayResponse) -> String {
    match response {
        RelayResponse::Error { message } => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

pub fn registered(response: AuthorityResponse) {
    match response {
        AuthorityResponse::Registered => {}
        other => panic!("expected Registered, got {other:?}"),
    }
}
