//! This console session's queries: each query sent to the processor (a CDF
//! is several), with its parameters, its answer (as `crux-node query --json`
//! prints it) or its error, the epsilon it asked for and the time it took.
//! Filled by `console::jobs`; read by the history page and exported as CSV
//! and JSON. Session-local (nothing is written to disk). Pure.

use serde_json::{json, Value};

use crate::cli::query::answer_json;
use crate::protocol::QueryAnswer;
use crate::stats::QueryParams;

#[derive(Clone, Debug)]
pub struct HistoryEntry {
    /// the console job that sent it
    pub job: u64,
    /// when it was sent, seconds since the Unix epoch
    pub at_unix: u64,
    pub elapsed_ms: u64,
    pub labels: Vec<String>,
    pub params: QueryParams,
    pub outcome: Result<QueryAnswer, String>,
}

impl HistoryEntry {
    /// Epsilon the query asked for (0 when exact): charged at admission,
    /// even when the query then failed.
    pub fn epsilon(&self) -> f64 {
        if self.params.exact {
            0.0
        } else {
            self.params.epsilon.map(|e| e.as_f64()).unwrap_or(0.0)
        }
    }

    pub fn to_json(&self) -> Value {
        let p = &self.params;
        json!({
            "job": self.job,
            "time_unix": self.at_unix,
            "elapsed_ms": self.elapsed_ms,
            "column": self.labels,
            "statistic": p.statistic.name(),
            "exact": p.exact,
            "epsilon": p.epsilon.map(|e| e.as_f64()),
            "bounds": p.bounds.as_ref().map(|(lo, hi)| [lo, hi]),
            "quantile": p.quantile,
            "edges": p.edges,
            "sample": p.sample,
            "answer": self.outcome.as_ref().ok().map(answer_json),
            "error": self.outcome.as_ref().err(),
        })
    }
}

/// CSV columns, in order.
pub const CSV_HEADER: [&str; 21] = [
    "job",
    "time_unix",
    "elapsed_ms",
    "column",
    "statistic",
    "exact",
    "epsilon",
    "bounds",
    "quantile",
    "edges",
    "sample",
    "value",
    "exact_value",
    "noisy_value",
    "stddev",
    "ci95_lo",
    "ci95_hi",
    "rows",
    "relays",
    "missing_relays",
    "error",
];

/// The value at a JSON pointer ("/ci95/0"), null when absent.
pub fn field<'a>(value: &'a Value, pointer: &str) -> &'a Value {
    value.pointer(pointer).unwrap_or(&Value::Null)
}

/// A JSON field as CSV text: strings bare, null empty, the rest as JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Default)]
pub struct History {
    entries: Vec<HistoryEntry>,
}

impl History {
    pub fn push(&mut self, entry: HistoryEntry) {
        self.entries.push(entry);
    }

    pub fn entries(&self) -> &[HistoryEntry] {
        &self.entries
    }

    /// Epsilon asked for by all of this session's queries.
    pub fn epsilon_total(&self) -> f64 {
        self.entries.iter().fold(0.0, |sum, entry| sum + entry.epsilon())
    }

    /// `{"queries": [...]}`, one object per query.
    pub fn to_json(&self) -> Value {
        json!({ "queries": self.entries.iter().map(HistoryEntry::to_json).collect::<Vec<_>>() })
    }

    /// One header line, then one line per query (histogram buckets as JSON
    /// in `value`).
    pub fn to_csv(&self) -> Result<String, csv::Error> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(CSV_HEADER)?;
        for entry in &self.entries {
            let record = entry.to_json();
            let answer = field(&record, "/answer");
            let row: Vec<String> = CSV_HEADER
                .iter()
                .map(|key| match *key {
                    "column" => entry.labels.join(" / "),
                    "value" if answer.get("buckets").is_some() => cell(field(answer, "/buckets")),
                    "ci95_lo" => cell(field(answer, "/ci95/0")),
                    "ci95_hi" => cell(field(answer, "/ci95/1")),
                    "relays" => cell(field(answer, "/contributing_relays")),
                    "value" | "exact_value" | "noisy_value" | "stddev" | "rows" | "missing_relays" => {
                        cell(field(answer, &format!("/{key}")))
                    }
                    _ => cell(field(&record, &format!("/{key}"))),
                })
                .collect();
            writer.write_record(&row)?;
        }
        let bytes = writer.into_inner().map_err(|e| csv::Error::from(e.into_error()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}
