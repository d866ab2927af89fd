//! The authority's persistent memory, as a trait: which query ids it has
//! admitted (replay protection with an expiry window), how much of each
//! dataset's privacy budget is spent, and every charge (query, user, epsilon). `MemoryLedger` serves tests; the LMDB
//! ledger lives in `data::ledger` so that this layer has no I/O.

use std::collections::HashMap;

use super::error::ProtocolError;
use super::ids::QueryId;
use crate::stats::{Epsilon, PrivacyBudget};

pub trait Ledger {
    /// Atomically: refuse a query id seen before (within the charge's
    /// `window_secs`), charge `cost` to the dataset's budget (refusing, and
    /// charging nothing, when it does not fit), record the id, and record the
    /// charge (query id, the user the processor names, epsilon). Returns what
    /// is left.
    fn admit(&mut self, charge: &AdmissionCharge<'_>) -> Result<Epsilon, ProtocolError>;

    /// The budget left for a dataset.
    fn remaining(&self, dataset: &str, total: Epsilon) -> Result<Epsilon, ProtocolError>;

    /// How many charges are recorded, and the last `n` (newest first).
    fn charges(&self, n: usize) -> Result<(usize, Vec<Charge>), ProtocolError>;
}

/// What `Ledger::admit` is asked to charge, and the budget and clock it is
/// checked against.
#[derive(Clone, Copy, Debug)]
pub struct AdmissionCharge<'a> {
    pub dataset: &'a str,
    pub query: &'a QueryId,
    /// the user the processor names
    pub user: &'a str,
    /// when the query was issued (seconds since the epoch)
    pub issued_at: u64,
    pub cost: Epsilon,
    /// the dataset's whole budget
    pub budget_total: Epsilon,
    /// the authority's clock (seconds since the epoch)
    pub now: u64,
    /// the replay window: ids older than twice it are forgotten
    pub window_secs: u64,
}

/// One recorded charge of the budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charge {
    pub issued_at: u64,
    pub query: QueryId,
    pub dataset: String,
    pub user: String,
    pub epsilon: Epsilon,
}

impl std::fmt::Display for Charge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} user={} dataset={} epsilon={} issued_at={}",
            self.query, self.user, self.dataset, self.epsilon, self.issued_at
        )
    }
}

/// Shared admission logic over plain maps (used by both ledgers).
pub fn admit_in(
    spent: &mut HashMap<String, Epsilon>,
    seen: &mut HashMap<QueryId, u64>,
    charge: &AdmissionCharge<'_>,
) -> Result<Epsilon, ProtocolError> {
    let AdmissionCharge { dataset, query, issued_at, cost, budget_total, now, window_secs, .. } = *charge;
    seen.retain(|_, at| now.saturating_sub(*at) <= window_secs.saturating_mul(2));
    if seen.contains_key(query) {
        return Err(ProtocolError::Replay(query.to_string()));
    }
    let mut budget = PrivacyBudget { total: budget_total, spent: spent.get(dataset).copied().unwrap_or_default() };
    budget.charge(dataset, cost)?;
    spent.insert(dataset.to_string(), budget.spent);
    seen.insert(*query, issued_at);
    Ok(budget.remaining())
}

#[derive(Default)]
pub struct MemoryLedger {
    pub spent: HashMap<String, Epsilon>,
    pub seen: HashMap<QueryId, u64>,
    pub charges: Vec<Charge>,
}

impl Ledger for MemoryLedger {
    fn admit(&mut self, charge: &AdmissionCharge<'_>) -> Result<Epsilon, ProtocolError> {
        let remaining = admit_in(&mut self.spent, &mut self.seen, charge)?;
        self.charges.push(Charge {
            issued_at: charge.issued_at,
            query: *charge.query,
            dataset: charge.dataset.to_string(),
            user: charge.user.to_string(),
            epsilon: charge.cost,
        });
        Ok(remaining)
    }

    fn charges(&self, n: usize) -> Result<(usize, Vec<Charge>), ProtocolError> {
        Ok((self.charges.len(), self.charges.iter().rev().take(n).cloned().collect()))
    }

    fn remaining(&self, dataset: &str, total: Epsilon) -> Result<Epsilon, ProtocolError> {
        let spent = self.spent.get(dataset).copied().unwrap_or_default();
        Ok(PrivacyBudget { total, spent }.remaining())
    }
}
