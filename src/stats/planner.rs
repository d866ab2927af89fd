//! The processor side of every statistic: a state machine that asks for
//! rounds of relay contributions and for releases (decryptions) until the
//! result is known, then computes it exactly from the released integers.
//!
//! Driven by `protocol::processor`, which aggregates contributions, obtains
//! the partial decryptions and solves the discrete logs. No I/O, no keys.
//!
//! Releases per query: count 1; sum and mean 1 + S; variance and stddev
//! 1 + S + Q (S and Q limbs of Σv and Σv², `limbs::moment_limbs` for the
//! query's value width, exact mode; 1 + 1 + 1 with noise);
//! histogram one per bucket; quantile searches see `search`.

use std::collections::BTreeMap;

use super::contribution::RelayTask;
use super::dp::Epsilon;
use super::error::StatsError;
use super::fixed::{format_fixed, pow10};
use super::grid::Grid;
use super::limbs;
use super::limits;
use super::policy::{
    first_search_grid, max_abs_bound, moments_quanta, plan_shape, planned_releases, search_widths, SEARCH_BUCKETS,
};
use super::release::Release;
use super::result::{reduce, ExactValue, HistogramBucket, StatResult};
use super::search::{QuantileSearch, SearchStep};
use super::statistic::{FixedParams, QueryParams, Statistic};
use super::uncertainty::{quantile_interval, release_variance, release_z95, Uncertainty};

#[derive(Clone, Debug, PartialEq)]
pub enum PlanStep {
    /// Ask every relay for a contribution to this task.
    Round {
        round: u32,
        task: RelayTask,
    },
    /// Decrypt these releases of the current round (independent of each other).
    Releases {
        round: u32,
        releases: Vec<Release>,
    },
    Done(StatResult),
}

enum State {
    Fresh,
    Moments,
    Histogram,
    Search(Box<QuantileSearch>),
    Finished,
}

pub struct Planner {
    params: QueryParams,
    fixed: FixedParams,
    limb_bits: u32,
    /// authorities adding noise to each release (for the answer's uncertainty)
    noise_sources: u32,
    /// buckets of a search round (`with_search_buckets`)
    search_buckets: u32,
    round: u32,
    task: Option<RelayTask>,
    state: State,
}

impl Planner {
    /// `decimals`: the column's common scale; `limb_bits`: the widest limb
    /// that keeps an aggregated limb inside the processor's discrete-log
    /// range. A moments task uses the narrowest width that needs no more
    /// limbs (`limbs::balanced_limb_bits`).
    pub fn new(params: QueryParams, decimals: u32, limb_bits: u32) -> Result<Self, StatsError> {
        params.validate()?;
        limbs::limb_count(limb_bits)?;
        let fixed = params.fixed(decimals)?;
        Ok(Planner {
            params,
            fixed,
            limb_bits,
            noise_sources: 1,
            search_buckets: SEARCH_BUCKETS,
            round: 0,
            task: None,
            state: State::Fresh,
        })
    }

    /// Exact searches in rounds of `buckets` buckets (one of
    /// `policy::search_widths`; default `SEARCH_BUCKETS`). A noisy search
    /// takes the one width its bounds give (`policy::noisy_search`).
    pub fn with_search_buckets(mut self, buckets: u32) -> Self {
        self.search_buckets = buckets;
        self
    }

    /// How many authorities add noise to each release (default 1).
    pub fn with_noise_sources(mut self, authorities: u32) -> Self {
        self.noise_sources = authorities.max(1);
        self
    }

    /// (epsilon, releases the epsilon is split over) of a noisy query.
    fn noise(&self) -> Result<Option<(Epsilon, u64)>, StatsError> {
        if self.params.exact {
            return Ok(None);
        }
        let epsilon =
            self.params.epsilon.ok_or(StatsError::InvalidParameter { name: "epsilon", reason: "missing".into() })?;
        Ok(Some((epsilon, plan_shape(&self.params, &self.fixed)?.releases)))
    }

    /// Stddev and 95% interval of a noisy moments answer (delta method).
    fn moments_uncertainty(&self, n: i128, s: i128, q: i128) -> Result<Option<Uncertainty>, StatsError> {
        let Some((epsilon, k)) = self.noise()? else { return Ok(None) };
        let a = self.noise_sources;
        let (qs, qq) = moments_quanta(&self.params, &self.fixed)?;
        let b = max_abs_bound(&self.fixed);
        // display-only floats from here on
        let (nf, sf, qf) = (n as f64, s as f64, q as f64);
        let rows = nf.max(0.0);
        let var_n = release_variance(1, epsilon, k, a)?;
        let noisy_sum = |quantum: u128, sensitivity: u128| -> Result<f64, StatsError> {
            let qf = quantum as f64;
            // release noise in quanta, plus stochastic rounding (at most q^2/4 a row)
            Ok(release_variance(sensitivity, epsilon, k, a)? * qf * qf
                + if quantum > 1 { rows * qf * qf / 4.0 } else { 0.0 })
        };
        let sum_sensitivity = b.div_ceil(qs).saturating_add(1);
        let var_s = noisy_sum(qs, sum_sensitivity)?;
        let scale = 10f64.powi(i32::try_from(self.fixed.decimals).unwrap_or(0));
        let st = self.params.statistic;
        // the 95% multiplier of the release that dominates the answer's noise
        let (value, var, z) = match st {
            Statistic::Count => (nf, var_n, release_z95(1, epsilon, k, a)?),
            Statistic::Sum => (sf / scale, var_s / (scale * scale), release_z95(sum_sensitivity, epsilon, k, a)?),
            Statistic::Mean => {
                let n2 = nf * nf;
                (
                    sf / nf / scale,
                    (var_s / n2 + sf * sf * var_n / (n2 * n2)) / (scale * scale),
                    release_z95(sum_sensitivity, epsilon, k, a)?,
                )
            }
            Statistic::Variance | Statistic::Stddev => {
                let squares_sensitivity = b.saturating_mul(b).div_ceil(qq).saturating_add(1);
                let z = release_z95(squares_sensitivity, epsilon, k, a)?;
                let var_q = noisy_sum(qq, squares_sensitivity)?;
                let v = qf / nf - (sf / nf).powi(2);
                let d_q = 1.0 / nf;
                let d_s = -2.0 * sf / (nf * nf);
                let d_n = -qf / (nf * nf) + 2.0 * sf * sf / (nf * nf * nf);
                let mut var_v = d_q * d_q * var_q + d_s * d_s * var_s + d_n * d_n * var_n;
                let mut v = v;
                if self.params.sample && nf > 1.0 {
                    let f = nf / (nf - 1.0);
                    v *= f;
                    var_v *= f * f;
                }
                let s4 = scale.powi(4);
                if st == Statistic::Variance {
                    (v / (scale * scale), var_v / s4, z)
                } else {
                    let sd = v.max(0.0).sqrt();
                    let var_sd = if sd > 0.0 { var_v / (4.0 * v) } else { var_v.sqrt() };
                    (sd / scale, var_sd / (scale * scale), z)
                }
            }
            _ => return Ok(None),
        };
        let mut u = Uncertainty::around(value, var.max(0.0).sqrt(), z);
        // post-processing: an interval never leaves what the answer can be
        let floor = match st {
            Statistic::Count | Statistic::Variance | Statistic::Stddev => Some(0.0),
            _ => None,
        };
        if let Some(floor) = floor {
            u.ci95.0 = u.ci95.0.max(floor).min(value);
        }
        if let (Statistic::Mean, Some((lo, hi))) = (st, self.fixed.bounds) {
            // still containing the (noisy) answer itself
            u.ci95 = (u.ci95.0.max(lo as f64 / scale).min(value), u.ci95.1.min(hi as f64 / scale).max(value));
        }
        Ok(Some(u))
    }

    /// (rounds started so far, most rounds the plan may take).
    pub fn progress(&self) -> Result<(u32, u32), StatsError> {
        let started = if matches!(self.state, State::Fresh) { 0 } else { self.round.saturating_add(1) };
        Ok((started, plan_shape(&self.params, &self.fixed)?.max_rounds))
    }

    pub fn params(&self) -> &QueryParams {
        &self.params
    }

    pub fn fixed(&self) -> &FixedParams {
        &self.fixed
    }

    /// The task of the current round.
    pub fn task(&self) -> Option<&RelayTask> {
        self.task.as_ref()
    }

    fn round_step(&mut self, task: RelayTask) -> PlanStep {
        self.task = Some(task.clone());
        PlanStep::Round { round: self.round, task }
    }

    pub fn start(&mut self) -> Result<PlanStep, StatsError> {
        if !matches!(self.state, State::Fresh) {
            return Err(StatsError::UnexpectedInput("plan already started".into()));
        }
        let st = self.params.statistic;
        let task = if st.is_search() {
            let buckets = if self.params.exact {
                self.search_buckets
            } else {
                search_widths(&self.params, &self.fixed)?.first().copied().unwrap_or(SEARCH_BUCKETS)
            };
            let mut search = QuantileSearch::within(
                self.fixed.quantile.unwrap_or((1, 2)),
                first_search_grid(&self.fixed, buckets)?,
                self.fixed.bounds,
            )
            .with_buckets(buckets);
            if self.params.exact {
                search = search.exact();
            }
            let grid = search.grid().clone();
            self.state = State::Search(Box::new(search));
            RelayTask::Histogram { grid }
        } else if st == Statistic::Histogram {
            self.state = State::Histogram;
            RelayTask::Histogram { grid: Grid::Edges(self.fixed.edges.clone()) }
        } else {
            self.state = State::Moments;
            let (sum_quantum, squares_quantum) = moments_quanta(&self.params, &self.fixed)?;
            let value_bits = limits::value_bits(&self.fixed)?;
            let (sums, squares) = (st.needs_sum(), st.needs_squares());
            RelayTask::Moments {
                limb_bits: limbs::balanced_limb_bits(value_bits, self.limb_bits, sums, squares)?,
                value_bits,
                sums,
                squares,
                sum_quantum,
                squares_quantum,
            }
        };
        Ok(self.round_step(task))
    }

    /// The current round's contributions are aggregated: what to release.
    pub fn round_ready(&mut self) -> Result<PlanStep, StatsError> {
        let round = self.round;
        let releases = match &mut self.state {
            // what the authorities expect of a one-round plan, from the same function
            State::Moments | State::Histogram => {
                let task =
                    self.task.as_ref().ok_or_else(|| StatsError::UnexpectedInput("no round in progress".into()))?;
                planned_releases(&self.params, task)?
                    .ok_or_else(|| StatsError::Inconsistent("a one-round plan without planned releases".into()))?
            }
            State::Search(_) => return self.search_step_start(),
            State::Fresh | State::Finished => return Err(StatsError::UnexpectedInput("no round in progress".into())),
        };
        Ok(PlanStep::Releases { round, releases })
    }

    fn search_step_start(&mut self) -> Result<PlanStep, StatsError> {
        let State::Search(search) = &mut self.state else {
            return Err(StatsError::UnexpectedInput("not a search".into()));
        };
        let step = search.start_round()?;
        self.search_step(step)
    }

    fn search_step(&mut self, step: SearchStep) -> Result<PlanStep, StatsError> {
        match step {
            SearchStep::Release(releases) => Ok(PlanStep::Releases { round: self.round, releases }),
            SearchStep::NextRound(grid) => {
                self.round += 1;
                Ok(self.round_step(RelayTask::Histogram { grid }))
            }
            SearchStep::Done { value, count } => {
                let uncertainty = match (&self.state, self.noise()?, self.fixed.bounds) {
                    (State::Search(search), Some((epsilon, k)), Some(bounds)) => {
                        let cell_sd = release_variance(1, epsilon, k, self.noise_sources)?.sqrt();
                        let z = release_z95(1, epsilon, k, self.noise_sources)?;
                        let (num, den) = self.fixed.quantile.unwrap_or((1, 2));
                        // display-only float: the level is public
                        let p = num as f64 / den.max(1) as f64;
                        let rounds = search.round().saturating_add(1);
                        let (lo, hi) = quantile_interval(value, search.points(), (p, rounds), cell_sd * z, bounds);
                        let scale = 10f64.powi(i32::try_from(self.fixed.decimals).unwrap_or(0));
                        // display-only floats
                        let (lo, hi) = (lo as f64 / scale, hi as f64 / scale);
                        Some(Uncertainty { stddev: (hi - lo) / (2.0 * z), ci95: (lo, hi) })
                    }
                    _ => None,
                };
                self.state = State::Finished;
                Ok(PlanStep::Done(StatResult {
                    statistic: self.params.statistic,
                    value: ExactValue::Fixed { mantissa: value, decimals: self.fixed.decimals },
                    count,
                    decimals: self.fixed.decimals,
                    uncertainty,
                }))
            }
        }
    }

    /// Feeds the plaintexts of the releases asked for.
    pub fn released(&mut self, values: &[(Release, i64)]) -> Result<PlanStep, StatsError> {
        let map: BTreeMap<Release, i128> = values.iter().map(|(r, v)| (*r, i128::from(*v))).collect();
        match &mut self.state {
            State::Search(search) => {
                let values: Vec<(Release, i128)> = values.iter().map(|(r, v)| (*r, i128::from(*v))).collect();
                let step = search.released(&values)?;
                self.search_step(step)
            }
            State::Moments => {
                let result = self.moments_result(&map)?;
                self.state = State::Finished;
                Ok(PlanStep::Done(result))
            }
            State::Histogram => {
                let result = self.histogram_result(&map)?;
                self.state = State::Finished;
                Ok(PlanStep::Done(result))
            }
            State::Fresh | State::Finished => Err(StatsError::UnexpectedInput("no release was asked for".into())),
        }
    }

    fn get(map: &BTreeMap<Release, i128>, r: Release) -> Result<i128, StatsError> {
        map.get(&r).copied().ok_or_else(|| StatsError::UnexpectedInput(format!("missing release {r:?}")))
    }

    fn combined(
        &self,
        map: &BTreeMap<Release, i128>,
        whole: Release,
        limb: fn(u32) -> Release,
    ) -> Result<i128, StatsError> {
        if !self.params.exact {
            let (qs, qq) = moments_quanta(&self.params, &self.fixed)?;
            let q = if whole == Release::Squares { qq } else { qs };
            let q = i128::try_from(q).map_err(|_| StatsError::ArithmeticOverflow("quantum"))?;
            return Self::get(map, whole)?.checked_mul(q).ok_or(StatsError::ArithmeticOverflow("noisy sum"));
        }
        let task = self.task.as_ref().ok_or_else(|| StatsError::UnexpectedInput("no round in progress".into()))?;
        let (s, q) = task.moment_limbs()?;
        let RelayTask::Moments { limb_bits, .. } = task else {
            return Err(StatsError::UnexpectedInput("limbs of a task without moments".into()));
        };
        let parts = (0..if whole == Release::Squares { q } else { s })
            .map(|k| {
                Self::get(map, limb(k))
                    .and_then(|v| i64::try_from(v).map_err(|_| StatsError::ArithmeticOverflow("limb")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        limbs::recombine(&parts, *limb_bits)
    }

    fn moments_result(&self, map: &BTreeMap<Release, i128>) -> Result<StatResult, StatsError> {
        let st = self.params.statistic;
        let d = self.fixed.decimals;
        let n = Self::get(map, Release::Count)?;
        let overflow = |what| StatsError::ArithmeticOverflow(what);
        // Σv and Σv², recombined once (0 where the statistic releases none)
        let s = if st.needs_sum() { self.combined(map, Release::Sum, Release::SumLimb)? } else { 0 };
        let q = if st.needs_squares() { self.combined(map, Release::Squares, Release::SquaresLimb)? } else { 0 };
        let value = match st {
            Statistic::Count => ExactValue::Fixed { mantissa: n, decimals: 0 },
            Statistic::Sum => ExactValue::Fixed { mantissa: s, decimals: d },
            Statistic::Mean => {
                if n <= 0 {
                    return Err(StatsError::NoData { blank: 0 });
                }
                let den = n.checked_mul(pow10(d)?).ok_or(overflow("mean"))?;
                let (num, den) = reduce(s, den)?;
                ExactValue::Ratio { num, den }
            }
            Statistic::Variance | Statistic::Stddev => {
                let min_n = if self.params.sample { 2 } else { 1 };
                if n < min_n {
                    return Err(StatsError::NoData { blank: 0 });
                }
                let nq = n.checked_mul(q).ok_or(overflow("variance: n x sum of squares"))?;
                let s2 = s.checked_mul(s).ok_or(overflow("variance: sum squared"))?;
                let num = nq.checked_sub(s2).ok_or(overflow("variance"))?.max(0);
                let div = if self.params.sample { n.checked_mul(n - 1) } else { n.checked_mul(n) }
                    .ok_or(overflow("variance"))?;
                let (num, div) = reduce(num, div)?;
                let den = div
                    .checked_mul(pow10(d.checked_mul(2).ok_or(overflow("decimals"))?)?)
                    .ok_or(overflow("variance"))?;
                let (num, den) = reduce(num, den)?;
                if st == Statistic::Variance {
                    ExactValue::Ratio { num, den }
                } else {
                    ExactValue::SqrtRatio { num, den }
                }
            }
            _ => return Err(StatsError::UnexpectedInput(format!("{st} is not a moments statistic"))),
        };
        let uncertainty = if n > 0 { self.moments_uncertainty(n, s, q)? } else { None };
        Ok(StatResult { statistic: st, value, count: n, decimals: d, uncertainty })
    }

    fn histogram_result(&self, map: &BTreeMap<Release, i128>) -> Result<StatResult, StatsError> {
        let d = self.fixed.decimals;
        let edges = &self.fixed.edges;
        let mut buckets = Vec::with_capacity(edges.len() + 1);
        let mut total: i128 = 0;
        for k in 0..=edges.len() {
            let count = Self::get(
                map,
                Release::HistBucket(u32::try_from(k).map_err(|_| StatsError::ArithmeticOverflow("edges"))?),
            )?;
            total = total.checked_add(count).ok_or(StatsError::ArithmeticOverflow("histogram"))?;
            let lo = k.checked_sub(1).and_then(|i| edges.get(i)).map(|e| format_fixed(*e, d));
            let hi = edges.get(k).map(|e| format_fixed(*e, d));
            buckets.push(HistogramBucket { lo, hi, count });
        }
        // each bucket: count ± its noise (parallel composition: the full epsilon each)
        let uncertainty = match self.noise()? {
            Some((epsilon, _)) => {
                let sd = release_variance(1, epsilon, 1, self.noise_sources)?.sqrt();
                let z = release_z95(1, epsilon, 1, self.noise_sources)?;
                Some(Uncertainty { stddev: sd, ci95: (-z * sd, z * sd) })
            }
            None => None,
        };
        Ok(StatResult {
            statistic: Statistic::Histogram,
            value: ExactValue::Histogram(buckets),
            count: total,
            decimals: d,
            uncertainty,
        })
    }
}
