//! Adapts the relay's configured files (`data`) to the protocol's
//! `ColumnSource`. The error sent to the processor never quotes a cell's
//! content; the full error (with the value) goes to the relay's own log only.

use crate::data::{read_column_all, DataError, SourceSpec};
use crate::protocol::relay::{ColumnSource, ColumnValues, SourceError};

pub struct FileColumnSource {
    pub relay: String,
    pub sources: Vec<SourceSpec>,
}

/// The error text that may leave the relay: the same as the local one, minus
/// any cell content.
pub fn public_message(relay: &str, err: &DataError) -> String {
    let text = match err {
        DataError::NotNumeric { cell, .. } => format!(
            "cell {cell} of the column is not a number; fix the cell or set `on_invalid: skip` in the relay's config"
        ),
        DataError::TooManyDecimals { cell, .. } => {
            format!("cell {cell} of the column has more decimal places than allowed; round it or raise `decimals`")
        }
        DataError::ValueTooLarge { cell, .. } => format!("cell {cell} of the column is too large for exact arithmetic"),
        other => other.to_string(),
    };
    format!("relay {relay}: {text}")
}

impl ColumnSource for FileColumnSource {
    fn column(&self, labels: &[String]) -> Result<ColumnValues, SourceError> {
        let data = read_column_all(&self.sources, labels)
            .map_err(|e| SourceError { public: public_message(&self.relay, &e), private: e.to_string() })?;
        Ok(ColumnValues { labels: data.labels, decimals: data.decimals, values: data.values })
    }
}
