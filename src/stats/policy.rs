//! The authority-side rules of a query's plan: how many rounds it may take
//! and how many releases share its epsilon (sequential composition), which
//! task each round may carry (later search rounds refine one bucket of the
//! previous grid), which releases a registered round permits and the
//! sensitivity of each, and the resolution of noisy sums.
//!
//! Used by `protocol::authority` (admission, decryption, noise) and by the
//! processor's `planner` (the same plan, from the other side). No I/O.

use super::contribution::RelayTask;
use super::dp::{laplace_scale, Epsilon};
use super::error::StatsError;
use super::grid::Grid;
use super::limits;
use super::release::Release;
use super::statistic::{FixedParams, QueryParams, Statistic};

/// Buckets per refinement round of an exact quantile search on the
/// ElGamal path. 16 rather than 64: a round costs about as much as 50
/// ciphertexts per relay (admission, signatures, proofs), so 8 rounds of
/// 16 over 2^32 values (128 ciphertexts per relay) cost less CPU than 6 of
/// 64 (324), at two more round trips per extra round (README,
/// Performance). Also the default width of `search_rounds` for an exact
/// plan's most rounds.
pub const SEARCH_BUCKETS: u32 = 16;

/// Buckets per round of an exact search on the committed-share path: a
/// bucket there costs about 2.3 µs per relay to commit and no work per
/// release, so 5 rounds of 128 over 2^32 values (12 round trips) cost less
/// than 8 of 16 (18). Exact searches may refine with either width; noisy
/// ones with the one width `noisy_search` gives their bounds.
pub const WIDE_SEARCH_BUCKETS: u32 = 128;

/// Most rounds of a noisy search: 2 + 2·7 = 16 round trips (the query's
/// admission and the relays' description, then each round's contributions
/// and registration; the next round's admission and the round's releases
/// ride on those). Bounds wider than 256^7 = 2^56 values take more.
pub const NOISY_SEARCH_MAX_ROUNDS: u32 = 7;

/// Widest grid of a noisy search round.
pub const NOISY_SEARCH_MAX_BUCKETS: u32 = 256;

/// The grid widths a search of this query may refine with: 16 or 128 when
/// exact, the one width of `noisy_search` over the query's bounds with noise.
pub fn search_widths(params: &QueryParams, fixed: &FixedParams) -> Result<Vec<u32>, StatsError> {
    if params.exact {
        return Ok(vec![SEARCH_BUCKETS, WIDE_SEARCH_BUCKETS]);
    }
    Ok(vec![noisy_search(bounds_span(fixed)?)?.0])
}

/// Values between a noisy query's bounds (it has them: `BoundsRequired`).
fn bounds_span(fixed: &FixedParams) -> Result<i128, StatsError> {
    let (lo, hi) = fixed.bounds.ok_or(StatsError::BoundsRequired)?;
    hi.checked_sub(lo).and_then(|s| s.checked_add(1)).ok_or(StatsError::ArithmeticOverflow("bounds"))
}

/// Rounds of a search over `span` values that refines into `buckets`-bucket
/// grids down to one value, the grids being the ones `Grid::covering` makes
/// of the widest bucket (a refinement cut to the bounds is never wider).
pub fn search_rounds(span: i128, buckets: u32) -> Result<u32, StatsError> {
    let b = i128::from(buckets.max(2));
    let mut values = span.max(1);
    let mut rounds = 0u32;
    loop {
        let width = (values + b - 1) / b;
        rounds = rounds.checked_add(1).ok_or(StatsError::ArithmeticOverflow("rounds"))?;
        if width <= 1 {
            return Ok(rounds);
        }
        values = width;
    }
}

/// Whether a search over `span` values refining into `buckets`-bucket
/// grids ends within `rounds` rounds, i.e. `search_rounds(span, buckets)
/// <= rounds`, without its divisions: its widths are nested ceilings,
/// ⌈⌈s/B⌉/B⌉ = ⌈s/B²⌉, so it ends within k rounds exactly when B^k ≥ span.
/// (`noisy_search` asks this about 60 times, and authorities call it for
/// every release they check.)
fn ends_within(span: i128, buckets: u32, rounds: u32) -> bool {
    let span = span.max(1).unsigned_abs();
    u128::from(buckets.max(2)).checked_pow(rounds).is_none_or(|reach| reach >= span)
}

/// (buckets per round, rounds) of a noisy search over `span` values.
///
/// Each round releases a noisy count of every cell of a partition of the
/// column (below the round's grid, each bucket, at or above its end): one
/// row is in one cell, so a round is one release at sensitivity 1
/// (parallel composition) and the query's epsilon is split over the
/// rounds only. Where the search stops in a round, the noise moves the
/// rank by about σ·√((1 − p)²·a + p²·b) for a cells before the stop and b
/// after it, at most σ·√(B + 2)/2 for B buckets at p = ½, with σ
/// proportional to the rounds R. So this picks the R ≤
/// `NOISY_SEARCH_MAX_ROUNDS` and the fewest buckets B for it that
/// minimise (B + 2)·R²: 16 buckets in 5 rounds over 10^6 + 1 values, 24 in
/// 7 over 2^32.
pub fn noisy_search(span: i128) -> Result<(u32, u32), StatsError> {
    let mut best: Option<(u128, u32, u32)> = None;
    for rounds in 1..=NOISY_SEARCH_MAX_ROUNDS {
        if !ends_within(span, NOISY_SEARCH_MAX_BUCKETS, rounds) {
            continue;
        }
        // the fewest buckets that end within `rounds` (rounds fall as buckets grow)
        let (mut lo, mut hi) = (2u32, NOISY_SEARCH_MAX_BUCKETS);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if ends_within(span, mid, rounds) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        let taken = search_rounds(span, lo)?;
        let cost = u128::from(lo + 2) * u128::from(taken) * u128::from(taken);
        if best.is_none_or(|(c, _, _)| cost < c) {
            best = Some((cost, lo, taken));
        }
    }
    Ok(match best {
        Some((_, buckets, rounds)) => (buckets, rounds),
        None => (NOISY_SEARCH_MAX_BUCKETS, search_rounds(span, NOISY_SEARCH_MAX_BUCKETS)?),
    })
}

/// First slot of a search round's suffix counts (prefix counts take 1 + n,
/// n below the 4096 buckets a grid may have).
const SUFFIX_SLOTS: u32 = 1 << 14;

/// Where a release sits in the authority's accounting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReleaseSlot {
    /// unique per (round, release): each slot is decrypted at most once.
    pub index: u32,
    /// how much one row can change the released number (fixed-point units).
    pub sensitivity: u128,
    /// the query's epsilon is split equally across this many releases.
    pub share: u64,
}

/// How many rounds a plan may take and how many releases share its epsilon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanShape {
    pub max_rounds: u32,
    /// sequential composition: each noisy release gets this share of the
    /// query's epsilon. A release is one number of a moments plan, and one
    /// round (all its cells, disjoint) of a noisy search.
    pub releases: u64,
}

/// The grid of a search's first round, of `buckets` buckets (one of
/// `search_widths`): the bounds when known, else the magnitudes of the
/// query's value width (`limits::value_bits`).
pub fn first_search_grid(fixed: &FixedParams, buckets: u32) -> Result<Grid, StatsError> {
    match fixed.bounds {
        Some((lo, hi)) => Grid::covering(lo, hi, buckets),
        None => Ok(Grid::Magnitude { bits: super::limits::value_bits(fixed)? }),
    }
}

/// Rounds of an exact search without bounds: the magnitude round, then the
/// refinements of its widest bucket.
fn magnitude_search_rounds(fixed: &FixedParams) -> Result<u32, StatsError> {
    let grid = first_search_grid(fixed, SEARCH_BUCKETS)?;
    let widest = grid.range_of(grid.buckets().saturating_sub(1));
    let (Some(lo), Some(hi)) = (widest.lo, widest.hi) else {
        return Err(StatsError::Inconsistent("a magnitude bucket without ends".into()));
    };
    let span = hi.checked_sub(lo).and_then(|s| s.checked_add(1)).ok_or(StatsError::ArithmeticOverflow("bucket"))?;
    Ok(1 + search_rounds(span, SEARCH_BUCKETS)?)
}

pub fn plan_shape(params: &QueryParams, fixed: &FixedParams) -> Result<PlanShape, StatsError> {
    let st = params.statistic;
    Ok(match st {
        Statistic::Count => PlanShape { max_rounds: 1, releases: 1 },
        Statistic::Sum | Statistic::Mean => PlanShape { max_rounds: 1, releases: 2 },
        Statistic::Variance | Statistic::Stddev => PlanShape { max_rounds: 1, releases: 3 },
        // disjoint buckets: parallel composition, each bucket at the full epsilon
        Statistic::Histogram => PlanShape { max_rounds: 1, releases: 1 },
        Statistic::Min | Statistic::Max | Statistic::Median | Statistic::Quantile => match fixed.bounds {
            // exact: rounds of 16 (128 take fewer); epsilon unused
            Some(_) if params.exact => {
                PlanShape { max_rounds: search_rounds(bounds_span(fixed)?, SEARCH_BUCKETS)?, releases: 1 }
            }
            // one release per round: its cells are disjoint (`noisy_search`)
            Some(_) => {
                let (_, rounds) = noisy_search(bounds_span(fixed)?)?;
                PlanShape { max_rounds: rounds, releases: u64::from(rounds) }
            }
            None if params.exact => PlanShape { max_rounds: magnitude_search_rounds(fixed)?, releases: 1 },
            None => return Err(StatsError::BoundsRequired),
        },
    })
}

/// Authority side: is `task` what round `round` of this query may ask relays
/// for? `previous` is the task of round `round - 1` (None for round 0): a
/// later search round must re-histogram exactly one bucket of the previous
/// round's grid, as the search itself would (`Grid::covering` of that
/// bucket), so a processor cannot steer relays to arbitrary grids.
pub fn check_task(
    params: &QueryParams,
    fixed: &FixedParams,
    round: u32,
    task: &RelayTask,
    previous: Option<&RelayTask>,
) -> Result<(), StatsError> {
    task.validate()?;
    let shape = plan_shape(params, fixed)?;
    let refuse = |why: String| Err(StatsError::ReleaseRefused(why));
    if round >= shape.max_rounds {
        return refuse(format!(
            "round {round} is beyond the {} rounds a {} query may take",
            shape.max_rounds, params.statistic
        ));
    }
    if (round == 0) != previous.is_none() {
        return refuse(format!("round {round} admitted out of order"));
    }
    let st = params.statistic;
    match task {
        RelayTask::Moments { sums, squares, sum_quantum, squares_quantum, .. } => {
            if (*sum_quantum, *squares_quantum) != moments_quanta(params, fixed)? {
                return refuse("the task's resolution differs from the query's".into());
            }
            if st.is_search() || st == Statistic::Histogram {
                return refuse(format!("a {st} query does not ask for sums"));
            }
            if *sums != st.needs_sum() || *squares != st.needs_squares() {
                return refuse(format!("a {st} query asks relays for exactly the moments it releases"));
            }
            limits::check_value_width(task, fixed)?;
        }
        RelayTask::Histogram { grid } => match st {
            Statistic::Histogram => {
                if *grid != Grid::Edges(fixed.edges.clone()) {
                    return refuse("histogram grid differs from the query's edges".into());
                }
            }
            s if s.is_search() => match previous {
                None => {
                    let widths = search_widths(params, fixed)?;
                    if !widths.iter().any(|b| first_search_grid(fixed, *b).is_ok_and(|first| first == *grid)) {
                        return refuse("the first search round must use the query's grid".into());
                    }
                }
                Some(RelayTask::Histogram { grid: prev }) => {
                    check_refinement(prev, grid, fixed.bounds, &search_widths(params, fixed)?)?
                }
                Some(_) => return refuse("a search round must follow a histogram round".into()),
            },
            _ => return refuse(format!("a {st} query does not ask for histograms")),
        },
    }
    Ok(())
}

/// `next` must be the refinement of one bucket of `prev` (cut to the
/// query's bounds) with more than one value, into one of `widths` buckets
/// (`search_widths`): what `search` asks for next.
pub fn check_refinement(
    prev: &Grid,
    next: &Grid,
    bounds: Option<(i128, i128)>,
    widths: &[u32],
) -> Result<(), StatsError> {
    let refuse = |why: &str| Err(StatsError::ReleaseRefused(why.to_string()));
    let Grid::Uniform { lo, .. } = next else {
        return refuse("search rounds after the first use uniform grids");
    };
    let Some(bucket) = prev.bucket_of(*lo) else {
        return refuse("the refined grid starts outside the previous round's grid");
    };
    match super::search::refinement_range(prev, bucket, bounds) {
        Some((blo, bhi))
            if blo < bhi && widths.iter().any(|b| Grid::covering(blo, bhi, *b).is_ok_and(|g| g == *next)) =>
        {
            Ok(())
        }
        _ => refuse("the refined grid is not the refinement of one bucket of the previous round"),
    }
}

/// With noise, the resolution of a released sum: the largest power of two at
/// most 1/16 of the noise scale t = sensitivity·share/epsilon (at least 1).
/// Rounding at that resolution costs far less accuracy than the noise does.
pub fn dp_quantum(sensitivity: u128, epsilon: Epsilon, share: u64) -> Result<u128, StatsError> {
    let (num, den) = laplace_scale(sensitivity, epsilon, share)?;
    let target = num / den.max(1) / 16;
    Ok(if target <= 1 { 1 } else { 1u128 << (127 - target.leading_zeros()) })
}

/// (sum quantum, squares quantum) of a moments query: 1 and 1 when exact.
pub fn moments_quanta(params: &QueryParams, fixed: &FixedParams) -> Result<(u128, u128), StatsError> {
    if params.exact {
        return Ok((1, 1));
    }
    let epsilon = params.epsilon.ok_or(StatsError::InvalidParameter { name: "epsilon", reason: "missing".into() })?;
    let share = plan_shape(params, fixed)?.releases;
    let b = max_abs_bound(fixed);
    let b2 = b.checked_mul(b).ok_or(StatsError::ArithmeticOverflow("bounds squared"))?;
    Ok((dp_quantum(b, epsilon, share)?, dp_quantum(b2, epsilon, share)?))
}

pub(crate) fn max_abs_bound(fixed: &FixedParams) -> u128 {
    fixed.bounds.map(|(lo, hi)| lo.unsigned_abs().max(hi.unsigned_abs())).unwrap_or(0)
}

/// Authority side: is `release` permitted for this round, and in which slot?
pub fn slot(
    params: &QueryParams,
    fixed: &FixedParams,
    task: &RelayTask,
    release: Release,
) -> Result<ReleaseSlot, StatsError> {
    let shape = plan_shape(params, fixed)?;
    let st = params.statistic;
    let refuse = |why: String| Err(StatsError::ReleaseRefused(why));
    let exact = params.exact;
    let (index, sensitivity) = match (task, release) {
        (RelayTask::Moments { .. }, Release::Count) => (0, 1),
        // in quantized units: one row moves a quantized sum by at most ceil(B/q) + 1
        (RelayTask::Moments { sums: true, sum_quantum, .. }, Release::Sum) if st.needs_sum() => {
            (1, max_abs_bound(fixed).div_ceil(*sum_quantum).saturating_add(1))
        }
        (RelayTask::Moments { squares: true, squares_quantum, .. }, Release::Squares) => {
            let b = max_abs_bound(fixed);
            (
                2,
                b.checked_mul(b)
                    .ok_or(StatsError::ArithmeticOverflow("sensitivity"))?
                    .div_ceil(*squares_quantum)
                    .saturating_add(1),
            )
        }
        (RelayTask::Moments { sums: true, .. }, Release::SumLimb(k))
            if exact && st.needs_sum() && k < task.moment_limbs()?.0 =>
        {
            (16 + k, 0)
        }
        (RelayTask::Moments { squares: true, .. }, Release::SquaresLimb(k)) if exact && k < task.moment_limbs()?.1 => {
            (64 + k, 0)
        }
        // a noisy search releases a partition of the column, each cell
        // once: below the grid (the prefix at cut 0), each bucket, at or
        // above the grid's end (the suffix at its last cut); never a total
        // nor a count across cells (`noisy_search`)
        (RelayTask::Histogram { .. }, Release::HistPrefix(0)) if st.is_search() && !exact => (0, 1),
        (RelayTask::Histogram { grid }, Release::HistSuffix(n)) if st.is_search() && !exact && n == grid.buckets() => {
            (SUFFIX_SLOTS + n, 1)
        }
        (RelayTask::Histogram { grid }, Release::HistBucket(k))
            if (st == Statistic::Histogram || (st.is_search() && !exact)) && k < grid.buckets() =>
        {
            (1 + k, 1)
        }
        (RelayTask::Histogram { .. }, Release::HistTotal) if st == Statistic::Histogram || exact => (0, 1),
        (RelayTask::Histogram { grid }, Release::HistPrefix(n))
            if st.is_search() && exact && n > 0 && n < grid.buckets() =>
        {
            (1 + n, 1)
        }
        // suffix counts in slots of their own: a cut's prefix and suffix are
        // two releases
        (RelayTask::Histogram { grid }, Release::HistSuffix(n))
            if st.is_search() && exact && n > 0 && n < grid.buckets() =>
        {
            (SUFFIX_SLOTS + n, 1)
        }
        (_, r) => {
            return refuse(format!("{r:?} is not part of a {}{} query's plan", if exact { "exact " } else { "" }, st))
        }
    };
    Ok(ReleaseSlot { index, sensitivity, share: shape.releases })
}

/// The releases a one-round plan (every statistic but the searches) makes
/// of its round: what the processor's `Planner::round_ready` asks for, so an
/// authority knows when such a query is over. `None` for a search, whose
/// releases follow from what the earlier ones revealed.
pub fn planned_releases(params: &QueryParams, task: &RelayTask) -> Result<Option<Vec<Release>>, StatsError> {
    if params.statistic.is_search() {
        return Ok(None);
    }
    Ok(Some(match task {
        RelayTask::Moments { sums, squares, .. } => {
            let (s, q) = task.moment_limbs()?;
            let mut releases = vec![Release::Count];
            for (asked, count, whole, limb) in [
                (*sums, s, Release::Sum, Release::SumLimb as fn(u32) -> Release),
                (*squares, q, Release::Squares, Release::SquaresLimb as fn(u32) -> Release),
            ] {
                if asked && params.exact {
                    releases.extend((0..count).map(limb));
                } else if asked {
                    releases.push(whole);
                }
            }
            releases
        }
        RelayTask::Histogram { grid } => (0..grid.buckets()).map(Release::HistBucket).collect(),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `ends_within` is `search_rounds(..) <= rounds`, without divisions.
    #[test]
    fn ends_within_agrees_with_search_rounds() {
        let spans =
            (1..=300i128).chain([4096, 4097, 1_000_001, 3_000_001, 10_000_001, 1 << 32, (1 << 56) + 1, 1 << 60]);
        for span in spans {
            for buckets in [2u32, 3, 7, 8, 15, 16, 17, 24, 100, 128, 255, 256] {
                let taken = search_rounds(span, buckets).unwrap();
                for rounds in 1..=9 {
                    assert_eq!(ends_within(span, buckets, rounds), taken <= rounds, "{span} by {buckets} in {rounds}");
                }
            }
        }
    }

    #[test]
    fn rounds_and_shapes() {
        let rounds = |span| search_rounds(span, SEARCH_BUCKETS).unwrap();
        assert_eq!(rounds(1), 1);
        assert_eq!(rounds(16), 1);
        assert_eq!(rounds(17), 2);
        assert_eq!(rounds(256), 2);
        assert_eq!(rounds(257), 3);
        assert_eq!(rounds(1_000_001), 5);
        // noisy searches: (buckets, rounds) minimising (B + 2)·R², R ≤ 7
        assert_eq!(noisy_search(1_000_001).unwrap(), (16, 5));
        assert_eq!(noisy_search(1 << 32).unwrap(), (24, 7));
        assert_eq!(noisy_search(10_000_001).unwrap(), (15, 6));
        assert_eq!(noisy_search(4096).unwrap(), (8, 4));
        assert_eq!(noisy_search(1).unwrap().1, 1);
        // wider than 256^7: 256 buckets, as many rounds as it takes
        assert_eq!(noisy_search(1 << 60).unwrap(), (256, 8));
        let mut p = QueryParams::new(Statistic::Median);
        p.exact = false;
        p.epsilon = Some(crate::stats::Epsilon(1_000_000));
        p.bounds = Some(("0".into(), "4095".into()));
        let f = p.fixed(0).unwrap();
        // one share of epsilon per round
        assert_eq!(plan_shape(&p, &f).unwrap(), PlanShape { max_rounds: 4, releases: 4 });
        assert_eq!(search_widths(&p, &f).unwrap(), vec![8]);
        p.exact = true;
        assert_eq!(plan_shape(&p, &f).unwrap().max_rounds, 3);
        assert_eq!(search_widths(&p, &f).unwrap(), vec![SEARCH_BUCKETS, WIDE_SEARCH_BUCKETS]);
    }

    /// A noisy search never takes more rounds than its plan, and the value
    /// that needs them all exists; every release it asks for is a slot the
    /// authorities permit, each once a round, and the cells of a round
    /// count every value once (a partition: sensitivity 1).
    #[test]
    fn a_noisy_search_takes_the_rounds_its_plan_reserves_and_releases_a_partition() {
        use crate::stats::search::{QuantileSearch, SearchStep};
        for (lo, hi) in [(0i128, 4095i128), (0, 1_000_000), (-20, 900), (0, 3_000_000), (5, 5), (0, 1)] {
            let mut p = QueryParams::new(Statistic::Quantile);
            p.exact = false;
            p.epsilon = Some(crate::stats::Epsilon(1_000_000));
            p.bounds = Some((lo.to_string(), hi.to_string()));
            let f = p.fixed(0).unwrap();
            let shape = plan_shape(&p, &f).unwrap();
            let buckets = search_widths(&p, &f).unwrap()[0];
            let mut most = 0;
            for (k, q) in (0..=8).flat_map(|k| [(k, (1, 2)), (k, (9, 10))]) {
                let value = lo + (hi - lo) * k / 8;
                let mut grid = first_search_grid(&f, buckets).unwrap();
                let mut s = QuantileSearch::within(q, grid.clone(), Some((lo, hi))).with_buckets(buckets);
                let mut step = s.start_round().unwrap();
                let mut previous: Option<RelayTask> = None;
                let mut round = 0u32;
                loop {
                    match step {
                        SearchStep::Release(rs) => {
                            let task = RelayTask::Histogram { grid: grid.clone() };
                            check_task(&p, &f, round, &task, previous.as_ref()).unwrap();
                            let mut slots: Vec<u32> =
                                rs.iter().map(|r| slot(&p, &f, &task, *r).unwrap().index).collect();
                            slots.sort_unstable();
                            slots.dedup();
                            assert_eq!(slots.len(), rs.len(), "each slot once");
                            // the one value is in exactly one cell
                            let first = grid.range_of(0).lo.unwrap();
                            let end = grid.range_of(grid.buckets() - 1).hi.unwrap();
                            let vs: Vec<_> = rs
                                .iter()
                                .map(|r| match r {
                                    Release::HistPrefix(0) => (*r, i128::from(value < first)),
                                    Release::HistSuffix(_) => (*r, i128::from(value > end)),
                                    Release::HistBucket(b) => (*r, i128::from(grid.bucket_of(value) == Some(*b))),
                                    other => panic!("{other:?}"),
                                })
                                .collect();
                            assert_eq!(vs.iter().map(|v| v.1).sum::<i128>(), 1, "{vs:?}");
                            step = s.released(&vs).unwrap();
                        }
                        SearchStep::NextRound(g) => {
                            previous = Some(RelayTask::Histogram { grid: grid.clone() });
                            grid = g;
                            round += 1;
                            step = s.start_round().unwrap();
                        }
                        SearchStep::Done { value: found, .. } => {
                            assert_eq!(found, value);
                            break;
                        }
                    }
                }
                assert!(round < shape.max_rounds, "{lo}..={hi} at {value}: {} rounds", round + 1);
                most = most.max(round + 1);
            }
            assert_eq!(most, shape.max_rounds, "{lo}..={hi}: the plan reserves what a search can take");
        }
    }

    /// A noisy search's round permits its cells only: no total, no count
    /// across cells, no cut of the exact search's.
    #[test]
    fn a_noisy_search_round_permits_its_cells_only() {
        let mut p = QueryParams::new(Statistic::Median);
        p.exact = false;
        p.epsilon = Some(crate::stats::Epsilon(1_000_000));
        p.bounds = Some(("0".into(), "4095".into()));
        let f = p.fixed(0).unwrap();
        let grid = first_search_grid(&f, 8).unwrap();
        let task = RelayTask::Histogram { grid };
        for ok in [Release::HistPrefix(0), Release::HistBucket(0), Release::HistBucket(7), Release::HistSuffix(8)] {
            assert_eq!(slot(&p, &f, &task, ok).unwrap().share, 4, "{ok:?}");
        }
        for refused in [
            Release::HistTotal,
            Release::HistPrefix(1),
            Release::HistPrefix(7),
            Release::HistSuffix(1),
            Release::HistSuffix(0),
            Release::HistSuffix(9),
            Release::HistBucket(8),
            Release::Count,
        ] {
            let why = slot(&p, &f, &task, refused).unwrap_err().to_string();
            assert!(why.contains("is not part of a median query's plan"), "{refused:?}: {why}");
        }
        // 16-bucket grids are the exact search's: refused for this noisy one
        let sixteen = RelayTask::Histogram { grid: first_search_grid(&f, SEARCH_BUCKETS).unwrap() };
        assert!(check_task(&p, &f, 0, &sixteen, None).is_err());
        check_task(&p, &f, 0, &task, None).unwrap();
    }

    #[test]
    fn later_search_rounds_refine_one_bucket_of_the_previous_grid() {
        let mut p = QueryParams::new(Statistic::Max);
        p.bounds = Some(("-20".into(), "900".into()));
        let f = p.fixed(0).unwrap();
        let first = RelayTask::Histogram { grid: first_search_grid(&f, SEARCH_BUCKETS).unwrap() };
        check_task(&p, &f, 0, &first, None).unwrap();
        let RelayTask::Histogram { grid } = &first else { unreachable!() };
        // every bucket's refinement is admitted, including the last one that
        // reaches past the upper bound (DP max used to be refused there)
        for b in 0..grid.buckets() {
            let (lo, hi) = crate::stats::search::refinement_range(grid, b, f.bounds).unwrap();
            assert!(hi <= 900, "refinements stay inside the bounds");
            let next = Grid::covering(lo, hi, SEARCH_BUCKETS).unwrap();
            check_task(&p, &f, 1, &RelayTask::Histogram { grid: next }, Some(&first)).unwrap();
        }
        // the last bucket's refinement reaching past the upper bound is refused
        let last = grid.buckets() - 1;
        let r = grid.range_of(last);
        assert!(r.hi.unwrap() > 900);
        let past = Grid::covering(r.lo.unwrap(), r.hi.unwrap(), SEARCH_BUCKETS).unwrap();
        assert!(check_task(&p, &f, 1, &RelayTask::Histogram { grid: past }, Some(&first)).is_err());
        let arbitrary = Grid::Uniform { lo: 0, width: 1, buckets: 64 };
        assert!(check_task(&p, &f, 1, &RelayTask::Histogram { grid: arbitrary }, Some(&first)).is_err());
        let shifted = Grid::Uniform { lo: -19, width: 1, buckets: 15 };
        assert!(check_task(&p, &f, 1, &RelayTask::Histogram { grid: shifted }, Some(&first)).is_err());
    }

    #[test]
    fn authority_refuses_what_the_plan_does_not_contain() {
        let p = QueryParams::new(Statistic::Mean);
        let f = p.fixed(0).unwrap();
        let task = RelayTask::exact_moments(20, true, false);
        // no bounds, 0 decimals: |v| < 2^47, so Σv takes ceil((32 + 47) / 20) = 4 limbs
        assert_eq!(limits::value_bits(&f).unwrap(), 47);
        assert_eq!(task.moment_limbs().unwrap(), (4, 0));
        check_task(&p, &f, 0, &task, None).unwrap();
        assert!(check_task(&p, &f, 1, &task, Some(&task)).is_err(), "second round");
        assert!(check_task(&p, &f, 0, &task, Some(&task)).is_err(), "round 0 after another");
        let squares = RelayTask::exact_moments(20, true, true);
        assert!(check_task(&p, &f, 0, &squares, None).is_err());
        let no_sums = RelayTask::exact_moments(20, false, false);
        assert!(check_task(&p, &f, 0, &no_sums, None).is_err(), "a mean needs its sums");
        let count = QueryParams::new(Statistic::Count);
        check_task(&count, &count.fixed(0).unwrap(), 0, &no_sums, None).unwrap();
        assert!(check_task(&count, &count.fixed(0).unwrap(), 0, &task, None).is_err(), "a count encrypts no sums");
        assert!(check_task(&p, &f, 0, &RelayTask::Histogram { grid: Grid::Magnitude { bits: 47 } }, None).is_err());
        slot(&p, &f, &task, Release::Count).unwrap();
        slot(&p, &f, &task, Release::SumLimb(3)).unwrap();
        assert!(slot(&p, &f, &task, Release::SumLimb(7)).is_err());
        assert!(slot(&p, &f, &task, Release::SquaresLimb(0)).is_err());
        assert!(slot(&p, &f, &task, Release::HistBucket(0)).is_err());
        let mut dp = p.clone();
        dp.exact = false;
        dp.epsilon = Some(crate::stats::Epsilon(1_000_000));
        dp.bounds = Some(("-5".into(), "3".into()));
        let df = dp.fixed(0).unwrap();
        assert!(slot(&dp, &df, &task, Release::SumLimb(0)).is_err(), "limbs only in exact mode");
        // noise scales 5*2/1 = 10 (sum: below 16 quanta) and 25*2/1 = 50 (squares: 2^1)
        assert_eq!(moments_quanta(&dp, &df).unwrap(), (1, 2));
        assert!(check_task(&dp, &df, 0, &task, None).is_err(), "wrong resolution");
        let dp_task = RelayTask::Moments {
            limb_bits: 20,
            value_bits: 3,
            sums: true,
            squares: false,
            sum_quantum: 1,
            squares_quantum: 2,
        };
        assert!(check_task(&dp, &df, 0, &dp_task, None).is_ok());
        // the value width follows the bounds (|-5| < 2^3), nothing else
        for wrong in [2, 4, 47] {
            let mut t = dp_task.clone();
            if let RelayTask::Moments { value_bits, .. } = &mut t {
                *value_bits = wrong;
            }
            let refused = check_task(&dp, &df, 0, &t, None).unwrap_err().to_string();
            assert!(refused.contains("value width"), "{refused}");
        }
        assert_eq!(slot(&dp, &df, &dp_task, Release::Sum).unwrap(), ReleaseSlot { index: 1, sensitivity: 6, share: 2 });
        // large bounds: resolution about 1/16 of the noise scale, a power of two
        dp.bounds = Some(("0".into(), "3000000".into()));
        let df = dp.fixed(0).unwrap();
        let (qs, qq) = moments_quanta(&dp, &df).unwrap();
        assert_eq!(qs, 1 << 18); // t = 3e6 * 2 / 1 = 6e6, /16 = 375000 -> 2^18
        assert!(
            qq.is_power_of_two() && qq <= 9_000_000_000_000u128 * 2 / 16 && qq * 2 > 9_000_000_000_000u128 * 2 / 16
        );
    }

    /// An authority ends a one-round query when every release the plan
    /// makes was answered: the list must be what the planner asks for.
    #[test]
    fn planned_releases_are_what_the_planner_asks_for() {
        use crate::stats::{PlanStep, Planner};
        for statistic in Statistic::ALL {
            for exact in [true, false] {
                let mut p = QueryParams::new(statistic);
                if !exact {
                    p.exact = false;
                    p.epsilon = Some(Epsilon(1_000_000));
                    p.bounds = Some(("0".into(), "1000".into()));
                }
                if statistic == Statistic::Histogram {
                    p.edges = vec!["10".into(), "100".into()];
                }
                if statistic == Statistic::Quantile {
                    p.quantile = Some("0.5".into());
                }
                let mut planner = Planner::new(p.clone(), 0, 20).unwrap();
                let PlanStep::Round { task, .. } = planner.start().unwrap() else { panic!("{statistic}: no round") };
                let planned = planned_releases(&p, &task).unwrap();
                if statistic.is_search() {
                    assert_eq!(planned, None, "{statistic}");
                    continue;
                }
                let PlanStep::Releases { releases, .. } = planner.round_ready().unwrap() else {
                    panic!("{statistic}: no releases")
                };
                assert_eq!(planned.as_ref(), Some(&releases), "{statistic} exact {exact}");
                let fixed = p.fixed(0).unwrap();
                assert!(releases.iter().all(|r| slot(&p, &fixed, &task, *r).is_ok()), "{statistic} exact {exact}");
            }
        }
    }
}
