//! Bucket grids for encrypted histograms.
//!
//! - `Magnitude`: 127 buckets ordered by value: negative values by bit length
//!   (longest first), zero, positive values by bit length. Used for the first
//!   round of an exact quantile search when no bounds are known.
//! - `Uniform`: `buckets` buckets of equal `width` from `lo`; used to refine a
//!   bucket until its width is 1 (exact at the column's resolution).
//! - `Edges`: user-given edges e_0 < ... < e_k: buckets (-inf, e_0), [e_0, e_1),
//!   ..., [e_k, +inf), for the histogram statistic.
//!
//! Values are fixed-point integers. A value outside a Uniform grid falls in
//! no bucket.

use serde::{Deserialize, Serialize};

use super::error::StatsError;

pub const MAGNITUDE_BUCKETS: u32 = 127;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grid {
    Magnitude,
    Uniform { lo: i128, width: i128, buckets: u32 },
    Edges(Vec<i128>),
}

/// The inclusive value range of a bucket; `None` stands for an open end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketRange {
    pub lo: Option<i128>,
    pub hi: Option<i128>,
}

fn bit_length(v: u128) -> u32 {
    128 - v.leading_zeros()
}

impl Grid {
    pub fn buckets(&self) -> u32 {
        match self {
            Grid::Magnitude => MAGNITUDE_BUCKETS,
            Grid::Uniform { buckets, .. } => *buckets,
            Grid::Edges(edges) => u32::try_from(edges.len() + 1).unwrap_or(u32::MAX),
        }
    }

    pub fn validate(&self) -> Result<(), StatsError> {
        let bad = |reason: String| StatsError::InvalidParameter { name: "grid", reason };
        match self {
            Grid::Magnitude => Ok(()),
            Grid::Uniform { width, buckets, lo } => {
                if *width < 1 || *buckets < 1 || *buckets > 4096 {
                    return Err(bad(format!(
                        "uniform grid needs width >= 1 and 1..=4096 buckets, got {width} x {buckets}"
                    )));
                }
                lo.checked_add(width.checked_mul(i128::from(*buckets)).ok_or_else(|| bad("grid too wide".into()))?)
                    .ok_or_else(|| bad("grid too wide".into()))?;
                Ok(())
            }
            Grid::Edges(edges) => {
                if edges.is_empty() || edges.len() > 4096 {
                    return Err(bad(format!("a histogram needs 1..=4096 edges, got {}", edges.len())));
                }
                if edges.windows(2).any(|w| w.first() >= w.get(1)) {
                    return Err(bad("histogram edges must increase strictly".into()));
                }
                Ok(())
            }
        }
    }

    /// The bucket of a value, if any.
    pub fn bucket_of(&self, v: i128) -> Option<u32> {
        match self {
            Grid::Magnitude => {
                if v == 0 {
                    Some(63)
                } else {
                    let k = bit_length(v.unsigned_abs()).min(63);
                    Some(if v < 0 { 63 - k } else { 63 + k })
                }
            }
            Grid::Uniform { lo, width, buckets } => {
                if v < *lo {
                    return None;
                }
                let index = (v - lo) / width;
                u32::try_from(index).ok().filter(|i| i < buckets)
            }
            Grid::Edges(edges) => u32::try_from(edges.partition_point(|e| *e <= v)).ok(),
        }
    }

    /// The inclusive range of values in a bucket.
    pub fn range_of(&self, bucket: u32) -> BucketRange {
        match self {
            Grid::Magnitude => {
                let b = i64::from(bucket) - 63;
                if b == 0 {
                    return BucketRange { lo: Some(0), hi: Some(0) };
                }
                let k = u32::try_from(b.unsigned_abs()).unwrap_or(63);
                let low = 1i128 << (k - 1);
                let high = if k >= 63 { i128::from(i64::MAX) } else { (1i128 << k) - 1 };
                if b > 0 {
                    BucketRange { lo: Some(low), hi: Some(high) }
                } else {
                    BucketRange { lo: Some(-high), hi: Some(-low) }
                }
            }
            Grid::Uniform { lo, width, .. } => {
                let start = lo + width * i128::from(bucket);
                BucketRange { lo: Some(start), hi: Some(start + width - 1) }
            }
            Grid::Edges(edges) => {
                let i = usize::try_from(bucket).unwrap_or(usize::MAX);
                let lo = if i == 0 { None } else { edges.get(i - 1).copied() };
                let hi = edges.get(i).map(|e| e - 1);
                BucketRange { lo, hi }
            }
        }
    }

    /// A uniform grid of at most `buckets` buckets covering [lo, hi].
    pub fn covering(lo: i128, hi: i128, buckets: u32) -> Result<Grid, StatsError> {
        if hi < lo {
            return Err(StatsError::InvalidParameter { name: "bounds", reason: format!("empty range {lo}..={hi}") });
        }
        let span =
            hi.checked_sub(lo).and_then(|s| s.checked_add(1)).ok_or(StatsError::ArithmeticOverflow("grid span"))?;
        let b = i128::from(buckets.max(1));
        let width = (span + b - 1) / b;
        let needed = u32::try_from((span + width - 1) / width).map_err(|_| StatsError::ArithmeticOverflow("grid"))?;
        Ok(Grid::Uniform { lo, width, buckets: needed })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn magnitude_buckets_are_ordered_and_cover() {
        let g = Grid::Magnitude;
        let mut last = 0;
        for v in [-(1i128 << 62), -1000, -2, -1, 0, 1, 2, 3, 4, 1000, 1 << 62] {
            let b = g.bucket_of(v).unwrap();
            assert!(b >= last);
            last = b;
            let r = g.range_of(b);
            assert!(r.lo.unwrap() <= v && v <= r.hi.unwrap(), "{v} in {r:?}");
        }
    }

    #[test]
    fn uniform_and_edges() {
        let g = Grid::covering(4096, 8191, 64).unwrap();
        assert_eq!(g, Grid::Uniform { lo: 4096, width: 64, buckets: 64 });
        assert_eq!(g.bucket_of(4095), None);
        assert_eq!(g.bucket_of(8191), Some(63));
        assert_eq!(g.range_of(1), BucketRange { lo: Some(4160), hi: Some(4223) });
        let small = Grid::covering(10, 12, 64).unwrap();
        assert_eq!(small, Grid::Uniform { lo: 10, width: 1, buckets: 3 });
        let e = Grid::Edges(vec![0, 10, 20]);
        assert_eq!(e.buckets(), 4);
        assert_eq!(e.bucket_of(-1), Some(0));
        assert_eq!(e.bucket_of(0), Some(1));
        assert_eq!(e.bucket_of(19), Some(2));
        assert_eq!(e.bucket_of(20), Some(3));
        assert!(Grid::Edges(vec![3, 3]).validate().is_err());
    }
}
