//! An in-memory cluster for tests and benchmarks: every role's real state
//! machine (relays over any `ColumnSource`, authorities with in-memory
//! ledgers, the processor's `QueryDriver`), every message passed through the
//! wire encoding, and one driver loop. Optional hooks let a test play a
//! dishonest party by rewriting replies; a trace counts rounds, round trips,
//! ciphertexts, bytes, releases and the thread CPU time each role spent
//! (everything runs on the caller's thread, so CPU time is each role's own
//! work whatever else the machine does).
//!
//! Not used by `crux-node`; real nodes run `actors`. No sockets, no files
//! beyond what the given column sources read.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cpu_time::ThreadTime;

use rand::rngs::{OsRng, StdRng};
use rand::SeedableRng;

use crate::crypto::{deal_for_tests, DlogRange, DlogSolver, JointPublicKey, MemoryTable, RelayIdentity};
use crate::protocol::authority::{AuthorityPolicy, AuthorityState};
use crate::protocol::drive::{run_query, run_ready, QueryPeers};
use crate::protocol::ledger::MemoryLedger;
use crate::protocol::processor::{ProcessorView, QueryDriver};
use crate::protocol::relay::{ColumnSource, RelayState};
use crate::protocol::wire::{decode, decode_at_authority, encode, DEFAULT_MAX_FRAME};
use crate::protocol::*;
use crate::stats::{Epsilon, QueryParams, Release};
use curve25519_dalek::ristretto::RistrettoPoint;

/// Seconds since the epoch that the harness's clock shows.
pub const NOW: u64 = 1_700_000_000;

pub type Solver = Arc<DlogSolver<Arc<MemoryTable>>>;

/// Rewrites the replies to one relay request (a dishonest relay or network).
pub type RelayHook = Box<dyn FnMut(&RelayRequest, &mut Vec<PeerReply<RelayResponse>>)>;
/// Rewrites the replies to one authority request.
pub type AuthorityHook = Box<dyn FnMut(&AuthorityRequest, &mut Vec<PeerReply<AuthorityResponse>>)>;

/// What one query cost, role by role.
#[derive(Clone, Debug, Default)]
pub struct QueryTrace {
    pub rounds: usize,
    /// sequential exchanges with the peers: each request to the relays, and
    /// each batch of requests sent to the authorities at once
    pub round_trips: usize,
    /// ciphertexts relay-1 sent, over all rounds
    pub ciphertexts_per_relay: usize,
    /// share boxes relay-1 sent, over all rounds (committed-share path)
    pub share_boxes_per_relay: usize,
    /// summed shares the authorities released (committed-share path)
    pub share_sums: usize,
    /// bytes of relay-1's encoded contribution replies
    pub bytes_per_relay: usize,
    /// releases = decryptions of an aggregate (each by every authority)
    pub releases: usize,
    pub partial_decryptions: usize,
    pub admissions: usize,
    /// all relays' time contributing, summed
    pub relay: Duration,
    /// part of `relay`: the relays' plaintext passes (reading, rescaling,
    /// local aggregates), summed; the rest is their cryptography
    pub relay_plain: Duration,
    /// the slowest relay of each round, summed
    pub relay_critical: Duration,
    /// the relay with the most cryptography in each round, summed
    pub relay_crypto_critical: Duration,
    /// relays answering Describe, summed
    pub describe: Duration,
    /// relays making encryptions of zero ahead of time (between requests,
    /// `MemoryCluster::precompute_encryptions`), summed: in no role's time
    pub relay_precompute: Duration,
    pub authority: Duration,
    /// the busiest authority of each request, summed
    pub authority_critical: Duration,
    /// authorities' time on admissions alone (part of `authority`)
    pub admission: Duration,
    pub processor: Duration,
    pub solve: Duration,
    /// encoding and decoding every message (the harness's, not a role's)
    pub codec: Duration,
    pub total: Duration,
    /// the driver's (rounds started, most rounds) after each of its steps
    pub progress: Vec<(u32, u32)>,
}

pub struct Options {
    pub dataset: String,
    pub authorities: usize,
    /// t, how many authorities decrypt together; `None`: all of them
    pub threshold: Option<usize>,
    pub allow_exact: bool,
    pub min_relays: usize,
    pub budget: Epsilon,
    /// seeds the randomness of queries (noise, encryption, proofs) for a
    /// reproducible test; `None`: fresh from the OS
    pub seed: Option<u64>,
    /// exact queries take the committed-share path (`ProcessorView::share_path`)
    pub share_path: bool,
}

impl Options {
    pub fn new(allow_exact: bool, min_relays: usize) -> Self {
        Options {
            dataset: "areas".into(),
            authorities: 3,
            threshold: None,
            allow_exact,
            min_relays,
            budget: Epsilon(10_000_000),
            seed: None,
            share_path: false,
        }
    }
}

pub struct MemoryCluster {
    pub relays: Vec<(RelayState, Box<dyn ColumnSource>)>,
    pub authorities: Vec<(AuthorityState, MemoryLedger)>,
    pub joint: JointPublicKey,
    pub view: Arc<ProcessorView>,
    pub solver: Solver,
    /// every encoded message, when recording
    pub transcript: Option<Vec<Vec<u8>>>,
    pub trace: QueryTrace,
    pub relay_hook: Option<RelayHook>,
    pub authority_hook: Option<AuthorityHook>,
    /// relays fill their pools of encryptions of zero before each round, as
    /// the relay actor does between requests (off by default: a seeded
    /// cluster's draws then stay those of earlier runs); the time goes to
    /// `QueryTrace::relay_precompute`, in no role's
    pub precompute_encryptions: bool,
    /// randomness of every role's handling (seeded by `Options::seed`)
    rng: StdRng,
}

/// Encodes and decodes `msg` (recording it in `transcript`); returns it and its size.
fn wire<T: serde::Serialize + serde::de::DeserializeOwned>(
    transcript: &mut Option<Vec<Vec<u8>>>,
    codec: &mut Duration,
    msg: &T,
) -> Result<(T, usize), ProtocolError> {
    wire_with(transcript, codec, msg, |bytes| decode(bytes, DEFAULT_MAX_FRAME))
}

/// `wire` with the decoder the receiving role uses (`decode_at_authority`).
fn wire_with<T: serde::Serialize>(
    transcript: &mut Option<Vec<Vec<u8>>>,
    codec: &mut Duration,
    msg: &T,
    decode: impl FnOnce(&[u8]) -> Result<T, ProtocolError>,
) -> Result<(T, usize), ProtocolError> {
    let t = ThreadTime::now();
    let bytes = encode(msg)?;
    let size = bytes.len();
    let back = decode(&bytes)?;
    *codec += t.elapsed();
    if let Some(t) = transcript.as_mut() {
        t.push(bytes);
    }
    Ok((back, size))
}

fn status(name: &str, role: Role) -> NodeStatus {
    NodeStatus { name: name.to_string(), role, version: "harness".into(), details: vec![] }
}

impl MemoryCluster {
    /// Relays `relay-1..` over `sources` (in order), authorities
    /// `authority-1..` sharing a key t-of-n (`Options::threshold`) from a
    /// test dealer (`crypto::deal_for_tests`); relays make their own keys.
    pub fn new(sources: Vec<Box<dyn ColumnSource>>, options: Options, solver: Solver) -> Result<Self, ProtocolError> {
        let names: Vec<String> = (1..=options.authorities).map(|i| format!("authority-{i}")).collect();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let threshold = u16::try_from(options.threshold.unwrap_or(options.authorities))
            .map_err(|_| ProtocolError::Internal("threshold too large".into()))?;
        let (shares, joint) = deal_for_tests(&name_refs, threshold, 0, &mut OsRng)?;
        let mut relays = Vec::new();
        let mut relay_keys = Vec::new();
        for (j, source) in sources.into_iter().enumerate() {
            let name = format!("relay-{}", j + 1);
            let identity = RelayIdentity::generate(&mut OsRng);
            relay_keys.push((name.clone(), identity.public_key()));
            relays.push((RelayState::new(&name, identity, &joint), source));
        }
        let policy = AuthorityPolicy {
            dataset: options.dataset.clone(),
            min_relays: options.min_relays,
            allow_exact: options.allow_exact,
            budget: options.budget,
            replay_window_secs: 3600,
            relays: relay_keys.iter().cloned().collect::<HashMap<_, _>>(),
        };
        let authorities = shares
            .into_iter()
            .map(|s| (AuthorityState::new(s, joint.clone(), policy.clone()), MemoryLedger::default()))
            .collect();
        let rng = match options.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        let view = Arc::new(ProcessorView {
            dataset: options.dataset,
            min_relays: options.min_relays,
            relays: relay_keys,
            authorities: names,
            joint: joint.clone(),
            dlog_max_abs: solver.max_abs(),
            dlog_table_bits: solver.table_bits(),
            share_path: options.share_path,
        });
        Ok(MemoryCluster {
            relays,
            authorities,
            joint,
            view,
            solver,
            transcript: None,
            trace: QueryTrace::default(),
            relay_hook: None,
            precompute_encryptions: false,
            authority_hook: None,
            rng,
        })
    }

    /// Sends `request` to the named relays; replies in order.
    pub fn ask_relays(
        &mut self,
        request: &RelayRequest,
        names: &[String],
    ) -> Result<Vec<PeerReply<RelayResponse>>, ProtocolError> {
        let contributing = matches!(request, RelayRequest::Contribute { .. });
        if contributing {
            self.trace.rounds += 1;
        }
        self.trace.round_trips += 1;
        let mut replies = Vec::new();
        let (mut slowest, mut most_crypto) = (Duration::ZERO, Duration::ZERO);
        for (i, (relay, source)) in self.relays.iter_mut().enumerate() {
            let name = relay.name().to_string();
            if !names.contains(&name) {
                continue;
            }
            if contributing && self.precompute_encryptions {
                let t = ThreadTime::now();
                // fills the pool in one go (false: not short any more)
                let _short = relay.precompute(usize::MAX, &mut self.rng);
                self.trace.relay_precompute += t.elapsed();
            }
            let (req, _) = wire(&mut self.transcript, &mut self.trace.codec, request)?;
            let t = ThreadTime::now();
            let (resp, _note) = relay.handle(req, source.as_ref(), || status(&name, Role::Relay), NOW, &mut self.rng);
            let took = t.elapsed();
            let plain = relay.last_timing().map(|t| t.plain).unwrap_or_default().min(took);
            let (resp, bytes) = wire(&mut self.transcript, &mut self.trace.codec, &resp)?;
            if contributing {
                self.trace.relay += took;
                self.trace.relay_plain += plain;
                slowest = slowest.max(took);
                most_crypto = most_crypto.max(took - plain);
                if i == 0 {
                    self.trace.bytes_per_relay += bytes;
                    match &resp {
                        RelayResponse::Contribution(c) => {
                            self.trace.ciphertexts_per_relay += c.contribution.ciphertexts().len()
                        }
                        RelayResponse::Shares(s) => self.trace.share_boxes_per_relay += s.boxes.len(),
                        _ => {}
                    }
                }
            } else {
                self.trace.describe += took;
            }
            replies.push(PeerReply::new(name, Ok(resp)));
        }
        self.trace.relay_critical += slowest;
        self.trace.relay_crypto_critical += most_crypto;
        if let Some(hook) = self.relay_hook.as_mut() {
            hook(request, &mut replies);
        }
        Ok(replies)
    }

    /// Sends `request` to every authority; replies in order.
    pub fn ask_authorities(
        &mut self,
        request: &AuthorityRequest,
        asked: &[String],
    ) -> Result<Vec<PeerReply<AuthorityResponse>>, ProtocolError> {
        let admitting = matches!(request, AuthorityRequest::AdmitQuery { .. } | AuthorityRequest::AdmitRound { .. });
        if admitting {
            self.trace.admissions += 1;
        }
        self.trace.releases += request.releases().len();
        let mut list = Vec::new();
        let mut busiest = Duration::ZERO;
        for (authority, ledger) in self.authorities.iter_mut().filter(|(a, _)| asked.iter().any(|n| n == a.name())) {
            // a registration of shares carries each decryptor's own boxes only
            let tailored = request.for_authority(authority.name());
            let (req, _) = wire_with(
                &mut self.transcript,
                &mut self.trace.codec,
                tailored.as_ref().unwrap_or(request),
                |bytes| decode_at_authority(bytes, DEFAULT_MAX_FRAME),
            )?;
            let name = authority.name().to_string();
            let t = ThreadTime::now();
            let resp = authority.handle(req, ledger, NOW + 1, || status(&name, Role::Authority), &mut self.rng);
            let took = t.elapsed();
            self.trace.authority += took;
            busiest = busiest.max(took);
            if admitting {
                self.trace.admission += took;
            }
            match &resp {
                AuthorityResponse::Partials(p) => self.trace.partial_decryptions += p.shares.len(),
                AuthorityResponse::Sums(s) => self.trace.share_sums += s.values.len(),
                _ => {}
            }
            let (resp, _) = wire(&mut self.transcript, &mut self.trace.codec, &resp)?;
            list.push(PeerReply::new(name, Ok(resp)));
        }
        self.trace.authority_critical += busiest;
        if let Some(hook) = self.authority_hook.as_mut() {
            hook(request, &mut list);
        }
        Ok(list)
    }

    /// Runs one query to its answer; `trace` holds its costs afterwards.
    pub fn query(&mut self, labels: &[&str], params: QueryParams) -> Result<QueryAnswer, ProtocolError> {
        self.trace = QueryTrace::default();
        let start = ThreadTime::now();
        let labels: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        let (mut driver, step) = QueryDriver::new(
            self.view.clone(),
            QueryId::random(&mut self.rng),
            NOW,
            "user-harness".into(),
            labels,
            params,
        )?;
        // the driver's own randomness, drawn from the cluster's (seeded or fresh)
        let mut rng = StdRng::from_rng(&mut self.rng).map_err(|e| ProtocolError::Internal(e.to_string()))?;
        let answer = run_ready(run_query(&mut driver, step, self, &mut rng))??;
        self.trace.total = start.elapsed();
        // the processor's own time: all of it but the peers' and the codec's
        // (the driver's wall-clock `took` would count preemption)
        let t = &self.trace;
        self.trace.processor =
            t.total.saturating_sub(t.relay + t.describe + t.relay_precompute + t.authority + t.solve + t.codec);
        Ok(answer)
    }
}

impl QueryPeers for MemoryCluster {
    async fn ask_relays(
        &mut self,
        request: &RelayRequest,
        relays: &[String],
    ) -> Result<Vec<PeerReply<RelayResponse>>, ProtocolError> {
        MemoryCluster::ask_relays(self, request, relays)
    }

    async fn ask_authorities(
        &mut self,
        requests: &[AuthorityRequest],
        authorities: &[String],
    ) -> Result<Vec<Vec<PeerReply<AuthorityResponse>>>, ProtocolError> {
        self.trace.round_trips += 1;
        requests.iter().map(|r| MemoryCluster::ask_authorities(self, r, authorities)).collect()
    }

    async fn solve(
        &mut self,
        points: Vec<(Release, RistrettoPoint, DlogRange)>,
    ) -> Result<Vec<(Release, i64)>, ProtocolError> {
        let t = ThreadTime::now();
        let values = points.iter().map(|(r, p, range)| Ok((*r, self.solver.solve_vartime_in(p, *range)?))).collect();
        self.trace.solve += t.elapsed();
        values
    }

    fn processed(&mut self, _took: Duration, driver: &QueryDriver) {
        self.trace.progress.push(driver.progress());
    }
}
