//! What a user asks for: the statistic and its parameters, as they travel in
//! a query (decimal text, so nothing is lost before the column's scale is
//! known). `FixedParams` is the same after conversion to fixed point at the
//! column's common number of decimals.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::dp::Epsilon;
use super::error::StatsError;
use super::fixed::{parse_decimal, parse_fixed, pow10};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    Count,
    Sum,
    Mean,
    Variance,
    Stddev,
    Min,
    Max,
    Median,
    Quantile,
    Histogram,
}

impl Statistic {
    pub const ALL: [Statistic; 10] = [
        Statistic::Count,
        Statistic::Sum,
        Statistic::Mean,
        Statistic::Variance,
        Statistic::Stddev,
        Statistic::Min,
        Statistic::Max,
        Statistic::Median,
        Statistic::Quantile,
        Statistic::Histogram,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Statistic::Count => "count",
            Statistic::Sum => "sum",
            Statistic::Mean => "mean",
            Statistic::Variance => "variance",
            Statistic::Stddev => "stddev",
            Statistic::Min => "min",
            Statistic::Max => "max",
            Statistic::Median => "median",
            Statistic::Quantile => "quantile",
            Statistic::Histogram => "histogram",
        }
    }

    /// Statistics answered by an encrypted histogram search.
    pub fn is_search(self) -> bool {
        matches!(self, Statistic::Min | Statistic::Max | Statistic::Median | Statistic::Quantile)
    }

    pub fn needs_sum(self) -> bool {
        matches!(self, Statistic::Sum | Statistic::Mean | Statistic::Variance | Statistic::Stddev)
    }

    pub fn needs_squares(self) -> bool {
        matches!(self, Statistic::Variance | Statistic::Stddev)
    }
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Statistic {
    type Err = StatsError;
    fn from_str(s: &str) -> Result<Self, StatsError> {
        Statistic::ALL
            .into_iter()
            .find(|st| st.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| StatsError::UnknownStatistic(s.to_string()))
    }
}

/// A statistic with its parameters, as sent in a query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryParams {
    pub statistic: Statistic,
    /// variance/stddev: divide by n-1 instead of n.
    #[serde(default)]
    pub sample: bool,
    /// quantile level p in [0, 1], decimal text.
    #[serde(default)]
    pub quantile: Option<String>,
    /// histogram edges, decimal text, strictly increasing.
    #[serde(default)]
    pub edges: Vec<String>,
    /// clamp bounds (lo, hi), decimal text; required with differential privacy.
    #[serde(default)]
    pub bounds: Option<(String, String)>,
    /// no noise; only where the authorities allow it.
    #[serde(default)]
    pub exact: bool,
    /// the query's total privacy cost when not exact.
    #[serde(default)]
    pub epsilon: Option<Epsilon>,
}

impl QueryParams {
    pub fn new(statistic: Statistic) -> Self {
        QueryParams {
            statistic,
            sample: false,
            quantile: None,
            edges: Vec::new(),
            bounds: None,
            exact: true,
            epsilon: None,
        }
    }

    /// Checks the parameters that do not depend on the column.
    pub fn validate(&self) -> Result<(), StatsError> {
        let bad = |name: &'static str, reason: &str| StatsError::InvalidParameter { name, reason: reason.to_string() };
        if self.statistic == Statistic::Quantile {
            let p = self
                .quantile
                .as_deref()
                .ok_or_else(|| bad("quantile", "quantile needs --quantile P with P in [0, 1]"))?;
            quantile_fraction(p)?;
        }
        if self.statistic == Statistic::Histogram && self.edges.is_empty() {
            return Err(bad("edges", "histogram needs --edges E1,E2,... (increasing)"));
        }
        if self.exact && self.epsilon.is_some() {
            return Err(bad("epsilon", "a query is either exact or has an epsilon, not both"));
        }
        if !self.exact {
            if self.epsilon.is_none() {
                return Err(bad("epsilon", "a noisy query needs --epsilon E (or --exact where allowed)"));
            }
            if self.statistic != Statistic::Count && self.statistic != Statistic::Histogram && self.bounds.is_none() {
                return Err(StatsError::BoundsRequired);
            }
        }
        if !self.edges.is_empty() {
            let fixed = self.fixed(self.parameter_decimals()?)?;
            if let Some(pair) = fixed.edges.windows(2).find(|w| w.first() >= w.get(1)) {
                let at =
                    |v: Option<&i128>| v.map(|v| super::fixed::format_fixed(*v, fixed.decimals)).unwrap_or_default();
                return Err(bad(
                    "edges",
                    &format!(
                        "edges must increase strictly, but {} is followed by {}; sort them, e.g. --edges 0,10,100",
                        at(pair.first()),
                        at(pair.get(1))
                    ),
                ));
            }
            if fixed.edges.len() > 4096 {
                return Err(bad("edges", "at most 4096 edges"));
            }
        }
        if let Some((lo, hi)) = &self.bounds {
            let (a, da) = parse_decimal(lo)?;
            let (b, db) = parse_decimal(hi)?;
            let d = da.max(db);
            let a = a * pow10(d - da)?;
            let b = b * pow10(d - db)?;
            if a > b {
                return Err(bad("bounds", "lower bound is above the upper bound"));
            }
        }
        Ok(())
    }

    /// The decimals that the parameters themselves need (bounds, edges).
    pub fn parameter_decimals(&self) -> Result<u32, StatsError> {
        let mut d = 0;
        for text in self.edges.iter().chain(self.bounds.iter().flat_map(|(a, b)| [a, b])) {
            d = d.max(parse_decimal(text)?.1);
        }
        Ok(d)
    }

    /// Converts to fixed point at `decimals`.
    pub fn fixed(&self, decimals: u32) -> Result<FixedParams, StatsError> {
        let bounds = match &self.bounds {
            Some((lo, hi)) => Some((parse_fixed(lo, decimals)?, parse_fixed(hi, decimals)?)),
            None => None,
        };
        let edges = self.edges.iter().map(|e| parse_fixed(e, decimals)).collect::<Result<Vec<_>, _>>()?;
        let quantile = match self.statistic {
            Statistic::Quantile => Some(quantile_fraction(self.quantile.as_deref().unwrap_or("0.5"))?),
            Statistic::Median => Some((1, 2)),
            Statistic::Min => Some((0, 1)),
            Statistic::Max => Some((1, 1)),
            _ => None,
        };
        Ok(FixedParams { decimals, bounds, edges, quantile })
    }
}

/// p as an exact fraction (num, den) with 0 <= num <= den.
pub fn quantile_fraction(text: &str) -> Result<(i128, i128), StatsError> {
    let (m, d) = parse_decimal(text)?;
    let den = pow10(d)?;
    if m < 0 || m > den {
        return Err(StatsError::InvalidParameter { name: "quantile", reason: format!("{text} is outside [0, 1]") });
    }
    Ok((m, den))
}

/// Parameters in fixed point at the column's common decimals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixedParams {
    pub decimals: u32,
    pub bounds: Option<(i128, i128)>,
    pub edges: Vec<i128>,
    /// quantile level for search statistics.
    pub quantile: Option<(i128, i128)>,
}

/// The 1-based rank of the p-quantile among n values: max(1, ceil(p·n)).
/// p = 1/2 gives the lower median for even n.
pub fn quantile_rank(p: (i128, i128), n: i128) -> Result<i128, StatsError> {
    let (num, den) = p;
    let prod = num.checked_mul(n).ok_or(StatsError::ArithmeticOverflow("quantile rank"))?;
    let ceil = (prod + den - 1).div_euclid(den);
    Ok(ceil.clamp(1, n.max(1)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ranks() {
        assert_eq!(quantile_rank((1, 2), 414).unwrap(), 207); // lower median
        assert_eq!(quantile_rank((1, 2), 411).unwrap(), 206); // middle of 411
        assert_eq!(quantile_rank((0, 1), 10).unwrap(), 1);
        assert_eq!(quantile_rank((1, 1), 10).unwrap(), 10);
        assert_eq!(quantile_rank((9, 10), 10).unwrap(), 9);
        assert_eq!(quantile_rank((91, 100), 10).unwrap(), 10);
        assert_eq!("Median".parse::<Statistic>().unwrap(), Statistic::Median);
        assert!("mode".parse::<Statistic>().is_err());
    }

    #[test]
    fn validation() {
        let mut q = QueryParams::new(Statistic::Quantile);
        assert!(q.validate().is_err());
        q.quantile = Some("1.5".into());
        assert!(q.validate().is_err());
        q.quantile = Some("0.9".into());
        q.validate().unwrap();
        let mut dp = QueryParams::new(Statistic::Sum);
        dp.exact = false;
        dp.epsilon = Some(Epsilon(1_000_000));
        assert_eq!(dp.validate(), Err(StatsError::BoundsRequired));
        dp.bounds = Some(("0".into(), "10.5".into()));
        dp.validate().unwrap();
        let mut h = QueryParams::new(Statistic::Histogram);
        h.edges = vec!["0".into(), "10".into(), "2.5".into()];
        let err = h.validate().unwrap_err().to_string();
        assert!(err.contains("10 is followed by 2.5"), "{err}");
        h.edges = vec!["0".into(), "2.5".into(), "10".into()];
        h.validate().unwrap();
        assert_eq!(dp.parameter_decimals().unwrap(), 1);
        assert_eq!(dp.fixed(2).unwrap().bounds, Some((0, 1050)));
    }
}
