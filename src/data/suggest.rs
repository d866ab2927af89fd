//! "Did you mean" for a column query that matched nothing: ranks a sheet's
//! columns by how close their header labels are to the query (case-insensitive
//! equality, substrings, Levenshtein distance) and keeps up to 5 close ones.
//! Input: the query and `ColumnHeader`s from `header.rs`; output: column
//! descriptions for `DataError::NoSuchColumn`, or (`close_label_sets`)
//! label lists for the console's "did you mean" over published labels. Pure.

use super::header::ColumnHeader;

/// Most suggestions listed.
pub const MAX_SUGGESTIONS: usize = 5;

/// Edit distance (insertions, deletions, substitutions) over chars.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b_chars: Vec<char> = b.chars().collect();
    // previous[j]: distance from the first i chars of a to the first j of b
    let mut previous: Vec<usize> = (0..=b_chars.len()).collect();
    for (i, a_char) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(previous.len());
        current.push(i + 1);
        for (b_char, pair) in b_chars.iter().zip(previous.windows(2)) {
            let &[diagonal, above] = pair else { continue };
            let left = current.last().copied().unwrap_or(usize::MAX - 1);
            let substitution = diagonal + usize::from(a_char != *b_char);
            current.push(substitution.min(above + 1).min(left + 1));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

/// How far one query label is from one header label: 0 if equal ignoring
/// case, at most 1 if one contains the other, else the edit distance of the
/// lowercased texts.
fn label_distance(wanted: &str, label: &str) -> usize {
    let wanted = wanted.to_lowercase();
    let label = label.to_lowercase();
    if wanted == label {
        return 0;
    }
    if label.is_empty() {
        return wanted.chars().count();
    }
    if label.contains(&wanted) || wanted.contains(&label) {
        return 1;
    }
    levenshtein(&wanted, &label)
}

/// A distance still worth suggesting for a query label of this length.
fn tolerance(wanted: &str) -> usize {
    (wanted.chars().count() / 3).max(2)
}

/// Total distance from `query` to a column's `labels` (each query label to
/// its closest header label), or None when one query label is too far.
fn column_distance(query: &[String], labels: &[String]) -> Option<usize> {
    let mut total = 0;
    for wanted in query {
        let best = labels.iter().map(|label| label_distance(wanted, label)).min().unwrap_or(usize::MAX);
        if best > tolerance(wanted) {
            return None;
        }
        total += best;
    }
    Some(total)
}

/// Up to `MAX_SUGGESTIONS` columns close to `query`, closest first, as
/// "group / sub-label / period (letters)".
pub fn close_columns(query: &[String], columns: &[ColumnHeader]) -> Vec<String> {
    let mut scored: Vec<(usize, &ColumnHeader)> = columns
        .iter()
        .filter_map(|column| column_distance(query, &column.labels).map(|score| (score, column)))
        .collect();
    scored.sort_by_key(|(score, column)| (*score, column.index));
    scored.into_iter().take(MAX_SUGGESTIONS).map(|(_, column)| column.describe()).collect()
}

/// Up to `MAX_SUGGESTIONS` of `columns` (each a column's header labels, as
/// relays publish them) close to `query`, closest first (ties in the order given).
pub fn close_label_sets(query: &[String], columns: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut scored: Vec<(usize, usize, &Vec<String>)> = columns
        .iter()
        .enumerate()
        .filter_map(|(index, labels)| column_distance(query, labels).map(|score| (score, index, labels)))
        .collect();
    scored.sort_by_key(|(score, index, _)| (*score, *index));
    scored.into_iter().take(MAX_SUGGESTIONS).map(|(_, _, labels)| labels.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(index: u32, letters: &str, labels: [&str; 3]) -> ColumnHeader {
        ColumnHeader { index, column_ref: letters.to_string(), labels: labels.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn distances() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("Populaton", "Population"), 1);
        assert_eq!(levenshtein("é", "e"), 1);
    }

    #[test]
    fn suggests_close_columns() {
        let columns = vec![
            column(2, "C", ["Population", "All usual residents", "1996"]),
            column(7, "H", ["Population", "All usual residents", "2021"]),
            column(19, "T", ["Land", "Land area (square kilometres)", "2021"]),
        ];
        let query = |labels: &[&str]| -> Vec<String> { labels.iter().map(|s| s.to_string()).collect() };
        let found = close_columns(&query(&["Populaton", "All usual residents", "2021"]), &columns);
        assert_eq!(found[0], "Population / All usual residents / 2021 (H)");
        assert_eq!(found.len(), 1);
        let found = close_columns(&query(&["land area"]), &columns);
        assert_eq!(found, vec!["Land / Land area (square kilometres) / 2021 (T)"]);
        let found = close_columns(&query(&["population"]), &columns);
        assert_eq!(found.len(), 2);
        assert!(close_columns(&query(&["zzzzzzzz"]), &columns).is_empty());
    }

    #[test]
    fn suggests_close_label_sets() {
        let owned = |labels: &[&str]| -> Vec<String> { labels.iter().map(|s| s.to_string()).collect() };
        let columns = vec![
            owned(&["Population", "All usual residents", "1996"]),
            owned(&["Population", "All usual residents", "2021"]),
            owned(&["Land", "Land area (square kilometres)", "2021"]),
        ];
        let found = close_label_sets(&owned(&["Populaton", "All usual residents", "2021"]), &columns);
        assert_eq!(found, vec![owned(&["Population", "All usual residents", "2021"])]);
        assert_eq!(
            close_label_sets(&owned(&["Lnd"]), &columns),
            vec![owned(&["Land", "Land area (square kilometres)", "2021"])]
        );
        assert!(close_label_sets(&owned(&["zzzzzzzz"]), &columns).is_empty());
    }
}
