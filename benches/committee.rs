//! What the authority committee costs (issue 12). Prints figures (a bench
//! binary, no assertions beyond sanity checks):
//!
//! 1. The distributed key generation in one process, every member's work
//!    summed (CPU), for n = 3, 5, 9 with t = n and t = ⌈n/2⌉ + 1: the pure
//!    cryptography, median of 5 runs.
//! 2. Resharing n → n + 1 (t dealers, same t), summed over dealers and new
//!    members, median of 5 runs.
//! 3. `crux-node keygen` over QUIC on loopback, n processes at once, wall
//!    time (includes process start, TLS handshakes and the 200 ms polling
//!    between phases), median of 3 runs.
//! 4. Query latency in memory (every role's state machine, real crypto,
//!    tests/data/areas.xlsx over 3 relays): exact sum and exact median with
//!    5 authorities at t = 5 and at t = 3, median of 5 runs.
//!
//! Run: `cargo bench --bench committee`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crux::actors::column_source::FileColumnSource;
use crux::crypto::dkg::{deal_reshare, CommitteeKey, Dkg, DkgShare, Outcome, ResharePlan, ReshareReceiver};
use crux::crypto::{DlogSolver, MemoryTable};
use crux::data::{Shard, SourceSpec};
use crux::harness::{MemoryCluster, Options};
use crux::protocol::relay::ColumnSource;
use crux::stats::{QueryParams, Statistic};
use rand::rngs::OsRng;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// A whole DKG among `n` members in one process; every member's result.
fn dkg(n: u16, t: u16) -> Vec<(DkgShare, CommitteeKey)> {
    let members: Vec<u16> = (1..=n).collect();
    let mut dkgs = BTreeMap::new();
    let mut round1 = Vec::new();
    for m in &members {
        let (d, message) = Dkg::start(*m, &members, t, &mut OsRng).unwrap();
        dkgs.insert(*m, d);
        round1.push(message);
    }
    for message in round1 {
        for (m, d) in dkgs.iter_mut().filter(|(m, _)| **m != message.sender) {
            d.receive_round1(message.clone()).unwrap_or_else(|e| panic!("{m}: {e}"));
        }
    }
    let mut round2 = Vec::new();
    for d in dkgs.values_mut() {
        round2.extend(d.round2().unwrap());
    }
    for (recipient, message) in round2 {
        dkgs.get_mut(&recipient).unwrap().receive_round2(message).unwrap();
    }
    let lists: Vec<_> = dkgs.values_mut().map(|d| d.complaints().unwrap()).collect();
    for list in lists {
        for (_, d) in dkgs.iter_mut().filter(|(m, _)| **m != list.accuser) {
            assert!(d.receive_complaints(list.clone()).unwrap().is_none());
        }
    }
    dkgs.values_mut()
        .map(|d| match d.finish().unwrap() {
            Outcome::Done(share, key) => (share, key),
            Outcome::Restart { excluded } => panic!("restart without {excluded:?}"),
        })
        .collect()
}

/// Reshares the committee of `shares` (dealers: the first t) to n + 1 members.
fn reshare(shares: &[(DkgShare, CommitteeKey)], t: u16) -> Duration {
    let old = shares[0].1.clone();
    let n = u16::try_from(shares.len()).unwrap();
    let dealers: Vec<u16> = (1..=t).collect();
    let new_members: Vec<u16> = (1..=n + 1).collect();
    let plan = ResharePlan::new(old.clone(), &dealers, &new_members, t).unwrap();
    let started = Instant::now();
    let mut receivers: BTreeMap<u16, ReshareReceiver> =
        new_members.iter().map(|m| (*m, ReshareReceiver::new(plan.clone(), *m).unwrap())).collect();
    for (share, _) in shares.iter().take(usize::from(t)) {
        let (broadcast, privates) = deal_reshare(&plan, share, &mut OsRng).unwrap();
        for r in receivers.values_mut() {
            r.receive_broadcast(broadcast.clone()).unwrap();
        }
        for (recipient, message) in privates {
            receivers.get_mut(&recipient).unwrap().receive_private(message).unwrap();
        }
    }
    for r in receivers.values() {
        let (_, key) = r.finish().unwrap();
        assert_eq!(key.group_key, old.group_key);
    }
    started.elapsed()
}

fn keygen_over_quic(n: u32, t: u32, port: u16) -> Duration {
    let bin = env!("CARGO_BIN_EXE_crux-node");
    let dir = tempfile::tempdir().unwrap();
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/areas.xlsx");
    let out = Command::new(bin)
        .args(["init", "--out"])
        .arg(dir.path())
        .arg("--data")
        .arg(&data)
        .args(["--header-rows", "3", "--relays", "2", "--dlog-bits", "10"])
        .args(["--authorities", &n.to_string(), "--threshold", &t.to_string(), "--base-port", &port.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // init ran keygen once; time a fresh one
    for i in 1..=n {
        std::fs::remove_file(dir.path().join(format!("keys/authority-{i}.share"))).unwrap();
    }
    std::fs::remove_file(dir.path().join("cluster-key.bin")).unwrap();
    let started = Instant::now();
    let children: Vec<_> = (1..=n)
        .map(|i| {
            Command::new(bin)
                .args(["keygen", "--threshold", &t.to_string(), "--config"])
                .arg(dir.path().join(format!("authority-{i}.yaml")))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    started.elapsed()
}

fn cluster(authorities: usize, threshold: usize, solver: &Arc<DlogSolver<Arc<MemoryTable>>>) -> MemoryCluster {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/areas.xlsx");
    let mut declared = SourceSpec::new(data).with_header_rows(3);
    crux::data::source::declare_detected_decimals(&mut declared).unwrap();
    let sources = (0..3u32)
        .map(|j| {
            let mut spec = declared.clone();
            spec.shard = Some(Shard { index: j, count: 3 });
            Box::new(FileColumnSource::new(&format!("relay-{}", j + 1), vec![spec])) as Box<dyn ColumnSource>
        })
        .collect();
    let options = Options { authorities, threshold: Some(threshold), ..Options::new(true, 2) };
    MemoryCluster::new(sources, options, solver.clone()).unwrap()
}

fn main() {
    println!("1. DKG in one process (all members' CPU summed), median of 5");
    println!("{:>3} {:>3} {:>12} {:>14}", "n", "t", "total", "per member");
    for n in [3u16, 5, 9] {
        for t in [n, n / 2 + 1] {
            let runs: Vec<Duration> = (0..5)
                .map(|_| {
                    let started = Instant::now();
                    let out = dkg(n, t);
                    let took = started.elapsed();
                    assert_eq!(out.len(), usize::from(n));
                    took
                })
                .collect();
            let m = median(runs);
            println!("{n:>3} {t:>3} {:>12} {:>14}", ms(m), ms(m / u32::from(n)));
        }
    }

    println!("\n2. resharing n -> n+1 (t dealers), all parties' CPU summed, median of 5");
    for n in [3u16, 5, 9] {
        let t = n / 2 + 1;
        let shares = dkg(n, t);
        let m = median((0..5).map(|_| reshare(&shares, t)).collect());
        println!("  n={n} t={t} -> n={}: {}", n + 1, ms(m));
    }

    println!("\n3. crux-node keygen over QUIC on loopback (n processes at once), wall time, median of 3");
    for (k, n) in [3u32, 5, 9].into_iter().enumerate() {
        let t = n / 2 + 1;
        let port = 29_300 + u16::try_from(k).unwrap() * 20;
        let m = median((0..3).map(|_| keygen_over_quic(n, t, port)).collect());
        println!("  n={n} t={t}: {}", ms(m));
    }

    println!("\n4. query latency in memory, 5 authorities, median of 5");
    let solver = Arc::new(DlogSolver::new(Arc::new(MemoryTable::build(16).unwrap()), 30).unwrap());
    let labels = ["Population", "All usual residents", "2021"];
    for st in [Statistic::Sum, Statistic::Median] {
        for t in [5usize, 3] {
            let mut c = cluster(5, t, &solver);
            let runs: Vec<Duration> = (0..5)
                .map(|_| {
                    let started = Instant::now();
                    c.query(&labels, QueryParams::new(st)).unwrap();
                    started.elapsed()
                })
                .collect();
            println!("  exact {st:<7} t={t} of 5: {}", ms(median(runs)));
        }
    }
}
