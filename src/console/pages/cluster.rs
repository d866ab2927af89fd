//! The cluster page: every node with its role, state (up, or the reason it
//! is not) and address, each authority's remaining budget per dataset with
//! its charges, and a chart of the budget spent over this console session
//! (samples the console took; not stored). Input: the processor's
//! `Status`/`ClusterStatus` and the budget series; output: markup.

use maud::{html, Markup};

use super::{error_box, layout, Head, Nav};
use crate::console::budget::BudgetSeries;
use crate::console::charts::{line_chart, ChartText, Series};
use crate::console::state::ClusterView;
use crate::protocol::{PeerStatus, Role};

fn detail<'a>(details: &'a [(String, String)], key: &str) -> &'a str {
    details.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("")
}

fn details_text(details: &[(String, String)]) -> String {
    details.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

fn nodes(view: &ClusterView) -> Markup {
    html! {
        table #nodes {
            caption { "Nodes, as the processor reaches them" }
            thead { tr { th { "node" } th { "role" } th { "state" } th { "address" } th { "details" } } }
            tbody {
                tr { td { (view.processor.name) } td { "processor" } td.up { "up" } td { code { (view.processor_address) } }
                     td { (details_text(&view.processor.details)) } }
                @for peer in &view.peers {
                    tr {
                        td { (peer.name) } td { (peer.role.to_string()) }
                        @match &peer.status {
                            Ok(_) => td.up { "up" },
                            Err(why) => td.down { "down: " (why) },
                        }
                        td { code { (peer.address) } }
                        td { @if let (Ok(s), Role::Relay) = (&peer.status, peer.role) { (details_text(&s.details)) } }
                    }
                }
            }
        }
    }
}

fn budgets(peers: &[PeerStatus]) -> Markup {
    let authorities: Vec<&PeerStatus> = peers.iter().filter(|p| p.role == Role::Authority).collect();
    html! {
        table #budgets {
            caption { "Privacy budget per authority and dataset (ε)" }
            thead { tr { th { "authority" } th { "dataset" } th { "budget" } th { "remaining" } th { "charges" } th { "recent charges" } } }
            tbody {
                @for peer in authorities {
                    @match &peer.status {
                        Ok(s) => tr {
                            td { (peer.name) } td { (detail(&s.details, "dataset")) } td { (detail(&s.details, "budget_epsilon")) }
                            td.remaining { (detail(&s.details, "remaining_epsilon")) } td { (detail(&s.details, "charges")) }
                            td { (detail(&s.details, "recent_charges")) }
                        },
                        Err(why) => tr { td { (peer.name) } td colspan="5" { "unknown: the authority is down (" (why) ")" } },
                    }
                }
            }
        }
    }
}

fn budget_chart(series: &BudgetSeries, started: &str) -> Markup {
    let lines: Vec<Series> = series.spent_series().into_iter().map(|(name, points)| Series { name, points }).collect();
    let top = series.largest_budget().unwrap_or(1.0);
    let description =
        format!("{} samples of the epsilon spent per authority since the console started; budget {top}", series.len());
    let text = ChartText {
        id: "budget",
        title: "Budget spent during this console session",
        description: &description,
        x_label: "seconds since the console started (s)",
        y_label: "epsilon spent (ε)",
    };
    html! {
        figure { (line_chart(&text, &lines, Some((0.0, top)))) }
        p.hint { "The console samples every authority's remaining budget each time this page is shown and after each "
            "query, since it started at " (started) ". The series lives in this console only: it starts empty "
            "with each console and is not stored." }
    }
}

pub fn page(user: &str, view: &Result<ClusterView, String>, series: &BudgetSeries, started: &str) -> Markup {
    let body = match view {
        Ok(view) => html! {
            (nodes(view))
            (budgets(&view.peers))
            @if !series.is_empty() { (budget_chart(series, started)) }
        },
        Err(why) => error_box(why),
    };
    layout(&Head { title: "Cluster", nav: Nav::Cluster, refresh_secs: None }, user, body)
}
