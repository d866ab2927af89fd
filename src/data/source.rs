//! The relay-facing API of the data layer: what a relay's config says about
//! one data file (`SourceSpec`: path, sheet, shard, invalid-cell policy,
//! decimals) and the column a query asks for, read as exact fixed-point
//! integers (`ColumnData`). Input: `SourceSpec`s from the relay's config and
//! 1 to 3 header labels from a query; output: `ColumnData` for the relay's
//! contribution (`stats`/`protocol`). Files are opened by `loaded.rs`; this
//! file never logs or sends values anywhere.

use std::ops::Range;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::decimal::{rescale, MAX_MAGNITUDE};
use super::error::DataError;
use super::loaded::LoadedSource;

/// What to do with a cell that is neither blank nor a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum InvalidPolicy {
    /// Stop with `DataError::NotNumeric` naming the cell.
    #[default]
    Error,
    /// Skip the cell and count it in `ColumnData::invalid_skipped`.
    Skip,
}

impl TryFrom<String> for InvalidPolicy {
    type Error = String;

    /// Parsed by hand so that a wrong value names the valid ones.
    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "error" => Ok(InvalidPolicy::Error),
            "skip" => Ok(InvalidPolicy::Skip),
            other => {
                Err(format!("`on_invalid: {other}` is not valid; use `error` (stop at a non-numeric cell) or `skip`"))
            }
        }
    }
}

/// A contiguous slice of a file's data rows: relay `index` (0-based) of
/// `count` gets floor(rows / count) rows; the last one also gets the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The 0-based data rows of this shard among `rows` data rows, or `None`
    /// if `count` is 0 or `index >= count`.
    pub fn slice(&self, rows: u64) -> Option<Range<u64>> {
        if self.count == 0 || self.index >= self.count {
            return None;
        }
        let base = rows / u64::from(self.count);
        let start = base * u64::from(self.index);
        let end = if self.index + 1 == self.count { rows } else { start + base };
        Some(start..end)
    }
}

/// One data file of a relay, as its config describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSpec {
    /// .xls, .xlsx, .ods or .csv (by extension, any case).
    pub path: PathBuf,
    /// Sheet name; the first sheet when absent. Ignored for .csv files.
    #[serde(default)]
    pub sheet: Option<String>,
    /// Read only this slice of the data rows.
    #[serde(default)]
    pub shard: Option<Shard>,
    #[serde(default)]
    pub on_invalid: InvalidPolicy,
    /// Fixed decimal places for every column of this file; detected per
    /// column (the most any cell has) when absent. A relay requires it: it
    /// is the scale it declares to queries (never detected at query time).
    #[serde(default)]
    pub decimals: Option<u32>,
    /// Header rows before the data rows: 1 (a row of column names, the
    /// default) to 3 (e.g. group, sub-label, year/period).
    #[serde(default = "default_header_rows")]
    pub header_rows: u32,
    /// Publish this file's column labels (its header rows only, never a
    /// value) to `crux-node columns`. Off unless the relay's config opts in.
    #[serde(default)]
    pub publish_columns: bool,
    /// Per-column declared decimals (by the column's full header labels),
    /// overriding `decimals` for those columns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub column_decimals: Vec<ColumnDecimals>,
}

fn default_header_rows() -> u32 {
    1
}

/// Declared decimals of one column, named by its full header labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnDecimals {
    pub labels: Vec<String>,
    pub decimals: u32,
}

impl SourceSpec {
    /// A spec for the first sheet of `path`, no shard, default policy.
    pub fn new(path: impl Into<PathBuf>) -> SourceSpec {
        SourceSpec {
            path: path.into(),
            sheet: None,
            shard: None,
            on_invalid: InvalidPolicy::Error,
            decimals: None,
            header_rows: 1,
            publish_columns: false,
            column_decimals: Vec::new(),
        }
    }

    /// The same spec with `header_rows` set.
    pub fn with_header_rows(mut self, header_rows: u32) -> SourceSpec {
        self.header_rows = header_rows;
        self
    }

    /// The declared decimals of the column with these full labels: its own
    /// entry in `column_decimals`, else `decimals`. Config only.
    pub fn decimals_for(&self, labels: &[String]) -> Option<u32> {
        self.column_decimals.iter().find(|c| c.labels == labels).map(|c| c.decimals).or(self.decimals)
    }
}

/// The numbers of one column (of one file or several), exact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnData {
    /// The matched column's header labels (3, after inheritance).
    pub labels: Vec<String>,
    /// Spreadsheet column letters, e.g. "H".
    pub column_ref: String,
    /// Fixed point: value * 10^decimals, exact; |value| <= 2^62.
    pub values: Vec<i128>,
    pub decimals: u32,
    /// Data rows in the (sharded) slice, blank ones included.
    pub rows: u64,
    /// Blank cells skipped.
    pub blank: u64,
    /// Non-numeric cells skipped (only with `InvalidPolicy::Skip`).
    pub invalid_skipped: u64,
}

impl ColumnData {
    /// The values at scale 10^`decimals`. Fewer decimals than
    /// `self.decimals` work only when no digit is lost; a value above 2^62
    /// after rescaling is an error.
    pub fn rescaled(&self, decimals: u32) -> Result<Vec<i128>, DataError> {
        let column = format!("{} ({})", self.labels.join(" / "), self.column_ref);
        self.values
            .iter()
            .map(|&value| {
                let scaled = rescale(value, self.decimals, decimals);
                match scaled {
                    Some(v) if v.unsigned_abs() <= MAX_MAGNITUDE.unsigned_abs() => Ok(v),
                    None if decimals < self.decimals => {
                        Err(DataError::RescaleLoss { column: column.clone(), from: self.decimals, to: decimals })
                    }
                    _ => Err(DataError::RescaleOverflow { column: column.clone(), from: self.decimals, to: decimals }),
                }
            })
            .collect()
    }
}

/// The decimal places of every numeric column of the file, by full labels
/// (what `crux-node init` writes as a source's declared decimals). Columns
/// that cannot be read as numbers are skipped.
pub fn detect_column_decimals(spec: &SourceSpec) -> Result<Vec<ColumnDecimals>, DataError> {
    let mut plain = spec.clone();
    plain.decimals = None;
    plain.column_decimals.clear();
    let loaded = LoadedSource::open(&plain)?;
    Ok(loaded
        .columns()
        .into_iter()
        .filter_map(|(_, labels)| loaded.read_column(&labels).ok())
        .map(|c| ColumnDecimals { labels: c.labels, decimals: c.decimals })
        .collect())
}

/// Declares the detected decimals on `spec`: `decimals` = the most any
/// column has, and a `column_decimals` entry for each column with fewer.
pub fn declare_detected_decimals(spec: &mut SourceSpec) -> Result<(), DataError> {
    let columns = detect_column_decimals(spec)?;
    let most = columns.iter().map(|c| c.decimals).max().unwrap_or(0);
    spec.decimals = Some(most);
    spec.column_decimals = columns.into_iter().filter(|c| c.decimals < most).collect();
    Ok(())
}

/// Reads the column that `labels` (1 to 3 header labels) identifies, from
/// one file.
pub fn read_column(spec: &SourceSpec, labels: &[String]) -> Result<ColumnData, DataError> {
    LoadedSource::open(spec)?.read_column(labels)
}

/// The same column from several files of one relay: values concatenated in
/// file order, `decimals` = the most of any file (every file's values
/// rescaled to it), counts added. Labels and column letters are the first
/// file's.
pub fn read_column_all(specs: &[SourceSpec], labels: &[String]) -> Result<ColumnData, DataError> {
    let mut parts = Vec::with_capacity(specs.len());
    for spec in specs {
        parts.push((spec, read_column(spec, labels)?));
    }
    combine_columns(parts)
}

/// Concatenates one column read from several files: decimals = the max,
/// every part rescaled to it, counts added.
pub fn combine_columns(parts: Vec<(&SourceSpec, ColumnData)>) -> Result<ColumnData, DataError> {
    let decimals = parts.iter().map(|(_, part)| part.decimals).max().ok_or(DataError::NoSources)?;
    let mut combined: Option<ColumnData> = None;
    for (spec, part) in parts {
        let values = part.rescaled(decimals).map_err(|err| DataError::Combine {
            path: spec.path.clone(),
            column: part.column_ref.clone(),
            reason: err.to_string(),
        })?;
        match combined.as_mut() {
            None => combined = Some(ColumnData { values, decimals, ..part }),
            Some(all) => {
                all.values.extend(values);
                all.rows += part.rows;
                all.blank += part.blank;
                all.invalid_skipped += part.invalid_skipped;
            }
        }
    }
    combined.ok_or(DataError::NoSources)
}

/// All columns of a file with at least one header label, left to right:
/// (column letters, 3 labels), for help and "did you mean" output.
pub fn list_columns(spec: &SourceSpec) -> Result<Vec<(String, Vec<String>)>, DataError> {
    Ok(LoadedSource::open(spec)?.columns())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn shard_slices() {
        let slices: Vec<Range<u64>> = (0..4).map(|index| Shard { index, count: 4 }.slice(414).unwrap()).collect();
        assert_eq!(slices, vec![0..103, 103..206, 206..309, 309..414]);
        assert_eq!(Shard { index: 0, count: 1 }.slice(0), Some(0..0));
        assert_eq!(Shard { index: 2, count: 3 }.slice(2), Some(0..2));
        assert_eq!(Shard { index: 1, count: 3 }.slice(2), Some(0..0));
        assert_eq!(Shard { index: 3, count: 3 }.slice(10), None);
        assert_eq!(Shard { index: 0, count: 0 }.slice(10), None);
        let last = Shard { index: u32::MAX - 1, count: u32::MAX };
        assert_eq!(last.slice(u64::MAX).map(|r| r.end), Some(u64::MAX));
    }

    fn column(values: Vec<i128>, decimals: u32) -> ColumnData {
        ColumnData {
            labels: vec!["G".into(), "S".into(), "2021".into()],
            column_ref: "N".into(),
            values,
            decimals,
            rows: 3,
            blank: 0,
            invalid_skipped: 0,
        }
    }

    #[test]
    fn rescales_exactly_or_fails() {
        let data = column(vec![196, -111, 0], 2);
        assert_eq!(data.rescaled(2).unwrap(), vec![196, -111, 0]);
        assert_eq!(data.rescaled(4).unwrap(), vec![19600, -11100, 0]);
        assert!(matches!(data.rescaled(1), Err(DataError::RescaleLoss { .. })));
        assert!(matches!(data.rescaled(40), Err(DataError::RescaleOverflow { .. })));
        assert!(matches!(data.rescaled(19), Err(DataError::RescaleOverflow { .. })));
        assert_eq!(column(vec![150, -10], 2).rescaled(1).unwrap(), vec![15, -1]);
    }

    #[test]
    fn spec_from_yaml_like_json() {
        let spec: SourceSpec =
            serde_json::from_str(r#"{"path": "a.xlsx", "shard": {"index": 1, "count": 3}, "on_invalid": "skip"}"#)
                .unwrap();
        assert_eq!(spec.on_invalid, InvalidPolicy::Skip);
        assert_eq!(spec.shard, Some(Shard { index: 1, count: 3 }));
        assert_eq!(spec.sheet, None);
        assert_eq!(spec.decimals, None);
    }
}
