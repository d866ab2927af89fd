//! Results of a statistic, exact where the mode is exact: fixed-point values
//! (sum, min, max, quantiles), reduced fractions (mean, variance), the square
//! root of a fraction (standard deviation) and bucket counts (histogram).
//! `exact_string` prints them without rounding; `to_f64` is for display.

use serde::{Deserialize, Serialize};

use super::error::StatsError;
use super::fixed::format_fixed;
use super::statistic::Statistic;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistogramBucket {
    /// inclusive lower edge (None: -infinity)
    pub lo: Option<String>,
    /// exclusive upper edge (None: +infinity)
    pub hi: Option<String>,
    pub count: i128,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExactValue {
    Fixed { mantissa: i128, decimals: u32 },
    Ratio { num: i128, den: i128 },
    SqrtRatio { num: i128, den: i128 },
    Histogram(Vec<HistogramBucket>),
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// num/den reduced, den > 0.
pub fn reduce(num: i128, den: i128) -> Result<(i128, i128), StatsError> {
    if den == 0 {
        return Err(StatsError::ArithmeticOverflow("division by zero"));
    }
    let g = gcd(num.unsigned_abs(), den.unsigned_abs()).max(1);
    let g = i128::try_from(g).map_err(|_| StatsError::ArithmeticOverflow("fraction"))?;
    let (n, d) = (num / g, den / g);
    Ok(if d < 0 { (-n, -d) } else { (n, d) })
}

fn terminating_decimals(mut den: i128) -> Option<u32> {
    let (mut twos, mut fives) = (0u32, 0u32);
    while den % 2 == 0 {
        den /= 2;
        twos += 1;
    }
    while den % 5 == 0 {
        den /= 5;
        fives += 1;
    }
    (den == 1).then_some(twos.max(fives))
}

fn ratio_string(num: i128, den: i128) -> String {
    if den == 1 {
        return num.to_string();
    }
    if let Some(d) = terminating_decimals(den) {
        if let Some(scaled) = 10i128.checked_pow(d).and_then(|p| num.checked_mul(p / den)) {
            return format_fixed(scaled, d);
        }
    }
    format!("{num}/{den}")
}

impl ExactValue {
    /// The exact value as text: a decimal, "p/q", "sqrt(p/q)" or bucket list.
    pub fn exact_string(&self) -> String {
        match self {
            ExactValue::Fixed { mantissa, decimals } => format_fixed(*mantissa, *decimals),
            ExactValue::Ratio { num, den } => ratio_string(*num, *den),
            ExactValue::SqrtRatio { num, den } => format!("sqrt({})", ratio_string(*num, *den)),
            ExactValue::Histogram(buckets) => buckets
                .iter()
                .map(|b| {
                    format!(
                        "[{}, {}): {}",
                        b.lo.as_deref().unwrap_or("-inf"),
                        b.hi.as_deref().unwrap_or("+inf"),
                        b.count
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        }
    }

    /// A floating-point approximation, for display and JSON `value`.
    pub fn to_f64(&self) -> f64 {
        match self {
            ExactValue::Fixed { mantissa, decimals } => {
                format_fixed(*mantissa, *decimals).parse::<f64>().unwrap_or(f64::NAN)
            }
            ExactValue::Ratio { num, den } => ratio_f64(*num, *den),
            ExactValue::SqrtRatio { num, den } => ratio_f64(*num, *den).sqrt(),
            ExactValue::Histogram(b) => b.iter().map(|b| b.count as f64).sum(),
        }
    }
}

fn ratio_f64(num: i128, den: i128) -> f64 {
    // integer part exactly, then the fraction, to keep precision for large values
    let int = num.div_euclid(den);
    let rem = num.rem_euclid(den);
    int as f64 + rem as f64 / den as f64
}

/// A statistic's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatResult {
    pub statistic: Statistic,
    pub value: ExactValue,
    /// values counted (noisy when the query is)
    pub count: i128,
    pub decimals: u32,
    /// noisy answers only: the noise's standard deviation and a 95% interval
    /// (for a histogram: of each bucket's count)
    #[serde(default)]
    pub uncertainty: Option<super::uncertainty::Uncertainty>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn exact_strings() {
        assert_eq!(reduce(8763368, 41400).unwrap(), (47627, 225));
        let mean = ExactValue::Ratio { num: 14134681, den: 414 };
        assert_eq!(mean.exact_string(), "14134681/414");
        assert!((mean.to_f64() - 34141.741546).abs() < 1e-5);
        assert_eq!(ExactValue::Ratio { num: 7, den: 4 }.exact_string(), "1.75");
        assert_eq!(ExactValue::Ratio { num: -6, den: 1 }.exact_string(), "-6");
        assert_eq!(ExactValue::Fixed { mantissa: 2026, decimals: 2 }.exact_string(), "20.26");
        assert_eq!(ExactValue::SqrtRatio { num: 9, den: 4 }.to_f64(), 1.5);
    }
}
