//! The history page: this console session's queries, newest first, with
//! parameters, answer or error, epsilon and time, and links to the CSV and
//! JSON exports. Input: `History`; output: markup.

use maud::{html, Markup};

use super::answer::column_name;
use super::{layout, Head, Nav};
use crate::cli::query::answer_json;
use crate::console::charts::number;
use crate::console::history::{field, History, HistoryEntry};

/// "HH:MM:SS UTC" of a Unix time.
pub fn clock(unix: u64) -> String {
    let day = unix % 86_400;
    format!("{:02}:{:02}:{:02} UTC", day / 3600, day % 3600 / 60, day % 60)
}

fn parameters(entry: &HistoryEntry) -> String {
    let p = &entry.params;
    let mut parts = vec![p.statistic.name().to_string()];
    if let Some(q) = &p.quantile {
        parts.push(format!("p={q}"));
    }
    if !p.edges.is_empty() {
        parts.push(format!("edges {}", p.edges.join(",")));
    }
    if let Some((lo, hi)) = &p.bounds {
        parts.push(format!("bounds {lo}:{hi}"));
    }
    if p.sample {
        parts.push("sample".into());
    }
    parts.push(if p.exact { "exact".into() } else { format!("ε {}", number(entry.epsilon())) });
    parts.join(", ")
}

fn outcome(entry: &HistoryEntry) -> Markup {
    match &entry.outcome {
        Ok(answer) => {
            let json = answer_json(answer);
            let shown = if let Some(buckets) = field(&json, "/buckets").as_array() {
                buckets.iter().map(|b| field(b, "/count").to_string()).collect::<Vec<_>>().join(" | ")
            } else {
                field(&json, "/exact_value")
                    .as_str()
                    .map_or_else(|| field(&json, "/value").as_f64().map(number).unwrap_or_default(), str::to_string)
            };
            html! { td.answer { (shown) @if let Some(sd) = field(&json, "/stddev").as_f64() { " ± " (number(sd)) " (sd)" } } }
        }
        Err(message) => html! { td.down { (message) } },
    }
}

pub fn page(user: &str, history: &History) -> Markup {
    let body = html! {
        p { "Export: " a href="/history.csv" { "CSV" } " · " a href="/history.json" { "JSON" }
            ". Epsilon asked for by this session's queries: " strong #epsilon-total { (number(history.epsilon_total())) } "." }
        @if history.entries().is_empty() { p { "No query yet in this session. " a href="/query" { "Run one." } } }
        @else {
            table #history {
                thead { tr { th { "time" } th { "job" } th { "column" } th { "parameters" } th { "answer" } th { "took" } } }
                tbody {
                    @for e in history.entries().iter().rev() {
                        tr { td { (clock(e.at_unix)) } td { a href={"/jobs/" (e.job)} { (e.job) } } td { (column_name(&e.labels)) }
                             td { (parameters(e)) } (outcome(e)) td { (e.elapsed_ms) " ms" } }
                    }
                }
            }
        }
        p.hint { "The history lives in this console only (nothing is written to disk)." }
    };
    layout(&Head { title: "History", nav: Nav::History, refresh_secs: None }, user, body)
}
