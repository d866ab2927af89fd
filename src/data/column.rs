//! Turns one column's data cells into exact fixed-point integers: skips and
//! counts blank cells, rejects or skips (per `InvalidPolicy`) non-numeric
//! ones, picks the column's decimal places (declared, or the most any cell
//! of the file's column has, at most 12) and scales every value to them,
//! rejecting values above 2^62. Input: a `SheetGrid`, the matched `ColumnHeader`
//! and a slice of data rows from `loaded.rs`; output: `ColumnData`. Never
//! uses floating-point arithmetic: calamine floats go through their shortest
//! round-trip text.

use std::ops::Range;
use std::path::Path;

use super::cell::{cell_ref, CellValue, SheetGrid};
use super::decimal::{Decimal, DecimalIssue, MAX_COLUMN_DECIMALS, MAX_MAGNITUDE};
use super::error::DataError;
use super::header::ColumnHeader;
use super::source::{ColumnData, InvalidPolicy};

/// What a data cell holds, for arithmetic.
#[derive(Clone, Debug, PartialEq)]
enum Parsed {
    Blank,
    Number(Decimal),
    /// Not a number; the value as shown.
    Invalid(String),
    /// A number with too many digits for 128 bits; the value as shown.
    Huge(String),
}

fn classify(cell: &CellValue<'_>) -> Parsed {
    if cell.is_blank() {
        return Parsed::Blank;
    }
    let text = match cell {
        CellValue::Int(value) => return Parsed::Number(Decimal { mantissa: i128::from(*value), decimals: 0 }),
        CellValue::Float(value) if !value.is_finite() => return Parsed::Invalid(value.to_string()),
        CellValue::Other(shown) => return Parsed::Invalid(shown.clone()),
        CellValue::Float(_) | CellValue::Text(_) | CellValue::Blank => cell.display_text(),
    };
    match Decimal::parse(&text) {
        Ok(number) => Parsed::Number(number),
        Err(DecimalIssue::NotANumber) => Parsed::Invalid(text),
        Err(DecimalIssue::TooLong) => Parsed::Huge(text),
    }
}

/// Where the cells come from, for error messages.
pub(crate) struct Origin<'a> {
    pub path: &'a Path,
    pub sheet: &'a Option<String>,
}

/// How to read the column.
pub(crate) struct ReadOptions {
    /// 0-based data rows (row 0 is the first row after the header rows).
    pub slice: Range<u64>,
    /// Data rows in the file.
    pub data_rows: u64,
    pub on_invalid: InvalidPolicy,
    /// Declared decimals (already checked to be at most `MAX_COLUMN_DECIMALS`).
    pub decimals: Option<u32>,
    /// Header rows before the data rows (1 to 3).
    pub header_rows: u32,
}

/// The absolute sheet row of data row `index`, if it fits a u32.
fn sheet_row(index: u64, header_rows: u32) -> Option<u32> {
    u32::try_from(index).ok()?.checked_add(header_rows)
}

/// Data row `index` of column `col`: its sheet row and its cell; None once
/// the sheet row no longer fits a u32.
fn data_cell<'g>(grid: &'g dyn SheetGrid, col: u32, header_rows: u32, index: u64) -> Option<(u32, CellValue<'g>)> {
    sheet_row(index, header_rows).map(|row| (row, grid.cell(row, col)))
}

/// Reads `column`'s data cells in `options.slice`.
pub(crate) fn read_values(
    grid: &dyn SheetGrid,
    origin: &Origin<'_>,
    column: &ColumnHeader,
    options: &ReadOptions,
) -> Result<ColumnData, DataError> {
    let detected = detect_decimals(grid, origin, column, options)?;
    let decimals = options.decimals.unwrap_or(detected);
    let SliceValues { values, blank, invalid_skipped } = read_slice(grid, origin, column, options, decimals)?;
    Ok(ColumnData {
        labels: column.labels.clone(),
        column_ref: column.column_ref.clone(),
        values,
        decimals,
        rows: options.slice.end.saturating_sub(options.slice.start),
        blank,
        invalid_skipped,
    })
}

/// Pass 1, over the whole column: the most decimals any number has (among
/// those with at most `MAX_COLUMN_DECIMALS`); a column with filled cells but
/// no number is a `TextColumn` error.
fn detect_decimals(
    grid: &dyn SheetGrid,
    origin: &Origin<'_>,
    column: &ColumnHeader,
    options: &ReadOptions,
) -> Result<u32, DataError> {
    let mut any_number = false;
    let mut any_filled = false;
    let mut detected = 0u32;
    for index in 0..options.data_rows {
        let Some((_, cell)) = data_cell(grid, column.index, options.header_rows, index) else {
            break;
        };
        match classify(&cell) {
            Parsed::Blank => {}
            Parsed::Number(number) => {
                any_filled = true;
                any_number = true;
                if number.decimals <= MAX_COLUMN_DECIMALS {
                    detected = detected.max(number.decimals);
                }
            }
            Parsed::Invalid(_) | Parsed::Huge(_) => any_filled = true,
        }
    }
    if any_filled && !any_number {
        return Err(DataError::TextColumn {
            path: origin.path.to_path_buf(),
            sheet: origin.sheet.clone(),
            column: column.describe(),
        });
    }
    Ok(detected)
}

/// The values of the slice, scaled to the column's decimals, and the counts
/// of the cells that gave no value.
struct SliceValues {
    values: Vec<i128>,
    blank: u64,
    invalid_skipped: u64,
}

/// Pass 2, over the slice: every number scaled to `decimals`; blank cells
/// counted, non-numeric ones skipped or refused per `options.on_invalid`.
fn read_slice(
    grid: &dyn SheetGrid,
    origin: &Origin<'_>,
    column: &ColumnHeader,
    options: &ReadOptions,
    decimals: u32,
) -> Result<SliceValues, DataError> {
    let col = column.index;
    let allowed = options.decimals.unwrap_or(MAX_COLUMN_DECIMALS);
    let mut read = SliceValues { values: Vec::new(), blank: 0, invalid_skipped: 0 };
    for index in options.slice.clone() {
        let Some((row, cell)) = data_cell(grid, col, options.header_rows, index) else {
            break;
        };
        let place = CellPlace { origin, row, col };
        match classify(&cell) {
            Parsed::Blank => read.blank += 1,
            Parsed::Invalid(value) => match options.on_invalid {
                InvalidPolicy::Skip => read.invalid_skipped += 1,
                InvalidPolicy::Error => return Err(place.not_numeric(value)),
            },
            Parsed::Huge(value) => return Err(place.too_large(value, decimals)),
            Parsed::Number(number) => {
                if number.decimals > allowed {
                    return Err(place.too_many_decimals(&number, allowed));
                }
                match number.to_scale(decimals) {
                    Some(value) if value.unsigned_abs() <= MAX_MAGNITUDE.unsigned_abs() => read.values.push(value),
                    _ => return Err(place.too_large(number.to_string(), decimals)),
                }
            }
        }
    }
    Ok(read)
}

/// Where a data cell is, for its error messages.
struct CellPlace<'a> {
    origin: &'a Origin<'a>,
    row: u32,
    col: u32,
}

impl CellPlace<'_> {
    /// `NotNumeric` for this cell, showing `value`.
    fn not_numeric(&self, value: String) -> DataError {
        DataError::NotNumeric {
            path: self.origin.path.to_path_buf(),
            sheet: self.origin.sheet.clone(),
            cell: cell_ref(self.row, self.col),
            value,
        }
    }

    /// `ValueTooLarge` for this cell, showing `value`, at the column's `decimals`.
    fn too_large(&self, value: String, decimals: u32) -> DataError {
        DataError::ValueTooLarge {
            path: self.origin.path.to_path_buf(),
            sheet: self.origin.sheet.clone(),
            cell: cell_ref(self.row, self.col),
            value,
            decimals,
        }
    }

    /// `TooManyDecimals` for this cell: `number` has more than `allowed`.
    fn too_many_decimals(&self, number: &Decimal, allowed: u32) -> DataError {
        DataError::TooManyDecimals {
            path: self.origin.path.to_path_buf(),
            sheet: self.origin.sheet.clone(),
            cell: cell_ref(self.row, self.col),
            value: number.to_string(),
            found: u64::from(number.decimals),
            allowed,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn classifies_cells() {
        let number = |m, d| Parsed::Number(Decimal { mantissa: m, decimals: d });
        assert_eq!(classify(&CellValue::Float(2021.0)), number(2021, 0));
        assert_eq!(classify(&CellValue::Float(-0.0111)), number(-111, 4));
        assert_eq!(classify(&CellValue::Int(-5)), number(-5, 0));
        assert_eq!(classify(&CellValue::Text(" 1.96 ")), number(196, 2));
        assert_eq!(classify(&CellValue::Text("  ")), Parsed::Blank);
        assert_eq!(classify(&CellValue::Blank), Parsed::Blank);
        assert_eq!(classify(&CellValue::Text("12,345")), Parsed::Invalid("12,345".into()));
        assert_eq!(classify(&CellValue::Other("TRUE".into())), Parsed::Invalid("TRUE".into()));
        assert_eq!(classify(&CellValue::Float(f64::NAN)), Parsed::Invalid("NaN".into()));
        assert!(matches!(classify(&CellValue::Float(1e300)), Parsed::Huge(_)));
    }

    struct OneColumn(Vec<CellValue<'static>>);
    impl SheetGrid for OneColumn {
        fn row_count(&self) -> u32 {
            u32::try_from(self.0.len()).unwrap() + 3
        }
        fn col_count(&self) -> u32 {
            1
        }
        fn cell(&self, row: u32, _col: u32) -> CellValue<'_> {
            row.checked_sub(3).and_then(|i| self.0.get(i as usize)).cloned().unwrap_or(CellValue::Blank)
        }
    }

    fn read(cells: Vec<CellValue<'static>>, decimals: Option<u32>) -> Result<ColumnData, DataError> {
        let rows = u64::try_from(cells.len()).unwrap();
        let grid = OneColumn(cells);
        let path = PathBuf::from("x.csv");
        let header =
            ColumnHeader { index: 0, column_ref: "A".into(), labels: vec!["g".into(), "s".into(), "p".into()] };
        read_values(
            &grid,
            &Origin { path: &path, sheet: &None },
            &header,
            &ReadOptions {
                slice: 0..rows,
                data_rows: rows,
                on_invalid: InvalidPolicy::Error,
                decimals,
                header_rows: 3,
            },
        )
    }

    #[test]
    fn detects_and_declares_decimals() {
        let cells = vec![CellValue::Text("1.5"), CellValue::Float(2.25), CellValue::Blank, CellValue::Int(3)];
        let data = read(cells.clone(), None).unwrap();
        assert_eq!(data.values, vec![150, 225, 300]);
        assert_eq!((data.decimals, data.blank, data.rows), (2, 1, 4));
        let data = read(cells.clone(), Some(3)).unwrap();
        assert_eq!(data.values, vec![1500, 2250, 3000]);
        let err = read(cells, Some(1)).unwrap_err();
        assert!(matches!(&err, DataError::TooManyDecimals { cell, found: 2, allowed: 1, .. } if cell == "A5"), "{err}");
    }

    #[test]
    fn limits() {
        let err = read(vec![CellValue::Text("0.0000000000001")], None).unwrap_err();
        assert!(matches!(&err, DataError::TooManyDecimals { cell, allowed: 12, .. } if cell == "A4"));
        let big = (1i128 << 62).to_string();
        assert_eq!(
            read(vec![CellValue::Text(Box::leak(big.into_boxed_str()))], None).unwrap().values,
            vec![1i128 << 62]
        );
        let err = read(vec![CellValue::Text("4611686018427387905")], None).unwrap_err();
        assert!(matches!(&err, DataError::ValueTooLarge { cell, .. } if cell == "A4"));
        let err = read(vec![CellValue::Text("461168601842738.7905"), CellValue::Text("0.00001")], None).unwrap_err();
        assert!(matches!(&err, DataError::ValueTooLarge { cell, .. } if cell == "A4"), "{err}");
        let err = read(vec![CellValue::Text("a"), CellValue::Text("b")], None).unwrap_err();
        assert!(matches!(err, DataError::TextColumn { .. }));
    }
}
