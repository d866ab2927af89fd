//! Issue 14: every node's operator endpoints over real HTTP, on the TCP port
//! `crux-node init` writes (127.0.0.1, the node's own port number), with
//! real `crux-node` processes talking QUIC on 127.0.0.1: `/healthz` and
//! `/readyz` on every role (503 on a processor whose peers are down, 200
//! once they are up), `/metrics` after an exact median, a query refused by
//! the budget and one with a mistyped label (the expected families and
//! counts; no column label, no answer value, nothing the user typed), and a
//! node whose config has no `metrics` section serves no HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

mod common;

use crux::protocol::relay::ENCRYPTION_POOL;
use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::cluster::{Cluster, Layout};
use common::http::get;
use common::nodes::LABELS;
use crux::config::raw::RawConfig;

/// The node's metrics address, as `crux-node init` wrote it.
fn metrics_addr(cluster: &Cluster, name: &str) -> SocketAddr {
    let cfg = cluster.config(name);
    let listen = cfg.role.listen().unwrap();
    let metrics = cfg.metrics.unwrap_or_else(|| panic!("{name} has no metrics section")).listen;
    assert_eq!((metrics.ip().to_string().as_str(), metrics.port()), ("127.0.0.1", listen.port()), "{name}");
    metrics
}

/// Polls `GET path` until it answers `status` (at most `within`); the body.
fn wait_for(addr: SocketAddr, path: &str, status: u16, within: Duration) -> String {
    wait_until(addr, path, status, within, |_| true)
}

/// Polls `GET path` until it answers `status` with a body `ok` accepts.
fn wait_until(addr: SocketAddr, path: &str, status: u16, within: Duration, ok: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let last = get(addr, path);
        if let Ok((code, body)) = &last {
            if *code == status && ok(body) {
                return body.clone();
            }
        }
        assert!(started.elapsed() < within, "GET {path} on {addr}: wanted {status}, last {last:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The value of the series written exactly as `series` (name and labels), if any.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Every label value of every series in `text`.
fn label_values(text: &str) -> BTreeSet<String> {
    let mut values = BTreeSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((_, labels)) = line.split_once('{') else { continue };
        let labels = labels.rsplit_once('}').map(|(l, _)| l).unwrap_or(labels);
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (_, value) = pair.split_once("=\"").unwrap_or_else(|| panic!("label {pair:?} in {line:?}"));
            values.insert(value.trim_end_matches('"').to_string());
        }
    }
    values
}

/// Label values a node may show: fixed sets, node names and the dataset
/// from its config, and histogram bucket bounds.
fn allowed_label(value: &str) -> bool {
    const FIXED: &[&str] = &[
        // statistics
        "count",
        "sum",
        "mean",
        "variance",
        "stddev",
        "min",
        "max",
        "median",
        "quantile",
        "histogram",
        // query outcomes
        "answered",
        "refused",
        "relays_missing",
        "invalid",
        "failed",
        "timed_out",
        "refused_rate_limit",
        // request kinds and reply outcomes
        "admit_query",
        "admit_round",
        "admit_refinement",
        "register",
        "decrypt",
        "status",
        "describe",
        "contribute",
        "columns",
        "transition",
        "ok",
        "error",
        "unreachable",
        "invalid_reply",
        "unexpected",
        "rejected",
        // refusals before the state machine (the authority's reasons are
        // `outcome::REFUSAL_REASONS`, below)
        "not_processor",
        "not_a_user",
        "rate_limit",
        // sides, config names
        "server",
        "client",
        "areas",
    ];
    FIXED.contains(&value)
        || crux::protocol::outcome::REFUSAL_REASONS.contains(&value)
        || Layout::SMALL.names().iter().any(|n| n == value)
        || value == "+Inf"
        || value.parse::<f64>().is_ok_and(|v| v > 0.0 && v < 100.0)
}

#[test]
fn metrics_count_queries_and_show_no_value_label_or_user_input() {
    let mut cluster = Cluster::init(&["--exact", "--budget", "1"]);
    let names = Layout::SMALL.names();
    for name in &names {
        cluster.start(name);
    }
    cluster.wait_up(&names.iter().map(String::as_str).collect::<Vec<_>>(), Duration::from_secs(60));
    for name in &names {
        let addr = metrics_addr(&cluster, name);
        assert_eq!(get(addr, "/healthz").unwrap(), (200, "ok\n".to_string()), "{name}");
        assert_eq!(wait_for(addr, "/readyz", 200, Duration::from_secs(20)), "ready\n", "{name}");
        assert_eq!(get(addr, "/nothing-here").unwrap().0, 404, "{name}");
    }

    let labels: Vec<String> = LABELS.iter().map(|l| l.to_string()).collect();
    let median = cluster.answer("median", &["--exact"], &labels).0.unwrap();
    let value = median["exact_value"].as_str().unwrap().to_string();
    assert_eq!(value, "5714");
    // refused by both authorities' budget (1) at admission
    let refused = cluster.answer("count", &["--epsilon", "2"], &labels).0.unwrap_err();
    assert!(refused.contains("budget"), "{refused}");
    // a label the user typed that no relay has
    let typo = "Zebrafinch-typed-by-user";
    assert!(cluster.answer("sum", &["--exact"], &[typo.to_string()]).0.is_err());

    let scrape = |name: &str| {
        let (status, text) = get(metrics_addr(&cluster, name), "/metrics").unwrap();
        assert_eq!(status, 200, "{name}: {text}");
        text
    };
    let processor = scrape("processor");
    let p = |series: &str| sample(&processor, series).unwrap_or_else(|| panic!("no {series} in\n{processor}"));
    assert_eq!(p(r#"crux_queries_total{statistic="median",outcome="answered"}"#), 1.0);
    assert_eq!(p(r#"crux_queries_total{statistic="count",outcome="refused"}"#), 1.0);
    let typo_outcomes: Vec<&str> =
        processor.lines().filter(|l| l.starts_with(r#"crux_queries_total{statistic="sum","#)).collect();
    assert_eq!(typo_outcomes.len(), 1, "{processor}");
    assert!(typo_outcomes[0].ends_with(" 1") && !typo_outcomes[0].contains("answered"), "{typo_outcomes:?}");
    assert_eq!(p(r#"crux_query_duration_seconds_count{statistic="median"}"#), 1.0);
    assert!(p(r#"crux_query_rounds_total{statistic="median"}"#) >= 1.0);
    assert!(p(r#"crux_query_releases_total{statistic="median"}"#) >= 1.0);
    for relay in ["relay-1", "relay-2", "relay-3"] {
        assert!(
            p(&format!(r#"crux_processor_peer_replies_total{{peer="{relay}",request="contribute",outcome="ok"}}"#))
                >= 1.0
        );
    }
    assert_eq!(p("crux_dlog_table_entries"), 4096.0);
    assert!(p(r#"crux_quic_connections{side="client"}"#) >= 5.0);
    assert!(p(r#"crux_quic_request_bytes_total{side="client"}"#) > 0.0);
    assert!(p(r#"crux_quic_reply_bytes_total{side="server"}"#) > 0.0);

    for authority in ["authority-1", "authority-2"] {
        let text = scrape(authority);
        let a = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
        assert_eq!(a(r#"crux_authority_refusals_total{reason="budget"}"#), 1.0);
        assert_eq!(a(r#"crux_authority_refusals_total{reason="replay"}"#), 0.0);
        assert_eq!(a(r#"crux_authority_requests_total{request="admit_query",outcome="refused"}"#), 1.0);
        // the median and the mistyped sum (admission comes before any relay reads labels)
        assert_eq!(a(r#"crux_authority_requests_total{request="admit_query",outcome="answered"}"#), 2.0);
        // every round of an exact median releases all its prefix counts
        // with its registration (no `Decrypt` of its own): one registration
        // per round of the median (the mistyped sum never reached one)
        assert!(a(r#"crux_authority_requests_total{request="register",outcome="answered"}"#) >= 2.0);
        assert!(sample(&text, r#"crux_authority_requests_total{request="decrypt",outcome="answered"}"#).is_none());
        assert_eq!(a(r#"crux_authority_budget_remaining_epsilon{dataset="areas"}"#), 1.0);
        assert_eq!(a(r#"crux_authority_budget_epsilon{dataset="areas"}"#), 1.0);
        assert!(a(r#"crux_quic_connections{side="server"}"#) >= 1.0);
    }
    for relay in ["relay-1", "relay-2", "relay-3"] {
        let text = scrape(relay);
        let r = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
        assert!(r(r#"crux_relay_requests_total{request="contribute",outcome="answered"}"#) >= 1.0);
        assert_eq!(r(r#"crux_relay_requests_total{request="describe",outcome="answered"}"#), 1.0);
        assert_eq!(r(r#"crux_relay_requests_total{request="describe",outcome="error"}"#), 1.0);
        assert!(!text.contains("crux_queries") && !text.contains("crux_authority_"), "{text}");
    }
    // between requests each relay refills its pool of encryptions of zero
    // (the queries above used some)
    for relay in ["relay-1", "relay-2", "relay-3"] {
        let full = ENCRYPTION_POOL as f64;
        let ready = || sample(&scrape(relay), "crux_relay_precomputed_encryptions").unwrap_or(-1.0);
        let deadline = Instant::now() + Duration::from_secs(20);
        while ready() < full && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(ready(), full, "{relay}'s pool of encryptions of zero");
    }

    // nothing a user typed, no column label, no answer: every label value
    // is from a fixed set or the config, and no sample is the answer
    for name in &names {
        let text = scrape(name);
        // (the year label "1996" could be a byte count: label values are checked below)
        // (nor the name of the user, "user": `not_a_user` is a fixed reason)
        for needle in [LABELS[0], LABELS[1], typo, "\"user\""] {
            assert!(!text.contains(needle), "{name} shows {needle:?}:\n{text}");
        }
        let unexpected: Vec<String> = label_values(&text).into_iter().filter(|v| !allowed_label(v)).collect();
        assert!(unexpected.is_empty(), "{name} shows label values {unexpected:?}");
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.contains("_bytes_total")) {
            let sample = line.rsplit(' ').next().unwrap();
            assert_ne!(sample.parse::<f64>().ok(), Some(5714.0), "{name}: {line}");
        }
    }
}

#[test]
fn a_processor_is_ready_only_while_its_peers_are_reachable() {
    let mut cluster = Cluster::init(&["--exact"]);
    cluster.start("processor");
    let addr = metrics_addr(&cluster, "processor");
    assert_eq!(wait_for(addr, "/healthz", 200, Duration::from_secs(60)), "ok\n");
    // "starting" until the first probe of its peers ends
    let reason = wait_until(addr, "/readyz", 503, Duration::from_secs(20), |r| r != "starting\n");
    assert!(reason.contains("unreachable") && reason.contains("authority-1") && reason.contains("relay-3"), "{reason}");
    // authorities and two relays (min_relays 2) come up: ready within a probe interval or two
    for name in ["authority-1", "authority-2", "relay-1", "relay-2"] {
        cluster.start(name);
    }
    assert_eq!(wait_for(addr, "/readyz", 200, Duration::from_secs(30)), "ready\n");
    // an authority gone: not ready again (it is stopped gracefully, so the
    // processor's connection to it closes at once)
    cluster.stop("authority-2", true);
    let reason = wait_for(addr, "/readyz", 503, Duration::from_secs(30));
    assert!(reason.contains("authority-2") && !reason.contains("authority-1"), "{reason}");
    assert_eq!(get(addr, "/healthz").unwrap().0, 200);
}

#[test]
fn a_config_without_metrics_serves_no_http() {
    let mut cluster = Cluster::init(&["--exact"]);
    let file = cluster.path("relay-1.yaml");
    let mut raw: RawConfig = serde_yaml_ng::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(raw.metrics.take().is_some(), "init writes a metrics section");
    std::fs::write(&file, serde_yaml_ng::to_string(&raw).unwrap()).unwrap();
    assert!(cluster.config("relay-1").metrics.is_none());
    let user: RawConfig =
        serde_yaml_ng::from_str(&std::fs::read_to_string(cluster.path("user.yaml")).unwrap()).unwrap();
    assert!(user.metrics.is_none(), "a user serves nothing");
    let port = cluster.config("relay-1").role.listen().unwrap().port();

    cluster.start("relay-1");
    cluster.start("relay-2");
    let with = metrics_addr(&cluster, "relay-2");
    assert_eq!(wait_for(with, "/readyz", 200, Duration::from_secs(30)), "ready\n");
    let started = Instant::now();
    while !cluster.log("relay-1").contains("node started") {
        assert!(started.elapsed() < Duration::from_secs(30), "{}", cluster.log("relay-1"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let without: SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(TcpStream::connect_timeout(&without, Duration::from_secs(1)).is_err(), "relay-1 listens on TCP {port}");
    assert!(!cluster.log("relay-1").contains("/metrics"), "{}", cluster.log("relay-1"));
}
