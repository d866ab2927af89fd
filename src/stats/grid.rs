//! Bucket grids for encrypted histograms.
//!
//! - `Magnitude { bits }`: for values with |v| < 2^bits (the query's value
//!   width, `limits::value_bits`), 2n + 1 buckets with n = ceil(bits/4),
//!   ordered by value: negative values by nibble length (longest first),
//!   zero, positive values by nibble length; bucket n + j (1 ≤ j ≤ n) holds
//!   [16^(j−1), 16^j − 1]. Used for the first round of an exact quantile
//!   search when no bounds are known: 25 buckets for 47 bits. A nibble
//!   bucket is refined by 16-bucket grids in j rounds, one more than a
//!   bit-length bucket needs in three cases of four, for a fifth of the
//!   ciphertexts (before protocol version 5: 127 bit-length buckets whatever
//!   the width, which misplaced values of 2^63 or more).
//! - `Uniform`: `buckets` buckets of equal `width` from `lo`; used to refine a
//!   bucket until its width is 1 (exact at the column's resolution).
//! - `Edges`: user-given edges e_0 < ... < e_k: buckets (-inf, e_0), [e_0, e_1),
//!   ..., [e_k, +inf), for the histogram statistic.
//!
//! Values are fixed-point integers. A value outside a Uniform grid falls in
//! no bucket.

use serde::{Deserialize, Serialize};

use super::error::StatsError;

/// Widest value a magnitude grid covers: |v| < 2^128.
pub const MAGNITUDE_MAX_BITS: u32 = 128;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grid {
    Magnitude { bits: u32 },
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

/// n = ceil(bits/4): the nibble lengths of a magnitude grid's values.
fn nibbles(bits: u32) -> u32 {
    bits.min(MAGNITUDE_MAX_BITS).div_ceil(4).max(1)
}

impl Grid {
    pub fn buckets(&self) -> u32 {
        match self {
            Grid::Magnitude { bits } => 2 * nibbles(*bits) + 1,
            Grid::Uniform { buckets, .. } => *buckets,
            Grid::Edges(edges) => u32::try_from(edges.len() + 1).unwrap_or(u32::MAX),
        }
    }

    pub fn validate(&self) -> Result<(), StatsError> {
        let bad = |reason: String| StatsError::InvalidParameter { name: "grid", reason };
        match self {
            Grid::Magnitude { bits } if (1..=MAGNITUDE_MAX_BITS).contains(bits) => Ok(()),
            Grid::Magnitude { bits } => {
                Err(bad(format!("a magnitude grid covers 1..={MAGNITUDE_MAX_BITS} bits, got {bits}")))
            }
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
            Grid::Magnitude { bits } => {
                // |v| < 2^bits by the caps (`stats::limits`); a wider value
                // would count in the outermost bucket
                let n = nibbles(*bits);
                let j = bit_length(v.unsigned_abs()).div_ceil(4).min(n);
                Some(match v.signum() {
                    0 => n,
                    1 => n + j,
                    _ => n - j,
                })
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
            Grid::Magnitude { bits } => {
                let n = i64::from(nibbles(*bits));
                let b = i64::from(bucket) - n;
                if b == 0 {
                    return BucketRange { lo: Some(0), hi: Some(0) };
                }
                // 1 <= j <= 32: nibble lengths of values below 2^128
                let j = u32::try_from(b.unsigned_abs()).unwrap_or(1).clamp(1, 32);
                let low = 1u128 << (4 * (j - 1));
                let high = u128::MAX >> (128 - 4 * j);
                let (low, high) = (i128::try_from(low).unwrap_or(i128::MAX), i128::try_from(high).unwrap_or(i128::MAX));
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
        for bits in [1u32, 4, 5, 47, 54, 87, 126] {
            let g = Grid::Magnitude { bits };
            g.validate().unwrap();
            let n = bits.div_ceil(4);
            assert_eq!(g.buckets(), 2 * n + 1);
            let top = (1i128 << bits) - 1;
            let mut last = 0;
            let mut values: Vec<i128> = [-top, -(1 << (bits - 1)), -1000, -16, -15, -2, -1, 0, 1, 2, 15, 16, 17, 1000]
                .into_iter()
                .chain([1 << (bits - 1), top])
                .filter(|v| v.unsigned_abs() <= top.unsigned_abs())
                .collect();
            values.sort();
            for v in values {
                let b = g.bucket_of(v).unwrap();
                assert!(b >= last && b < g.buckets(), "{v}: bucket {b}");
                last = b;
                let r = g.range_of(b);
                assert!(r.lo.unwrap() <= v && v <= r.hi.unwrap(), "{v} in {r:?} ({bits} bits)");
            }
            // the buckets tile [-top', top'] without gaps (top' = 16^n - 1)
            for b in 1..g.buckets() {
                let (prev, next) = (g.range_of(b - 1), g.range_of(b));
                assert_eq!(prev.hi.unwrap() + 1, next.lo.unwrap(), "{bits} bits, buckets {} and {b}", b - 1);
            }
            assert!(g.range_of(g.buckets() - 1).hi.unwrap() >= top);
        }
        let g = Grid::Magnitude { bits: 47 };
        assert_eq!(g.buckets(), 25);
        assert_eq!(g.range_of(13), BucketRange { lo: Some(1), hi: Some(15) });
        assert_eq!(g.range_of(16), BucketRange { lo: Some(4096), hi: Some(65535) });
        assert_eq!(g.bucket_of(8100), Some(16));
        assert_eq!(g.range_of(11), BucketRange { lo: Some(-15), hi: Some(-1) });
        assert_eq!(g.range_of(10), BucketRange { lo: Some(-255), hi: Some(-16) });
        assert!(Grid::Magnitude { bits: 0 }.validate().is_err());
        assert!(Grid::Magnitude { bits: 129 }.validate().is_err());
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
