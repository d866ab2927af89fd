//! Each authority's remaining privacy budget over this console session: the
//! console samples it from `ClusterStatus` (authority status `details`:
//! `dataset`, `budget_epsilon`, `remaining_epsilon`) whenever the cluster
//! page is shown and after each query. Session-local (nothing is stored);
//! read by the cluster page's chart. Pure.

use std::collections::BTreeMap;

use crate::protocol::{PeerStatus, Role};

/// Samples kept at most (the oldest are dropped beyond).
pub const MAX_SAMPLES: usize = 5000;

#[derive(Clone, Debug, PartialEq)]
pub struct BudgetSample {
    /// seconds since the console started
    pub at_secs: f64,
    pub authority: String,
    pub dataset: String,
    pub budget: f64,
    pub remaining: f64,
}

#[derive(Default)]
pub struct BudgetSeries {
    samples: Vec<BudgetSample>,
}

/// One authority's budget from its status details, if it reports one.
pub fn sample_of(at_secs: f64, peer: &PeerStatus) -> Option<BudgetSample> {
    let status = peer.status.as_ref().ok()?;
    if peer.role != Role::Authority {
        return None;
    }
    let detail = |key: &str| status.details.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    Some(BudgetSample {
        at_secs,
        authority: peer.name.clone(),
        dataset: detail("dataset")?.to_string(),
        budget: detail("budget_epsilon")?.parse().ok()?,
        remaining: detail("remaining_epsilon")?.parse().ok()?,
    })
}

impl BudgetSeries {
    /// Adds one sample per authority that reported its budget.
    pub fn record(&mut self, at_secs: f64, peers: &[PeerStatus]) {
        self.samples.extend(peers.iter().filter_map(|peer| sample_of(at_secs, peer)));
        let excess = self.samples.len().saturating_sub(MAX_SAMPLES);
        self.samples.drain(..excess);
    }

    /// Per "authority (dataset)": (seconds, epsilon spent) points, in time order.
    pub fn spent_series(&self) -> BTreeMap<String, Vec<(f64, f64)>> {
        let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for s in &self.samples {
            let name = format!("{} ({})", s.authority, s.dataset);
            series.entry(name).or_default().push((s.at_secs, s.budget - s.remaining));
        }
        series
    }

    /// The largest budget seen (the chart's top), if any sample.
    pub fn largest_budget(&self) -> Option<f64> {
        self.samples.iter().map(|s| s.budget).reduce(f64::max)
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::NodeStatus;

    fn authority(name: &str, remaining: &str) -> PeerStatus {
        PeerStatus {
            name: name.into(),
            role: Role::Authority,
            address: "127.0.0.1:1".into(),
            status: Ok(NodeStatus {
                name: name.into(),
                role: Role::Authority,
                version: "0".into(),
                details: vec![
                    ("dataset".into(), "areas".into()),
                    ("budget_epsilon".into(), "10".into()),
                    ("remaining_epsilon".into(), remaining.into()),
                ],
            }),
        }
    }

    #[test]
    fn records_spent_budget_per_authority() {
        let mut series = BudgetSeries::default();
        let down = PeerStatus { status: Err("down".into()), ..authority("authority-2", "10") };
        series.record(1.0, &[authority("authority-1", "10"), down]);
        series.record(2.5, &[authority("authority-1", "9.5"), authority("authority-2", "9.5")]);
        let spent = series.spent_series();
        assert_eq!(spent["authority-1 (areas)"], vec![(1.0, 0.0), (2.5, 0.5)]);
        assert_eq!(spent["authority-2 (areas)"], vec![(2.5, 0.5)]);
        assert_eq!(series.largest_budget(), Some(10.0));
        assert_eq!(series.len(), 3);
    }
}
