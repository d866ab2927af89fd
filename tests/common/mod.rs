//! Shared test helpers: expected statistics from tests/data/expected_stats.json,
//! and an in-memory cluster that passes every message through the wire
//! encoding between real role state machines.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crux::actors::column_source::FileColumnSource;
use crux::crypto::{DlogSolver, EncryptionKey, JointPublicKey, KeyShare, MemoryTable, RelayIdentity};
use crux::data::{Shard, SourceSpec};
use crux::protocol::authority::{AuthorityPolicy, AuthorityState};
use crux::protocol::ledger::MemoryLedger;
use crux::protocol::processor::{ProcessorView, QueryDriver, Step};
use crux::protocol::relay::{ColumnSource, RelayState};
use crux::protocol::wire::{decode, encode, DEFAULT_MAX_FRAME};
use crux::protocol::*;
use crux::stats::{Epsilon, QueryParams};
use rand::rngs::OsRng;

pub fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

pub fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(data_path("expected_stats.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// (letter, [group, sub, period], stats) for every column.
pub fn expected_columns() -> Vec<(String, Vec<String>, serde_json::Value)> {
    let e = expected();
    e["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let labels = ["group", "sub", "period"].iter().map(|k| c[*k].as_str().unwrap().to_string()).collect();
            (c["column"].as_str().unwrap().to_string(), labels, c["stats"].clone())
        })
        .collect()
}

/// Parses "p/q" or an integer into a reduced fraction.
pub fn fraction(text: &str) -> (i128, i128) {
    let (n, d) = match text.split_once('/') {
        Some((n, d)) => (n.parse::<i128>().unwrap(), d.parse::<i128>().unwrap()),
        None => (text.parse::<i128>().unwrap(), 1),
    };
    crux::stats::result::reduce(n, d).unwrap()
}

pub struct MemoryCluster {
    pub relays: Vec<(RelayState, Box<dyn ColumnSource>)>,
    pub authorities: Vec<(AuthorityState, MemoryLedger)>,
    pub view: Arc<ProcessorView>,
    pub solver: Arc<DlogSolver<Arc<MemoryTable>>>,
    /// every encoded message, for leak checks
    pub transcript: Vec<Vec<u8>>,
    /// per query: (rounds of contributions, ciphertexts sent by one relay, releases decrypted)
    pub last_costs: (usize, usize, usize),
}

fn status(name: &str, role: Role) -> NodeStatus {
    NodeStatus { name: name.to_string(), role, version: "test".into(), details: vec![] }
}

pub fn solver() -> Arc<DlogSolver<Arc<MemoryTable>>> {
    static SOLVER: std::sync::OnceLock<Arc<DlogSolver<Arc<MemoryTable>>>> = std::sync::OnceLock::new();
    SOLVER.get_or_init(|| Arc::new(DlogSolver::new(Arc::new(MemoryTable::build(16).unwrap()), 30).unwrap())).clone()
}

impl MemoryCluster {
    /// `relays` relays over slices of `file`, 3 authorities.
    pub fn new(file: &str, relays: u32, allow_exact: bool, min_relays: usize) -> Self {
        let sources = (0..relays)
            .map(|j| {
                let mut spec = SourceSpec::new(data_path(file));
                spec.shard = Some(Shard { index: j, count: relays });
                Box::new(FileColumnSource::new(&format!("relay-{}", j + 1), vec![spec])) as Box<dyn ColumnSource>
            })
            .collect();
        Self::with_sources(sources, allow_exact, min_relays)
    }

    pub fn with_sources(sources: Vec<Box<dyn ColumnSource>>, allow_exact: bool, min_relays: usize) -> Self {
        let shares: Vec<KeyShare> =
            (1..=3).map(|i| KeyShare::generate(&format!("authority-{i}"), &mut OsRng)).collect();
        let joint =
            JointPublicKey::assemble(&shares.iter().map(|s| s.public_share(&mut OsRng)).collect::<Vec<_>>()).unwrap();
        let mut relay_nodes = Vec::new();
        let mut relay_keys = Vec::new();
        for (j, source) in sources.into_iter().enumerate() {
            let name = format!("relay-{}", j + 1);
            let identity = RelayIdentity::generate(&mut OsRng);
            relay_keys.push((name.clone(), identity.public_key()));
            relay_nodes.push((RelayState::new(&name, identity, EncryptionKey::new(&joint)), source));
        }
        let policy = AuthorityPolicy {
            dataset: "areas".into(),
            min_relays,
            allow_exact,
            budget: Epsilon::parse("10").unwrap(),
            replay_window_secs: 3600,
            relays: relay_keys.iter().cloned().collect::<HashMap<_, _>>(),
        };
        let authorities = shares
            .into_iter()
            .map(|s| (AuthorityState::new(s, joint.clone(), policy.clone()), MemoryLedger::default()))
            .collect();
        let solver = solver();
        let view = Arc::new(ProcessorView {
            dataset: "areas".into(),
            min_relays,
            relays: relay_keys,
            authorities: (1..=3).map(|i| format!("authority-{i}")).collect(),
            joint,
            dlog_max_abs: solver.max_abs(),
        });
        MemoryCluster { relays: relay_nodes, authorities, view, solver, transcript: Vec::new(), last_costs: (0, 0, 0) }
    }

    fn wire<T: serde::Serialize + serde::de::DeserializeOwned>(&mut self, msg: &T) -> T {
        let bytes = encode(msg).unwrap();
        self.transcript.push(bytes.clone());
        decode(&bytes, DEFAULT_MAX_FRAME).unwrap()
    }

    pub fn query(&mut self, labels: &[&str], params: QueryParams) -> Result<QueryAnswer, ProtocolError> {
        let labels: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        let now = 1_700_000_000;
        let (mut driver, mut step) =
            QueryDriver::new(self.view.clone(), QueryId::random(&mut OsRng), now, labels, params)?;
        self.last_costs = (0, 0, 0);
        loop {
            step = match step {
                Step::AskRelays(request) => {
                    let active: Vec<String> = driver.active_relays().to_vec();
                    let mut replies = Vec::new();
                    for i in 0..self.relays.len() {
                        let name = self.relays[i].0.name().to_string();
                        if !active.contains(&name) {
                            continue;
                        }
                        let req = self.wire(&request);
                        let (relay, source) = &mut self.relays[i];
                        let (resp, _note) =
                            relay.handle(req, source.as_ref(), || status(&name, Role::Relay), &mut OsRng);
                        let resp = self.wire(&resp);
                        if let (RelayResponse::Contribution(c), true) = (&resp, replies.is_empty()) {
                            self.last_costs.0 += 1;
                            self.last_costs.1 += match &c.contribution {
                                crux::stats::Contribution::Moments { sum, squares, .. } => {
                                    1 + sum.len() + squares.len()
                                }
                                crux::stats::Contribution::Histogram { counts } => counts.len(),
                            };
                        }
                        replies.push((name, Ok(resp)));
                    }
                    driver.on_relays(replies)?
                }
                Step::AskAuthorities(requests) => {
                    self.last_costs.2 +=
                        requests.iter().filter(|r| matches!(r, AuthorityRequest::Decrypt { .. })).count();
                    let mut all = Vec::new();
                    for request in requests {
                        let mut list = Vec::new();
                        for i in 0..self.authorities.len() {
                            let req = self.wire(&request);
                            let (auth, ledger) = &mut self.authorities[i];
                            let name = auth.name().to_string();
                            let resp = auth.handle(req, ledger, now + 1, || status(&name, Role::Authority), &mut OsRng);
                            let resp = self.wire(&resp);
                            list.push((name, Ok(resp)));
                        }
                        all.push(list);
                    }
                    driver.on_authorities(all)?
                }
                Step::Solve(points) => {
                    let values = points.iter().map(|(r, p)| Ok((*r, self.solver.solve_vartime(p)?))).collect::<Result<
                        Vec<_>,
                        crux::crypto::CryptoError,
                    >>(
                    )?;
                    driver.on_solved(values)?
                }
                Step::Done(answer) => return Ok(*answer),
            }
        }
    }
}
