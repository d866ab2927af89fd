//! Releases: the decryptions a statistic's plan may ask for, and the
//! ciphertext each one decrypts (a fixed linear function of the aggregate).
//! The rules of which releases a query permits are in `policy`.
//!
//! Used by `protocol::authority` (what it decrypts) and `protocol::processor`
//! (what it combines); both compute the same target from the same
//! contributions. No I/O.

use serde::{Deserialize, Serialize};

use super::contribution::{Aggregate, Contribution, RelayTask};
use super::error::StatsError;
use crate::crypto::{scalar_from_i128, Ciphertext};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Release {
    Count,
    Sum,
    Squares,
    SumLimb(u32),
    SquaresLimb(u32),
    HistTotal,
    HistPrefix(u32),
    HistBucket(u32),
}

fn weighted_sum(limbs_ct: &[Ciphertext], limb_bits: u32) -> Result<Ciphertext, StatsError> {
    let mut total = Ciphertext::zero();
    for (k, c) in limbs_ct.iter().enumerate() {
        let shift = u32::try_from(k).ok().and_then(|k| k.checked_mul(limb_bits)).filter(|s| *s < 127);
        let weight = shift.map(|s| 1i128 << s).ok_or(StatsError::ArithmeticOverflow("limb weight"))?;
        total += c.scale_by(&scalar_from_i128(weight));
    }
    Ok(total)
}

/// The ciphertext a release decrypts: a fixed linear function of the aggregate.
pub fn target(task: &RelayTask, aggregate: &Aggregate, release: Release) -> Result<Ciphertext, StatsError> {
    let missing = || StatsError::ReleaseRefused(format!("{release:?} does not exist in this round's aggregate"));
    match (task, aggregate, release) {
        (_, Contribution::Moments { count, .. }, Release::Count) => Ok(*count),
        (RelayTask::Moments { limb_bits, .. }, Contribution::Moments { sum, .. }, Release::Sum) => {
            weighted_sum(sum, *limb_bits)
        }
        (RelayTask::Moments { limb_bits, .. }, Contribution::Moments { squares, .. }, Release::Squares)
            if !squares.is_empty() =>
        {
            weighted_sum(squares, *limb_bits)
        }
        (_, Contribution::Moments { sum, .. }, Release::SumLimb(k)) => {
            sum.get(usize::try_from(k).map_err(|_| missing())?).copied().ok_or_else(missing)
        }
        (_, Contribution::Moments { squares, .. }, Release::SquaresLimb(k)) => {
            squares.get(usize::try_from(k).map_err(|_| missing())?).copied().ok_or_else(missing)
        }
        (_, Contribution::Histogram { counts }, Release::HistTotal) => Ok(Ciphertext::sum(counts)),
        (_, Contribution::Histogram { counts }, Release::HistPrefix(n)) => {
            let n = usize::try_from(n).map_err(|_| missing())?;
            Ok(Ciphertext::sum(counts.get(..n).ok_or_else(missing)?))
        }
        (_, Contribution::Histogram { counts }, Release::HistBucket(k)) => {
            counts.get(usize::try_from(k).map_err(|_| missing())?).copied().ok_or_else(missing)
        }
        _ => Err(missing()),
    }
}
