//! Reads a relay's .csv file (UTF-8, optional BOM, CRLF or LF line ends,
//! RFC 4180 quoting, empty fields allowed, rows of any length) into a `SheetGrid`
//! whose rows are the file's records. Input: a path from the relay's
//! `SourceSpec`; output: text cells for `loaded.rs`. Reads only; knows
//! nothing of headers or numbers. Lines that are completely empty are skipped
//! by the csv crate, so record N is sheet row N.

use std::fs::File;
use std::path::Path;

use csv::{ReaderBuilder, StringRecord};

use super::cell::{CellValue, SheetGrid};
use super::error::DataError;

/// The records of a CSV file.
pub(crate) struct CsvGrid {
    records: Vec<StringRecord>,
    width: u32,
    height: u32,
}

/// Reads every record of the CSV file at `path`.
pub(crate) fn read_csv(path: &Path) -> Result<CsvGrid, DataError> {
    let file = File::open(path).map_err(|err| DataError::Io { path: path.to_path_buf(), reason: err.to_string() })?;
    let mut reader = ReaderBuilder::new().has_headers(false).flexible(true).from_reader(file);
    let mut records = Vec::new();
    let mut widest = 0usize;
    for record in reader.records() {
        let record = record.map_err(|err| DataError::Csv { path: path.to_path_buf(), reason: err.to_string() })?;
        widest = widest.max(record.len());
        records.push(record);
    }
    let too_big = |what| DataError::TooBig { path: path.to_path_buf(), what };
    let width = u32::try_from(widest).map_err(|_| too_big("columns"))?;
    let height = u32::try_from(records.len()).map_err(|_| too_big("rows"))?;
    Ok(CsvGrid { records, width, height })
}

impl SheetGrid for CsvGrid {
    fn row_count(&self) -> u32 {
        self.height
    }

    fn col_count(&self) -> u32 {
        self.width
    }

    fn cell(&self, row: u32, col: u32) -> CellValue<'_> {
        let field = usize::try_from(row)
            .ok()
            .and_then(|row| self.records.get(row))
            .zip(usize::try_from(col).ok())
            .and_then(|(record, col)| record.get(col));
        match field {
            Some(text) if !text.is_empty() => CellValue::Text(text),
            _ => CellValue::Blank,
        }
    }
}
