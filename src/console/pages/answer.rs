//! The job page: while a query runs, its progress ("round r of at most R",
//! from the processor's `Progress`) and a 1-second self-refresh; then the
//! answer with its uncertainty, the relays that contributed and the missing
//! ones with reasons, the epsilon spent and the time taken, a histogram's
//! bar chart or a CDF's line chart, and the CLI's own text and JSON for the
//! same answer; or the error, with "did you mean" suggestions. Input: a
//! `Job` and the processor's progress; output: markup.

use maud::{html, Markup};
use serde_json::Value;

use super::{error_box, layout, Head, Nav};
use crate::cli::query::{answer_json, answer_text};
use crate::console::charts::{bar_chart, line_chart, number, Bar, ChartText, Series};
use crate::console::history::field;
use crate::console::jobs::{Job, JobOutcome, TimedAnswer};
use crate::protocol::QueryProgress;

/// A column's labels for people: "Population / All usual residents / 2021".
pub fn column_name(labels: &[String]) -> String {
    labels.iter().filter(|l| !l.is_empty()).cloned().collect::<Vec<_>>().join(" / ")
}

fn millis(d: std::time::Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// A running job: which query, and the processor's rounds.
fn running(job: &Job, progress: &Result<Vec<QueryProgress>, String>) -> Markup {
    let total = job.request.runs.len();
    let statistic = job.request.runs.get(job.step).map(|p| p.statistic);
    html! {
        p.status role="status" {
            "Running" @if total > 1 { " query " (job.step + 1) " of " (total) } " … " (millis(job.started.elapsed())) " so far."
        }
        @match progress {
            Ok(list) => {
                @let mine: Vec<&QueryProgress> = list.iter().filter(|p| Some(p.statistic) == statistic).collect();
                @if mine.is_empty() { p { "Waiting for the processor to start (or finish) the query." } }
                @for p in mine {
                    @if p.max_rounds == 0 {
                        p #progress { "Waiting for the relays to describe the column (" (p.elapsed_ms) " ms)." }
                    } @else {
                        p #progress { "Round " (p.rounds) " of at most " (p.max_rounds) " (" (p.elapsed_ms) " ms at the processor)." }
                        progress max=(p.max_rounds) value=(p.rounds) aria-label="rounds" { (p.rounds) "/" (p.max_rounds) }
                    }
                }
            }
            Err(why) => p.note { "Progress unavailable: " (why) }
        }
        p.hint { "This page refreshes every second until the answer is there; the rest of the console works meanwhile." }
    }
}

/// A histogram's bars and bucket table from the CLI's JSON.
fn histogram(id: &str, column: &str, json: &Value) -> Markup {
    let buckets = field(json, "/buckets").as_array().cloned().unwrap_or_default();
    let edge = |v: &Value, inf: &str| v.as_str().map_or(inf.to_string(), str::to_string);
    let bars: Vec<Bar> = buckets
        .iter()
        .map(|b| Bar {
            label: format!("[{}, {})", edge(field(b, "/lo"), "-inf"), edge(field(b, "/hi"), "+inf")),
            value: field(b, "/count").as_f64().unwrap_or(0.0),
            interval: field(b, "/ci95").as_array().and_then(|c| Some((c.first()?.as_f64()?, c.get(1)?.as_f64()?))),
        })
        .collect();
    let total: f64 = bars.iter().map(|b| b.value).sum();
    let description = format!(
        "{} buckets of {column}, {} values in all: {}",
        bars.len(),
        number(total),
        bars.iter().map(|b| format!("{} {}", b.label, number(b.value))).collect::<Vec<_>>().join("; ")
    );
    let title = format!("Histogram of {column}");
    let text = ChartText {
        id,
        title: &title,
        description: &description,
        x_label: &format!("bucket of {column} (the column's units)"),
        y_label: "values in the bucket (count)",
    };
    html! {
        figure { (bar_chart(&text, &bars)) }
        table #buckets {
            thead { tr { th { "from (inclusive)" } th { "to (exclusive)" } th { "count" } @if bars.iter().any(|b| b.interval.is_some()) { th { "95% interval" } } } }
            tbody {
                @for (b, bar) in buckets.iter().zip(&bars) {
                    tr { td { (edge(field(b, "/lo"), "-inf")) } td { (edge(field(b, "/hi"), "+inf")) } td.count { (number(bar.value)) }
                        @if let Some((lo, hi)) = bar.interval { td { (number(lo)) " to " (number(hi)) } } }
                }
            }
        }
    }
}

/// The value with its uncertainty (not for histograms).
fn value(a: &TimedAnswer, json: &Value) -> Markup {
    let text = answer_text(&a.answer);
    let headline = text.lines().next().unwrap_or_default();
    // the CLI's first line without "STAT of COLUMN: ", which the heading says
    let prefix = format!("{} of {}: ", a.answer.result.statistic, column_name(&a.answer.column));
    let headline = headline.strip_prefix(&prefix).unwrap_or(headline).to_string();
    html! {
        p.value #value { (headline) }
        @if let Some(exact) = field(json, "/exact_value").as_str() {
            p { "Exact value: " strong #exact-value { (exact) } }
        }
        @if let Some(stddev) = field(json, "/stddev").as_f64() {
            p { "Noise standard deviation: " strong #stddev { (number(stddev)) } }
            @if let (Some(lo), Some(hi)) = (field(json, "/ci95/0").as_f64(), field(json, "/ci95/1").as_f64()) {
                p { "95% interval: " strong #ci95 { (number(lo)) " to " (number(hi)) } }
            }
            p { "Noisy value as released (fraction): " code { (field(json, "/noisy_value").as_str().unwrap_or_default()) } }
        }
    }
}

/// Relays, rows, mode, epsilon, time and the CLI's own output.
fn facts(a: &TimedAnswer, json: &Value) -> Markup {
    let answer = &a.answer;
    html! {
        dl.facts {
            dt { "Contributing relays" } dd #relays { (answer.relays.len()) ": " (answer.relays.join(", ")) }
            dt { "Missing relays" } dd #missing {
                @if answer.missing_relays.is_empty() { "none" }
                ul { @for (relay, why) in &answer.missing_relays { li { strong { (relay) } ": " (why) } } }
            }
            dt { "Values counted" } dd { (field(json, "/rows")) @if !answer.exact { " (noisy)" } }
            dt { "Mode" } dd { @if answer.exact { "exact (no noise)" } @else { "differentially private" } }
            dt { "Epsilon spent" } dd #epsilon { @match answer.epsilon { Some(e) if !answer.exact => { (e.to_string()) " (charged by every authority)" } _ => "0 (exact)" } }
            @if let Some(noise) = &answer.noise { dt { "Noise" } dd { (noise) } }
            dt { "Time taken" } dd #elapsed { (millis(a.elapsed)) }
            dt { "Query id" } dd { code { (answer.query_id.to_string()) } }
        }
        details { summary { "As " code { "crux-node query" } " prints it" } pre { (answer_text(answer)) } }
        details { summary { "As " code { "crux-node query --json" } " prints it" } pre #json { (json.to_string()) } }
    }
}

fn single(a: &TimedAnswer) -> Markup {
    let json = answer_json(&a.answer);
    let column = column_name(&a.answer.column);
    html! {
        section #answer {
            h2 { (a.answer.result.statistic.name()) " of " (column) }
            @if json.get("buckets").is_some() { (histogram("histogram", &column, &json)) } @else { (value(a, &json)) }
            (facts(a, &json))
        }
    }
}

fn cdf(answers: &[TimedAnswer]) -> Markup {
    let column = answers.first().map(|a| column_name(&a.answer.column)).unwrap_or_default();
    let points: Vec<(f64, f64)> = answers
        .iter()
        .filter_map(|a| Some((a.answer.result.value.to_f64(), a.level.as_deref()?.parse::<f64>().ok()?)))
        .collect();
    let epsilon: f64 = answers
        .iter()
        .filter(|a| !a.answer.exact)
        .filter_map(|a| a.answer.epsilon)
        .fold(0.0, |sum, e| sum + e.as_f64());
    let description = points.iter().map(|(v, p)| format!("{p}: {}", number(*v))).collect::<Vec<_>>().join("; ");
    let title = format!("CDF of {column} from {} quantiles", points.len());
    let text = ChartText {
        id: "cdf",
        title: &title,
        description: &description,
        x_label: &format!("{column} (the column's units)"),
        y_label: "fraction of values at or below (quantile level)",
    };
    let series = [Series { name: "quantiles".to_string(), points }];
    html! {
        section #answer {
            h2 { "CDF of " (column) }
            p { (answers.len()) " quantile queries; epsilon spent in all: " strong #epsilon { (number(epsilon)) } }
            figure { (line_chart(&text, &series, Some((0.0, 1.0)))) }
            table #quantiles {
                thead { tr { th { "level" } th { "value" } th { "95% interval" } th { "time" } } }
                tbody { @for a in answers { @let json = answer_json(&a.answer); tr {
                    td { (a.level.as_deref().unwrap_or_default()) }
                    td { (field(&json, "/exact_value").as_str().or(field(&json, "/noisy_value").as_str()).unwrap_or_default()) }
                    td { @if let (Some(lo), Some(hi)) = (field(&json, "/ci95/0").as_f64(), field(&json, "/ci95/1").as_f64()) { (number(lo)) " to " (number(hi)) } @else { "exact" } }
                    td { (millis(a.elapsed)) }
                } } }
            }
        }
    }
}

fn failed(message: &str, suggestions: &[Vec<String>]) -> Markup {
    html! {
        (error_box(message))
        @if !suggestions.is_empty() {
            div #suggestions { p { "Did you mean:" } ul { @for s in suggestions { li { code { (column_name(s)) } } } } }
        }
        p { a href="/query" { "Back to the query page" } }
    }
}

/// The job page; `progress` only matters while the job runs.
pub fn page(user: &str, job: &Job, progress: &Result<Vec<QueryProgress>, String>) -> Markup {
    let column = column_name(&job.request.labels);
    let (title, refresh, body) = match &job.outcome {
        None => ("Query running", Some(1), running(job, progress)),
        Some(JobOutcome::Answered(answers)) if job.request.is_cdf() => ("Answer", None, cdf(answers)),
        Some(JobOutcome::Answered(answers)) => ("Answer", None, html! { @for a in answers { (single(a)) } }),
        Some(JobOutcome::Failed { message, done, suggestions }) => {
            ("Query failed", None, html! { (failed(message, suggestions)) @for a in done { (single(a)) } })
        }
    };
    let body = html! { p.subtitle { "Job " (job.id) ": " (column) } (body) };
    layout(&Head { title, nav: Nav::Query, refresh_secs: refresh }, user, body)
}
