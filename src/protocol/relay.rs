//! The relay's state machine: answers `Describe` with the column's labels
//! and scale (no values), and `Contribute` with an encrypted, signed
//! contribution computed from its own column. Column values come from a
//! `ColumnSource` (the actor adapts `data`); a small cache keeps a query's
//! column across the rounds of a search. Errors sent back never contain a
//! cell value: the detailed error stays in the relay's own log.

use std::collections::VecDeque;
use std::sync::Arc;

use rand_core::{CryptoRng, RngCore};

use super::error::ProtocolError;
use super::ids::QueryId;
use super::messages::*;
use super::wire;
use crate::crypto::{EncryptionKey, RelayIdentity};
use crate::stats::contribution::{contribute, prepare_values};
use crate::stats::fixed::pow10;

/// A column as the relay's files give it, at the column's own decimals.
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
}

const CACHE_QUERIES: usize = 8;

pub struct RelayState {
    name: String,
    identity: RelayIdentity,
    key: EncryptionKey,
    /// (query id, requested labels) -> column: a cached column serves only
    /// the labels it was read for, so a signed statement always names the
    /// column that was encrypted.
    cache: VecDeque<(QueryId, Vec<String>, Arc<ColumnValues>)>,
}

/// What the actor should log next to the response (never sent).
pub type LocalNote = Option<String>;

impl RelayState {
    pub fn new(name: &str, identity: RelayIdentity, key: EncryptionKey) -> Self {
        RelayState { name: name.to_string(), identity, key, cache: VecDeque::new() }
    }

    pub fn name(&self) -> &str {
        &self.name
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

    pub fn handle(
        &mut self,
        request: RelayRequest,
        source: &dyn ColumnSource,
        status: impl FnOnce() -> NodeStatus,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> (RelayResponse, LocalNote) {
        match request {
            RelayRequest::Status => (RelayResponse::Status(status()), None),
            RelayRequest::Describe { query_id, labels } => match self.column(&query_id, &labels, source) {
                Ok(c) => {
                    (RelayResponse::Described(ColumnInfo { labels: c.labels.clone(), decimals: c.decimals }), None)
                }
                Err(e) => (RelayResponse::Error { message: e.public }, Some(e.private)),
            },
            RelayRequest::Contribute { spec, round, task } => match self.contribute(&spec, round, &task, source, rng) {
                Ok(c) => (RelayResponse::Contribution(Box::new(c)), None),
                Err(ContributeError::Source(e)) => (RelayResponse::Error { message: e.public }, Some(e.private)),
                Err(ContributeError::Protocol(e)) => (RelayResponse::Error { message: e.to_string() }, None),
            },
        }
    }

    fn contribute(
        &mut self,
        spec: &QuerySpec,
        round: u32,
        task: &crate::stats::RelayTask,
        source: &dyn ColumnSource,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<SignedContribution, ContributeError> {
        spec.params.validate().map_err(ProtocolError::from)?;
        task.validate().map_err(ProtocolError::from)?;
        let column = self.column(&spec.id, &spec.labels, source).map_err(ContributeError::Source)?;
        if column.decimals > spec.decimals {
            return Err(ProtocolError::Malformed(format!(
                "query scale of {} decimals is finer than the column's {}",
                spec.decimals, column.decimals
            ))
            .into());
        }
        let factor = pow10(spec.decimals - column.decimals).map_err(ProtocolError::from)?;
        let scaled = column
            .values
            .iter()
            .map(|v| v.checked_mul(factor))
            .collect::<Option<Vec<i128>>>()
            .ok_or_else(|| ProtocolError::Malformed("values overflow at the query's scale".into()))?;
        let fixed = spec.params.fixed(spec.decimals).map_err(ProtocolError::from)?;
        let values = prepare_values(&scaled, fixed.bounds);
        let contribution = contribute(task, &values, &self.key, rng).map_err(ProtocolError::from)?;
        let statement = ContributionStatement { spec, round, task, relay: &self.name, contribution: &contribution };
        let bytes = wire::encode(&statement)?;
        let signature = self.identity.sign(&spec.id.0, &bytes);
        Ok(SignedContribution { relay: self.name.clone(), round, contribution, signature })
    }
}

enum ContributeError {
    Source(SourceError),
    Protocol(ProtocolError),
}

impl From<ProtocolError> for ContributeError {
    fn from(e: ProtocolError) -> Self {
        ContributeError::Protocol(e)
    }
}
