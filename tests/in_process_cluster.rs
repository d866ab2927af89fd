//! A whole cluster in one process: every node's real code
//! (`actors::node::prepare`, `Prepared::bind` and `bind_metrics` on 127.0.0.1 port 0,
//! `start` with a shutdown future) inside one actix System, over real QUIC
//! and real LMDB, with the config files `crux-node init` writes. The user
//! asks through the same client `crux-node query` uses; every node's
//! `/readyz` answers over HTTP. No ports to reserve, no processes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::cluster::Cluster;
use crux::actors::client::ask_processor;
use crux::actors::node;
use crux::config::NodeConfig;
use crux::protocol::{ProcessorRequest, ProcessorResponse};
use crux::stats::{QueryParams, Statistic};
use tokio::sync::oneshot;

const NODES: [&str; 6] = ["authority-1", "authority-2", "relay-1", "relay-2", "relay-3", "processor"];

/// Points every peer address in `cfg` at the in-process node of that name.
fn point_at(cfg: &mut NodeConfig, addrs: &BTreeMap<String, SocketAddr>) {
    let at = |name: &str| addrs[name].to_string();
    cfg.cluster.processor.address = at(&cfg.cluster.processor.name);
    for a in &mut cfg.cluster.authorities {
        a.address = at(&a.name);
    }
    for r in &mut cfg.cluster.relays {
        r.peer.address = at(&r.peer.name);
    }
}

#[test]
fn a_whole_cluster_runs_in_one_process_on_port_0() {
    let cluster = Cluster::init(&["--exact"]);
    let configs: Vec<NodeConfig> = NODES.iter().map(|n| cluster.config(n)).collect();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let nodes = std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            // prepare and bind every node first: the processor must know the
            // others' ports (preparing reads keys and the table, no address)
            let mut bound = Vec::new();
            let mut http = BTreeMap::new();
            for cfg in configs {
                let prepared = node::prepare(&cfg).unwrap();
                let endpoint = prepared.bind("127.0.0.1:0".parse().unwrap()).unwrap();
                let metrics = node::bind_metrics("127.0.0.1:0".parse().unwrap()).unwrap();
                http.insert(cfg.name.clone(), metrics.local_addr().unwrap());
                bound.push((cfg, prepared, node::Listeners { quic: endpoint, metrics: Some(metrics) }));
            }
            let addrs: BTreeMap<String, SocketAddr> =
                bound.iter().map(|(cfg, _, l)| (cfg.name.clone(), l.quic.local_addr().unwrap())).collect();
            let mut stops = Vec::new();
            let mut running = Vec::new();
            for (mut cfg, prepared, listeners) in bound {
                point_at(&mut cfg, &addrs);
                let (tx, rx) = oneshot::channel::<()>();
                stops.push(tx);
                running.push(actix_rt::spawn(async move {
                    node::start(&cfg, prepared, listeners, async move {
                        let _ = rx.await;
                    })
                    .await
                }));
            }
            ready_tx.send((addrs, http)).unwrap();
            let _ = stop_rx.await;
            for stop in stops {
                let _ = stop.send(());
            }
            let mut stopped = 0;
            for node in running {
                node.await.unwrap().unwrap();
                stopped += 1;
            }
            stopped
        })
    });
    let (addrs, http) = ready_rx.recv_timeout(Duration::from_secs(120)).expect("the nodes started");
    assert!(addrs.values().all(|a| a.port() != 0 && a.ip().is_loopback()), "{addrs:?}");

    let mut user = cluster.config("user");
    point_at(&mut user, &addrs);
    let (_, labels, stats) = common::expected_columns().into_iter().find(|(c, _, _)| c == "C").unwrap();
    let mut params = QueryParams::new(Statistic::Sum);
    params.exact = true;
    let request = ProcessorRequest::Query { labels: labels.clone(), params };
    let answer = match ask_processor(&user, &request).unwrap() {
        ProcessorResponse::Answer(a) => a,
        other => panic!("{other:?}"),
    };
    assert_eq!(answer.result.value.exact_string(), stats["sum"].as_str().unwrap());
    assert_eq!(answer.relays, ["relay-1", "relay-2", "relay-3"]);
    // the cluster as the processor sees it: every node up at its port-0 address
    let ProcessorResponse::ClusterStatus(peers) = ask_processor(&user, &ProcessorRequest::ClusterStatus).unwrap()
    else {
        panic!("cluster status")
    };
    assert_eq!(peers.len(), 5);
    for peer in &peers {
        assert!(peer.status.is_ok(), "{peer:?}");
        assert_eq!(peer.address, addrs[&peer.name].to_string());
    }

    // every node serves /readyz on its port-0 HTTP listener: the processor
    // once its probe reached every peer (within one probe interval)
    for (name, addr) in &http {
        let started = std::time::Instant::now();
        loop {
            let (status, body) = common::http::get(*addr, "/readyz").unwrap();
            if status == 200 {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "{name}: {status} {body}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // every node stops when its shutdown future completes, and start returns Ok
    stop_tx.send(()).unwrap();
    assert_eq!(nodes.join().unwrap(), NODES.len());
}
