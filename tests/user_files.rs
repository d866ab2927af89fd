//! Issue 10: files as users bring them. One header row of column names
//! (`header_rows: 1`, the default), two sheets, blanks, negatives and
//! 2-decimal values, as CSV, .xlsx and .ods (`tests/data/user/`, made by
//! `scripts/make_user_files.py` with the plaintext answers in
//! `expected.json`). Each sheet is one relay; every role's real state
//! machine answers count, sum, min, max and median exactly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

mod common;

use crux::actors::column_source::FileColumnSource;
use crux::data::source::declare_detected_decimals;
use crux::data::SourceSpec;
use crux::protocol::relay::ColumnSource;
use crux::stats::{QueryParams, Statistic};
use serde_json::Value;

fn user_file(name: &str) -> std::path::PathBuf {
    common::data_path("user").join(name)
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(user_file("expected.json")).unwrap()).unwrap()
}

/// One relay per (file, sheet), declared decimals as `init` would write them.
fn relays(sources: &[(&str, Option<&str>)]) -> Vec<Box<dyn ColumnSource>> {
    sources
        .iter()
        .enumerate()
        .map(|(j, (file, sheet))| {
            let mut spec = SourceSpec::new(user_file(file));
            spec.sheet = sheet.map(String::from);
            declare_detected_decimals(&mut spec).unwrap();
            assert_eq!(spec.header_rows, 1);
            Box::new(FileColumnSource::new(&format!("relay-{}", j + 1), vec![spec])) as Box<dyn ColumnSource>
        })
        .collect()
}

fn check(label: &str, sources: &[(&str, Option<&str>)], want: &Value) {
    let mut cluster = common::with_sources(relays(sources), true, 2);
    for column in ["units", "price"] {
        let w = &want[column];
        let a = cluster.query(&[column], QueryParams::new(Statistic::Count)).unwrap();
        assert_eq!(a.result.count.to_string(), w["count"].to_string(), "{label} {column} count");
        for (st, key) in [
            (Statistic::Sum, "sum"),
            (Statistic::Min, "min"),
            (Statistic::Max, "max"),
            (Statistic::Median, "median_lower"),
        ] {
            let a = cluster.query(&[column], QueryParams::new(st)).unwrap();
            assert_eq!(a.result.value.exact_string(), w[key].as_str().unwrap(), "{label} {column} {st}");
        }
    }
}

#[test]
fn one_header_csv_xlsx_and_ods_give_the_plaintext_answers() {
    let e = expected();
    check("csv", &[("site_a.csv", None), ("site_b.csv", None)], &e["both"]);
    check("xlsx", &[("sites.xlsx", Some("Site A")), ("sites.xlsx", Some("Site B"))], &e["both"]);
    check("ods", &[("sites.ods", Some("Site A")), ("sites.ods", Some("Site B"))], &e["both"]);
    // a single sheet alone reads only its own rows
    let a = crux::data::read_column(
        &SourceSpec { sheet: Some("Site B".into()), ..SourceSpec::new(user_file("sites.xlsx")) },
        &["units".to_string()],
    )
    .unwrap();
    assert_eq!(a.values.len().to_string(), e["sheets"]["Site B"]["units"]["count"].to_string());
    // the old fixed 3 header rows would have taken two data rows as labels
    let three =
        crux::data::read_column(&SourceSpec::new(user_file("site_a.csv")).with_header_rows(3), &["units".to_string()]);
    assert!(three.map(|c| c.values.len() != 8).unwrap_or(true));
}
