//! Committee changes on a running cluster of real `crux-node` processes on
//! 127.0.0.1 (keys from the real keygen):
//! - a 6th authority is added to 5 with t = 3 while a load of queries runs:
//!   no query fails or is wrong, the relays keep running (same processes),
//!   the new member decrypts, and its budget is the others' (the ledger
//!   handed over);
//! - an authority is removed: the committee answers without it, and its
//!   share is erased after the grace period;
//! - a change approved by fewer than t, or altered after approval, is refused;
//! - the epoch is rotated (3 authorities, t = 2): a new joint key, the
//!   relays encrypt to it, budgets carry over, and a ciphertext made before
//!   cannot be decrypted with the current shares; then a member that is
//!   down is removed by the other two (`--without`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::cluster::{Cluster, Layout, BIN, FAST_FAIL_NODE_ENV, FAST_FAIL_USER_ENV};
use common::ports::PortBlock;
use common::{data_path, expected_columns};
use crux::crypto::{combine_batches, BatchDecryption, EncryptionKey, KeyShare};
use crux::data::keystore::parse_committee;
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::Scalar;
use serde_json::Value;

const GRACE_SECS: &str = "3";

fn setup(authorities: u32, threshold: &str) -> Cluster {
    let layout = Layout { authorities, relays: 2, dlog_bits: 14, dlog_range_bits: 30 };
    let args = ["--min-relays", "2", "--exact", "--header-rows", "3", "--threshold", threshold];
    let mut cluster = Cluster::init_layout(layout, &data_path("areas.xlsx"), &args)
        .with_node_env(&FAST_FAIL_NODE_ENV)
        .with_user_env(&FAST_FAIL_USER_ENV);
    let names = layout.names();
    for name in &names {
        cluster.set_node_env(name, "CRUX_COMMITTEE_GRACE_SECS", GRACE_SECS);
    }
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    cluster.start_all(&all);
    cluster.wait_up(&all, Duration::from_secs(60));
    cluster
}

/// `crux-node committee ARGS..` run as an authority's operator.
fn committee(cluster: &Cluster, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("committee")
        .args(args)
        .current_dir(cluster.dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn config(cluster: &Cluster, name: &str) -> String {
    cluster.path(&format!("{name}.yaml")).display().to_string()
}

/// `--ceremony NAME=127.0.0.1:PORT` for each participant, from `block`.
fn ceremony(block: &PortBlock, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .zip(block.ports())
        .flat_map(|(name, port)| ["--ceremony".to_string(), format!("{name}=127.0.0.1:{port}")])
        .collect()
}

/// Runs `committee apply` for every participant at the same time.
fn apply(cluster: &Cluster, change: &Path, names: &[&str]) -> Vec<Output> {
    let children: Vec<_> = names
        .iter()
        .map(|name| {
            Command::new(BIN)
                .args(["committee", "apply", "--phase-timeout", "20", "--config", &config(cluster, name)])
                .arg(change)
                .env("RUST_LOG", "info")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children.into_iter().map(|c| c.wait_with_output().unwrap()).collect()
}

/// The processor's epoch, from `status --json`.
fn processor_epoch(cluster: &Cluster) -> Option<u64> {
    let status = cluster.status_json()?;
    let processor = status["nodes"].as_array()?.iter().find(|n| n["role"] == "processor")?;
    processor["details"]["epoch"].as_str()?.parse().ok()
}

fn wait_epoch(cluster: &Cluster, epoch: u64) {
    let started = Instant::now();
    while processor_epoch(cluster) != Some(epoch) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the processor did not switch to epoch {epoch}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Each authority's remaining budget, by name.
fn budgets(cluster: &Cluster) -> Vec<(String, String)> {
    let status = cluster.status_json().unwrap();
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["role"] == "authority" && n["up"] == true)
        .map(|n| {
            (n["name"].as_str().unwrap().to_string(), n["details"]["remaining_epsilon"].as_str().unwrap().to_string())
        })
        .collect()
}

fn labels_and_count() -> (Vec<String>, String, String) {
    let (_, labels, stats) = expected_columns().into_iter().find(|(c, _, _)| c == "H").unwrap();
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    (labels, text(&stats["count"]), text(&stats["sum"]))
}

/// Exact count and sum while `stop` is false; returns (queries, failures).
fn load(user: PathBuf, labels: &[String], count: &str, sum: &str, stop: &AtomicBool) -> (usize, Vec<String>) {
    let mut done = 0;
    let mut failures = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        for (stat, want) in [("count", count), ("sum", sum)] {
            let out = Command::new(BIN)
                .args(["query", stat, "--exact", "--json", "--config"])
                .arg(&user)
                .args(labels)
                .envs(FAST_FAIL_USER_ENV.iter().copied())
                .output()
                .unwrap();
            done += 1;
            match serde_json::from_slice::<Value>(&out.stdout) {
                Ok(answer) if out.status.success() && answer["exact_value"] == want => {}
                _ => failures.push(format!(
                    "{stat}: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )),
            }
        }
        // well under the processor's rate limit of 120 queries a minute
        std::thread::sleep(Duration::from_millis(1200));
    }
    (done, failures)
}

/// Stops the load when the test body ends, also by a panic.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn add_an_authority_under_load_then_remove_one() {
    let mut cluster = setup(5, "3");
    let (labels, count, sum) = labels_and_count();
    // spend some budget first: the new member must take it over
    let (noisy, _) = cluster.answer("count", &["--epsilon", "1"], &labels);
    noisy.unwrap();
    let before = budgets(&cluster);
    assert_eq!(before.len(), 5);
    let relay_pids: Vec<u32> = ["relay-1", "relay-2"].iter().map(|r| cluster.child(r).id()).collect();

    let extra = PortBlock::reserve(9);
    let a6_port = extra.base();
    let ceremony_ports = PortBlock::reserve(6);
    let out = Command::new(BIN)
        .args(["init", "authority", "authority-6", "--host", "127.0.0.1", "--port", &a6_port.to_string(), "--out"])
        .arg(cluster.dir.path())
        .output()
        .unwrap();
    ok(&out, "init authority-6 (local cluster)");
    cluster.set_node_env("authority-6", "CRUX_COMMITTEE_GRACE_SECS", GRACE_SECS);

    let change = cluster.path("add.json");
    let names = ["authority-1", "authority-2", "authority-3", "authority-4", "authority-5", "authority-6"];
    let mut args: Vec<String> =
        ["propose", "add", "--card", "authority-6.card.yaml", "--config", &config(&cluster, "authority-1"), "--out"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    args.push(change.display().to_string());
    args.extend(ceremony(&ceremony_ports, &names));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&committee(&cluster, &argv), "propose add");

    // a load of queries runs through the whole change
    let stop = AtomicBool::new(false);
    let user = cluster.path("user.yaml");
    let (queries, failures) = std::thread::scope(|s| {
        let worker = s.spawn(|| load(user, &labels, &count, &sum, &stop));
        let _stop_on_panic = StopOnDrop(&stop);
        std::thread::sleep(Duration::from_secs(1));
        // one approval is not enough (t = 3)
        let refused = apply(&cluster, &change, &names[..1]);
        let err = String::from_utf8_lossy(&refused[0].stderr).to_string();
        assert!(!refused[0].status.success() && err.contains("approved by 1 (authority-1)"), "{err}");
        for approver in ["authority-2", "authority-3"] {
            ok(
                &committee(
                    &cluster,
                    &["approve", "--config", &config(&cluster, approver), &change.display().to_string()],
                ),
                "approve",
            );
        }
        for (out, name) in apply(&cluster, &change, &names).iter().zip(names) {
            ok(out, &format!("apply on {name}"));
        }
        cluster.start("authority-6");
        wait_epoch(&cluster, 1);
        cluster.wait_up(&["authority-6"], Duration::from_secs(30));
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::SeqCst);
        worker.join().unwrap()
    });
    assert!(queries >= 4, "the load ran {queries} queries");
    assert!(
        failures.is_empty(),
        "{} of {queries} queries failed during the change:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // the relays were never restarted
    let now: Vec<u32> = ["relay-1", "relay-2"].iter().map(|r| cluster.child(r).id()).collect();
    assert_eq!(now, relay_pids);
    assert!(cluster.log("relay-1").contains("switch to committee epoch 1"), "{}", cluster.log("relay-1"));
    // the new member took over the spent budget
    let after = budgets(&cluster);
    assert_eq!(after.len(), 6, "{after:?}");
    assert!(after.iter().all(|(_, b)| *b == before[0].1), "{before:?} then {after:?}");
    // with three old members down, the new one decrypts
    let first = ["authority-1", "authority-2", "authority-3"];
    for name in first {
        cluster.kill(name);
    }
    let (answer, _) = cluster.answer("sum", &["--exact"], &labels);
    let answer = answer.unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(answer["exact_value"].as_str().unwrap(), sum);
    let decryptors: Vec<&str> = answer["decryptors"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
    assert_eq!(decryptors, ["authority-4", "authority-5", "authority-6"]);
    for name in first {
        cluster.start(name);
    }
    cluster.wait_up(&first, Duration::from_secs(30));

    // remove authority-2 (approved by authority-1, authority-3 and authority-4)
    let removal = cluster.path("remove.json");
    let mut args: Vec<String> =
        ["propose", "remove", "authority-2", "--config", &config(&cluster, "authority-1"), "--out"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    args.push(removal.display().to_string());
    let more = PortBlock::reserve(6);
    args.extend(ceremony(&more, &names));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&committee(&cluster, &argv), "propose remove");
    for approver in ["authority-3", "authority-4"] {
        ok(
            &committee(&cluster, &["approve", "--config", &config(&cluster, approver), &removal.display().to_string()]),
            "approve removal",
        );
    }
    for (out, name) in apply(&cluster, &removal, &names).iter().zip(names) {
        ok(out, &format!("apply removal on {name}"));
    }
    wait_epoch(&cluster, 2);
    // after the grace period the removed authority's share is gone
    std::thread::sleep(Duration::from_secs(4));
    assert!(!cluster.path("keys/authority-2.share").exists());
    assert!(!cluster.path("keys/authority-2.share.previous").exists());
    cluster.kill("authority-1");
    let (answer, _) = cluster.answer("count", &["--exact"], &labels);
    let answer = answer.unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(answer["exact_value"].as_str().unwrap(), count);
    let decryptors: Vec<&str> = answer["decryptors"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
    assert_eq!(decryptors, ["authority-3", "authority-4", "authority-5"], "authority-2 is no member: {answer}");
    let missing: Vec<&str> =
        answer["missing_authorities"].as_array().unwrap().iter().map(|m| m["authority"].as_str().unwrap()).collect();
    assert_eq!(missing, ["authority-1"], "authority-2 is not even asked");
}

#[test]
fn unapproved_changes_are_refused_and_a_rotation_leaves_old_ciphertexts_undecryptable() {
    let mut cluster = setup(3, "2");
    let (labels, count, _) = labels_and_count();
    // spend some budget: it carries across the rotation
    let (noisy, _) = cluster.answer("count", &["--epsilon", "1"], &labels);
    noisy.unwrap();
    let spent = budgets(&cluster);
    assert_eq!(spent.len(), 3);
    let names = ["authority-1", "authority-2", "authority-3"];
    let old_text = std::fs::read_to_string(cluster.path("cluster-key.bin")).unwrap();
    let old = parse_committee(&old_text).unwrap();
    // a ciphertext recorded before the rotation
    let secret = 424_242i64;
    let recorded = EncryptionKey::new(&old).encrypt(secret, &mut rand::rngs::OsRng);
    let open = |joint: &crux::crypto::JointPublicKey, shares: &[KeyShare]| {
        let set: Vec<String> = shares.iter().map(|s| s.authority().to_string()).collect();
        let bases = [*recorded.a()];
        let lambdas = joint.lagrange(&set).unwrap();
        let batches: Vec<BatchDecryption> = shares
            .iter()
            .zip(&lambdas)
            .map(|(s, lambda)| {
                let made = s.decryption_shares(lambda, &bases, None);
                let made: Vec<_> = made.iter().collect();
                s.prove_decryptions(lambda, b"old ciphertext", &made, true, &mut rand::rngs::OsRng)
            })
            .collect();
        // every share's proof holds against its own committee's key; only the combination can differ
        let points =
            combine_batches(&joint.decrypting_set(&set).unwrap(), &[recorded], b"old ciphertext", &batches, true)
                .unwrap();
        assert_eq!(points.len(), 1);
        points[0]
    };
    let read_share = |n: &str| crux::data::read_key_share(&cluster.path(&format!("keys/{n}.share"))).unwrap();
    let target = RISTRETTO_BASEPOINT_POINT * Scalar::from(secret as u64);
    // positive control: the committee of the time opens it
    assert_eq!(open(&old, &[read_share("authority-1"), read_share("authority-2")]), target);

    let change = cluster.path("rotate.json");
    let ports = PortBlock::reserve(3);
    let mut args: Vec<String> = ["propose", "rotate", "--config", &config(&cluster, "authority-1"), "--out"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(change.display().to_string());
    args.extend(ceremony(&ports, &names));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&committee(&cluster, &argv), "propose rotate");
    // approved by 1 of t = 2: every participant refuses it
    for out in apply(&cluster, &change, &names) {
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success() && err.contains("not approved"), "{err}");
    }
    ok(
        &committee(&cluster, &["approve", "--config", &config(&cluster, "authority-3"), &change.display().to_string()]),
        "approve",
    );
    // altered after approval (another threshold): the approvals no longer match
    let text = std::fs::read_to_string(&change).unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    doc["change"]["threshold"] = Value::from(3);
    let forged = cluster.path("forged.json");
    std::fs::write(&forged, serde_json::to_string(&doc).unwrap()).unwrap();
    for out in apply(&cluster, &forged, &names) {
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success() && err.contains("not approved"), "{err}");
    }
    assert_eq!(processor_epoch(&cluster), Some(0));

    for (out, name) in apply(&cluster, &change, &names).iter().zip(names) {
        ok(out, &format!("apply rotation on {name}"));
    }
    wait_epoch(&cluster, 1);
    let new = parse_committee(&std::fs::read_to_string(cluster.path("cluster-key.bin")).unwrap()).unwrap();
    assert_eq!(new.epoch(), 1);
    assert_ne!(new.fingerprint(), old.fingerprint(), "a rotation makes a new joint key");
    assert_eq!(budgets(&cluster), spent, "budgets carry across epochs");
    std::thread::sleep(Duration::from_millis(500));
    let (answer, _) = cluster.answer("count", &["--exact"], &labels);
    assert_eq!(answer.unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()))["exact_value"].as_str().unwrap(), count);

    // after the grace period only the new shares exist, and they do not open the old ciphertext
    std::thread::sleep(Duration::from_secs(4));
    let shares: Vec<KeyShare> = names
        .iter()
        .map(|n| {
            assert!(!cluster.path(&format!("keys/{n}.share.previous")).exists(), "{n}'s old share is erased");
            read_share(n)
        })
        .collect();
    assert!(shares.iter().all(|s| s.epoch() == 1));
    for pair in [[0, 1], [0, 2], [1, 2]] {
        let chosen: Vec<KeyShare> = pair.iter().map(|&i| read_share(names[i])).collect();
        assert_ne!(open(&new, &chosen), target, "the new committee opened an old ciphertext");
    }

    // a member that is down is removed without it: the other two deal
    cluster.kill("authority-3");
    let removal = cluster.path("remove-down.json");
    let more = PortBlock::reserve(2);
    let propose = |without: &[&str]| {
        let mut args: Vec<String> = ["propose", "remove", "authority-3", "--config", &config(&cluster, "authority-1")]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(["--out".to_string(), removal.display().to_string()]);
        args.extend(without.iter().flat_map(|w| ["--without".to_string(), w.to_string()]));
        args.extend(ceremony(&more, &names[..2]));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        committee(&cluster, &argv)
    };
    // fewer than t dealers left is refused
    let refused = propose(&["authority-2", "authority-3"]);
    let err = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(!refused.status.success() && err.contains("1 dealers, the current threshold is 2"), "{err}");
    ok(&propose(&["authority-3"]), "propose remove without the member that is down");
    ok(
        &committee(
            &cluster,
            &["approve", "--config", &config(&cluster, "authority-2"), &removal.display().to_string()],
        ),
        "approve",
    );
    for (out, name) in apply(&cluster, &removal, &names[..2]).iter().zip(names) {
        ok(out, &format!("apply removal on {name}"));
    }
    wait_epoch(&cluster, 2);
    let (answer, _) = cluster.answer("count", &["--exact"], &labels);
    let answer = answer.unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(answer["exact_value"].as_str().unwrap(), count);
    assert!(answer["missing_authorities"].as_array().unwrap().is_empty(), "authority-3 is no member: {answer}");
    // started again, the removed member erases its old share and refuses to run
    let share = cluster.path("keys/authority-3.share");
    assert!(share.exists());
    let mut child = Command::new(BIN)
        .args(["start", "--config", &config(&cluster, "authority-3")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("the removed authority kept running");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success() && err.contains("authority-3 is not a member of committee epoch 2"), "{err}");
    assert!(!share.exists(), "its share of epoch 1 is erased");
}

/// A dishonest processor (alone: it holds no share) cannot move the relays
/// to a committee of its own: a transition must carry t signatures of the
/// relays' current committee. It cannot make an authority sign for another
/// epoch either. Positive control: with both real shares (t colluding
/// authorities, outside the trust model) the relay switches.
#[actix_rt::test]
async fn a_dishonest_processor_cannot_move_relays_to_its_own_committee() {
    use common::nodes::{relay_error, setup as tls_setup, Peer, BACKEND};
    use crux::crypto::deal_for_tests;
    use crux::protocol::committee::{Endpoint, SignedTransition, Transition};
    use crux::protocol::{AuthorityRequest, AuthorityResponse, RelayRequest, RelayResponse};

    tls_setup();
    let mut cluster = Cluster::init(&["--exact"]);
    cluster.start_all(&BACKEND);
    let evil = Peer::new(cluster.config("processor"));
    evil.wait_ready(&cluster, &BACKEND).await;
    let current = parse_committee(&std::fs::read_to_string(cluster.path("cluster-key.bin")).unwrap()).unwrap();
    let names = ["authority-1", "authority-2"];
    // the processor's own committee: it dealt it, so it knows every share
    let (own, forged) = deal_for_tests(&names, 2, 1, &mut rand::rngs::OsRng).unwrap();
    let endpoints: Vec<Endpoint> = names
        .iter()
        .zip(1u16..)
        .map(|(n, i)| Endpoint {
            name: n.to_string(),
            index: i,
            address: "127.0.0.1:9".into(),
            ceremony: "127.0.0.1:10".into(),
            certificate: "pem".into(),
        })
        .collect();
    let transition =
        Transition { from_epoch: 0, from_key: current.fingerprint(), committee: forged.clone(), endpoints };
    let bytes = transition.signed_bytes();
    let signed_by = |shares: &[&KeyShare]| SignedTransition {
        transition: transition.clone(),
        signatures: shares
            .iter()
            .map(|s| (s.authority().to_string(), s.sign_statement(&bytes, &mut rand::rngs::OsRng)))
            .collect(),
    };
    let ask = |t: SignedTransition| {
        let evil = &evil;
        async move { evil.relay("relay-1", &RelayRequest::Transition(Box::new(t))).await }
    };
    for attempt in [signed_by(&[]), signed_by(&[&own[0], &own[1]])] {
        let err = relay_error(ask(attempt).await);
        assert!(
            err.contains("invalid committee transition") && err.contains("signed by t members of epoch 0"),
            "{err}"
        );
    }
    // one real member's signature (t = 2) is not enough either
    let real: Vec<KeyShare> =
        names.iter().map(|n| crux::data::read_key_share(&cluster.path(&format!("keys/{n}.share"))).unwrap()).collect();
    let err = relay_error(ask(signed_by(&[&real[0]])).await);
    assert!(err.contains("invalid committee transition"), "{err}");
    // an authority does not sign for an epoch it does not run, and charges nothing
    let q = evil.intent(crux::stats::QueryParams::new(crux::stats::Statistic::Count));
    let asked = AuthorityRequest::AdmitQuery { sealing: false, query: q, user: "user".into(), epoch: 1 };
    match evil.authority("authority-1", &asked).await {
        AuthorityResponse::OtherEpoch { asked: 1, current: 0 } => {}
        other => panic!("expected OtherEpoch, got {other:?}"),
    }
    let before = cluster.log("authority-1");
    assert!(!before.contains("budget charged"), "{before}");
    // positive control: t real signatures move the relay
    match ask(signed_by(&[&real[0], &real[1]])).await {
        RelayResponse::Switched { epoch: 1 } => {}
        other => panic!("expected Switched, got {other:?}"),
    }
}
