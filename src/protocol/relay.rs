//! The relay's state machine. A relay acts only on admitted queries: every
//! `Describe` must carry valid signatures of t members of the committee over
//! the exact query (`codec::query_admission`), and `Contribute` of every one
//! of the spec's t decryptors over the exact (spec, round, task)
//! (`codec::round_admission`) or, for a later search round, over (spec,
//! round, previous round's task) (`codec::refinement_admission`) with the
//! relay itself checking that the task refines one bucket of that one
//! (`policy::check_task`), for the committee epoch the relay encrypts
//! to, issued within the admission window. Before it reads any data it checks, on the
//! spec and its own config alone, that the arithmetic cannot overflow
//! (`stats::limits`), so whether it answers never depends on its data.
//!
//! `Describe` answers the matched labels and the decimals its config
//! declares (never detected from data at query time). `Contribute` answers
//! an encrypted, proved, signed contribution; the same admitted round asked
//! again gets the same contribution back, and another task or scale for a
//! round it answered is refused (a round has one task). Column values come from a
//! `ColumnSource` (the actor adapts `data`). Errors sent back never contain
//! a cell value or a data-dependent number: detail stays in the `LocalNote`
//! for the relay's own log.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use cpu_time::ThreadTime;

use rand_core::{CryptoRng, RngCore};

use super::codec;
use super::committee::SignedTransition;
use super::ids::QueryId;
use super::messages::*;
use super::shares;
use crate::crypto::shares::SealingKey;
use crate::crypto::{EncryptionKey, JointPublicKey, RelayIdentity};
use crate::stats::contribution::{encrypt_local, local_aggregate, outside_cells, plain_components, prepare_values};
use crate::stats::fixed::pow10;
use crate::stats::limits::{check_relay_scale, check_value_width, ROWS_LIMIT, VALUE_LIMIT};
use crate::stats::policy::check_task;
use crate::stats::RelayTask;

/// Oldest admission a relay acts on (seconds after the query was issued).
pub const ADMISSION_MAX_AGE_SECS: u64 = 3600;
/// Tolerated clock skew for admissions issued "in the future".
pub const ADMISSION_CLOCK_SKEW_SECS: u64 = 60;

/// A column as the relay's files give it, at the decimals its config declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnValues {
    pub labels: Vec<String>,
    pub decimals: u32,
    pub values: Vec<i128>,
}

/// An error reading the relay's data: `public` goes to the processor (no cell
/// values), `private` only to the relay's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceError {
    pub public: String,
    pub private: String,
}

pub trait ColumnSource {
    fn column(&self, labels: &[String]) -> Result<ColumnValues, SourceError>;
    /// The decimals the relay's config declares for the column with these
    /// full labels (config only, no data); `None` when a source declares none.
    fn declared_decimals(&self, labels: &[String]) -> Option<u32>;
    /// Header labels of the columns the config publishes (opt-in per
    /// source); never a value.
    fn published_columns(&self) -> Result<Vec<Vec<String>>, SourceError> {
        Ok(Vec::new())
    }
}

const CACHE_QUERIES: usize = 8;
const ANSWERED_ROUNDS: usize = 64;
/// Query admissions whose signatures a relay remembers having verified.
const VERIFIED_QUERIES: usize = 64;

pub struct RelayState {
    name: String,
    identity: RelayIdentity,
    /// the current committee and the key relays encrypt to under it
    current: (JointPublicKey, EncryptionKey),
    /// the previous epoch's, for queries still running under it
    previous: Option<(JointPublicKey, EncryptionKey)>,
    /// (query id, requested labels) -> column: a cached column serves only
    /// the labels it was read for, so a signed statement always names the
    /// column that was encrypted.
    cache: VecDeque<(QueryId, Vec<String>, Arc<ColumnValues>)>,
    /// contributions already made, by (query, round) with the round's
    /// `codec::round_admission`: an admitted round asked again gets the
    /// same ciphertexts, not a fresh encryption, and another task or scale
    /// for a round answered is refused.
    answered: VecDeque<(QueryId, u32, Vec<u8>, Answered)>,
    /// (epoch, `codec::query_admission`) of queries whose admission this
    /// relay verified: round 0 under the query's admission is not verified again
    verified: VecDeque<(u64, Vec<u8>)>,
    /// what the last contribution cost this thread (for metrics and benches)
    last_timing: Option<RelayTiming>,
}

/// A round answered: ciphertexts, or committed shares (`protocol::shares`).
// at most `ANSWERED_ROUNDS` of them: sizes may differ
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Answered {
    Encrypted(SignedContribution),
    Shared(SignedShares),
}

impl Answered {
    fn response(&self) -> RelayResponse {
        match self {
            Answered::Encrypted(c) => RelayResponse::Contribution(Box::new(c.clone())),
            Answered::Shared(s) => RelayResponse::Shares(Box::new(s.clone())),
        }
    }

    fn shared(&self) -> bool {
        matches!(self, Answered::Shared(_))
    }
}

/// Thread CPU time of one contribution: the plaintext pass over the column
/// (reading, rescaling, the local aggregate) and the cryptography
/// (encryption, proof, signature).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayTiming {
    pub plain: Duration,
    pub crypto: Duration,
}

/// Encryptions of zero a relay keeps ready for its current committee's key
/// (about 350 B each): three exact medians' worth of 324 ciphertexts.
pub const ENCRYPTION_POOL: usize = 1024;

/// What the actor should log next to the response (never sent).
pub type LocalNote = Option<String>;

fn refuse(message: String) -> (RelayResponse, LocalNote) {
    (RelayResponse::Error { message }, None)
}

impl RelayState {
    /// `authorities`: the committee whose members sign admissions.
    pub fn new(name: &str, identity: RelayIdentity, authorities: &JointPublicKey) -> Self {
        RelayState {
            name: name.to_string(),
            identity,
            current: (authorities.clone(), EncryptionKey::new(authorities)),
            previous: None,
            cache: VecDeque::new(),
            answered: VecDeque::new(),
            verified: VecDeque::new(),
            last_timing: None,
        }
    }

    /// Makes up to `at_most` encryptions of zero ahead of time for the
    /// current committee's key (`EncryptionKey::precompute`), up to
    /// `ENCRYPTION_POOL`; returns whether the pool is still short. The relay
    /// actor calls it between requests, a chunk at a time.
    pub fn precompute(&self, at_most: usize, rng: &mut (impl RngCore + CryptoRng)) -> bool {
        self.current.1.precompute(ENCRYPTION_POOL, at_most, rng) < ENCRYPTION_POOL
    }

    /// Encryptions of zero ready for the current committee's key.
    pub fn precomputed(&self) -> usize {
        self.current.1.pooled()
    }

    /// CPU time of the last contribution this relay computed (not of one
    /// answered again from its cache).
    pub fn last_timing(&self) -> Option<RelayTiming> {
        self.last_timing
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current committee.
    pub fn committee(&self) -> &JointPublicKey {
        &self.current.0
    }

    /// Switches to the committee of `transition` if it follows the current
    /// one and at least t current members signed it; keeps the current one
    /// for the queries running under it. A transition to the current epoch
    /// (already switched) is accepted and changes nothing. Returns the new
    /// committee when it switched.
    pub fn install(&mut self, transition: &SignedTransition) -> Result<Option<JointPublicKey>, String> {
        let next = &transition.transition.committee;
        if next == &self.current.0 {
            return Ok(None);
        }
        let next = transition.verify(&self.current.0).map_err(|e| format!("relay {}: {e}", self.name))?.clone();
        let key = EncryptionKey::new(&next);
        self.previous = Some(std::mem::replace(&mut self.current, (next.clone(), key)));
        Ok(Some(next))
    }

    /// The committee and key of `epoch` (current or previous).
    fn epoch(&self, epoch: u64) -> Result<&(JointPublicKey, EncryptionKey), String> {
        if epoch == self.current.0.epoch() {
            return Ok(&self.current);
        }
        match &self.previous {
            Some(p) if p.0.epoch() == epoch => Ok(p),
            _ => Err(format!(
                "relay {}: the query is for committee epoch {epoch}, but this relay encrypts to epoch {}; start a new query",
                self.name,
                self.current.0.epoch()
            )),
        }
    }

    fn column(
        &mut self,
        id: &QueryId,
        labels: &[String],
        source: &dyn ColumnSource,
    ) -> Result<Arc<ColumnValues>, SourceError> {
        if let Some((_, _, c)) = self.cache.iter().find(|(q, l, _)| q == id && l.as_slice() == labels) {
            return Ok(c.clone());
        }
        let column = Arc::new(source.column(labels)?);
        if self.cache.len() >= CACHE_QUERIES {
            self.cache.pop_front();
        }
        self.cache.push_back((*id, labels.to_vec(), column.clone()));
        Ok(column)
    }

    /// The admission is fresh and signed over `statement` by t members of
    /// the committee (`signers` None: a query's admission) or by every one
    /// of the spec's decryptors, t members of this epoch's committee.
    fn check_admission(
        &self,
        issued_at: u64,
        now: u64,
        statement: &[u8],
        admission: &Admission,
        decryptors: (u64, Option<&[String]>),
    ) -> Result<(), String> {
        self.check_fresh(issued_at, now)?;
        let (epoch, signers) = decryptors;
        let authorities = &self.epoch(epoch)?.0;
        let checked = match signers {
            None => authorities.verify_threshold_signed(statement, &admission.signatures),
            Some(signers) => authorities
                .check_decryptors(signers)
                .and_then(|_| authorities.verify_signed_by(statement, &admission.signatures, signers)),
        };
        checked.map_err(|e| format!("relay {}: query not admitted: {e}", self.name))
    }

    /// The query was issued inside the admission window.
    fn check_fresh(&self, issued_at: u64, now: u64) -> Result<(), String> {
        if issued_at > now.saturating_add(ADMISSION_CLOCK_SKEW_SECS)
            || now.saturating_sub(issued_at) > ADMISSION_MAX_AGE_SECS
        {
            return Err(format!(
                "relay {}: the admission was issued at {issued_at}, outside this relay's window of {ADMISSION_MAX_AGE_SECS} s (now {now}); start a new query",
                self.name
            ));
        }
        Ok(())
    }

    /// A query's admission (t members of `epoch`'s committee over
    /// `statement`, `codec::query_admission`). `Describe` always verifies
    /// its signatures (`remembered` false) and the relay remembers the
    /// statement; round 0 under it (`remembered` true) is then checked for
    /// freshness only.
    fn check_query_admission(
        &mut self,
        (issued_at, now): (u64, u64),
        statement: Vec<u8>,
        admission: &Admission,
        epoch: u64,
        remembered: bool,
    ) -> Result<(), String> {
        if remembered && self.verified.iter().any(|(e, s)| *e == epoch && *s == statement) {
            return self.check_fresh(issued_at, now);
        }
        self.check_admission(issued_at, now, &statement, admission, (epoch, None))?;
        if self.verified.len() >= VERIFIED_QUERIES {
            self.verified.pop_front();
        }
        self.verified.push_back((epoch, statement));
        Ok(())
    }

    /// Whether a `Contribute` is admitted: `admission` signs what `of` names,
    /// and for a query's admission or a refinement, `task` is what the
    /// query's plan asks for (`policy::check_task`, on the spec alone).
    fn check_contribution(
        &mut self,
        spec: &QuerySpec,
        round: u32,
        task: &RelayTask,
        (admission, of): (&Admission, &AdmissionOf),
        now: u64,
    ) -> Result<(), String> {
        let decryptors = (spec.epoch, Some(spec.decryptors.as_slice()));
        match of {
            AdmissionOf::Round => {
                let statement = codec::round_admission(spec, round, task);
                self.check_admission(spec.issued_at, now, &statement, admission, decryptors)
            }
            AdmissionOf::Refinement(previous) => {
                self.check_plan(spec, round, task, Some(previous))?;
                let statement = codec::refinement_admission(spec, round, previous);
                self.check_admission(spec.issued_at, now, &statement, admission, decryptors)
            }
            AdmissionOf::Query => {
                self.check_plan(spec, round, task, None)?;
                let authorities = &self.epoch(spec.epoch)?.0;
                authorities
                    .check_decryptors(&spec.decryptors)
                    .map_err(|e| format!("relay {}: query not admitted: {e}", self.name))?;
                let statement = codec::query_admission(&spec.intent());
                self.check_query_admission((spec.issued_at, now), statement, admission, spec.epoch, true)
            }
        }
    }

    /// `task` is what the query's plan asks in `round` after `previous`
    /// (none: round 0 under the query's admission; a refinement's previous
    /// round's task), checked on the spec alone (`policy::check_task`;
    /// a round that does not fit `previous` is refused as out of order).
    fn check_plan(
        &self,
        spec: &QuerySpec,
        round: u32,
        task: &RelayTask,
        previous: Option<&RelayTask>,
    ) -> Result<(), String> {
        let checked =
            spec.params.fixed(spec.decimals).and_then(|fixed| check_task(&spec.params, &fixed, round, task, previous));
        let what = match previous {
            None => "the first one the query's plan asks for",
            Some(_) => "a refinement the query's plan allows",
        };
        checked.map_err(|e| {
            format!(
                "relay {}: round {round}'s task is not {what}: {e}; only a processor that follows the plan gets contributions",
                self.name
            )
        })
    }

    pub fn handle(
        &mut self,
        request: RelayRequest,
        source: &dyn ColumnSource,
        status: impl FnOnce() -> NodeStatus,
        now: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> (RelayResponse, LocalNote) {
        match request {
            RelayRequest::Status => (RelayResponse::Status(status()), None),
            // config-level metadata, opted in per source: no admission needed
            RelayRequest::Columns => match source.published_columns() {
                Ok(columns) => (RelayResponse::Columns(columns), None),
                Err(e) => (RelayResponse::Error { message: e.public }, Some(e.private)),
            },
            RelayRequest::Transition(transition) => match self.install(&transition) {
                Ok(_) => (RelayResponse::Switched { epoch: self.current.0.epoch() }, None),
                Err(e) => refuse(e),
            },
            RelayRequest::Describe { query, admission, epoch } => {
                let statement = codec::query_admission(&query);
                if let Err(e) = self.check_query_admission((query.issued_at, now), statement, &admission, epoch, false)
                {
                    return refuse(e);
                }
                match self.column(&query.id, &query.labels, source) {
                    Ok(c) => match source.declared_decimals(&c.labels) {
                        Some(decimals) => {
                            (RelayResponse::Described(ColumnInfo { labels: c.labels.clone(), decimals }), None)
                        }
                        None => refuse(format!(
                            "relay {}: its sources declare no `decimals`; set `decimals` on every source in its config",
                            self.name
                        )),
                    },
                    Err(e) => (RelayResponse::Error { message: e.public }, Some(e.private)),
                }
            }
            RelayRequest::Contribute { spec, round, task, admission, admission_of, sealing } => {
                // timed anew for each contribution computed (none for a refusal or a repeat)
                self.last_timing = None;
                if let Err(e) = self.check_contribution(&spec, round, &task, (&admission, &admission_of), now) {
                    return refuse(e);
                }
                let keys = match self.check_sealing(&spec, &sealing) {
                    Ok(keys) => keys,
                    Err(e) => return refuse(e),
                };
                // what the contribution answers, whatever admitted it
                let statement = codec::round_admission(&spec, round, &task);
                match self.answered.iter().find(|(id, r, _, _)| *id == spec.id && *r == round) {
                    Some((_, _, s, done)) if *s == statement && done.shared() == keys.is_some() => {
                        return (done.response(), None)
                    }
                    // a fork: what the admission allows, but another than the one answered
                    Some(_) => {
                        return refuse(format!(
                        "relay {}: round {round} of query {} was answered with another task, scale or path; a round has one",
                        self.name, spec.id
                    ))
                    }
                    None => {}
                }
                match self.contribute(&spec, round, &task, (source, keys.as_deref()), rng) {
                    Ok(c) => {
                        if self.answered.len() >= ANSWERED_ROUNDS {
                            self.answered.pop_front();
                        }
                        let response = c.response();
                        self.answered.push_back((spec.id, round, statement, c));
                        (response, None)
                    }
                    Err((public, private)) => (RelayResponse::Error { message: public }, private),
                }
            }
        }
    }

    /// The decryptors' sealing keys when a `Contribute` carries them (the
    /// committed-share path, exact queries and noisy searches only,
    /// `shares::serves`), checked against the
    /// spec's committee (`shares::sealing_keys`); None without.
    fn check_sealing(
        &self,
        spec: &QuerySpec,
        sealing: &[(String, SealingGrant)],
    ) -> Result<Option<Vec<(u16, SealingKey)>>, String> {
        if sealing.is_empty() {
            return Ok(None);
        }
        if !shares::serves(&spec.params) {
            return Err(format!(
                "relay {}: the committed-share path is for exact queries and noisy searches only; this noisy query's relays encrypt",
                self.name
            ));
        }
        let committee = &self.epoch(spec.epoch)?.0;
        shares::sealing_keys(committee, spec, sealing)
            .map(Some)
            .map_err(|e| format!("relay {}: query not admitted: {e}", self.name))
    }

    /// Errors: (message for the processor, detail for the log). The message
    /// depends only on the spec and this relay's config, or is the same
    /// uniform text for any data-dependent failure.
    fn contribute(
        &mut self,
        spec: &QuerySpec,
        round: u32,
        task: &RelayTask,
        (source, sealing): (&dyn ColumnSource, Option<&[(u16, SealingKey)]>),
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Answered, (String, LocalNote)> {
        let name = self.name.clone();
        let public = |what: String| (format!("relay {name}: {what}"), None);
        let uniform = |detail: String| {
            (format!("relay {name} cannot contribute to this round; the relay's log has the reason"), Some(detail))
        };
        let started = ThreadTime::now();
        spec.params.validate().map_err(|e| public(e.to_string()))?;
        task.validate().map_err(|e| public(e.to_string()))?;
        let fixed = spec.params.fixed(spec.decimals).map_err(|e| public(e.to_string()))?;
        let column = self.column(&spec.id, &spec.labels, source).map_err(|e| (e.public, Some(e.private)))?;
        let declared = source.declared_decimals(&column.labels).ok_or_else(|| {
            public("its sources declare no `decimals`; set `decimals` on every source in its config".into())
        })?;
        // depends on the spec and the config only; the caps make the
        // arithmetic below unable to overflow (data outside the caps is a
        // property of the files, the same for every query)
        check_relay_scale(&spec.params, &fixed, declared).map_err(|e| public(e.to_string()))?;
        // the limbs hold any sums of values this wide, so encrypting them
        // cannot fail on this relay's data
        check_value_width(task, &fixed).map_err(|e| public(e.to_string()))?;
        if column.decimals != declared {
            return Err(uniform(format!("column read at {} decimals, declared {declared}", column.decimals)));
        }
        if column.values.len() > ROWS_LIMIT
            || column.values.iter().any(|v| v.unsigned_abs() >= VALUE_LIMIT.unsigned_abs())
        {
            return Err((
                format!(
                    "relay {name}: its column holds more than 2^32 values or a value beyond ±2^47 at its declared decimals; the relay's operator must fix the file"
                ),
                Some("column beyond the value or row limit".into()),
            ));
        }
        let factor = spec
            .decimals
            .checked_sub(declared)
            .ok_or_else(|| uniform("scale below the declared decimals".into()))
            .and_then(|d| pow10(d).map_err(|e| uniform(e.to_string())))?;
        let values = scaled_values(&column.values, factor, fixed.bounds)
            .ok_or_else(|| uniform("rescaling overflowed".into()))?;
        let local = local_aggregate(task, &values, rng).map_err(|e| uniform(e.to_string()))?;
        // a noisy search round on the committed-share path: the two cells
        // outside its grid too (`shares::combine_sums`)
        let outside = match (task, &sealing) {
            (RelayTask::Histogram { grid }, Some(_)) if !spec.params.exact => Some(outside_cells(&values, grid)),
            _ => None,
        };
        drop(values);
        let plain = started.elapsed();
        let relay = self.name.as_str();
        let answered = match sealing {
            Some(keys) => {
                let mut components = plain_components(task, &local).map_err(|e| uniform(e.to_string()))?;
                components.extend(outside.into_iter().flat_map(|(below, above)| [below, above]));
                // a histogram's counts are below 2^32 when the column has fewer rows
                let narrow = matches!(task, RelayTask::Histogram { .. })
                    && u32::try_from(column.values.len()).is_ok_and(|n| n < u32::MAX);
                let round = shares::RoundShares { spec, round, task, relay, keys };
                let made = shares::share_round(&round, &self.identity, &components, narrow, rng);
                Answered::Shared(made.map_err(|e| uniform(e.to_string()))?)
            }
            None => {
                let statement_of =
                    |c: &crate::stats::Contribution| codec::contribution_statement(spec, round, task, relay, c);
                let key = &self.epoch(spec.epoch).map_err(|e| (e, None))?.1;
                let (contribution, statement, proof) =
                    encrypt_local(task, &local, key, &statement_of, rng).map_err(|e| uniform(e.to_string()))?;
                let signature = self.identity.sign(&spec.id.0, &statement);
                Answered::Encrypted(SignedContribution {
                    relay: self.name.clone(),
                    round,
                    contribution,
                    proof,
                    signature,
                })
            }
        };
        self.last_timing = Some(RelayTiming { plain, crypto: started.elapsed().saturating_sub(plain) });
        Ok(answered)
    }
}

/// The column at the query's scale, clamped to its bounds: the column itself
/// when neither changes a value (no copy), else one copy. `None` on overflow.
fn scaled_values(values: &[i128], factor: i128, bounds: Option<(i128, i128)>) -> Option<Cow<'_, [i128]>> {
    if factor == 1 {
        return Some(match bounds {
            None => Cow::Borrowed(values),
            Some(_) => Cow::Owned(prepare_values(values, bounds)),
        });
    }
    let (lo, hi) = bounds.unwrap_or((i128::MIN, i128::MAX));
    values.iter().map(|v| v.checked_mul(factor).map(|v| v.clamp(lo, hi))).collect::<Option<Vec<i128>>>().map(Cow::Owned)
}
