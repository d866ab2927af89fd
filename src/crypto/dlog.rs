//! Discrete logs by baby-step giant-step.
//!
//! A table holds the baby steps j·G for j in [0, N) (N = 2^bits). Its key for
//! a point P is the first 12 bytes of the ristretto encoding of 2·P: the
//! doubled encoding is what `double_and_compress_batch` yields at about a
//! sixth of the cost of a plain compression, and 96 bits make a false match
//! negligible (about 2^-74 per lookup for a 2^22 table). The solver walks
//! giant steps P ∓ i·N·G in both directions, so negative values are found too;
//! a value outside the covered range is an error, never a wrong number.
//!
//! `DlogTable` is implemented in memory here (`MemoryTable`, for tests) and on
//! LMDB in `data::lmdb_table`. No I/O in this module.

use std::collections::HashMap;

use curve25519_dalek::constants::{RISTRETTO_BASEPOINT_POINT, RISTRETTO_BASEPOINT_TABLE};
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;

use super::error::CryptoError;

/// The lookup key of a point: the first 12 bytes of compress(2·P).
pub type TableKey = [u8; 12];

/// Largest supported table: 2^32 baby steps (indices fit in a u32).
pub const MAX_TABLE_BITS: u32 = 32;

/// Default table: 2^22 baby steps (about 115 MB on LMDB, built in seconds).
/// The processor's `processor.dlog_table_bits`, `crux-node init --dlog-bits`
/// and `crux-node tables --bits` all default to it.
pub const DEFAULT_TABLE_BITS: u32 = 22;

/// A store of baby steps j·G, j in [0, baby_steps()).
pub trait DlogTable: Send + Sync {
    /// N, the number of baby steps.
    fn baby_steps(&self) -> u64;

    /// Returns the position in `keys` of the first key found in the table and
    /// its baby-step index j. One call may serve a whole batch (e.g. one LMDB
    /// read transaction).
    fn find_first(&self, keys: &[TableKey]) -> Result<Option<(usize, u64)>, CryptoError>;
}

impl<T: DlogTable + ?Sized> DlogTable for std::sync::Arc<T> {
    fn baby_steps(&self) -> u64 {
        (**self).baby_steps()
    }
    fn find_first(&self, keys: &[TableKey]) -> Result<Option<(usize, u64)>, CryptoError> {
        (**self).find_first(keys)
    }
}

fn key_of(doubled_compressed: &[u8; 32]) -> TableKey {
    let mut key = [0u8; 12];
    key.copy_from_slice(&doubled_compressed[..12]);
    key
}

/// Table keys of j·G for j in [start, start + count), computed by repeated
/// addition and batched doubling compression.
pub fn baby_step_keys(start: u64, count: usize) -> Vec<TableKey> {
    let mut points = Vec::with_capacity(count);
    let mut p = RISTRETTO_BASEPOINT_TABLE * &Scalar::from(start);
    for _ in 0..count {
        points.push(p);
        p += RISTRETTO_BASEPOINT_POINT;
    }
    keys_of(&points)
}

/// Table keys of many points at once (batched).
pub fn keys_of(points: &[RistrettoPoint]) -> Vec<TableKey> {
    RistrettoPoint::double_and_compress_batch(points).iter().map(|c| key_of(c.as_bytes())).collect()
}

/// An in-memory table for tests and small deployments.
pub struct MemoryTable {
    baby_steps: u64,
    map: HashMap<TableKey, u32>,
}

impl MemoryTable {
    /// Builds 2^bits baby steps in memory (bits <= 24 keeps this quick).
    pub fn build(bits: u32) -> Result<Self, CryptoError> {
        if bits > 26 {
            return Err(CryptoError::Table(format!("in-memory tables are limited to 2^26 entries, asked 2^{bits}")));
        }
        let n = 1u64 << bits;
        let mut map = HashMap::with_capacity(usize::try_from(n).map_err(|_| CryptoError::Overflow("table size"))?);
        let chunk = 1u64 << 14;
        let mut start = 0u64;
        while start < n {
            let len = chunk.min(n - start);
            let keys = baby_step_keys(start, usize::try_from(len).map_err(|_| CryptoError::Overflow("table size"))?);
            for (offset, key) in keys.into_iter().enumerate() {
                let j = u32::try_from(start + offset as u64).map_err(|_| CryptoError::Overflow("baby-step index"))?;
                if map.insert(key, j).is_some() {
                    return Err(CryptoError::Table(format!("key collision at baby step {j}")));
                }
            }
            start += len;
        }
        Ok(MemoryTable { baby_steps: n, map })
    }
}

impl DlogTable for MemoryTable {
    fn baby_steps(&self) -> u64 {
        self.baby_steps
    }
    fn find_first(&self, keys: &[TableKey]) -> Result<Option<(usize, u64)>, CryptoError> {
        Ok(keys.iter().enumerate().find_map(|(i, k)| self.map.get(k).map(|j| (i, u64::from(*j)))))
    }
}

/// Baby-step giant-step over a table: finds m with P = m·G for
/// m in [-giant_steps·N, giant_steps·N).
pub struct DlogSolver<T: DlogTable> {
    table: T,
    giant: RistrettoPoint,
    max_abs: u64,
}

/// Largest batch of giant steps compressed and looked up together.
const MAX_BATCH: usize = 256;

impl<T: DlogTable> DlogSolver<T> {
    /// A solver that covers |m| < 2^range_bits (rounded up to whole giant steps).
    pub fn new(table: T, range_bits: u32) -> Result<Self, CryptoError> {
        let n = table.baby_steps();
        if n == 0 || range_bits > 62 {
            return Err(CryptoError::Table(format!("unsupported solver: {n} baby steps, range 2^{range_bits}")));
        }
        let range = 1u64 << range_bits;
        let giant_steps = range.div_ceil(n).max(1);
        let max_abs = giant_steps.checked_mul(n).ok_or(CryptoError::Overflow("solver range"))?;
        let giant = RISTRETTO_BASEPOINT_TABLE * &Scalar::from(n);
        Ok(DlogSolver { table, giant, max_abs })
    }

    /// Every m in [-max_abs(), max_abs()) is solved.
    pub fn max_abs(&self) -> u64 {
        self.max_abs
    }

    pub fn table(&self) -> &T {
        &self.table
    }

    /// log2 of the table's baby steps (rounded down).
    pub fn table_bits(&self) -> u32 {
        63 - self.table.baby_steps().max(1).leading_zeros()
    }

    /// Finds m with `point` = m·G. Variable time: the point is an aggregate
    /// that is about to be released anyway.
    pub fn solve_vartime(&self, point: &RistrettoPoint) -> Result<i64, CryptoError> {
        self.solve_vartime_within(point, self.max_abs)
    }

    /// Like `solve_vartime`, for |m| < `max_abs` (rounded up to whole giant
    /// steps) instead of the solver's own range: the cost depends on |m|, the
    /// bound only on how long a point out of range takes to be refused.
    pub fn solve_vartime_within(&self, point: &RistrettoPoint, max_abs: u64) -> Result<i64, CryptoError> {
        self.solve_vartime_in(point, DlogRange::symmetric(max_abs))
    }

    /// Finds m in `range`. A symmetric range alternates giant steps on
    /// both sides of 0; a nonnegative one takes only the positive side, so
    /// a value known not to be negative (an exact count) costs half the
    /// giant steps.
    pub fn solve_vartime_in(&self, point: &RistrettoPoint, range: DlogRange) -> Result<i64, CryptoError> {
        let n = i128::from(self.table.baby_steps());
        let giant_steps = range.max_abs.div_ceil(self.table.baby_steps().max(1)).max(1);
        let max_abs = giant_steps.saturating_mul(self.table.baby_steps());
        let out_of_range = || match range.nonnegative {
            true => CryptoError::DlogNotInNonnegativeRange { max: max_abs },
            false => CryptoError::DlogOutOfRange { max_abs },
        };
        // Candidate c_0 = P (i = 0, positive side), then alternately
        // P + i·N·G (negative side, symmetric ranges only) and P - i·N·G
        // (positive side), i = 1, 2, ...
        let mut up = *point; // P + i·N·G
        let mut down = *point; // P - i·N·G
        let mut points: Vec<RistrettoPoint> = vec![*point];
        let mut steps: Vec<i128> = vec![0]; // signed giant index: m = j - step·N... see below
        let mut i: u64 = 0;
        let mut batch = 2usize;
        loop {
            while points.len() < batch && i < giant_steps {
                i += 1;
                if !range.nonnegative {
                    up += self.giant;
                    points.push(up);
                    steps.push(-i128::from(i));
                }
                down -= self.giant;
                points.push(down);
                steps.push(i128::from(i));
            }
            if points.is_empty() {
                return Err(out_of_range());
            }
            let keys = keys_of(&points);
            if let Some((pos, j)) = self.table.find_first(&keys)? {
                let step = *steps.get(pos).ok_or(CryptoError::Overflow("solver batch"))?;
                // candidate = P - step·N·G = j·G  =>  m = j + step·N
                let m = i128::from(j) + step * n;
                let max = i128::from(max_abs);
                if m >= max || m < -max {
                    return Err(out_of_range());
                }
                return i64::try_from(m).map_err(|_| CryptoError::Overflow("discrete log"));
            }
            points.clear();
            steps.clear();
            if i >= giant_steps {
                return Err(out_of_range());
            }
            batch = (batch * 2).min(MAX_BATCH);
        }
    }
}

/// Where a discrete log is searched: |m| < `max_abs`, or with `nonnegative`
/// only 0 <= m < `max_abs` (both rounded up to whole giant steps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DlogRange {
    pub max_abs: u64,
    pub nonnegative: bool,
}

impl DlogRange {
    pub fn symmetric(max_abs: u64) -> Self {
        DlogRange { max_abs, nonnegative: false }
    }

    pub fn nonnegative(max: u64) -> Self {
        DlogRange { max_abs: max, nonnegative: true }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::crypto::scalar_from_i64;

    #[test]
    fn solves_both_signs_and_refuses_out_of_range() {
        let table = MemoryTable::build(10).unwrap();
        let solver = DlogSolver::new(table, 16).unwrap();
        assert_eq!(solver.max_abs(), 1 << 16);
        for m in [0i64, 1, 2, 1023, 1024, 1025, -1, -1023, -1024, -1025, 65535, -65535, -65536, 40000, -40000] {
            let p = RISTRETTO_BASEPOINT_TABLE * &scalar_from_i64(m);
            assert_eq!(solver.solve_vartime(&p).unwrap(), m, "m = {m}");
        }
        for m in [65536i64, -65537, 1 << 20, -(1 << 20)] {
            let p = RISTRETTO_BASEPOINT_TABLE * &scalar_from_i64(m);
            assert_eq!(solver.solve_vartime(&p), Err(CryptoError::DlogOutOfRange { max_abs: 65536 }), "m = {m}");
        }
    }

    /// A nonnegative range solves what a symmetric one solves at or above 0
    /// and refuses what lies below 0 or at its end.
    #[test]
    fn nonnegative_ranges_take_the_positive_side_only() {
        let solver = DlogSolver::new(MemoryTable::build(10).unwrap(), 16).unwrap();
        let range = DlogRange::nonnegative(1 << 14);
        for m in [0i64, 1, 1023, 1024, 1025, 5000, (1 << 14) - 1] {
            let p = RISTRETTO_BASEPOINT_TABLE * &scalar_from_i64(m);
            assert_eq!(solver.solve_vartime_in(&p, range).unwrap(), m, "m = {m}");
        }
        for m in [-1i64, -1024, -5000, 1 << 14, 1 << 15] {
            let p = RISTRETTO_BASEPOINT_TABLE * &scalar_from_i64(m);
            let refused = solver.solve_vartime_in(&p, range);
            assert_eq!(refused, Err(CryptoError::DlogNotInNonnegativeRange { max: 1 << 14 }), "m = {m}");
            assert!(refused.unwrap_err().to_string().contains("negative count"));
        }
        // the symmetric range still finds the negative ones
        let p = RISTRETTO_BASEPOINT_TABLE * &scalar_from_i64(-5000);
        assert_eq!(solver.solve_vartime_in(&p, DlogRange::symmetric(1 << 14)).unwrap(), -5000);
    }
}
