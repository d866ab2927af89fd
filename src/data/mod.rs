//! The data layer's file side: reads relays' spreadsheet (.xls, .xlsx, .ods
//! via calamine) and CSV files, finds the column a query names by its 3
//! header labels and turns its cells into exact fixed-point integers for the
//! relay's encrypted contribution. Input: `SourceSpec`s from a relay's config
//! and labels from queries; output: `ColumnData`. Reads files only; no
//! network, no crypto, and no values in logs.

mod cell;
mod column;
mod csv_reader;
pub mod decimal;
pub mod error;
mod header;
pub mod loaded;
mod sheet;
pub mod source;
mod suggest;

pub use cell::{cell_ref, column_letters};
pub use decimal::{Decimal, MAX_DECIMALS, MAX_MAGNITUDE};
pub use error::DataError;
pub use loaded::{detect_format, FileFormat, LoadedSource};
pub use sheet::WorkbookFormat;
pub use source::{
    list_columns, read_column, read_column_all, ColumnData, InvalidPolicy, Shard, SourceSpec,
};
