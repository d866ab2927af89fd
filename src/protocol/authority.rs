//! The authority's state machine: the privacy gatekeeper.
//!
//! It decrypts only a release that the registered statistic's plan permits,
//! of an aggregate that it recomputed itself from contributions correctly
//! signed by at least `min_relays` distinct known relays, for a query id it
//! has not admitted before (ledger, with an expiry window) and whose privacy
//! cost fits the dataset's budget. In noisy mode it folds its own discrete
//! Laplace noise into its share (so one honest authority suffices) and
//! answers each release slot once: a repeated request gets the same share.
//! Time, randomness and the ledger come in as arguments; no I/O.

use std::collections::{BTreeMap, HashMap, HashSet};

use rand_core::{CryptoRng, RngCore};

use super::error::ProtocolError;
use super::ids::QueryId;
use super::ledger::Ledger;
use super::messages::*;
use super::wire;
use crate::crypto::{JointPublicKey, KeyShare, PartialDecryption, RelayPublicKey};
use crate::stats::dp::{discrete_laplace, laplace_scale};
use crate::stats::release::{check_task, plan_shape, slot, target, PlanShape};
use crate::stats::statistic::FixedParams;
use crate::stats::{Aggregate, Contribution, Epsilon, RelayTask, Release, Statistic, StatsError};

/// The authority's policy, from its own configuration.
#[derive(Clone, Debug)]
pub struct AuthorityPolicy {
    /// the dataset whose budget this authority guards; queries naming
    /// another are refused (else every new name would bring a fresh budget)
    pub dataset: String,
    pub min_relays: usize,
    pub allow_exact: bool,
    pub budget: Epsilon,
    pub replay_window_secs: u64,
    pub relays: HashMap<String, RelayPublicKey>,
}

struct Round {
    task: RelayTask,
    aggregate: Aggregate,
}

struct ActiveQuery {
    spec: QuerySpec,
    fixed: FixedParams,
    shape: PlanShape,
    rounds: Vec<Round>,
    answered: BTreeMap<(u32, u32), PartialDecryption>,
    releases_used: u64,
    admitted_at: u64,
}

pub struct AuthorityState {
    name: String,
    share: KeyShare,
    joint: JointPublicKey,
    policy: AuthorityPolicy,
    queries: HashMap<QueryId, ActiveQuery>,
}

impl AuthorityState {
    pub fn new(share: KeyShare, joint: JointPublicKey, policy: AuthorityPolicy) -> Self {
        AuthorityState { name: share.authority().to_string(), share, joint, policy, queries: HashMap::new() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn policy(&self) -> &AuthorityPolicy {
        &self.policy
    }

    pub fn joint_key(&self) -> &JointPublicKey {
        &self.joint
    }

    /// Handles one request. Refusals become `AuthorityResponse::Refused` with the reason.
    pub fn handle(
        &mut self,
        request: AuthorityRequest,
        ledger: &mut dyn Ledger,
        now: u64,
        status: impl FnOnce() -> NodeStatus,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> AuthorityResponse {
        let window = self.policy.replay_window_secs;
        self.queries.retain(|_, q| now.saturating_sub(q.admitted_at) <= window);
        let result = match request {
            AuthorityRequest::Status => return AuthorityResponse::Status(status()),
            AuthorityRequest::Register { spec, round, task, contributions } => {
                self.register(spec, round, task, &contributions, ledger, now)
            }
            AuthorityRequest::Decrypt { query_id, round, release } => self.decrypt(&query_id, round, release, rng),
        };
        result.unwrap_or_else(|e| AuthorityResponse::Refused { reason: e.to_string() })
    }

    /// Verifies signatures and the relay count, and returns the aggregate.
    pub fn verify_contributions(
        &self,
        spec: &QuerySpec,
        round: u32,
        task: &RelayTask,
        contributions: &[SignedContribution],
    ) -> Result<Aggregate, ProtocolError> {
        let mut seen = HashSet::new();
        for c in contributions {
            let key = self.policy.relays.get(&c.relay).ok_or_else(|| ProtocolError::UnknownRelay(c.relay.clone()))?;
            if !seen.insert(c.relay.as_str()) {
                return Err(ProtocolError::BadContribution {
                    relay: c.relay.clone(),
                    reason: "contributed twice".into(),
                });
            }
            if c.round != round {
                return Err(ProtocolError::BadContribution {
                    relay: c.relay.clone(),
                    reason: format!("signed round {} not {round}", c.round),
                });
            }
            let statement = ContributionStatement { spec, round, task, relay: &c.relay, contribution: &c.contribution };
            let bytes = wire::encode(&statement)?;
            key.verify(&c.relay, &spec.id.0, &bytes, &c.signature)?;
            c.contribution
                .check_shape(task)
                .map_err(|e| ProtocolError::BadContribution { relay: c.relay.clone(), reason: e.to_string() })?;
        }
        let needed = self.policy.min_relays.max(1);
        if seen.len() < needed {
            let mut names: Vec<&str> = seen.into_iter().collect();
            names.sort();
            return Err(ProtocolError::NotEnoughRelays {
                got: names.len(),
                needed,
                names: names.join(", "),
                missing: String::new(),
            });
        }
        Ok(Contribution::aggregate(task, contributions.iter().map(|c| &c.contribution))?)
    }

    fn register(
        &mut self,
        spec: QuerySpec,
        round: u32,
        task: RelayTask,
        contributions: &[SignedContribution],
        ledger: &mut dyn Ledger,
        now: u64,
    ) -> Result<AuthorityResponse, ProtocolError> {
        spec.params.validate()?;
        if spec.dataset != self.policy.dataset {
            return Err(ProtocolError::Malformed(format!(
                "query {} names dataset {:?}, but {} guards dataset {:?}; every node must have the same `cluster.dataset`",
                spec.id, spec.dataset, self.name, self.policy.dataset
            )));
        }
        if spec.params.exact && !self.policy.allow_exact {
            return Err(ProtocolError::ExactNotAllowed(self.name.clone()));
        }
        if spec.decimals > crate::stats::fixed::MAX_DECIMALS || spec.labels.is_empty() || spec.labels.len() > 3 {
            return Err(ProtocolError::Malformed("query scale or labels out of range".into()));
        }
        let fixed = spec.params.fixed(spec.decimals)?;
        let shape = plan_shape(&spec.params, &fixed)?;
        check_task(&spec.params, &fixed, round, &task)?;
        let aggregate = self.verify_contributions(&spec, round, &task, contributions)?;
        if round == 0 {
            if self.queries.contains_key(&spec.id) {
                return Err(ProtocolError::Replay(spec.id.to_string()));
            }
            let window = self.policy.replay_window_secs;
            if spec.issued_at > now.saturating_add(60) || now.saturating_sub(spec.issued_at) > window {
                return Err(ProtocolError::Stale {
                    id: spec.id.to_string(),
                    issued_at: spec.issued_at,
                    now,
                    window_secs: window,
                });
            }
            let cost = if spec.params.exact { Epsilon(0) } else { spec.params.epsilon.unwrap_or_default() };
            let remaining =
                ledger.admit(&spec.dataset, &spec.id, spec.issued_at, cost, self.policy.budget, now, window)?;
            self.queries.insert(
                spec.id,
                ActiveQuery {
                    spec,
                    fixed,
                    shape,
                    rounds: vec![Round { task, aggregate }],
                    answered: BTreeMap::new(),
                    releases_used: 0,
                    admitted_at: now,
                },
            );
            return Ok(AuthorityResponse::Registered { remaining_budget: Some(remaining) });
        }
        let query = self.queries.get_mut(&spec.id).ok_or_else(|| ProtocolError::UnknownQuery(spec.id.to_string()))?;
        if query.spec != spec {
            return Err(ProtocolError::Malformed("a later round changed the query".into()));
        }
        let expected = u32::try_from(query.rounds.len()).unwrap_or(u32::MAX);
        if round != expected {
            return Err(ProtocolError::Malformed(format!("round {round} registered, expected round {expected}")));
        }
        query.rounds.push(Round { task, aggregate });
        Ok(AuthorityResponse::Registered { remaining_budget: None })
    }

    fn decrypt(
        &mut self,
        query_id: &QueryId,
        round: u32,
        release: Release,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<AuthorityResponse, ProtocolError> {
        let query = self.queries.get_mut(query_id).ok_or_else(|| ProtocolError::UnknownQuery(query_id.to_string()))?;
        let r = query
            .rounds
            .get(usize::try_from(round).unwrap_or(usize::MAX))
            .ok_or_else(|| ProtocolError::Malformed(format!("round {round} is not registered")))?;
        let params = &query.spec.params;
        let slot = slot(params, &query.fixed, &r.task, release)?;
        if let Some(answer) = query.answered.get(&(round, slot.index)) {
            return Ok(AuthorityResponse::Partial(answer.clone()));
        }
        // sequential composition: never more releases than the plan's epsilon was split over
        let counted = !params.exact && params.statistic != Statistic::Histogram;
        if counted && query.releases_used >= query.shape.releases {
            return Err(StatsError::ReleaseRefused(format!(
                "the query's plan allows {} releases and all were made",
                query.shape.releases
            ))
            .into());
        }
        if params.statistic == Statistic::Histogram && !params.exact && release == Release::HistTotal {
            return Err(StatsError::ReleaseRefused("a noisy histogram releases its buckets only".into()).into());
        }
        let ciphertext = target(&r.task, &r.aggregate, release)?;
        let context = decryption_context(query_id, round, release);
        let partial = if params.exact {
            self.share.partial_decrypt(&ciphertext, &context, rng)
        } else {
            let epsilon =
                params.epsilon.ok_or(StatsError::InvalidParameter { name: "epsilon", reason: "missing".into() })?;
            let (num, den) = laplace_scale(slot.sensitivity, epsilon, slot.share)?;
            let noise = discrete_laplace(num, den, rng);
            self.share.partial_decrypt_noisy(&ciphertext, noise, &context, rng)
        };
        if counted {
            query.releases_used += 1;
        }
        query.answered.insert((round, slot.index), partial.clone());
        Ok(AuthorityResponse::Partial(partial))
    }
}
