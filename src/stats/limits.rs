//! Caps that make the relays' arithmetic unable to overflow on any admitted
//! query, so that whether a relay can answer never depends on its data.
//!
//! - A relay encrypts values with |v| < 2^47 at the query's scale: its files
//!   are checked once against `VALUE_LIMIT` at their declared decimals, and
//!   admitted bounds are at most `VALUE_LIMIT` at the query's scale.
//! - At most 2^32 values per relay and column (`ROWS_LIMIT`).
//! - Then Σv < 2^32 · 2^47 · 10^12 < 2^119 and, with bounds or equal
//!   declared decimals, Σv² < 2^32 · 2^94 = 2^126: both fit an i128.
//!
//! Used by `protocol::authority` (admission) and `protocol::relay` (the
//! same checks on the spec and its own config, before any data is read).
//! No I/O.

use super::contribution::RelayTask;
use super::error::StatsError;
use super::statistic::{FixedParams, QueryParams};

/// Largest |value| a relay encrypts, at the query's scale (exclusive).
pub const VALUE_LIMIT: i128 = 1 << 47;
/// Largest number of values one relay contributes for one column.
pub const ROWS_LIMIT: usize = 1 << 32;
/// Largest fixed-point scale (decimals) of an admitted query.
pub const MAX_QUERY_DECIMALS: u32 = 12;

/// Bits that bound every value a relay sums for a moments task: |v| <
/// 2^value_bits. With bounds the values are clamped to them, so the larger
/// |bound| decides; without, a value below `VALUE_LIMIT` at its declared
/// decimals is at most 10^decimals times larger at the query's scale.
/// The processor puts it in the task, and relays and authorities refuse a
/// task with any other width, so a relay's sums always fit their limbs
/// (`limbs::moment_limbs`) and no refusal can depend on its data.
pub fn value_bits(fixed: &FixedParams) -> Result<u32, StatsError> {
    let largest = match fixed.bounds {
        Some((lo, hi)) => lo.unsigned_abs().max(hi.unsigned_abs()),
        None => 10u128
            .checked_pow(fixed.decimals)
            .and_then(|scale| (VALUE_LIMIT.unsigned_abs() - 1).checked_mul(scale))
            .ok_or(StatsError::ArithmeticOverflow("value width"))?,
    };
    Ok(u128::BITS - largest.leading_zeros())
}

/// A moments task's width is the spec's (`value_bits`): the one check, by
/// every authority when it admits a round and by a relay before it reads
/// its column.
pub fn check_value_width(task: &RelayTask, fixed: &FixedParams) -> Result<(), StatsError> {
    match task {
        RelayTask::Moments { value_bits: width, .. } if *width != value_bits(fixed)? => {
            Err(StatsError::ReleaseRefused("the task's value width differs from the query's bounds".into()))
        }
        _ => Ok(()),
    }
}

/// Authority side, at admission: the scale and bounds are within the caps.
pub fn check_admissible(params: &QueryParams, fixed: &FixedParams) -> Result<(), StatsError> {
    let bad = |name: &'static str, reason: String| StatsError::InvalidParameter { name, reason };
    if fixed.decimals > MAX_QUERY_DECIMALS {
        return Err(bad("decimals", format!("a query's scale is at most {MAX_QUERY_DECIMALS} decimals")));
    }
    if fixed.decimals < params.parameter_decimals()? {
        return Err(bad("decimals", "the query's scale is coarser than its own bounds or edges".into()));
    }
    if let Some((lo, hi)) = fixed.bounds {
        if lo.unsigned_abs() >= VALUE_LIMIT.unsigned_abs() || hi.unsigned_abs() >= VALUE_LIMIT.unsigned_abs() {
            return Err(bad(
                "bounds",
                format!(
                    "bounds must lie within ±2^47 (±{}) in units of 10^-{} (the query's scale); narrow --bounds",
                    VALUE_LIMIT - 1,
                    fixed.decimals
                ),
            ));
        }
    }
    Ok(())
}

/// Relay side: can values of a column declared at `declared` decimals be
/// encrypted at the query's scale without overflow? Depends only on the
/// spec and the relay's config, never on its data.
pub fn check_relay_scale(params: &QueryParams, fixed: &FixedParams, declared: u32) -> Result<(), StatsError> {
    check_admissible(params, fixed)?;
    let bad = |reason: String| StatsError::InvalidParameter { name: "decimals", reason };
    if declared > fixed.decimals {
        return Err(bad(format!(
            "this relay declares {declared} decimals, more than the query's scale of {}",
            fixed.decimals
        )));
    }
    if params.statistic.needs_squares() && fixed.bounds.is_none() && declared != fixed.decimals {
        return Err(bad(format!(
            "sums of squares without --bounds need every relay to declare the query's {} decimals (this relay declares {declared}); give --bounds or declare equal `decimals`",
            fixed.decimals
        )));
    }
    Ok(())
}
