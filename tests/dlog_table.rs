//! LMDB discrete-log table: build, reopen, solve, and refuse damaged or
//! mismatching tables with an error that says how to rebuild.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

use std::fs;
use std::path::Path;

use crux::crypto::dlog::baby_step_keys;
use crux::crypto::{scalar_from_i64, CryptoError, DlogSolver, DlogTable};
use crux::data::{DataError, LmdbTable};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;

fn flip_key_of(dir: &Path, j: u64) {
    let path = dir.join("data.mdb");
    let mut bytes = fs::read(&path).unwrap();
    let key = baby_step_keys(j, 1)[0];
    let at = bytes.windows(key.len()).position(|w| w == key).expect("key present in data.mdb");
    bytes[at + 3] ^= 0x40;
    fs::write(&path, bytes).unwrap();
}

#[test]
fn builds_reopens_and_solves() {
    let dir = tempfile::tempdir().unwrap();
    let info = LmdbTable::build(dir.path(), 10, false).unwrap();
    assert_eq!((info.bits, info.baby_steps, info.entries, info.format_version), (10, 1024, 1024, 1));
    assert_eq!(info.bytes_on_disk, fs::metadata(dir.path().join("data.mdb")).unwrap().len());
    assert_eq!(info.checksum_hex.len(), 64);

    let table = LmdbTable::open(dir.path(), Some(10)).unwrap();
    assert_eq!(table.info(), &info);
    assert_eq!(table.baby_steps(), 1024);
    let keys = baby_step_keys(1000, 3);
    assert_eq!(table.find_first(&keys).unwrap(), Some((0, 1000)));
    assert_eq!(table.find_first(&baby_step_keys(5000, 2)).unwrap(), None);

    // Send + Sync: usable behind an Arc from another thread.
    let solver = std::sync::Arc::new(DlogSolver::new(table, 16).unwrap());
    let s2 = solver.clone();
    std::thread::spawn(move || {
        let p = RISTRETTO_BASEPOINT_TABLE * &scalar_from_i64(-777);
        assert_eq!(s2.solve_vartime(&p).unwrap(), -777);
    })
    .join()
    .unwrap();
    for m in [0i64, 1, 1023, 1024, 1025, -1, -1024, -1025, 65535, -65536, 40000, -40000] {
        let p = RISTRETTO_BASEPOINT_TABLE * &scalar_from_i64(m);
        assert_eq!(solver.solve_vartime(&p).unwrap(), m, "m = {m}");
    }
    for m in [65536i64, -65537, 1 << 20] {
        let p = RISTRETTO_BASEPOINT_TABLE * &scalar_from_i64(m);
        assert_eq!(solver.solve_vartime(&p), Err(CryptoError::DlogOutOfRange { max_abs: 65536 }), "m = {m}");
    }
}

#[test]
fn flipped_byte_is_refused_with_rebuild_hint() {
    let dir = tempfile::tempdir().unwrap();
    LmdbTable::build(dir.path(), 11, false).unwrap();
    flip_key_of(dir.path(), 77);
    let err = LmdbTable::open(dir.path(), Some(11)).unwrap_err();
    assert!(matches!(err, DataError::TableCorrupt { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("crux-node tables build --dir") && text.contains("--bits 11"), "{text}");
}

#[test]
fn flipped_value_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    LmdbTable::build(dir.path(), 10, false).unwrap();
    // flip a byte of the value stored right after key 300
    let path = dir.path().join("data.mdb");
    let mut bytes = fs::read(&path).unwrap();
    let key = baby_step_keys(300, 1)[0];
    let at = bytes.windows(12).position(|w| w == key).unwrap();
    let value = 300u32.to_le_bytes();
    let v_at = at + 12 + bytes[at + 12..].windows(4).position(|w| w == value).unwrap();
    assert!(v_at < at + 40, "value near its key");
    bytes[v_at] ^= 1;
    fs::write(&path, bytes).unwrap();
    let err = LmdbTable::open(dir.path(), None).unwrap_err();
    assert!(matches!(err, DataError::TableCorrupt { .. }), "{err}");
}

#[test]
fn truncated_file_is_refused_not_sigbus() {
    let dir = tempfile::tempdir().unwrap();
    LmdbTable::build(dir.path(), 12, false).unwrap();
    let path = dir.path().join("data.mdb");
    let len = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len / 2).unwrap();
    let err = LmdbTable::open(dir.path(), Some(12)).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(100).unwrap();
    let err = LmdbTable::open(dir.path(), Some(12)).unwrap_err();
    assert!(matches!(err, DataError::TableCorrupt { .. }), "{err}");
}

#[test]
fn wrong_bits_and_missing_dir() {
    let dir = tempfile::tempdir().unwrap();
    LmdbTable::build(dir.path(), 10, false).unwrap();
    let err = LmdbTable::open(dir.path(), Some(12)).unwrap_err();
    assert!(matches!(err, DataError::TableMismatch { .. }), "{err}");
    assert!(err.to_string().contains("--bits 12"), "{err}");
    // the env was closed after the refusal: opening again works
    LmdbTable::open(dir.path(), Some(10)).unwrap();

    let missing = dir.path().join("nothing-here");
    let err = LmdbTable::open(&missing, Some(10)).unwrap_err();
    assert!(matches!(err, DataError::TableMissing { .. }), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let err = LmdbTable::open(empty.path(), Some(10)).unwrap_err();
    assert!(matches!(err, DataError::TableMissing { .. }), "{err}");
    assert!(LmdbTable::build(dir.path(), 7, false).is_err());
}

#[test]
fn open_or_build_builds_once_and_reuses() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("tables");
    let first = LmdbTable::open_or_build(&sub, 10, false).unwrap();
    let checksum = first.info().checksum_hex.clone();
    drop(first);
    let mtime = fs::metadata(sub.join("data.mdb")).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = LmdbTable::open_or_build(&sub, 10, false).unwrap();
    assert_eq!(second.info().checksum_hex, checksum);
    assert_eq!(fs::metadata(sub.join("data.mdb")).unwrap().modified().unwrap(), mtime, "no rebuild");
    drop(second);
    // a damaged table is rebuilt
    flip_key_of(&sub, 3);
    let third = LmdbTable::open_or_build(&sub, 10, false).unwrap();
    assert_eq!(third.info().checksum_hex, checksum);
}

#[test]
fn damaged_lmdb_meta_pages_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    LmdbTable::build(dir.path(), 10, false).unwrap();
    let path = dir.path().join("data.mdb");
    let mut bytes = fs::read(&path).unwrap();
    // LMDB's magic in both meta pages (page 0 and page 1 at 4096)
    bytes[16] ^= 0xff;
    bytes[4096 + 16] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    let err = LmdbTable::open(dir.path(), Some(10)).unwrap_err();
    assert!(matches!(err, DataError::TableCorrupt { .. }), "{err}");
    assert!(err.to_string().contains("rebuild"), "{err}");
}

#[test]
fn second_open_in_one_process_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    LmdbTable::build(dir.path(), 10, false).unwrap();
    let first = LmdbTable::open(dir.path(), Some(10)).unwrap();
    assert!(LmdbTable::open(dir.path(), Some(10)).is_err());
    drop(first);
}
