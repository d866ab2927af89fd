//! Releases: the decryptions a statistic's plan may ask for, and the
//! ciphertext each one decrypts (a fixed linear function of the aggregate).
//! A search round's prefix count `HistPrefix(c)` counts every value of the
//! column below its cut, not only those inside the round's grid: the
//! round's own first c buckets plus the encrypted count of values below the
//! grid that earlier rounds' aggregates give (`Outside`); `HistSuffix(c)`
//! likewise counts every value at or above the cut. One release, one noise
//! draw, however many rounds came before (an earlier design added the
//! noisy counts of every round).
//! The rules of which releases a query permits are in `policy`.
//!
//! Used by `protocol::authority` (what it decrypts) and `protocol::processor`
//! (what it combines); both compute the same target from the same
//! contributions. No I/O.

use serde::{Deserialize, Serialize};

use super::contribution::{Aggregate, Contribution, RelayTask};
use super::error::StatsError;
use super::grid::Grid;
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
    /// a search's count of values at or above a cut: a noisy search for
    /// p > 1/2 uses it instead of the prefix count, so the noise of the
    /// total weighs (1 − p), not p, on where it stops
    HistSuffix(u32),
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
        (_, Contribution::Histogram { counts }, Release::HistSuffix(n)) => {
            let n = usize::try_from(n).map_err(|_| missing())?;
            Ok(Ciphertext::sum(counts.get(n..).ok_or_else(missing)?))
        }
        (_, Contribution::Histogram { counts }, Release::HistBucket(k)) => {
            counts.get(usize::try_from(k).map_err(|_| missing())?).copied().ok_or_else(missing)
        }
        _ => Err(missing()),
    }
}

/// The column outside a search round's grid, encrypted: the values below
/// its first bucket and those above its last (none in round 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outside {
    pub below: Ciphertext,
    pub above: Ciphertext,
}

impl Outside {
    pub fn none() -> Self {
        Outside { below: Ciphertext::zero(), above: Ciphertext::zero() }
    }

    /// The outside of the round that refines one bucket of the previous
    /// round: the previous outside plus the previous round's buckets before
    /// and after the refined one (the one holding the new grid's first
    /// value; `policy::check_task` admits nothing else).
    pub fn refined(&self, previous: &RelayTask, aggregate: &Aggregate, next: &RelayTask) -> Result<Self, StatsError> {
        let refused = |why: &str| StatsError::ReleaseRefused(why.to_string());
        let (RelayTask::Histogram { grid: prev }, RelayTask::Histogram { grid: Grid::Uniform { lo, .. } }) =
            (previous, next)
        else {
            return Err(refused("only a search round refines a histogram round"));
        };
        let bucket = prev.bucket_of(*lo).ok_or_else(|| refused("the refined grid starts outside the previous grid"))?;
        let Contribution::Histogram { counts } = aggregate else {
            return Err(refused("the previous round has no histogram"));
        };
        let at = usize::try_from(bucket).map_err(|_| refused("bucket"))?;
        let short = || refused("the previous round's aggregate has fewer buckets than its grid");
        let before = counts.get(..at).ok_or_else(short)?;
        let after = counts.get(at.checked_add(1).ok_or_else(short)?..).ok_or_else(short)?;
        Ok(Outside { below: Ciphertext::sum(before) + self.below, above: Ciphertext::sum(after) + self.above })
    }
}

/// The ciphertext a release of a round decrypts: a search's prefix and
/// suffix counts cover the whole column (`outside` added), every other
/// release only the round's aggregate.
pub fn round_target(
    task: &RelayTask,
    aggregate: &Aggregate,
    outside: &Outside,
    release: Release,
) -> Result<Ciphertext, StatsError> {
    let own = target(task, aggregate, release)?;
    Ok(match release {
        Release::HistPrefix(_) => own + outside.below,
        Release::HistSuffix(_) => own + outside.above,
        _ => own,
    })
}
