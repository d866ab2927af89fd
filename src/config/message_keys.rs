//! Test: every node.yaml key that a message names exists. Input: the string
//! literals of every `.rs` file under src/ (comments skipped), read from
//! disk; the keys are dotted names, either backquoted inside a literal
//! (`timeouts.query_ms`) or a whole literal ("cluster.relays.public_key",
//! the key argument of a config error). Schema: a `RawConfig` with every
//! optional part filled, serialized to YAML and walked. Output: a failing
//! test naming each unknown key and where it is written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

use super::raw::*;
use crate::data::source::{ColumnDecimals, Shard};
use crate::data::SourceSpec;

/// Dotted names ending in one of these are file names (`processor.yaml`,
/// `data.mdb`), not keys; no key ends in one (checked below).
const FILE_EXTENSIONS: &[&str] = &["bin", "crt", "csv", "json", "mdb", "ods", "rs", "sha256", "xls", "xlsx", "yaml"];

/// Other dotted names in src/ literals that are not keys: key files and a
/// host name in tests (`.key` can't be excluded as an extension: `tls.key`
/// is a key).
const NOT_KEYS: &[&str] = &["authority.key", "relay.key", "nope.key", "relay.example"];

fn is_file_name(name: &str) -> bool {
    name.rsplit('.').next().is_some_and(|ext| FILE_EXTENSIONS.contains(&ext))
}

/// A config with every section, every optional key and one entry in every
/// list, so that its YAML holds every key. A struct literal: a new field
/// fails to compile here until it is added.
fn full_config() -> RawConfig {
    let peer = || RawPeer { name: "n".into(), address: "a".into(), cert: "c".into() };
    let mut source = SourceSpec::new(PathBuf::from("data.csv"));
    source.sheet = Some("s".into());
    source.shard = Some(Shard { index: 0, count: 1 });
    source.decimals = Some(0);
    source.column_decimals = vec![ColumnDecimals { labels: vec!["l".into()], decimals: 0 }];
    RawConfig {
        node: RawNode { name: "n".into(), role: "r".into(), listen: Some("l".into()), data_dir: Some("d".into()) },
        tls: RawTls { cert: "c".into(), key: "k".into() },
        timeouts: RawTimeouts::default(),
        limits: RawLimits::default(),
        cluster: RawCluster {
            dataset: "d".into(),
            joint_key: "j".into(),
            min_relays: 1,
            processor: peer(),
            authorities: vec![peer()],
            relays: vec![RawRelayPeer {
                name: "n".into(),
                address: "a".into(),
                cert: "c".into(),
                public_key: "p".into(),
            }],
            users: vec![RawUser { name: "n".into(), cert: "c".into() }],
        },
        authority: Some(RawAuthority {
            key_share: "k".into(),
            allow_exact: false,
            budget_epsilon: 1.0,
            replay_window_secs: 1,
            allow_single_relay: false,
        }),
        relay: Some(RawRelay { identity_key: "i".into(), sources: vec![source] }),
        processor: Some(RawProcessor { dlog_dir: Some("d".into()), ..RawProcessor::default() }),
        metrics: Some(RawMetrics { listen: "l".into() }),
    }
}

/// Every dotted key path of `value` (list items add no segment).
fn key_paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                let k = k.as_str().expect("string keys");
                let path = if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
                out.insert(path.clone());
                key_paths(v, &path, out);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|v| key_paths(v, prefix, out)),
        _ => {}
    }
}

fn schema() -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    key_paths(&serde_yaml_ng::to_value(full_config()).unwrap(), "", &mut keys);
    keys
}

/// A key exists if it is a whole path, or the tail of one: a message about
/// one list entry may name the key inside it (`shard.count`).
fn exists(schema: &BTreeSet<String>, key: &str) -> bool {
    schema.iter().any(|path| path == key || path.ends_with(&format!(".{key}")))
}

/// The string literals of Rust source, plain or raw, as written (escapes
/// kept); comments, char literals and lifetimes are skipped.
fn string_literals(source: &str) -> Vec<String> {
    let chars: Vec<char> = source.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = at(i);
        if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && at(i) != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if at(i) == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if at(i) == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r' && (at(i + 1) == '"' || at(i + 1) == '#') && !is_ident(at(i.wrapping_sub(1)))
            || c == 'r' && at(i.wrapping_sub(1)) == 'b' && !is_ident(at(i.wrapping_sub(2)))
        {
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            if at(i + 1 + hashes) != '"' {
                i += 1;
                continue;
            }
            let start = i + 2 + hashes;
            let close: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            let rest: String = chars[start..].iter().collect();
            let len = rest.find(&close).expect("closed raw string");
            out.push(rest[..len].to_string());
            i = start + rest[..len].chars().count() + close.chars().count();
        } else if c == '"' {
            let mut text = String::new();
            i += 1;
            while i < chars.len() && at(i) != '"' {
                if at(i) == '\\' {
                    text.push(at(i));
                    i += 1;
                }
                text.push(at(i));
                i += 1;
            }
            out.push(text);
            i += 1;
        } else if c == '\'' {
            // '\n', '\'', '"' are char literals; 'a in a type is a lifetime
            if at(i + 1) == '\\' {
                i += 3;
                while i < chars.len() && at(i) != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// `a.b` or longer: lowercase words of letters, digits and `_`, each
/// starting with a letter (so "0.5" is no key).
fn is_dotted_key(text: &str) -> bool {
    let word = |w: &str| {
        w.starts_with(|c: char| c.is_ascii_lowercase())
            && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    text.contains('.') && text.split('.').all(word)
}

/// The keys a literal names: backquoted dotted names, or the whole literal.
fn keys_named(literal: &str) -> Vec<String> {
    let mut keys: Vec<String> =
        literal.split('`').skip(1).step_by(2).filter(|k| is_dotted_key(k)).map(str::to_string).collect();
    if is_dotted_key(literal) {
        keys.push(literal.to_string());
    }
    keys
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (file, key) for every key named in src/, except in this file (whose
/// literals are test data).
fn keys_in_sources() -> Vec<(PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let me = src.join(file!().trim_start_matches("src/"));
    let mut found = Vec::new();
    for file in files.into_iter().filter(|f| *f != me) {
        let text = std::fs::read_to_string(&file).unwrap();
        for literal in string_literals(&text) {
            found.extend(keys_named(&literal).into_iter().map(|k| (file.clone(), k)));
        }
    }
    found
}

#[test]
fn every_key_named_in_a_message_exists() {
    let schema = schema();
    let found = keys_in_sources();
    let unknown: Vec<String> = found
        .iter()
        .filter(|(_, key)| !NOT_KEYS.contains(&key.as_str()) && !is_file_name(key) && !exists(&schema, key))
        .map(|(file, key)| format!("{}: `{key}`", file.display()))
        .collect();
    assert!(unknown.is_empty(), "messages name keys that node.yaml does not have:\n{}", unknown.join("\n"));
    // the scan found the keys it should: it is not vacuous
    for key in ["node.listen", "timeouts.query_ms", "authority.allow_exact", "processor.dlog_range_bits"] {
        assert!(found.iter().any(|(_, k)| k == key), "no message names {key}; the scan missed it");
    }
}

#[test]
fn schema_has_every_section_and_nested_key() {
    let schema = schema();
    for key in [
        "node.listen",
        "cluster.relays.public_key",
        "relay.sources.shard.count",
        "processor.dlog_dir",
        "metrics.listen",
    ] {
        assert!(schema.contains(key), "{key} missing from {schema:?}");
    }
    assert!(exists(&schema, "shard.index"));
    // excluding file names never skips a real key
    assert!(schema.iter().all(|key| !is_file_name(key)), "a key ends in one of {FILE_EXTENSIONS:?}");
    assert!(schema.iter().all(|key| !NOT_KEYS.contains(&key.as_str())));
    assert!(!exists(&schema, "privacy.allow_exact"));
    assert!(!exists(&schema, "dlog.range_bits"));
    assert!(!exists(&schema, "allow_exact.x"));
}

#[test]
fn literals_are_found_and_comments_skipped() {
    let source = r##"
        // "`in.comment`"
        /* "`block.comment`" /* nested */ "`still.comment`" */
        let c = '"'; let e = '\''; fn f<'a>(x: &'a str) {}
        let s = "raise `timeouts.query_ms` \" `escaped.quote`";
        let r = r#"a "raw" `raw.key`"#;
        let k = invalid("cluster.min_relays", x);
    "##;
    let keys: Vec<String> = string_literals(source).iter().flat_map(|l| keys_named(l)).collect();
    assert_eq!(keys, ["timeouts.query_ms", "escaped.quote", "raw.key", "cluster.min_relays"]);
}
