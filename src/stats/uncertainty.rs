//! The uncertainty of a noisy answer: its noise standard deviation and a 95%
//! interval, from the noise the plan's releases carry (each of the
//! authorities adds one discrete Laplace draw of scale t = sensitivity ·
//! releases / epsilon; variance 2q/(1-q)^2 with q = e^(-1/t)), the
//! stochastic rounding of noisy sums (at most q^2/4 per row), and the delta
//! method for ratios (mean, variance, stddev). For a quantile it is a rank
//! interval turned into values with the (noisy) prefix counts the search
//! released. Called by `planner` in noisy mode; no I/O, no data beyond the
//! released numbers (post-processing: no privacy cost).

use serde::{Deserialize, Serialize};

use super::dp::{laplace_scale, Epsilon};
use super::error::StatsError;

/// z for a two-sided 95% normal interval.
pub const Z95: f64 = 1.959_964;

/// In the answer's own units (the statistic's value; a histogram's bucket counts).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Uncertainty {
    pub stddev: f64,
    pub ci95: (f64, f64),
}

impl Uncertainty {
    pub fn around(value: f64, stddev: f64) -> Self {
        Uncertainty { stddev, ci95: (value - Z95 * stddev, value + Z95 * stddev) }
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

/// Variance of the noise on one release (in released units): one draw per authority.
pub fn release_variance(sensitivity: u128, epsilon: Epsilon, share: u64, authorities: u32) -> Result<f64, StatsError> {
    let (num, den) = laplace_scale(sensitivity, epsilon, share)?;
    // display-only floats: the scale is public
    let t = num as f64 / den.max(1) as f64;
    Ok(f64::from(authorities) * discrete_laplace_variance(t))
}

/// The value interval of the quantile at `rank` (1-based) out of `total`,
/// given the rank noise `rank_stddev` and the released points (boundary b,
/// number of values below b). `step` is one unit of the fixed point; the
/// interval is cut to `bounds` and always contains `value`.
pub fn quantile_interval(
    value: i128,
    rank: i128,
    rank_stddev: f64,
    points: &[(i128, i128)],
    bounds: (i128, i128),
) -> (i128, i128) {
    // the target rank and each released count are noisy: widen by both
    let margin = (Z95 * rank_stddev * std::f64::consts::SQRT_2).ceil();
    let margin = if margin.is_finite() && margin < 1e30 { margin as i128 } else { i128::MAX / 4 };
    let (lo_rank, hi_rank) = (rank.saturating_sub(margin), rank.saturating_add(margin));
    // the lo_rank-th value is >= b when fewer than lo_rank values lie below b
    let lo = points.iter().filter(|(_, below)| *below < lo_rank).map(|(b, _)| *b).max().unwrap_or(bounds.0);
    // the hi_rank-th value is < b when at least hi_rank values lie below b
    let hi = points
        .iter()
        .filter(|(_, below)| *below >= hi_rank)
        .map(|(b, _)| b.saturating_sub(1))
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
    fn quantile_intervals_come_from_released_counts() {
        // 100 values; released: 10 below 50, 60 below 80, 100 below 200
        let points = [(50, 10), (80, 60), (200, 100)];
        let (lo, hi) = quantile_interval(70, 50, 1.0, &points, (0, 199));
        assert_eq!((lo, hi), (50, 79));
        // huge rank noise: the whole bounds
        assert_eq!(quantile_interval(70, 50, 1e6, &points, (0, 199)), (0, 199));
        // always contains the answer
        let (lo, hi) = quantile_interval(10, 50, 1.0, &points, (0, 199));
        assert!(lo <= 10 && 10 <= hi);
    }
}
