//! Adapts the relay's configured files (`data`) to the protocol's
//! `ColumnSource`. Each file is parsed once and kept while its size and
//! modification time stay the same, so repeated queries do not re-read it;
//! the last `CACHED_COLUMNS` columns read from them (at most
//! `CACHED_VALUES` values) are kept as values too (converting 125 000 cells
//! took about 90 ms a query), and dropped when any file is read again. The
//! error sent to the processor never quotes a cell's content.

use std::cell::RefCell;
use std::time::SystemTime;

use crate::data::error::at;
use crate::data::{combine_columns, DataError, LoadedSource, SourceSpec};
use crate::protocol::relay::{ColumnSource, ColumnValues, SourceError};

struct CachedFile {
    modified: Option<SystemTime>,
    len: u64,
    loaded: LoadedSource,
}

/// Columns kept as values, by labels (the oldest goes first), and at most
/// this many values in all (64 MiB of i128).
const CACHED_COLUMNS: usize = 8;
const CACHED_VALUES: usize = 1 << 22;

pub struct FileColumnSource {
    relay: String,
    sources: Vec<SourceSpec>,
    cache: RefCell<Vec<Option<CachedFile>>>,
    /// columns read from the files as they are cached now, by labels
    columns: RefCell<Vec<(Vec<String>, ColumnValues)>>,
}

/// The error text that may leave the relay: the same as the local one, minus
/// any cell content.
pub fn public_message(relay: &str, err: &DataError) -> String {
    let text = match err {
        DataError::NotNumeric { path, sheet, cell, .. } => format!(
            "{}: cell {cell} is not a number; fix the cell or set `on_invalid: skip` in the relay's config",
            at(path, sheet)
        ),
        DataError::TooManyDecimals { path, sheet, cell, .. } => format!(
            "{}: cell {cell} has more decimal places than allowed; round it or raise `decimals`",
            at(path, sheet)
        ),
        DataError::ValueTooLarge { path, sheet, cell, .. } => {
            format!("{}: cell {cell} is too large for exact arithmetic", at(path, sheet))
        }
        other => other.to_string(),
    };
    format!("relay {relay}: {text}")
}

impl FileColumnSource {
    pub fn new(relay: &str, sources: Vec<SourceSpec>) -> Self {
        let cache = RefCell::new(sources.iter().map(|_| None).collect());
        FileColumnSource { relay: relay.to_string(), sources, cache, columns: RefCell::new(Vec::new()) }
    }

    pub fn files(&self) -> usize {
        self.sources.len()
    }

    /// The loaded file of `slot`, read again when its size or time changed
    /// (then the columns kept as values are dropped).
    fn loaded<'c>(&self, spec: &SourceSpec, slot: &'c mut Option<CachedFile>) -> Result<&'c LoadedSource, DataError> {
        let meta = std::fs::metadata(&spec.path)
            .map_err(|e| DataError::Io { path: spec.path.clone(), reason: e.to_string() })?;
        let (modified, len) = (meta.modified().ok(), meta.len());
        let fresh = matches!(slot, Some(c) if c.modified == modified && c.len == len && modified.is_some());
        if !fresh {
            *slot = None;
            self.columns.borrow_mut().clear();
            *slot = Some(CachedFile { modified, len, loaded: LoadedSource::open(spec)? });
        }
        slot.as_ref().map(|c| &c.loaded).ok_or(DataError::NoSources)
    }

    fn read(&self, labels: &[String]) -> Result<ColumnValues, DataError> {
        let mut cache = self.cache.borrow_mut();
        let mut loaded = Vec::with_capacity(self.sources.len());
        for (spec, slot) in self.sources.iter().zip(cache.iter_mut()) {
            loaded.push((spec, self.loaded(spec, slot)?));
        }
        // every file as cached: a column read from them since is still right
        if let Some((_, column)) = self.columns.borrow().iter().find(|(l, _)| l.as_slice() == labels) {
            return Ok(column.clone());
        }
        let parts = loaded
            .into_iter()
            .map(|(spec, file)| file.read_column(labels).map(|column| (spec, column)))
            .collect::<Result<Vec<_>, _>>()?;
        let data = combine_columns(parts)?;
        let column = ColumnValues { labels: data.labels, decimals: data.decimals, values: data.values };
        let mut columns = self.columns.borrow_mut();
        if column.values.len() <= CACHED_VALUES {
            while columns.len() >= CACHED_COLUMNS
                || columns.iter().map(|(_, c)| c.values.len()).sum::<usize>() + column.values.len() > CACHED_VALUES
            {
                columns.remove(0);
            }
            columns.push((labels.to_vec(), column.clone()));
        }
        Ok(column)
    }
}

impl ColumnSource for FileColumnSource {
    fn column(&self, labels: &[String]) -> Result<ColumnValues, SourceError> {
        self.read(labels).map_err(|e| SourceError { public: public_message(&self.relay, &e), private: e.to_string() })
    }

    /// The header labels of every column of the sources that opt in
    /// (`publish_columns: true`), without duplicates.
    fn published_columns(&self) -> Result<Vec<Vec<String>>, SourceError> {
        let mut cache = self.cache.borrow_mut();
        let mut out: Vec<Vec<String>> = Vec::new();
        for (spec, slot) in self.sources.iter().zip(cache.iter_mut()).filter(|(s, _)| s.publish_columns) {
            let loaded = self
                .loaded(spec, slot)
                .map_err(|e| SourceError { public: public_message(&self.relay, &e), private: e.to_string() })?;
            for (_, labels) in loaded.columns() {
                let labels: Vec<String> = labels.into_iter().filter(|l| !l.is_empty()).collect();
                if !out.contains(&labels) {
                    out.push(labels);
                }
            }
        }
        Ok(out)
    }

    /// The largest decimals the sources declare for this column; `None` if
    /// any declares none.
    fn declared_decimals(&self, labels: &[String]) -> Option<u32> {
        self.sources.iter().map(|s| s.decimals_for(labels)).collect::<Option<Vec<u32>>>()?.into_iter().max()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_changed_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csv");
        std::fs::write(&path, ",\nG,\nP,\n1\n2\n").unwrap();
        let source = FileColumnSource::new("relay-1", vec![SourceSpec::new(&path).with_header_rows(3)]);
        let labels = vec!["G".to_string()];
        assert_eq!(source.declared_decimals(&labels), None);
        assert_eq!(source.column(&labels).unwrap().values, vec![1, 2]);
        assert_eq!(source.column(&labels).unwrap().values, vec![1, 2]);
        std::fs::write(&path, ",\nG,\nP,\n1\n2\n30\n").unwrap();
        assert_eq!(source.column(&labels).unwrap().values, vec![1, 2, 30], "the kept column is dropped");
        assert_eq!(source.column(&labels).unwrap().values, vec![1, 2, 30]);
        std::fs::remove_file(&path).unwrap();
        assert!(source.column(&labels).unwrap_err().public.contains("d.csv"));
    }

    #[test]
    fn columns_are_kept_by_labels_and_the_oldest_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csv");
        let header: Vec<String> = (0..10).map(|i| format!("C{i}")).collect();
        let rows: Vec<String> =
            (1..=3).map(|r| (0..10).map(|c| (r * 100 + c).to_string()).collect::<Vec<_>>().join(",")).collect();
        std::fs::write(
            &path,
            format!("{}\n{}\n{}\n{}\n", ",".repeat(9), header.join(","), ",".repeat(9), rows.join("\n")),
        )
        .unwrap();
        let source = FileColumnSource::new("relay-1", vec![SourceSpec::new(&path).with_header_rows(3)]);
        for c in 0..10i128 {
            let labels = vec![format!("C{c}")];
            assert_eq!(source.column(&labels).unwrap().values, vec![100 + c, 200 + c, 300 + c]);
            assert_eq!(source.column(&labels).unwrap().values, vec![100 + c, 200 + c, 300 + c], "kept");
        }
        let kept: Vec<String> = source.columns.borrow().iter().map(|(l, _)| l.join("")).collect();
        assert_eq!(kept, (2..10).map(|i| format!("C{i}")).collect::<Vec<_>>(), "the last {CACHED_COLUMNS}");
        assert!(source.column(&["nope".to_string()]).is_err());
        assert_eq!(source.columns.borrow().len(), CACHED_COLUMNS, "an error keeps nothing");
    }
}
