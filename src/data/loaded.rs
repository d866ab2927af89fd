//! One data file opened and checked once, ready to answer column queries:
//! picks the reader by file extension (.xls/.xlsx/.ods via `sheet.rs`, .csv
//! via `csv_reader.rs`), checks for its header rows, counts the data rows
//! (trailing blank rows do not count) and resolves queries to a column
//! (`header.rs`, `suggest.rs`) before reading it (`column.rs`). Input: a
//! `SourceSpec`; output: `ColumnData` and column lists. Keeps the file's
//! cells in memory; never writes.

use std::path::{Path, PathBuf};

use calamine::{Data, Range};

use super::cell::{last_used_row, SheetGrid};
use super::column::{read_values, Origin, ReadOptions};
use super::csv_reader::{read_csv, CsvGrid};
use super::decimal::MAX_COLUMN_DECIMALS;
use super::error::DataError;
use super::header::{
    describe_query, duplicate_columns, find_column, header_columns, ColumnHeader, Lookup, MAX_HEADER_ROWS,
};
use super::sheet::{load_sheet, WorkbookFormat};
use super::source::{ColumnData, Shard, SourceSpec};
use super::suggest::close_columns;

/// A data file's format, from its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Workbook(WorkbookFormat),
    Csv,
}

/// The format of `path` by its extension (any case).
pub fn detect_format(path: &Path) -> Result<FileFormat, DataError> {
    let extension = path.extension().map(|ext| ext.to_string_lossy().to_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "xls" => Ok(FileFormat::Workbook(WorkbookFormat::Xls)),
        "xlsx" => Ok(FileFormat::Workbook(WorkbookFormat::Xlsx)),
        "ods" => Ok(FileFormat::Workbook(WorkbookFormat::Ods)),
        "csv" => Ok(FileFormat::Csv),
        _ => Err(DataError::UnknownFormat { path: path.to_path_buf(), extension }),
    }
}

enum Cells {
    Sheet(Range<Data>),
    Csv(CsvGrid),
}

impl Cells {
    fn grid(&self) -> &dyn SheetGrid {
        match self {
            Cells::Sheet(range) => range,
            Cells::Csv(csv) => csv,
        }
    }
}

/// A data file loaded into memory, with its header parsed.
pub struct LoadedSource {
    spec: SourceSpec,
    /// The sheet read; `None` for CSV files.
    sheet: Option<String>,
    cells: Cells,
    columns: Vec<ColumnHeader>,
    data_rows: u64,
}

impl LoadedSource {
    /// Opens `spec.path`, loads the sheet and reads its header rows
    /// (`spec.header_rows`, 1 to 3). Columns with the same labels are refused.
    pub fn open(spec: &SourceSpec) -> Result<LoadedSource, DataError> {
        let path = spec.path.as_path();
        if spec.header_rows == 0 || spec.header_rows > MAX_HEADER_ROWS {
            return Err(DataError::BadHeaderRows { path: path.to_path_buf(), header_rows: spec.header_rows });
        }
        if let Some(decimals) = spec.decimals {
            if decimals > MAX_COLUMN_DECIMALS {
                return Err(DataError::BadDecimals { path: path.to_path_buf(), decimals, max: MAX_COLUMN_DECIMALS });
            }
        }
        if let Some(shard) = spec.shard {
            check_shard(path, shard)?;
        }
        let (sheet, cells) = match detect_format(path)? {
            FileFormat::Workbook(format) => {
                let loaded = load_sheet(path, format, spec.sheet.as_deref())?;
                (Some(loaded.name), Cells::Sheet(loaded.cells))
            }
            FileFormat::Csv => (None, Cells::Csv(read_csv(path)?)),
        };
        let grid = cells.grid();
        let last_row = last_used_row(grid)
            .ok_or_else(|| DataError::EmptySheet { path: path.to_path_buf(), sheet: sheet.clone() })?;
        let used_rows = last_row.saturating_add(1);
        let header_rows = spec.header_rows;
        if used_rows < header_rows {
            return Err(DataError::NoHeader { path: path.to_path_buf(), sheet, rows: used_rows, header_rows });
        }
        let columns = header_columns(grid, header_rows);
        if let Some((first, second)) = duplicate_columns(&columns) {
            return Err(DataError::DuplicateColumn { path: path.to_path_buf(), sheet, first, second });
        }
        Ok(LoadedSource { spec: spec.clone(), sheet, data_rows: u64::from(used_rows - header_rows), columns, cells })
    }

    pub fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    /// Data rows of the whole file (sheet row 4 to the last used row).
    pub fn data_rows(&self) -> u64 {
        self.data_rows
    }

    /// (column letters, 3 labels) of every column with a header label.
    pub fn columns(&self) -> Vec<(String, Vec<String>)> {
        self.columns.iter().map(|column| (column.column_ref.clone(), column.labels.clone())).collect()
    }

    /// Reads the column `labels` names, with the spec's shard.
    pub fn read_column(&self, labels: &[String]) -> Result<ColumnData, DataError> {
        self.read_column_sharded(labels, self.spec.shard)
    }

    /// Reads the column `labels` names, with `shard` instead of the spec's.
    pub fn read_column_sharded(&self, labels: &[String], shard: Option<Shard>) -> Result<ColumnData, DataError> {
        let path = self.spec.path.as_path();
        let query = clean_query(path, labels, self.spec.header_rows)?;
        let column = match find_column(&self.columns, &query) {
            Lookup::Found(column) => column,
            Lookup::None => {
                return Err(DataError::NoSuchColumn {
                    path: path.to_path_buf(),
                    sheet: self.sheet.clone(),
                    query: describe_query(&query),
                    candidates: close_columns(&query, &self.columns),
                })
            }
            Lookup::Many(found) => {
                return Err(DataError::AmbiguousColumn {
                    path: path.to_path_buf(),
                    sheet: self.sheet.clone(),
                    query: describe_query(&query),
                    matches: found.iter().map(|column| column.describe()).collect(),
                })
            }
        };
        let slice = match shard {
            Some(shard) => check_shard(path, shard)?.slice(self.data_rows),
            None => Some(0..self.data_rows),
        }
        .unwrap_or(0..0);
        read_values(
            self.cells.grid(),
            &Origin { path, sheet: &self.sheet },
            column,
            &ReadOptions {
                slice,
                data_rows: self.data_rows,
                on_invalid: self.spec.on_invalid,
                decimals: self.spec.decimals_for(&column.labels),
                header_rows: self.spec.header_rows,
            },
        )
    }
}

fn check_shard(path: &Path, shard: Shard) -> Result<Shard, DataError> {
    if shard.count == 0 || shard.index >= shard.count {
        return Err(DataError::BadShard { path: path.to_path_buf(), index: shard.index, count: shard.count });
    }
    Ok(shard)
}

/// 1 to `header_rows` labels, trimmed, none empty.
fn clean_query(path: &Path, labels: &[String], header_rows: u32) -> Result<Vec<String>, DataError> {
    if labels.is_empty() || labels.len() > usize::try_from(header_rows).unwrap_or(3) {
        return Err(DataError::LabelCount { path: PathBuf::from(path), count: labels.len(), header_rows });
    }
    labels
        .iter()
        .enumerate()
        .map(|(position, label)| {
            let label = label.trim();
            if label.is_empty() {
                Err(DataError::EmptyLabel { path: PathBuf::from(path), position: position + 1 })
            } else {
                Ok(label.to_string())
            }
        })
        .collect()
}
