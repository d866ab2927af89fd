//! Reliability of a real cluster of `crux-node` processes on 127.0.0.1:
//! relays and authorities that die, hang (SIGSTOP) or restart, a processor
//! killed mid-query, graceful SIGTERM shutdown, hostile bytes sent to a
//! running authority and relay with the processor's own identity, and relays
//! configured with every malformed file in tests/data/bad/.
//!
//! Input: tests/data/areas.xlsx (3 relays, each a third of the rows) and the
//! `crux-node` binary; output: assertions only. Every node runs with short
//! timeouts (connect 500 ms, request 3 s, 1 retry) so failures show quickly.
//! Unix only: nodes are stopped and resumed with `kill -STOP/-CONT/-TERM`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]
#![cfg(unix)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::cluster::{node_up, parse_answer, Cluster, Layout};
use common::data_path;
use serde_json::Value;

use common::cluster::{FAST_FAIL_NODE_ENV as NODE_ENV, FAST_FAIL_USER_ENV as USER_ENV};
const REQUEST_TIMEOUT: Duration = Duration::from_millis(3000);

/// Column H of areas.xlsx: per-relay sums over 3 relays (tests/data/README.md).
const H_SUM: &str = "14134681";
const H_SUM_WITHOUT_RELAY_3: &str = "7201752"; // 2727205 + 4474547
const H_SUM_WITHOUT_RELAY_1: &str = "11407476"; // 4474547 + 6932929

fn h_labels() -> Vec<String> {
    vec!["Population".into(), "All usual residents".into(), "2021".into()]
}

const ALL: [&str; 7] = ["authority-1", "authority-2", "authority-3", "processor", "relay-1", "relay-2", "relay-3"];

/// init (exact mode allowed, min_relays 2) + start every node; `extra` adds
/// env to some nodes (kept for their restarts).
fn start(extra: &[(&str, &str, &str)]) -> Cluster {
    let args = ["--min-relays", "2", "--exact", "--header-rows", "3"];
    let mut cluster = Cluster::init_layout(Layout::FULL, &data_path("areas.xlsx"), &args)
        .with_node_env(&NODE_ENV)
        .with_user_env(&USER_ENV);
    for (node, k, v) in extra {
        cluster.set_node_env(node, k, v);
    }
    for name in ALL {
        cluster.start(name);
    }
    cluster.wait_up(&ALL, Duration::from_secs(60));
    cluster
}

fn remaining_epsilon(c: &Cluster) -> Vec<String> {
    let s = c.status_json().unwrap();
    s["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["role"] == "authority")
        .map(|n| n["details"]["remaining_epsilon"].as_str().unwrap_or("down").to_string())
        .collect()
}

fn exact_sum(c: &Cluster) -> (Result<Value, String>, Duration) {
    c.answer("sum", &["--exact"], &h_labels())
}

fn missing(answer: &Value) -> Vec<String> {
    answer["missing_relays"].as_array().unwrap().iter().map(|m| m["relay"].as_str().unwrap().to_string()).collect()
}

#[test]
fn relay_failures_dead_and_hung() {
    let mut c = start(&[]);
    let (answer, _) = exact_sum(&c);
    let answer = answer.unwrap();
    assert_eq!((answer["exact_value"].as_str(), answer["relays"].as_i64()), (Some(H_SUM), Some(3)));

    // relay-3 dies: the sum covers relays 1 and 2 and names relay-3
    c.kill("relay-3");
    let (answer, elapsed) = exact_sum(&c);
    let answer = answer.unwrap();
    assert_eq!(answer["relays"], 2, "{answer}");
    assert_eq!(missing(&answer), vec!["relay-3"], "{answer}");
    assert_eq!(answer["exact_value"], H_SUM_WITHOUT_RELAY_3);
    assert!(elapsed < REQUEST_TIMEOUT + Duration::from_secs(5), "took {elapsed:?}");
    println!("relay-3 killed: answered with 2 relays in {elapsed:?}: missing {}", answer["missing_relays"]);

    // relay-2 dies too: fewer than min_relays remain, a clear error
    c.kill("relay-2");
    let (err, elapsed) = exact_sum(&c);
    let err = err.unwrap_err();
    assert!(err.starts_with("error: ") && err.contains("at least 2 are required"), "{err}");
    assert!(err.contains("relay-2") && err.contains("relay-3"), "names the missing relays: {err}");
    assert!(elapsed < REQUEST_TIMEOUT + Duration::from_secs(5), "took {elapsed:?}");
    println!("relay-2 and relay-3 killed: failed in {elapsed:?}: {}", err.trim());

    // both restart on their addresses and serve again
    c.start("relay-2");
    c.start("relay-3");
    c.wait_up(&["relay-2", "relay-3"], Duration::from_secs(30));
    let (answer, _) = exact_sum(&c);
    let answer = answer.unwrap();
    assert_eq!((answer["exact_value"].as_str(), answer["relays"].as_i64()), (Some(H_SUM), Some(3)), "{answer}");

    // relay-1 hangs (SIGSTOP): the query completes without it after the request timeout
    c.signal("relay-1", "STOP");
    let (answer, elapsed) = exact_sum(&c);
    c.signal("relay-1", "CONT");
    let answer = answer.unwrap();
    assert_eq!(missing(&answer), vec!["relay-1"], "{answer}");
    assert_eq!(answer["exact_value"], H_SUM_WITHOUT_RELAY_1);
    let reason = answer["missing_relays"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("timed out"), "{reason}");
    assert!(elapsed >= REQUEST_TIMEOUT && elapsed < REQUEST_TIMEOUT + Duration::from_secs(4), "took {elapsed:?}");
    println!("relay-1 stopped: answered with 2 relays in {elapsed:?}: {reason}");

    // resumed, it serves again
    let (answer, _) = exact_sum(&c);
    assert_eq!(answer.unwrap()["relays"], 3);
}

#[test]
fn authority_failure_restart_and_persistent_budget() {
    let mut c = start(&[]);
    // a noisy query charges every authority
    let (dp, _) = c.answer("count", &["--epsilon", "0.5"], &h_labels());
    assert_eq!(dp.unwrap()["exact"], false);
    assert_eq!(remaining_epsilon(&c), vec!["9.5", "9.5", "9.5"]);

    c.kill("authority-2");
    let (err, elapsed) = exact_sum(&c);
    let err = err.unwrap_err();
    assert!(err.starts_with("error: ") && err.contains("authority-2"), "{err}");
    assert!(elapsed < REQUEST_TIMEOUT + Duration::from_secs(5), "took {elapsed:?}");
    println!("authority-2 killed: failed in {elapsed:?}: {}", err.trim());
    let status = c.status_json().unwrap();
    assert!(!node_up(&status, "authority-2"));

    // restarted with the same config: queries work and its ledger survived
    c.start("authority-2");
    c.wait_up(&["authority-2"], Duration::from_secs(30));
    let (answer, _) = exact_sum(&c);
    assert_eq!(answer.unwrap()["exact_value"], H_SUM);
    assert_eq!(remaining_epsilon(&c), vec!["9.5", "9.5", "9.5"], "budget ledger survives the restart");
    let (dp, _) = c.answer("count", &["--epsilon", "0.25"], &h_labels());
    dp.unwrap();
    assert_eq!(remaining_epsilon(&c), vec!["9.25", "9.25", "9.25"]);

    // a hung authority: the query fails within the request timeout, naming it
    c.signal("authority-3", "STOP");
    let (err, elapsed) = exact_sum(&c);
    c.signal("authority-3", "CONT");
    let err = err.unwrap_err();
    assert!(err.contains("authority-3") && err.contains("timed out"), "{err}");
    assert!(elapsed < REQUEST_TIMEOUT + Duration::from_secs(4), "took {elapsed:?}");
    println!("authority-3 stopped: failed in {elapsed:?}: {}", err.trim());
    let (answer, _) = exact_sum(&c);
    assert_eq!(answer.unwrap()["exact_value"], H_SUM);
}

#[test]
fn processor_restart_and_graceful_shutdown() {
    let mut c = start(&[]);
    // the processor dies: a clear error naming it, quickly
    c.kill("processor");
    let (err, elapsed) = exact_sum(&c);
    let err = err.unwrap_err();
    assert!(err.contains("processor") && err.contains("unreachable after 2 attempts"), "{err}");
    // regression: the retry's transport warning used to precede the error line
    assert!(err.starts_with("error: ") && err.trim_end().lines().count() == 1, "one line on stderr: {err}");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    println!("processor killed: failed in {elapsed:?}: {}", err.trim());
    c.start("processor");
    c.wait_up(&ALL, Duration::from_secs(30));
    let (answer, _) = exact_sum(&c);
    assert_eq!(answer.unwrap()["exact_value"], H_SUM);

    // killed while a query is in flight (it waits on a stopped relay), then
    // restarted at once: the user gets a clear error naming the processor; a
    // query is never resent after a lost connection (it could run twice)
    c.signal("relay-3", "STOP");
    let mut tail = vec!["--exact", "--json"];
    let labels = h_labels();
    tail.extend(labels.iter().map(|s| s.as_str()));
    let started = Instant::now();
    let inflight = c
        .cli_command(&["query", "sum", "--config"], &tail)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    c.kill("processor");
    c.start("processor");
    let out = inflight.wait_with_output().unwrap();
    let elapsed = started.elapsed();
    c.signal("relay-3", "CONT");
    let err = parse_answer(&out).expect_err("an in-flight query fails when the processor dies");
    assert!(err.contains("processor") && err.contains("lost"), "{err}");
    println!("processor killed mid-query: failed in {elapsed:?}: {}", err.trim());
    assert!(elapsed < Duration::from_secs(25), "took {elapsed:?}");
    c.wait_up(&ALL, Duration::from_secs(30));
    let (answer, _) = exact_sum(&c);
    assert_eq!(answer.unwrap()["relays"], 3);

    // SIGTERM: exit status 0 within a few seconds, "stopped" logged; a relay
    // restarted after it serves again
    c.signal("relay-2", "TERM");
    let status = c.wait_exit("relay-2", Duration::from_secs(5)).expect("relay-2 exits within 5 s of SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(c.log("relay-2").contains("stopped"), "{}", c.log("relay-2"));
    c.start("relay-2");
    c.wait_up(&["relay-2"], Duration::from_secs(30));
    let (answer, _) = exact_sum(&c);
    assert_eq!(answer.unwrap()["relays"], 3);

    // every role shuts down cleanly on SIGTERM
    for name in ALL {
        c.signal(name, "TERM");
    }
    for name in ALL {
        let started = Instant::now();
        let status = c
            .wait_exit(name, Duration::from_secs(8))
            .unwrap_or_else(|| panic!("{name} still running 8 s after SIGTERM"));
        assert!(status.success(), "{name}: {status:?}");
        assert!(c.log(name).contains("stopped"), "{name}");
        println!("{name}: SIGTERM -> exit 0 in {:?}", started.elapsed());
    }
}

mod hostile {
    use super::*;
    use crux::actors::keys::{transport_config, unix_now};
    use crux::actors::transport::{client_endpoint_for, Client};
    use crux::config::NodeConfig;
    use crux::protocol::wire::{decode, encode};
    use crux::protocol::*;
    use crux::stats::{Contribution, PlanStep, Planner, QueryParams, Statistic};
    use rand::rngs::OsRng;

    /// What came back for one hostile request.
    fn outcome(
        reply: Result<Vec<u8>, crux::actors::error::TransportError>,
        is_error_reply: impl Fn(&[u8]) -> Option<String>,
    ) -> String {
        match reply {
            Ok(bytes) => match is_error_reply(&bytes) {
                Some(reason) => format!("error reply: {reason}"),
                None => panic!("a hostile request got a non-error reply"),
            },
            Err(e) => format!("transport error: {e}"),
        }
    }

    fn authority_error(bytes: &[u8]) -> Option<String> {
        match decode::<AuthorityResponse>(bytes, 1 << 24).ok()? {
            AuthorityResponse::Refused { reason } => Some(reason),
            _ => None,
        }
    }

    fn relay_error(bytes: &[u8]) -> Option<String> {
        match decode::<RelayResponse>(bytes, 1 << 24).ok()? {
            RelayResponse::Error { message } => Some(message),
            _ => None,
        }
    }

    /// Replaces the first occurrence of `from` in `bytes` by `to`.
    fn splice(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = bytes.windows(from.len()).position(|w| w == from).expect("pattern present");
        [&bytes[..at], to, &bytes[at + from.len()..]].concat()
    }

    #[test]
    fn hostile_frames_get_errors_and_nodes_keep_serving() {
        let c = start(&[
            ("authority-1", "CRUX__LIMITS__MAX_FRAME_BYTES", "65536"),
            ("relay-1", "CRUX__LIMITS__MAX_FRAME_BYTES", "65536"),
        ]);
        let mut cfg = NodeConfig::load(&c.path("processor.yaml")).unwrap();
        cfg.max_frame_bytes = 1 << 24;
        let mut tcfg = transport_config(&cfg).unwrap();
        tcfg.request_timeout = Duration::from_secs(5);
        tcfg.connect_timeout = Duration::from_secs(2);
        tcfg.retries = 0;
        let authority: SocketAddr = cfg.cluster.authorities[0].address.parse().unwrap();
        let relay: SocketAddr = cfg.cluster.relays[0].peer.address.parse().unwrap();
        let mut rng = OsRng;

        actix_rt::System::new().block_on(async move {
            let endpoint = client_endpoint_for(authority, &tcfg).unwrap();
            let client = Client::new(endpoint.clone(), &tcfg);

            // a real signed contribution from relay-1, to build a Register from:
            // every authority admits the query and its round first
            let authorities: Vec<(String, SocketAddr)> =
                cfg.cluster.authorities.iter().map(|a| (a.name.clone(), a.address.parse().unwrap())).collect();
            let admit = |request: AuthorityRequest| {
                let client = &client;
                let authorities = authorities.clone();
                async move {
                    let mut signatures = Vec::new();
                    for (name, addr) in &authorities {
                        let reply = client.request(name, *addr, &encode(&request).unwrap()).await.unwrap();
                        match decode::<AuthorityResponse>(&reply, 1 << 24).unwrap() {
                            AuthorityResponse::Admitted { signature, .. } => signatures.push((name.clone(), signature)),
                            other => panic!("{name}: {other:?}"),
                        }
                    }
                    Admission { signatures }
                }
            };
            let mut params = QueryParams::new(Statistic::Sum);
            params.exact = true;
            let intent = QueryIntent {
                id: QueryId::random(&mut rng),
                issued_at: unix_now(),
                dataset: "areas".into(),
                labels: vec!["Land".to_string()],
                params: params.clone(),
            };
            let admission = admit(AuthorityRequest::AdmitQuery {
                sealing: false,
                query: intent.clone(),
                user: "user".into(),
                epoch: 0,
            })
            .await;
            let reply = client
                .request(
                    "relay-1",
                    relay,
                    &encode(&RelayRequest::Describe { query: intent.clone(), admission, epoch: 0 }).unwrap(),
                )
                .await
                .unwrap();
            let RelayResponse::Described(info) = decode::<RelayResponse>(&reply, 1 << 24).unwrap() else {
                panic!("describe")
            };
            let PlanStep::Round { round, task } =
                Planner::new(params.clone(), info.decimals, 20).unwrap().start().unwrap()
            else {
                panic!("plan")
            };
            let decryptors = authorities.iter().map(|(name, _)| name.clone()).collect();
            let spec = QuerySpec::new(intent, info.decimals, 0, decryptors);
            let admission = admit(AuthorityRequest::AdmitRound { spec: spec.clone(), round, task: task.clone() }).await;
            let contribute = RelayRequest::Contribute {
                sealing: Vec::new(),
                spec: spec.clone(),
                round,
                task: task.clone(),
                admission,
                admission_of: AdmissionOf::Round,
            };
            let reply = client.request("relay-1", relay, &encode(&contribute).unwrap()).await.unwrap();
            let RelayResponse::Contribution(signed) = decode::<RelayResponse>(&reply, 1 << 24).unwrap() else {
                panic!("contribution")
            };
            let Contribution::Moments { count, .. } = &signed.contribution else { panic!("moments") };
            let register = encode(&AuthorityRequest::Register {
                shared: Vec::new(),
                spec,
                round,
                task,
                contributions: vec![*signed.clone()],
                releases: vec![],
            })
            .unwrap();
            // the count ciphertext's first point (the first 32 of its 64 wire
            // bytes), patched to a non-canonical encoding
            let point = count.to_bytes();
            let bad_point = splice(&register, &point[..32], &[0xffu8; 32]);

            let random: Vec<u8> = (0..4096).map(|_| rand::random::<u8>()).collect();
            let oversized = vec![0x92u8; 100_000];
            let wrong_type = encode(&ProcessorRequest::Query {
                labels: vec!["Land".into()],
                params: QueryParams::new(Statistic::Count),
            })
            .unwrap();
            // [version 2, array32 of 2^31 elements, then nothing]
            let huge_len = vec![0x92u8, 0x02, 0xdd, 0x80, 0x00, 0x00, 0x00];
            let mut huge_in_register = vec![0x92u8, 0x02, 0x81, 0xa8];
            huge_in_register.extend_from_slice(b"Register");
            huge_in_register.extend_from_slice(&[0xdd, 0x80, 0x00, 0x00, 0x00]);
            let cases: Vec<(&str, Vec<u8>)> = vec![
                ("oversized frame (100000 bytes > 65536)", oversized),
                ("random bytes", random),
                ("empty request", Vec::new()),
                ("valid msgpack of the wrong type", wrong_type),
                ("Register with a non-canonical curve point", bad_point),
                ("array32 header claiming 2^31 elements", huge_len),
                ("Register body claiming 2^31 elements", huge_in_register),
            ];
            for (name, addr, is_authority) in [("authority-1", authority, true), ("relay-1", relay, false)] {
                for (what, bytes) in &cases {
                    if !is_authority && what.starts_with("Register with") {
                        continue;
                    }
                    let started = Instant::now();
                    let reply = client.request(name, addr, bytes).await;
                    let result =
                        if is_authority { outcome(reply, authority_error) } else { outcome(reply, relay_error) };
                    println!("{name} <- {what}: {result} ({:?})", started.elapsed());
                    if what.starts_with("oversized") {
                        assert!(result.contains("frame limit"), "{result}");
                    }
                    if what.starts_with("Register with") {
                        assert!(result.contains("malformed"), "{result}");
                    }
                    // the node keeps serving: a following Status request succeeds
                    let ok = if is_authority {
                        let status = client.request(name, addr, &encode(&AuthorityRequest::Status).unwrap()).await;
                        let status = status.unwrap_or_else(|e| panic!("{name} stopped serving after {what}: {e}"));
                        matches!(decode::<AuthorityResponse>(&status, 1 << 24), Ok(AuthorityResponse::Status(_)))
                    } else {
                        let status = client.request(name, addr, &encode(&RelayRequest::Status).unwrap()).await;
                        let status = status.unwrap_or_else(|e| panic!("{name} stopped serving after {what}: {e}"));
                        matches!(decode::<RelayResponse>(&status, 1 << 24), Ok(RelayResponse::Status(_)))
                    };
                    assert!(ok, "{name} answers Status after {what}");
                }
            }
            endpoint.close(0u32.into(), b"done");
        });
        // and the whole cluster still answers queries
        let (answer, _) = exact_sum(&c);
        assert_eq!(answer.unwrap()["exact_value"], H_SUM);
    }
}

#[test]
fn relay_with_bad_data_files() {
    let mut c = start(&[]);
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/areas.xlsx").display().to_string();
    let yaml = std::fs::read_to_string(c.path("relay-3.yaml")).unwrap();
    assert!(yaml.contains(&good));
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    // fuzz findings: .xls files whose sector chain loops (calamine allocated
    // without bound) and one whose MULRK record overflowed in calamine (a
    // panic in debug builds, which used to end the relay's worker)
    for name in ["xls_fat_loop.xls", "xls_fat_loop_2.xls"] {
        files.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz").join(name));
    }
    let mut overflow = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/areas.xls")).unwrap();
    let at = (4_269_715_196_956_001_033u64 % overflow.len() as u64) as usize;
    overflow[at] = 14;
    std::fs::write(c.path("mulrk_overflow.xls"), &overflow).unwrap();
    files.push(c.path("mulrk_overflow.xls"));
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        c.kill("relay-3");
        let mut text = yaml.replace(&good, &file.display().to_string());
        if name == "wrong_sheet_name.xlsx" {
            // the sheet the relay is told to read is not in this workbook
            text = text.replace("sheet: null", "sheet: iadatasheet2");
        }
        std::fs::write(c.path("relay-3.yaml"), text).unwrap();
        c.start("relay-3");
        // started, or refused at once with an error naming the file
        std::thread::sleep(Duration::from_millis(300));
        if let Some(status) = c.child_mut("relay-3").try_wait().unwrap() {
            let log = c.log("relay-3");
            assert!(!status.success() && log.contains(&name), "{name}: {log}");
            println!("{name}: relay refuses to start: {}", log.lines().last().unwrap_or(""));
            continue;
        }
        c.wait_up(&["relay-3"], Duration::from_secs(30));
        let (answer, _) = exact_sum(&c);
        match answer {
            Ok(answer) if answer["relays"] == 3 && name != "header_only.xlsx" => {
                println!("{name}: relay up, read the file: answered with 3 relays, {}", answer["exact_value"]);
            }
            Ok(answer) if answer["relays"] == 3 => {
                // a header without data rows is an empty column, not an error
                assert_eq!(answer["exact_value"], H_SUM_WITHOUT_RELAY_3, "{name}: {answer}");
                println!("{name}: relay up, contributes 0 rows: answered with 3 relays");
            }
            Ok(answer) => {
                let missing = answer["missing_relays"].as_array().unwrap();
                assert_eq!(missing.len(), 1, "{name}: {answer}");
                assert_eq!(missing[0]["relay"], "relay-3");
                let reason = missing[0]["reason"].as_str().unwrap();
                // names the file (and for a bad cell the cell, without quoting it)
                assert!(reason.contains(&name), "{name}: a clear reason naming the file: {reason}");
                if name.starts_with("non_numeric") {
                    // relay-3 serves the last third of the 20 rows: the first bad cell there is H18 ("unknown")
                    let quoted = ["n/a", "unknown", "12,345", "1.2.3"].iter().any(|v| reason.contains(v));
                    assert!(reason.contains("cell H18") && !quoted, "{name}: {reason}");
                }
                assert_eq!(answer["exact_value"], H_SUM_WITHOUT_RELAY_3);
                println!("{name}: relay up, left out of the query: {reason}");
            }
            Err(err) => {
                assert!(err.contains("relay-3"), "{name}: {err}");
                println!("{name}: relay up, query failed: {}", err.trim());
            }
        }
        let status = c.status_json().unwrap();
        assert!(node_up(&status, "relay-3"), "{name}: relay-3 is still up after the failed query");
    }
    c.kill("relay-3");
    std::fs::write(c.path("relay-3.yaml"), &yaml).unwrap();
    c.start("relay-3");
    c.wait_up(&["relay-3"], Duration::from_secs(30));
    let (answer, _) = exact_sum(&c);
    assert_eq!(answer.unwrap()["exact_value"], H_SUM);
}
