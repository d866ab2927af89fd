//! Issue 10: every authority's ledger records each charge with the query
//! id, the user the processor authenticated and the epsilon, and `status`
//! shows them; the authority's log names the user and the epsilon charged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

mod common;

use common::cluster::*;
use common::nodes::*;

#[actix_rt::test]
async fn every_charge_is_recorded_with_its_user_and_shown_by_status() {
    setup();
    let mut cluster = Cluster::init(&["--budget", "5"]);
    cluster.start_all(&BACKEND);
    cluster.start("processor");
    let user = Peer::new(cluster.config("user"));
    user.wait_ready(&cluster, &["processor"]).await;
    let user_yaml = cluster.path("user.yaml");
    let user_name = cluster.config("user").name;

    let out = cluster.query(&user_yaml, &["count", "--epsilon", "1.5", "--json", "Land"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let query_id = answer["query_id"].as_str().unwrap().to_string();

    let out = cluster.status(&user_yaml);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    for authority in AUTHORITIES {
        let line = text.lines().find(|l| l.starts_with(authority)).unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains("remaining_epsilon=3.5"), "{line}");
        assert!(line.contains("charges=1"), "{line}");
        assert!(
            line.contains(&format!("{query_id} user={user_name} dataset=areas epsilon=1.5")),
            "{authority} shows the charge: {line}"
        );
    }
    // a query that fails after its admission (a mistyped label) says what it spent
    let out = cluster.query(&user_yaml, &["count", "--epsilon", "0.5", "--json", "Lnad"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("epsilon 0.5 of dataset \"areas\"'s budget is spent"), "{err}");
    assert!(err.contains("did you mean"), "{err}");

    let log = std::fs::read_to_string(cluster.path("logs/authority-1.log")).unwrap();
    let admitted = log.lines().find(|l| l.contains("budget charged")).unwrap_or_else(|| panic!("{log}"));
    assert!(admitted.contains(&user_name) && admitted.contains("epsilon=1.5"), "{admitted}");
}

/// Issue 10: `crux-node columns` lists the labels relays publish, only from
/// sources that opt in (`publish_columns`), and only labels.
#[actix_rt::test]
async fn columns_lists_what_relays_publish_and_nothing_else() {
    setup();
    let mut cluster = Cluster::init(&["--exact", "--publish-columns"]);
    // relay-3 does not publish
    let yaml_path = cluster.path("relay-3.yaml");
    let yaml = std::fs::read_to_string(&yaml_path).unwrap();
    assert!(yaml.contains("publish_columns: true"), "{yaml}");
    std::fs::write(&yaml_path, yaml.replace("publish_columns: true", "publish_columns: false")).unwrap();
    cluster.start_all(&BACKEND);
    cluster.start("processor");
    let user = Peer::new(cluster.config("user"));
    user.wait_ready(&cluster, &["processor"]).await;
    let out = std::process::Command::new(BIN)
        .args(["columns", "--json", "--config"])
        .arg(cluster.path("user.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let columns = v["columns"].as_array().unwrap();
    let want = serde_json::json!(["Population", "All usual residents", "2021"]);
    let pop = columns.iter().find(|c| c["labels"] == want).unwrap_or_else(|| panic!("{v}"));
    assert_eq!(pop["relays"], serde_json::json!(["relay-1", "relay-2"]));
    assert!(columns
        .iter()
        .any(|c| c["labels"] == serde_json::json!(["Land", "Land area (square kilometres)", "2021"])));
    assert_eq!(v["relays_without_columns"][0]["relay"], "relay-3", "{v}");
    // labels only: no number from the data appears (e.g. the demo's populations)
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("14134681") && !text.contains("2534"), "{text}");

    // a reader that goes away (`| head`) ends the command quietly: an answer
    // longer than a pipe's buffer (a 2500-edge histogram), read 10 bytes of
    let edges: Vec<String> = (0..2500).map(|e| e.to_string()).collect();
    let mut child = std::process::Command::new(BIN)
        .args(["query", "histogram", "--exact", "--edges", &edges.join(","), "--config"])
        .arg(cluster.path("user.yaml"))
        .arg("Land")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 10];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
