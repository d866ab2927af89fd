//! The uncertainty of a noisy answer: its noise standard deviation and a 95%
//! interval, from the noise the plan's releases carry (each of the
//! authorities adds one discrete Laplace draw of scale t = sensitivity ·
//! releases / epsilon; variance 2q/(1-q)^2 with q = e^(-1/t)), the
//! stochastic rounding of noisy sums (at most q^2/4 per row), and the delta
//! method for ratios (mean, variance, stddev). For a quantile it is read
//! from the noisy cell counts the search released around each cut
//! (`quantile_interval`). Called by `planner` in noisy mode; no I/O, no data beyond the
//! released numbers (post-processing: no privacy cost).

use serde::{Deserialize, Serialize};

use super::dp::{laplace_scale, Epsilon};
use super::error::StatsError;
use super::search::RankPoint;

/// z for a two-sided 95% normal interval.
pub const Z95: f64 = 1.959_964;

/// In the answer's own units (the statistic's value; a histogram's bucket counts).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Uncertainty {
    pub stddev: f64,
    pub ci95: (f64, f64),
}

impl Uncertainty {
    /// value ± z·stddev (z from `z95`, or `Z95` for normal noise).
    pub fn around(value: f64, stddev: f64, z: f64) -> Self {
        Uncertainty { stddev, ci95: (value - z * stddev, value + z * stddev) }
    }
}

/// Variance of one discrete Laplace draw of scale t.
pub fn discrete_laplace_variance(t: f64) -> f64 {
    if t <= 0.0 {
        return 0.0;
    }
    let q = (-1.0 / t).exp();
    2.0 * q / ((1.0 - q) * (1.0 - q))
}

/// The pmf of one discrete Laplace draw of scale t on -m..=m.
fn discrete_laplace_pmf(t: f64, m: usize) -> Vec<f64> {
    let q = (-1.0 / t).exp();
    let c = (1.0 - q) / (1.0 + q);
    let m = i32::try_from(m).unwrap_or(i32::MAX);
    (-m..=m).map(|x| c * q.powi(x.abs())).collect()
}

/// Scales up to which the noise's distribution is convolved exactly; above,
/// the ratio found at this scale is used (it converges to the continuous
/// Laplace sum's, which depends on the number of draws only).
const EXACT_SCALE_LIMIT: f64 = 30.0;

/// z such that [-z·σ, z·σ] holds at least 95% of the sum of `draws`
/// discrete Laplace draws of scale t (σ its standard deviation). The normal
/// 1.96 undercovers: Laplace tails are heavier (one draw needs 2.12) and
/// small scales are discrete (3 draws of scale 1: 1.96σ covers 93.9%).
pub fn z95(t: f64, draws: u32) -> f64 {
    // also true for a NaN scale
    if t.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) || draws == 0 {
        return Z95;
    }
    let draws = draws.min(16);
    if t <= EXACT_SCALE_LIMIT {
        let (h, sd) = half_width(t, draws);
        // a hair above h: the interval must hold |noise| = h despite rounding
        return (h as f64 + 1e-6) / sd;
    }
    // above the limit the ratio depends on the number of draws only: a
    // constant of this code, convolved once per process (about 5 ms)
    static CAPPED: [std::sync::OnceLock<f64>; 16] = [const { std::sync::OnceLock::new() }; 16];
    let capped = || {
        let (h, sd) = half_width(EXACT_SCALE_LIMIT, draws);
        // continuous limit: the integer step no longer matters
        ((h as f64 - 0.5) / sd).max(Z95)
    };
    match CAPPED.get(draws as usize - 1) {
        Some(cell) => *cell.get_or_init(capped),
        None => capped(),
    }
}

/// The smallest integer h with P(|X| <= h) >= 0.95 for X the sum of
/// `draws` discrete Laplace draws of scale t, and X's standard deviation.
fn half_width(t: f64, draws: u32) -> (usize, f64) {
    // each draw's support cut where its tail mass is below 1e-9
    let m = (t * 21.0).ceil().max(1.0) as usize;
    let one = discrete_laplace_pmf(t, m);
    let mut sum = vec![1.0];
    for _ in 0..draws {
        let mut next = vec![0.0; sum.len() + one.len() - 1];
        for (i, a) in sum.iter().enumerate() {
            for (j, b) in one.iter().enumerate() {
                if let Some(slot) = next.get_mut(i + j) {
                    *slot += a * b;
                }
            }
        }
        sum = next;
    }
    let center = (sum.len() - 1) / 2;
    let sd = (f64::from(draws) * discrete_laplace_variance(t)).sqrt();
    let mut mass = sum.get(center).copied().unwrap_or(0.0);
    let mut h = 0usize;
    while mass < 0.95 && h < center {
        h += 1;
        mass += sum.get(center - h).copied().unwrap_or(0.0) + sum.get(center + h).copied().unwrap_or(0.0);
    }
    (h, sd)
}

/// The 95% multiplier (`z95`) of one release's noise.
pub fn release_z95(sensitivity: u128, epsilon: Epsilon, share: u64, authorities: u32) -> Result<f64, StatsError> {
    let (num, den) = laplace_scale(sensitivity, epsilon, share)?;
    // display-only floats: the scale is public
    Ok(z95(num as f64 / den.max(1) as f64, authorities))
}

/// Variance of the noise on one release (in released units): one draw per authority.
pub fn release_variance(sensitivity: u128, epsilon: Epsilon, share: u64, authorities: u32) -> Result<f64, StatsError> {
    let (num, den) = laplace_scale(sensitivity, epsilon, share)?;
    // display-only floats: the scale is public
    let t = num as f64 / den.max(1) as f64;
    Ok(f64::from(authorities) * discrete_laplace_variance(t))
}

/// Two-sided normal quantile: z with P(|N(0, 1)| > z) = `alpha` (0 < alpha
/// < 1), by bisection on erfc (Abramowitz and Stegun 7.1.26, error below
/// 1.5·10⁻⁷). Display-only.
pub fn normal_z(alpha: f64) -> f64 {
    let tail = |z: f64| {
        let x = z / std::f64::consts::SQRT_2;
        let t = 1.0 / (1.0 + 0.327_591_1 * x);
        let poly =
            t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
        poly * (-x * x).exp()
    };
    let (mut lo, mut hi) = (0.0f64, 12.0f64);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if tail(mid) > alpha {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The value interval of a noisy search's quantile, from the cuts it
/// released over `rounds` rounds (`RankPoint`: values below the cut minus
/// the round's target rank, both noisy). The quantile is at or above a cut
/// whose excess is below −m, and below a cut whose excess is at least m,
/// where m is `cell_margin` (the 95% margin of one cell's noise) times
/// √((1 − p)²·a + p²·b) for the a noisy cells below the cut and b above it
/// (the excess is (1 − p) of the count below minus p of the count above),
/// widened for the rounds: each round has cuts next to the quantile, any
/// of which could move an end past it, so each round gets 5%/rounds
/// (Bonferroni; the normal quantiles' ratio scales the margin). The
/// interval is cut to `bounds` and always contains `value`.
pub fn quantile_interval(
    value: i128,
    points: &[RankPoint],
    (p, rounds): (f64, u32),
    cell_margin: f64,
    bounds: (i128, i128),
) -> (i128, i128) {
    let widen = normal_z(0.05 / f64::from(rounds.max(1))) / Z95;
    let margin = |point: &RankPoint| {
        let (a, b) = (f64::from(point.cells_below), f64::from(point.cells_above));
        let m = (widen * cell_margin * ((1.0 - p).powi(2) * a + p * p * b).sqrt()).ceil();
        if m.is_finite() && m < 1e30 {
            m as i128
        } else {
            i128::MAX / 4
        }
    };
    let lo = points.iter().filter(|pt| pt.excess < -margin(pt)).map(|pt| pt.boundary).max().unwrap_or(bounds.0);
    let hi = points
        .iter()
        .filter(|pt| pt.excess >= margin(pt))
        .map(|pt| pt.boundary.saturating_sub(1))
        .min()
        .unwrap_or(bounds.1);
    (lo.max(bounds.0).min(value), hi.min(bounds.1).max(value))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn variance_of_the_discrete_laplace() {
        // about 2 t^2 for large t
        let v = discrete_laplace_variance(100.0);
        assert!((v / 20_000.0 - 1.0).abs() < 0.01, "{v}");
        assert_eq!(discrete_laplace_variance(0.0), 0.0);
        // 3 authorities, count at epsilon 1 over 1 release: t = 1
        let v = release_variance(1, Epsilon(1_000_000), 1, 3).unwrap();
        let q = (-1.0f64).exp();
        assert!((v - 3.0 * 2.0 * q / (1.0 - q).powi(2)).abs() < 1e-9);
    }

    #[test]
    fn z_covers_95_percent_of_laplace_sums() {
        // one continuous Laplace draw: P(|X| <= z·σ) = 1 - exp(-z·√2) = 0.95 at z = 2.118
        let one = z95(1000.0, 1);
        assert!((one - 2.118).abs() < 0.02, "{one}");
        // three draws of scale 1 (a count at ε = 1, 3 authorities): 1.96σ held only 93.9%
        let three = z95(1.0, 3);
        assert!(three > Z95 && three * (3.0 * discrete_laplace_variance(1.0)).sqrt() >= 5.0, "{three}");
        // many draws approach the normal
        assert!((z95(1000.0, 16) - Z95).abs() < 0.1);
        // above the exact limit: the ratio at the limit, whatever the scale
        // (and the same again once it is remembered)
        let capped = z95(EXACT_SCALE_LIMIT + 1.0, 3);
        let (h, sd) = half_width(EXACT_SCALE_LIMIT, 3);
        assert_eq!(capped, ((h as f64 - 0.5) / sd).max(Z95));
        assert_eq!(z95(5000.0, 3), capped);
        assert!(capped > Z95 && capped < 2.12, "{capped}");
        assert_eq!(z95(0.0, 3), Z95);
    }

    #[test]
    fn quantile_intervals_come_from_released_counts() {
        // 100 values, target rank 50; released: 10 below 50, 60 below 80,
        // 100 below 200, one round of 3 cells (below 50, 50..80, 80..200)
        let point = |boundary, below: i128, cells_below| RankPoint {
            boundary,
            excess: below - 50,
            cells_below,
            cells_above: 3 - cells_below,
        };
        let points = [point(50, 10, 1), point(80, 60, 2), point(200, 100, 3)];
        // margin 4 a cell: at p = 1/2 at most 4·√3/2 < 4 either way
        assert_eq!(quantile_interval(70, &points, (0.5, 1), 4.0, (0, 199)), (50, 79));
        // a wider margin: 60 below 80 no longer rules out a quantile above 80
        assert_eq!(quantile_interval(70, &points, (0.5, 1), 14.0, (0, 199)), (50, 199));
        // so do 8 rounds (each end at 0.3%: z 2.73 for 1.96)
        assert_eq!(quantile_interval(70, &points, (0.5, 8), 9.0, (0, 199)), (50, 199));
        assert_eq!(quantile_interval(70, &points, (0.5, 1), 9.0, (0, 199)), (50, 79));
        // huge noise: the whole bounds
        assert_eq!(quantile_interval(70, &points, (0.5, 1), 1e6, (0, 199)), (0, 199));
        // always contains the answer
        let (lo, hi) = quantile_interval(10, &points, (0.5, 1), 4.0, (0, 199));
        assert!(lo <= 10 && 10 <= hi);
    }

    #[test]
    fn normal_quantiles() {
        for (alpha, z) in [(0.05, 1.959_964), (0.01, 2.575_829), (0.05 / 7.0, 2.690_106), (0.3173, 1.0)] {
            assert!((normal_z(alpha) - z).abs() < 2e-4, "{alpha}: {}", normal_z(alpha));
        }
    }
}
