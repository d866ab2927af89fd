//! `Peer`: a client holding some node's identity (by default the
//! processor's, i.e. a dishonest processor) that runs each protocol step by
//! hand against the nodes of a `cluster::Cluster`: admissions, describe,
//! contributions, registrations and decryptions. Names and labels of
//! `Layout::SMALL` clusters over areas.xlsx.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crux::actors::error::TransportError;
use crux::actors::keys::{resolve, transport_config, unix_now};
use crux::actors::transport::{client_endpoint_for, Client, TransportConfig};
use crux::config::NodeConfig;
use crux::protocol::wire::{decode, encode, DEFAULT_MAX_FRAME};
use crux::protocol::*;
use crux::stats::{PlanStep, Planner, QueryParams, RelayTask, Release};
use rand::rngs::OsRng;

use super::cluster::Cluster;

/// Column C of tests/data/areas.xlsx: 411 values; 137 on each of 3 relays.
pub const LABELS: [&str; 3] = ["Population", "All usual residents", "1996"];
pub const AUTHORITIES: [&str; 2] = ["authority-1", "authority-2"];
pub const RELAYS: [&str; 3] = ["relay-1", "relay-2", "relay-3"];
pub const BACKEND: [&str; 5] = ["authority-1", "authority-2", "relay-1", "relay-2", "relay-3"];

pub fn setup() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An exact cluster with authorities and relays running (no processor), and
/// the dishonest processor's client, ready.
pub async fn exact_backend() -> (Cluster, Peer) {
    setup();
    let mut cluster = Cluster::init(&["--exact"]);
    cluster.start_all(&BACKEND);
    let evil = Peer::new(cluster.config("processor"));
    evil.wait_ready(&cluster, &BACKEND).await;
    (cluster, evil)
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
                .authority(
                    authority,
                    &AuthorityRequest::AdmitQuery {
                        sealing: false,
                        query: query.clone(),
                        user: "user".into(),
                        epoch: 0,
                    },
                )
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
        let request = RelayRequest::Describe { query: intent.clone(), admission: admission.clone(), epoch: 0 };
        let info = match self.relay("relay-1", &request).await {
            RelayResponse::Described(info) => info,
            other => return Err(format!("describe: {other:?}")),
        };
        let decimals = info.decimals.max(intent.params.parameter_decimals().unwrap());
        let decryptors = AUTHORITIES.iter().map(|a| a.to_string()).collect();
        let spec = QuerySpec::new(intent.clone(), decimals, 0, decryptors);
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
            sealing: Vec::new(),
            spec: q.spec.clone(),
            round: 0,
            task: q.task.clone(),
            admission: q.admission.clone(),
            admission_of: AdmissionOf::Round,
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
        self.register_with(authority, spec, task, contributions, vec![]).await
    }

    /// A registration of round 0 that also asks for `releases`.
    pub async fn register_with(
        &self,
        authority: &str,
        spec: &QuerySpec,
        task: &RelayTask,
        contributions: Vec<SignedContribution>,
        releases: Vec<Release>,
    ) -> AuthorityResponse {
        let request = AuthorityRequest::Register {
            shared: Vec::new(),
            spec: spec.clone(),
            round: 0,
            task: task.clone(),
            contributions,
            releases,
        };
        self.authority(authority, &request).await
    }

    pub async fn decrypt(&self, authority: &str, id: QueryId, round: u32, release: Release) -> AuthorityResponse {
        self.authority(authority, &AuthorityRequest::Decrypt { query_id: id, round, releases: vec![release] }).await
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
