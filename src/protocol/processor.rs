//! The processor's per-query state machine. It has every authority admit the
//! query, asks relays to describe the column (declared decimals: the common
//! scale), then runs the statistic's plan: for each round, every authority
//! admits the round's task, relays send signed contributions with proofs of
//! randomness (verified and aggregated here), every authority registers
//! them, then releases (partial decryptions whose proofs it checks and
//! combines) and discrete logs (solved by the caller, off the actor thread).
//! Relays that fail or time out in the first rounds are left out when at
//! least `min_relays` remain; after that a failure ends the query, because
//! a search's later rounds must cover the same relays. No I/O.

use std::collections::HashMap;
use std::sync::Arc;

use curve25519_dalek::ristretto::RistrettoPoint;

use rand_core::{CryptoRng, RngCore};

use super::contribution_check::check_contribution;
use super::error::ProtocolError;
use super::ids::QueryId;
use super::messages::*;
use crate::crypto::{
    combine_checked, AuthoritySignature, Ciphertext, JointPublicKey, PartialDecryption, RelayPublicKey,
};
use crate::stats::release::target;
use crate::stats::{Aggregate, Contribution, Epsilon, PlanStep, Planner, QueryParams, RelayTask, Release};

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
}

impl ProcessorView {
    /// Widest limb such that the sum over `relays` limbs stays in range.
    pub fn limb_bits(&self, relays: usize) -> u32 {
        let range_bits = 63 - self.dlog_max_abs.max(2).leading_zeros(); // floor(log2)
        let relay_bits = usize::BITS - relays.max(1).leading_zeros(); // ceil(log2(relays+1)) roughly
        range_bits.saturating_sub(relay_bits).clamp(4, 32)
    }
}

/// What the caller must do next (moved once per step; sizes differ freely).
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Step {
    /// Send to every active relay (`QueryDriver::active_relays`), then call `on_relays`.
    AskRelays(RelayRequest),
    /// Send each request to every authority, then call `on_authorities` with
    /// one reply list per request, in order.
    AskAuthorities(Vec<AuthorityRequest>),
    /// Solve these discrete logs, then call `on_solved`.
    Solve(Vec<(Release, RistrettoPoint)>),
    Done(Box<QueryAnswer>),
}

enum Phase {
    AdmittingQuery { intent: QueryIntent },
    Describing { intent: QueryIntent },
    AdmittingRound { round: u32, task: RelayTask },
    Contributing { round: u32, task: RelayTask },
    Registering { round: u32, task: RelayTask, aggregate: Aggregate },
    Decrypting { round: u32, task: RelayTask, aggregate: Aggregate, targets: Vec<(Release, Ciphertext)> },
    Solving { round: u32, task: RelayTask, aggregate: Aggregate },
    Finished,
}

pub type Reply<T> = (String, Result<T, String>);

pub struct QueryDriver {
    view: Arc<ProcessorView>,
    id: QueryId,
    params: QueryParams,
    /// what every authority charged when it admitted the query
    charged: Option<Epsilon>,
    spec: Option<QuerySpec>,
    planner: Option<Planner>,
    active: Vec<String>,
    missing: Vec<(String, String)>,
    column: Vec<String>,
    phase: Phase,
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
            return Err(ProtocolError::Malformed(format!("a query names 1 to 3 labels, got {}", labels.len())));
        }
        params.validate()?;
        let active = view.relays.iter().map(|(n, _)| n.clone()).collect();
        let intent = QueryIntent {
            id,
            issued_at: now,
            dataset: view.dataset.clone(),
            labels: labels.clone(),
            params: params.clone(),
        };
        let step = Step::AskAuthorities(vec![AuthorityRequest::AdmitQuery { query: intent.clone(), user }]);
        let driver = QueryDriver {
            view,
            id,
            params,
            charged: None,
            spec: None,
            planner: None,
            active,
            missing: Vec::new(),
            column: Vec::new(),
            phase: Phase::AdmittingQuery { intent },
        };
        Ok((driver, step))
    }

    pub fn id(&self) -> QueryId {
        self.id
    }

    /// The epsilon every authority charged, once all admitted the query.
    pub fn charged(&self) -> Option<Epsilon> {
        self.charged
    }

    pub fn active_relays(&self) -> &[String] {
        &self.active
    }

    /// Keeps the relays that answered; fails when fewer than min_relays remain.
    fn settle<T>(&mut self, replies: Vec<Reply<T>>, tolerant: bool) -> Result<Vec<(String, T)>, ProtocolError> {
        let mut ok = Vec::new();
        for (name, reply) in replies {
            match reply {
                Ok(v) => ok.push((name, v)),
                Err(reason) => {
                    if !tolerant {
                        return Err(ProtocolError::RelayFailed { relay: name, reason });
                    }
                    self.missing.push((name, reason));
                }
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
        self.active = ok.iter().map(|(n, _)| n.clone()).collect();
        Ok(ok)
    }

    pub fn on_relays(
        &mut self,
        replies: Vec<Reply<RelayResponse>>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Step, ProtocolError> {
        let phase = std::mem::replace(&mut self.phase, Phase::Finished);
        match phase {
            Phase::Describing { intent } => {
                let replies = replies
                    .into_iter()
                    .map(|(n, r)| {
                        let r = r.and_then(|resp| match resp {
                            RelayResponse::Described(info) => Ok(info),
                            RelayResponse::Error { message } => Err(message),
                            other => Err(format!("unexpected answer {}", variant(&other))),
                        });
                        (n, r)
                    })
                    .collect();
                let described = self.settle(replies, true)?;
                let first = described.first().map(|(_, i)| i.labels.clone()).unwrap_or_default();
                if let Some((name, _)) = described.iter().find(|(_, i)| i.labels != first) {
                    let reference = described.first().map(|(n, _)| n.as_str()).unwrap_or("the first relay");
                    return Err(ProtocolError::BadContribution {
                        relay: name.clone(),
                        reason: format!(
                            "matched a different column than {reference} (their files' header labels differ); make the relays' headers agree"
                        ),
                    });
                }
                let decimals =
                    described.iter().map(|(_, i)| i.decimals).max().unwrap_or(0).max(self.params.parameter_decimals()?);
                let spec = QuerySpec::new(intent, decimals);
                let authorities = u32::try_from(self.view.authorities.len()).unwrap_or(u32::MAX);
                let mut planner = Planner::new(self.params.clone(), decimals, self.view.limb_bits(described.len()))?
                    .with_noise_sources(authorities);
                let step = planner.start()?;
                self.spec = Some(spec);
                self.planner = Some(planner);
                self.column = first;
                self.plan_step(step)
            }
            Phase::Contributing { round, task } => {
                let spec = self.spec.clone().ok_or_else(|| ProtocolError::Malformed("no query spec".into()))?;
                let keys: HashMap<&str, &RelayPublicKey> =
                    self.view.relays.iter().map(|(n, k)| (n.as_str(), k)).collect();
                let mut checked = Vec::new();
                for (name, reply) in replies {
                    let reply = reply.and_then(|resp| match resp {
                        RelayResponse::Contribution(c) => {
                            let key =
                                keys.get(name.as_str()).ok_or_else(|| format!("{name} is not a configured relay"))?;
                            if c.relay != name || c.round != round {
                                return Err("contribution is for another relay or round".to_string());
                            }
                            check_contribution(&spec, round, &task, key, &c, rng).map_err(|e| e.to_string())?;
                            Ok(*c)
                        }
                        RelayResponse::Error { message } => Err(message),
                        other => Err(format!("unexpected answer {}", variant(&other))),
                    });
                    checked.push((name, reply));
                }
                let contributions: Vec<SignedContribution> =
                    self.settle(checked, round == 0)?.into_iter().map(|(_, c)| c).collect();
                let aggregate = Contribution::aggregate(&task, contributions.iter().map(|c| &c.contribution))?;
                let request = AuthorityRequest::Register { spec, round, task: task.clone(), contributions };
                self.phase = Phase::Registering { round, task, aggregate };
                Ok(Step::AskAuthorities(vec![request]))
            }
            other => {
                self.phase = other;
                Err(ProtocolError::UnexpectedMessage {
                    peer: "relays".into(),
                    found: "relay replies".into(),
                    expected: "authority replies",
                })
            }
        }
    }

    fn plan_step(&mut self, step: PlanStep) -> Result<Step, ProtocolError> {
        let spec = self.spec.clone().ok_or_else(|| ProtocolError::Malformed("no query spec".into()))?;
        match step {
            PlanStep::Round { round, task } => {
                self.phase = Phase::AdmittingRound { round, task: task.clone() };
                Ok(Step::AskAuthorities(vec![AuthorityRequest::AdmitRound { spec, round, task }]))
            }
            PlanStep::Releases { .. } => Err(ProtocolError::Malformed("releases asked outside a round".into())),
            PlanStep::Done(result) => {
                self.phase = Phase::Finished;
                let exact = self.params.exact;
                let noise = (!exact).then(|| {
                    format!(
                        "each of {} authorities adds discrete Laplace noise; epsilon {} is split over the plan's releases",
                        self.view.authorities.len(),
                        self.params.epsilon.unwrap_or_default()
                    )
                });
                Ok(Step::Done(Box::new(QueryAnswer {
                    query_id: self.id,
                    column: self.column.clone(),
                    result,
                    relays: self.active.clone(),
                    missing_relays: self.missing.clone(),
                    exact,
                    epsilon: self.params.epsilon,
                    noise,
                })))
            }
        }
    }

    fn releases_step(
        &mut self,
        round: u32,
        task: RelayTask,
        aggregate: Aggregate,
        releases: Vec<Release>,
    ) -> Result<Step, ProtocolError> {
        let targets = releases
            .iter()
            .map(|r| Ok((*r, target(&task, &aggregate, *r)?)))
            .collect::<Result<Vec<_>, ProtocolError>>()?;
        let requests =
            releases.iter().map(|r| AuthorityRequest::Decrypt { query_id: self.id, round, release: *r }).collect();
        self.phase = Phase::Decrypting { round, task, aggregate, targets };
        Ok(Step::AskAuthorities(requests))
    }

    /// `replies[i]` holds every authority's answer to request i.
    pub fn on_authorities(&mut self, replies: Vec<Vec<Reply<AuthorityResponse>>>) -> Result<Step, ProtocolError> {
        let phase = std::mem::replace(&mut self.phase, Phase::Finished);
        let refused = |name: String, reason: String| ProtocolError::Refused { authority: name, reason };
        match phase {
            Phase::AdmittingQuery { intent } => {
                let admission = self.admission(&replies)?;
                self.charged =
                    Some(if intent.params.exact { Epsilon(0) } else { intent.params.epsilon.unwrap_or_default() });
                let request = RelayRequest::Describe { query: intent.clone(), admission };
                self.phase = Phase::Describing { intent };
                Ok(Step::AskRelays(request))
            }
            Phase::AdmittingRound { round, task } => {
                let admission = self.admission(&replies)?;
                let spec = self.spec.clone().ok_or_else(|| ProtocolError::Malformed("no query spec".into()))?;
                self.phase = Phase::Contributing { round, task: task.clone() };
                Ok(Step::AskRelays(RelayRequest::Contribute { spec, round, task, admission }))
            }
            Phase::Registering { round, task, aggregate } => {
                for list in &replies {
                    self.check_all_authorities(list)?;
                    for (name, reply) in list {
                        match reply {
                            Ok(AuthorityResponse::Registered) => {}
                            Ok(AuthorityResponse::Refused { reason }) => {
                                return Err(refused(name.clone(), reason.clone()))
                            }
                            Ok(other) => {
                                return Err(refused(name.clone(), format!("unexpected answer {}", variant(other))))
                            }
                            Err(e) => return Err(refused(name.clone(), e.clone())),
                        }
                    }
                }
                let planner = self.planner.as_mut().ok_or_else(|| ProtocolError::Malformed("no plan".into()))?;
                match planner.round_ready()? {
                    PlanStep::Releases { releases, .. } => self.releases_step(round, task, aggregate, releases),
                    other => self.plan_step(other),
                }
            }
            Phase::Decrypting { round, task, aggregate, targets } => {
                if replies.len() != targets.len() {
                    return Err(ProtocolError::Malformed("reply count differs from release count".into()));
                }
                let mut points = Vec::with_capacity(targets.len());
                for ((release, ciphertext), list) in targets.iter().zip(replies) {
                    self.check_all_authorities(&list)?;
                    let mut partials: Vec<PartialDecryption> = Vec::new();
                    for (name, reply) in list {
                        match reply {
                            Ok(AuthorityResponse::Partial(p)) if p.authority == name => partials.push(p),
                            Ok(AuthorityResponse::Partial(_)) => {
                                return Err(refused(name, "answered for another authority".into()))
                            }
                            Ok(AuthorityResponse::Refused { reason }) => return Err(refused(name, reason)),
                            Ok(other) => return Err(refused(name, format!("unexpected answer {}", variant(&other)))),
                            Err(e) => return Err(refused(name, e)),
                        }
                    }
                    let context = decryption_context(&self.id, round, *release);
                    let point = combine_checked(&self.view.joint, ciphertext, &context, &partials, self.params.exact)?;
                    points.push((*release, point));
                }
                self.phase = Phase::Solving { round, task, aggregate };
                Ok(Step::Solve(points))
            }
            other => {
                self.phase = other;
                Err(ProtocolError::UnexpectedMessage {
                    peer: "authorities".into(),
                    found: "authority replies".into(),
                    expected: "relay replies",
                })
            }
        }
    }

    /// Every authority's admission signature (the one request's replies).
    fn admission(&self, replies: &[Vec<Reply<AuthorityResponse>>]) -> Result<Admission, ProtocolError> {
        let refused = |name: &str, reason: String| ProtocolError::Refused { authority: name.to_string(), reason };
        let list = replies.first().ok_or_else(|| ProtocolError::Malformed("no admission replies".into()))?;
        self.check_all_authorities(list)?;
        let mut signatures: Vec<(String, AuthoritySignature)> = Vec::with_capacity(list.len());
        for (name, reply) in list {
            match reply {
                Ok(AuthorityResponse::Admitted { signature, .. }) => signatures.push((name.clone(), *signature)),
                Ok(AuthorityResponse::Refused { reason }) => return Err(refused(name, reason.clone())),
                Ok(other) => return Err(refused(name, format!("unexpected answer {}", variant(other)))),
                Err(e) => return Err(refused(name, e.clone())),
            }
        }
        Ok(Admission { signatures })
    }

    fn check_all_authorities<T>(&self, list: &[Reply<T>]) -> Result<(), ProtocolError> {
        for name in &self.view.authorities {
            if !list.iter().any(|(n, _)| n == name) {
                return Err(ProtocolError::Refused { authority: name.clone(), reason: "did not answer".into() });
            }
        }
        Ok(())
    }

    pub fn on_solved(&mut self, values: Vec<(Release, i64)>) -> Result<Step, ProtocolError> {
        let phase = std::mem::replace(&mut self.phase, Phase::Finished);
        let Phase::Solving { round, task, aggregate } = phase else {
            self.phase = phase;
            return Err(ProtocolError::Malformed("no discrete logs were asked for".into()));
        };
        let planner = self.planner.as_mut().ok_or_else(|| ProtocolError::Malformed("no plan".into()))?;
        match planner.released(&values)? {
            PlanStep::Releases { releases, .. } => self.releases_step(round, task, aggregate, releases),
            other => self.plan_step(other),
        }
    }
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

fn variant<T: std::fmt::Debug>(value: &T) -> String {
    let text = format!("{value:?}");
    text.split(['(', ' ', '{']).next().unwrap_or("?").to_string()
}
