//! Shared test helpers: expected statistics from tests/data/expected_stats.json,
//! and in-memory clusters (`crux::harness`) over the test spreadsheets.
//! Real node processes: `cluster` (init, start, stop, CLI) on ports from
//! `ports`, `nodes` (a dishonest processor's client) and `http` (GET on
//! their metrics endpoints).
#![allow(dead_code, clippy::unwrap_used)]

pub mod cluster;
pub mod http;
pub mod nodes;
pub mod ports;

use std::path::PathBuf;
use std::sync::Arc;

use crux::actors::column_source::FileColumnSource;
use crux::crypto::{DlogSolver, MemoryTable};
use crux::data::{Shard, SourceSpec};
use crux::protocol::relay::ColumnSource;

pub fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

pub fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(data_path("expected_stats.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// (letter, [group, sub, period], stats) for every column.
pub fn expected_columns() -> Vec<(String, Vec<String>, serde_json::Value)> {
    let e = expected();
    e["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let labels = ["group", "sub", "period"].iter().map(|k| c[*k].as_str().unwrap().to_string()).collect();
            (c["column"].as_str().unwrap().to_string(), labels, c["stats"].clone())
        })
        .collect()
}

/// Parses "p/q" or an integer into a reduced fraction.
pub fn fraction(text: &str) -> (i128, i128) {
    let (n, d) = match text.split_once('/') {
        Some((n, d)) => (n.parse::<i128>().unwrap(), d.parse::<i128>().unwrap()),
        None => (text.parse::<i128>().unwrap(), 1),
    };
    crux::stats::result::reduce(n, d).unwrap()
}

pub use crux::harness::MemoryCluster;
use crux::harness::Options;

/// The shared test solver: a 2^16 table, |m| < 2^30.
pub fn solver() -> Arc<DlogSolver<Arc<MemoryTable>>> {
    static SOLVER: std::sync::OnceLock<Arc<DlogSolver<Arc<MemoryTable>>>> = std::sync::OnceLock::new();
    SOLVER.get_or_init(|| Arc::new(DlogSolver::new(Arc::new(MemoryTable::build(16).unwrap()), 30).unwrap())).clone()
}

/// `relays` relays over slices of `file` (declared decimals: what init
/// detects), 3 authorities.
pub fn memory_cluster(file: &str, relays: u32, allow_exact: bool, min_relays: usize) -> MemoryCluster {
    let mut declared = SourceSpec::new(data_path(file)).with_header_rows(3);
    crux::data::source::declare_detected_decimals(&mut declared).unwrap();
    let sources = (0..relays)
        .map(|j| {
            let mut spec = declared.clone();
            spec.shard = Some(Shard { index: j, count: relays });
            Box::new(FileColumnSource::new(&format!("relay-{}", j + 1), vec![spec])) as Box<dyn ColumnSource>
        })
        .collect();
    with_sources(sources, allow_exact, min_relays)
}

pub fn with_sources(sources: Vec<Box<dyn ColumnSource>>, allow_exact: bool, min_relays: usize) -> MemoryCluster {
    MemoryCluster::new(sources, Options::new(allow_exact, min_relays), solver()).unwrap()
}

/// `memory_cluster` with a committee of `authorities` sharing the key `threshold`-of-n.
pub fn committee_cluster(file: &str, relays: u32, authorities: usize, threshold: usize) -> MemoryCluster {
    let mut cluster = memory_cluster(file, relays, true, 2);
    let sources = std::mem::take(&mut cluster.relays).into_iter().map(|(_, source)| source).collect();
    let options = Options { authorities, threshold: Some(threshold), ..Options::new(true, 2) };
    MemoryCluster::new(sources, options, solver()).unwrap()
}

/// (rounds, ciphertexts relay-1 sent, releases) of the last query.
pub fn costs(cluster: &MemoryCluster) -> (usize, usize, usize) {
    (cluster.trace.rounds, cluster.trace.ciphertexts_per_relay, cluster.trace.releases)
}

/// A generated column (one relay's values, 0 declared decimals), named `label`.
pub struct Generated {
    pub label: &'static str,
    pub values: Vec<i128>,
}

impl ColumnSource for Generated {
    fn column(
        &self,
        _labels: &[String],
    ) -> Result<crux::protocol::relay::ColumnValues, crux::protocol::relay::SourceError> {
        Ok(crux::protocol::relay::ColumnValues {
            labels: vec![self.label.into()],
            decimals: 0,
            values: self.values.clone(),
        })
    }

    fn declared_decimals(&self, _labels: &[String]) -> Option<u32> {
        Some(0)
    }
}

/// Relays over generated columns.
pub fn generated(label: &'static str, parts: Vec<Vec<i128>>) -> Vec<Box<dyn ColumnSource>> {
    parts.into_iter().map(|values| Box::new(Generated { label, values }) as Box<dyn ColumnSource>).collect()
}

/// Asks the cluster, exactly, for the count, sum, mean, variance, median
/// and min of the column `label` (0 decimals) and checks each against the
/// plaintext `values`, the whole column over all relays.
pub fn check_exact_against_plaintext(cluster: &mut MemoryCluster, label: &str, values: &[i128]) {
    use crux::stats::result::reduce;
    use crux::stats::{ExactValue, QueryParams, Statistic};
    let n = values.len() as i128;
    let sum: i128 = values.iter().sum();
    let squares: i128 = values.iter().map(|v| v * v).sum();
    let mut sorted = values.to_vec();
    sorted.sort();
    let mut ask = |statistic| cluster.query(&[label], QueryParams::new(statistic)).unwrap().result.value;
    assert_eq!(ask(Statistic::Count), ExactValue::Fixed { mantissa: n, decimals: 0 });
    assert_eq!(ask(Statistic::Sum), ExactValue::Fixed { mantissa: sum, decimals: 0 });
    let (num, den) = reduce(sum, n).unwrap();
    assert_eq!(ask(Statistic::Mean), ExactValue::Ratio { num, den });
    let (num, den) = reduce(n * squares - sum * sum, n * n).unwrap();
    assert_eq!(ask(Statistic::Variance), ExactValue::Ratio { num, den });
    assert_eq!(ask(Statistic::Median), ExactValue::Fixed { mantissa: sorted[(n as usize) / 2 - 1], decimals: 0 });
    assert_eq!(ask(Statistic::Min), ExactValue::Fixed { mantissa: sorted[0], decimals: 0 });
}
