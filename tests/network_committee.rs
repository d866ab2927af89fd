//! A t-of-n committee of real `crux-node` processes on 127.0.0.1: `init`
//! runs the distributed key generation as one `keygen` process per
//! authority (over QUIC), 5 authorities with t = 3. With 2 authorities
//! killed every statistic is still exact and the answer names the missing
//! ones; with 3 killed the query fails with an error naming them.
//! `committee status --json` shows the members' states throughout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]
#![cfg(unix)]

mod common;

use std::time::Duration;

use common::cluster::{Cluster, Layout, FAST_FAIL_NODE_ENV, FAST_FAIL_USER_ENV};
use common::{data_path, expected_columns};

#[test]
fn five_authorities_three_decrypt_with_two_down_and_refuse_with_three_down() {
    let layout = Layout { authorities: 5, relays: 3, dlog_bits: 14, dlog_range_bits: 30 };
    let args = ["--min-relays", "2", "--exact", "--header-rows", "3", "--threshold", "3"];
    let mut cluster = Cluster::init_layout(layout, &data_path("areas.xlsx"), &args)
        .with_node_env(&FAST_FAIL_NODE_ENV)
        .with_user_env(&FAST_FAIL_USER_ENV);
    // the committee file the keygen processes wrote: 3 of 5, consistent
    let committee: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cluster.path("cluster-key.bin")).unwrap()).unwrap();
    assert_eq!(committee["threshold"], 3);
    assert_eq!(committee["members"].as_array().unwrap().len(), 5);
    let names = layout.names();
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    cluster.start_all(&all);
    cluster.wait_up(&all, Duration::from_secs(60));

    let (_, labels, stats) = expected_columns().into_iter().find(|(c, _, _)| c == "H").unwrap();
    let check = |cluster: &Cluster, missing: &[&str]| {
        for (stat, key) in [("count", "count"), ("sum", "sum"), ("median", "median_lower"), ("max", "max")] {
            let (answer, _) = cluster.answer(stat, &["--exact"], &labels);
            let answer = answer.unwrap_or_else(|e| panic!("{stat} with {missing:?} down: {e}"));
            let want = match &stats[key] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(answer["exact_value"].as_str().unwrap(), want, "{stat} with {missing:?} down");
            assert_eq!(answer["decryptors"].as_array().unwrap().len(), 3, "{answer}");
            let gone: Vec<&str> = answer["missing_authorities"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["authority"].as_str().unwrap())
                .collect();
            assert_eq!(gone, missing, "{stat}");
        }
    };
    let committee_status = |cluster: &Cluster| {
        let out = cluster.cli(&["committee", "status", "--json", "--config"], &[]);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let states: Vec<(String, String)> = doc["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["name"].as_str().unwrap().to_string(), m["state"].as_str().unwrap().to_string()))
            .collect();
        (out.status.code(), doc, states)
    };
    let (code, doc, states) = committee_status(&cluster);
    assert_eq!(code, Some(0));
    assert_eq!((doc["epoch"].clone(), doc["threshold"].clone()), (serde_json::json!(0), serde_json::json!(3)));
    assert_eq!(doc["joint_key"], committee["joint_key"]);
    assert!(states.iter().all(|(_, s)| s == "up"), "{states:?}");
    check(&cluster, &[]);
    cluster.kill("authority-2");
    cluster.kill("authority-5");
    check(&cluster, &["authority-2", "authority-5"]);
    let (code, _, states) = committee_status(&cluster);
    assert_eq!(code, Some(0), "3 of 5 up is enough");
    let down: Vec<&str> = states.iter().filter(|(_, s)| s == "unreachable").map(|(n, _)| n.as_str()).collect();
    assert_eq!(down, ["authority-2", "authority-5"], "{states:?}");

    cluster.kill("authority-4");
    let (answer, _) = cluster.answer("count", &["--exact"], &labels);
    let err = answer.unwrap_err();
    assert!(err.contains("only 2 of the committee's authorities") && err.contains("3 are needed"), "{err}");
    for name in ["authority-2", "authority-4", "authority-5"] {
        assert!(err.contains(name), "{name} not named: {err}");
    }
    assert_eq!(committee_status(&cluster).0, Some(1), "fewer than t up");
}
