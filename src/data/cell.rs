//! One view of a sheet for every file format: the `SheetGrid` trait gives the cell
//! at an absolute, 0-based (row, column) position as a `CellValue`, and
//! `cell_ref` names a position the way a spreadsheet does ("H57"). Implemented
//! by `sheet.rs` (calamine ranges) and `csv_reader.rs`; read by `header.rs`
//! and `column.rs`. No I/O here.

/// A cell's content, independent of the file format.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum CellValue<'a> {
    /// No content (also: outside the used range).
    Blank,
    /// Text as stored (not trimmed).
    Text(&'a str),
    Float(f64),
    Int(i64),
    /// Anything else (boolean, date, error value), as displayed.
    Other(String),
}

impl CellValue<'_> {
    /// The trimmed text a person sees: floats print without exponent and
    /// without a ".0" when integral (2021.0 -> "2021"), so numeric year
    /// headers in workbooks read like the text "2021" in CSV files.
    pub(crate) fn display_text(&self) -> String {
        match self {
            CellValue::Blank => String::new(),
            CellValue::Text(text) => text.trim().to_string(),
            CellValue::Float(value) => format!("{value}"),
            CellValue::Int(value) => value.to_string(),
            CellValue::Other(text) => text.trim().to_string(),
        }
    }

    /// Empty, or text that is only whitespace.
    pub(crate) fn is_blank(&self) -> bool {
        match self {
            CellValue::Blank => true,
            CellValue::Text(text) => text.trim().is_empty(),
            CellValue::Other(text) => text.trim().is_empty(),
            CellValue::Float(_) | CellValue::Int(_) => false,
        }
    }
}

/// A sheet's cells by absolute 0-based position.
pub(crate) trait SheetGrid {
    /// Rows up to and including the last used one (may end in blank rows).
    /// (Not `height`: calamine's `Range::height` is relative to its start.)
    fn row_count(&self) -> u32;
    /// Columns up to and including the last used one.
    fn col_count(&self) -> u32;
    /// The cell at (row, col); `Blank` outside the used range.
    fn cell(&self, row: u32, col: u32) -> CellValue<'_>;
}

/// Spreadsheet column letters for a 0-based column index: 0 -> "A",
/// 25 -> "Z", 26 -> "AA".
pub fn column_letters(col: u32) -> String {
    let mut letters = Vec::new();
    let mut rest = u64::from(col) + 1;
    while rest > 0 {
        let digit = (rest - 1) % 26;
        // digit < 26, so the addition stays within ASCII letters
        letters.push(char::from(b'A' + u8::try_from(digit).unwrap_or(0)));
        rest = (rest - 1) / 26;
    }
    letters.iter().rev().collect()
}

/// The sheet reference of a 0-based (row, col) position: (56, 7) -> "H57".
pub fn cell_ref(row: u32, col: u32) -> String {
    format!("{}{}", column_letters(col), u64::from(row) + 1)
}

/// The last row (0-based) holding a non-blank cell, if any.
pub(crate) fn last_used_row(grid: &dyn SheetGrid) -> Option<u32> {
    let width = grid.col_count();
    (0..grid.row_count()).rev().find(|&row| (0..width).any(|col| !grid.cell(row, col).is_blank()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(7), "H");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
        assert!(column_letters(u32::MAX).chars().all(|c| c.is_ascii_uppercase()));
        assert_eq!(cell_ref(56, 7), "H57");
    }

    #[test]
    fn display_text_of_numbers() {
        assert_eq!(CellValue::Float(2021.0).display_text(), "2021");
        assert_eq!(CellValue::Int(2021).display_text(), "2021");
        assert_eq!(CellValue::Text(" 2021 ").display_text(), "2021");
        assert!(CellValue::Text("  ").is_blank());
        assert!(!CellValue::Float(0.0).is_blank());
    }
}
