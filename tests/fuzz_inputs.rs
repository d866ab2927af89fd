//! Property-based random-input harnesses for the two readers of untrusted
//! files: the config loader (`NodeConfig::load`) and the spreadsheet/CSV
//! reader (`crux::data::read_column`). Inputs are random bytes and mutated
//! copies of real files (configs/*.yaml, tests/data/areas.{xlsx,xls,ods,csv})
//! written to temp files; the property is "returns Ok or Err, never panics".
//!
//! 64 cases per property by default (CI); scale with `PROPTEST_CASES`. A long
//! session, with memory capped so a runaway allocation aborts the run instead
//! of exhausting the machine, keeping each mutated file for a replay:
//!   (ulimit -v 8000000; FUZZ_LAST_INPUT=/tmp/fuzz PROPTEST_CASES=50000 \
//!    cargo test --test fuzz_inputs)
//!   FUZZ_REPLAY=/tmp/fuzz/last-areas.xls cargo test --test fuzz_inputs replay -- --ignored
//! (50000 cases per property, 250000 inputs, took 314 s in the debug profile.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

use std::path::{Path, PathBuf};

use crux::config::NodeConfig;
use crux::data::{read_column, SourceSpec};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn seeds(dir: &str, names: &[&str]) -> Vec<(String, Vec<u8>)> {
    names.iter().map(|n| (n.to_string(), std::fs::read(root().join(dir).join(n)).unwrap())).collect()
}

/// One edit of a byte string.
#[derive(Clone, Debug)]
enum Edit {
    Flip { at: usize, byte: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
    Truncate { at: usize },
    Duplicate { at: usize, len: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Flip { at, byte }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(at, bytes)| Edit::Insert { at, bytes }),
        (any::<usize>(), 1usize..256).prop_map(|(at, len)| Edit::Delete { at, len }),
        any::<usize>().prop_map(|at| Edit::Truncate { at }),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Edit::Duplicate { at, len }),
    ]
}

/// YAML-ish tokens that make mutations reach deeper than random bytes do.
const YAML_TOKENS: &[&str] = &[
    ":",
    "- ",
    "\n",
    "\n  ",
    "\t",
    "null",
    "~",
    "''",
    "\"",
    "{",
    "}",
    "[",
    "]",
    "&a ",
    "*a",
    "!!binary ",
    "!!str ",
    "0x1f",
    "-1",
    "99999999999999999999999",
    "1e400",
    ".nan",
    "true",
    "yes",
    "<<: *a\n",
    "? ",
    "|\n",
    ">\n",
    "#",
    "%YAML 1.2\n",
    "---\n",
    "...\n",
    "listen: ",
    "role: relay\n",
    "role: authority\n",
    "role: processor\n",
    "max_frame_bytes: 0\n",
    "min_relays: 0\n",
    "budget_epsilon: -1\n",
    "connect_ms: 0\n",
    "public_key: zz\n",
    "sources: []\n",
    "shard: {index: 5, count: 2}\n",
];

#[derive(Clone, Debug)]
enum YamlEdit {
    Bytes(Edit),
    Token { at: usize, token: usize },
    DropLine { line: usize },
    SwapLines { a: usize, b: usize },
}

fn yaml_edit() -> impl Strategy<Value = YamlEdit> {
    prop_oneof![
        edit().prop_map(YamlEdit::Bytes),
        (any::<usize>(), 0..YAML_TOKENS.len()).prop_map(|(at, token)| YamlEdit::Token { at, token }),
        any::<usize>().prop_map(|line| YamlEdit::DropLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| YamlEdit::SwapLines { a, b }),
    ]
}

fn apply(bytes: &mut Vec<u8>, e: &Edit) {
    let n = bytes.len();
    let pos = |at: usize| if n == 0 { 0 } else { at % (n + 1) };
    match e {
        Edit::Flip { at, byte } => {
            if n > 0 {
                bytes[at % n] = *byte;
            }
        }
        Edit::Insert { at, bytes: ins } => {
            let p = pos(*at);
            bytes.splice(p..p, ins.iter().copied());
        }
        Edit::Delete { at, len } => {
            let p = pos(*at);
            let end = (p + len).min(n);
            bytes.drain(p..end);
        }
        Edit::Truncate { at } => bytes.truncate(pos(*at)),
        Edit::Duplicate { at, len } => {
            let p = pos(*at);
            let end = (p + len).min(n);
            let copy = bytes[p..end].to_vec();
            bytes.splice(p..p, copy);
        }
    }
}

fn apply_yaml(bytes: &mut Vec<u8>, e: &YamlEdit) {
    match e {
        YamlEdit::Bytes(b) => apply(bytes, b),
        YamlEdit::Token { at, token } => {
            let p = if bytes.is_empty() { 0 } else { at % (bytes.len() + 1) };
            bytes.splice(p..p, YAML_TOKENS[*token].bytes());
        }
        YamlEdit::DropLine { line } => {
            let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
            if !lines.is_empty() {
                let i = line % lines.len();
                lines.remove(i);
            }
            *bytes = lines.join(&b'\n');
        }
        YamlEdit::SwapLines { a, b } => {
            let mut lines: Vec<Vec<u8>> = bytes.split(|b| *b == b'\n').map(|l| l.to_vec()).collect();
            if !lines.is_empty() {
                let (i, j) = (a % lines.len(), b % lines.len());
                lines.swap(i, j);
            }
            *bytes = lines.join(&b'\n');
        }
    }
}

/// Writes `bytes` as `name` in a fresh temp dir and returns (dir, path).
fn temp_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

fn load_config(bytes: &[u8]) {
    let (_dir, path) = temp_file("node.yaml", bytes);
    let _ = NodeConfig::load(&path);
}

const DATA_FILES: [&str; 4] = ["areas.xlsx", "areas.xls", "areas.ods", "areas.csv"];

fn read_all_ways(path: &Path) {
    let h = ["Population", "All usual residents", "2021"].map(String::from).to_vec();
    let _ = read_column(&SourceSpec::new(path).with_header_rows(3), &h);
    let _ = read_column(&SourceSpec::new(path).with_header_rows(3), &["Land".to_string()]);
    let mut sheet = SourceSpec::new(path).with_header_rows(3);
    sheet.sheet = Some("iadatasheet2".into());
    let _ = read_column(&sheet, &["Land".to_string()]);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_loader_never_panics_on_random_text(text in "(?s).{0,400}") {
        load_config(text.as_bytes());
    }

    #[test]
    fn config_loader_never_panics_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        load_config(&bytes);
    }

    #[test]
    fn config_loader_never_panics_on_mutated_configs(
        seed in 0usize..4,
        edits in prop::collection::vec(yaml_edit(), 1..8),
    ) {
        let seeds = seeds("configs", &["authority.yaml", "processor.yaml", "relay.yaml", "user.yaml"]);
        let mut bytes = seeds[seed].1.clone();
        for e in &edits {
            apply_yaml(&mut bytes, e);
        }
        load_config(&bytes);
    }

    #[test]
    fn spreadsheet_reader_never_panics_on_random_bytes(
        ext in 0usize..4,
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let (_dir, path) = temp_file(DATA_FILES[ext], &bytes);
        read_all_ways(&path);
    }

    #[test]
    fn spreadsheet_reader_never_panics_on_mutated_files(
        file in 0usize..4,
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let seeds = seeds("tests/data", &DATA_FILES);
        let (name, original) = &seeds[file];
        let mut bytes = original.clone();
        for e in &edits {
            apply(&mut bytes, e);
        }
        keep_last_input(name, &bytes);
        let (_dir, path) = temp_file(name, &bytes);
        read_all_ways(&path);
    }
}

/// With `FUZZ_LAST_INPUT=DIR`, every mutated file is also written to DIR
/// before it is read: after a crash or abort the culprit is the newest file.
fn keep_last_input(name: &str, bytes: &[u8]) {
    if let Ok(dir) = std::env::var("FUZZ_LAST_INPUT") {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(Path::new(&dir).join(format!("last-{name}")), bytes);
    }
}

/// Re-reads one saved input: `FUZZ_REPLAY=path cargo test --test fuzz_inputs replay -- --ignored`.
#[test]
#[ignore]
fn replay() {
    let path = std::env::var("FUZZ_REPLAY").expect("FUZZ_REPLAY=path");
    read_all_ways(Path::new(&path));
}

/// Regression: a mutated areas.xls whose FAT chain loops made calamine
/// allocate without bound (the fuzz run was OOM-killed at 23 GB). Now a
/// clear error before calamine sees the file.
#[test]
fn xls_with_a_looping_sector_chain_is_an_error() {
    for name in ["xls_fat_loop.xls", "xls_fat_loop_2.xls"] {
        let path = root().join("tests/data/fuzz").join(name);
        let err =
            read_column(&SourceSpec::new(&path).with_header_rows(3), &["Land".to_string()]).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains("loops"), "{err}");
    }
}

/// Regression: one byte of areas.xls changed made calamine's MULRK parser
/// subtract with overflow (a panic in debug builds, found by the fuzz
/// harness); the reader now returns an error naming the file.
#[test]
fn xls_record_that_overflowed_calamine_is_an_error() {
    let mut bytes = std::fs::read(root().join("tests/data/areas.xls")).unwrap();
    let at = (4_269_715_196_956_001_033u64 % bytes.len() as u64) as usize;
    bytes[at] = 14;
    let (_dir, path) = temp_file("areas.xls", &bytes);
    match read_column(&SourceSpec::new(&path).with_header_rows(3), &["Land".to_string()]) {
        Ok(_) => {}
        Err(e) => assert!(e.to_string().contains("areas.xls"), "{e}"),
    }
}
