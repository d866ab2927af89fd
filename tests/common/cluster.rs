//! Real `crux-node` processes for network tests: `crux-node init` writes a
//! cluster folder into a temporary directory, on a `PortBlock` reserved for
//! the cluster's lifetime; nodes are started from it (stderr to
//! `logs/<name>.log`), stopped, signalled and restarted, and killed on drop;
//! the CLI (`status`, `query`) runs against its `user.yaml`. The one set of
//! process helpers every `tests/network_*.rs` and `tests/cli_basics.rs`
//! uses; what a test asserts stays in the test.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crux::config::NodeConfig;
use serde_json::Value;

use super::data_path;
use super::ports::PortBlock;

pub const BIN: &str = env!("CARGO_BIN_EXE_crux-node");

/// Short timeouts for the nodes of `Cluster::init` (config overrides by environment).
pub const NODE_ENV: [(&str, &str); 6] = [
    ("CRUX__TIMEOUTS__CONNECT_MS", "500"),
    ("CRUX__TIMEOUTS__REQUEST_MS", "10000"),
    ("CRUX__TIMEOUTS__QUERY_MS", "30000"),
    ("CRUX__TIMEOUTS__RETRIES", "1"),
    ("CRUX__TIMEOUTS__RETRY_BACKOFF_MS", "50"),
    ("RUST_LOG", "info"),
];

/// Node timeouts for tests that kill nodes: connect 500 ms, request 3 s,
/// one retry, query 15 s, so failures show quickly.
pub const FAST_FAIL_NODE_ENV: [(&str, &str); 5] = [
    ("CRUX__TIMEOUTS__CONNECT_MS", "500"),
    ("CRUX__TIMEOUTS__REQUEST_MS", "3000"),
    ("CRUX__TIMEOUTS__RETRIES", "1"),
    ("CRUX__TIMEOUTS__QUERY_MS", "15000"),
    ("RUST_LOG", "info"),
];
/// The user waits longer than the processor's own timeouts, so the
/// processor's error (naming the node at fault) reaches it.
pub const FAST_FAIL_USER_ENV: [(&str, &str); 3] =
    [("CRUX__TIMEOUTS__CONNECT_MS", "500"), ("CRUX__TIMEOUTS__REQUEST_MS", "25000"), ("CRUX__TIMEOUTS__RETRIES", "1")];

/// What `crux-node init` is asked to write: how many nodes, and the
/// processor's discrete-log table.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub authorities: u32,
    pub relays: u32,
    pub dlog_bits: u32,
    pub dlog_range_bits: u32,
}

impl Layout {
    /// 2 authorities (n-of-n), 3 relays, a 2^12 table for |m| < 2^28.
    pub const SMALL: Layout = Layout { authorities: 2, relays: 3, dlog_bits: 12, dlog_range_bits: 28 };
    /// 3 authorities, 3 relays, a 2^14 table for |m| < 2^30.
    pub const FULL: Layout = Layout { authorities: 3, relays: 3, dlog_bits: 14, dlog_range_bits: 30 };

    /// Every node's name, the processor among them.
    pub fn names(&self) -> Vec<String> {
        let authorities = (1..=self.authorities).map(|i| format!("authority-{i}"));
        let relays = (1..=self.relays).map(|j| format!("relay-{j}"));
        authorities.chain(std::iter::once("processor".to_string())).chain(relays).collect()
    }

    /// Ports the nodes listen on: the processor, the authorities, the relays.
    pub fn ports(&self) -> u16 {
        u16::try_from(1 + self.authorities + self.relays).unwrap()
    }
}

fn owned(env: &[(&str, &str)]) -> Vec<(String, String)> {
    env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A cluster folder written by `crux-node init`, its reserved ports and the
/// node processes started from it; every process is killed on drop.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub ports: PortBlock,
    /// running (or stopped, not yet waited for) node processes by name
    pub nodes: BTreeMap<String, Child>,
    /// environment of every node process (replaces the test's RUST_LOG)
    node_env: Vec<(String, String)>,
    /// environment of one node, kept for its restarts
    node_extra_env: BTreeMap<String, Vec<(String, String)>>,
    /// environment of the CLI commands run with `cli`
    user_env: Vec<(String, String)>,
    /// nodes sent SIGSTOP and not SIGCONT: resumed before they are killed
    paused: BTreeSet<String>,
}

impl Cluster {
    /// `Layout::SMALL` over areas.xlsx (3 header rows), nodes with `NODE_ENV`.
    pub fn init(extra: &[&str]) -> Cluster {
        let mut args = vec!["--header-rows", "3"];
        args.extend_from_slice(extra);
        Cluster::init_with_data(&data_path("areas.xlsx"), &args)
    }

    /// `Layout::SMALL` over another data file, nodes with `NODE_ENV`.
    pub fn init_with_data(data: &Path, extra: &[&str]) -> Cluster {
        Cluster::init_layout(Layout::SMALL, data, extra).with_node_env(&NODE_ENV)
    }

    /// `crux-node init --data DATA` for `layout` on a reserved port block,
    /// with `extra` flags; nodes get no environment beyond the test's (minus
    /// RUST_LOG) until `with_node_env`.
    pub fn init_layout(layout: Layout, data: &Path, extra: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let ports = PortBlock::reserve(layout.ports());
        let out = Command::new(BIN)
            .arg("init")
            .arg("--out")
            .arg(dir.path())
            .arg("--data")
            .arg(data)
            .args(["--authorities", &layout.authorities.to_string()])
            .args(["--relays", &layout.relays.to_string()])
            .args(["--dlog-bits", &layout.dlog_bits.to_string()])
            .args(["--dlog-range-bits", &layout.dlog_range_bits.to_string()])
            .args(["--base-port", &ports.base().to_string()])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        Cluster {
            dir,
            ports,
            nodes: BTreeMap::new(),
            node_env: Vec::new(),
            node_extra_env: BTreeMap::new(),
            user_env: Vec::new(),
            paused: BTreeSet::new(),
        }
    }

    /// Every node process gets `env`.
    pub fn with_node_env(mut self, env: &[(&str, &str)]) -> Cluster {
        self.node_env = owned(env);
        self
    }

    /// Every command run with `cli` gets `env`.
    pub fn with_user_env(mut self, env: &[(&str, &str)]) -> Cluster {
        self.user_env = owned(env);
        self
    }

    /// `node` gets `key=value` now and on every restart.
    pub fn set_node_env(&mut self, node: &str, key: &str, value: &str) {
        self.node_extra_env.entry(node.to_string()).or_default().push((key.to_string(), value.to_string()));
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// `crux-node GLOBAL.. start --config NAME.yaml` with the node's
    /// environment, stdin and stdout null; the caller spawns it.
    pub fn node_command(&self, name: &str, global: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(global).arg("start").arg("--config").arg(self.path(&format!("{name}.yaml")));
        cmd.env_remove("RUST_LOG").envs(self.node_env.iter().map(|(k, v)| (k, v)));
        cmd.envs(self.node_extra_env.get(name).into_iter().flatten().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        cmd
    }

    /// Starts (or restarts) a node; its stderr is appended to logs/NAME.log.
    pub fn start(&mut self, name: &str) {
        self.start_with_env(name, &[]);
    }

    /// Starts a node with extra environment variables for this start only.
    pub fn start_with_env(&mut self, name: &str, env: &[(&str, &str)]) {
        let log = File::options().create(true).append(true).open(self.log_path(name)).unwrap();
        let child = self.node_command(name, &[]).envs(env.iter().copied()).stderr(log).spawn().unwrap();
        if let Some(mut old) = self.nodes.insert(name.to_string(), child) {
            let _ = old.kill();
            let _ = old.wait();
        }
        self.paused.remove(name);
    }

    pub fn start_all(&mut self, names: &[&str]) {
        for name in names {
            self.start(name);
        }
    }

    pub fn child(&self, name: &str) -> &Child {
        self.nodes.get(name).unwrap_or_else(|| panic!("{name} is not running"))
    }

    pub fn child_mut(&mut self, name: &str) -> &mut Child {
        self.nodes.get_mut(name).unwrap_or_else(|| panic!("{name} is not running"))
    }

    /// `kill -SIG` to a node (STOP, CONT, TERM, HUP...).
    pub fn signal(&mut self, name: &str, sig: &str) {
        let pid = self.child(name).id().to_string();
        let status = Command::new("kill").arg(format!("-{sig}")).arg(pid).status().unwrap();
        assert!(status.success(), "kill -{sig} {name} failed");
        match sig {
            "STOP" => self.paused.insert(name.to_string()),
            "CONT" => self.paused.remove(name),
            _ => false,
        };
    }

    /// Waits up to `within` for a node to exit.
    pub fn wait_exit(&mut self, name: &str, within: Duration) -> Option<ExitStatus> {
        let child = self.child_mut(name);
        let started = Instant::now();
        while started.elapsed() < within {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// SIGKILL (a crash); the node is forgotten.
    pub fn kill(&mut self, name: &str) {
        self.stop(name, false);
    }

    /// Stops a node: SIGKILL (a crash) or SIGTERM (graceful shutdown, within 10 s).
    pub fn stop(&mut self, name: &str, graceful: bool) {
        if graceful {
            self.signal(name, "TERM");
            assert!(self.wait_exit(name, Duration::from_secs(10)).is_some(), "{name} did not stop on SIGTERM");
        } else {
            let child = self.child_mut(name);
            child.kill().unwrap();
            child.wait().unwrap();
        }
        self.nodes.remove(name);
        self.paused.remove(name);
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.path(&format!("logs/{name}.log"))
    }

    /// What a node wrote to stderr so far (all its starts).
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_path(name)).unwrap_or_default()
    }

    /// Every node's log, one after the other.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(self.path("logs")).unwrap() {
            let path = entry.unwrap().path();
            text.push_str(&format!("--- {}\n{}\n", path.display(), std::fs::read_to_string(&path).unwrap_or_default()));
        }
        text
    }

    /// A node's config as a client in this test uses it: short timeouts.
    pub fn config(&self, name: &str) -> NodeConfig {
        let mut cfg = NodeConfig::load(&self.path(&format!("{name}.yaml"))).unwrap();
        cfg.timeouts.connect = Duration::from_millis(500);
        cfg.timeouts.request = Duration::from_secs(10);
        cfg.timeouts.retries = 2;
        cfg.timeouts.retry_backoff = Duration::from_millis(50);
        cfg
    }

    /// `crux-node status` with a user config; short timeouts.
    pub fn status(&self, user_config: &Path) -> Output {
        Command::new(BIN)
            .arg("status")
            .arg("--config")
            .arg(user_config)
            .envs([("CRUX__TIMEOUTS__CONNECT_MS", "1000"), ("CRUX__TIMEOUTS__RETRIES", "0"), ("RUST_LOG", "warn")])
            .output()
            .unwrap()
    }

    /// `crux-node query ...` with a user config; short timeouts.
    pub fn query(&self, user_config: &Path, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("query")
            .args(args)
            .arg("--config")
            .arg(user_config)
            .envs([("CRUX__TIMEOUTS__CONNECT_MS", "1000"), ("CRUX__TIMEOUTS__RETRIES", "0"), ("RUST_LOG", "warn")])
            .output()
            .unwrap()
    }

    /// `crux-node ARGS.. DIR/user.yaml TAIL..` with the user environment:
    /// `args` ends with `--config`.
    pub fn cli_command(&self, args: &[&str], tail: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args).arg(self.path("user.yaml")).args(tail);
        cmd.envs(self.user_env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    pub fn cli(&self, args: &[&str], tail: &[&str]) -> Output {
        self.cli_command(args, tail).output().unwrap()
    }

    /// `query STAT EXTRA.. --json LABELS..`: (Ok(the JSON answer) |
    /// Err(stderr), how long it took).
    pub fn answer(&self, stat: &str, extra: &[&str], labels: &[String]) -> (Result<Value, String>, Duration) {
        let mut tail: Vec<&str> = extra.to_vec();
        tail.push("--json");
        tail.extend(labels.iter().map(|s| s.as_str()));
        let started = Instant::now();
        let out = self.cli(&["query", stat, "--config"], &tail);
        let elapsed = started.elapsed();
        (parse_answer(&out), elapsed)
    }

    /// `status --json` as the user sees it; None when it printed no JSON.
    pub fn status_json(&self) -> Option<Value> {
        let out = self.cli(&["status", "--json", "--config"], &[]);
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Polls `status --json` every 200 ms until every node in `names` is up.
    pub fn wait_up(&self, names: &[&str], within: Duration) {
        let started = Instant::now();
        loop {
            if let Some(s) = self.status_json() {
                if names.iter().all(|n| node_up(&s, n)) {
                    return;
                }
            }
            if started.elapsed() > within {
                let logs: String = names.iter().map(|n| format!("--- {n}\n{}", self.log(n))).collect();
                panic!("nodes {names:?} not up after {within:?}\n{logs}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Is `name` up in a `status --json` answer?
pub fn node_up(status: &Value, name: &str) -> bool {
    status["nodes"].as_array().into_iter().flatten().any(|n| n["name"] == name && n["up"] == true)
}

/// A CLI run's JSON answer, or its stderr when it failed.
pub fn parse_answer(out: &Output) -> Result<Value, String> {
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for name in &self.paused {
            if let Some(child) = self.nodes.get(name) {
                let _ = Command::new("kill").arg("-CONT").arg(child.id().to_string()).stderr(Stdio::null()).status();
            }
        }
        for child in self.nodes.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
