//! The authority's state machine: the privacy gatekeeper.
//!
//! Admission comes before data: it signs a query (`AdmitQuery`; relays need
//! t such signatures) only after
//! checking dataset, parameters, exact permission, scale and bounds caps,
//! replay window and budget, and charging the budget; a round's task
//! (`AdmitRound`) only when the plan allows it (later search rounds must
//! refine one bucket of the previous round), or a search's next round as
//! any such refinement (`AdmitRefinement`). Relays verify those signatures
//! before they read any data, and check round 0's task (under the query's
//! admission) and a refinement against the plan themselves. The first
//! request naming round 0 fixes the plan (spec, decryptors, first task),
//! and one task per round (`Plan::fix_task`). It decrypts only a release that the plan
//! permits, of an aggregate that it recomputed itself from the admitted
//! round's contributions, correctly signed and proved (knowledge of each
//! ciphertext's randomness) by at least `min_relays` distinct known relays. In noisy mode it folds its own discrete
//! Laplace noise into its share (so one honest authority suffices) and
//! answers each release slot once: a repeated request gets the same share.
//! Its memory is bounded: a query's state lives only while the query does
//! (see `ActiveQuery`); replay records and charges are in the ledger.
//! Time, randomness and the ledger come in as arguments; the response goes
//! out (with `answer`, also a refusal's fixed label for metrics); no I/O.

use std::collections::{BTreeMap, HashMap, VecDeque};

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use rand_core::{CryptoRng, RngCore};

use super::codec;
use super::committee::SignedTransition;
use super::contribution_check::{check_round, check_shares};
use super::error::{InvalidRequest, ProtocolError};
use super::ids::QueryId;
use super::ledger::{AdmissionCharge, Ledger};
use super::messages::*;
use super::outcome::refusal_reason;
use super::relay::ADMISSION_MAX_AGE_SECS;
use super::shares;
use crate::crypto::{DecryptionShare, JointPublicKey, KeyShare, RelayPublicKey};
use crate::stats::dp::{discrete_laplace, laplace_scale};
use crate::stats::limits::check_admissible;
use crate::stats::policy::{check_task, plan_shape, planned_releases, slot, PlanShape};
use crate::stats::release::{round_target, Outside};
use crate::stats::statistic::FixedParams;
use crate::stats::{Aggregate, Contribution, Epsilon, RelayTask, Release, Statistic, StatsError};
use zeroize::Zeroize;

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

/// Queries an authority keeps live at most: admitting one more ends the
/// one that was least recently active (with an honest processor, a query
/// that was abandoned or whose search ended).
pub const LIVE_QUERIES: usize = 64;
/// A live query ends this long after its admission at the latest (or after
/// the replay window, if shorter): relays contribute to no query issued
/// more than `ADMISSION_MAX_AGE_SECS` before.
pub const LIVE_SECS: u64 = 2 * ADMISSION_MAX_AGE_SECS;
/// Ended queries kept (without their aggregates) so that a release asked
/// again after a lost reply gets the same share, and other requests the
/// same refusal as before the end: the most recently ended ones.
pub const ENDED_QUERIES: usize = 128;

struct Round {
    task: RelayTask,
    held: Held,
    /// the column outside the round's grid, encrypted (`release::round_target`)
    outside: Outside,
}

/// What an authority holds of a registered round: the aggregate of the
/// relays' ciphertexts, or on the committed-share path its sums of the
/// shares it received (every component, then the blinding; wiped on drop).
// one per registered round, moved once: sizes may differ
#[allow(clippy::large_enum_variant)]
enum Held {
    Encrypted(Aggregate),
    Shared(Vec<Scalar>),
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Held::Shared(sums) = self {
            sums.zeroize();
        }
    }
}

/// A round the decryptors admitted: with `AdmitRound`, its task; with
/// `AdmitRefinement`, any one-bucket refinement of the previous round's
/// task, fixed by the first `Register`, `AdmitRound` or next round's
/// `AdmitRefinement` that names it (`Plan::fix_task`).
struct AdmittedRound {
    /// the previous round's task, for a refinement admission
    refines: Option<RelayTask>,
    task: Option<RelayTask>,
}

/// A query's plan, fixed by the admission of its round 0 (the scale is known).
struct Plan {
    spec: QuerySpec,
    fixed: FixedParams,
    shape: PlanShape,
    /// rounds admitted so far
    admitted: Vec<AdmittedRound>,
    /// registered rounds (a prefix of `admitted`)
    rounds: Vec<Round>,
    /// each release's share (with the ciphertext component it was made from,
    /// to prove it again in any later batch that asks for it)
    answered: BTreeMap<(u32, u32), DecryptionShare>,
    releases_used: u64,
    /// the released sums of the rounds on the committed-share path (the
    /// same answer to a release asked again, as `answered` for shares)
    released: BTreeMap<u32, ShareSums>,
    /// this authority's Lagrange coefficient among the spec's decryptors
    lambda: Scalar,
    /// the column outside the latest admitted round's grid, encrypted: its
    /// registration keeps it (`release::Outside::refined`)
    outside: Outside,
}

impl Plan {
    /// Whether the query got every release its plan makes: a one-round plan
    /// (every statistic but the searches) whose planned releases were all
    /// answered. A search's releases follow from what the earlier ones
    /// revealed, so one that found its answer cannot be told from one that
    /// goes on: it ends by `LIVE_QUERIES` or `LIVE_SECS`.
    fn is_over(&self) -> bool {
        let params = &self.spec.params;
        let [round] = self.rounds.as_slice() else { return false };
        let Ok(Some(planned)) = planned_releases(params, &round.task) else { return false };
        // the committed-share path releases the whole round at once
        if self.released.contains_key(&0) {
            return true;
        }
        planned.into_iter().all(|release| {
            slot(params, &self.fixed, &round.task, release)
                .is_ok_and(|slot| self.answered.contains_key(&(0, slot.index)))
        })
    }

    /// Fixes round `round`'s task to `task`: it already is, or the round
    /// was admitted as a refinement that `task` is (`policy::check_task`)
    /// and the previous round is registered (its aggregate refines the
    /// outside). Fixing a round ends the earlier ones (`forget_rounds_before`).
    fn fix_task(&mut self, round: u32, task: &RelayTask) -> Result<(), ProtocolError> {
        let index = usize::try_from(round).unwrap_or(usize::MAX);
        let registered = self.rounds.len();
        let Some(entry) = self.admitted.get(index) else {
            return Err(StatsError::ReleaseRefused(format!("round {round} with this task was not admitted")).into());
        };
        match (&entry.task, &entry.refines) {
            (Some(fixed), _) if fixed == task => return Ok(()),
            (Some(_), _) | (None, None) => {
                return Err(StatsError::ReleaseRefused(format!("round {round} with this task was not admitted")).into())
            }
            (None, Some(_)) if registered != index => {
                return Err(InvalidRequest::RoundOutOfOrder { round, admitted: self.admitted.len(), registered }.into())
            }
            (None, Some(previous)) => check_task(&self.spec.params, &self.fixed, round, task, Some(previous))?,
        }
        self.set_task(round, task)
    }

    /// Sets the task of round `round` (admitted, checked, the previous round
    /// registered): the outside is refined from the previous round and the
    /// earlier rounds end.
    fn set_task(&mut self, round: u32, task: &RelayTask) -> Result<(), ProtocolError> {
        // (on the committed-share path the processor keeps the outside in the clear)
        if let Some(Round { task: previous, held: Held::Encrypted(aggregate), .. }) = self.rounds.last() {
            self.outside = self.outside.refined(previous, aggregate, task)?;
        }
        let index = usize::try_from(round).unwrap_or(usize::MAX);
        let entry = self.admitted.get_mut(index).ok_or(InvalidRequest::RoundNotRegistered { round })?;
        entry.task = Some(task.clone());
        self.forget_rounds_before(round);
        Ok(())
    }

    /// The latest round whose task is fixed: the earlier ones are over.
    fn latest_fixed(&self) -> usize {
        self.admitted.iter().rposition(|a| a.task.is_some()).unwrap_or(0)
    }

    /// Round `round`'s task was fixed, so the processor had every release it
    /// needed of the earlier rounds: their aggregates and shares go (their
    /// releases are refused from now on, see `AuthorityState::release`).
    fn forget_rounds_before(&mut self, round: u32) {
        self.drop_aggregates();
        self.answered.retain(|(answered_round, _), _| *answered_round >= round);
        self.released.retain(|released_round, _| *released_round >= round);
    }

    /// Drops the registered rounds' aggregates (the bulk of a query; their
    /// tasks stay). No new share can be made of them afterwards.
    fn drop_aggregates(&mut self) {
        for registered in &mut self.rounds {
            match &mut registered.held {
                Held::Encrypted(Contribution::Moments { sum, squares, .. }) => {
                    (*sum, *squares) = (Vec::new(), Vec::new())
                }
                Held::Encrypted(Contribution::Histogram { counts }) => *counts = Vec::new(),
                Held::Shared(sums) => {
                    sums.zeroize();
                    *sums = Vec::new();
                }
            }
        }
    }

    /// Whether answering `releases` of `round` would make a share not made
    /// before: a release the plan permits of a registered round, not
    /// answered yet.
    fn makes_new_share(&self, round: u32, releases: &[Release]) -> bool {
        let Some(registered) = self.rounds.get(usize::try_from(round).unwrap_or(usize::MAX)) else { return false };
        if matches!(registered.held, Held::Shared(_)) && self.released.contains_key(&round) {
            return false;
        }
        releases.iter().any(|release| {
            slot(&self.spec.params, &self.fixed, &registered.task, *release)
                .is_ok_and(|slot| !self.answered.contains_key(&(round, slot.index)))
        })
    }

    /// Registered round `round`.
    fn registered(&self, round: u32) -> Result<&Round, ProtocolError> {
        let index = usize::try_from(round).unwrap_or(usize::MAX);
        self.rounds.get(index).ok_or_else(|| InvalidRequest::RoundNotRegistered { round }.into())
    }

    fn ciphertexts(&self) -> usize {
        self.rounds
            .iter()
            .map(|r| match &r.held {
                Held::Encrypted(Contribution::Moments { sum, squares, .. }) => 1 + sum.len() + squares.len(),
                Held::Encrypted(Contribution::Histogram { counts }) => counts.len(),
                Held::Shared(_) => 0,
            })
            .sum()
    }
}

/// A query this authority admitted. It is live until it got every release
/// its plan makes (`Plan::is_over`); then it has ended: its aggregates go
/// and it makes no new share, but its plan and answered shares stay, so a
/// release asked again after a lost reply gets the same share and any
/// other request the same refusal, for the `ENDED_QUERIES` most recently
/// ended. A live query is dropped unfinished `LIVE_SECS` after its
/// admission (or after the replay window), or when it is the least
/// recently active of `LIVE_QUERIES` live ones. Then a request naming it
/// is refused as unknown. What replay protection and the budget need of a
/// query stays in the ledger (its id and issue time, and its charge), not
/// in memory.
struct ActiveQuery {
    intent: QueryIntent,
    plan: Option<Plan>,
    admitted_at: u64,
    /// when a request last named it (unix seconds)
    last_active: u64,
    /// when it got every release its plan makes (unix seconds)
    ended_at: Option<u64>,
    /// the committee epoch it was admitted under
    epoch: u64,
}

/// What an authority holds in memory for queries (tests, operators).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryMemory {
    /// live queries (`LIVE_QUERIES` at most)
    pub live: usize,
    /// ended queries kept (`ENDED_QUERIES` at most)
    pub ended: usize,
    /// ciphertexts of the aggregates held (live queries only)
    pub ciphertexts: usize,
    /// shares answered, of live and ended queries
    pub shares: usize,
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
    /// live queries (`LIVE_QUERIES` at most) and ended ones
    queries: HashMap<QueryId, ActiveQuery>,
    /// the ended queries, oldest first (`ENDED_QUERIES` at most)
    ended: VecDeque<QueryId>,
}

impl AuthorityState {
    pub fn new(share: KeyShare, joint: JointPublicKey, policy: AuthorityPolicy) -> Self {
        let name = share.authority().to_string();
        let keys = EpochKeys { current: Some(share), joint, previous: None, transition: None };
        AuthorityState { name, keys, policy, queries: HashMap::new(), ended: VecDeque::new() }
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
    /// Also ends the queries that have lived too long (`forget_old`), so that
    /// an idle authority gives their memory back.
    pub fn expire(&mut self, now: u64) -> bool {
        self.forget_old(now);
        let over = self.keys.previous.as_ref().is_some_and(|p| p.until <= now);
        if over {
            self.keys.previous = None;
        }
        over
    }

    /// Drops the queries, live or ended, admitted more than `LIVE_SECS`
    /// (or the replay window, if shorter) ago.
    fn forget_old(&mut self, now: u64) {
        let live = self.policy.replay_window_secs.min(LIVE_SECS);
        self.queries.retain(|_, q| now.saturating_sub(q.admitted_at) <= live);
        let queries = &self.queries;
        self.ended.retain(|id| queries.contains_key(id));
    }

    /// Makes room for one more live query: drops the least recently active
    /// live ones while `LIVE_QUERIES` are live.
    fn make_room(&mut self) {
        loop {
            let live = self.queries.iter().filter(|(_, q)| q.ended_at.is_none());
            if live.clone().count() < LIVE_QUERIES {
                return;
            }
            let Some(idle) = live.min_by_key(|(_, q)| q.last_active).map(|(id, _)| *id) else { return };
            self.queries.remove(&idle);
        }
    }

    /// Ends `id` if it got every release its plan makes: its aggregates go;
    /// beyond `ENDED_QUERIES` ended ones, the oldest is dropped.
    fn end_if_over(&mut self, id: &QueryId, now: u64) {
        let Some(query) = self.queries.get_mut(id).filter(|q| q.ended_at.is_none()) else { return };
        let Some(plan) = query.plan.as_mut().filter(|p| p.is_over()) else { return };
        plan.drop_aggregates();
        query.ended_at = Some(now);
        self.ended.push_back(*id);
        while self.ended.len() > ENDED_QUERIES {
            if let Some(oldest) = self.ended.pop_front() {
                self.queries.remove(&oldest);
            }
        }
    }

    /// What this authority holds in memory for queries.
    pub fn query_memory(&self) -> QueryMemory {
        let plans = self.queries.values().filter_map(|q| q.plan.as_ref());
        let live = self.queries.values().filter(|q| q.ended_at.is_none());
        QueryMemory {
            live: live.clone().count(),
            ended: self.queries.len().saturating_sub(live.clone().count()),
            // an ended query keeps only a count's one ciphertext, inline
            ciphertexts: live.filter_map(|q| q.plan.as_ref()).map(Plan::ciphertexts).sum(),
            shares: plans.map(|p| p.answered.len() + p.released.len()).sum(),
        }
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
        self.forget_old(now);
        if let Some(query) = named_query(&request).and_then(|id| self.queries.get_mut(&id)) {
            query.last_active = now;
        }
        let result = match request {
            AuthorityRequest::Status => return (AuthorityResponse::Status(status()), None),
            AuthorityRequest::AdmitQuery { query, user, epoch, sealing } => {
                if epoch != self.keys.joint.epoch() || !self.is_member() {
                    let current = self.keys.joint.epoch();
                    return (AuthorityResponse::OtherEpoch { asked: epoch, current }, Some("other_epoch"));
                }
                self.admit_query(query, (&user, sealing), ledger, now, rng)
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
            AuthorityRequest::AdmitRefinement { spec, round, previous } => {
                self.admit_refinement(&spec, round, &previous, rng)
            }
            AuthorityRequest::Register { spec, round, task, contributions, releases, shared } => {
                match self.register(&spec, round, task, (contributions, shared), rng) {
                    Ok(_) if !releases.is_empty() => self.release(&spec.id, round, &releases, now, rng),
                    other => other,
                }
            }
            AuthorityRequest::Decrypt { query_id, round, releases } => {
                self.release(&query_id, round, &releases, now, rng)
            }
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
        self.enough_relays(contributions.iter().map(|c| c.relay.as_str()).collect())?;
        Ok(Contribution::aggregate(task, contributions.iter().map(|c| &c.contribution))?)
    }

    fn admit_query(
        &mut self,
        query: QueryIntent,
        (user, sealing): (&str, bool),
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
        let signature = share.sign_admission(&codec::query_admission(&query), rng);
        let sealing = sealing.then(|| {
            let key = share.sealing_secret(&query.id.0).public().to_bytes();
            let signature = share.sign_admission(&codec::sealing_grant(&query.id, epoch, &self.name, &key), rng);
            SealingGrant { key: Bytes32(key), signature }
        });
        self.make_room();
        let active =
            ActiveQuery { intent: query, plan: None, admitted_at: now, last_active: now, ended_at: None, epoch };
        self.queries.insert(active.intent.id, active);
        Ok(AuthorityResponse::Admitted { signature, remaining_budget: Some(remaining), sealing })
    }

    /// Fixes the plan of an admitted query from its round 0 (`spec`'s scale,
    /// decryptors, and round 0's `task`), if none is yet: the spec must be
    /// the admitted query's, for its epoch, naming this authority among t
    /// decryptors, admissible, with `task` the plan's first. Whichever
    /// request names round 0 first does it: `AdmitRound`, or `Register` of
    /// round 0 or `AdmitRefinement` of round 1 (relays contribute round 0
    /// under the query's admission). Returns whether it started the plan now.
    fn start_plan(&mut self, spec: &QuerySpec, round: u32, task: &RelayTask) -> Result<bool, ProtocolError> {
        let query = self.queries.get_mut(&spec.id).ok_or_else(|| ProtocolError::UnknownQuery(spec.id.to_string()))?;
        if query.intent != spec.intent() {
            return Err(InvalidRequest::SpecDiffers.into());
        }
        if spec.epoch != query.epoch {
            return Err(InvalidRequest::WrongEpoch { asked: spec.epoch, current: query.epoch }.into());
        }
        if query.plan.is_some() {
            return Ok(false);
        }
        if round != 0 {
            return Err(InvalidRequest::RoundBeforeFirst { round }.into());
        }
        let (_, joint) = self.keys.for_epoch(spec.epoch)?;
        let lambda = decryptor_lambda(joint, &self.name, spec)?;
        let fixed = spec.params.fixed(spec.decimals)?;
        check_admissible(&spec.params, &fixed)?;
        let shape = plan_shape(&spec.params, &fixed)?;
        check_task(&spec.params, &fixed, 0, task, None)?;
        query.plan = Some(Plan {
            spec: spec.clone(),
            fixed,
            shape,
            admitted: vec![AdmittedRound { refines: None, task: Some(task.clone()) }],
            rounds: Vec::new(),
            answered: BTreeMap::new(),
            released: BTreeMap::new(),
            releases_used: 0,
            lambda,
            outside: Outside::none(),
        });
        Ok(true)
    }

    fn admit_round(
        &mut self,
        spec: &QuerySpec,
        round: u32,
        task: RelayTask,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<AuthorityResponse, ProtocolError> {
        let started = self.start_plan(spec, round, &task)?;
        let query = self.queries.get_mut(&spec.id).ok_or_else(|| ProtocolError::UnknownQuery(spec.id.to_string()))?;
        let (share, _) = self.keys.for_epoch(spec.epoch)?;
        match &mut query.plan {
            None => return Err(ProtocolError::Internal("a started plan is missing".into())),
            Some(_) if started => {}
            Some(plan) => {
                if plan.spec != *spec {
                    return Err(InvalidRequest::ScaleChanged.into());
                }
                let next = plan.admitted.len();
                let round_index = usize::try_from(round).unwrap_or(usize::MAX);
                if round_index < next {
                    // asked again after a lost reply, or fixing a refinement
                    plan.fix_task(round, &task)?;
                } else if round_index == next && plan.rounds.len() == next {
                    let previous = plan.admitted.last().and_then(|a| a.task.as_ref());
                    check_task(&spec.params, &plan.fixed, round, &task, previous)?;
                    plan.admitted.push(AdmittedRound { refines: None, task: None });
                    plan.set_task(round, &task)?;
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
        let signature = share.sign_admission(&codec::round_admission(spec, round, &task), rng);
        Ok(AuthorityResponse::Admitted { signature, remaining_budget: None, sealing: None })
    }

    /// Admits round `round` of a search as any one-bucket refinement of
    /// `previous`, which fixes round `round − 1`'s task (`Plan::fix_task`):
    /// the processor asks it with round `round − 1`'s registration, and
    /// relays check the refinement themselves.
    fn admit_refinement(
        &mut self,
        spec: &QuerySpec,
        round: u32,
        previous: &RelayTask,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<AuthorityResponse, ProtocolError> {
        let Some(before) = round.checked_sub(1) else {
            return Err(
                StatsError::ReleaseRefused("round 0 cannot be a refinement: it has no previous round".into()).into()
            );
        };
        // round 1's admission may come before round 0's registration
        self.start_plan(spec, before, previous)?;
        let query = self.queries.get_mut(&spec.id).ok_or_else(|| ProtocolError::UnknownQuery(spec.id.to_string()))?;
        let (share, _) = self.keys.for_epoch(query.epoch)?;
        let plan = query.plan.as_mut().ok_or(InvalidRequest::NoRoundAdmitted)?;
        if plan.spec != *spec {
            return Err(InvalidRequest::ScaleChanged.into());
        }
        if round >= plan.shape.max_rounds {
            return Err(StatsError::ReleaseRefused(format!(
                "round {round} cannot be a refinement: the plan has rounds 1 to {} after round 0",
                plan.shape.max_rounds.saturating_sub(1)
            ))
            .into());
        }
        plan.fix_task(before, previous)?;
        let index = usize::try_from(round).unwrap_or(usize::MAX);
        match plan.admitted.get(index) {
            None if plan.admitted.len() == index => {
                plan.admitted.push(AdmittedRound { refines: Some(previous.clone()), task: None })
            }
            // asked again after a lost reply
            Some(admitted) if admitted.refines.as_ref() == Some(previous) => {}
            _ => {
                return Err(InvalidRequest::RoundOutOfOrder {
                    round,
                    admitted: plan.admitted.len(),
                    registered: plan.rounds.len(),
                }
                .into())
            }
        }
        let signature = share.sign_admission(&codec::refinement_admission(spec, round, previous), rng);
        Ok(AuthorityResponse::Admitted { signature, remaining_budget: None, sealing: None })
    }

    fn register(
        &mut self,
        spec: &QuerySpec,
        round: u32,
        task: RelayTask,
        (contributions, shared): (Vec<SignedContribution>, Vec<SignedShares>),
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<AuthorityResponse, ProtocolError> {
        // round 0 contributed under the query's admission starts the plan here
        self.start_plan(spec, round, &task)?;
        let query = self.queries.get(&spec.id).ok_or_else(|| ProtocolError::UnknownQuery(spec.id.to_string()))?;
        let plan = query.plan.as_ref().ok_or(InvalidRequest::NoRoundAdmitted)?;
        if plan.spec != *spec {
            return Err(InvalidRequest::RegisteredSpecDiffers.into());
        }
        let round_index = usize::try_from(round).unwrap_or(usize::MAX);
        if plan.rounds.len() != round_index {
            return Err(InvalidRequest::RegisteredOutOfOrder { round, expected: plan.rounds.len() }.into());
        }
        let is_shared = !shared.is_empty();
        check_path(plan, is_shared, contributions.is_empty())?;
        if let Some(plan) = self.queries.get_mut(&spec.id).and_then(|q| q.plan.as_mut()) {
            plan.fix_task(round, &task)?;
        }
        let held = if is_shared {
            Held::Shared(self.sum_shares(spec, round, &task, shared)?)
        } else {
            Held::Encrypted(self.verify_contributions(spec, round, &task, contributions, rng)?)
        };
        if let Some(plan) = self.queries.get_mut(&spec.id).and_then(|q| q.plan.as_mut()) {
            plan.rounds.push(Round { task, held, outside: plan.outside });
        }
        Ok(AuthorityResponse::Registered)
    }

    /// A round on the committed-share path: the shares are checked
    /// (`check_shares`: known relays, each once, shapes, signatures), at
    /// least `min_relays`, and this decryptor's boxes open under its
    /// sealing secret for the query; returns its sums.
    fn sum_shares(
        &self,
        spec: &QuerySpec,
        round: u32,
        task: &RelayTask,
        shared: Vec<SignedShares>,
    ) -> Result<Vec<Scalar>, ProtocolError> {
        let shared =
            check_shares(spec, (round, task), shared, |name| self.policy.relays.get(name), true).all_valid()?;
        self.enough_relays(shared.iter().map(|s| s.relay.as_str()).collect())?;
        let position = spec
            .decryptors
            .iter()
            .position(|d| *d == self.name)
            .ok_or_else(|| InvalidRequest::Decryptors { reason: format!("{} is not one of them", self.name) })?;
        let (share, _) = self.keys.for_epoch(spec.epoch)?;
        let secret = share.sealing_secret(&spec.id.0);
        shares::open_and_sum(spec, round, task, position, &secret, &shared)
    }

    /// At least `min_relays` relays contributed (`names`).
    fn enough_relays(&self, mut names: Vec<&str>) -> Result<(), ProtocolError> {
        let needed = self.policy.min_relays.max(1);
        if names.len() >= needed {
            return Ok(());
        }
        names.sort();
        Err(ProtocolError::NotEnoughRelays {
            got: names.len(),
            needed,
            names: names.join(", "),
            missing: String::new(),
        })
    }

    /// Answers releases of a round on the committed-share path: every
    /// release asked must be one the plan permits of the round
    /// (`policy::slot`), and the answer is the whole round's sums, the
    /// same each time they are asked. With noise (a noisy search round,
    /// whose vector is a partition of the column) each component gets this
    /// decryptor's own noise at the round's scale (`policy::slot`:
    /// sensitivity 1, one share of epsilon per round).
    fn release_sums(
        &mut self,
        query_id: &QueryId,
        round: u32,
        releases: &[Release],
        (now, rng): (u64, &mut (impl RngCore + CryptoRng)),
    ) -> Result<AuthorityResponse, ProtocolError> {
        let plan = plan_of(&mut self.queries, query_id)?;
        let registered = plan.registered(round)?;
        if releases.is_empty() {
            return Err(StatsError::ReleaseRefused("a release request names at least one release".into()).into());
        }
        let params = &plan.spec.params;
        let mut scale = None;
        for release in releases {
            let slot = slot(params, &plan.fixed, &registered.task, *release)?;
            if let (false, Some(epsilon)) = (params.exact, params.epsilon) {
                scale = Some(laplace_scale(slot.sensitivity, epsilon, slot.share)?);
            }
        }
        let sums = match (plan.released.get(&round), &registered.held, scale) {
            (Some(sums), _, _) => sums.clone(),
            (None, Held::Shared(held), None) if !held.is_empty() && params.exact => {
                shares::share_sums(&self.name, round, held)?
            }
            (None, Held::Shared(held), Some(scale)) if !held.is_empty() => {
                shares::noisy_share_sums(&self.name, round, held, (&plan.lambda, scale), rng)?
            }
            (None, Held::Shared(held), None) if !held.is_empty() => {
                return Err(StatsError::InvalidParameter { name: "epsilon", reason: "missing".into() }.into())
            }
            _ => return Err(StatsError::ReleaseRefused(format!("round {round}'s sums are no longer held")).into()),
        };
        plan.released.entry(round).or_insert_with(|| sums.clone());
        self.end_if_over(query_id, now);
        Ok(AuthorityResponse::Sums(sums))
    }

    /// A `Decrypt` as the query's state allows it: a query that has ended
    /// gives the shares it gave (proved again) but no new one; a round that
    /// a later one followed is over; the last release the plan makes ends
    /// the query. One proof covers every share of the reply.
    fn release(
        &mut self,
        query_id: &QueryId,
        round: u32,
        releases: &[Release],
        now: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<AuthorityResponse, ProtocolError> {
        let context = releases_context(query_id, round, releases);
        let Some((plan, ended_at)) = self.queries.get(query_id).and_then(|q| q.plan.as_ref().zip(Some(q.ended_at)))
        else {
            return Err(ProtocolError::UnknownQuery(query_id.to_string()));
        };
        if ended_at.is_some() && plan.makes_new_share(round, releases) {
            return Err(StatsError::ReleaseRefused(format!(
                "query {query_id} is over: every release its plan makes was answered"
            ))
            .into());
        }
        let latest = plan.latest_fixed();
        if usize::try_from(round).map_or(true, |r| r < latest) {
            return Err(StatsError::ReleaseRefused(format!(
                "round {round} is over: round {latest}'s task was fixed after it"
            ))
            .into());
        }
        if plan.rounds.first().is_some_and(|r| matches!(r.held, Held::Shared(_))) {
            return self.release_sums(query_id, round, releases, (now, rng));
        }
        let (epoch, lambda, exact, answered) = self.decrypt(query_id, round, releases, rng)?;
        let (share, _) = self.keys.for_epoch(epoch)?;
        let response = prove(share, &lambda, &context, &answered, exact, rng);
        self.end_if_over(query_id, now);
        Ok(response)
    }

    /// The shares of `releases` (in order), made now for those not answered
    /// before; with the query's epoch, this authority's Lagrange coefficient
    /// and the mode. Nothing changes when one of them is refused.
    fn decrypt(
        &mut self,
        query_id: &QueryId,
        round: u32,
        releases: &[Release],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(u64, Scalar, bool, Vec<DecryptionShare>), ProtocolError> {
        let query = plan_of(&mut self.queries, query_id)?;
        let r = query.registered(round)?;
        let params = &query.spec.params;
        // sequential composition: never more releases than the plan's epsilon
        // was split over (a histogram's buckets and a noisy search round's
        // cells are disjoint: each slot once, and a search's rounds are
        // bounded by `check_task`)
        let counted = !params.exact && params.statistic != Statistic::Histogram && !params.statistic.is_search();
        // the slots and ciphertexts (first components) of the new shares, and their noise
        let mut fresh: Vec<(u32, RistrettoPoint)> = Vec::new();
        let mut noises: Vec<i128> = Vec::new();
        let mut slots = Vec::with_capacity(releases.len());
        for release in releases {
            let slot = slot(params, &query.fixed, &r.task, *release)?;
            slots.push(slot.index);
            if query.answered.contains_key(&(round, slot.index)) || fresh.iter().any(|f| f.0 == slot.index) {
                continue;
            }
            if counted && query.releases_used.saturating_add(fresh.len() as u64) >= query.shape.releases {
                return Err(StatsError::ReleaseRefused(format!(
                    "the query's plan allows {} releases and all were made",
                    query.shape.releases
                ))
                .into());
            }
            if params.statistic == Statistic::Histogram && !params.exact && *release == Release::HistTotal {
                return Err(StatsError::ReleaseRefused("a noisy histogram releases its buckets only".into()).into());
            }
            if !params.exact {
                let epsilon =
                    params.epsilon.ok_or(StatsError::InvalidParameter { name: "epsilon", reason: "missing".into() })?;
                let (num, den) = laplace_scale(slot.sensitivity, epsilon, slot.share)?;
                noises.push(discrete_laplace(num, den, rng));
            }
            let Held::Encrypted(aggregate) = &r.held else {
                return Err(ProtocolError::Internal("a round on the committed-share path asked to decrypt".into()));
            };
            fresh.push((slot.index, *round_target(&r.task, aggregate, &r.outside, *release)?.a()));
        }
        let (share, _) = self.keys.for_epoch(query.spec.epoch)?;
        let bases: Vec<RistrettoPoint> = fresh.iter().map(|f| f.1).collect();
        let made = share.decryption_shares(&query.lambda, &bases, (!params.exact).then_some(noises.as_slice()));
        noises.zeroize();
        for ((index, _), share) in fresh.iter().zip(made) {
            query.answered.insert((round, *index), share);
        }
        if counted {
            query.releases_used = query.releases_used.saturating_add(fresh.len() as u64);
        }
        let answered = slots
            .iter()
            .map(|index| {
                query.answered.get(&(round, *index)).cloned().ok_or(InvalidRequest::RoundNotRegistered { round })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((query.spec.epoch, query.lambda, params.exact, answered))
    }
}

/// One proof over `answered`, bound to `context`.
fn prove(
    share: &KeyShare,
    lambda: &Scalar,
    context: &[u8],
    answered: &[DecryptionShare],
    exact: bool,
    rng: &mut (impl RngCore + CryptoRng),
) -> AuthorityResponse {
    let shares: Vec<&DecryptionShare> = answered.iter().collect();
    AuthorityResponse::Partials(share.prove_decryptions(lambda, context, &shares, exact, rng))
}

/// The query a request is about, if any.
fn named_query(request: &AuthorityRequest) -> Option<QueryId> {
    match request {
        AuthorityRequest::AdmitRound { spec, .. }
        | AuthorityRequest::AdmitRefinement { spec, .. }
        | AuthorityRequest::Register { spec, .. } => Some(spec.id),
        AuthorityRequest::Decrypt { query_id, .. } => Some(*query_id),
        AuthorityRequest::AdmitQuery { .. } | AuthorityRequest::Status | AuthorityRequest::Transition { .. } => None,
    }
}

/// The plan of admitted query `id` (its round 0 fixed).
fn plan_of<'a>(queries: &'a mut HashMap<QueryId, ActiveQuery>, id: &QueryId) -> Result<&'a mut Plan, ProtocolError> {
    queries.get_mut(id).and_then(|q| q.plan.as_mut()).ok_or_else(|| ProtocolError::UnknownQuery(id.to_string()))
}

/// A query's rounds all take one path: ciphertexts, or (exact queries
/// and noisy searches, `shares::serves`) committed shares; a registration
/// carries one kind only.
fn check_path(plan: &Plan, shared: bool, no_ciphertexts: bool) -> Result<(), ProtocolError> {
    let refuse = |why: &str| Err(StatsError::ReleaseRefused(why.to_string()).into());
    if shared && !no_ciphertexts {
        return refuse("a registration carries ciphertexts or committed shares, not both");
    }
    if shared && !shares::serves(&plan.spec.params) {
        return refuse(
            "the committed-share path is for exact queries and noisy searches only; this noisy query's relays encrypt",
        );
    }
    match plan.rounds.first() {
        Some(first) if matches!(first.held, Held::Shared(_)) != shared => {
            refuse("a query's rounds take one path: ciphertexts or committed shares, as its first round did")
        }
        _ => Ok(()),
    }
}

/// This authority's Lagrange coefficient among the spec's decryptors: the
/// spec must be for this committee's epoch and name t distinct members,
/// this authority among them.
fn decryptor_lambda(joint: &JointPublicKey, me: &str, spec: &QuerySpec) -> Result<Scalar, ProtocolError> {
    if spec.epoch != joint.epoch() {
        return Err(InvalidRequest::WrongEpoch { asked: spec.epoch, current: joint.epoch() }.into());
    }
    // the whole set costs one field inversion (`JointPublicKey::lagrange`)
    let lambdas = joint.lagrange(&spec.decryptors).map_err(|e| InvalidRequest::Decryptors { reason: e.to_string() })?;
    spec.decryptors
        .iter()
        .zip(lambdas)
        .find(|(name, _)| name.as_str() == me)
        .map(|(_, l)| l)
        .ok_or_else(|| InvalidRequest::Decryptors { reason: format!("{me} is not one of them") }.into())
}
