//! Errors of the statistics layer: bad query parameters, inconsistent
//! contributions, refused releases, budget exhaustion, arithmetic limits.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StatsError {
    #[error(
        "unknown statistic {0:?}; use one of count, sum, mean, variance, stddev, min, max, median, quantile, histogram"
    )]
    UnknownStatistic(String),
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter { name: &'static str, reason: String },
    #[error("the column has no values (all {blank} cells blank or no data rows)")]
    NoData { blank: u64 },
    #[error("contributions disagree: {0}")]
    Inconsistent(String),
    #[error("release refused: {0}")]
    ReleaseRefused(String),
    #[error("privacy budget exhausted for dataset {dataset}: this query needs epsilon {needed}, remaining budget is epsilon {remaining}")]
    BudgetExhausted { dataset: String, needed: String, remaining: String },
    #[error("value {value} at cell-independent position overflows {what}; the column's magnitudes exceed what Crux supports exactly")]
    Overflow { what: &'static str, value: String },
    #[error("arithmetic overflow in {0}; the aggregate exceeds 128-bit exact arithmetic")]
    ArithmeticOverflow(&'static str),
    #[error("differential privacy needs column bounds: pass --bounds LO:HI (values are clamped to them)")]
    BoundsRequired,
    #[error("unexpected plan input: {0}")]
    UnexpectedInput(String),
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
}
