//! The distributed key generation over QUIC between real `crux-node keygen`
//! processes: a silent authority is left out (the run restarts without it),
//! the key generation serves only the other authorities (the processor's
//! certificate is refused at the handshake), and shares are written mode
//! 0600, one per authority, never for the silent one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]
#![cfg(unix)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::cluster::{Cluster, Layout, BIN};
use common::data_path;
use crux::actors::keys::{identity, pin, resolve, transport_config};
use crux::actors::transport::{client_endpoint, Client, TransportConfig};
use crux::protocol::keygen::{KeygenReply, KeygenRequest, Want};
use crux::protocol::wire::{decode, encode};

fn keygen(cluster: &Cluster, name: &str) -> std::process::Child {
    Command::new(BIN)
        .args(["keygen", "--threshold", "2", "--phase-timeout", "3", "--config"])
        .arg(cluster.path(&format!("{name}.yaml")))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[actix_rt::test]
async fn a_silent_authority_is_left_out_and_only_authorities_are_served() {
    let cluster = Cluster::init_layout(Layout::FULL, &data_path("areas.xlsx"), &["--header-rows", "3"]);
    // init ran a key generation; start a fresh one with authority-3 silent
    for i in 1..=3 {
        std::fs::remove_file(cluster.path(&format!("keys/authority-{i}.share"))).unwrap();
    }
    std::fs::remove_file(cluster.path("cluster-key.bin")).unwrap();
    let a1 = keygen(&cluster, "authority-1");
    let a2 = keygen(&cluster, "authority-2");
    tokio::time::sleep(Duration::from_millis(700)).await;

    let request = encode(&KeygenRequest { run: 0, want: Want::Round1 }).unwrap();
    let a1_cfg = cluster.config("authority-1");
    let a1_addr = resolve(&a1_cfg.cluster.authorities[0]).unwrap();
    // the processor's certificate is not pinned by the key generation
    let pcfg = transport_config(&cluster.config("processor")).unwrap();
    let processor = Client::new(client_endpoint(&pcfg).unwrap(), &pcfg);
    let err = processor.request("authority-1", a1_addr, &request).await.unwrap_err();
    assert!(!err.to_string().is_empty());
    // authority-3's certificate is: it gets authority-1's public round-1 package
    let a3_cfg = cluster.config("authority-3");
    let tcfg = TransportConfig {
        identity: identity(&a3_cfg).unwrap(),
        peers: vec![pin(&a3_cfg.cluster.authorities[0]).unwrap()],
        ..transport_config(&a3_cfg).unwrap()
    };
    let a3 = Client::new(client_endpoint(&tcfg).unwrap(), &tcfg);
    let reply = a3.request("authority-1", a1_addr, &request).await.unwrap();
    match decode::<KeygenReply>(&reply, 1 << 20).unwrap() {
        KeygenReply::Round1(message) => assert_eq!(message.sender, 1),
        other => panic!("expected authority-1's round-1 package, got {other:?}"),
    }
    // a round-2 share is only for its recipient: authority-3 never gets one
    // (authority-1 dealt none yet, or none addressed to it once it restarted)
    let asked = encode(&KeygenRequest { run: 0, want: Want::Round2 }).unwrap();
    let reply = a3.request("authority-1", a1_addr, &asked).await.unwrap();
    assert!(!matches!(decode::<KeygenReply>(&reply, 1 << 20).unwrap(), KeygenReply::Round2(_)));

    for (name, child) in [("authority-1", a1), ("authority-2", a2)] {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        assert!(stderr.contains("restarting without them"), "{name}: {stderr}");
        let share = cluster.path(&format!("keys/{name}.share"));
        assert_eq!(std::fs::metadata(&share).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert!(!cluster.path("keys/authority-3.share").exists());
    let committee: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cluster.path("cluster-key.bin")).unwrap()).unwrap();
    let members: Vec<&str> =
        committee["members"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(members, ["authority-1", "authority-2"]);
    assert_eq!(committee["threshold"], 2);
    // a node configured with 3 authorities refuses this committee file, saying why
    let out = Command::new(BIN).args(["start", "--config"]).arg(cluster.path("relay-1.yaml")).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("config names authorities"), "{stderr}");
}
