//! Reads the test spreadsheets in tests/data (areas.{xls,xlsx,ods,csv} and the
//! malformed files in bad/) through `crux::data` and compares every numeric
//! column, whole and split into 1..5 shards, with tests/data/expected_stats.json.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

use std::path::{Path, PathBuf};

use crux::data::{
    list_columns, read_column, read_column_all, DataError, Decimal, InvalidPolicy, LoadedSource, Shard, SourceSpec,
};
use serde_json::Value;

const FORMATS: [&str; 4] = ["areas.xls", "areas.xlsx", "areas.ods", "areas.csv"];

fn data_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn spec(name: &str) -> SourceSpec {
    SourceSpec { sheet: Some("iadatasheet2".to_string()), ..SourceSpec::new(data_path(name)).with_header_rows(3) }
}

fn labels(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn expected() -> Value {
    let text = std::fs::read_to_string(data_path("expected_stats.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A JSON number or decimal string, exactly, at `decimals` places.
fn scaled(value: &Value, decimals: u32) -> i128 {
    let text = match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    Decimal::parse(&text).unwrap().to_scale(decimals).unwrap_or_else(|| panic!("{text} at {decimals} decimals"))
}

fn sum(values: &[i128]) -> i128 {
    values.iter().sum()
}

fn sum_of_squares(values: &[i128]) -> i128 {
    values.iter().map(|v| v * v).sum()
}

#[test]
fn every_column_of_every_format_matches_expected_stats() {
    let expected = expected();
    let columns = expected["columns"].as_array().unwrap();
    assert_eq!(columns.len(), 18);
    for file in FORMATS {
        let source = LoadedSource::open(&spec(file)).unwrap();
        assert_eq!(source.data_rows(), 414, "{file}");
        for column in columns {
            let letter = column["column"].as_str().unwrap();
            let query = labels(&[
                column["group"].as_str().unwrap(),
                column["sub"].as_str().unwrap(),
                column["period"].as_str().unwrap(),
            ]);
            let what = format!("{file} column {letter}");
            let stats = &column["stats"];
            let decimals = u32::try_from(column["decimals"].as_u64().unwrap()).unwrap();

            let data = source.read_column(&query).unwrap();
            assert_eq!(data.column_ref, letter, "{what}");
            assert_eq!(data.labels, query, "{what}");
            assert_eq!(data.decimals, decimals, "{what}");
            assert_eq!(data.rows, 414, "{what}");
            assert_eq!(data.invalid_skipped, 0, "{what}");
            assert_eq!(data.values.len() as u64, stats["count"].as_u64().unwrap(), "{what}");
            assert_eq!(data.blank, stats["blank"].as_u64().unwrap(), "{what}");
            assert_eq!(sum(&data.values), scaled(&stats["scaled_sum"], 0), "{what}");
            assert_eq!(sum_of_squares(&data.values), scaled(&stats["scaled_sum_of_squares"], 0), "{what}");
            assert_eq!(data.values.iter().min().copied(), Some(scaled(&stats["min"], decimals)), "{what}");
            assert_eq!(data.values.iter().max().copied(), Some(scaled(&stats["max"], decimals)), "{what}");

            for n in 1..=5u32 {
                let relays = column["relays"][n.to_string()].as_array().unwrap();
                assert_eq!(relays.len(), n as usize);
                for (index, relay) in (0..n).zip(relays) {
                    let shard = Shard { index, count: n };
                    let part = source.read_column_sharded(&query, Some(shard)).unwrap();
                    let what = format!("{what} shard {index}/{n}");
                    assert_eq!(part.decimals, decimals, "{what}");
                    assert_eq!(part.rows, relay["rows"].as_u64().unwrap(), "{what}");
                    assert_eq!(part.values.len() as u64, relay["count"].as_u64().unwrap(), "{what}");
                    assert_eq!(sum(&part.values), scaled(&relay["sum"], decimals), "{what}");
                    assert_eq!(sum_of_squares(&part.values), scaled(&relay["sum_of_squares"], 2 * decimals), "{what}");
                }
            }
        }
    }
}

#[test]
fn read_column_with_shard_in_spec() {
    for file in FORMATS {
        let mut spec = spec(file);
        spec.shard = Some(Shard { index: 3, count: 4 });
        let data = read_column(&spec, &labels(&["Population", "All usual residents", "2021"])).unwrap();
        assert_eq!(data.column_ref, "H");
        assert_eq!((data.rows, data.values.len()), (105, 105));
        assert_eq!(sum(&data.values), 5_277_864);
        assert_eq!(sum_of_squares(&data.values), 8_107_338_703_464);
    }
}

#[test]
fn label_matching() {
    for file in FORMATS {
        let spec = spec(file);
        for query in [
            labels(&["Land"]),
            labels(&["Land area (square kilometres)"]),
            labels(&["Land", "2021"]),
            labels(&[" Land ", "Land area (square kilometres)", "2021"]),
        ] {
            assert_eq!(read_column(&spec, &query).unwrap().column_ref, "T", "{file} {query:?}");
        }
        // numeric year cells (2021.0 / Int 2021) match the text "2021"
        let h = read_column(&spec, &labels(&["Population", "All usual residents", "2021"])).unwrap();
        assert_eq!(h.column_ref, "H");
        assert_eq!(h.labels, labels(&["Population", "All usual residents", "2021"]));
        let o = read_column(&spec, &labels(&["Population change", "1996-2001"])).unwrap();
        assert_eq!(o.column_ref, "O");

        let err = read_column(&spec, &labels(&["Population"])).unwrap_err();
        match &err {
            DataError::AmbiguousColumn { matches, .. } => {
                assert_eq!(matches.len(), 12);
                assert!(matches.contains(&"Population / All usual residents / 2021 (H)".to_string()));
            }
            other => panic!("{file}: {other}"),
        }
        let message = err.to_string();
        assert!(message.contains(&spec.path.display().to_string()), "{message}");
        assert!(message.contains("(H)") && message.contains("(N)"), "{message}");

        let err = read_column(&spec, &labels(&["Populaton", "All usual residents", "2021"])).unwrap_err();
        match &err {
            DataError::NoSuchColumn { candidates, .. } => {
                assert!(!candidates.is_empty() && candidates.len() <= 5);
                assert!(candidates[0].contains("Population"), "{candidates:?}");
                assert!(candidates[0].contains("(H)"), "{candidates:?}");
            }
            other => panic!("{file}: {other}"),
        }
        assert!(err.to_string().contains("did you mean"), "{err}");

        let err = read_column(&spec, &labels(&["Population", "All usual residents", "2021", "x"])).unwrap_err();
        assert!(matches!(err, DataError::LabelCount { count: 4, .. }), "{err}");
        let err = read_column(&spec, &[]).unwrap_err();
        assert!(matches!(err, DataError::LabelCount { count: 0, .. }), "{err}");
        let err = read_column(&spec, &labels(&["Land", " "])).unwrap_err();
        assert!(matches!(err, DataError::EmptyLabel { position: 2, .. }), "{err}");

        // A and B are columns, but text
        let err = read_column(&spec, &labels(&["Municipality"])).unwrap_err();
        assert!(matches!(err, DataError::TextColumn { .. }), "{err}");
    }
}

#[test]
fn lists_all_columns() {
    for file in FORMATS {
        let columns = list_columns(&spec(file)).unwrap();
        assert_eq!(columns.len(), 20, "{file}");
        assert_eq!(columns[0], ("A".to_string(), labels(&["", "", "Code"])));
        assert_eq!(columns[1], ("B".to_string(), labels(&["", "", "Municipality"])));
        assert_eq!(columns[19], ("T".to_string(), labels(&["Land", "Land area (square kilometres)", "2021"])));
        assert_eq!(columns[13], ("N".to_string(), labels(&["Population", "Persons per square kilometre", "2021"])));
    }
}

#[test]
fn default_sheet_is_the_first() {
    let data = read_column(&SourceSpec::new(data_path("areas.ods")).with_header_rows(3), &labels(&["Land"])).unwrap();
    assert_eq!(data.values.len(), 414);
    let err = read_column(
        &SourceSpec { sheet: Some("Notes".into()), ..SourceSpec::new(data_path("areas.xlsx")).with_header_rows(3) },
        &labels(&["Land"]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("areas.xlsx"), "{err}");
}

#[test]
fn several_files_of_one_relay() {
    let query = labels(&["Population", "Persons per square kilometre", "2021"]);
    let mut first = spec("areas.csv");
    first.decimals = Some(4);
    let second = spec("areas.xls");
    let all = read_column_all(&[first, second], &query).unwrap();
    assert_eq!(all.decimals, 4);
    assert_eq!(all.rows, 828);
    assert_eq!(all.values.len(), 828);
    assert_eq!(sum(&all.values), 2 * 876_336_800);
    assert_eq!(&all.values[..414], &all.values[414..]);
    assert_eq!(all.column_ref, "N");
    assert!(matches!(read_column_all(&[], &query), Err(DataError::NoSources)));
    let data = read_column(&spec("areas.csv"), &query).unwrap();
    assert_eq!(data.rescaled(4).unwrap(), all.values[..414].to_vec());
}

fn bad(name: &str) -> SourceSpec {
    spec(&format!("bad/{name}"))
}

fn assert_names_path(err: &DataError, spec: &SourceSpec) {
    let message = err.to_string();
    assert!(message.contains(&spec.path.display().to_string()), "message does not name the file: {message}");
}

#[test]
fn bad_files_give_specific_errors() {
    let query = labels(&["Population", "All usual residents", "2021"]);
    type Check = fn(&DataError) -> bool;
    let cases: Vec<(&str, Check)> = vec![
        ("truncated.xls", |e| matches!(e, DataError::Open { .. })),
        ("not_a_workbook.xlsx", |e| matches!(e, DataError::Open { .. })),
        ("empty_sheet.xls", |e| matches!(e, DataError::EmptySheet { .. })),
        ("empty_sheet.xlsx", |e| matches!(e, DataError::EmptySheet { .. })),
        ("empty.csv", |e| matches!(e, DataError::EmptySheet { .. })),
        (
            "wrong_sheet_name.xlsx",
            |e| matches!(e, DataError::SheetNotFound { available, .. } if available == &["Sheet1".to_string()]),
        ),
        ("non_numeric.xls", |e| matches!(e, DataError::NotNumeric { .. })),
        ("non_numeric.xlsx", |e| matches!(e, DataError::NotNumeric { .. })),
        ("non_numeric.csv", |e| matches!(e, DataError::NotNumeric { .. })),
    ];
    for (name, expected) in cases {
        let spec = bad(name);
        let err = read_column(&spec, &query).unwrap_err();
        assert!(expected(&err), "{name}: unexpected error {err:?}");
        assert_names_path(&err, &spec);
    }
    let err = list_columns(&bad("empty.csv")).unwrap_err();
    assert!(matches!(err, DataError::EmptySheet { .. }));

    // the wrong-sheet file reads fine from its first sheet
    let mut first_sheet = bad("wrong_sheet_name.xlsx");
    first_sheet.sheet = None;
    let data = read_column(&first_sheet, &query).unwrap();
    assert_eq!((data.rows, data.values.len()), (10, 10));

    let err = read_column(&bad("wrong_sheet_name.xlsx"), &query).unwrap_err();
    assert!(err.to_string().contains("\"Sheet1\""), "{err}");

    // header only: no data, not an error
    let data = read_column(&bad("header_only.xlsx"), &query).unwrap();
    assert_eq!((data.rows, data.blank), (0, 0));
    assert!(data.values.is_empty());

    // unknown extension and missing file
    let readme = SourceSpec::new(data_path("README.md")).with_header_rows(3);
    let err = read_column(&readme, &query).unwrap_err();
    assert!(matches!(&err, DataError::UnknownFormat { extension, .. } if extension == "md"), "{err}");
    assert_names_path(&err, &readme);
    let missing = SourceSpec::new(data_path("missing.XLSX")).with_header_rows(3);
    let err = read_column(&missing, &query).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }), "{err}");
    assert_names_path(&err, &missing);
}

#[test]
fn non_numeric_cells() {
    let h = labels(&["Population", "All usual residents", "2021"]);
    for name in ["non_numeric.xls", "non_numeric.xlsx", "non_numeric.csv"] {
        let spec = bad(name);
        let err = read_column(&spec, &h).unwrap_err();
        match &err {
            DataError::NotNumeric { cell, value, .. } => {
                assert_eq!(cell, "H6", "{name}");
                assert_eq!(value, "n/a", "{name}");
            }
            other => panic!("{name}: {other}"),
        }
        let message = err.to_string();
        for part in ["H6", "\"n/a\"", "on_invalid: skip", "iadatasheet2"] {
            if name.ends_with(".csv") && part == "iadatasheet2" {
                continue;
            }
            assert!(message.contains(part), "{name}: {message}");
        }
        assert_names_path(&err, &spec);

        let skip = SourceSpec { on_invalid: InvalidPolicy::Skip, ..spec.clone() };
        let data = read_column(&skip, &h).unwrap();
        assert_eq!(data.invalid_skipped, 6, "{name}");
        assert_eq!((data.rows, data.values.len(), data.blank), (20, 14, 0), "{name}");

        // the other numeric columns still read fine, even with on_invalid: error
        let columns = list_columns(&spec).unwrap();
        for (letter, column_labels) in columns.iter().skip(2) {
            if letter == "H" {
                continue;
            }
            let data = read_column(&spec, column_labels).unwrap();
            assert_eq!(&data.column_ref, letter);
            assert_eq!(data.rows, 20, "{name} {letter}");
            assert_eq!(data.values.len() as u64 + data.blank, 20, "{name} {letter}");
        }
    }
}

#[test]
fn invalid_specs() {
    let query = labels(&["Land"]);
    let mut spec = spec("areas.csv");
    spec.shard = Some(Shard { index: 2, count: 2 });
    let err = read_column(&spec, &query).unwrap_err();
    assert!(matches!(err, DataError::BadShard { .. }), "{err}");
    assert_names_path(&err, &spec);
    spec.shard = Some(Shard { index: 0, count: 0 });
    assert!(matches!(read_column(&spec, &query), Err(DataError::BadShard { .. })));
    spec.shard = None;
    spec.decimals = Some(13);
    assert!(matches!(read_column(&spec, &query), Err(DataError::BadDecimals { .. })));
    spec.decimals = Some(1);
    let err = read_column(&spec, &query).unwrap_err();
    assert!(matches!(&err, DataError::TooManyDecimals { cell, found: 2, allowed: 1, .. } if cell == "T4"), "{err}");
}
