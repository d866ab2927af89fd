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
pub fn limb_count(limb_bits: u32) -> Result<u32, StatsError> {
    if !(4..=48).contains(&limb_bits) {
        return Err(StatsError::InvalidParameter {
            name: "limb_bits",
            reason: format!("{limb_bits} is outside 4..=48"),
        });
    }
    Ok(128u32.div_ceil(limb_bits))
}

/// Signed limbs of `value`.
pub fn split(value: i128, limb_bits: u32) -> Result<Vec<i64>, StatsError> {
    let count = limb_count(limb_bits)?;
    let magnitude = value.unsigned_abs();
    let mask = (1u128 << limb_bits) - 1;
    (0..count)
        .map(|k| {
            let shift = k * limb_bits;
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
            let limbs = split(v, bits).unwrap();
            prop_assert!(limbs.iter().all(|l| l.unsigned_abs() < 1u64 << bits));
            prop_assert_eq!(recombine(&limbs, bits).unwrap(), v);
        }

        #[test]
        fn sums_of_limbs_recombine_to_sums(a in any::<i64>(), b in any::<i64>(), bits in 8u32..33) {
            let (a, b) = (i128::from(a) << 20, i128::from(b) << 20);
            let la = split(a, bits).unwrap();
            let lb = split(b, bits).unwrap();
            let summed: Vec<i64> = la.iter().zip(&lb).map(|(x, y)| x + y).collect();
            prop_assert_eq!(recombine(&summed, bits).unwrap(), a + b);
        }
    }
}
