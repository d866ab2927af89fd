//! The processor's per-query state machine, one state per expected input
//! (as rustls's `ExpectCertificate` and friends): the committee admits the
//! query (at least t authorities; unreachable ones are left out and named,
//! a refusal ends the query) and the first t that admitted it, in committee
//! order, become its decryptors; relays describe the column (declared
//! decimals: the common scale), then the statistic's plan runs round by
//! round: relays send signed contributions with proofs of randomness
//! under the query's admission (round 0) or under the refinement admission
//! every decryptor gave with the previous round's registration (later
//! search rounds; else every decryptor admits the round's task first)
//! (shapes checked here;
//! signatures and proofs by every authority, and here only when one
//! refuses the round, to leave out the relays that fail them: the same
//! `contribution_check::check_round`), every decryptor registers them and
//! answers the round's first releases in the same request, then further
//! releases if the plan needs them (partial decryptions, scaled by each
//! decryptor's Lagrange coefficient, whose proofs are checked and which are
//! added up) and discrete logs (solved by the caller, off the actor thread).
//!
//! Input: decoded replies (`PeerReply`) from the caller, which moves bytes
//! (`actors::processor` over QUIC, `harness` in memory) through
//! `protocol::drive::run_query`. Output: the next `Step`, and at the end the
//! `QueryAnswer`. Relays that fail or time out in the first rounds are left
//! out when at least `min_relays` remain; after that a failure ends the
//! query, because a search's later rounds must cover the same relays. No I/O.

use std::collections::HashMap;
use std::sync::Arc;

use curve25519_dalek::ristretto::RistrettoPoint;
use rand_core::{CryptoRng, RngCore};

use super::contribution_check::{check_round, check_round_shapes, check_shares, Checked, RelaySigned};
use super::error::{PeerFailure, PeerReply, ProtocolError};
use super::ids::QueryId;
use super::messages::*;
use super::shares;
use crate::crypto::{
    combine_batches, BatchDecryption, Ciphertext, DecryptingSet, DlogRange, JointPublicKey, RelayPublicKey,
};
use crate::stats::contribution::PlainAggregate;
use crate::stats::limbs::MAX_LIMB_BITS;
use crate::stats::policy::WIDE_SEARCH_BUCKETS;
use crate::stats::release::{round_target, Outside};
use crate::stats::{Aggregate, Contribution, Epsilon, PlanStep, Planner, QueryParams, RelayTask, Release, StatsError};

/// What the processor knows of the cluster, from its configuration.
#[derive(Clone, Debug)]
pub struct ProcessorView {
    pub dataset: String,
    pub min_relays: usize,
    pub relays: Vec<(String, RelayPublicKey)>,
    pub authorities: Vec<String>,
    pub joint: JointPublicKey,
    /// the discrete-log solver covers [-max_abs, max_abs)
    pub dlog_max_abs: u64,
    /// log2 of the solver's table (baby steps)
    pub dlog_table_bits: u32,
    /// exact queries take the committed-share path (`protocol::shares`)
    /// when every decryptor gives a sealing key; else, and for noisy
    /// queries, the ElGamal path
    pub share_path: bool,
}

/// An aggregated limb stays below 2^(table bits + this): at most 2^8 giant
/// steps of the solver each way, so a limb costs far less to solve than to
/// encrypt, prove and release.
pub const SOLVE_SLACK_BITS: u32 = 8;

impl ProcessorView {
    /// Widest limb such that the sum over `relays` limbs stays in range
    /// and cheap to solve (below 2^(table bits + `SOLVE_SLACK_BITS`)).
    pub fn limb_bits(&self, relays: usize) -> u32 {
        let range_bits = 63 - self.dlog_max_abs.max(2).leading_zeros(); // floor(log2)
        let cheap_bits = self.dlog_table_bits.saturating_add(SOLVE_SLACK_BITS);
        range_bits.min(cheap_bits).saturating_sub(relay_bits(relays)).clamp(4, 32)
    }

    /// How far the solver searches for `release` of an aggregate over
    /// `relays`: a count (of rows, of a bucket or a prefix, noisy or not)
    /// can reach relays·2^32 (`stats::limits::ROWS_LIMIT` rows per relay),
    /// whatever `dlog_range_bits` says, so any range that validates works;
    /// every other release (limbs, noisy sums) stays inside the range by
    /// construction. Solving costs what the value needs; the bound only
    /// limits how long a value out of range takes to be refused.
    pub fn dlog_bound(&self, release: Release, relays: usize) -> u64 {
        match release {
            Release::Count
            | Release::HistTotal
            | Release::HistPrefix(_)
            | Release::HistSuffix(_)
            | Release::HistBucket(_) => {
                // one bit for noise on top of relays·2^32
                let bits = (32 + relay_bits(relays) + 1).min(62);
                self.dlog_max_abs.max(1u64 << bits)
            }
            Release::Sum | Release::Squares | Release::SumLimb(_) | Release::SquaresLimb(_) => self.dlog_max_abs,
        }
    }

    /// `dlog_bound`, searched on the positive side only for an exact
    /// release that cannot be negative: counts, limbs of sums of squares,
    /// and limbs of sums when the query's values are (`nonnegative_values`:
    /// its lower bound is at least 0). Half the giant steps of a search on
    /// both sides; a negative value (only a dishonest relay can make one)
    /// is refused with an error instead.
    pub fn dlog_range(&self, release: Release, relays: usize, exact: bool, nonnegative_values: bool) -> DlogRange {
        let nonnegative = exact
            && match release {
                Release::Count
                | Release::HistTotal
                | Release::HistPrefix(_)
                | Release::HistSuffix(_)
                | Release::HistBucket(_)
                | Release::SquaresLimb(_) => true,
                Release::SumLimb(_) => nonnegative_values,
                Release::Sum | Release::Squares => false,
            };
        DlogRange { max_abs: self.dlog_bound(release, relays), nonnegative }
    }
}

/// What the caller must do next (moved once per step; sizes differ freely).
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Step {
    /// Send to every active relay (`QueryDriver::active_relays`), then call `on_relays`.
    AskRelays(RelayRequest),
    /// Send each request to every authority of `QueryDriver::authorities`
    /// (the whole committee for the query's admission, then the query's t
    /// decryptors), then call `on_authorities` with one reply list per
    /// request, in order, and the requests back.
    AskAuthorities(Vec<AuthorityRequest>),
    /// Solve these discrete logs, then call `on_solved`.
    /// Each with where to search (`ProcessorView::dlog_range`).
    Solve(Vec<(Release, RistrettoPoint, DlogRange)>),
    Done(Box<QueryAnswer>),
}

/// The round in progress.
struct Round {
    number: u32,
    task: RelayTask,
}

/// The decryptors' admission of a search's next round as any one-bucket
/// refinement of the current round's task (`AdmitRefinement`, asked with
/// the current round's registration).
struct Refinement {
    round: u32,
    previous: RelayTask,
    admission: Admission,
}

/// A query whose scale is fixed: what every later state owns.
struct Running {
    spec: QuerySpec,
    planner: Planner,
    column: Vec<String>,
    /// the column outside the current search round's grid, encrypted
    /// (`release::Outside::refined`, as every authority computes it)
    outside: Outside,
    /// the next round's admission, once the decryptors gave it
    refinement: Option<Refinement>,
    /// on the committed-share path, the column outside the current search
    /// round's grid, in the clear (the processor reads every round whole)
    plain_outside: Outside<i128>,
}

/// A round's aggregate as the processor holds it: encrypted (ElGamal
/// path) or read off the decryptors' sums (committed-share path).
// one per round in progress, moved between states: sizes may differ
#[allow(clippy::large_enum_variant)]
enum RoundAggregate {
    Encrypted(Aggregate),
    Plain(PlainAggregate),
}

/// One state per expected input; each owns what it needs.
enum State {
    /// every authority's admission of the query
    AwaitingQueryAdmission {
        intent: QueryIntent,
    },
    /// every relay's description of the column
    AwaitingDescriptions {
        intent: QueryIntent,
    },
    /// every authority's admission of the round's task
    AwaitingRoundAdmission {
        query: Running,
        round: Round,
    },
    AwaitingContributions {
        query: Running,
        round: Round,
    },
    /// every authority's partial decryption of each target (the round's
    /// first ones answered with its registration)
    AwaitingPartials {
        query: Running,
        round: Round,
        aggregate: Aggregate,
        targets: Vec<(Release, Ciphertext)>,
        /// the request is the round's registration, whose signatures and
        /// proofs the processor has not checked (if the authorities refuse
        /// it, the processor checks them: `recheck`)
        unchecked: bool,
    },
    /// every decryptor's sums of a round on the committed-share path,
    /// answering the round's first `releases`
    AwaitingSums {
        query: Running,
        round: Round,
        /// the sum of the relays' commitments
        commitments: RistrettoPoint,
        releases: Vec<Release>,
        /// the relays' signatures are not checked here yet (`recheck_shares`)
        unchecked: bool,
    },
    /// the discrete logs of the combined releases
    AwaitingLogs {
        query: Running,
        round: Round,
        aggregate: Aggregate,
    },
    /// answered or failed: no input is expected
    Finished,
}

impl State {
    fn expects(&self) -> &'static str {
        match self {
            State::AwaitingQueryAdmission { .. } => "the authorities' admissions of the query",
            State::AwaitingDescriptions { .. } => "the relays' descriptions",
            State::AwaitingRoundAdmission { .. } => "the authorities' admissions of a round",
            State::AwaitingContributions { .. } => "the relays' contributions",
            State::AwaitingPartials { .. } => "the authorities' partial decryptions",
            State::AwaitingSums { .. } => "the decryptors' sums of shares",
            State::AwaitingLogs { .. } => "discrete logs",
            State::Finished => "nothing (the query is over)",
        }
    }
}

/// What stays the same in every state.
struct Context {
    view: Arc<ProcessorView>,
    id: QueryId,
    params: QueryParams,
    /// what every admitting authority charged when it admitted the query
    charged: Option<Epsilon>,
    /// whom the next authority requests go to: the committee, then the
    /// query's t decryptors (the first t in committee order that admitted it)
    asked: Vec<String>,
    /// the decryptors with their λ_i·Y_i, once the query is admitted
    decrypting: Option<DecryptingSet>,
    /// the committee's admission of the query: relays contribute round 0
    /// under it (`AdmissionOf::Query`)
    admission: Option<Admission>,
    /// the decryptors' sealing keys, in their order, when the query takes
    /// the committed-share path (empty: the ElGamal path)
    sealing: Vec<(String, SealingGrant)>,
    /// authorities that did not admit the query (unreachable), with why
    missing_authorities: Vec<(String, String)>,
    /// an authority refused the admission because it runs a later epoch
    later_epoch: bool,
    active: Vec<String>,
    missing: Vec<(String, String)>,
    /// (rounds started, most rounds), as of the plan's last step
    progress: (u32, u32),
}

pub struct QueryDriver {
    cx: Context,
    state: State,
}

impl QueryDriver {
    /// `user`: the authenticated user, named to the authorities with the
    /// admission (they record it with the charge).
    pub fn new(
        view: Arc<ProcessorView>,
        id: QueryId,
        now: u64,
        user: String,
        labels: Vec<String>,
        params: QueryParams,
    ) -> Result<(Self, Step), ProtocolError> {
        if labels.is_empty() || labels.len() > 3 {
            return Err(crate::stats::StatsError::InvalidParameter {
                name: "labels",
                reason: format!("a query names 1 to 3 labels, got {}", labels.len()),
            }
            .into());
        }
        params.validate()?;
        let active = view.relays.iter().map(|(n, _)| n.clone()).collect();
        let intent = QueryIntent { id, issued_at: now, dataset: view.dataset.clone(), labels, params: params.clone() };
        let step = Step::AskAuthorities(vec![AuthorityRequest::AdmitQuery {
            query: intent.clone(),
            user,
            epoch: view.joint.epoch(),
            sealing: view.share_path && shares::serves(&params),
        }]);
        let asked = view.authorities.clone();
        let cx = Context {
            view,
            id,
            params,
            charged: None,
            asked,
            decrypting: None,
            admission: None,
            sealing: Vec::new(),
            missing_authorities: Vec::new(),
            later_epoch: false,
            active,
            missing: Vec::new(),
            progress: (0, 0),
        };
        Ok((QueryDriver { cx, state: State::AwaitingQueryAdmission { intent } }, step))
    }

    pub fn id(&self) -> QueryId {
        self.cx.id
    }

    /// The epsilon every authority charged, once all admitted the query.
    pub fn charged(&self) -> Option<Epsilon> {
        self.cx.charged
    }

    /// Whether an authority answered the admission that it already runs a
    /// later committee epoch than this driver's (a change the processor has
    /// not followed yet).
    pub fn saw_later_epoch(&self) -> bool {
        self.cx.later_epoch
    }

    pub fn active_relays(&self) -> &[String] {
        &self.cx.active
    }

    /// The authorities the next `Step::AskAuthorities` goes to.
    pub fn authorities(&self) -> &[String] {
        &self.cx.asked
    }

    /// (rounds started, most rounds the plan may take); (0, 0) until the
    /// relays have described the column and the plan is known.
    pub fn progress(&self) -> (u32, u32) {
        self.cx.progress
    }

    fn unexpected(&self, found: &str) -> ProtocolError {
        ProtocolError::Internal(format!("{found} arrived while the query expected {}", self.state.expects()))
    }

    /// The relays' replies to the last `Step::AskRelays`.
    pub fn on_relays(&mut self, replies: Vec<PeerReply<RelayResponse>>) -> Result<Step, ProtocolError> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::AwaitingDescriptions { intent } => self.described(intent, replies),
            State::AwaitingContributions { query, round } => self.contributed(query, round, replies),
            other => {
                self.state = other;
                Err(self.unexpected("relay replies"))
            }
        }
    }

    /// `replies[i]` holds every authority's answer to request i of the last
    /// `Step::AskAuthorities`; `requests` are those requests, handed back
    /// (a refused registration is checked and sent again from them, so the
    /// driver keeps no copy of a round's contributions).
    pub fn on_authorities(
        &mut self,
        requests: Vec<AuthorityRequest>,
        replies: Vec<Vec<PeerReply<AuthorityResponse>>>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Step, ProtocolError> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::AwaitingQueryAdmission { intent } => {
                let admission = self.cx.query_admission(replies)?;
                self.cx.admission = Some(admission.clone());
                self.cx.charged =
                    Some(if intent.params.exact { Epsilon(0) } else { intent.params.epsilon.unwrap_or_default() });
                let request =
                    RelayRequest::Describe { query: intent.clone(), admission, epoch: self.cx.view.joint.epoch() };
                self.state = State::AwaitingDescriptions { intent };
                Ok(Step::AskRelays(request))
            }
            State::AwaitingRoundAdmission { query, round } => {
                let admission = self.cx.admission(replies)?;
                let request = RelayRequest::Contribute {
                    spec: query.spec.clone(),
                    round: round.number,
                    task: round.task.clone(),
                    admission,
                    admission_of: AdmissionOf::Round,
                    sealing: self.cx.sealing.clone(),
                };
                self.state = State::AwaitingContributions { query, round };
                Ok(Step::AskRelays(request))
            }
            State::AwaitingSums { mut query, round, commitments, releases, unchecked } => {
                let replies = self.cx.refinement(&mut query, &round, &requests, replies);
                let shares::Opened { aggregate, outside } = match self.cx.sums(&round, &commitments, replies) {
                    Ok(opened) => opened,
                    Err(refused) if unchecked => return self.recheck_shares(query, round, requests, refused),
                    Err(e) => return Err(e),
                };
                // a noisy search round's own cells outside its grid
                if let Some(outside) = outside {
                    query.plain_outside = outside;
                }
                let values = plain_values(&query, &round.task, &aggregate, &releases)?;
                let next = query.planner.released(&values)?;
                self.follow(query, Some((round, RoundAggregate::Plain(aggregate))), next)
            }
            State::AwaitingPartials { mut query, round, aggregate, targets, unchecked } => {
                let replies = self.cx.refinement(&mut query, &round, &requests, replies);
                let relays = self.cx.active.len();
                let combined = match self.cx.combine(round.number, &targets, replies) {
                    Ok(combined) => combined,
                    Err(refused) if unchecked => return self.recheck(query, round, requests, refused, rng),
                    Err(e) => return Err(e),
                };
                // the query's values are nonnegative when its lower bound is
                let nonnegative = query.planner.fixed().bounds.is_some_and(|(lo, _)| lo >= 0);
                let exact = self.cx.params.exact;
                let points = combined
                    .into_iter()
                    .map(|(r, p)| (r, p, self.cx.view.dlog_range(r, relays, exact, nonnegative)))
                    .collect();
                self.state = State::AwaitingLogs { query, round, aggregate };
                Ok(Step::Solve(points))
            }
            other => {
                self.state = other;
                Err(self.unexpected("authority replies"))
            }
        }
    }

    /// The discrete logs asked for by the last `Step::Solve`.
    pub fn on_solved(&mut self, values: Vec<(Release, i64)>) -> Result<Step, ProtocolError> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::AwaitingLogs { mut query, round, aggregate } => {
                let next = query.planner.released(&values)?;
                self.follow(query, Some((round, RoundAggregate::Encrypted(aggregate))), next)
            }
            other => {
                self.state = other;
                Err(self.unexpected("discrete logs"))
            }
        }
    }

    /// The relays described the column: fix the scale and start the plan.
    fn described(
        &mut self,
        intent: QueryIntent,
        replies: Vec<PeerReply<RelayResponse>>,
    ) -> Result<Step, ProtocolError> {
        let replies = replies.into_iter().map(|r| {
            expect_relay(r, "Described", &|resp| match resp {
                RelayResponse::Described(info) => Ok(info),
                other => Err(other),
            })
        });
        let described = self.cx.settle(replies.collect(), true)?;
        let Some((reference, first)) = described.first() else {
            return Err(ProtocolError::Internal("settle returned no relay".into()));
        };
        if let Some((name, _)) = described.iter().find(|(_, i)| i.labels != first.labels) {
            return Err(ProtocolError::BadContribution {
                relay: name.clone(),
                reason: format!(
                    "matched a different column than {reference} (their files' header labels differ); make the relays' headers agree"
                ),
            });
        }
        let column = first.labels.clone();
        let decimals =
            described.iter().map(|(_, i)| i.decimals).max().unwrap_or(0).max(self.cx.params.parameter_decimals()?);
        let decryptors = u32::try_from(self.cx.asked.len()).unwrap_or(u32::MAX);
        // no discrete log on the committed-share path: the widest limbs, fewest components
        let limb_bits =
            if self.cx.sealing.is_empty() { self.cx.view.limb_bits(described.len()) } else { MAX_LIMB_BITS };
        let mut planner = Planner::new(self.cx.params.clone(), decimals, limb_bits)?.with_noise_sources(decryptors);
        if !self.cx.sealing.is_empty() {
            // a bucket costs little on the committed-share path: fewer, wider rounds
            planner = planner.with_search_buckets(WIDE_SEARCH_BUCKETS);
        }
        let first_step = planner.start()?;
        let spec = QuerySpec::new(intent, decimals, self.cx.view.joint.epoch(), self.cx.asked.clone());
        let query = Running {
            spec,
            planner,
            column,
            outside: Outside::none(),
            refinement: None,
            plain_outside: Outside::none(),
        };
        self.follow(query, None, first_step)
    }

    /// The relays sent committed shares for a round: check their shapes
    /// (the decryptors check the signatures; the processor only when one
    /// refuses, `recheck_shares`) and register them with the round's first
    /// releases.
    fn shared(
        &mut self,
        mut query: Running,
        round: Round,
        replies: Vec<PeerReply<RelayResponse>>,
    ) -> Result<Step, ProtocolError> {
        let (received, failed) = from_relays(replies, "Shares", |resp| match resp {
            RelayResponse::Shares(s) => Ok(*s),
            other => Err(other),
        });
        let view = self.cx.view.clone();
        let keys = relay_keys(&view);
        let checked = check_shares(&query.spec, (round.number, &round.task), received, |n| keys.get(n).copied(), false);
        let releases = first_releases(&mut query)?;
        self.register_shares((query, round), checked, failed, (releases, true))
    }

    /// Registers the shares that passed `checked` (those whose commitment
    /// is no point are left out too, as `keep` allows) with the round's
    /// first releases.
    fn register_shares(
        &mut self,
        (query, round): (Running, Round),
        mut checked: Checked<SignedShares>,
        failed: Vec<(String, PeerFailure)>,
        (releases, unchecked): (Vec<Release>, bool),
    ) -> Result<Step, ProtocolError> {
        // each commitment decoded once
        let mut points = HashMap::with_capacity(checked.valid.len());
        for s in std::mem::take(&mut checked.valid) {
            match shares::commitment(&s) {
                Ok(point) => {
                    points.insert(s.relay.clone(), point);
                    checked.valid.push(s);
                }
                Err(e) => checked.rejected.push((s.relay.clone(), e)),
            }
        }
        let shared = self.cx.keep(&round, checked, failed)?;
        let commitments = shared.iter().filter_map(|s| points.get(&s.relay)).sum();
        // each decryptor is sent its own boxes only, with every box's hash
        let shared = shared.into_iter().map(SignedShares::with_hashes).collect();
        let mut requests = vec![AuthorityRequest::Register {
            spec: query.spec.clone(),
            round: round.number,
            task: round.task.clone(),
            contributions: Vec::new(),
            releases: releases.clone(),
            shared,
        }];
        requests.extend(next_admission(&query, &round)?);
        self.state = State::AwaitingSums { query, round, commitments, releases, unchecked };
        Ok(Step::AskAuthorities(requests))
    }

    /// A decryptor refused a registration of shares whose signatures the
    /// processor had not checked: it checks them now, leaves out the relays
    /// that fail (while `settle` allows) and registers the round again;
    /// when every one holds, the refusal stands.
    fn recheck_shares(
        &mut self,
        query: Running,
        round: Round,
        requests: Vec<AuthorityRequest>,
        refused: ProtocolError,
    ) -> Result<Step, ProtocolError> {
        let sent = requests.into_iter().find_map(|r| match r {
            AuthorityRequest::Register { shared, releases, .. } => Some((shared, releases)),
            _ => None,
        });
        let Some((shared, releases)) = sent else { return Err(refused) };
        let view = self.cx.view.clone();
        let keys = relay_keys(&view);
        let checked = check_shares(&query.spec, (round.number, &round.task), shared, |n| keys.get(n).copied(), true);
        if checked.rejected.is_empty() {
            return Err(refused);
        }
        self.register_shares((query, round), checked, Vec::new(), (releases, false))
    }

    /// The relays contributed to a round: check, aggregate, register.
    fn contributed(
        &mut self,
        mut query: Running,
        round: Round,
        replies: Vec<PeerReply<RelayResponse>>,
    ) -> Result<Step, ProtocolError> {
        if !self.cx.sealing.is_empty() {
            return self.shared(query, round, replies);
        }
        let (received, failed) = from_relays(replies, "Contribution", |resp| match resp {
            RelayResponse::Contribution(c) => Ok(*c),
            other => Err(other),
        });
        let view = self.cx.view.clone();
        let keys = relay_keys(&view);
        // signatures and proofs of randomness are the authorities' to check:
        // the processor checks them only if one refuses the round (`recheck`)
        let checked = check_round_shapes(&query.spec, round.number, &round.task, received, |n| keys.get(n).copied());
        let contributions = self.cx.keep(&round, checked, failed)?;
        let releases = first_releases(&mut query)?;
        self.register(query, round, contributions, releases, true)
    }

    /// Registers the round's contributions with its first releases;
    /// `unchecked`: their signatures and proofs are not checked yet.
    fn register(
        &mut self,
        query: Running,
        round: Round,
        contributions: Vec<SignedContribution>,
        releases: Vec<Release>,
        unchecked: bool,
    ) -> Result<Step, ProtocolError> {
        let aggregate = Contribution::aggregate(&round.task, contributions.iter().map(|c| &c.contribution))?;
        let targets = targets(&round.task, &aggregate, &query.outside, &releases)?;
        let mut requests = vec![AuthorityRequest::Register {
            spec: query.spec.clone(),
            round: round.number,
            task: round.task.clone(),
            contributions,
            releases,
            shared: Vec::new(),
        }];
        requests.extend(next_admission(&query, &round)?);
        self.state = State::AwaitingPartials { query, round, aggregate, targets, unchecked };
        Ok(Step::AskAuthorities(requests))
    }

    /// The authorities refused a registration (among `requests`, handed
    /// back) whose signatures and proofs of randomness the processor had
    /// not checked: it checks them now. Relays that fail are left out
    /// (while `settle` allows) and the round is registered again; when
    /// every contribution holds, the refusal stands.
    fn recheck(
        &mut self,
        query: Running,
        round: Round,
        requests: Vec<AuthorityRequest>,
        refused: ProtocolError,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Step, ProtocolError> {
        let sent = requests.into_iter().find_map(|r| match r {
            AuthorityRequest::Register { contributions, releases, .. } => Some((contributions, releases)),
            _ => None,
        });
        let Some((contributions, releases)) = sent else { return Err(refused) };
        let view = self.cx.view.clone();
        let keys = relay_keys(&view);
        let checked = check_round(&query.spec, round.number, &round.task, contributions, |n| keys.get(n).copied(), rng);
        if checked.rejected.is_empty() {
            return Err(refused);
        }
        let contributions = self.cx.keep(&round, checked, Vec::new())?;
        self.register(query, round, contributions, releases, false)
    }

    /// The one place a plan's next step becomes the driver's: a new round to
    /// admit, releases of the current round to decrypt, or the answer.
    fn follow(
        &mut self,
        mut query: Running,
        current: Option<(Round, RoundAggregate)>,
        next: PlanStep,
    ) -> Result<Step, ProtocolError> {
        self.cx.progress = query.planner.progress()?;
        match (next, current) {
            (PlanStep::Round { round, task }, current) => {
                match current {
                    Some((previous, RoundAggregate::Encrypted(aggregate))) => {
                        query.outside = query.outside.refined(&previous.task, &aggregate, &task)?
                    }
                    // (a noisy round's outside comes with its sums)
                    Some((previous, RoundAggregate::Plain(aggregate))) if query.planner.params().exact => {
                        query.plain_outside = query.plain_outside.refined(&previous.task, &aggregate, &task)?
                    }
                    Some((_, RoundAggregate::Plain(_))) => {}
                    None => {}
                }
                Ok(self.start_round(query, Round { number: round, task }))
            }
            // the processor holds the whole round: no authority is asked again
            (PlanStep::Releases { releases, .. }, Some((round, RoundAggregate::Plain(aggregate)))) => {
                let values = plain_values(&query, &round.task, &aggregate, &releases)?;
                let next = query.planner.released(&values)?;
                self.follow(query, Some((round, RoundAggregate::Plain(aggregate))), next)
            }
            (PlanStep::Releases { releases, .. }, Some((round, RoundAggregate::Encrypted(aggregate)))) => {
                let targets = targets(&round.task, &aggregate, &query.outside, &releases)?;
                // one request for every release of the step: one proof per authority
                let request = AuthorityRequest::Decrypt { query_id: self.cx.id, round: round.number, releases };
                self.state = State::AwaitingPartials { query, round, aggregate, targets, unchecked: false };
                Ok(Step::AskAuthorities(vec![request]))
            }
            (PlanStep::Releases { .. }, None) => {
                Err(ProtocolError::Internal("the plan asked for releases before its first round".into()))
            }
            (PlanStep::Done(result), _) => Ok(Step::Done(Box::new(self.cx.answer(query.column, result)))),
        }
    }

    /// A new round: relays contribute at once under the query's admission
    /// (round 0) or the refinement admission the decryptors gave with the
    /// previous round's registration; else the decryptors admit it first.
    fn start_round(&mut self, mut query: Running, round: Round) -> Step {
        let under = match (query.refinement.take(), &self.cx.admission) {
            (_, Some(admission)) if round.number == 0 => Some((admission.clone(), AdmissionOf::Query)),
            (Some(r), _) if r.round == round.number => Some((r.admission, AdmissionOf::Refinement(r.previous))),
            _ => None,
        };
        let (spec, number, task) = (query.spec.clone(), round.number, round.task.clone());
        match under {
            Some((admission, admission_of)) => {
                self.state = State::AwaitingContributions { query, round };
                let sealing = self.cx.sealing.clone();
                Step::AskRelays(RelayRequest::Contribute {
                    spec,
                    round: number,
                    task,
                    admission,
                    admission_of,
                    sealing,
                })
            }
            None => {
                self.state = State::AwaitingRoundAdmission { query, round };
                Step::AskAuthorities(vec![AuthorityRequest::AdmitRound { spec, round: number, task }])
            }
        }
    }
}

impl Context {
    /// The contributions that passed `checked`; the relays that failed it
    /// or did not answer (`failed`) are left out as `settle` allows.
    fn keep<C: RelaySigned>(
        &mut self,
        round: &Round,
        checked: Checked<C>,
        mut failed: Vec<(String, PeerFailure)>,
    ) -> Result<Vec<C>, ProtocolError> {
        failed.extend(checked.rejected.into_iter().map(|(relay, e)| (relay, PeerFailure::Rejected(e.to_string()))));
        let settled = checked
            .valid
            .into_iter()
            .map(|c| PeerReply::new(c.relay().to_string(), Ok(c)))
            .chain(failed.into_iter().map(|(relay, e)| PeerReply::new(relay, Err(e))))
            .collect();
        Ok(self.settle(settled, round.number == 0)?.into_iter().map(|(_, c)| c).collect())
    }

    /// Keeps the relays that answered; fails when fewer than min_relays
    /// remain, or (not `tolerant`) at the first failure.
    fn settle<T>(&mut self, replies: Vec<PeerReply<T>>, tolerant: bool) -> Result<Vec<(String, T)>, ProtocolError> {
        let mut ok = Vec::new();
        for PeerReply { peer, reply } in replies {
            match reply {
                Ok(v) => ok.push((peer, v)),
                Err(e) if !tolerant => return Err(ProtocolError::RelayFailed { relay: peer, reason: e.to_string() }),
                Err(e) => self.missing.push((peer, e.to_string())),
            }
        }
        let needed = self.view.min_relays.max(1);
        if ok.len() < needed {
            let missing =
                if self.missing.is_empty() { String::new() } else { format!("; {}", group_reasons(&self.missing)) };
            return Err(ProtocolError::NotEnoughRelays {
                got: ok.len(),
                needed,
                names: ok.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "),
                missing,
            });
        }
        // keep the configured order
        self.active =
            self.view.relays.iter().map(|(n, _)| n).filter(|n| ok.iter().any(|(o, _)| o == *n)).cloned().collect();
        Ok(ok)
    }

    /// Every asked authority's answer to the one request, of the kind
    /// `pick` accepts (others say why not with `failure`); the first
    /// refusal or failure ends the query.
    fn all_authorities<T>(
        &self,
        list: Vec<PeerReply<AuthorityResponse>>,
        pick: impl Fn(&str, AuthorityResponse) -> Result<T, PeerFailure>,
    ) -> Result<Vec<(String, T)>, ProtocolError> {
        if let Some(stranger) = list.iter().find(|r| !self.asked.contains(&r.peer)) {
            return Err(ProtocolError::Internal(format!("a reply from {}, which was not asked", stranger.peer)));
        }
        for name in &self.asked {
            if !list.iter().any(|r| &r.peer == name) {
                return Err(ProtocolError::Refused { authority: name.clone(), reason: "did not answer".into() });
            }
        }
        list.into_iter()
            .map(|PeerReply { peer, reply }| match reply.and_then(|resp| pick(&peer, resp)) {
                Ok(value) => Ok((peer, value)),
                Err(failure) => Err(ProtocolError::Refused { authority: peer, reason: failure.to_string() }),
            })
            .collect()
    }

    /// The committee's admissions of the query: an unreachable authority is
    /// left out (and named in the answer), a refusal ends the query, and at
    /// least t must admit. The first t that did, in committee order, become
    /// the query's decryptors.
    fn query_admission(&mut self, replies: Vec<Vec<PeerReply<AuthorityResponse>>>) -> Result<Admission, ProtocolError> {
        let list = one_list(replies)?;
        let mut signatures = Vec::new();
        let mut grants: Vec<(String, SealingGrant)> = Vec::new();
        let mut list = list;
        for name in &self.asked {
            let position = list.iter().position(|r| &r.peer == name);
            match position.map(|at| list.swap_remove(at).reply) {
                Some(Ok(AuthorityResponse::Admitted { signature, sealing, .. })) => {
                    signatures.push((name.clone(), signature));
                    grants.extend(sealing.map(|grant| (name.clone(), grant)));
                }
                Some(Err(PeerFailure::Unreachable(why))) => self.missing_authorities.push((name.clone(), why)),
                // mid committee change: it cannot sign for this query's epoch
                Some(Ok(AuthorityResponse::OtherEpoch { current, .. })) => {
                    self.later_epoch |= current > self.view.joint.epoch();
                    self.missing_authorities.push((name.clone(), format!("runs committee epoch {current}")))
                }
                None => self.missing_authorities.push((name.clone(), "did not answer".into())),
                Some(Ok(other)) => {
                    let reason = other.failure("Admitted").to_string();
                    return Err(ProtocolError::Refused { authority: name.clone(), reason });
                }
                Some(Err(failure)) => {
                    return Err(ProtocolError::Refused { authority: name.clone(), reason: failure.to_string() });
                }
            }
        }
        let needed = usize::from(self.view.joint.threshold());
        if signatures.len() < needed {
            let missing =
                self.missing_authorities.iter().map(|(n, why)| format!("{n}: {why}")).collect::<Vec<_>>().join("; ");
            return Err(ProtocolError::NotEnoughAuthorities { got: signatures.len(), needed, missing });
        }
        self.asked = signatures.iter().take(needed).map(|(name, _)| name.clone()).collect();
        self.decrypting = Some(self.view.joint.decrypting_set(&self.asked)?);
        // the committed-share path when every decryptor gave its sealing key
        let sealing: Vec<(String, SealingGrant)> =
            self.asked.iter().filter_map(|name| grants.iter().find(|(g, _)| g == name).cloned()).collect();
        if self.view.share_path && shares::serves(&self.params) && sealing.len() == self.asked.len() {
            self.sealing = sealing;
        }
        Ok(Admission { signatures })
    }

    /// The replies to a registration (or release) `requests`, with the
    /// refinement admission asked with it taken off into `query` (without
    /// it, a refusal, the next round is admitted on its own).
    fn refinement(
        &self,
        query: &mut Running,
        round: &Round,
        requests: &[AuthorityRequest],
        mut replies: Vec<Vec<PeerReply<AuthorityResponse>>>,
    ) -> Vec<Vec<PeerReply<AuthorityResponse>>> {
        if matches!(requests.get(1), Some(AuthorityRequest::AdmitRefinement { .. })) {
            let admitted = replies.pop().map(|list| self.admission(vec![list]));
            query.refinement = admitted.and_then(Result::ok).map(|admission| Refinement {
                round: round.number.saturating_add(1),
                previous: round.task.clone(),
                admission,
            });
        }
        replies
    }

    /// Every decryptor's sums of a round, interpolated and checked against
    /// the relays' commitments (`shares::combine_sums`).
    fn sums(
        &self,
        round: &Round,
        commitments: &RistrettoPoint,
        replies: Vec<Vec<PeerReply<AuthorityResponse>>>,
    ) -> Result<shares::Opened, ProtocolError> {
        let sums = self.all_authorities(one_list(replies)?, |peer, resp| match resp {
            AuthorityResponse::Sums(s) if s.authority == peer => Ok(s),
            AuthorityResponse::Sums(_) => Err(PeerFailure::Rejected("answered for another authority".into())),
            other => Err(other.failure("Sums")),
        })?;
        let indexed = sums
            .iter()
            .map(|(name, s)| {
                let member = self.view.joint.share_of(name);
                member
                    .map(|m| (m.index, s))
                    .ok_or_else(|| ProtocolError::Internal(format!("{name} left the committee")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        shares::combine_sums((&round.task, self.params.exact), round.number, &indexed, commitments)
    }

    /// Every decryptor's admission signature of a round (the one request's replies).
    fn admission(&self, replies: Vec<Vec<PeerReply<AuthorityResponse>>>) -> Result<Admission, ProtocolError> {
        let list = one_list(replies)?;
        let signatures = self.all_authorities(list, |_, resp| match resp {
            AuthorityResponse::Admitted { signature, .. } => Ok(signature),
            other => Err(other.failure("Admitted")),
        })?;
        Ok(Admission { signatures })
    }

    /// Checks and combines every authority's partial decryption of each target.
    fn combine(
        &self,
        round: u32,
        targets: &[(Release, Ciphertext)],
        replies: Vec<Vec<PeerReply<AuthorityResponse>>>,
    ) -> Result<Vec<(Release, RistrettoPoint)>, ProtocolError> {
        let batches: Vec<BatchDecryption> = self
            .all_authorities(one_list(replies)?, |peer, resp| match resp {
                AuthorityResponse::Partials(p) if p.authority == peer => Ok(p),
                AuthorityResponse::Partials(_) => Err(PeerFailure::Rejected("answered for another authority".into())),
                other => Err(other.failure("Partials")),
            })?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        let releases: Vec<Release> = targets.iter().map(|(r, _)| *r).collect();
        let ciphertexts: Vec<Ciphertext> = targets.iter().map(|(_, c)| *c).collect();
        let context = releases_context(&self.id, round, &releases);
        let set = self
            .decrypting
            .as_ref()
            .ok_or_else(|| ProtocolError::Internal("decryptions asked before the query was admitted".into()))?;
        let points = combine_batches(set, &ciphertexts, &context, &batches, self.params.exact)?;
        Ok(releases.into_iter().zip(points).collect())
    }

    fn answer(&self, column: Vec<String>, result: crate::stats::StatResult) -> QueryAnswer {
        let exact = self.params.exact;
        let noise = (!exact).then(|| {
            format!(
                "each of the {} decrypting authorities adds discrete Laplace noise; epsilon {} is split over the plan's releases",
                self.asked.len(),
                self.params.epsilon.unwrap_or_default()
            )
        });
        QueryAnswer {
            query_id: self.id,
            column,
            result,
            relays: self.active.clone(),
            missing_relays: self.missing.clone(),
            decryptors: self.asked.clone(),
            missing_authorities: self.missing_authorities.clone(),
            exact,
            epsilon: self.params.epsilon,
            noise,
        }
    }
}

/// The relays' answers of the expected kind (signed by the relay that
/// sent it), and the failures.
fn from_relays<C: RelaySigned>(
    replies: Vec<PeerReply<RelayResponse>>,
    expected: &'static str,
    pick: impl Fn(RelayResponse) -> Result<C, RelayResponse>,
) -> (Vec<C>, Vec<(String, PeerFailure)>) {
    let mut failed: Vec<(String, PeerFailure)> = Vec::new();
    let mut received = Vec::new();
    for reply in replies {
        let reply = expect_relay(reply, expected, &pick);
        match reply.reply {
            Ok(c) if c.relay() == reply.peer => received.push(c),
            Ok(_) => failed.push((reply.peer, PeerFailure::Rejected("it signed for another relay".into()))),
            Err(e) => failed.push((reply.peer, e)),
        }
    }
    (received, failed)
}

/// The round's first releases: they never depend on its registration, so
/// they are asked with it (one round trip less).
fn first_releases(query: &mut Running) -> Result<Vec<Release>, ProtocolError> {
    match query.planner.round_ready()? {
        PlanStep::Releases { releases, .. } => Ok(releases),
        _ => Err(ProtocolError::Internal("a round's plan asked for no release".into())),
    }
}

/// A search's next round, if the plan has one, admitted in the same round
/// trip as this round's registration.
fn next_admission(query: &Running, round: &Round) -> Result<Option<AuthorityRequest>, ProtocolError> {
    let next = round.number.saturating_add(1);
    let more = query.spec.params.statistic.is_search() && next < query.planner.progress()?.1;
    Ok(more.then(|| AuthorityRequest::AdmitRefinement {
        spec: query.spec.clone(),
        round: next,
        previous: round.task.clone(),
    }))
}

/// The values of `releases` of a round read in the clear (committed-share
/// path): the same linear functions the ElGamal path decrypts
/// (`release::round_target`), with the outside of the search in the clear.
fn plain_values(
    query: &Running,
    task: &RelayTask,
    aggregate: &PlainAggregate,
    releases: &[Release],
) -> Result<Vec<(Release, i64)>, ProtocolError> {
    releases
        .iter()
        .map(|r| {
            let value = round_target(task, aggregate, &query.plain_outside, *r)?;
            let value = i64::try_from(value).map_err(|_| StatsError::ArithmeticOverflow("released value"))?;
            Ok((*r, value))
        })
        .collect()
}

/// The configured relays' public keys, by name.
fn relay_keys(view: &ProcessorView) -> HashMap<&str, &RelayPublicKey> {
    view.relays.iter().map(|(n, k)| (n.as_str(), k)).collect()
}

/// Each release with the ciphertext it decrypts.
fn targets(
    task: &RelayTask,
    aggregate: &Aggregate,
    outside: &Outside,
    releases: &[Release],
) -> Result<Vec<(Release, Ciphertext)>, ProtocolError> {
    Ok(releases
        .iter()
        .map(|r| round_target(task, aggregate, outside, *r).map(|c| (*r, c)))
        .collect::<Result<_, _>>()?)
}

/// The one reply list of a single request.
fn one_list<T>(replies: Vec<Vec<T>>) -> Result<Vec<T>, ProtocolError> {
    let count = replies.len();
    match (replies.into_iter().next(), count) {
        (Some(list), 1) => Ok(list),
        _ => Err(ProtocolError::Internal(format!("{count} reply lists for one request, expected 1"))),
    }
}

/// A relay's reply of the expected kind, or why not.
fn expect_relay<T>(
    reply: PeerReply<RelayResponse>,
    expected: &'static str,
    pick: &impl Fn(RelayResponse) -> Result<T, RelayResponse>,
) -> PeerReply<T> {
    let reply_value = reply.reply.and_then(|resp| pick(resp).map_err(|other| other.failure(expected)));
    PeerReply::new(reply.peer, reply_value)
}

/// "relay-1, relay-2: reason; relay-3: other reason" with the relay's own
/// "relay NAME: " prefix removed, so that one shared cause is said once.
fn group_reasons(missing: &[(String, String)]) -> String {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for (name, reason) in missing {
        let prefix = format!("relay {name}: ");
        let reason = reason.strip_prefix(&prefix).unwrap_or(reason).to_string();
        match groups.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, names)) => names.push(name),
            None => groups.push((reason, vec![name])),
        }
    }
    groups.iter().map(|(reason, names)| format!("{} failed: {reason}", names.join(", "))).collect::<Vec<_>>().join("; ")
}

/// ceil(log2(relays + 1)): the bits that summing over `relays` adds.
fn relay_bits(relays: usize) -> u32 {
    usize::BITS - relays.max(1).leading_zeros()
}
