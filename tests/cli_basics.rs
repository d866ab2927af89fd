//! Issue 10, operator basics, with the real `crux-node` binary: invalid
//! arguments exit 1 with `error: ...` (enum errors list the valid values),
//! names are checked at `init`, `init` does not replace a cluster without
//! `--force`, logs carry no colour when not on a terminal and can be JSON,
//! and SIGHUP does not kill a node.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{Cluster, Layout};

const BIN: &str = env!("CARGO_BIN_EXE_crux-node");

fn crux(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn init(dir: &std::path::Path, extra: &[&str]) -> Output {
    let data = common::data_path("areas.csv");
    let mut args = vec!["init", "--out", dir.to_str().unwrap(), "--data", data.to_str().unwrap(), "--header-rows", "3"];
    args.extend_from_slice(extra);
    crux(&args)
}

#[test]
fn invalid_arguments_exit_1_with_an_error_line() {
    for args in [
        vec!["query", "mode", "--config", "x.yaml", "Land"],
        vec!["--log-format", "yaml", "status", "--config", "x.yaml"],
        vec!["init", "--out", "/tmp/x", "--header-rows", "7"],
        vec!["frobnicate"],
    ] {
        let out = crux(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).starts_with("error:"), "{args:?}: {}", stderr(&out));
    }
    // an enum error lists the valid values
    let out = crux(&["--log-format", "yaml", "status", "--config", "x.yaml"]);
    assert!(stderr(&out).contains("text") && stderr(&out).contains("json"), "{}", stderr(&out));
    let out = crux(&["query", "mode", "--config", "x.yaml", "Land"]);
    assert!(stderr(&out).contains("median"), "{}", stderr(&out));
    // flags that do not apply, and unsorted edges, are refused before anything is sent
    for (args, want) in [
        (
            vec!["query", "sum", "--edges", "1,2", "--exact", "--config", "x.yaml", "Land"],
            "--edges does not apply to sum",
        ),
        (
            vec!["query", "median", "--quantile", "0.3", "--exact", "--config", "x.yaml", "Land"],
            "--quantile does not apply",
        ),
        (vec!["query", "mean", "--sample", "--exact", "--config", "x.yaml", "Land"], "--sample does not apply"),
        (vec!["query", "count", "--bounds", "0:9", "--config", "x.yaml", "Land"], "--bounds does not apply"),
        (
            vec!["query", "histogram", "--edges", "0,10,2.5", "--exact", "--config", "x.yaml", "Land"],
            "10 is followed by 2.5",
        ),
    ] {
        let out = crux(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).starts_with("error:") && stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    // help is not an error
    assert_eq!(crux(&["--help"]).status.code(), Some(0));
}

#[test]
fn init_checks_names_and_does_not_replace_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let out = init(dir.path(), &["--exact"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key_before = std::fs::read(dir.path().join("keys/authority-1.share")).unwrap();
    // a config value out of its enum names the valid ones
    let relay = dir.path().join("relay-1.yaml");
    let yaml = std::fs::read_to_string(&relay).unwrap();
    std::fs::write(&relay, yaml.replace("on_invalid: error", "on_invalid: ignore")).unwrap();
    let out = crux(&["start", "--config", relay.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("use `error`") && stderr(&out).contains("`skip`"), "{}", stderr(&out));
    std::fs::write(&relay, yaml).unwrap();
    // a second init into the same folder is refused and changes nothing
    let out = init(dir.path(), &["--exact"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already holds a cluster") && stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(std::fs::read(dir.path().join("keys/authority-1.share")).unwrap(), key_before);
    // with --force it is replaced
    let out = init(dir.path(), &["--exact", "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(std::fs::read(dir.path().join("keys/authority-1.share")).unwrap(), key_before);
    // user names become file and certificate names
    let out = crux(&["init", "user", "bob smith", "--out", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not valid"), "{}", stderr(&out));
    let out = crux(&["init", "user", "bob-smith", "--out", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A cluster (3 authorities, 3 relays, exact mode allowed) whose nodes run
/// with default settings (no RUST_LOG, no timeout overrides).
fn default_cluster(layout: Layout) -> Cluster {
    Cluster::init_layout(layout, &common::data_path("areas.csv"), &["--header-rows", "3", "--exact"])
}

/// Starts `authority-1` of a fresh cluster with `extra` global flags, sends
/// it `signals` (then SIGTERM), and returns its stderr.
fn run_node(extra: &[&str], signals: &[&str]) -> String {
    let cluster = default_cluster(Layout::FULL);
    let mut node = cluster.node_command("authority-1", extra).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert!(node.try_wait().unwrap().is_none(), "the node did not start");
    let pid = node.id().to_string();
    for signal in signals {
        assert!(Command::new("kill").args([*signal, pid.as_str()]).status().unwrap().success());
        std::thread::sleep(Duration::from_millis(500));
        assert!(node.try_wait().unwrap().is_none(), "{signal} killed the node");
    }
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no graceful stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    stderr(&node.wait_with_output().unwrap())
}

#[test]
fn logs_have_no_colour_off_a_terminal_and_can_be_json() {
    let text = run_node(&[], &[]);
    assert!(text.contains("stopped"), "{text}");
    assert!(!text.contains('\u{1b}'), "ANSI escape codes in a log that is not a terminal: {text}");
    let json = run_node(&["--log-format", "json"], &[]);
    let lines: Vec<&str> = json.lines().collect();
    assert!(lines.len() >= 2, "{json}");
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
}

#[test]
fn sighup_does_not_kill_a_node() {
    let log = run_node(&[], &["-HUP", "-HUP"]);
    assert!(log.contains("SIGHUP received and ignored"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}

/// A node that is down is reported within 2 s with the default timeouts:
/// `status` names it, and a query leaves it out naming it.
#[test]
fn a_down_node_is_reported_within_two_seconds() {
    let mut cluster = default_cluster(Layout { dlog_bits: 12, dlog_range_bits: 28, ..Layout::FULL });
    // every node but relay-3, with default settings (no timeout overrides)
    cluster.start_all(&["authority-1", "authority-2", "authority-3", "relay-1", "relay-2", "processor"]);
    let user = cluster.path("user.yaml");
    let user = user.to_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = crux(&["status", "--config", user]);
        if String::from_utf8_lossy(&out.stdout).contains("relay-2        relay") {
            break;
        }
        assert!(Instant::now() < deadline, "the cluster did not come up: {}", stderr(&out));
        std::thread::sleep(Duration::from_millis(200));
    }
    let started = Instant::now();
    let out = crux(&["status", "--config", user]);
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "status exits non-zero with a node down");
    assert!(text.lines().any(|l| l.starts_with("relay-3") && l.contains("DOWN")), "{text}");
    assert!(took < Duration::from_secs(2), "status took {took:?} with a node down");
    println!("status with relay-3 down: {took:?}");
    let started = Instant::now();
    let out = crux(&["query", "count", "--exact", "--json", "--config", user, "Land"]);
    let took = started.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["missing_relays"][0]["relay"], "relay-3", "{answer}");
    assert!(took < Duration::from_secs(3), "a query with a relay down took {took:?}");
    println!("count with relay-3 down: {took:?}");
}
