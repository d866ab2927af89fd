//! The query page: the form (column, statistic, exact or noisy with epsilon
//! and bounds, quantile, histogram edges) with short guidance on what bounds
//! and epsilon mean, refilled with the user's input and an error after a
//! refusal. Input: published columns and the last form; output: markup.

use maud::{html, Markup};

use super::{csrf_field, error_box, layout, Head, Nav};
use crate::console::form::{QueryForm, CDF};
use crate::console::security::Session;
use crate::stats::Statistic;

/// What the query page shows.
pub struct QueryPage<'a> {
    pub session: &'a Session,
    pub user: &'a str,
    /// published columns, or why there are none
    pub columns: Result<Vec<Vec<String>>, String>,
    pub form: &'a QueryForm,
    pub error: Option<String>,
}

fn statistic_options(form: &QueryForm) -> Markup {
    let chosen = if form.statistic.is_empty() { "median" } else { form.statistic.as_str() };
    html! {
        @for s in Statistic::ALL {
            option value=(s.name()) selected[chosen == s.name()] { (s.name()) }
        }
        option value=(CDF) selected[chosen == CDF] { "CDF (quantiles 0.1 to 0.9: 9 queries)" }
    }
}

fn column_fields(page: &QueryPage) -> Markup {
    let form = page.form;
    html! {
        fieldset {
            legend { "Column" }
            @match &page.columns {
                Ok(columns) if !columns.is_empty() => {
                    label for="column" { "Published columns" }
                    select #column name="column" {
                        option value="" { "(type labels below)" }
                        @for labels in columns {
                            @let value = serde_json::to_string(labels).unwrap_or_default();
                            option value=(value) selected[form.column == value] { (labels.join(" / ")) }
                        }
                    }
                }
                Ok(_) => p.note { "No relay publishes its column labels (`publish_columns: true` in a relay's config); type them." }
                Err(why) => p.note { "Published columns unavailable: " (why) }
            }
            p.hint { "Or type 1 to 3 header labels (they take precedence), e.g. Population, All usual residents, 2021:" }
            div.row {
                input name="label1" aria-label="label 1" value=(form.label1) placeholder="label 1";
                input name="label2" aria-label="label 2" value=(form.label2) placeholder="label 2";
                input name="label3" aria-label="label 3" value=(form.label3) placeholder="label 3";
            }
        }
    }
}

fn statistic_fields(form: &QueryForm) -> Markup {
    html! {
        fieldset {
            legend { "Statistic" }
            label for="statistic" { "Statistic" }
            select #statistic name="statistic" { (statistic_options(form)) }
            label for="quantile" { "Quantile level P in [0, 1] (" code { "--quantile" } ", quantile only)" }
            input #quantile name="quantile" value=(form.quantile) placeholder="0.9" inputmode="decimal";
            label for="edges" { "Histogram edges, increasing (" code { "--edges" } ", histogram only)" }
            input #edges name="edges" value=(form.edges) placeholder="0,1000,10000";
            label.check { input type="checkbox" name="sample" checked[form.sample.is_some()];
                " sample variance, divided by n − 1 (" code { "--sample" } ", variance and stddev only)" }
            p.hint { "A CDF runs the quantile queries 0.1, 0.2, …, 0.9 one after the other and plots them. "
                "Each is a query of its own: with noise, each spends its epsilon (9 × ε in all)." }
        }
    }
}

fn privacy_fields(form: &QueryForm) -> Markup {
    let exact = form.is_exact();
    html! {
        fieldset {
            legend { "Privacy" }
            label.check { input type="radio" name="mode" value="dp" checked[!exact]; " differentially private (noisy)" }
            label.check { input type="radio" name="mode" value="exact" checked[exact];
                " exact, no noise (" code { "--exact" } ": only where every authority allows it)" }
            label for="epsilon" { "Epsilon ε (" code { "--epsilon" } ", default 1)" }
            input #epsilon name="epsilon" value=(form.epsilon) placeholder="1" inputmode="decimal";
            div.row {
                span { label for="lo" { "Lower bound LO" } input #lo name="lo" value=(form.lo) placeholder="0" inputmode="decimal"; }
                span { label for="hi" { "Upper bound HI" } input #hi name="hi" value=(form.hi) placeholder="3000000" inputmode="decimal"; }
            }
            div.guidance {
                p { strong { "Bounds" } " (" code { "--bounds LO:HI" } "): values below LO count as LO and values above HI as HI "
                    "(they are clamped), so that one row can move the answer by a known amount and the noise is sized to it. "
                    "Choose them from what you know of the column in general (its units, a plausible range), "
                    strong { "never from the data itself" } ": bounds read off the data reveal it. Narrower bounds give "
                    "less noise but clamp more values. Noisy sum, mean, variance, stddev, min, max, median and quantiles "
                    "need them; count and histogram do not use them." }
                p { strong { "Epsilon" } ": the privacy cost. Every authority charges it to the dataset's budget when it admits "
                    "the query, even if the query then fails. Smaller ε, more noise. Exact queries spend none." }
            }
        }
    }
}

pub fn page(page: &QueryPage) -> Markup {
    let body = html! {
        @if let Some(error) = &page.error { (error_box(error)) }
        form #query method="post" action="/query" {
            (csrf_field(page.session))
            (column_fields(page))
            (statistic_fields(page.form))
            (privacy_fields(page.form))
            button type="submit" { "Run query" }
        }
    };
    layout(&Head { title: "Query", nav: Nav::Query, refresh_secs: None }, page.user, body)
}
