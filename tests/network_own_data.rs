//! Issue 10, first part: users' own files. Relays that each serve their own
//! one-header CSV (a row of column names, the default `header_rows: 1`),
//! with blanks, negatives and 2-decimal values, give the exact answers a
//! plaintext computation gives, over real `crux-node` processes. Before
//! `header_rows`, the first two data rows of such a file were taken as
//! labels: a count came out 2 short per relay.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

mod common;

use common::cluster::*;
use common::nodes::*;
use serde_json::Value;

/// (units, price in hundredths) per row; `None` is a blank cell.
type Row = (Option<i64>, Option<i64>);

fn fixed(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", v.unsigned_abs() / 100, v.unsigned_abs() % 100)
}

/// As Crux prints an exact fixed-point value: no trailing zeros.
fn exact(hundredths: i64) -> String {
    fixed(hundredths).trim_end_matches('0').trim_end_matches('.').to_string()
}

fn write_csv(path: &std::path::Path, rows: &[Row]) {
    let mut text = String::from("units,price\n");
    for (units, price) in rows {
        let u = units.map(|u| u.to_string()).unwrap_or_default();
        let p = price.map(fixed).unwrap_or_default();
        text.push_str(&format!("{u},{p}\n"));
    }
    std::fs::write(path, text).unwrap();
}

fn json(out: std::process::Output) -> Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[actix_rt::test]
async fn relays_with_their_own_one_header_files_give_exact_answers() {
    setup();
    let dir = tempfile::tempdir().unwrap();
    // three relays, three files of different lengths
    let files: Vec<Vec<Row>> = vec![
        (0..37).map(|i| (Some(i * 13 - 100), if i % 5 == 0 { None } else { Some(i * 251 - 999) })).collect(),
        (0..52).map(|i| (if i % 7 == 3 { None } else { Some(1000 - i * i) }, Some(i * 17 + 5))).collect(),
        (0..45).map(|i| (Some(i % 9), Some(-(i * 33)))).collect(),
    ];
    let paths: Vec<_> = (1..=3).map(|j| dir.path().join(format!("relay-{j}.csv"))).collect();
    for (path, rows) in paths.iter().zip(&files) {
        write_csv(path, rows);
    }
    let mut cluster = Cluster::init_with_data(&paths[0], &["--exact"]);
    // each relay serves its own whole file (a real deployment), not a slice
    for (j, path) in paths.iter().enumerate() {
        let yaml_path = cluster.path(&format!("relay-{}.yaml", j + 1));
        let yaml = std::fs::read_to_string(&yaml_path).unwrap();
        assert!(yaml.contains("header_rows: 1"), "init writes the default header_rows: {yaml}");
        let mut cfg: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
        let source = &mut cfg["relay"]["sources"][0];
        source["path"] = serde_yaml_ng::Value::String(path.display().to_string());
        source["shard"] = serde_yaml_ng::Value::Null;
        std::fs::write(&yaml_path, serde_yaml_ng::to_string(&cfg).unwrap()).unwrap();
    }
    cluster.start_all(&BACKEND);
    cluster.start("processor");
    let user = Peer::new(cluster.config("user"));
    user.wait_ready(&cluster, &["processor"]).await;
    let user_yaml = cluster.path("user.yaml");

    let all: Vec<Row> = files.concat();
    let units: Vec<i64> = all.iter().filter_map(|r| r.0).collect();
    let prices: Vec<i64> = all.iter().filter_map(|r| r.1).collect();
    let query = |args: &[&str]| json(cluster.query(&user_yaml, args));

    let a = query(&["count", "--exact", "--json", "units"]);
    assert_eq!(a["exact_value"], units.len().to_string(), "{a}");
    assert_eq!(a["relays"], 3);
    let a = query(&["sum", "--exact", "--json", "units"]);
    assert_eq!(a["exact_value"], units.iter().sum::<i64>().to_string());
    let a = query(&["count", "--exact", "--json", "price"]);
    assert_eq!(a["exact_value"], prices.len().to_string());
    let a = query(&["sum", "--exact", "--json", "price"]);
    assert_eq!(a["exact_value"], exact(prices.iter().sum::<i64>()));
    let mut sorted = prices.clone();
    sorted.sort();
    let median = sorted[sorted.len().div_ceil(2) - 1]; // lower median: rank ceil(n/2)
    let a = query(&["median", "--exact", "--json", "price"]);
    assert_eq!(a["exact_value"], exact(median), "{a}");
    let min = units.iter().min().unwrap();
    let a = query(&["min", "--exact", "--json", "units"]);
    assert_eq!(a["exact_value"], min.to_string());
}

/// Issue 10: DP max (and min, median) with many values exactly at the
/// bounds, over real nodes: every query answers, inside the bounds. It used
/// to fail most of the time ("search grid leaves the query's bounds").
#[actix_rt::test]
async fn dp_searches_at_the_bounds_answer_inside_them_over_real_nodes() {
    setup();
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("units\n");
    for i in 0..300 {
        let v = match i % 4 {
            0 => 900,
            1 => -20,
            _ => (i * 37) % 921 - 20,
        };
        csv.push_str(&format!("{v}\n"));
    }
    let data = dir.path().join("units.csv");
    std::fs::write(&data, csv).unwrap();
    let mut cluster = Cluster::init_with_data(&data, &["--budget", "1000"]);
    cluster.start_all(&BACKEND);
    cluster.start("processor");
    let user = Peer::new(cluster.config("user"));
    user.wait_ready(&cluster, &["processor"]).await;
    let user_yaml = cluster.path("user.yaml");
    for stat in ["max", "min", "median"] {
        for _ in 0..6 {
            let a =
                json(cluster.query(&user_yaml, &[stat, "--epsilon", "1", "--bounds", "-20:900", "--json", "units"]));
            let v = a["value"].as_f64().unwrap();
            assert!((-20.0..=900.0).contains(&v), "{stat}: {v}");
            let ci = a["ci95"].as_array().unwrap();
            assert!(ci[0].as_f64().unwrap() >= -20.0 && ci[1].as_f64().unwrap() <= 900.0, "{a}");
            assert!(a.get("exact_value").is_none() && a["noisy_value"].is_string(), "{a}");
        }
    }
}
