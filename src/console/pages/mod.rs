//! The console's HTML, rendered on the server with maud: the shared layout
//! (navigation, stylesheet link) and the small pages (errors, 404, login);
//! one file per larger page. Input: views prepared by `console::server`;
//! output: markup. No script anywhere (the CSP forbids it); a running job's
//! page refreshes itself with `<meta http-equiv="refresh">`. Pure.

pub mod answer;
pub mod cluster;
pub mod history;
pub mod query;

use maud::{html, Markup, DOCTYPE};

use super::security::{Session, CSRF_FIELD};

/// Which navigation entry is current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Query,
    Cluster,
    History,
    None,
}

/// Page head options: the title and whether (every how many seconds) the
/// page refreshes itself.
pub struct Head<'a> {
    pub title: &'a str,
    pub nav: Nav,
    pub refresh_secs: Option<u32>,
}

pub fn layout(head: &Head, user: &str, body: Markup) -> Markup {
    let entry = |nav: Nav, href: &str, name: &str| {
        html! { a href=(href) aria-current=[(head.nav == nav).then_some("page")] { (name) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(secs) = head.refresh_secs { meta http-equiv="refresh" content=(secs); }
                title { (head.title) " · Crux console" }
                link rel="stylesheet" href="/static/console.css";
            }
            body {
                header {
                    span.brand { "Crux console" }
                    nav aria-label="main" {
                        (entry(Nav::Query, "/query", "Query"))
                        (entry(Nav::Cluster, "/cluster", "Cluster"))
                        (entry(Nav::History, "/history", "History"))
                    }
                    span.user { "user " strong { (user) } }
                }
                main { h1 { (head.title) } (body) }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(session.csrf); }
}

/// A readable error: what happened, and what to do.
pub fn error_box(message: &str) -> Markup {
    html! { div.error role="alert" { strong { "Error: " } (message) } }
}

pub fn error_page(user: &str, title: &str, message: &str) -> Markup {
    let body = html! {
        (error_box(message))
        p { a href="/query" { "Back to the query page" } }
    };
    layout(&Head { title, nav: Nav::None, refresh_secs: None }, user, body)
}

pub fn not_found(user: &str, path: &str) -> Markup {
    let body = html! {
        p { "There is no page at " code { (path) } "." }
        p { "The console has: " a href="/query" { "Query" } ", " a href="/cluster" { "Cluster" } ", "
            a href="/history" { "History" } " (with " a href="/history.csv" { "CSV" } " and "
            a href="/history.json" { "JSON" } " exports)." }
    };
    layout(&Head { title: "Page not found", nav: Nav::None, refresh_secs: None }, user, body)
}

/// The login form of a remote console; `failed`: a wrong token was given.
pub fn login(session: &Session, failed: bool) -> Markup {
    let body = html! {
        @if failed { (error_box("wrong login token; copy it from the console's output where it was started")) }
        p { "This console listens beyond this machine, so it asks for the login token it printed when it started." }
        form method="post" action="/login" {
            (csrf_field(session))
            label for="token" { "Login token" }
            input #token type="password" name="token" autocomplete="off" required;
            button type="submit" { "Log in" }
        }
    };
    layout(&Head { title: "Log in", nav: Nav::None, refresh_secs: None }, "(not logged in)", body)
}
