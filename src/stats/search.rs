//! Quantile search over aggregated encrypted histograms (median, quantiles,
//! min, max), driven by `planner`.
//!
//! Round 0 histograms the values over the first grid (magnitudes, or the
//! query's bounds) and releases the total count n, which fixes the target
//! rank r = max(1, ceil(p·n)). In every round a search over prefix counts
//! (each the number of the column's values below a cut of the round's grid,
//! `release::round_target`: one release, whatever the round) finds the
//! bucket holding rank r; the next round re-histograms only that bucket on
//! a 16-bucket grid (`policy::SEARCH_BUCKETS`; an exact search on the
//! committed-share path 128, `policy::WIDE_SEARCH_BUCKETS`). When a bucket holds a single fixed-point
//! value, that value is the answer, exact at the column's resolution.
//!
//! - Exact: a round releases every prefix count in one step (15 for 16
//!   buckets, 24 for the 25 magnitude buckets of 47-bit values; asked with
//!   the round's registration: no round trip of its own). More releases
//!   than a binary search (15 against 4 per round), each cheap to add to a
//!   batch, for a fraction of the round trips.
//! - With noise: a binary search (one prefix per step, ceil(log2 B) per
//!   round), because every release shares the query's epsilon
//!   (`policy::plan_shape`); the search still ends after the planned
//!   number of rounds.
//!
//! A step's cuts never depend on what the round will release, so the first
//! step of a round is asked together with its registration (and, in round
//! 0, with the total n). Ciphertexts per relay = Σ buckets over rounds,
//! independent of the row count. No I/O, no keys.

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
    /// search state: prefix(lo) < target <= prefix(hi), prefix(c) being
    /// the number of the column's values below cut c of the current grid
    /// (whole column: `release::round_target`)
    lo: u32,
    hi: u32,
    prefix_lo: i128,
    prefix_hi: i128,
    /// the releases of the step in progress, in increasing order
    pending: Vec<Release>,
    /// cuts per step: 2 (a binary search) with noise, else every one
    exact: bool,
    /// the query's bounds: refinements never reach past them
    bounds: Option<(i128, i128)>,
    /// buckets of each refinement's grid (`policy::search_widths`)
    buckets: u32,
    /// released (boundary b, values below b): what the answer's interval is read from
    points: Vec<(i128, i128)>,
}

/// What the search needs next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchStep {
    /// Release these (in this order) and feed every value to `released`.
    Release(Vec<Release>),
    NextRound(Grid),
    Done {
        value: i128,
        count: i128,
    },
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

    /// An exact search (several prefixes per step); `within` is the noisy
    /// one's binary search.
    pub fn exact(mut self) -> Self {
        self.exact = true;
        self
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
            lo: 0,
            hi: buckets,
            prefix_lo: 0,
            prefix_hi: 0,
            pending: Vec::new(),
            exact: false,
            bounds,
            buckets: SEARCH_BUCKETS,
            points: Vec::new(),
        }
    }

    /// Refines into `buckets` buckets a round instead of `SEARCH_BUCKETS`
    /// (an exact search on the committed-share path).
    pub fn with_buckets(mut self, buckets: u32) -> Self {
        self.buckets = buckets;
        self
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
            // the total fixes the rank; the first cuts do not need it
            let mut releases = vec![Release::HistTotal];
            releases.extend(self.cuts().into_iter().map(|c| self.count_at(c)));
            self.pending = releases.clone();
            return Ok(SearchStep::Release(releases));
        }
        self.next()
    }

    /// Feeds the plaintexts of the pending step's releases (any order).
    pub fn released(&mut self, values: &[(Release, i128)]) -> Result<SearchStep, StatsError> {
        let value_of = |release: &Release| values.iter().find(|(r, _)| r == release).map(|(_, v)| *v);
        if values.len() != self.pending.len() || self.pending.iter().any(|r| value_of(r).is_none()) {
            let got: Vec<Release> = values.iter().map(|(r, _)| *r).collect();
            return Err(StatsError::UnexpectedInput(format!("search got {got:?}, expected {:?}", self.pending)));
        }
        let (mut prefixes, mut suffixes) = (Vec::with_capacity(self.pending.len()), Vec::new());
        for release in std::mem::take(&mut self.pending) {
            let value = value_of(&release).unwrap_or(0);
            match release {
                Release::HistTotal => self.set_total(value)?,
                Release::HistPrefix(cut) => prefixes.push((cut, value)),
                Release::HistSuffix(cut) => suffixes.push((cut, value)),
                other => return Err(StatsError::UnexpectedInput(format!("search cannot use {other:?}"))),
            }
        }
        // values at or above a cut: the rest of the (released) total is below it
        let total = self.total.unwrap_or(0);
        prefixes.extend(suffixes.into_iter().map(|(cut, above)| (cut, total.saturating_sub(above))));
        prefixes.sort_unstable_by_key(|(cut, _)| *cut);
        let target = self.target();
        for (cut, value) in prefixes {
            // a noisy prefix count outside what earlier releases bound it to
            // is clamped (post-processing: no privacy cost; exact values are
            // always inside); past the cut that reached the target, the
            // rest tell nothing more
            if cut >= self.hi {
                break;
            }
            let value =
                if self.prefix_lo <= self.prefix_hi { value.clamp(self.prefix_lo, self.prefix_hi) } else { value };
            if let Some(boundary) = self.grid.range_of(cut).lo {
                self.points.push((boundary, value));
            }
            if value >= target {
                self.hi = cut;
                self.prefix_hi = value;
            } else {
                self.lo = cut;
                self.prefix_lo = value;
            }
        }
        self.next()
    }

    fn set_total(&mut self, value: i128) -> Result<(), StatsError> {
        if value <= 0 {
            return Err(StatsError::NoData { blank: 0 });
        }
        self.total = Some(value);
        self.rank = Some(quantile_rank(self.p, value)?);
        self.prefix_hi = value;
        Ok(())
    }

    /// What the search releases at a cut: the count below it, or with noise
    /// for p > 1/2 the count at or above it (the total's noise then shifts
    /// the target rank by (1 − p) of itself instead of p).
    fn count_at(&self, cut: u32) -> Release {
        if !self.exact && self.p.0.saturating_mul(2) > self.p.1 {
            Release::HistSuffix(cut)
        } else {
            Release::HistPrefix(cut)
        }
    }

    /// The cuts strictly between lo and hi that the next step releases:
    /// the midpoint with noise, every one when exact.
    fn cuts(&self) -> Vec<u32> {
        let span = self.hi.saturating_sub(self.lo);
        let parts = if self.exact { span } else { 2 };
        let mut cuts: Vec<u32> = (1..parts)
            .filter_map(|j| {
                let offset = u64::from(span) * u64::from(j) / u64::from(parts.max(1));
                u32::try_from(offset).ok().map(|o| self.lo + o)
            })
            .filter(|c| *c > self.lo && *c < self.hi)
            .collect();
        cuts.dedup();
        cuts
    }

    fn target(&self) -> i128 {
        self.rank.unwrap_or(1).max(1)
    }

    fn next(&mut self) -> Result<SearchStep, StatsError> {
        if self.hi - self.lo > 1 {
            let releases: Vec<Release> = self.cuts().into_iter().map(|c| self.count_at(c)).collect();
            self.pending = releases.clone();
            return Ok(SearchStep::Release(releases));
        }
        // bucket `lo` holds the target rank
        let (lo, hi) = refinement_range(&self.grid, self.lo, self.bounds)
            .ok_or_else(|| StatsError::UnexpectedInput("search bucket without bounds".into()))?;
        let count = self.total.unwrap_or(0);
        if lo >= hi {
            return Ok(SearchStep::Done { value: lo, count });
        }
        // prefix_lo and prefix_hi stay: the new grid's first and last cuts
        self.grid = Grid::covering(lo, hi, self.buckets)?;
        self.round += 1;
        self.lo = 0;
        self.hi = self.grid.buckets();
        Ok(SearchStep::NextRound(self.grid.clone()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::stats::contribution::local_histogram;
    use proptest::prelude::*;

    /// Runs the search on plaintext histograms (what the decryptions would
    /// give): (answer, rounds, releases, steps).
    fn run_with(values: &[i128], p: (i128, i128), grid: Grid, exact: bool) -> (i128, u32, u32, u32) {
        let mut s = QuantileSearch::new(p, grid);
        if exact {
            s = s.exact();
        }
        let (mut releases, mut steps) = (0, 0);
        let mut grid = s.grid().clone();
        let mut hist = local_histogram(values, &grid);
        let mut step = s.start_round().unwrap();
        loop {
            match step {
                SearchStep::Release(rs) => {
                    releases += rs.len() as u32;
                    steps += 1;
                    let vs: Vec<(Release, i128)> = rs
                        .iter()
                        .map(|r| {
                            let v: i128 = match r {
                                Release::HistTotal => hist.iter().map(|c| i128::from(*c)).sum(),
                                // the whole column below the cut (`release::round_target`)
                                Release::HistPrefix(n) => below(values, &grid, *n),
                                Release::HistSuffix(n) => values.len() as i128 - below(values, &grid, *n),
                                _ => unreachable!(),
                            };
                            (*r, v)
                        })
                        .rev()
                        .collect();
                    step = s.released(&vs).unwrap();
                }
                SearchStep::NextRound(g) => {
                    hist = local_histogram(values, &g);
                    grid = g;
                    step = s.start_round().unwrap();
                }
                SearchStep::Done { value, .. } => return (value, s.round() + 1, releases, steps),
            }
        }
    }

    /// Values of the column below cut `n` of `grid`.
    fn below(values: &[i128], grid: &Grid, n: u32) -> i128 {
        let cut = grid.range_of(n).lo.unwrap();
        values.iter().filter(|v| **v < cut).count() as i128
    }

    fn run(values: &[i128], p: (i128, i128), grid: Grid) -> (i128, u32, u32) {
        let (value, rounds, releases, _) = run_with(values, p, grid, false);
        (value, rounds, releases)
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
            let (got, rounds, releases) = run(&v, p, Grid::Magnitude { bits: 47 });
            assert_eq!(got, expected(&v, p), "p = {p:?}");
            // 100000 is in the nibble bucket [16^4, 16^5 - 1]: five refinements
            assert!(rounds <= 6 && releases <= 30, "{rounds} rounds {releases} releases");
        }
    }

    #[test]
    fn exact_steps_release_several_prefixes_and_take_one_step_a_refinement() {
        let v: Vec<i128> = (0..5000).map(|i| (i * 7919) % 4_000_000_007).collect();
        for p in [(0, 1), (1, 2), (9, 10), (1, 1)] {
            let (got, rounds, releases, steps) = run_with(&v, p, Grid::Magnitude { bits: 47 }, true);
            assert_eq!(got, expected(&v, p), "p = {p:?}");
            let (_, binary_rounds, binary_releases, binary_steps) =
                run_with(&v, p, Grid::Magnitude { bits: 47 }, false);
            assert_eq!(rounds, binary_rounds, "the same rounds");
            // one step for the 25 magnitude buckets, one per 16-bucket refinement
            assert!(steps == rounds && steps < binary_steps, "{steps} steps against {binary_steps}");
            assert!(releases > binary_releases, "{releases} releases against {binary_releases}");
        }
        // over bounds: every round is 16 buckets, one step each, 15 prefixes
        // (fewer where the bounds cut the grid)
        let (got, rounds, releases, steps) = run_with(&v, (1, 2), Grid::covering(0, 4_000_000_007, 16).unwrap(), true);
        assert_eq!(got, expected(&v, (1, 2)));
        assert_eq!(steps, rounds, "one step a round");
        assert!(releases <= 1 + 15 * rounds, "{releases} releases in {rounds} rounds");
    }

    /// Values beyond 2^63 (at the query's scale, a relay's value of 10^7
    /// declared with no decimals in a 12-decimal query is 10^19): the
    /// magnitude grid of the query's width holds them, and the search ends
    /// on the exact value.
    #[test]
    fn magnitudes_cover_the_querys_value_width() {
        let big = 10i128.pow(19);
        let v: Vec<i128> = vec![-3 * big, -5, 0, 7, big, big + 1, 2 * big, 99 * big + 12345, 1 << 86];
        for p in [(0, 1), (1, 2), (3, 4), (1, 1)] {
            let (got, rounds, _, steps) = run_with(&v, p, Grid::Magnitude { bits: 87 }, true);
            assert_eq!(got, expected(&v, p), "p = {p:?}");
            assert_eq!(steps, rounds);
            assert!(rounds <= 1 + 22, "{rounds} rounds");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn finds_every_quantile(values in proptest::collection::vec(-1_000_000_000i128..1_000_000_000, 1..60), num in 0i128..=100) {
            let p = (num, 100);
            let (got, _, _) = run(&values, p, Grid::Magnitude { bits: 47 });
            prop_assert_eq!(got, expected(&values, p));
            let lo = *values.iter().min().unwrap();
            let hi = *values.iter().max().unwrap();
            let (got, _, _) = run(&values, p, Grid::covering(lo - 3, hi + 5, 64).unwrap());
            prop_assert_eq!(got, expected(&values, p));
            for grid in [Grid::Magnitude { bits: 47 }, Grid::covering(lo - 3, hi + 5, 64).unwrap()] {
                let (got, rounds, _, steps) = run_with(&values, p, grid, true);
                prop_assert_eq!(got, expected(&values, p));
                prop_assert!(steps <= rounds + 1, "{} steps in {} rounds", steps, rounds);
            }
        }
    }
}
