//! The header rows of a sheet (1 to 3, `header_rows` of the source: e.g.
//! one row of column names, or group, sub-label, year/period) and column
//! lookup by labels. A blank header cell (also the hidden part of a merged
//! cell) inherits the label to its left in the same row when there are
//! several header rows. A query of 1 to `header_rows` labels matches a column
//! when it equals, in order, a subsequence of the column's labels. Input: a `SheetGrid`; output: `ColumnHeader`s and lookup
//! results for `loaded.rs`. Builds no error messages with paths.

use super::cell::{column_letters, SheetGrid};

/// Most header rows a source may declare.
pub const MAX_HEADER_ROWS: u32 = 3;

/// A column's position and its labels, one per header row (after inheritance, trimmed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnHeader {
    /// 0-based column index.
    pub index: u32,
    /// Spreadsheet letters ("H").
    pub column_ref: String,
    /// One label per header row (e.g. group, sub-label, year/period); "" where the sheet has none.
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
/// right, with inherited labels (only with several header rows: a single
/// row of names inherits nothing).
pub(crate) fn header_columns(grid: &dyn SheetGrid, header_rows: u32) -> Vec<ColumnHeader> {
    let header_rows = header_rows.clamp(1, MAX_HEADER_ROWS);
    let rows = header_rows.min(grid.row_count());
    let mut inherited: Vec<String> = vec![String::new(); usize::try_from(header_rows).unwrap_or(1)];
    let mut columns = Vec::new();
    for col in 0..grid.col_count() {
        let mut any_label = false;
        let mut labels = Vec::with_capacity(inherited.len());
        for (row, left) in (0..header_rows).zip(inherited.iter_mut()) {
            let text = if row < rows { grid.cell(row, col).display_text() } else { String::new() };
            if !text.is_empty() {
                any_label = true;
                *left = text;
            } else if header_rows == 1 {
                left.clear();
            }
            labels.push(left.clone());
        }
        if any_label {
            columns.push(ColumnHeader { index: col, column_ref: column_letters(col), labels });
        }
    }
    columns
}

/// Pairs of columns whose full labels are the same (a query could not tell
/// them apart): their column letters.
pub(crate) fn duplicate_columns(columns: &[ColumnHeader]) -> Option<(String, String)> {
    columns.iter().enumerate().find_map(|(i, a)| {
        columns.iter().skip(i + 1).find(|b| b.labels == a.labels).map(|b| (a.column_ref.clone(), b.column_ref.clone()))
    })
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
    impl SheetGrid for Cells {
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
        let columns = header_columns(&sample(), 3);
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

    /// Issue 10: a one-header file read as if it had 3 header rows lost two
    /// data rows to the labels. With `header_rows: 1` a blank name is no
    /// column (nothing is inherited) and labels are single names.
    #[test]
    fn one_header_row_of_names() {
        let grid = Cells(vec![vec!["units", "", "price"], vec!["311", "5", "2.5"], vec!["820", "6", "3"]]);
        let columns = header_columns(&grid, 1);
        let labels: Vec<Vec<String>> = columns.iter().map(|c| c.labels.clone()).collect();
        assert_eq!(labels, vec![q(&["units"]), q(&["price"])]);
        assert_eq!(columns[1].column_ref, "C");
        assert_eq!(duplicate_columns(&columns), None);
        let twice = Cells(vec![vec!["units", "price", "units"], vec!["1", "2", "3"]]);
        assert_eq!(duplicate_columns(&header_columns(&twice, 1)), Some(("A".to_string(), "C".to_string())));
    }

    #[test]
    fn matches_ordered_subsequences() {
        let columns = header_columns(&sample(), 3);
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
