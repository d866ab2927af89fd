//! Errors of the data layer (`DataError`): reading relays' spreadsheet and
//! CSV files and picking a column. Every message names the file (and sheet
//! and cell where there is one), shows the offending value and says what to
//! do. Built by the readers in this module; shown to operators by `main`.
//! Must not carry more of a relay's data than the one offending cell.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::crypto::CryptoError;

/// `path` or `path, sheet NAME` for messages.
pub(crate) fn at(path: &Path, sheet: &Option<String>) -> String {
    match sheet {
        Some(name) => format!("{}, sheet {name:?}", path.display()),
        None => path.display().to_string(),
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DataError {
    #[error("{}: unsupported file type {extension:?}; relay data files must end in .xls, .xlsx, .ods or .csv", path.display())]
    UnknownFormat { path: PathBuf, extension: String },

    #[error("{}: cannot read the file: {reason}; check the path in the relay's config and the file's permissions", path.display())]
    Io { path: PathBuf, reason: String },

    #[error("{}: not a readable {format} workbook ({reason}); the file is damaged, truncated or not really {format}: re-export it from the spreadsheet program", path.display())]
    Open { path: PathBuf, format: &'static str, reason: String },

    #[error(
        "{}: cannot read the sheet ({reason}); re-export the workbook from the spreadsheet program",
        at(path, sheet)
    )]
    Format { path: PathBuf, sheet: Option<String>, reason: String },

    #[error("{}: invalid CSV ({reason}); the file must be UTF-8 text with comma-separated fields and RFC 4180 quoting", path.display())]
    Csv { path: PathBuf, reason: String },

    #[error("{}: the workbook has no sheets; re-export it with the data sheet", path.display())]
    NoSheets { path: PathBuf },

    #[error("{}: no sheet named {sheet:?}; the workbook has {}; fix `sheet` in the relay's config", path.display(), quoted_list(available))]
    SheetNotFound { path: PathBuf, sheet: String, available: Vec<String> },

    #[error(
        "{}: the sheet is empty; it needs its header row(s) (`header_rows` in the relay's config) followed by data rows",
        at(path, sheet)
    )]
    EmptySheet { path: PathBuf, sheet: Option<String> },

    #[error("{}: only {rows} row(s) found but `header_rows: {header_rows}` header rows are needed before the data rows; fix `header_rows` for this source", at(path, sheet))]
    NoHeader { path: PathBuf, sheet: Option<String>, rows: u32, header_rows: u32 },

    #[error("{}: `header_rows: {header_rows}` is not supported; a source has 1 to 3 header rows", path.display())]
    BadHeaderRows { path: PathBuf, header_rows: u32 },

    #[error("{}: columns {first} and {second} have the same header labels, so a query could not tell them apart; rename one", at(path, sheet))]
    DuplicateColumn { path: PathBuf, sheet: Option<String>, first: String, second: String },

    #[error("{}: a column query names 1 to {header_rows} header labels here (the source's `header_rows`), got {count}", path.display())]
    LabelCount { path: PathBuf, count: usize, header_rows: u32 },

    #[error("{}: header label number {position} of the query is empty; give non-empty labels", path.display())]
    EmptyLabel { path: PathBuf, position: usize },

    #[error("{}: no column has the header labels {query}; {}", at(path, sheet), did_you_mean(candidates))]
    NoSuchColumn { path: PathBuf, sheet: Option<String>, query: String, candidates: Vec<String> },

    #[error("{}: the header labels {query} match {} columns: {}; add labels (group, sub-label, year/period) to pick one", at(path, sheet), matches.len(), matches.join("; "))]
    AmbiguousColumn { path: PathBuf, sheet: Option<String>, query: String, matches: Vec<String> },

    #[error("{}: column {column} holds text, not numbers; pick a numeric column", at(path, sheet))]
    TextColumn { path: PathBuf, sheet: Option<String>, column: String },

    #[error("{}: invalid shard {index} of {count}; `shard.count` must be at least 1 and `shard.index` (0-based) below it", path.display())]
    BadShard { path: PathBuf, index: u32, count: u32 },

    #[error("{}: `decimals: {decimals}` is too many; at most {max} decimal places are supported", path.display())]
    BadDecimals { path: PathBuf, decimals: u32, max: u32 },

    #[error("{}: cell {cell} holds {value:?}, which is not a number; fix the cell (digits, optional sign and '.' as decimal point, e.g. -1234.5; leave it empty if the value is missing) or set `on_invalid: skip` for this source to skip such cells", at(path, sheet))]
    NotNumeric { path: PathBuf, sheet: Option<String>, cell: String, value: String },

    #[error("{}: cell {cell} holds {value:?} with {found} decimal places, more than the {allowed} allowed; round the value or raise `decimals` for this source (at most 12)", at(path, sheet))]
    TooManyDecimals { path: PathBuf, sheet: Option<String>, cell: String, value: String, found: u64, allowed: u32 },

    #[error("{}: cell {cell} holds {value:?}, too large at {decimals} decimal places (the limit is 2^62 after scaling by 10^decimals); fix the value or lower `decimals`", at(path, sheet))]
    ValueTooLarge { path: PathBuf, sheet: Option<String>, cell: String, value: String, decimals: u32 },

    #[error("{}: the sheet has more {what} than supported", path.display())]
    TooBig { path: PathBuf, what: &'static str },

    #[error("no data files given; list at least one file under the relay's sources")]
    NoSources,

    #[error("column {column}: cannot rescale its values from {from} to {to} decimal places without losing digits; use at least {from} decimal places")]
    RescaleLoss { column: String, from: u32, to: u32 },

    #[error("column {column}: a value exceeds 2^62 when rescaled from {from} to {to} decimal places; use fewer decimal places")]
    RescaleOverflow { column: String, from: u32, to: u32 },

    #[error("{}: cannot combine this file's column {column} with the other files: {reason}", path.display())]
    Combine { path: PathBuf, column: String, reason: String },

    // ---- LMDB tables and key files
    /// No table at the given directory.
    #[error(
        "no discrete-log table in {dir}: {reason}; build it with `crux-node tables build --dir {dir} --bits {bits}`"
    )]
    TableMissing { dir: PathBuf, bits: u32, reason: String },
    /// The table was built with other parameters than the ones asked for.
    #[error("discrete-log table in {dir} has {found}, expected {expected}; rebuild it with `crux-node tables build --dir {dir} --bits {bits}`")]
    TableMismatch { dir: PathBuf, found: String, expected: String, bits: u32 },
    /// The table is damaged (truncated, flipped bytes, missing metadata).
    #[error("discrete-log table in {dir} is damaged: {reason}; rebuild it with `crux-node tables build --dir {dir} --bits {bits}`")]
    TableCorrupt { dir: PathBuf, reason: String, bits: u32 },
    /// Unsupported build parameters.
    #[error("cannot build a table of 2^{bits} baby steps: {reason}")]
    TableParameters { bits: u32, reason: String },
    /// LMDB reported an error while working on the table directory.
    #[error("LMDB error on {dir} while {action}: {reason}")]
    Lmdb { dir: PathBuf, action: &'static str, reason: String },
    /// Reading or writing a file of the table directory failed.
    #[error("I/O error on {path} while {action}: {reason}")]
    TableIo { path: PathBuf, action: &'static str, reason: String },
    /// Reading or writing a key file failed.
    #[error("key file {path}: {action} failed: {reason}")]
    KeyFile { path: PathBuf, action: &'static str, reason: String },
    /// A key file exists but does not decode.
    #[error("joint key file {}: {reason}", path.display())]
    JointKey { path: PathBuf, reason: String },

    #[error("key file {path} is corrupt or truncated: {reason}")]
    KeyFileCorrupt { path: PathBuf, reason: CryptoError },
    /// A key file is readable by others than its owner.
    #[error("key file {path} has permissions {mode:04o}, readable or writable by others; run `chmod 600 {path}`")]
    KeyFilePermissions { path: PathBuf, mode: u32 },
}

fn quoted_list(names: &[String]) -> String {
    if names.is_empty() {
        return "no sheets".to_string();
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    format!("sheets {}", quoted.join(", "))
}

fn did_you_mean(candidates: &[String]) -> String {
    if candidates.is_empty() {
        "check the labels against the file's header rows (`header_rows` in the relay's config)".to_string()
    } else {
        format!("did you mean: {}?", candidates.join("; "))
    }
}
