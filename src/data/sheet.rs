//! Opens .xls, .xlsx and .ods workbooks with calamine and loads one sheet
//! (by name, or the first one) as a `SheetGrid`. Input: a file path and an
//! optional sheet name from the relay's `SourceSpec`; output: the sheet's
//! name and cells for `loaded.rs`. Reads only; knows nothing of headers or
//! numbers. Cell positions are absolute (calamine's `Range` may start after
//! row 1; `get_value` takes absolute positions, so nothing here is shifted).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use calamine::{open_workbook_from_rs, Data, Ods, Range, Reader, Xls, Xlsx};

use super::cell::{CellValue, SheetGrid};
use super::error::DataError;

/// The workbook formats calamine reads for us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkbookFormat {
    Xls,
    Xlsx,
    Ods,
}

impl WorkbookFormat {
    fn name(self) -> &'static str {
        match self {
            WorkbookFormat::Xls => "Excel 97-2003 (.xls)",
            WorkbookFormat::Xlsx => "Excel (.xlsx)",
            WorkbookFormat::Ods => "OpenDocument (.ods)",
        }
    }
}

/// One loaded sheet of a workbook.
pub(crate) struct Sheet {
    pub name: String,
    pub cells: Range<Data>,
}

/// Loads sheet `wanted` (or the first sheet) of the workbook at `path`.
/// A panic inside calamine on a malformed file (e.g. an arithmetic overflow
/// in its .xls record parser, found by tests/fuzz_inputs.rs) becomes an
/// error naming the file instead of taking the relay's worker down.
pub(crate) fn load_sheet(path: &Path, format: WorkbookFormat, wanted: Option<&str>) -> Result<Sheet, DataError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| load_sheet_unguarded(path, format, wanted)))
        .unwrap_or_else(|_| {
            Err(DataError::Open {
                path: path.to_path_buf(),
                format: format.name(),
                reason: "the workbook reader failed on malformed content".to_string(),
            })
        })
}

fn load_sheet_unguarded(path: &Path, format: WorkbookFormat, wanted: Option<&str>) -> Result<Sheet, DataError> {
    let file = File::open(path).map_err(|err| DataError::Io { path: path.to_path_buf(), reason: err.to_string() })?;
    if format == WorkbookFormat::Xls {
        // calamine loops without bound on a damaged sector chain: check first
        let bytes =
            std::fs::read(path).map_err(|err| DataError::Io { path: path.to_path_buf(), reason: err.to_string() })?;
        super::cfb_check::check_sector_chains(&bytes).map_err(|reason| DataError::Open {
            path: path.to_path_buf(),
            format: format.name(),
            reason,
        })?;
    }
    let reader = BufReader::new(file);
    match format {
        WorkbookFormat::Xls => load_from::<Xls<_>>(path, format, reader, wanted),
        WorkbookFormat::Xlsx => load_from::<Xlsx<_>>(path, format, reader, wanted),
        WorkbookFormat::Ods => load_from::<Ods<_>>(path, format, reader, wanted),
    }
}

fn load_from<R>(
    path: &Path,
    format: WorkbookFormat,
    reader: BufReader<File>,
    wanted: Option<&str>,
) -> Result<Sheet, DataError>
where
    R: Reader<BufReader<File>>,
    R::Error: std::fmt::Display,
{
    let mut workbook = open_workbook_from_rs::<R, _>(reader).map_err(|err| DataError::Open {
        path: path.to_path_buf(),
        format: format.name(),
        reason: err.to_string(),
    })?;
    let names = workbook.sheet_names();
    let name = match wanted {
        Some(wanted) => names.iter().find(|name| name.as_str() == wanted).cloned().ok_or_else(|| {
            DataError::SheetNotFound { path: path.to_path_buf(), sheet: wanted.to_string(), available: names.clone() }
        })?,
        None => names.first().cloned().ok_or_else(|| DataError::NoSheets { path: path.to_path_buf() })?,
    };
    let cells = workbook.worksheet_range(&name).map_err(|err| DataError::Format {
        path: path.to_path_buf(),
        sheet: Some(name.clone()),
        reason: err.to_string(),
    })?;
    Ok(Sheet { name, cells })
}

impl SheetGrid for Range<Data> {
    fn row_count(&self) -> u32 {
        self.end().map_or(0, |(row, _)| row.saturating_add(1))
    }

    fn col_count(&self) -> u32 {
        self.end().map_or(0, |(_, col)| col.saturating_add(1))
    }

    fn cell(&self, row: u32, col: u32) -> CellValue<'_> {
        match self.get_value((row, col)) {
            None | Some(Data::Empty) => CellValue::Blank,
            Some(Data::String(text)) => CellValue::Text(text),
            Some(Data::Float(value)) => CellValue::Float(*value),
            Some(Data::Int(value)) => CellValue::Int(*value),
            Some(other) => CellValue::Other(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::cell::last_used_row;
    use crate::data::header::header_columns;

    /// A range that starts at row 3, column C (rows 1-2 and columns A-B
    /// blank): cells keep their absolute positions.
    #[test]
    fn ranges_starting_late_keep_absolute_positions() {
        let mut range: Range<Data> = Range::new((2, 2), (4, 3));
        range.set_value((2, 2), Data::Float(2021.0));
        range.set_value((2, 3), Data::String("2016-2021".into()));
        range.set_value((3, 2), Data::Int(7));
        range.set_value((4, 3), Data::String(String::new()));
        assert_eq!(range.start(), Some((2, 2)));
        assert_eq!(range.cell(0, 0), CellValue::Blank);
        assert_eq!(range.cell(2, 2), CellValue::Float(2021.0));
        assert_eq!(range.cell(3, 2), CellValue::Int(7));
        assert_eq!(range.cell(9, 9), CellValue::Blank);
        assert_eq!((range.row_count(), range.col_count()), (5, 4));
        // the trailing row holds only an empty string (as .ods writes)
        assert_eq!(last_used_row(&range), Some(3));
        let columns = header_columns(&range, 3);
        assert_eq!(columns.len(), 2);
        assert_eq!(columns[0].column_ref, "C");
        assert_eq!(columns[0].labels, vec!["", "", "2021"]);
        assert_eq!(columns[1].labels, vec!["", "", "2016-2021"]);
    }

    #[test]
    fn other_cell_types_show_as_text() {
        let mut range: Range<Data> = Range::new((0, 0), (0, 1));
        range.set_value((0, 0), Data::Bool(true));
        range.set_value((0, 1), Data::Error(calamine::CellErrorType::Div0));
        assert!(matches!(range.cell(0, 0), CellValue::Other(text) if text == "true"));
        assert!(matches!(range.cell(0, 1), CellValue::Other(text) if text == "#DIV/0!"));
    }
}
