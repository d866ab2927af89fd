//! A real cluster over QUIC on 127.0.0.1: `crux-node init`, then 3 authority,
//! 1 processor and 3 relay processes started with `crux-node start`, queried
//! with `crux-node query` and `crux-node status`. Every statistic in exact
//! mode equals tests/data/expected_stats.json; a noisy query charges the
//! budget; the CLI's JSON shape, exit codes, env overrides and errors; the
//! port blocks that parallel clusters listen on never overlap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::cluster::{Cluster, Layout, BIN};
use common::ports::PortBlock;
use common::{data_path, expected_columns, fraction};
use serde_json::Value;

/// 3 authorities, a processor and 3 relays over areas.xlsx, all running.
fn start(exact: bool) -> Cluster {
    let mut args = vec!["--header-rows", "3"];
    if exact {
        args.push("--exact");
    }
    let mut cluster =
        Cluster::init_layout(Layout::FULL, &data_path("areas.xlsx"), &args).with_node_env(&[("RUST_LOG", "info")]);
    for name in Layout::FULL.names() {
        cluster.start(&name);
    }
    let names = Layout::FULL.names();
    cluster.wait_up(&names.iter().map(String::as_str).collect::<Vec<_>>(), Duration::from_secs(60));
    cluster
}

/// `query STAT EXTRA.. --json LABELS..`, which must succeed.
fn query_json(cluster: &Cluster, stat: &str, extra: &[&str], labels: &[String]) -> Value {
    cluster.answer(stat, extra, labels).0.unwrap_or_else(|err| panic!("{stat} {labels:?}: {err}"))
}

#[test]
fn exact_statistics_over_quic_equal_the_expected_values() {
    let cluster = start(true);
    for (letter, labels, stats) in
        expected_columns().into_iter().filter(|(c, _, _)| ["C", "H", "N", "S"].contains(&c.as_str()))
    {
        let q = |stat: &str| query_json(&cluster, stat, &["--exact"], &labels);
        let count = q("count");
        // the documented JSON shape
        for key in ["statistic", "column", "value", "exact_value", "relays", "rows", "exact", "epsilon"] {
            assert!(count.get(key).is_some(), "missing {key} in {count}");
        }
        assert_eq!(count["statistic"], "count");
        assert_eq!(count["column"], serde_json::json!(labels));
        assert_eq!(count["relays"], 3);
        assert_eq!(count["exact"], true);
        assert_eq!(count["epsilon"], Value::Null);
        assert_eq!(count["value"].as_f64().unwrap() as i64, stats["count"].as_i64().unwrap(), "{letter}");
        assert_eq!(count["rows"].as_i64().unwrap(), stats["count"].as_i64().unwrap());
        assert_eq!(q("sum")["exact_value"], stats["sum"], "{letter} sum");
        assert_eq!(
            fraction(q("mean")["exact_value"].as_str().unwrap()),
            fraction(stats["mean_exact"].as_str().unwrap()),
            "{letter} mean"
        );
        let var = q("variance");
        assert_eq!(
            fraction(var["exact_value"].as_str().unwrap()),
            fraction(stats["variance_pop_exact"].as_str().unwrap()),
            "{letter}"
        );
        let std: f64 = stats["std_pop"].as_str().unwrap().parse().unwrap();
        assert!((q("stddev")["value"].as_f64().unwrap() - std).abs() <= 1e-6 * std.max(1.0), "{letter} stddev");
        assert_eq!(q("median")["exact_value"], stats["median_lower"], "{letter} median");
        assert_eq!(q("min")["exact_value"], stats["min"], "{letter} min");
        assert_eq!(q("max")["exact_value"], stats["max"], "{letter} max");
    }
    let land = vec!["Land".to_string()];
    let h = query_json(&cluster, "histogram", &["--exact", "--edges", "0,1000,10000"], &land);
    let counts: Vec<i64> = h["buckets"].as_array().unwrap().iter().map(|b| b["count"].as_i64().unwrap()).collect();
    assert_eq!(counts, vec![0, 393, 21, 0]);
    let q90 = query_json(&cluster, "quantile", &["--exact", "--quantile", "0.5"], &land);
    let median = expected_columns().into_iter().find(|(c, _, _)| c == "T").unwrap().2["median_lower"].clone();
    assert_eq!(q90["exact_value"], median, "quantile 0.5 is the lower median");
}

#[test]
fn cli_errors_status_overrides_and_budget() {
    let cluster = start(true);
    // status: every node up, exit 0, JSON lists 7 nodes with roles
    let out = cluster.cli(&["status", "--json", "--config"], &[]);
    assert!(out.status.success());
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = status["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 7);
    assert_eq!(nodes.iter().filter(|n| n["role"] == "relay" && n["up"] == true).count(), 3);
    let remaining = |s: &Value| -> Vec<String> {
        s["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["role"] == "authority")
            .map(|n| n["details"]["remaining_epsilon"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(remaining(&status), vec!["10", "10", "10"]);

    // a noisy query answers with a value and charges every authority's budget
    let labels = vec!["Population".to_string(), "All usual residents".to_string(), "2021".to_string()];
    let dp = query_json(&cluster, "mean", &["--epsilon", "0.5", "--bounds", "0:3000000"], &labels);
    assert_eq!(dp["exact"], false);
    assert_eq!(dp["epsilon"], 0.5);
    assert!(dp["value"].as_f64().unwrap().is_finite());
    let out = cluster.cli(&["status", "--json", "--config"], &[]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(remaining(&status), vec!["9.5", "9.5", "9.5"]);

    // a wrong label: non-zero exit, one line naming the label and a suggestion
    let out = cluster.cli(&["query", "sum", "--exact", "--config"], &["Populaton", "All usual residents", "2021"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: ") && err.trim_end().lines().count() == 1, "{err}");
    assert!(
        err.contains("Populaton")
            && err.contains("did you mean")
            && err.contains("Population / All usual residents / 2021"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    // noisy statistics other than count need bounds: a clear local error
    let out = cluster.cli(&["query", "sum", "--config"], &["Land"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bounds"));

    // env override: point the user at a port where no processor listens
    let out = cluster
        .cli_command(&["query", "count", "--exact", "--config"], &["Land"])
        .envs([
            ("CRUX__CLUSTER__PROCESSOR__ADDRESS", "127.0.0.1:9"),
            ("CRUX__TIMEOUTS__CONNECT_MS", "300"),
            ("CRUX__TIMEOUTS__RETRIES", "1"),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("processor") && err.contains("127.0.0.1:9"), "{err}");
    let out = cluster
        .cli_command(&["status", "--config"], &[])
        .envs([("CRUX__CLUSTER__PROCESSOR__ADDRESS", "127.0.0.1:9"), ("CRUX__TIMEOUTS__CONNECT_MS", "300")])
        .output()
        .unwrap();
    assert!(!out.status.success(), "status fails when the processor is unreachable");

    // an unknown statistic and a bad config path
    let out = cluster.cli(&["query", "mode", "--config"], &["Land"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("unknown statistic"));
    let out = Command::new(BIN)
        .args(["query", "count", "--exact", "--config", "/nonexistent/user.yaml", "Land"])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("/nonexistent/user.yaml"));
}

#[test]
fn config_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/areas.csv");
    // 3 authorities, a processor and 3 relays (init's defaults)
    let ports = PortBlock::reserve(7);
    let out = Command::new(BIN)
        .args(["init", "--out"])
        .arg(dir.path())
        .arg("--data")
        .arg(&data)
        .args(["--base-port", &ports.base().to_string(), "--header-rows", "3"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let start = |file: &str, env: &[(&str, &str)]| {
        let mut cmd = Command::new(BIN);
        cmd.args(["start", "--config"]).arg(dir.path().join(file));
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = start("relay-1.yaml", &[("CRUX__NODE__ROLE", "janitor")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role"), "{}", String::from_utf8_lossy(&out.stderr));
    // a port in use: hold the UDP port, then start a node on it
    let holder = UdpSocket::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().to_string();
    let out = start("authority-2.yaml", &[("CRUX__NODE__LISTEN", taken.as_str())]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success() && err.contains("cannot listen on") && err.contains(&taken), "{err}");
    // an unreadable data file
    let text = std::fs::read_to_string(dir.path().join("relay-3.yaml")).unwrap();
    std::fs::write(
        dir.path().join("relay-3.yaml"),
        text.replace(&data.display().to_string(), "/nonexistent/data.xlsx"),
    )
    .unwrap();
    let out = start("relay-3.yaml", &[]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/data.xlsx"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(dir.path().join("certs/relay-2.crt")).unwrap();
    let out = start("relay-1.yaml", &[]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success() && err.contains("relay-2.crt"), "{err}");
    let out = start("authority-1.yaml", &[("CRUX__NODE__LISTEN", "not-an-address")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("node.listen"));
}

/// Port blocks reserved at the same time (as parallel tests do) never
/// overlap, and a reserved block stays held until it is dropped.
#[test]
fn port_blocks_reserved_in_parallel_never_overlap() {
    let blocks: Vec<PortBlock> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8).map(|_| s.spawn(|| PortBlock::reserve(7))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, a) in blocks.iter().enumerate() {
        assert_eq!(a.ports().len(), 7);
        for b in &blocks[i + 1..] {
            assert!(a.ports().end <= b.base() || b.ports().end <= a.base(), "{:?} and {:?}", a.ports(), b.ports());
        }
        // the block's lock: no other thread or process can reserve it now;
        // it is outside the ports nodes use (QUIC and metrics)
        assert!(!a.ports().contains(&a.lock_port()));
        assert!(std::net::TcpListener::bind(("127.0.0.1", a.lock_port())).is_err());
        for port in a.ports() {
            std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        }
    }
    let lock = blocks[0].lock_port();
    drop(blocks);
    std::net::TcpListener::bind(("127.0.0.1", lock)).unwrap();
}
