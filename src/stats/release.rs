//! Releases: the decryptions a statistic's plan may ask for, and the
//! ciphertext each one decrypts (a fixed linear function of the aggregate).
//! A search round's prefix count `HistPrefix(c)` counts every value of the
//! column below its cut, not only those inside the round's grid: the
//! round's own first c buckets plus the encrypted count of values below the
//! grid that earlier rounds' aggregates give (`Outside`); `HistSuffix(c)`
//! likewise counts every value at or above the cut, as the whole column's
//! count (round 0's aggregate) minus that prefix count: a refinement's grid
//! can reach past the bucket it refines (`Grid::covering` rounds its width
//! up), so adding the previous rounds' buckets above it would count the
//! values in the overlap twice. One release, one noise
//! draw, however many rounds came before (an earlier design added the
//! noisy counts of every round).
//! The rules of which releases a query permits are in `policy`.
//!
//! Used by `protocol::authority` (what it decrypts) and `protocol::processor`
//! (what it combines); both compute the same target from the same
//! contributions. No I/O.

use serde::{Deserialize, Serialize};

use std::ops::{Add, Sub};

use super::contribution::{Components, RelayTask};
use super::error::StatsError;
use super::grid::Grid;
use crate::crypto::{scalar_from_i128, Ciphertext};

/// What a release is computed over: ciphertexts (authorities, and the
/// processor on the ElGamal path) or plaintext sums (the processor on the
/// committed-share path). Releases are linear, so both give the same value.
pub trait Linear: Copy + Add<Output = Self> + Sub<Output = Self> {
    fn zero() -> Self;
    /// This times a public integer weight (a limb's 2^(k·L)).
    fn times(&self, weight: i128) -> Self;
    fn sum<'a>(items: impl IntoIterator<Item = &'a Self>) -> Self
    where
        Self: 'a,
    {
        items.into_iter().fold(Self::zero(), |acc, x| acc + *x)
    }
}

impl Linear for Ciphertext {
    fn zero() -> Self {
        Ciphertext::zero()
    }

    fn times(&self, weight: i128) -> Self {
        self.scale_by(&scalar_from_i128(weight))
    }

    fn sum<'a>(items: impl IntoIterator<Item = &'a Self>) -> Self {
        Ciphertext::sum(items)
    }
}

/// Plaintext sums: a sum over relays of counts or limbs fits far inside
/// i128 (at most 2^32 rows of 2^47 per relay); saturating, never wrapping.
impl Linear for i128 {
    fn zero() -> Self {
        0
    }

    fn times(&self, weight: i128) -> Self {
        self.saturating_mul(weight)
    }
}

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
    /// a search's count of values at or above a cut; a noisy search
    /// releases it at the grid's end only (the cell above the grid), and
    /// `HistPrefix(0)` (the cell below it)
    HistSuffix(u32),
}

fn weighted_sum<T: Linear>(limbs: &[T], limb_bits: u32) -> Result<T, StatsError> {
    let mut total = T::zero();
    for (k, c) in limbs.iter().enumerate() {
        let shift = u32::try_from(k).ok().and_then(|k| k.checked_mul(limb_bits)).filter(|s| *s < 127);
        let weight = shift.map(|s| 1i128 << s).ok_or(StatsError::ArithmeticOverflow("limb weight"))?;
        total = total + c.times(weight);
    }
    Ok(total)
}

/// What a release decrypts (or, in the clear, is): a fixed linear function
/// of the aggregate.
pub fn target<T: Linear>(task: &RelayTask, aggregate: &Components<T>, release: Release) -> Result<T, StatsError> {
    let missing = || StatsError::ReleaseRefused(format!("{release:?} does not exist in this round's aggregate"));
    match (task, aggregate, release) {
        (_, Components::Moments { count, .. }, Release::Count) => Ok(*count),
        (RelayTask::Moments { limb_bits, .. }, Components::Moments { sum, .. }, Release::Sum) => {
            weighted_sum(sum, *limb_bits)
        }
        (RelayTask::Moments { limb_bits, .. }, Components::Moments { squares, .. }, Release::Squares)
            if !squares.is_empty() =>
        {
            weighted_sum(squares, *limb_bits)
        }
        (_, Components::Moments { sum, .. }, Release::SumLimb(k)) => {
            sum.get(usize::try_from(k).map_err(|_| missing())?).copied().ok_or_else(missing)
        }
        (_, Components::Moments { squares, .. }, Release::SquaresLimb(k)) => {
            squares.get(usize::try_from(k).map_err(|_| missing())?).copied().ok_or_else(missing)
        }
        (_, Components::Histogram { counts }, Release::HistTotal) => Ok(T::sum(counts)),
        (_, Components::Histogram { counts }, Release::HistPrefix(n)) => {
            let n = usize::try_from(n).map_err(|_| missing())?;
            Ok(T::sum(counts.get(..n).ok_or_else(missing)?))
        }
        (_, Components::Histogram { counts }, Release::HistSuffix(n)) => {
            let n = usize::try_from(n).map_err(|_| missing())?;
            Ok(T::sum(counts.get(n..).ok_or_else(missing)?))
        }
        (_, Components::Histogram { counts }, Release::HistBucket(k)) => {
            counts.get(usize::try_from(k).map_err(|_| missing())?).copied().ok_or_else(missing)
        }
        _ => Err(missing()),
    }
}

/// The column outside a search round's grid, encrypted (or in the clear,
/// `Outside<i128>`): the values below its first bucket, and the whole
/// column's count once a round refines another (none in round 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outside<T = Ciphertext> {
    pub below: T,
    pub total: Option<T>,
}

impl<T: Linear> Outside<T> {
    pub fn none() -> Self {
        Outside { below: T::zero(), total: None }
    }

    /// The outside of the round that refines one bucket of the previous
    /// round: the previous outside plus the previous round's buckets before
    /// the refined one (the one holding the new grid's first value;
    /// `policy::check_task` admits nothing else), and the column's count,
    /// all of round 0's buckets.
    pub fn refined(
        &self,
        previous: &RelayTask,
        aggregate: &Components<T>,
        next: &RelayTask,
    ) -> Result<Self, StatsError> {
        let refused = |why: &str| StatsError::ReleaseRefused(why.to_string());
        let (RelayTask::Histogram { grid: prev }, RelayTask::Histogram { grid: Grid::Uniform { lo, .. } }) =
            (previous, next)
        else {
            return Err(refused("only a search round refines a histogram round"));
        };
        let bucket = prev.bucket_of(*lo).ok_or_else(|| refused("the refined grid starts outside the previous grid"))?;
        let Components::Histogram { counts } = aggregate else {
            return Err(refused("the previous round has no histogram"));
        };
        let at = usize::try_from(bucket).map_err(|_| refused("bucket"))?;
        let short = || refused("the previous round's aggregate has fewer buckets than its grid");
        let before = counts.get(..at).ok_or_else(short)?;
        counts.get(at).ok_or_else(short)?;
        let total = self.total.unwrap_or_else(|| T::sum(counts));
        Ok(Outside { below: T::sum(before) + self.below, total: Some(total) })
    }
}

/// The ciphertext a release of a round decrypts: a search's prefix and
/// suffix counts cover the whole column (`outside` added), every other
/// release only the round's aggregate.
pub fn round_target<T: Linear>(
    task: &RelayTask,
    aggregate: &Components<T>,
    outside: &Outside<T>,
    release: Release,
) -> Result<T, StatsError> {
    let own = target(task, aggregate, release)?;
    Ok(match (release, outside.total) {
        (Release::HistPrefix(_), _) => own + outside.below,
        (Release::HistSuffix(n), Some(total)) => {
            total - (target(task, aggregate, Release::HistPrefix(n))? + outside.below)
        }
        _ => own,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::stats::Aggregate;

    fn histogram(counts: &[i64]) -> Aggregate {
        Components::Histogram { counts: counts.iter().map(|c| Ciphertext::public(*c)).collect() }
    }

    /// A refinement whose grid reaches past the bucket it refines: suffix
    /// counts still count every value at or above the cut once.
    #[test]
    fn suffix_counts_of_a_refinement_count_the_overlap_once() {
        // round 0: [0,10) [10,20) [20,30) [30,40) holding 5, 7, 11, 13 values,
        // 4 of bucket 2's at 20 and 21
        let grid0 = Grid::Uniform { lo: 0, width: 10, buckets: 4 };
        let round0 = RelayTask::Histogram { grid: grid0 };
        let aggregate0 = histogram(&[5, 7, 11, 13]);
        // round 1 refines [10, 19] by 4: [10,13) [13,16) [16,19) [19,22),
        // the last bucket reaching into [20, 22)
        let grid1 = Grid::covering(10, 19, 4).unwrap();
        assert_eq!(grid1, Grid::Uniform { lo: 10, width: 3, buckets: 4 });
        let round1 = RelayTask::Histogram { grid: grid1 };
        let aggregate1 = histogram(&[2, 3, 1, 1 + 4]);
        let outside = Outside::none().refined(&round0, &aggregate0, &round1).unwrap();
        let at = |release| round_target(&round1, &aggregate1, &outside, release).unwrap();
        // below 19: 5 + 2 + 3 + 1; at or above 19: the rest of 36
        assert_eq!(at(Release::HistPrefix(3)), Ciphertext::public(11));
        assert_eq!(at(Release::HistSuffix(3)), Ciphertext::public(25));
        assert_eq!(at(Release::HistSuffix(1)), Ciphertext::public(36 - 7));
        // in round 0 a suffix is its own buckets
        let none = Outside::none();
        assert_eq!(round_target(&round0, &aggregate0, &none, Release::HistSuffix(2)).unwrap(), Ciphertext::public(24));
        // a later round keeps round 0's count
        let grid2 = Grid::covering(19, 21, 4).unwrap();
        let round2 = RelayTask::Histogram { grid: grid2 };
        let again = outside.refined(&round1, &aggregate1, &round2).unwrap();
        assert_eq!(again.total, Some(Ciphertext::public(36)));
        assert_eq!(again.below, Ciphertext::public(11));
    }
}
