//! The 3 header rows of a sheet (group, sub-label, year/period) and column
//! lookup by labels. A blank header cell (also the hidden part of a merged
//! cell) inherits the label to its left in the same row. A query of 1 to 3
//! labels matches a column when it equals, in order, a subsequence of the
//! column's 3 labels. Input: a `Grid`; output: `ColumnHeader`s and lookup
//! results for `loaded.rs`. Builds no error messages with paths.

use super::cell::{column_letters, Grid};

/// Header rows before the data rows.
pub const HEADER_ROWS: u32 = 3;

/// A column's position and its 3 labels (after inheritance, trimmed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnHeader {
    /// 0-based column index.
    pub index: u32,
    /// Spreadsheet letters ("H").
    pub column_ref: String,
    /// Group, sub-label, year/period; "" where the sheet has none.
    pub labels: Vec<String>,
}

impl ColumnHeader {
    /// "Population / All usual residents / 2021 (H)"; empty labels left out.
    pub fn describe(&self) -> String {
        let named: Vec<&str> = self.labels.iter().map(String::as_str).filter(|label| !label.is_empty()).collect();
        format!("{} ({})", named.join(" / "), self.column_ref)
    }
}

/// The columns of a sheet with at least one non-blank header cell, left to
/// right, with inherited labels.
pub(crate) fn header_columns(grid: &dyn Grid) -> Vec<ColumnHeader> {
    let rows = HEADER_ROWS.min(grid.row_count());
    let mut inherited: Vec<String> = vec![String::new(); HEADER_ROWS as usize];
    let mut columns = Vec::new();
    for col in 0..grid.col_count() {
        let mut any_label = false;
        let mut labels = Vec::with_capacity(inherited.len());
        for (row, left) in (0..HEADER_ROWS).zip(inherited.iter_mut()) {
            let text = if row < rows { grid.cell(row, col).display_text() } else { String::new() };
            if !text.is_empty() {
                any_label = true;
                *left = text;
            }
            labels.push(left.clone());
        }
        if any_label {
            columns.push(ColumnHeader { index: col, column_ref: column_letters(col), labels });
        }
    }
    columns
}

/// Whether `query` equals, in order, a subsequence of `labels`.
pub(crate) fn query_matches(query: &[String], labels: &[String]) -> bool {
    let mut remaining = labels.iter();
    query.iter().all(|wanted| remaining.by_ref().any(|label| label == wanted))
}

/// The result of looking a query up among a sheet's columns.
#[derive(Debug)]
pub(crate) enum Lookup<'a> {
    Found(&'a ColumnHeader),
    None,
    Many(Vec<&'a ColumnHeader>),
}

/// Finds the one column that `query` (trimmed, non-empty labels) names.
pub(crate) fn find_column<'a>(columns: &'a [ColumnHeader], query: &[String]) -> Lookup<'a> {
    let found: Vec<&ColumnHeader> = columns.iter().filter(|column| query_matches(query, &column.labels)).collect();
    match found.as_slice() {
        [] => Lookup::None,
        [one] => Lookup::Found(one),
        _ => Lookup::Many(found),
    }
}

/// The query for messages: `["Population", "2021"]`.
pub(crate) fn describe_query(query: &[String]) -> String {
    format!("{query:?}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::cell::CellValue;
    use super::*;

    struct Cells(Vec<Vec<&'static str>>);
    impl Grid for Cells {
        fn row_count(&self) -> u32 {
            u32::try_from(self.0.len()).unwrap()
        }
        fn col_count(&self) -> u32 {
            u32::try_from(self.0.iter().map(Vec::len).max().unwrap_or(0)).unwrap()
        }
        fn cell(&self, row: u32, col: u32) -> CellValue<'_> {
            let text = self.0.get(row as usize).and_then(|r| r.get(col as usize)).copied().unwrap_or("");
            if text.is_empty() {
                CellValue::Blank
            } else {
                CellValue::Text(text)
            }
        }
    }

    fn q(labels: &[&str]) -> Vec<String> {
        labels.iter().map(|s| s.to_string()).collect()
    }

    fn sample() -> Cells {
        Cells(vec![
            vec!["", "", "Pop", "", "", "Land"],
            vec!["", "", "All", "", "Density ", "Area"],
            vec!["Code", "Name", "2016", "2021", "2021", "2021"],
            vec!["x", "y", "1", "2", "3", "4", "stray"],
        ])
    }

    #[test]
    fn inherits_labels_to_the_right() {
        let columns = header_columns(&sample());
        let labels: Vec<Vec<String>> = columns.iter().map(|c| c.labels.clone()).collect();
        assert_eq!(labels[0], q(&["", "", "Code"]));
        assert_eq!(labels[1], q(&["", "", "Name"]));
        assert_eq!(labels[3], q(&["Pop", "All", "2021"]));
        assert_eq!(labels[4], q(&["Pop", "Density", "2021"]));
        assert_eq!(labels[5], q(&["Land", "Area", "2021"]));
        // column G has no header: not a column
        assert_eq!(columns.len(), 6);
        assert_eq!(columns[3].describe(), "Pop / All / 2021 (D)");
        assert_eq!(columns[0].describe(), "Code (A)");
    }

    #[test]
    fn matches_ordered_subsequences() {
        let columns = header_columns(&sample());
        let found = |labels: &[&str]| match find_column(&columns, &q(labels)) {
            Lookup::Found(c) => Ok(c.column_ref.clone()),
            Lookup::None => Err(0),
            Lookup::Many(m) => Err(m.len()),
        };
        assert_eq!(found(&["Land"]), Ok("F".to_string()));
        assert_eq!(found(&["Area"]), Ok("F".to_string()));
        assert_eq!(found(&["Pop", "All", "2021"]), Ok("D".to_string()));
        assert_eq!(found(&["All", "2021"]), Ok("D".to_string()));
        assert_eq!(found(&["Pop", "2016"]), Ok("C".to_string()));
        assert_eq!(found(&["Code"]), Ok("A".to_string()));
        assert_eq!(found(&["2021", "Pop"]), Err(0));
        assert_eq!(found(&["pop"]), Err(0));
        assert_eq!(found(&["Pop"]), Err(3));
        assert_eq!(found(&["2021"]), Err(3));
    }
}
