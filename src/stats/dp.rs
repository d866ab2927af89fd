//! Differential privacy: exact discrete Laplace sampling and budget arithmetic.
//!
//! Noise follows the discrete Laplace distribution P(x) ∝ exp(-|x|/t) with a
//! rational scale t = num/den, drawn as the difference of two geometric
//! variables whose 126 binary digits are independent Bernoulli draws: fixed
//! work per draw, so the time to answer a decryption does not depend on the
//! noise (there is no floating-point Laplace or logarithm of a uniform here;
//! floats only turn the public scale into bit probabilities).
//! Epsilon is counted in millionths (`Epsilon`) so that budgets add and
//! subtract exactly. The authorities draw the noise; `PrivacyBudget` is the
//! pure ledger arithmetic that `protocol::authority` persists.
//!
//! Accuracy: one draw with scale t has variance 2·e^(-1/t)/(1-e^(-1/t))^2,
//! about 2·t² for t >= 1, so its standard deviation is about 1.41·t. Each of
//! the n authorities adds its own draw (so one honest authority suffices), so
//! a released number carries noise with standard deviation about 1.41·t·√n.

use std::fmt;

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use super::error::StatsError;

/// A privacy parameter in millionths of epsilon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Epsilon(pub u64);

impl Epsilon {
    pub const MICROS: u64 = 1_000_000;

    /// Parses "0.5" or "10" (at most 6 decimals).
    pub fn parse(text: &str) -> Result<Self, StatsError> {
        let (m, d) = super::fixed::parse_decimal(text)?;
        let bad =
            |reason: &str| StatsError::InvalidParameter { name: "epsilon", reason: format!("{text:?}: {reason}") };
        if m <= 0 {
            return Err(bad("must be positive"));
        }
        if d > 6 {
            return Err(bad("at most 6 decimals"));
        }
        let micros = m.checked_mul(super::fixed::pow10(6 - d)?).ok_or_else(|| bad("too large"))?;
        Ok(Epsilon(u64::try_from(micros).map_err(|_| bad("too large"))?))
    }

    pub fn from_f64(value: f64) -> Result<Self, StatsError> {
        if !(value.is_finite() && value > 0.0 && value < 1e12) {
            return Err(StatsError::InvalidParameter {
                name: "epsilon",
                reason: format!("{value} is not a positive number"),
            });
        }
        Self::parse(&format!("{value:.6}"))
    }

    pub fn as_f64(self) -> f64 {
        // display only; accounting stays in integers
        self.0 as f64 / Self::MICROS as f64
    }
}

impl fmt::Display for Epsilon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::fixed::format_fixed(i128::from(self.0), 6))
    }
}

/// Noise scale for a release: t = sensitivity / epsilon_share, as num/den.
/// `share` is how many releases the query's epsilon is split across.
pub fn laplace_scale(sensitivity: u128, epsilon: Epsilon, share: u64) -> Result<(u128, u128), StatsError> {
    if epsilon.0 == 0 || share == 0 {
        return Err(StatsError::InvalidParameter { name: "epsilon", reason: "must be positive".into() });
    }
    let num = sensitivity
        .max(1)
        .checked_mul(u128::from(Epsilon::MICROS))
        .and_then(|x| x.checked_mul(u128::from(share)))
        .ok_or(StatsError::ArithmeticOverflow("noise scale"))?;
    Ok((num, u128::from(epsilon.0)))
}

/// Bits of each geometric draw: noise magnitudes stay below 2^126, so the
/// difference of two draws always fits an i128.
const GEOMETRIC_BITS: usize = 126;

/// Thresholds (in units of 2^-64) of the independent bits of a geometric
/// variable G with P(G = g) ∝ q^g, q = exp(-1/t): bit i is set with
/// probability q^(2^i) / (1 + q^(2^i)) = 1 / (1 + exp(2^i / t)).
/// Depends only on the public scale t = t_num / t_den.
fn bit_thresholds(t_num: u128, t_den: u128) -> [u64; GEOMETRIC_BITS] {
    let mut out = [0u64; GEOMETRIC_BITS];
    // display-free float use: t is public; precision is 2^-53 relative,
    // 2^-64 absolute after the conversion below
    let inv_t = t_den as f64 / t_num.max(1) as f64;
    let mut x = inv_t; // 2^i / t
    for slot in out.iter_mut() {
        let p = if x > 60.0 { 0.0 } else { 1.0 / (1.0 + x.exp()) };
        // p < 1/2, so p * 2^64 < 2^63 fits a u64; `as` saturates by definition
        *slot = (p * 18_446_744_073_709_551_616.0) as u64;
        x *= 2.0;
    }
    out
}

/// One geometric draw from its bits: the same number of random words and
/// the same operations whatever the result (constant time in the output).
fn geometric_fixed_work(thresholds: &[u64; GEOMETRIC_BITS], rng: &mut (impl RngCore + CryptoRng)) -> u128 {
    use subtle::ConstantTimeLess;
    let mut g: u128 = 0;
    for (i, threshold) in thresholds.iter().enumerate() {
        let u = rng.next_u64();
        let bit = u128::from(u.ct_lt(threshold).unwrap_u8());
        g |= bit << i;
    }
    g
}

/// One draw from the discrete Laplace distribution with scale t = t_num/t_den:
/// P(x) ∝ exp(-|x|·t_den/t_num), as the difference of two independent
/// geometric variables with q = exp(-1/t), each built from 126 independent
/// Bernoulli bits (`bit_thresholds`).
///
/// Fixed work: always 252 words from `rng` and the same operations, so the
/// time taken does not depend on the noise drawn (the old rejection sampler
/// looped about |x|/t times; a processor timing a decryption learnt about
/// the noise). The bit probabilities are rounded to multiples of 2^-64, so
/// the output is within total variation distance 2^-56 of the exact
/// distribution; see SECURITY.md. Authorities pass a ChaCha20 stream seeded
/// from the OS (`NoiseRng`), not the OS generator itself.
pub fn discrete_laplace(t_num: u128, t_den: u128, rng: &mut (impl RngCore + CryptoRng)) -> i128 {
    let thresholds = bit_thresholds(t_num, t_den);
    let a = geometric_fixed_work(&thresholds, rng);
    let b = geometric_fixed_work(&thresholds, rng);
    // both below 2^126: the conversions cannot fail
    let a = i128::try_from(a).unwrap_or(i128::MAX);
    let b = i128::try_from(b).unwrap_or(i128::MAX);
    a - b
}

/// The authorities' noise generator: ChaCha20 in user space, seeded once
/// from the operating system (no system call per draw).
pub type NoiseRng = rand_chacha::ChaCha20Rng;

/// A fresh `NoiseRng` seeded from the OS.
pub fn noise_rng() -> NoiseRng {
    use rand::SeedableRng;
    rand_chacha::ChaCha20Rng::from_entropy()
}

/// A per-dataset privacy budget: what is left to spend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivacyBudget {
    pub total: Epsilon,
    pub spent: Epsilon,
}

impl PrivacyBudget {
    pub fn new(total: Epsilon) -> Self {
        PrivacyBudget { total, spent: Epsilon(0) }
    }

    pub fn remaining(&self) -> Epsilon {
        Epsilon(self.total.0.saturating_sub(self.spent.0))
    }

    /// Charges `cost`; refuses (and charges nothing) when it does not fit.
    pub fn charge(&mut self, dataset: &str, cost: Epsilon) -> Result<(), StatsError> {
        if cost.0 > self.remaining().0 {
            return Err(StatsError::BudgetExhausted {
                dataset: dataset.to_string(),
                needed: cost.to_string(),
                remaining: self.remaining().to_string(),
            });
        }
        self.spent = Epsilon(self.spent.0 + cost.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// Probability mass of the discrete Laplace with scale t at x.
    fn pmf(t: f64, x: i128) -> f64 {
        let q = (-1.0 / t).exp();
        (1.0 - q) / (1.0 + q) * q.powi(i32::try_from(x.abs()).unwrap())
    }

    #[test]
    fn sampler_matches_the_distribution() {
        let mut rng = StdRng::seed_from_u64(7);
        for (num, den) in [(3u128, 1u128), (1, 2), (25, 4)] {
            let t = num as f64 / den as f64;
            let draws = 40_000;
            let mut hist = std::collections::BTreeMap::<i128, u64>::new();
            let mut sum = 0i128;
            for _ in 0..draws {
                let x = discrete_laplace(num, den, &mut rng);
                *hist.entry(x).or_default() += 1;
                sum += x;
            }
            // each probability within 5 standard errors, for the central values
            for x in -3..=3 {
                let p = pmf(t, x);
                let observed = *hist.get(&x).unwrap_or(&0) as f64 / draws as f64;
                let se = (p * (1.0 - p) / draws as f64).sqrt();
                assert!((observed - p).abs() < 5.0 * se + 1e-4, "t={t} x={x} observed {observed} expected {p}");
            }
            // mean about 0, variance about 2q/(1-q)^2
            let mean = sum as f64 / draws as f64;
            let q = (-1.0 / t).exp();
            let var = 2.0 * q / (1.0 - q).powi(2);
            assert!(mean.abs() < 5.0 * (var / draws as f64).sqrt(), "t={t} mean {mean}");
            let observed_var =
                hist.iter().map(|(x, c)| (*x as f64 - mean).powi(2) * *c as f64).sum::<f64>() / draws as f64;
            assert!((observed_var - var).abs() / var < 0.1, "t={t} var {observed_var} expected {var}");
        }
    }

    /// An RNG that counts the words drawn.
    struct Counting(StdRng, u64);

    impl RngCore for Counting {
        fn next_u32(&mut self) -> u32 {
            self.1 += 1;
            self.0.next_u32()
        }
        fn next_u64(&mut self) -> u64 {
            self.1 += 1;
            self.0.next_u64()
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            self.1 += 1;
            self.0.fill_bytes(dest)
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
            self.1 += 1;
            self.0.try_fill_bytes(dest)
        }
    }
    impl CryptoRng for Counting {}

    /// Issue 9: the old sampler looped about |noise|/t times, so the time to
    /// answer a decryption told the processor about the noise. Every draw now
    /// takes the same 252 words, whatever the scale and whatever it returns.
    #[test]
    fn every_draw_does_the_same_work_whatever_the_noise() {
        let mut rng = Counting(StdRng::seed_from_u64(9), 0);
        let mut seen_zero = false;
        let mut seen_large = false;
        for (num, den) in [(1u128, 4u128), (3, 1), (1_000_000, 1), (1u128 << 90, 3)] {
            for _ in 0..200 {
                let before = rng.1;
                let x = discrete_laplace(num, den, &mut rng);
                assert_eq!(rng.1 - before, 2 * GEOMETRIC_BITS as u64, "scale {num}/{den}, noise {x}");
                seen_zero |= x == 0;
                seen_large |= x.unsigned_abs() >= 8;
            }
        }
        assert!(seen_zero && seen_large, "both small and large noise were drawn");
        // huge scales stay finite and symmetric enough to be noise
        let big: Vec<i128> = (0..100).map(|_| discrete_laplace(1u128 << 100, 1, &mut rng)).collect();
        assert!(big.iter().any(|x| *x > 0) && big.iter().any(|x| *x < 0));
    }

    #[test]
    fn budget_refuses_when_exhausted() {
        let mut b = PrivacyBudget::new(Epsilon::parse("1.5").unwrap());
        b.charge("areas", Epsilon::parse("1").unwrap()).unwrap();
        let err = b.charge("areas", Epsilon::parse("0.6").unwrap()).unwrap_err();
        assert!(err.to_string().contains("budget"));
        assert!(err.to_string().contains("0.5"), "{err}");
        assert_eq!(b.remaining(), Epsilon::parse("0.5").unwrap());
        b.charge("areas", Epsilon::parse("0.5").unwrap()).unwrap();
        assert_eq!(b.remaining(), Epsilon(0));
    }

    #[test]
    fn epsilon_parsing() {
        assert_eq!(Epsilon::parse("1").unwrap(), Epsilon(1_000_000));
        assert_eq!(Epsilon::parse("0.25").unwrap().to_string(), "0.25");
        assert!(Epsilon::parse("0").is_err());
        assert!(Epsilon::parse("-1").is_err());
        assert!(Epsilon::parse("0.0000001").is_err());
        assert_eq!(laplace_scale(1, Epsilon(1_000_000), 4).unwrap(), (4_000_000, 1_000_000));
    }
}
