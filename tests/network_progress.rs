//! `ProcessorRequest::Progress` over real QUIC: a user sees how far their
//! own queries in flight have got, and nothing of anyone else's; a node
//! that is not a user is refused. A query is held in flight by stopping a
//! relay (SIGSTOP) while it describes the column.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::{Cluster, Layout, BIN};
use crux::actors::client::ask_processor;
use crux::protocol::{ProcessorRequest, ProcessorResponse, QueryProgress};
use crux::stats::Statistic;

fn progress(cluster: &Cluster, config: &str) -> Result<Vec<QueryProgress>, String> {
    match ask_processor(&cluster.config(config), &ProcessorRequest::Progress) {
        Ok(ProcessorResponse::Progress(list)) => Ok(list),
        Ok(ProcessorResponse::Error { message }) => Err(message),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn users_see_the_progress_of_their_own_queries_only() {
    let mut cluster = Cluster::init(&["--exact"]);
    // a second user, pinned before the processor starts
    let added = Command::new(BIN).args(["init", "user", "eve", "--out"]).arg(cluster.path("")).output().unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let names = Layout::SMALL.names();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    cluster.start_all(&names);
    cluster.wait_up(&names, Duration::from_secs(60));
    assert_eq!(progress(&cluster, "user").unwrap(), []);

    // relay-1 stops answering: the median waits for it (10 s request timeout)
    cluster.signal("relay-1", "STOP");
    let query = {
        let user = cluster.path("user.yaml");
        let labels = common::nodes::LABELS;
        let mut cmd = Command::new(BIN);
        cmd.args(["query", "median", "--exact", "--json", labels[0], labels[1], labels[2], "--config"]).arg(user);
        cmd.env("RUST_LOG", "warn").spawn().unwrap()
    };
    let started = Instant::now();
    let seen = loop {
        let list = progress(&cluster, "user").unwrap();
        if !list.is_empty() || started.elapsed() > Duration::from_secs(8) {
            break list;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(seen.len(), 1, "the user's query in flight: {seen:?}");
    assert_eq!(seen[0].statistic, Statistic::Median);
    assert!(seen[0].rounds <= seen[0].max_rounds, "{seen:?}");
    // eve sees none of it; a relay is not a user at all
    assert_eq!(progress(&cluster, "user-eve").unwrap(), []);
    let refused = progress(&cluster, "relay-1").unwrap_err();
    assert!(refused.contains("relay-1 is not a user of this processor"), "{refused}");

    // relay-1 resumes; the median completes and nothing is in flight any more
    cluster.signal("relay-1", "CONT");
    let out = query.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", cluster.logs());
    assert_eq!(progress(&cluster, "user").unwrap(), []);
}
