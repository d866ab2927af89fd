//! Splitting large aggregates into limbs that fit the discrete-log range, and
//! recombining them exactly.
//!
//! A relay's local sum S (i128) becomes limbs l_k = sign(S)·((|S| >> kL) mod 2^L),
//! so S = Σ l_k·2^(kL) and every limb has |l_k| < 2^L. Summed over M relays an
//! aggregated limb stays below M·2^L, which the processor keeps inside its
//! solver's range by choosing L. Recombination uses checked i128 arithmetic:
//! an overflow is an error, never a wrong number.

use super::error::StatsError;

/// Number of limbs that cover 128-bit magnitudes with `limb_bits` bits each.
/// The widest limb: what the committed-share path asks for (no discrete
/// log to bound; a sum of limbs over relays stays far inside i64).
pub const MAX_LIMB_BITS: u32 = 48;

pub fn limb_count(limb_bits: u32) -> Result<u32, StatsError> {
    if !(4..=MAX_LIMB_BITS).contains(&limb_bits) {
        return Err(StatsError::InvalidParameter {
            name: "limb_bits",
            reason: format!("{limb_bits} is outside 4..={MAX_LIMB_BITS}"),
        });
    }
    Ok(128u32.div_ceil(limb_bits))
}

/// Rows one relay may sum: `limits::ROWS_LIMIT` = 2^32.
const ROW_BITS: u32 = 32;

/// Limbs of Σv and of Σv² for at most 2^32 values with |v| < 2^value_bits
/// (`limits::value_bits`): |Σv| < 2^(32 + value_bits) and Σv² <
/// 2^(32 + 2·value_bits), each at most 128 bits. A query with bounds
/// [0, 2^32) sends 3 + 4 limbs of 26 bits instead of 5 + 5.
pub fn moment_limbs(value_bits: u32, limb_bits: u32) -> Result<(u32, u32), StatsError> {
    limb_count(limb_bits)?;
    let cover = |bits: u32| bits.min(128).div_ceil(limb_bits);
    let squares = value_bits.saturating_mul(2).saturating_add(ROW_BITS);
    Ok((cover(value_bits.saturating_add(ROW_BITS)), cover(squares)))
}

/// The narrowest limb width, at most `max_bits`, that needs no more limbs
/// than `max_bits` does for the moments a task sends (`sums`, `squares`):
/// the same ciphertexts, but smaller aggregated limbs, so each discrete log
/// takes fewer giant steps and each encryption a shorter table walk. Bounds
/// [0, 2^32) with at most 26 bits: Σv in 3 limbs of 22 bits, Σv² in 4 of
/// 24, so 24 for a variance (26 before).
pub fn balanced_limb_bits(value_bits: u32, max_bits: u32, sums: bool, squares: bool) -> Result<u32, StatsError> {
    let (s, q) = moment_limbs(value_bits, max_bits)?;
    let sum_bits = value_bits.saturating_add(ROW_BITS).min(128);
    let square_bits = value_bits.saturating_mul(2).saturating_add(ROW_BITS).min(128);
    let mut bits = 4;
    if sums {
        bits = bits.max(sum_bits.div_ceil(s.max(1)));
    }
    if squares {
        bits = bits.max(square_bits.div_ceil(q.max(1)));
    }
    Ok(bits.min(max_bits))
}

/// Signed limbs of `value`, `count` of them; an error if |value| does not
/// fit (it always does for a relay's sums under its task's `value_bits`).
pub fn split(value: i128, limb_bits: u32, count: u32) -> Result<Vec<i64>, StatsError> {
    limb_count(limb_bits)?;
    let magnitude = value.unsigned_abs();
    if count.checked_mul(limb_bits).filter(|b| *b < 128).is_some_and(|b| magnitude >> b != 0) {
        return Err(StatsError::ArithmeticOverflow("a sum beyond its limbs"));
    }
    let mask = (1u128 << limb_bits) - 1;
    (0..count)
        .map(|k| {
            let shift = k.saturating_mul(limb_bits);
            let digit = if shift >= 128 { 0 } else { (magnitude >> shift) & mask };
            let digit = i64::try_from(digit).map_err(|_| StatsError::ArithmeticOverflow("limb"))?;
            Ok(if value < 0 { -digit } else { digit })
        })
        .collect()
}

/// Σ limbs[k]·2^(k·limb_bits), checked.
pub fn recombine(limbs: &[i64], limb_bits: u32) -> Result<i128, StatsError> {
    let mut total: i128 = 0;
    for (k, limb) in limbs.iter().enumerate() {
        if *limb == 0 {
            continue;
        }
        let shift = u32::try_from(k)
            .ok()
            .and_then(|k| k.checked_mul(limb_bits))
            .ok_or(StatsError::ArithmeticOverflow("limb"))?;
        let weight = 1i128
            .checked_shl(shift)
            .filter(|_| shift < 127)
            .ok_or(StatsError::ArithmeticOverflow("limb recombination"))?;
        let term = i128::from(*limb).checked_mul(weight).ok_or(StatsError::ArithmeticOverflow("limb recombination"))?;
        total = total.checked_add(term).ok_or(StatsError::ArithmeticOverflow("limb recombination"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn split_then_recombine(v in any::<i64>(), w in any::<i64>(), bits in 8u32..33) {
            let v = i128::from(v) * i128::from(w >> 8);
            let limbs = split(v, bits, limb_count(bits).unwrap()).unwrap();
            prop_assert!(limbs.iter().all(|l| l.unsigned_abs() < 1u64 << bits));
            prop_assert_eq!(recombine(&limbs, bits).unwrap(), v);
        }

        #[test]
        fn sums_of_limbs_recombine_to_sums(a in any::<i64>(), b in any::<i64>(), bits in 8u32..33) {
            let (a, b) = (i128::from(a) << 20, i128::from(b) << 20);
            let la = split(a, bits, limb_count(bits).unwrap()).unwrap();
            let lb = split(b, bits, limb_count(bits).unwrap()).unwrap();
            let summed: Vec<i64> = la.iter().zip(&lb).map(|(x, y)| x + y).collect();
            prop_assert_eq!(recombine(&summed, bits).unwrap(), a + b);
        }

        /// The limbs for a value width hold every sum of 2^32 values below
        /// it (and of their squares); for Σv one limb less would not.
        #[test]
        fn moment_limbs_hold_the_largest_sums(value_bits in 0u32..48, bits in 8u32..33) {
            let (sums, squares) = moment_limbs(value_bits, bits).unwrap();
            let largest = (1i128 << 32) * ((1i128 << value_bits) - 1);
            let limbs = split(-largest, bits, sums).unwrap();
            prop_assert_eq!(limbs.len(), sums as usize);
            prop_assert_eq!(recombine(&limbs, bits).unwrap(), -largest);
            prop_assert!(value_bits == 0 || split(largest, bits, sums - 1).is_err());
            let square = (1i128 << 32) * ((1i128 << value_bits) - 1).pow(2);
            if value_bits <= 47 {
                prop_assert_eq!(recombine(&split(square, bits, squares).unwrap(), bits).unwrap(), square);
            }
        }
    }

    #[test]
    fn moment_limbs_examples() {
        // bounds [0, 2^32): 64- and 96-bit sums in 26-bit limbs
        assert_eq!(moment_limbs(32, 26).unwrap(), (3, 4));
        // no bounds: as wide as i128
        assert_eq!(moment_limbs(87, 26).unwrap(), (5, 5));
        assert_eq!(moment_limbs(200, 26).unwrap(), (5, 5));
        assert!(moment_limbs(32, 3).is_err());
        assert!(split(1 << 40, 20, 2).is_err());
        assert_eq!(split(-(1 << 39), 20, 2).unwrap(), [0, -(1 << 19)]);
    }

    #[test]
    fn balanced_limbs_keep_the_count_and_narrow_the_width() {
        // bounds [0, 2^32), at most 26 bits: 3 + 4 limbs either way
        assert_eq!(moment_limbs(32, 26).unwrap(), (3, 4));
        assert_eq!(balanced_limb_bits(32, 26, true, true).unwrap(), 24);
        assert_eq!(moment_limbs(32, 24).unwrap(), (3, 4));
        assert_eq!(balanced_limb_bits(32, 26, true, false).unwrap(), 22);
        assert_eq!(moment_limbs(32, 22).unwrap().0, 3);
        // a count sends no limbs: the narrowest width
        assert_eq!(balanced_limb_bits(32, 26, false, false).unwrap(), 4);
        // never wider than allowed, never more limbs than the widest
        for value_bits in [1u32, 8, 20, 32, 47, 60] {
            for max in [4u32, 7, 13, 20, 26, 32, 48] {
                for (sums, squares) in [(true, false), (false, true), (true, true)] {
                    let bits = balanced_limb_bits(value_bits, max, sums, squares).unwrap();
                    assert!((4..=max).contains(&bits));
                    let (s, q) = moment_limbs(value_bits, max).unwrap();
                    let (s2, q2) = moment_limbs(value_bits, bits).unwrap();
                    assert!((!sums || s2 <= s) && (!squares || q2 <= q), "{value_bits} {max} {bits}");
                    // the largest sums still split into that many limbs
                    let top = (1i128 << (value_bits + 32).min(126)) - 1;
                    if sums && value_bits + 32 <= 126 {
                        assert_eq!(recombine(&split(top, bits, s2).unwrap(), bits).unwrap(), top);
                    }
                }
            }
        }
    }
}
