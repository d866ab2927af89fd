//! The authority's state machine: the privacy gatekeeper.
//!
//! Admission comes before data: it signs a query (`AdmitQuery`; relays need
//! t such signatures) only after
//! checking dataset, parameters, exact permission, scale and bounds caps,
//! replay window and budget, and charging the budget; and each round's task
//! (`AdmitRound`) only when the plan allows it (later search rounds must
//! refine one bucket of the previous round). Relays verify those signatures
//! before they read any data. It decrypts only a release that the plan
//! permits, of an aggregate that it recomputed itself from the admitted
//! round's contributions, correctly signed and proved (knowledge of each
//! ciphertext's randomness) by at least `min_relays` distinct known relays. In noisy mode it folds its own discrete
//! Laplace noise into its share (so one honest authority suffices) and
//! answers each release slot once: a repeated request gets the same share.
//! Time, randomness and the ledger come in as arguments; the response goes
//! out (with `answer`, also a refusal's fixed label for metrics); no I/O.

use std::collections::{BTreeMap, HashMap};

use curve25519_dalek::scalar::Scalar;
use rand_core::{CryptoRng, RngCore};

use super::codec;
use super::committee::SignedTransition;
use super::contribution_check::check_round;
use super::error::{InvalidRequest, ProtocolError};
use super::ids::QueryId;
use super::ledger::{AdmissionCharge, Ledger};
use super::messages::*;
use super::outcome::refusal_reason;
use crate::crypto::{JointPublicKey, KeyShare, PartialDecryption, RelayPublicKey};
use crate::stats::dp::{discrete_laplace, laplace_scale};
use crate::stats::limits::check_admissible;
use crate::stats::policy::{check_task, plan_shape, slot, PlanShape};
use crate::stats::release::target;
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

/// A query's plan, fixed by the admission of its round 0 (the scale is known).
struct Plan {
    spec: QuerySpec,
    fixed: FixedParams,
    shape: PlanShape,
    /// tasks admitted so far, by round
    admitted: Vec<RelayTask>,
    /// registered rounds (a prefix of `admitted`)
    rounds: Vec<Round>,
    answered: BTreeMap<(u32, u32), PartialDecryption>,
    releases_used: u64,
    /// this authority's Lagrange coefficient among the spec's decryptors
    lambda: Scalar,
}

struct ActiveQuery {
    intent: QueryIntent,
    plan: Option<Plan>,
    admitted_at: u64,
    /// the committee epoch it was admitted under
    epoch: u64,
}

/// The previous epoch's key, kept for the queries still running under it
/// until `until` (unix seconds), then erased.
struct PreviousEpoch {
    share: Option<KeyShare>,
    joint: JointPublicKey,
    until: u64,
}

/// This authority's keys: the current committee and its share of it (None
/// once removed from the committee), the previous epoch's during its grace
/// period, and the signed statement of the last switch.
struct EpochKeys {
    current: Option<KeyShare>,
    joint: JointPublicKey,
    previous: Option<PreviousEpoch>,
    transition: Option<SignedTransition>,
}

impl EpochKeys {
    /// The share and committee of `epoch`: the current one, or the previous
    /// one during its grace period.
    fn for_epoch(&self, epoch: u64) -> Result<(&KeyShare, &JointPublicKey), ProtocolError> {
        let other = || ProtocolError::from(InvalidRequest::WrongEpoch { asked: epoch, current: self.joint.epoch() });
        if epoch == self.joint.epoch() {
            return self.current.as_ref().map(|s| (s, &self.joint)).ok_or_else(other);
        }
        match &self.previous {
            Some(PreviousEpoch { share: Some(share), joint, .. }) if joint.epoch() == epoch => Ok((share, joint)),
            _ => Err(other()),
        }
    }
}

pub struct AuthorityState {
    name: String,
    keys: EpochKeys,
    policy: AuthorityPolicy,
    queries: HashMap<QueryId, ActiveQuery>,
}

impl AuthorityState {
    pub fn new(share: KeyShare, joint: JointPublicKey, policy: AuthorityPolicy) -> Self {
        let name = share.authority().to_string();
        let keys = EpochKeys { current: Some(share), joint, previous: None, transition: None };
        AuthorityState { name, keys, policy, queries: HashMap::new() }
    }

    /// Switches to the committee of `transition` (already verified against
    /// the current one), with `share` this authority's share of it (None:
    /// no longer a member). The old share stays for the queries running
    /// under it until `grace_until` (unix seconds).
    pub fn install(&mut self, share: Option<KeyShare>, transition: SignedTransition, grace_until: u64) {
        let joint = transition.transition.committee.clone();
        let old_joint = std::mem::replace(&mut self.keys.joint, joint);
        let old_share = std::mem::replace(&mut self.keys.current, share);
        self.keys.previous = Some(PreviousEpoch { share: old_share, joint: old_joint, until: grace_until });
        self.keys.transition = Some(transition);
    }

    /// Drops the previous epoch's share once its grace period is over;
    /// returns whether it did (the share is wiped on drop).
    pub fn expire(&mut self, now: u64) -> bool {
        let over = self.keys.previous.as_ref().is_some_and(|p| p.until <= now);
        if over {
            self.keys.previous = None;
        }
        over
    }

    /// Whether a previous epoch's share is still held.
    pub fn holds_previous(&self) -> bool {
        self.keys.previous.as_ref().is_some_and(|p| p.share.is_some())
    }

    /// Whether this authority holds a share of the current committee.
    pub fn is_member(&self) -> bool {
        self.keys.current.is_some()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn policy(&self) -> &AuthorityPolicy {
        &self.policy
    }

    pub fn joint_key(&self) -> &JointPublicKey {
        &self.keys.joint
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
        self.answer(request, ledger, now, status, rng).0
    }

    /// Like `handle`, and for a refusal also its fixed label
    /// (`outcome::refusal_reason`), for the operator's metrics.
    pub fn answer(
        &mut self,
        request: AuthorityRequest,
        ledger: &mut dyn Ledger,
        now: u64,
        status: impl FnOnce() -> NodeStatus,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> (AuthorityResponse, Option<&'static str>) {
        let window = self.policy.replay_window_secs;
        self.queries.retain(|_, q| now.saturating_sub(q.admitted_at) <= window);
        let result = match request {
            AuthorityRequest::Status => return (AuthorityResponse::Status(status()), None),
            AuthorityRequest::AdmitQuery { query, user, epoch } => {
                if epoch != self.keys.joint.epoch() || !self.is_member() {
                    let current = self.keys.joint.epoch();
                    return (AuthorityResponse::OtherEpoch { asked: epoch, current }, Some("other_epoch"));
                }
                self.admit_query(query, &user, ledger, now, rng)
            }
            // the processor polls for the next epoch's statement: not having
            // it yet is an answer, not a refusal
            AuthorityRequest::Transition { epoch } => match &self.keys.transition {
                Some(t) if t.transition.committee.epoch() == epoch => {
                    return (AuthorityResponse::Transition(Box::new(t.clone())), None)
                }
                _ => return (AuthorityResponse::OtherEpoch { asked: epoch, current: self.keys.joint.epoch() }, None),
            },
            AuthorityRequest::AdmitRound { spec, round, task } => self.admit_round(&spec, round, task, rng),
            AuthorityRequest::Register { spec, round, task, contributions } => {
                self.register(&spec, round, task, contributions, rng)
            }
            AuthorityRequest::Decrypt { query_id, round, release } => self.decrypt(&query_id, round, release, rng),
        };
        match result {
            Ok(response) => (response, None),
            Err(e) => (AuthorityResponse::Refused { reason: e.to_string() }, Some(refusal_reason(&e))),
        }
    }

    /// Checks a round's contributions (signatures, shapes, proofs of
    /// randomness, relays known and distinct, at least `min_relays`) and
    /// returns their aggregate.
    pub fn verify_contributions(
        &self,
        spec: &QuerySpec,
        round: u32,
        task: &RelayTask,
        contributions: Vec<SignedContribution>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Aggregate, ProtocolError> {
        let contributions =
            check_round(spec, round, task, contributions, |name| self.policy.relays.get(name), rng).all_valid()?;
        let needed = self.policy.min_relays.max(1);
        if contributions.len() < needed {
            let mut names: Vec<&str> = contributions.iter().map(|c| c.relay.as_str()).collect();
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

    fn admit_query(
        &mut self,
        query: QueryIntent,
        user: &str,
        ledger: &mut dyn Ledger,
        now: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<AuthorityResponse, ProtocolError> {
        query.params.validate()?;
        if query.dataset != self.policy.dataset {
            return Err(InvalidRequest::WrongDataset {
                query: query.id.to_string(),
                asked: query.dataset.clone(),
                authority: self.name.clone(),
                guarded: self.policy.dataset.clone(),
            }
            .into());
        }
        if query.params.exact && !self.policy.allow_exact {
            return Err(ProtocolError::ExactNotAllowed(self.name.clone()));
        }
        if query.labels.is_empty() || query.labels.len() > 3 || query.labels.iter().any(|l| l.len() > 256) {
            return Err(InvalidRequest::Labels { got: query.labels.len() }.into());
        }
        // the bounds at the query's coarsest possible scale: refused here, before any charge
        let coarsest = query.params.fixed(query.params.parameter_decimals()?)?;
        check_admissible(&query.params, &coarsest)?;
        plan_shape(&query.params, &coarsest)?;
        if self.queries.contains_key(&query.id) {
            return Err(ProtocolError::Replay(query.id.to_string()));
        }
        let window = self.policy.replay_window_secs;
        if query.issued_at > now.saturating_add(60) || now.saturating_sub(query.issued_at) > window {
            return Err(ProtocolError::Stale {
                id: query.id.to_string(),
                issued_at: query.issued_at,
                now,
                window_secs: window,
            });
        }
        let cost = if query.params.exact { Epsilon(0) } else { query.params.epsilon.unwrap_or_default() };
        let remaining = ledger.admit(&AdmissionCharge {
            dataset: &query.dataset,
            query: &query.id,
            user,
            issued_at: query.issued_at,
            cost,
            budget_total: self.policy.budget,
            now,
            window_secs: window,
        })?;

        let epoch = self.keys.joint.epoch();
        let (share, _) = self.keys.for_epoch(epoch)?;
        let signature = share.sign_statement(&codec::query_admission(&query), rng);
        self.queries.insert(query.id, ActiveQuery { intent: query, plan: None, admitted_at: now, epoch });
        Ok(AuthorityResponse::Admitted { signature, remaining_budget: Some(remaining) })
    }

    fn admit_round(
        &mut self,
        spec: &QuerySpec,
        round: u32,
        task: RelayTask,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<AuthorityResponse, ProtocolError> {
        let query = self.queries.get_mut(&spec.id).ok_or_else(|| ProtocolError::UnknownQuery(spec.id.to_string()))?;
        if query.intent != spec.intent() {
            return Err(InvalidRequest::SpecDiffers.into());
        }
        if spec.epoch != query.epoch {
            return Err(InvalidRequest::WrongEpoch { asked: spec.epoch, current: query.epoch }.into());
        }
        let (share, joint) = self.keys.for_epoch(spec.epoch)?;
        match &mut query.plan {
            None => {
                if round != 0 {
                    return Err(InvalidRequest::RoundBeforeFirst { round }.into());
                }
                let lambda = decryptor_lambda(joint, &self.name, spec)?;
                let fixed = spec.params.fixed(spec.decimals)?;
                check_admissible(&spec.params, &fixed)?;
                let shape = plan_shape(&spec.params, &fixed)?;
                check_task(&spec.params, &fixed, 0, &task, None)?;
                query.plan = Some(Plan {
                    spec: spec.clone(),
                    fixed,
                    shape,
                    admitted: vec![task.clone()],
                    rounds: Vec::new(),
                    answered: BTreeMap::new(),
                    releases_used: 0,
                    lambda,
                });
            }
            Some(plan) => {
                if plan.spec != *spec {
                    return Err(InvalidRequest::ScaleChanged.into());
                }
                let next = plan.admitted.len();
                let round_index = usize::try_from(round).unwrap_or(usize::MAX);
                if round_index.checked_add(1) == Some(next) && plan.admitted.get(round_index) == Some(&task) {
                    // the same admission asked again (a lost reply): sign it again
                } else if round_index == next && plan.rounds.len() == next {
                    check_task(&spec.params, &plan.fixed, round, &task, plan.admitted.last())?;
                    plan.admitted.push(task.clone());
                } else {
                    return Err(InvalidRequest::RoundOutOfOrder {
                        round,
                        admitted: next,
                        registered: plan.rounds.len(),
                    }
                    .into());
                }
            }
        }
        let signature = share.sign_statement(&codec::round_admission(spec, round, &task), rng);
        Ok(AuthorityResponse::Admitted { signature, remaining_budget: None })
    }

    fn register(
        &mut self,
        spec: &QuerySpec,
        round: u32,
        task: RelayTask,
        contributions: Vec<SignedContribution>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<AuthorityResponse, ProtocolError> {
        let query = self.queries.get(&spec.id).ok_or_else(|| ProtocolError::UnknownQuery(spec.id.to_string()))?;
        let plan = query.plan.as_ref().ok_or(InvalidRequest::NoRoundAdmitted)?;
        if plan.spec != *spec {
            return Err(InvalidRequest::RegisteredSpecDiffers.into());
        }
        let round_index = usize::try_from(round).unwrap_or(usize::MAX);
        if plan.admitted.get(round_index) != Some(&task) {
            return Err(StatsError::ReleaseRefused(format!("round {round} with this task was not admitted")).into());
        }
        if plan.rounds.len() != round_index {
            return Err(InvalidRequest::RegisteredOutOfOrder { round, expected: plan.rounds.len() }.into());
        }
        let aggregate = self.verify_contributions(spec, round, &task, contributions, rng)?;
        if let Some(plan) = self.queries.get_mut(&spec.id).and_then(|q| q.plan.as_mut()) {
            plan.rounds.push(Round { task, aggregate });
        }
        Ok(AuthorityResponse::Registered)
    }

    fn decrypt(
        &mut self,
        query_id: &QueryId,
        round: u32,
        release: Release,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<AuthorityResponse, ProtocolError> {
        let query = self
            .queries
            .get_mut(query_id)
            .and_then(|q| q.plan.as_mut())
            .ok_or_else(|| ProtocolError::UnknownQuery(query_id.to_string()))?;
        let r = query
            .rounds
            .get(usize::try_from(round).unwrap_or(usize::MAX))
            .ok_or(InvalidRequest::RoundNotRegistered { round })?;
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
        let (share, _) = self.keys.for_epoch(query.spec.epoch)?;
        let partial = if params.exact {
            share.partial_decrypt(&ciphertext, &context, rng)
        } else {
            let epsilon =
                params.epsilon.ok_or(StatsError::InvalidParameter { name: "epsilon", reason: "missing".into() })?;
            let (num, den) = laplace_scale(slot.sensitivity, epsilon, slot.share)?;
            let noise = discrete_laplace(num, den, rng);
            share.partial_decrypt_noisy(&ciphertext, noise, &query.lambda, &context, rng)
        };
        if counted {
            query.releases_used += 1;
        }
        query.answered.insert((round, slot.index), partial.clone());
        Ok(AuthorityResponse::Partial(partial))
    }
}

/// This authority's Lagrange coefficient among the spec's decryptors: the
/// spec must be for this committee's epoch and name t distinct members,
/// this authority among them.
fn decryptor_lambda(joint: &JointPublicKey, me: &str, spec: &QuerySpec) -> Result<Scalar, ProtocolError> {
    if spec.epoch != joint.epoch() {
        return Err(InvalidRequest::WrongEpoch { asked: spec.epoch, current: joint.epoch() }.into());
    }
    let lambdas = joint.lagrange(&spec.decryptors).map_err(|e| InvalidRequest::Decryptors { reason: e.to_string() })?;
    spec.decryptors
        .iter()
        .zip(lambdas)
        .find(|(name, _)| name.as_str() == me)
        .map(|(_, l)| l)
        .ok_or_else(|| InvalidRequest::Decryptors { reason: format!("{me} is not one of them") }.into())
}
