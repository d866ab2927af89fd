//! The discrete-log baby-step table on LMDB (heed), implementing
//! `crypto::DlogTable`.
//!
//! Input: a table directory (`data.mdb` + `lock.mdb`) written by `build`.
//! Output: baby-step indices j for the keys the solver asks about.
//! Layout: database `baby_steps` maps the 12-byte `TableKey` of j·G to j as a
//! u32 little-endian; database `meta` holds the format version, bits, baby
//! steps, key length, entry count and a SHA-256 over every (key || value) in
//! key order, and a presence filter: a bitmap of 8 bits per baby step,
//! indexed by key bytes 4..9, stored as one LMDB value and read zero-copy
//! from the map inside the same read transaction. A lookup whose filter bit is
//! clear (about 88% of the solver's misses) skips the B-tree descent; a set bit
//! is always confirmed in `baby_steps`, so the filter never changes an answer.
//! Keys are sorted in memory and inserted with `MDB_APPEND` in one
//! write transaction, so a crash during a build leaves no half-valid table.
//! `open` verifies the metadata, the entry count, the checksum (full cursor
//! scan) and a few recomputed baby steps; any damage is an error telling the
//! operator to rebuild, never a panic and never a wrong answer. The file is
//! also checked against LMDB's own header before it is mapped, so a truncated
//! file is refused instead of crashing the process with SIGBUS.
//! This module never decides which table a node needs; callers pass the bits.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, PutFlags, RoTxn, WithoutTls};
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use sha2::{Digest, Sha256};

use super::error::DataError;
use crate::crypto::dlog::{baby_step_keys, DEFAULT_TABLE_BITS, MAX_TABLE_BITS};
use crate::crypto::{CryptoError, DlogTable, TableKey};

/// Version of the on-disk layout; bump when keys, values or meta change.
pub const FORMAT_VERSION: u32 = 1;
/// Smallest table `build` accepts.
pub const MIN_TABLE_BITS: u32 = 8;

const KEY_LEN: usize = 12;
const VALUE_LEN: usize = 4;
const DATA_DB: &str = "baby_steps";
const META_DB: &str = "meta";
const DATA_FILE: &str = "data.mdb";
/// SHA-256 of the whole `data.mdb`, written after a build: checked before
/// LMDB maps the file, so damage anywhere in it is found without LMDB
/// walking a corrupted tree (which can crash the process).
const DIGEST_FILE: &str = "data.mdb.sha256";
const LOCK_FILE: &str = "lock.mdb";
/// Points per batch of `baby_step_keys` while building.
const BUILD_CHUNK: u64 = 1 << 16;
/// Random baby steps recomputed on open, besides 0, 1 and N-1.
const RANDOM_SPOT_CHECKS: usize = 16;

const META_FORMAT: &str = "format_version";
const META_BITS: &str = "bits";
const META_BABY_STEPS: &str = "baby_steps";
const META_KEY_LEN: &str = "key_len";
const META_ENTRIES: &str = "entries";
const META_CHECKSUM: &str = "checksum_sha256";
const META_FILTER_BITS: &str = "filter_log2_bits";
const META_FILTER: &str = "filter";
/// Filter bits per baby step (as a power of two): 2^3 = 8.
const FILTER_BITS_PER_ENTRY_LOG2: u32 = 3;
/// Largest filter: 2^33 bits = 1 GiB (LMDB values stay below 4 GiB).
const MAX_FILTER_LOG2_BITS: u32 = 33;

/// log2 of the filter size in bits for a table of 2^bits baby steps.
fn filter_log2_bits(bits: u32) -> u32 {
    (bits + FILTER_BITS_PER_ENTRY_LOG2).min(MAX_FILTER_LOG2_BITS)
}

/// The filter bit of a key: key bytes 4..9 (uniform; byte 0 of a ristretto
/// encoding always has its low bit clear) masked to the filter size.
fn filter_index(key: &TableKey, log2_bits: u32) -> u64 {
    let word = u32::from_le_bytes([key[4], key[5], key[6], key[7]]);
    let wide = u64::from(word) | (u64::from(key[8]) << 32);
    wide & ((1u64 << log2_bits) - 1)
}

/// True when the bit of `key` is set; None if the filter is too short.
fn filter_contains(filter: &[u8], key: &TableKey, log2_bits: u32) -> Option<bool> {
    let bit = filter_index(key, log2_bits);
    let byte = filter.get(usize::try_from(bit >> 3).ok()?)?;
    Some(byte & (1u8 << (bit & 7)) != 0)
}

fn filter_of<'k>(keys: impl Iterator<Item = &'k TableKey>, log2_bits: u32) -> Option<Vec<u8>> {
    let len = usize::try_from(1u64 << log2_bits.checked_sub(3)?).ok()?;
    let mut filter = vec![0u8; len];
    for key in keys {
        let bit = filter_index(key, log2_bits);
        let byte = filter.get_mut(usize::try_from(bit >> 3).ok()?)?;
        *byte |= 1u8 << (bit & 7);
    }
    Some(filter)
}

/// What a table holds, as read from its metadata and checked on open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableInfo {
    pub bits: u32,
    pub baby_steps: u64,
    pub format_version: u32,
    pub entries: u64,
    pub bytes_on_disk: u64,
    pub checksum_hex: String,
}

/// An opened and verified baby-step table. `Send + Sync`: read transactions
/// are created without thread-local storage, one per `find_first` call.
/// Open a directory once per process and share the table (e.g. in an `Arc`):
/// heed refuses a second open of the same directory (`EnvAlreadyOpened`).
pub struct LmdbTable {
    env: Env<WithoutTls>,
    data: Database<'static, Bytes, Bytes>,
    meta: Database<'static, Bytes, Bytes>,
    filter_log2_bits: u32,
    info: TableInfo,
}

impl std::fmt::Debug for LmdbTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmdbTable").field("dir", &self.env.path()).field("info", &self.info).finish()
    }
}

/// What `verify` hands back to `open`: the data and meta databases, the
/// filter size (log2 bits) and the table info.
type Verified = (Database<'static, Bytes, Bytes>, Database<'static, Bytes, Bytes>, u32, TableInfo);

fn lmdb<'a>(dir: &'a Path, action: &'static str) -> impl FnOnce(heed::Error) -> DataError + 'a {
    move |source| DataError::Lmdb { dir: dir.to_path_buf(), action, reason: source.to_string() }
}

fn map_size_for(entries: u64) -> Result<usize, DataError> {
    let bytes = entries.checked_mul(48).and_then(|b| b.checked_add(64 << 20));
    bytes.and_then(|b| usize::try_from(b).ok()).ok_or(DataError::TableParameters {
        bits: 0,
        reason: format!("{entries} entries do not fit in the address space"),
    })
}

/// Rounds up to a multiple of 1 MiB (LMDB wants a multiple of the page size).
fn round_map_size(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20).saturating_mul(1 << 20)
}

fn env_options(map_size: usize) -> EnvOpenOptions<WithoutTls> {
    let mut options = EnvOpenOptions::new().read_txn_without_tls();
    options.map_size(map_size).max_dbs(4);
    options
}

/// Closes an environment and waits until LMDB has really released it, so the
/// same directory can be opened again in this process.
fn close_env(env: Env<WithoutTls>) {
    let closing = env.prepare_for_closing();
    // Nothing else holds a clone of this env; the wait is a formality.
    closing.wait_timeout(Duration::from_secs(30));
}

/// The error for a table of 2^bits baby steps that this machine cannot address.
fn too_large_for_address_space(bits: u32) -> DataError {
    DataError::TableParameters { bits, reason: "too large for this machine's address space".into() }
}

/// The build's progress bar over `n` baby steps; hidden unless `progress`.
fn build_progress_bar(n: u64, bits: u32, progress: bool) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(n);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} baby steps ({eta})")
    {
        bar.set_style(style);
    }
    bar.set_message(format!("computing 2^{bits} baby steps"));
    bar
}

/// All 2^bits baby-step keys with their index j, sorted by key (`capacity`
/// is 2^bits as a usize); refuses two baby steps with the same key.
fn sorted_baby_steps(bits: u32, capacity: usize, bar: &ProgressBar) -> Result<Vec<(TableKey, u32)>, DataError> {
    let n = 1u64 << bits;
    let mut pairs: Vec<(TableKey, u32)> = Vec::with_capacity(capacity);
    let mut start = 0u64;
    while start < n {
        let len = BUILD_CHUNK.min(n - start);
        let keys = baby_step_keys(start, usize::try_from(len).map_err(|_| too_large_for_address_space(bits))?);
        for (j, key) in (start..).zip(keys) {
            let j = u32::try_from(j).map_err(|_| too_large_for_address_space(bits))?;
            pairs.push((key, j));
        }
        start += len;
        bar.set_position(start);
    }
    bar.set_message("sorting");
    pairs.sort_unstable_by_key(|pair| pair.0);
    if let Some([a, b]) = pairs.windows(2).find(|w| matches!(w, [a, b] if a.0 == b.0)) {
        return Err(DataError::TableParameters {
            bits,
            reason: format!("baby steps {} and {} share a 96-bit key", a.1, b.1),
        });
    }
    Ok(pairs)
}

/// Creates `dir` if needed and removes an old table's `data.mdb` and
/// `lock.mdb` from it.
fn empty_table_dir(dir: &Path) -> Result<(), DataError> {
    fs::create_dir_all(dir).map_err(|source| DataError::TableIo {
        path: dir.to_path_buf(),
        action: "creating the table directory",
        reason: source.to_string(),
    })?;
    for name in [DATA_FILE, LOCK_FILE] {
        let path = dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(DataError::TableIo { path, action: "removing the old table", reason: source.to_string() })
            }
        }
    }
    Ok(())
}

impl LmdbTable {
    /// Builds 2^bits baby steps into `dir` (created if needed; an existing
    /// table there is replaced). Progress bar only when `progress` is true.
    pub fn build(dir: &Path, bits: u32, progress: bool) -> Result<TableInfo, DataError> {
        if !(MIN_TABLE_BITS..=MAX_TABLE_BITS).contains(&bits) {
            return Err(DataError::TableParameters {
                bits,
                reason: format!("bits must be in {MIN_TABLE_BITS}..={MAX_TABLE_BITS}"),
            });
        }
        let n = 1u64 << bits;
        let capacity = usize::try_from(n).map_err(|_| too_large_for_address_space(bits))?;

        // 1. All keys with their index, sorted by key.
        let bar = build_progress_bar(n, bits, progress);
        let pairs = sorted_baby_steps(bits, capacity, &bar)?;

        // 2. A fresh environment.
        empty_table_dir(dir)?;
        let map_size = map_size_for(n)?;
        // SAFETY: the directory is ours and freshly emptied; only this process
        // opens it while building, and the env is closed before returning.
        let env = unsafe { env_options(map_size).open(dir) }.map_err(lmdb(dir, "creating the environment"))?;
        let result = Self::write_all(&env, dir, bits, &pairs, &bar);
        close_env(env);
        bar.finish_and_clear();
        let (entries, checksum_hex) = result?;
        write_file_digest(dir)?;
        Ok(TableInfo {
            bits,
            baby_steps: n,
            format_version: FORMAT_VERSION,
            entries,
            bytes_on_disk: data_file_len(dir)?,
            checksum_hex,
        })
    }

    /// Writes the sorted pairs and the metadata in one transaction.
    fn write_all(
        env: &Env<WithoutTls>,
        dir: &Path,
        bits: u32,
        pairs: &[(TableKey, u32)],
        bar: &ProgressBar,
    ) -> Result<(u64, String), DataError> {
        let wtxn = env.write_txn().map_err(lmdb(dir, "starting a write transaction"))?;
        let (data, meta) = env
            .create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, heed::Error> {
                let data: Database<'_, Bytes, Bytes> = opener.create_database(wtxn, Some(DATA_DB))?;
                let meta: Database<'_, Bytes, Bytes> = opener.create_database(wtxn, Some(META_DB))?;
                Ok(CommitOrAbort::<_, ()>::Commit((data, meta)))
            })
            .map_err(lmdb(dir, "creating the databases"))?
            .unwrap_commit();

        bar.set_message("writing to LMDB");
        bar.set_position(0);
        let mut wtxn = env.write_txn().map_err(lmdb(dir, "starting a write transaction"))?;
        let mut hasher = Sha256::new();
        for (i, (key, j)) in pairs.iter().enumerate() {
            let value = j.to_le_bytes();
            data.put_with_flags(&mut wtxn, PutFlags::APPEND, key, &value)
                .map_err(lmdb(dir, "appending a baby step"))?;
            hasher.update(key);
            hasher.update(value);
            if i % (1 << 16) == 0 {
                bar.set_position(u64::try_from(i).unwrap_or(u64::MAX));
            }
        }
        let entries = u64::try_from(pairs.len())
            .map_err(|_| DataError::TableParameters { bits, reason: "entry count overflows".into() })?;
        let checksum_hex = hex::encode(hasher.finalize());
        let n = 1u64 << bits;
        let key_len = u32::try_from(KEY_LEN).unwrap_or(u32::MAX);
        let filter_bits = filter_log2_bits(bits);
        let filter = filter_of(pairs.iter().map(|(k, _)| k), filter_bits)
            .ok_or(DataError::TableParameters { bits, reason: "presence filter too large".into() })?;
        let fields: [(&str, Vec<u8>); 8] = [
            (META_FORMAT, FORMAT_VERSION.to_le_bytes().to_vec()),
            (META_BITS, bits.to_le_bytes().to_vec()),
            (META_BABY_STEPS, n.to_le_bytes().to_vec()),
            (META_KEY_LEN, key_len.to_le_bytes().to_vec()),
            (META_ENTRIES, entries.to_le_bytes().to_vec()),
            (META_CHECKSUM, checksum_hex.as_bytes().to_vec()),
            (META_FILTER_BITS, filter_bits.to_le_bytes().to_vec()),
            (META_FILTER, filter),
        ];
        for (name, value) in &fields {
            meta.put(&mut wtxn, name.as_bytes(), value).map_err(lmdb(dir, "writing the table metadata"))?;
        }
        bar.set_message("committing");
        wtxn.commit().map_err(lmdb(dir, "committing the table"))?;
        Ok((entries, checksum_hex))
    }

    /// Opens and verifies format version, parameters, entry count and
    /// checksum, and spot-checks recomputed baby steps. `expected_bits`
    /// Some(k) refuses a table with other parameters (`TableMismatch`).
    pub fn open(dir: &Path, expected_bits: Option<u32>) -> Result<Self, DataError> {
        let hint_bits = expected_bits.unwrap_or(DEFAULT_TABLE_BITS);
        let data_path = dir.join(DATA_FILE);
        if !dir.is_dir() {
            return Err(DataError::TableMissing {
                dir: dir.to_path_buf(),
                bits: hint_bits,
                reason: "directory does not exist".into(),
            });
        }
        if !data_path.is_file() {
            return Err(DataError::TableMissing {
                dir: dir.to_path_buf(),
                bits: hint_bits,
                reason: format!("{} does not exist", data_path.display()),
            });
        }
        let corrupt = |reason: String| DataError::TableCorrupt { dir: dir.to_path_buf(), reason, bits: hint_bits };
        let file_len = data_file_len(dir)?;
        check_lmdb_header(&data_path, file_len).map_err(corrupt)?;
        check_file_digest(dir).map_err(corrupt)?;

        let map_size = usize::try_from(round_map_size(file_len.saturating_add(64 << 20)))
            .map_err(|_| corrupt("file larger than the address space".into()))?;
        // SAFETY: the table directory belongs to this node; LMDB's lock file
        // coordinates readers, and nothing writes to a table after its build.
        let env = unsafe { env_options(map_size).open(dir) }.map_err(|e| match e {
            // LMDB's own checks of its file (bad meta page, version, page
            // numbers) mean damage; anything else (I/O, already open) not.
            heed::Error::Mdb(mdb) => corrupt(format!("LMDB refused the file ({mdb})")),
            other => DataError::Lmdb { dir: dir.to_path_buf(), action: "opening the table", reason: other.to_string() },
        })?;
        match Self::verify(env.clone(), dir, expected_bits, file_len) {
            Ok((data, meta, filter_log2_bits, info)) => Ok(LmdbTable { env, data, meta, filter_log2_bits, info }),
            Err(e) => {
                close_env(env);
                Err(e)
            }
        }
    }

    /// Checks an opened environment, in this order: its databases, the
    /// metadata, the entry count, a full scan against the checksum and the
    /// presence filter, and recomputed baby steps.
    fn verify(
        env: Env<WithoutTls>,
        dir: &Path,
        expected_bits: Option<u32>,
        file_len: u64,
    ) -> Result<Verified, DataError> {
        let hint_bits = expected_bits.unwrap_or(DEFAULT_TABLE_BITS);
        let (data, meta) = open_databases(&env, dir, &corrupt_in(dir, hint_bits))?;

        let rtxn = env.read_txn().map_err(lmdb(dir, "starting a read transaction"))?;
        let TableMeta { format_version, bits, rebuild_bits, entries, stored_checksum, filter_bits } =
            MetaReader { meta, rtxn: &rtxn, dir, hint_bits }.read(expected_bits)?;
        let corrupt = corrupt_in(dir, rebuild_bits);
        let n = 1u64 << bits;
        let actual_entries = data.len(&rtxn).map_err(|e| corrupt(format!("cannot count entries ({e})")))?;
        if actual_entries != n {
            return Err(corrupt(format!("{actual_entries} entries stored, expected {n}")));
        }

        // Full scan: keys strictly increasing, right lengths, j < N, checksum.
        let (checksum_hex, filter) = scan_entries(data, &rtxn, n, filter_bits, &corrupt)?;
        if checksum_hex != stored_checksum {
            return Err(corrupt(format!("checksum mismatch: stored {stored_checksum}, computed {checksum_hex}")));
        }
        check_stored_filter(meta, &rtxn, &filter, &corrupt)?;
        drop(filter);

        // Spot checks: recompute baby steps and look them up.
        spot_check_baby_steps(data, &rtxn, n, &corrupt)?;
        drop(rtxn);

        let info = TableInfo { bits, baby_steps: n, format_version, entries, bytes_on_disk: file_len, checksum_hex };
        Ok((data, meta, filter_bits, info))
    }

    /// Opens the table if present and valid, else builds it (first start of a
    /// node) and opens it. A table with other bits is rebuilt too.
    pub fn open_or_build(dir: &Path, bits: u32, progress: bool) -> Result<Self, DataError> {
        match Self::open(dir, Some(bits)) {
            Ok(table) => return Ok(table),
            Err(
                e @ (DataError::TableMissing { .. } | DataError::TableMismatch { .. } | DataError::TableCorrupt { .. }),
            ) => {
                tracing::warn!(dir = %dir.display(), bits, cause = %e, "building the discrete-log table");
            }
            Err(e) => return Err(e),
        }
        let info = Self::build(dir, bits, progress)?;
        tracing::info!(dir = %dir.display(), bits, bytes_on_disk = info.bytes_on_disk, "discrete-log table built");
        Self::open(dir, Some(bits))
    }

    pub fn info(&self) -> &TableInfo {
        &self.info
    }

    pub fn dir(&self) -> PathBuf {
        self.env.path().to_path_buf()
    }
}

/// A database of a table: byte keys to byte values.
type TableDb = Database<'static, Bytes, Bytes>;

/// `TableCorrupt` for `dir`, telling the operator to rebuild with 2^bits.
fn corrupt_in(dir: &Path, bits: u32) -> impl Fn(String) -> DataError + '_ {
    move |reason| DataError::TableCorrupt { dir: dir.to_path_buf(), reason, bits }
}

/// Opens the `baby_steps` and `meta` databases; both must exist.
fn open_databases(
    env: &Env<WithoutTls>,
    dir: &Path,
    corrupt: &impl Fn(String) -> DataError,
) -> Result<(TableDb, TableDb), DataError> {
    let rtxn = env.read_txn().map_err(lmdb(dir, "starting a read transaction"))?;
    let (data, meta) = env
        .open_databases_and_commit(rtxn, |opener, rtxn| -> Result<_, heed::Error> {
            let data: Option<Database<'_, Bytes, Bytes>> = opener.open_database(rtxn, Some(DATA_DB))?;
            let meta: Option<Database<'_, Bytes, Bytes>> = opener.open_database(rtxn, Some(META_DB))?;
            Ok(CommitOrAbort::<_, ()>::Commit((data, meta)))
        })
        .map_err(|e| corrupt(format!("cannot open its databases ({e})")))?
        .unwrap_commit();
    let data = data.ok_or_else(|| corrupt(format!("database `{DATA_DB}` is missing")))?;
    let meta = meta.ok_or_else(|| corrupt(format!("database `{META_DB}` is missing")))?;
    Ok((data, meta))
}

/// The metadata of a table, checked against itself and the expected bits.
struct TableMeta {
    format_version: u32,
    bits: u32,
    /// The bits a rebuild should use: the caller's, else the table's own.
    rebuild_bits: u32,
    entries: u64,
    stored_checksum: String,
    filter_bits: u32,
}

/// Reads the `meta` database of a table being opened. A field that is
/// missing, unreadable or of the wrong length is `TableCorrupt` with
/// `hint_bits` as the bits to rebuild with.
struct MetaReader<'a> {
    meta: TableDb,
    rtxn: &'a RoTxn<'a>,
    dir: &'a Path,
    hint_bits: u32,
}

impl MetaReader<'_> {
    /// Field `name`, copied out of the map.
    fn field(&self, name: &str) -> Result<Vec<u8>, DataError> {
        let corrupt = corrupt_in(self.dir, self.hint_bits);
        self.meta
            .get(self.rtxn, name.as_bytes())
            .map_err(|e| corrupt(format!("metadata `{name}` unreadable ({e})")))?
            .map(<[u8]>::to_vec)
            .ok_or_else(|| corrupt(format!("metadata `{name}` is missing")))
    }

    /// Field `name`, which must be exactly `N` bytes long.
    fn array<const N: usize>(&self, name: &str) -> Result<[u8; N], DataError> {
        let bytes = self.field(name)?;
        bytes.as_slice().try_into().map_err(|_| {
            corrupt_in(self.dir, self.hint_bits)(format!("metadata `{name}` has {} bytes, expected {N}", bytes.len()))
        })
    }

    /// Field `name` as a little-endian u32.
    fn u32_field(&self, name: &str) -> Result<u32, DataError> {
        self.array(name).map(u32::from_le_bytes)
    }

    /// Field `name` as a little-endian u64.
    fn u64_field(&self, name: &str) -> Result<u64, DataError> {
        self.array(name).map(u64::from_le_bytes)
    }

    /// The format version and bits, checked: the version this build writes,
    /// bits in range, and equal to `expected_bits` when that is Some.
    fn format_and_bits(&self, expected_bits: Option<u32>) -> Result<(u32, u32), DataError> {
        let format_version = self.u32_field(META_FORMAT)?;
        if format_version != FORMAT_VERSION {
            return Err(DataError::TableMismatch {
                dir: self.dir.to_path_buf(),
                found: format!("format version {format_version}"),
                expected: format!("format version {FORMAT_VERSION}"),
                bits: self.hint_bits,
            });
        }
        let bits = self.u32_field(META_BITS)?;
        let corrupt = corrupt_in(self.dir, expected_bits.unwrap_or(bits));
        if !(MIN_TABLE_BITS..=MAX_TABLE_BITS).contains(&bits) {
            return Err(corrupt(format!(
                "metadata says 2^{bits} baby steps, outside {MIN_TABLE_BITS}..={MAX_TABLE_BITS}"
            )));
        }
        if let Some(expected) = expected_bits {
            if expected != bits {
                return Err(DataError::TableMismatch {
                    dir: self.dir.to_path_buf(),
                    found: format!("2^{bits} baby steps"),
                    expected: format!("2^{expected}"),
                    bits: expected,
                });
            }
        }
        Ok((format_version, bits))
    }

    /// Every field but the filter, checked in order: format version, bits,
    /// baby steps, key length, entries, checksum (text), filter size.
    fn read(&self, expected_bits: Option<u32>) -> Result<TableMeta, DataError> {
        let (format_version, bits) = self.format_and_bits(expected_bits)?;
        let rebuild_bits = expected_bits.unwrap_or(bits);
        let corrupt = corrupt_in(self.dir, rebuild_bits);
        let n = 1u64 << bits;
        let baby_steps = self.u64_field(META_BABY_STEPS)?;
        if baby_steps != n {
            return Err(corrupt(format!("metadata says {baby_steps} baby steps but bits = {bits}")));
        }
        let key_len = self.u32_field(META_KEY_LEN)?;
        if usize::try_from(key_len).ok() != Some(KEY_LEN) {
            return Err(DataError::TableMismatch {
                dir: self.dir.to_path_buf(),
                found: format!("{key_len}-byte keys"),
                expected: format!("{KEY_LEN}-byte keys"),
                bits: rebuild_bits,
            });
        }
        let entries = self.u64_field(META_ENTRIES)?;
        if entries != n {
            return Err(corrupt(format!("metadata says {entries} entries, expected {n}")));
        }
        let stored_checksum = String::from_utf8(self.field(META_CHECKSUM)?)
            .map_err(|_| corrupt("metadata `checksum_sha256` is not text".into()))?;
        let filter_bits = self.u32_field(META_FILTER_BITS)?;
        if filter_bits != filter_log2_bits(bits) {
            return Err(corrupt(format!(
                "metadata says a 2^{filter_bits}-bit filter, expected 2^{}",
                filter_log2_bits(bits)
            )));
        }
        Ok(TableMeta { format_version, bits, rebuild_bits, entries, stored_checksum, filter_bits })
    }
}

/// Scans every entry in key order and checks it: 12-byte key, 4-byte value
/// j < n, keys strictly increasing, n entries in all. Returns the SHA-256
/// (hex) over every (key || value) and the presence filter of the keys.
fn scan_entries(
    data: TableDb,
    rtxn: &RoTxn,
    n: u64,
    filter_bits: u32,
    corrupt: &impl Fn(String) -> DataError,
) -> Result<(String, Vec<u8>), DataError> {
    let mut hasher = Sha256::new();
    let mut previous: Option<TableKey> = None;
    let mut scanned = 0u64;
    let mut filter = filter_of(std::iter::empty(), filter_bits).ok_or_else(|| corrupt("filter too large".into()))?;
    let iter = data.iter(rtxn).map_err(|e| corrupt(format!("cannot scan entries ({e})")))?;
    for item in iter {
        let (key, value) = item.map_err(|e| corrupt(format!("cannot read entry {scanned} ({e})")))?;
        let key: TableKey = key
            .try_into()
            .map_err(|_| corrupt(format!("entry {scanned} has a {}-byte key, expected {KEY_LEN}", key.len())))?;
        let value: [u8; VALUE_LEN] = value
            .try_into()
            .map_err(|_| corrupt(format!("entry {scanned} has a {}-byte value, expected {VALUE_LEN}", value.len())))?;
        if u64::from(u32::from_le_bytes(value)) >= n {
            return Err(corrupt(format!("entry {scanned} holds an index outside 0..{n}")));
        }
        if previous.is_some_and(|p| p >= key) {
            return Err(corrupt(format!("entries out of order at {scanned}")));
        }
        previous = Some(key);
        let bit = filter_index(&key, filter_bits);
        if let Some(byte) = usize::try_from(bit >> 3).ok().and_then(|i| filter.get_mut(i)) {
            *byte |= 1u8 << (bit & 7);
        }
        hasher.update(key);
        hasher.update(value);
        scanned += 1;
    }
    if scanned != n {
        return Err(corrupt(format!("scan found {scanned} entries, expected {n}")));
    }
    Ok((hex::encode(hasher.finalize()), filter))
}

/// The stored presence filter equals `filter`, the one rebuilt by the scan.
fn check_stored_filter(
    meta: TableDb,
    rtxn: &RoTxn,
    filter: &[u8],
    corrupt: &impl Fn(String) -> DataError,
) -> Result<(), DataError> {
    let stored_filter = meta
        .get(rtxn, META_FILTER.as_bytes())
        .map_err(|e| corrupt(format!("presence filter unreadable ({e})")))?
        .ok_or_else(|| corrupt("presence filter is missing".into()))?;
    if stored_filter != filter {
        return Err(corrupt("presence filter does not match the stored keys".into()));
    }
    Ok(())
}

/// Recomputes baby steps 0, 1, n-1 and `RANDOM_SPOT_CHECKS` random ones and
/// checks that each is stored under its key.
fn spot_check_baby_steps(
    data: TableDb,
    rtxn: &RoTxn,
    n: u64,
    corrupt: &impl Fn(String) -> DataError,
) -> Result<(), DataError> {
    let mut rng = rand::thread_rng();
    let mut samples = vec![0, 1, n - 1];
    samples.extend((0..RANDOM_SPOT_CHECKS).map(|_| rng.gen_range(0..n)));
    for j in samples {
        let key = baby_step_keys(j, 1);
        let key = key.first().ok_or_else(|| corrupt("baby step computation returned nothing".into()))?;
        let found = data.get(rtxn, key).map_err(|e| corrupt(format!("lookup of baby step {j} failed ({e})")))?;
        let found = found.and_then(|v| <[u8; VALUE_LEN]>::try_from(v).ok()).map(u32::from_le_bytes);
        if found.map(u64::from) != Some(j) {
            return Err(corrupt(format!("baby step {j} is not stored under its key (found {found:?})")));
        }
    }
    Ok(())
}

impl DlogTable for LmdbTable {
    fn baby_steps(&self) -> u64 {
        self.info.baby_steps
    }

    fn find_first(&self, keys: &[TableKey]) -> Result<Option<(usize, u64)>, CryptoError> {
        let rtxn = self.env.read_txn().map_err(|e| CryptoError::Table(format!("LMDB read transaction: {e}")))?;
        let filter = self
            .meta
            .get(&rtxn, META_FILTER.as_bytes())
            .map_err(|e| CryptoError::Table(format!("LMDB lookup of the presence filter: {e}")))?
            .ok_or_else(|| CryptoError::Table("presence filter missing; rebuild the table".into()))?;
        // First pass: all filter bits (independent loads, so the CPU overlaps
        // their cache misses); second pass: B-tree lookups in key order.
        let mut maybe_present = Vec::with_capacity(keys.len());
        for key in keys {
            maybe_present.push(
                filter_contains(filter, key, self.filter_log2_bits)
                    .ok_or_else(|| CryptoError::Table("presence filter truncated; rebuild the table".into()))?,
            );
        }
        for (pos, (key, _)) in keys.iter().zip(&maybe_present).enumerate().filter(|(_, (_, present))| **present) {
            let found = self.data.get(&rtxn, key).map_err(|e| CryptoError::Table(format!("LMDB lookup: {e}")))?;
            if let Some(value) = found {
                let value: [u8; VALUE_LEN] = value
                    .try_into()
                    .map_err(|_| CryptoError::Table(format!("corrupt table entry: {}-byte value", value.len())))?;
                let j = u64::from(u32::from_le_bytes(value));
                if j >= self.info.baby_steps {
                    return Err(CryptoError::Table(format!("corrupt table entry: index {j} out of range")));
                }
                return Ok(Some((pos, j)));
            }
        }
        Ok(None)
    }
}

/// SHA-256 of `dir/data.mdb`, streamed.
fn file_digest(dir: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = fs::File::open(dir.join(DATA_FILE))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hex::encode(hasher.finalize()))
}

fn write_file_digest(dir: &Path) -> Result<(), DataError> {
    let io = |action: &'static str| {
        move |source: std::io::Error| DataError::TableIo {
            path: dir.join(DIGEST_FILE),
            action,
            reason: source.to_string(),
        }
    };
    let digest = file_digest(dir).map_err(io("hashing the table file"))?;
    let tmp = dir.join(format!("{DIGEST_FILE}.tmp"));
    fs::write(&tmp, format!("{digest}\n")).map_err(io("writing the table digest"))?;
    fs::rename(&tmp, dir.join(DIGEST_FILE)).map_err(io("writing the table digest"))
}

/// The file matches the digest written when it was built.
fn check_file_digest(dir: &Path) -> Result<(), String> {
    let stored = fs::read_to_string(dir.join(DIGEST_FILE))
        .map_err(|e| format!("{DIGEST_FILE} cannot be read ({e}); the table predates file digests or lost it"))?;
    let computed = file_digest(dir).map_err(|e| format!("reading {DATA_FILE}: {e}"))?;
    if stored.trim() != computed {
        return Err(format!("{DATA_FILE} does not match its digest (stored {}, computed {computed})", stored.trim()));
    }
    Ok(())
}

fn data_file_len(dir: &Path) -> Result<u64, DataError> {
    let path = dir.join(DATA_FILE);
    fs::metadata(&path).map(|m| m.len()).map_err(|source| DataError::TableIo {
        path,
        action: "reading the size of the table",
        reason: source.to_string(),
    })
}

/// LMDB's magic number in its meta pages.
const LMDB_MAGIC: u32 = 0xBEEF_C0DE;

/// Reads LMDB's two meta pages and checks that the file holds every page the
/// newest valid one refers to. LMDB maps the file and does not check this
/// itself: touching a page past the end of a truncated file is SIGBUS.
/// Layout (liblmdb mdb.c, 64-bit): 16-byte page header, then MDB_meta with
/// magic u32 @16, version u32 @20, page size (mm_dbs[0].md_pad) u32 @40,
/// last page u64 @136, txn id u64 @144.
fn check_lmdb_header(path: &Path, file_len: u64) -> Result<(), String> {
    use std::io::Read;
    let read_u32 = |b: &[u8], at: usize| b.get(at..at + 4).and_then(|s| s.try_into().ok()).map(u32::from_le_bytes);
    let read_u64 = |b: &[u8], at: usize| b.get(at..at + 8).and_then(|s| s.try_into().ok()).map(u64::from_le_bytes);
    let mut file = fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut first = vec![0u8; 152];
    file.read_exact(&mut first)
        .map_err(|_| format!("{} is too short for an LMDB file ({file_len} bytes)", path.display()))?;
    if read_u32(&first, 16) != Some(LMDB_MAGIC) {
        return Err(format!("{} is not an LMDB file (bad magic)", path.display()));
    }
    let page_size = read_u32(&first, 40).ok_or("unreadable page size")?;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(format!("implausible LMDB page size {page_size}"));
    }
    let page_size = u64::from(page_size);
    let mut second = vec![0u8; 152];
    let mut rest = vec![0u8; usize::try_from(page_size).map_err(|_| "page size")?.saturating_sub(152)];
    file.read_exact(&mut rest).map_err(|_| format!("{} is truncated within its first page", path.display()))?;
    file.read_exact(&mut second).map_err(|_| format!("{} is truncated within its meta pages", path.display()))?;
    let mut newest: Option<(u64, u64)> = None; // (txnid, last_pg)
    for page in [&first, &second] {
        if read_u32(page, 16) != Some(LMDB_MAGIC) {
            continue;
        }
        if let (Some(last_pg), Some(txnid)) = (read_u64(page, 136), read_u64(page, 144)) {
            if newest.is_none_or(|(t, _)| txnid > t) {
                newest = Some((txnid, last_pg));
            }
        }
    }
    let (_, last_pg) = newest.ok_or("no valid LMDB meta page")?;
    let needed = last_pg.checked_add(1).and_then(|p| p.checked_mul(page_size)).ok_or("implausible last page")?;
    if file_len < needed {
        return Err(format!("{} is truncated: {file_len} bytes, LMDB needs {needed}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn flipped_filter_bit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        LmdbTable::build(dir.path(), 10, false).unwrap();
        let keys = baby_step_keys(0, 1024);
        let filter = filter_of(keys.iter(), filter_log2_bits(10)).unwrap();
        assert_eq!(filter.len(), 1024);
        let path = dir.path().join(DATA_FILE);
        let mut bytes = fs::read(&path).unwrap();
        let at = bytes.windows(filter.len()).position(|w| w == filter.as_slice()).unwrap();
        // clear a set bit: a false negative must never go unnoticed
        let i = filter.iter().position(|b| *b != 0).unwrap();
        bytes[at + i] &= bytes[at + i] - 1;
        fs::write(&path, bytes).unwrap();
        // the file digest catches it first
        let err = LmdbTable::open(dir.path(), Some(10)).unwrap_err();
        assert!(err.to_string().contains("does not match its digest"), "{err}");
        // with a matching digest (damage before the digest was written), the
        // inner checks still catch it
        write_file_digest(dir.path()).unwrap();
        let err = LmdbTable::open(dir.path(), Some(10)).unwrap_err();
        assert!(err.to_string().contains("presence filter"), "{err}");
    }

    #[test]
    fn filter_has_no_false_negatives() {
        let keys = baby_step_keys(0, 4096);
        let filter = filter_of(keys.iter(), filter_log2_bits(12)).unwrap();
        assert!(keys.iter().all(|k| filter_contains(&filter, k, filter_log2_bits(12)) == Some(true)));
        let others = baby_step_keys(1 << 20, 4096);
        let hits = others.iter().filter(|k| filter_contains(&filter, k, filter_log2_bits(12)) == Some(true)).count();
        assert!(hits < 4096 / 5, "false positive rate {hits}/4096");
    }
}
