//! Quantile search over aggregated encrypted histograms (median, quantiles,
//! min, max), driven by `planner`.
//!
//! Round 0 histograms the values over the first grid (magnitudes, or the
//! query's bounds). Every round finds the bucket that holds the target
//! rank r = max(1, ceil(p·n)), and the next round re-histograms only that
//! bucket. When a bucket holds a single fixed-point value, that value is
//! the answer, exact at the column's resolution.
//!
//! - Exact: round 0 releases the total n, and every round releases all its
//!   prefix counts at once (each the number of the column's values below a
//!   cut of the round's grid, `release::round_target`): 15 for 16 buckets,
//!   127 for 128, 24 for the 25 magnitude buckets of 47-bit values. They
//!   are asked with the round's registration, so a round costs no round
//!   trip of its own. Rounds of 16 buckets (`policy::SEARCH_BUCKETS`), or
//!   128 on the committed-share path (`policy::WIDE_SEARCH_BUCKETS`).
//! - With noise: every round releases the noisy count of each cell of a
//!   partition of the column: the values below the round's grid (the
//!   prefix at cut 0; not in round 0, whose grid covers the bounds), each
//!   bucket, and the values at or above the grid's end (the suffix at its
//!   last cut). Those counts add up to a noisy n for the round, which fixes
//!   its target rank, and their running sum finds the bucket. A round is
//!   one release of sensitivity 1 whatever its width (the cells are
//!   disjoint), so the query's epsilon is split over its rounds only, and
//!   grids are as wide as `policy::noisy_search` finds best: 16 buckets in
//!   5 rounds over 10^6 + 1 values, 24 in 7 over 2^32 (16 round trips). An
//!   earlier design ran a binary search over noisy prefix counts, each
//!   taking its own share of epsilon: 21 shares and 42 round trips over
//!   10^6 + 1 values, with a larger rank error.
//!
//! A step's releases never depend on what the round will release, so the
//! first step of a round is asked together with its registration.
//! Ciphertexts per relay = Σ buckets over rounds, independent of the row
//! count. No I/O, no keys.

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
    /// an exact search's target rank, fixed by the released total (a noisy
    /// search fixes one a round, from that round's cells)
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
    /// with noise, every cut of every round relative to that round's target
    /// rank: what the answer's interval is read from
    points: Vec<RankPoint>,
}

/// A cut a noisy search released the counts around: the values below
/// `boundary` minus the round's target rank (both noisy), and how many
/// noisy cells lay below and above the cut in that round. The noise on
/// `excess` is σ·√((1 − p)²·`cells_below` + p²·`cells_above`) for a
/// cell's noise σ (`uncertainty::quantile_interval`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RankPoint {
    pub boundary: i128,
    pub excess: i128,
    pub cells_below: u32,
    pub cells_above: u32,
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

    /// An exact search (every prefix count of a round at once); `within` is
    /// the noisy one (every cell of a round).
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
    /// (an exact search on the committed-share path; a noisy search,
    /// `policy::noisy_search`).
    pub fn with_buckets(mut self, buckets: u32) -> Self {
        self.buckets = buckets;
        self
    }

    /// A noisy search's released cuts so far (none when exact).
    pub fn points(&self) -> &[RankPoint] {
        &self.points
    }

    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    pub fn round(&self) -> u32 {
        self.round
    }

    /// The next step once the current round's contributions are aggregated.
    pub fn start_round(&mut self) -> Result<SearchStep, StatsError> {
        if !self.exact {
            self.pending = self.cells();
            return Ok(SearchStep::Release(self.pending.clone()));
        }
        if self.total.is_none() {
            // the total fixes the rank; the first cuts do not need it
            let mut releases = vec![Release::HistTotal];
            releases.extend(self.cuts().into_iter().map(Release::HistPrefix));
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
        if !self.exact {
            let counts: Vec<i128> =
                std::mem::take(&mut self.pending).iter().map(|r| value_of(r).unwrap_or(0)).collect();
            return self.descend(&counts);
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

    /// The cuts strictly between lo and hi that an exact step releases.
    fn cuts(&self) -> Vec<u32> {
        (self.lo.saturating_add(1)..self.hi).collect()
    }

    /// A noisy round's releases, in the column's order: the values below
    /// the grid (after round 0), each bucket, the values at or above its end.
    fn cells(&self) -> Vec<Release> {
        let buckets = self.grid.buckets();
        let mut cells = Vec::with_capacity(usize::try_from(buckets).unwrap_or(0).saturating_add(2));
        let outside = self.round > 0;
        if outside {
            cells.push(Release::HistPrefix(0));
        }
        cells.extend((0..buckets).map(Release::HistBucket));
        if outside {
            cells.push(Release::HistSuffix(buckets));
        }
        cells
    }

    /// A noisy round: `counts` of `cells()`, in order. Their sum is the
    /// round's n, which fixes its target rank; the first bucket whose
    /// running count reaches it is refined next (the last one if none does,
    /// the first if the values below the grid already do).
    fn descend(&mut self, counts: &[i128]) -> Result<SearchStep, StatsError> {
        let total = counts.iter().fold(0i128, |a, c| a.saturating_add(*c));
        if self.total.is_none() {
            if total <= 0 {
                return Err(StatsError::NoData { blank: 0 });
            }
            self.total = Some(total);
        }
        let rank = quantile_rank(self.p, total.max(1))?;
        let outside = u32::from(self.round > 0);
        let cells = u32::try_from(counts.len()).map_err(|_| StatsError::ArithmeticOverflow("cells"))?;
        let mut running = if outside == 1 { counts.first().copied().unwrap_or(0) } else { 0 };
        let mut chosen = None;
        for bucket in 0..self.grid.buckets() {
            let below = outside + bucket;
            if let Some(boundary) = self.grid.range_of(bucket).lo {
                self.point(boundary, running.saturating_sub(rank), below, cells);
            }
            let count = counts.get(usize::try_from(below).unwrap_or(usize::MAX)).copied().unwrap_or(0);
            running = running.saturating_add(count);
            if chosen.is_none() && running >= rank {
                chosen = Some(bucket);
            }
        }
        let last = self.grid.range_of(self.grid.buckets().saturating_sub(1)).hi;
        if let Some(end) = last.and_then(|hi| hi.checked_add(1)) {
            self.point(end, running.saturating_sub(rank), outside + self.grid.buckets(), cells);
        }
        let bucket = chosen.unwrap_or(self.grid.buckets().saturating_sub(1));
        self.lo = bucket;
        self.hi = bucket.saturating_add(1);
        self.next()
    }

    fn target(&self) -> i128 {
        self.rank.unwrap_or(1).max(1)
    }

    fn point(&mut self, boundary: i128, excess: i128, cells_below: u32, cells: u32) {
        let cells_above = cells.saturating_sub(cells_below);
        self.points.push(RankPoint { boundary, excess, cells_below, cells_above });
    }

    fn next(&mut self) -> Result<SearchStep, StatsError> {
        if self.hi - self.lo > 1 {
            let releases: Vec<Release> = self.cuts().into_iter().map(Release::HistPrefix).collect();
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
                                Release::HistBucket(k) => i128::from(hist[*k as usize]),
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

    /// Values of the column below cut `n` of `grid` (cut `buckets` is its end).
    fn below(values: &[i128], grid: &Grid, n: u32) -> i128 {
        let cut = if n == grid.buckets() { grid.range_of(n - 1).hi.unwrap() + 1 } else { grid.range_of(n).lo.unwrap() };
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
            // 25 magnitude cells, then 16 buckets and the two outside cells a round
            assert!(rounds <= 6 && releases <= 25 + 18 * 5, "{rounds} rounds {releases} releases");
        }
    }

    #[test]
    fn every_search_takes_one_step_a_round() {
        let v: Vec<i128> = (0..5000).map(|i| (i * 7919) % 4_000_000_007).collect();
        for p in [(0, 1), (1, 2), (9, 10), (1, 1)] {
            let (got, rounds, releases, steps) = run_with(&v, p, Grid::Magnitude { bits: 47 }, true);
            assert_eq!(got, expected(&v, p), "p = {p:?}");
            let (noisy, noisy_rounds, noisy_releases, noisy_steps) =
                run_with(&v, p, Grid::Magnitude { bits: 47 }, false);
            assert_eq!((noisy, noisy_rounds), (got, rounds), "the same answer in the same rounds");
            // one step for the 25 magnitude buckets, one per 16-bucket refinement
            assert!(steps == rounds && noisy_steps == rounds, "{steps} and {noisy_steps} steps in {rounds} rounds");
            // exact: the total, then B − 1 prefixes a round of B buckets;
            // noisy: B cells in round 0, B + 2 in each later round
            assert!(releases <= 1 + 24 + 15 * (rounds - 1), "p = {p:?}");
            assert_eq!(noisy_releases, releases + 3 * (rounds - 1), "p = {p:?}");
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
