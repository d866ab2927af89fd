//! A multi-host deployment, the way docs/deploy.md tells it, with real
//! `crux-node` processes on 127.0.0.1: every node makes its own folder
//! (`init authority|processor|relay|user NAME`), the admin assembles the
//! public cards into cluster.yaml, every node joins it, the 3 authorities
//! run `keygen --threshold 2` at the same time, the committee file is
//! copied to the processor and relays, and an exact count and sum of
//! tests/data/areas.xlsx column H (relay-1 serves data rows 1-207, relay-2
//! rows 208-414: `--shard 1/2` and `2/2`; tests/data/README.md, N = 2)
//! equal 414 and 14134681 (5120014 + 9014667). No folder ever holds
//! another node's private key; key files are 0600. Bad cards and joins
//! fail with a clear error and a non-zero exit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]
#![cfg(unix)]

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{node_up, parse_answer, BIN, NODE_ENV};
use common::data_path;
use common::ports::PortBlock;

const AUTHORITIES: [&str; 3] = ["authority-1", "authority-2", "authority-3"];
const RELAYS: [&str; 2] = ["relay-1", "relay-2"];
const USER: &str = "alice";
const LABELS: [&str; 3] = ["Population", "All usual residents", "2021"];

fn crux(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env("RUST_LOG", "warn").output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn ok(out: Output, what: &str) -> Output {
    assert!(out.status.success(), "{what} failed: {}", stderr(&out));
    out
}

/// `out` failed (status != 0) with one `error:` line containing every `want`.
fn refused(out: &Output, want: &[&str], what: &str) {
    assert_ne!(out.status.code(), Some(0), "{what} succeeded");
    let err = stderr(out);
    assert!(err.starts_with("error:"), "{what}: {err}");
    for w in want {
        assert!(err.contains(w), "{what}: {err:?} does not say {w:?}");
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The hosts of this test: one folder per node, node processes killed on drop.
struct Hosts {
    root: tempfile::TempDir,
    ports: PortBlock,
    nodes: BTreeMap<String, Child>,
}

impl Hosts {
    fn dir(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    fn config(&self, name: &str) -> PathBuf {
        self.dir(name).join("node.yaml")
    }

    fn port(&self, i: u16) -> String {
        (self.ports.base() + i).to_string()
    }

    fn start(&mut self, name: &str) {
        let log = File::create(self.root.path().join(format!("{name}.log"))).unwrap();
        let child = Command::new(BIN)
            .args(["start", "--config", s(&self.config(name))])
            .env_remove("RUST_LOG")
            .envs(NODE_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes.insert(name.to_string(), child);
    }

    fn user_cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .args(["--config", s(&self.config(USER))])
            .envs([
                ("CRUX__TIMEOUTS__CONNECT_MS", "1000"),
                ("CRUX__TIMEOUTS__REQUEST_MS", "20000"),
                ("RUST_LOG", "warn"),
            ])
            .output()
            .unwrap()
    }

    fn logs(&self) -> String {
        let mut text = String::new();
        for name in self.nodes.keys() {
            let log = std::fs::read_to_string(self.root.path().join(format!("{name}.log"))).unwrap_or_default();
            text.push_str(&format!("--- {name}\n{log}\n"));
        }
        text
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for child in self.nodes.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Step 1: each node makes its own folder; returns the card files.
fn init_every_node(h: &Hosts) -> Vec<PathBuf> {
    let data = data_path("areas.xlsx");
    let node = |role: &str, name: &str, port: u16, extra: &[&str]| {
        let (dir, port) = (h.dir(name), h.port(port));
        let mut args = vec!["init", role, name, "--out", s(&dir), "--host", "127.0.0.1", "--port", &port];
        args.extend_from_slice(extra);
        let out = ok(crux(&args), &format!("init {role} {name}"));
        assert!(String::from_utf8_lossy(&out.stdout).contains("fingerprint"), "init {name} prints no fingerprint");
    };
    node("processor", "processor", 0, &["--dlog-bits", "14", "--dlog-range-bits", "30"]);
    for (i, a) in (1..).zip(AUTHORITIES) {
        node("authority", a, i, &["--exact"]);
    }
    for (j, (r, shard)) in (4..).zip(RELAYS.into_iter().zip(["1/2", "2/2"])) {
        node("relay", r, j, &["--data", s(&data), "--header-rows", "3", "--shard", shard]);
    }
    ok(crux(&["init", "user", USER, "--out", s(&h.dir(USER))]), "init user");
    let names = std::iter::once("processor").chain(AUTHORITIES).chain(RELAYS).chain([USER]);
    // the admin receives the cards (public) and nothing else
    let admin = h.dir("admin");
    std::fs::create_dir_all(&admin).unwrap();
    names
        .map(|n| {
            let card = admin.join(format!("{n}.card.yaml"));
            std::fs::copy(h.dir(n).join(format!("{n}.card.yaml")), &card).unwrap();
            card
        })
        .collect()
}

/// Bad cards: unknown role, duplicate names, a missing file, a private key.
fn assemble_refuses_bad_cards(h: &Hosts, cards: &[PathBuf]) {
    let admin = h.dir("admin");
    let assemble = |extra: &[&Path]| {
        let mut args = vec!["init", "assemble", "--dataset", "areas"];
        args.extend(cards.iter().map(|c| s(c)));
        args.extend(extra.iter().map(|c| s(c)));
        crux(&args)
    };
    let text = std::fs::read_to_string(&cards[1]).unwrap();
    let odd = admin.join("odd.card.yaml");
    std::fs::write(&odd, text.replace("role: authority", "role: auditor").replace("authority-1", "auditor-1")).unwrap();
    refused(&assemble(&[&odd]), &["odd.card.yaml", "role \"auditor\"", "authority, processor, relay, user"], "role");
    refused(&assemble(&[&cards[1]]), &["same name", "\"authority-1\""], "duplicate name");
    let copied = admin.join("copy.card.yaml");
    std::fs::write(&copied, text.replace("name: authority-1", "name: authority-9")).unwrap();
    refused(&assemble(&[&copied]), &["same certificate", "copy.card.yaml"], "duplicate certificate");
    refused(&assemble(&[&admin.join("relay-3.card.yaml")]), &["relay-3.card.yaml", "cannot read card"], "missing card");
    let key = std::fs::read_to_string(h.dir("authority-1").join("keys/authority-1.key")).unwrap();
    let leaked = admin.join("leaked.card.yaml");
    let indented: String = key.lines().map(|l| format!("  {l}\n")).collect();
    std::fs::write(&leaked, format!("format: crux-card/v1\nname: leaked\nrole: user\ncertificate: |\n{indented}"))
        .unwrap();
    refused(&assemble(&[&leaked]), &["holds a private key"], "a card with a key");
    for f in [odd, copied, leaked] {
        std::fs::remove_file(f).unwrap();
    }
    let out = crux(&["init", "assemble", s(&cards[0]), s(&cards[1])]);
    refused(&out, &["--dataset"], "no dataset");
}

/// Step 2: the admin assembles cluster.yaml; every node joins it.
fn assemble_and_join(h: &Hosts, cards: &[PathBuf]) -> PathBuf {
    let cluster = h.dir("admin").join("cluster.yaml");
    let mut args = vec!["init", "assemble", "--dataset", "areas", "--min-relays", "2", "--out", s(&cluster)];
    args.extend(cards.iter().map(|c| s(c)));
    let out = ok(crux(&args), "assemble");
    assert!(stderr(&out).contains("3 authorities, 2 relays (a query needs 2), 1 user"), "{}", stderr(&out));
    // a cluster file without relay-2: relay-2 cannot join it
    let partial = h.dir("admin").join("partial.yaml");
    let mut args = vec!["init", "assemble", "--dataset", "areas", "--min-relays", "1", "--out", s(&partial)];
    args.extend(cards.iter().filter(|c| !s(c).contains("relay-2")).map(|c| s(c)));
    ok(crux(&args), "assemble without relay-2");
    let before = std::fs::read_to_string(h.config("relay-2")).unwrap();
    let out = crux(&["init", "join", "--config", s(&h.config("relay-2")), "--cluster", s(&partial)]);
    refused(&out, &["does not name this node \"relay-2\"", "relay-2.card.yaml"], "join a cluster without it");
    assert_eq!(std::fs::read_to_string(h.config("relay-2")).unwrap(), before, "a refused join changed node.yaml");
    let out = crux(&["init", "join", "--config", s(&h.config("relay-2")), "--cluster", s(&h.dir("nowhere.yaml"))]);
    refused(&out, &["cannot read cluster file", "nowhere.yaml"], "join a missing cluster file");
    let names = std::iter::once("processor").chain(AUTHORITIES).chain(RELAYS).chain([USER]);
    for name in names {
        ok(crux(&["init", "join", "--config", s(&h.config(name)), "--cluster", s(&cluster)]), &format!("join {name}"));
    }
    cluster
}

/// Step 3: keygen on the 3 authorities at once (t = 2); the committee file to the others.
fn keygen(h: &Hosts) {
    let children: Vec<(&str, Child)> = AUTHORITIES
        .iter()
        .map(|a| {
            let child = Command::new(BIN)
                .args(["keygen", "--threshold", "2", "--phase-timeout", "20", "--config", s(&h.config(a))])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (*a, child)
        })
        .collect();
    for (a, child) in children {
        ok(child.wait_with_output().unwrap(), &format!("keygen on {a}"));
    }
    let committee = std::fs::read(h.dir("authority-1").join("cluster-key.bin")).unwrap();
    for a in AUTHORITIES {
        assert_eq!(std::fs::read(h.dir(a).join("cluster-key.bin")).unwrap(), committee, "{a}'s committee file differs");
    }
    let json: serde_json::Value = serde_json::from_slice(&committee).unwrap();
    assert_eq!(json["threshold"], 2);
    for n in std::iter::once("processor").chain(RELAYS) {
        std::fs::write(h.dir(n).join("cluster-key.bin"), &committee).unwrap();
    }
}

/// Every private file of every folder: (folder, file, bytes).
fn private_files(h: &Hosts) -> Vec<(String, PathBuf, Vec<u8>)> {
    let names = std::iter::once("processor").chain(AUTHORITIES).chain(RELAYS).chain([USER]);
    let mut found = Vec::new();
    for n in names {
        for entry in std::fs::read_dir(h.dir(n).join("keys")).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            found.push((n.to_string(), path, bytes));
        }
    }
    found
}

/// Every file under `dir`, recursively (LMDB files included).
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(all_files(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// 32 bytes from the middle of a secret file (PEM body, hex seed or share bytes).
fn middle(secret: &[u8]) -> &[u8] {
    assert!(secret.len() >= 48, "a key file of {} bytes", secret.len());
    &secret[secret.len() / 2 - 16..secret.len() / 2 + 16]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Each folder holds only its own private keys, 0600 in a 0700 `keys/`;
/// no file anywhere else (cards, configs, certificates, the admin's
/// folder, another node's folder) contains a private key's bytes.
fn check_secrets(h: &Hosts) {
    let secrets = private_files(h);
    for (node, path, _) in &secrets {
        let file = path.file_name().unwrap().to_str().unwrap();
        assert!(file.starts_with(&format!("{node}.")), "{node}'s keys/ holds {file}");
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
        let dir_mode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700, "{node}/keys has mode {dir_mode:o}");
    }
    // what each node holds: its key, plus an identity (relays) or a share (authorities)
    let count = |n: &str| secrets.iter().filter(|(node, _, _)| node == n).count();
    assert!(AUTHORITIES.iter().all(|a| count(a) == 2) && RELAYS.iter().all(|r| count(r) == 2));
    assert_eq!((count("processor"), count(USER)), (1, 1));
    for file in all_files(h.root.path()) {
        let bytes = std::fs::read(&file).unwrap();
        for (node, path, secret) in &secrets {
            if *path == file {
                continue;
            }
            assert!(!contains(&bytes, middle(secret)), "{} contains {node}'s {}", file.display(), path.display());
        }
        let text = String::from_utf8_lossy(&bytes);
        if text.contains("PRIVATE KEY") {
            assert!(secrets.iter().any(|(_, p, _)| *p == file), "{} holds a private key", file.display());
        }
    }
}

fn exact(h: &Hosts, stat: &str) -> serde_json::Value {
    let mut args = vec!["query", stat, "--exact", "--json"];
    args.extend(LABELS);
    parse_answer(&h.user_cli(&args)).unwrap_or_else(|e| panic!("{stat}: {e}\n{}", h.logs()))
}

#[test]
fn per_node_init_assemble_join_keygen_and_exact_answers() {
    let started = Instant::now();
    let mut h = Hosts { root: tempfile::tempdir().unwrap(), ports: PortBlock::reserve(6), nodes: BTreeMap::new() };
    let cards = init_every_node(&h);
    // a node folder is never replaced
    let again = crux(&[
        "init",
        "authority",
        "authority-1",
        "--out",
        s(&h.dir("authority-1")),
        "--host",
        "127.0.0.1",
        "--port",
        "7",
    ]);
    refused(&again, &["already holds a node"], "init into a node folder");
    assemble_refuses_bad_cards(&h, &cards);
    assemble_and_join(&h, &cards);
    keygen(&h);
    check_secrets(&h);

    let serving: Vec<&str> = std::iter::once("processor").chain(AUTHORITIES).chain(RELAYS).collect();
    for name in &serving {
        h.start(name);
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let status = h.user_cli(&["status", "--json"]);
        let json: Option<serde_json::Value> = serde_json::from_slice(&status.stdout).ok();
        if json.is_some_and(|s| serving.iter().all(|n| node_up(&s, n))) {
            break;
        }
        assert!(Instant::now() < deadline, "the cluster did not come up\n{}", h.logs());
        std::thread::sleep(Duration::from_millis(250));
    }
    let count = exact(&h, "count");
    assert_eq!(count["exact_value"], "414", "{count}");
    let sum = exact(&h, "sum");
    assert_eq!(sum["exact_value"], "14134681", "{sum}");
    assert_eq!(sum["contributing_relays"].as_array().unwrap().len(), 2, "{sum}");
    check_secrets(&h);
    eprintln!("deployment test took {:?}", started.elapsed());
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// deploy/: there is no Docker engine or systemd here to run them, so check
/// what can be checked: docker-compose.yml is valid YAML with the cluster's
/// services, each on its own volume, built from deploy/Dockerfile, with
/// bind mounts that exist; every path the Dockerfile copies exists; each
/// systemd unit starts its role's folder with the hardening settings.
#[test]
fn deploy_files_are_valid_and_name_paths_that_exist() {
    let text = std::fs::read_to_string(repo("deploy/docker-compose.yml")).unwrap();
    let mut compose: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    compose.apply_merge().unwrap();
    let services = compose["services"].as_mapping().unwrap();
    let names: Vec<&str> = services.keys().map(|k| k.as_str().unwrap()).collect();
    let mut want = vec!["processor"];
    want.extend(AUTHORITIES);
    want.extend(["relay-1", "relay-2", "relay-3", "user"]);
    assert_eq!(names, want);
    let deploy = repo("deploy");
    for (name, service) in services {
        let name = name.as_str().unwrap();
        let context = deploy.join(service["build"]["context"].as_str().unwrap());
        assert!(context.join(service["build"]["dockerfile"].as_str().unwrap()).is_file(), "{name}: no Dockerfile");
        let volumes: Vec<&str> =
            service["volumes"].as_sequence().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert!(volumes.contains(&format!("{name}:/var/lib/crux").as_str()), "{name} has not its own volume");
        for bind in volumes.iter().filter(|v| v.starts_with('.')) {
            let source = bind.split(':').next().unwrap();
            assert!(deploy.join(source).exists(), "{name} mounts {source}, which does not exist");
        }
        assert!(compose["volumes"].get(name).is_some(), "no volume {name}");
    }
    let dockerfile = std::fs::read_to_string(repo("deploy/Dockerfile")).unwrap();
    assert!(dockerfile.contains("cargo build --release --locked --bin crux-node"));
    assert!(dockerfile.contains("FROM debian:") && dockerfile.contains("-slim"));
    let copies: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from="))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words[1..words.len() - 1].to_vec()
        })
        .collect();
    assert!(copies.contains(&"src") && copies.contains(&"Cargo.lock"), "{copies:?}");
    for path in copies {
        assert!(repo(path).exists(), "the Dockerfile copies {path}, which does not exist");
    }
    for role in ["authority", "processor", "relay"] {
        let unit = std::fs::read_to_string(repo(&format!("deploy/crux-{role}.service"))).unwrap();
        let start = format!("ExecStart=/usr/local/bin/crux-node start --config /var/lib/crux-{role}/node.yaml");
        assert!(unit.contains(&start), "crux-{role}.service");
        for setting in [
            "User=crux",
            "ProtectSystem=strict",
            &format!("ReadWritePaths=/var/lib/crux-{role}"),
            "NoNewPrivileges=yes",
            "Restart=on-failure",
            "CapabilityBoundingSet=\n",
        ] {
            assert!(unit.contains(setting), "crux-{role}.service lacks {setting:?}");
        }
    }
}
