//! The data layer: relays' spreadsheet (.xls, .xlsx, .ods via calamine) and
//! CSV files turned into exact fixed-point columns; the discrete-log table on
//! LMDB (heed); key files with 0600 permissions. Input comes from disk;
//! output goes to `crypto` types and to the relay actor. No network, no
//! protocol decisions, and no values in logs.

mod cell;
mod cfb_check;
mod column;
pub mod committee_files;
mod csv_reader;
pub mod decimal;
pub mod error;
mod header;
pub mod keystore;
pub mod ledger;
pub mod lmdb_table;
pub mod loaded;
mod sheet;
pub mod source;
pub mod suggest;

pub use cell::{cell_ref, column_letters};
pub use decimal::{Decimal, MAX_COLUMN_DECIMALS, MAX_MAGNITUDE};
pub use error::DataError;
pub use keystore::{read_key_share, read_relay_identity, write_key_share, write_relay_identity};
pub use lmdb_table::{LmdbTable, TableInfo};
pub use loaded::{detect_format, FileFormat, LoadedSource};
pub use sheet::WorkbookFormat;
pub use source::{
    combine_columns, list_columns, read_column, read_column_all, ColumnData, InvalidPolicy, Shard, SourceSpec,
};
