//! Quantile search over aggregated encrypted histograms (median, quantiles,
//! min, max), driven by `planner`.
//!
//! Round 0 histograms the values over the first grid (magnitudes, or the
//! query's bounds) and releases the total count n, which fixes the target
//! rank r = max(1, ceil(p·n)). In every round a binary search over prefix
//! counts finds the bucket holding rank r (ceil(log2 B) releases: 7 for the
//! 127 magnitude buckets, at most 6 for 64 uniform buckets); the next round
//! re-histograms only that bucket on a 64-bucket grid. When a bucket holds a
//! single fixed-point value, that value is the answer, exact at the column's
//! resolution. Per query: ciphertexts per relay = Σ buckets over rounds and
//! decryptions = 1 + Σ ceil(log2 B); for a range of 2^k values that is
//! about 1 + 7 + 6·ceil((k-1)/6) releases, independent of the row count.
//!
//! With noise the prefix counts are perturbed; the search still ends after
//! the planned number of rounds. No I/O, no keys.

use super::error::StatsError;
use super::grid::Grid;
use super::policy::SEARCH_BUCKETS;
use super::release::Release;
use super::statistic::quantile_rank;

#[derive(Clone, Debug)]
pub struct QuantileSearch {
    p: (i128, i128),
    grid: Grid,
    round: u32,
    rank: Option<i128>,
    total: Option<i128>,
    /// values below the current grid's first bucket
    below: i128,
    /// values inside the current grid
    in_range: i128,
    /// binary search state: prefix(lo) < target <= prefix(hi)
    lo: u32,
    hi: u32,
    prefix_lo: i128,
    prefix_hi: i128,
    pending: Option<Release>,
    /// the query's bounds: refinements never reach past them
    bounds: Option<(i128, i128)>,
    /// released (boundary b, values below b): what the answer's interval is read from
    points: Vec<(i128, i128)>,
}

/// What the search needs next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchStep {
    Release(Release),
    NextRound(Grid),
    Done { value: i128, count: i128 },
}

/// The value range of `bucket` of `grid`, cut to `bounds`: what the next
/// round refines (`policy::check_refinement` asks for the same).
pub fn refinement_range(grid: &Grid, bucket: u32, bounds: Option<(i128, i128)>) -> Option<(i128, i128)> {
    let range = grid.range_of(bucket);
    let (mut lo, mut hi) = (range.lo?, range.hi?);
    if let Some((blo, bhi)) = bounds {
        lo = lo.max(blo);
        hi = hi.min(bhi);
    }
    (lo <= hi).then_some((lo, hi))
}

impl QuantileSearch {
    pub fn new(p: (i128, i128), first_grid: Grid) -> Self {
        Self::within(p, first_grid, None)
    }

    /// A search whose refinements stay inside `bounds` (values are clamped
    /// to them, so nothing lies beyond; with noise a search could otherwise
    /// wander past HI in the last bucket).
    pub fn within(p: (i128, i128), first_grid: Grid, bounds: Option<(i128, i128)>) -> Self {
        let buckets = first_grid.buckets();
        QuantileSearch {
            p,
            grid: first_grid,
            round: 0,
            rank: None,
            total: None,
            below: 0,
            in_range: 0,
            lo: 0,
            hi: buckets,
            prefix_lo: 0,
            prefix_hi: 0,
            pending: None,
            bounds,
            points: Vec::new(),
        }
    }

    /// The released (boundary, number of values below it) pairs so far.
    pub fn points(&self) -> &[(i128, i128)] {
        &self.points
    }

    /// The target rank, once the total is released.
    pub fn rank(&self) -> Option<i128> {
        self.rank
    }

    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    pub fn round(&self) -> u32 {
        self.round
    }

    /// The next step once the current round's contributions are aggregated.
    pub fn start_round(&mut self) -> Result<SearchStep, StatsError> {
        if self.total.is_none() {
            self.pending = Some(Release::HistTotal);
            return Ok(SearchStep::Release(Release::HistTotal));
        }
        self.next()
    }

    /// Feeds the plaintext of the pending release.
    pub fn released(&mut self, release: Release, value: i128) -> Result<SearchStep, StatsError> {
        if self.pending != Some(release) {
            return Err(StatsError::UnexpectedInput(format!("search got {release:?}, expected {:?}", self.pending)));
        }
        self.pending = None;
        match release {
            Release::HistTotal => {
                if value <= 0 {
                    return Err(StatsError::NoData { blank: 0 });
                }
                self.total = Some(value);
                self.rank = Some(quantile_rank(self.p, value)?);
                self.in_range = value;
                self.prefix_hi = value;
            }
            Release::HistPrefix(mid) => {
                // a noisy prefix count outside what earlier releases bound it to
                // is clamped (post-processing: no privacy cost; exact values are
                // always inside)
                let value =
                    if self.prefix_lo <= self.prefix_hi { value.clamp(self.prefix_lo, self.prefix_hi) } else { value };
                if let Some(boundary) = self.grid.range_of(mid).lo {
                    self.points.push((boundary, self.below.saturating_add(value)));
                }
                let target = self.local_target();
                if value >= target {
                    self.hi = mid;
                    self.prefix_hi = value;
                } else {
                    self.lo = mid;
                    self.prefix_lo = value;
                }
            }
            other => return Err(StatsError::UnexpectedInput(format!("search cannot use {other:?}"))),
        }
        self.next()
    }

    fn local_target(&self) -> i128 {
        let rank = self.rank.unwrap_or(1);
        (rank - self.below).clamp(1, self.in_range.max(1))
    }

    fn next(&mut self) -> Result<SearchStep, StatsError> {
        if self.hi - self.lo > 1 {
            let mid = self.lo + (self.hi - self.lo) / 2;
            let release = Release::HistPrefix(mid);
            self.pending = Some(release);
            return Ok(SearchStep::Release(release));
        }
        // bucket `lo` holds the target rank
        let (lo, hi) = refinement_range(&self.grid, self.lo, self.bounds)
            .ok_or_else(|| StatsError::UnexpectedInput("search bucket without bounds".into()))?;
        let count = self.total.unwrap_or(0);
        if lo >= hi {
            return Ok(SearchStep::Done { value: lo, count });
        }
        self.below += self.prefix_lo;
        self.in_range = (self.prefix_hi - self.prefix_lo).max(0);
        self.grid = Grid::covering(lo, hi, SEARCH_BUCKETS)?;
        self.round += 1;
        self.lo = 0;
        self.hi = self.grid.buckets();
        self.prefix_lo = 0;
        self.prefix_hi = self.in_range;
        Ok(SearchStep::NextRound(self.grid.clone()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::stats::contribution::local_histogram;
    use proptest::prelude::*;

    /// Runs the search on plaintext histograms (what the decryptions would give).
    fn run(values: &[i128], p: (i128, i128), grid: Grid) -> (i128, u32, u32) {
        let mut s = QuantileSearch::new(p, grid);
        let mut releases = 0;
        let mut hist = local_histogram(values, s.grid());
        let mut step = s.start_round().unwrap();
        loop {
            match step {
                SearchStep::Release(r) => {
                    releases += 1;
                    let v: i128 = match r {
                        Release::HistTotal => hist.iter().map(|c| i128::from(*c)).sum(),
                        Release::HistPrefix(n) => hist[..n as usize].iter().map(|c| i128::from(*c)).sum(),
                        _ => unreachable!(),
                    };
                    step = s.released(r, v).unwrap();
                }
                SearchStep::NextRound(g) => {
                    hist = local_histogram(values, &g);
                    step = s.start_round().unwrap();
                }
                SearchStep::Done { value, .. } => return (value, s.round() + 1, releases),
            }
        }
    }

    fn expected(values: &[i128], p: (i128, i128)) -> i128 {
        let mut v = values.to_vec();
        v.sort();
        let r = quantile_rank(p, v.len() as i128).unwrap();
        v[(r - 1) as usize]
    }

    #[test]
    fn median_of_small_sets() {
        let v = vec![5, -3, 12, 7, 7, 100000, -40000, 0];
        for p in [(0, 1), (1, 4), (1, 2), (3, 4), (1, 1)] {
            let (got, rounds, releases) = run(&v, p, Grid::Magnitude);
            assert_eq!(got, expected(&v, p), "p = {p:?}");
            assert!(rounds <= 4 && releases <= 30, "{rounds} rounds {releases} releases");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn finds_every_quantile(values in proptest::collection::vec(-1_000_000_000i128..1_000_000_000, 1..60), num in 0i128..=100) {
            let p = (num, 100);
            let (got, _, _) = run(&values, p, Grid::Magnitude);
            prop_assert_eq!(got, expected(&values, p));
            let lo = *values.iter().min().unwrap();
            let hi = *values.iter().max().unwrap();
            let (got, _, _) = run(&values, p, Grid::covering(lo - 3, hi + 5, 64).unwrap());
            prop_assert_eq!(got, expected(&values, p));
        }
    }
}
