//! Differential privacy: exact discrete Laplace sampling and budget arithmetic.
//!
//! Noise follows the discrete Laplace distribution P(x) ∝ exp(-|x|/t) with a
//! rational scale t = num/den, sampled exactly with integer arithmetic from a
//! CSPRNG (Canonne, Kamath, Steinke, "The Discrete Gaussian for Differential
//! Privacy", 2020, Algorithms 1-2); there is no floating-point Laplace here.
//! Epsilon is counted in millionths (`Epsilon`) so that budgets add and
//! subtract exactly. The authorities draw the noise; `PrivacyBudget` is the
//! pure ledger arithmetic that `protocol::authority` persists.
//!
//! Accuracy: one draw with scale t has variance 2·e^(-1/t)/(1-e^(-1/t))^2,
//! about 2·t² for t >= 1, so its standard deviation is about 1.41·t. Each of
//! the n authorities adds its own draw (so one honest authority suffices), so
//! a released number carries noise with standard deviation about 1.41·t·√n.

use std::fmt;

use rand::Rng;
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

fn uniform_below(n: u128, rng: &mut (impl RngCore + CryptoRng)) -> u128 {
    rng.gen_range(0..n)
}

/// Bernoulli(num/den), exact.
fn bernoulli(num: u128, den: u128, rng: &mut (impl RngCore + CryptoRng)) -> bool {
    uniform_below(den, rng) < num
}

/// Bernoulli(exp(-num/den)) for 0 <= num/den <= 1.
fn bernoulli_exp_le1(num: u128, den: u128, rng: &mut (impl RngCore + CryptoRng)) -> bool {
    let mut k: u128 = 1;
    loop {
        let Some(kden) = den.checked_mul(k) else { return k % 2 == 1 };
        if bernoulli(num, kden, rng) {
            k += 1;
        } else {
            return k % 2 == 1;
        }
    }
}

/// Bernoulli(exp(-num/den)) for any num/den >= 0.
fn bernoulli_exp(mut num: u128, den: u128, rng: &mut (impl RngCore + CryptoRng)) -> bool {
    while num > den {
        if !bernoulli_exp_le1(1, 1, rng) {
            return false;
        }
        num -= den;
    }
    bernoulli_exp_le1(num, den, rng)
}

/// Geometric: number of successes of Bernoulli(exp(-num/den)) before a failure, num/den = 1/t.
fn geometric_exp(num: u128, den: u128, rng: &mut (impl RngCore + CryptoRng)) -> u128 {
    // Algorithm 2 of CKS 2020 ("fast"): u uniform in [0, den) accepted with prob exp(-u/den)
    loop {
        let u = uniform_below(den, rng);
        if !bernoulli_exp(u, den, rng) {
            continue;
        }
        let mut v: u128 = 0;
        while bernoulli_exp_le1(1, 1, rng) {
            v += 1;
        }
        return v.saturating_mul(den).saturating_add(u) / num;
    }
}

/// One exact draw from the discrete Laplace distribution with scale t = t_num/t_den:
/// P(x) ∝ exp(-|x|·t_den/t_num).
pub fn discrete_laplace(t_num: u128, t_den: u128, rng: &mut (impl RngCore + CryptoRng)) -> i128 {
    // exp(-1/t) per step: the geometric's parameter is 1/t = t_den/t_num
    loop {
        let negative = bernoulli(1, 2, rng);
        let magnitude = geometric_exp(t_den, t_num, rng);
        if negative && magnitude == 0 {
            continue;
        }
        let m = i128::try_from(magnitude).unwrap_or(i128::MAX);
        return if negative { -m } else { m };
    }
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
