//! Accuracy of differentially private medians and quantiles (issue 13): the
//! rank error of the p10, p50 (median) and p90 answers of whole noisy queries
//! at ε = 0.5, 1 and 2, over many seeded trials, for n = 414 (the demo
//! workbook's population column), 10^4 and 10^6 rows (seeded uniform and
//! Pareto-skewed integers).
//!
//! Rank error. For a column of n values, a level p and an answer a, the
//! target rank is r = max(1, ⌈p·n⌉) (1-based, what `quantile_rank` and the
//! search use), L = #{values < a} and U = #{values ≤ a}. The answer's rank
//! range is [L, U] and its rank error is the distance from r to that range:
//! max(0, L − r, r − U). The exact answer (the r-th smallest value) has
//! error 0; an answer with k values between it and the r-th value has error
//! about k. Reported per cell: the median, 90th percentile and maximum of
//! the error over the trials, in ranks and as a fraction of n, and how often
//! the answer's 95% interval holds the exact quantile.
//!
//! Every query runs the real pipeline in memory (`crux::harness`): 3 relays
//! each holding a third of the rows; a committee of 3 authorities with
//! t = n = 3, every one of which admits, verifies and adds its own full
//! discrete Laplace noise to every cell it releases, on the committed-share
//! path (`processor.share_path`, the default; the ElGamal path runs the
//! same search with the same noise per cell) (and, for comparison at
//! ε = 1, a committee of 1: the noise of a single trusted curator); the
//! processor's search; the wire encoding; `allow_exact: false` (DP mode) and
//! a budget large enough for every query. Each trial is a fresh cluster with
//! its own seed (noise, encryption and proofs are drawn from it, so a
//! trial's answers are reproducible) asking p10, p50 and p90 once each:
//! `TRIALS_SMALL` trials per cell for n ≤ 10^4, `TRIALS_LARGE` for 10^6.
//! Trials run on all cores, clusters never shared.
//!
//! The target of issue 13, "rank error under 1% of n at ε = 1 for
//! n ≥ 10^4", is checked per cell on the 90th percentile of the trials.
//!
//! Output: markdown tables on stdout, progress on stderr. Nothing here is
//! used by the crate. Run: `cargo bench --bench dp_accuracy` (about 7
//! minutes on 2 idle cores: a query costs 0.1-0.3 s of CPU whatever n, so
//! the trial counts, not n, set the time; it prints the queries' own time).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crux::actors::column_source::FileColumnSource;
use crux::crypto::{DlogSolver, MemoryTable};
use crux::data::{Shard, SourceSpec};
use crux::harness::{MemoryCluster, Options, Solver};
use crux::protocol::relay::{ColumnSource, ColumnValues, SourceError};
use crux::stats::statistic::{quantile_fraction, quantile_rank};
use crux::stats::uncertainty::release_variance;
use crux::stats::{Epsilon, ExactValue, QueryParams, Statistic};

/// Discrete-log table of 2^16 points, |m| < 2^22: every released count
/// (at most 10^6 plus noise) is solved in a few giant steps.
const TABLE_BITS: u32 = 16;
const RANGE_BITS: u32 = 22;
const RELAYS: usize = 3;
const EPSILONS: [&str; 3] = ["0.5", "1", "2"];
/// Quantile levels: 0.5 is asked as `median`, the others as `quantile`.
const LEVELS: [&str; 3] = ["0.1", "0.5", "0.9"];
/// Trials per cell for n ≤ 10^4, and for n = 10^6.
const TRIALS_SMALL: usize = 80;
const TRIALS_LARGE: usize = 40;
/// Budget of every authority: far more than all the trials spend.
const BUDGET: Epsilon = Epsilon(1_000_000 * Epsilon::MICROS);
/// The target: rank error under 1% of n at ε = 1 for n ≥ 10^4.
const TARGET_FRACTION: f64 = 0.01;
const TARGET_EPSILON: &str = "1";
const TARGET_MIN_ROWS: usize = 10_000;

// ------------------------------------------------------------------ data

/// One relay's part of a generated column (0 declared decimals).
struct Part {
    label: &'static str,
    values: Arc<Vec<i128>>,
}

impl ColumnSource for Part {
    fn column(&self, _labels: &[String]) -> Result<ColumnValues, SourceError> {
        Ok(ColumnValues { labels: vec![self.label.into()], decimals: 0, values: self.values.to_vec() })
    }

    fn declared_decimals(&self, _labels: &[String]) -> Option<u32> {
        Some(0)
    }
}

/// Where the relays read their rows.
enum Relays {
    /// relay j reads shard j of the file (as `crux-node init` splits the demo)
    File(SourceSpec),
    /// relay j holds part j
    Generated(&'static str, Vec<Arc<Vec<i128>>>),
}

struct Dataset {
    name: String,
    labels: Vec<String>,
    /// the whole column, sorted, at `decimals`
    sorted: Vec<i128>,
    decimals: u32,
    bounds: (&'static str, &'static str),
    relays: Relays,
    trials: usize,
}

impl Dataset {
    fn n(&self) -> usize {
        self.sorted.len()
    }

    /// Fresh column sources, one per relay.
    fn sources(&self) -> Vec<Box<dyn ColumnSource>> {
        match &self.relays {
            Relays::File(declared) => (0..RELAYS)
                .map(|j| {
                    let mut spec = declared.clone();
                    spec.shard = Some(Shard { index: u32::try_from(j).unwrap(), count: RELAYS as u32 });
                    Box::new(FileColumnSource::new(&format!("relay-{}", j + 1), vec![spec])) as Box<dyn ColumnSource>
                })
                .collect(),
            Relays::Generated(label, parts) => parts
                .iter()
                .map(|values| Box::new(Part { label, values: values.clone() }) as Box<dyn ColumnSource>)
                .collect(),
        }
    }
}

/// Uniform integers in [0, 10^6].
fn uniform(n: usize, seed: u64) -> Vec<i128> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(0..=1_000_000)).collect()
}

/// Pareto(alpha 1.16, x_min 50) integers capped at 10^7 (as benches/stats.rs):
/// mostly villages, a few cities; median about 91, p90 about 365.
fn pareto(n: usize, seed: u64) -> Vec<i128> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let u: f64 = rng.gen_range(f64::EPSILON..1.0);
            (50.0 / u.powf(1.0 / 1.16)).min(1e7).floor() as i128
        })
        .collect()
}

fn generated(label: &'static str, values: Vec<i128>, bounds: (&'static str, &'static str), trials: usize) -> Dataset {
    let parts = values.chunks(values.len().div_ceil(RELAYS)).map(|c| Arc::new(c.to_vec())).collect();
    let mut sorted = values;
    sorted.sort_unstable();
    Dataset {
        name: format!("{label} (seeded)"),
        labels: vec![label.into()],
        sorted,
        decimals: 0,
        bounds,
        relays: Relays::Generated(label, parts),
        trials,
    }
}

/// tests/data/areas.xlsx column H (Population, All usual residents, 2021),
/// 414 rows, read by 3 relays through the file source.
fn areas(trials: usize) -> Dataset {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/areas.xlsx");
    let mut declared = SourceSpec::new(&path).with_header_rows(3);
    crux::data::source::declare_detected_decimals(&mut declared).unwrap();
    let labels: Vec<String> = ["Population", "All usual residents", "2021"].iter().map(|s| s.to_string()).collect();
    let column = crux::data::source::read_column(&declared, &labels).unwrap();
    let mut sorted = column.values;
    sorted.sort_unstable();
    Dataset {
        name: "areas.xlsx H".into(),
        labels,
        sorted,
        decimals: column.decimals,
        bounds: ("0", "3000000"),
        relays: Relays::File(declared),
        trials,
    }
}

// ------------------------------------------------------------------ trials

/// One setting: a dataset queried at one epsilon by a committee of `authorities`.
struct Cell<'a> {
    data: &'a Dataset,
    epsilon: &'static str,
    authorities: usize,
    /// distinguishes the cells' seeds
    id: u64,
}

/// One answer of one trial.
struct Outcome {
    level: usize,
    error: i128,
    /// the answer's 95% interval holds the exact quantile
    covered: bool,
    releases: usize,
    /// the query's end-to-end time, and the authorities' part of it
    took: Duration,
    authorities_took: Duration,
}

/// Rank error of `answer` for the 1-based target rank `target` in `sorted`:
/// the distance from `target` to [#values < answer, #values ≤ answer].
fn rank_error(sorted: &[i128], answer: i128, target: i128) -> i128 {
    let below = i128::try_from(sorted.partition_point(|v| *v < answer)).unwrap();
    let at_or_below = i128::try_from(sorted.partition_point(|v| *v <= answer)).unwrap();
    (below - target).max(target - at_or_below).max(0)
}

fn params(level: &str, cell: &Cell) -> QueryParams {
    let mut p = if level == "0.5" {
        QueryParams::new(Statistic::Median)
    } else {
        let mut p = QueryParams::new(Statistic::Quantile);
        p.quantile = Some(level.into());
        p
    };
    p.exact = false;
    p.epsilon = Some(Epsilon::parse(cell.epsilon).unwrap());
    p.bounds = Some((cell.data.bounds.0.into(), cell.data.bounds.1.into()));
    p
}

/// One trial: a fresh cluster seeded with `seed` answers every level once.
/// Returns the outcomes and the relays' sources (reused by the next trial).
fn run_trial(
    cell: &Cell,
    sources: Vec<Box<dyn ColumnSource>>,
    solver: &Solver,
    seed: u64,
) -> (Vec<Outcome>, Vec<Box<dyn ColumnSource>>) {
    let data = cell.data;
    let options = Options {
        dataset: "bench".into(),
        authorities: cell.authorities,
        threshold: None,
        allow_exact: false,
        min_relays: RELAYS,
        budget: BUDGET,
        seed: Some(seed),
        share_path: true,
    };
    let mut cluster = MemoryCluster::new(sources, options, solver.clone()).unwrap();
    let labels: Vec<&str> = data.labels.iter().map(String::as_str).collect();
    let n = i128::try_from(data.n()).unwrap();
    let scale = 10f64.powi(i32::try_from(data.decimals).unwrap());
    let mut outcomes = Vec::new();
    for (level, text) in LEVELS.iter().enumerate() {
        let answer = cluster.query(&labels, params(text, cell)).unwrap();
        let ExactValue::Fixed { mantissa, decimals } = answer.result.value else {
            panic!("a quantile answer is a fixed-point value: {:?}", answer.result.value)
        };
        assert_eq!(decimals, data.decimals, "{}: the answer's scale is the column's", data.name);
        let target = quantile_rank(quantile_fraction(text).unwrap(), n).unwrap();
        let exact = data.sorted[usize::try_from(target - 1).unwrap()] as f64 / scale;
        let covered = answer.result.uncertainty.is_some_and(|u| u.ci95.0 <= exact && exact <= u.ci95.1);
        outcomes.push(Outcome {
            level,
            error: rank_error(&data.sorted, mantissa, target),
            covered,
            releases: cluster.trace.releases,
            took: cluster.trace.total,
            authorities_took: cluster.trace.authority,
        });
    }
    let sources = cluster.relays.drain(..).map(|(_, source)| source).collect();
    (outcomes, sources)
}

/// Every trial of `cell`, spread over `workers` threads (each with its own
/// sources and clusters). Returns the outcomes and the wall time.
fn run_cell(cell: &Cell, solver: &Solver, workers: usize) -> (Vec<Outcome>, Duration) {
    let start = Instant::now();
    let trials = cell.data.trials;
    let outcomes = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || {
                    let mut sources = cell.data.sources();
                    let mut out = Vec::new();
                    for trial in (w..trials).step_by(workers) {
                        let seed = cell.id * 1_000_000 + u64::try_from(trial).unwrap();
                        let (outcomes, back) = run_trial(cell, sources, solver, seed);
                        sources = back;
                        out.extend(outcomes);
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    (outcomes, start.elapsed())
}

// ------------------------------------------------------------------ summaries

/// Rank-error quantiles of one (cell, level).
struct Summary {
    trials: usize,
    median: i128,
    p90: i128,
    max: i128,
    covered: usize,
}

/// The nearest-rank q-quantile of sorted `v`.
fn percentile(v: &[i128], q: f64) -> i128 {
    let k = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[k - 1]
}

fn summarize(outcomes: &[Outcome], level: usize) -> Summary {
    let mut errors: Vec<i128> = outcomes.iter().filter(|o| o.level == level).map(|o| o.error).collect();
    errors.sort_unstable();
    Summary {
        trials: errors.len(),
        median: percentile(&errors, 0.5),
        p90: percentile(&errors, 0.9),
        max: *errors.last().unwrap(),
        covered: outcomes.iter().filter(|o| o.level == level && o.covered).count(),
    }
}

fn pct(errors: i128, n: usize) -> String {
    format!("{:.3}%", errors as f64 * 100.0 / n as f64)
}

struct Measured<'a> {
    cell: Cell<'a>,
    outcomes: Vec<Outcome>,
    took: Duration,
}

fn target_verdict(m: &Measured, s: &Summary) -> &'static str {
    if m.cell.epsilon != TARGET_EPSILON || m.cell.data.n() < TARGET_MIN_ROWS {
        return "";
    }
    if (s.p90 as f64) < TARGET_FRACTION * m.cell.data.n() as f64 {
        "PASS"
    } else {
        "FAIL"
    }
}

fn print_main_table(results: &[Measured]) {
    println!("| data | n | ε | p | trials | rank error median / p90 / max | as % of n: median / p90 / max | 95% interval holds the exact quantile | p90 < 1% of n at ε = 1 |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|:---:|");
    for m in results.iter().filter(|m| m.cell.authorities == 3) {
        let n = m.cell.data.n();
        for (level, p) in LEVELS.iter().enumerate() {
            let s = summarize(&m.outcomes, level);
            println!(
                "| {} | {} | {} | {} | {} | {} / {} / {} | {} / {} / {} | {}% | {} |",
                m.cell.data.name,
                n,
                m.cell.epsilon,
                p,
                s.trials,
                s.median,
                s.p90,
                s.max,
                pct(s.median, n),
                pct(s.p90, n),
                pct(s.max, n),
                s.covered * 100 / s.trials,
                target_verdict(m, &s)
            );
        }
    }
}

fn print_committee_table(results: &[Measured]) {
    println!("| data | n | p | trials | 1 authority: median / p90 (% of n) | 3 authorities: median / p90 (% of n) | p90 ratio 3:1 |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let at = |data: &Dataset, authorities| {
        results.iter().find(|m| {
            std::ptr::eq(m.cell.data, data) && m.cell.epsilon == TARGET_EPSILON && m.cell.authorities == authorities
        })
    };
    for one in results.iter().filter(|m| m.cell.authorities == 1) {
        let Some(three) = at(one.cell.data, 3) else { continue };
        let n = one.cell.data.n();
        for (level, p) in LEVELS.iter().enumerate() {
            let (a, b) = (summarize(&one.outcomes, level), summarize(&three.outcomes, level));
            let ratio = if a.p90 > 0 { format!("{:.2}", b.p90 as f64 / a.p90 as f64) } else { "-".into() };
            println!(
                "| {} | {} | {} | {} | {} / {} | {} / {} | {} |",
                one.cell.data.name,
                n,
                p,
                a.trials,
                pct(a.median, n),
                pct(a.p90, n),
                pct(b.median, n),
                pct(b.p90, n),
                ratio
            );
        }
    }
}

/// The rounds a plan splits its epsilon over (`policy::plan_shape`: one
/// share a round) and the buckets of each round (`policy::noisy_search`).
fn planned_rounds(cell: &Cell) -> (u64, u32) {
    let p = params("0.5", cell);
    let fixed = p.fixed(cell.data.decimals).unwrap();
    let widths = crux::stats::policy::search_widths(&p, &fixed).unwrap();
    (crux::stats::policy::plan_shape(&p, &fixed).unwrap().releases, widths[0])
}

/// The computed noise of one cell (sensitivity 1), and how many cells the
/// queries actually released.
fn print_noise(results: &[Measured]) {
    println!("| data | ε | rounds sharing ε (planned) | buckets a round | cells released | noise sd per cell, 1 authority | 3 authorities |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for m in results.iter().filter(|m| m.cell.authorities == 3) {
        let (k, buckets) = planned_rounds(&m.cell);
        let eps = Epsilon::parse(m.cell.epsilon).unwrap();
        let one = release_variance(1, eps, k, 1).unwrap().sqrt();
        let three = release_variance(1, eps, k, 3).unwrap().sqrt();
        let made = |level: usize| {
            let r = m.outcomes.iter().filter(|o| o.level == level).map(|o| o.releases);
            (r.clone().min().unwrap(), r.max().unwrap())
        };
        let made: Vec<String> = (0..LEVELS.len())
            .map(made)
            .map(|(lo, hi)| if lo == hi { format!("{lo}") } else { format!("{lo}-{hi}") })
            .collect();
        println!(
            "| {} | {} | {k} | {buckets} | {} (p10 / p50 / p90) | {one:.1} ranks | {three:.1} ranks |",
            m.cell.data.name,
            m.cell.epsilon,
            made.join(" / ")
        );
    }
}

// ------------------------------------------------------------------ main

fn datasets() -> Vec<Dataset> {
    vec![
        areas(TRIALS_SMALL),
        generated("uniform", uniform(10_000, 13), ("0", "1000000"), TRIALS_SMALL),
        generated("pareto", pareto(10_000, 14), ("0", "10000000"), TRIALS_SMALL),
        generated("uniform", uniform(1_000_000, 15), ("0", "1000000"), TRIALS_LARGE),
        generated("pareto", pareto(1_000_000, 16), ("0", "10000000"), TRIALS_LARGE),
    ]
}

/// Every cell: each dataset at each epsilon with 3 authorities, and at
/// ε = 1 with 1 authority too.
fn cells(data: &[Dataset]) -> Vec<Cell<'_>> {
    let mut cells = Vec::new();
    for d in data {
        for epsilon in EPSILONS {
            for authorities in [3, 1] {
                if authorities == 3 || epsilon == TARGET_EPSILON {
                    let id = u64::try_from(cells.len() + 1).unwrap();
                    cells.push(Cell { data: d, epsilon, authorities, id });
                }
            }
        }
    }
    cells
}

fn main() {
    let t0 = Instant::now();
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let t = Instant::now();
    let solver: Solver =
        Arc::new(DlogSolver::new(Arc::new(MemoryTable::build(TABLE_BITS).unwrap()), RANGE_BITS).unwrap());
    let solver_time = t.elapsed();
    let data = datasets();
    println!("# DP median and quantile accuracy (rank error)\n");
    println!(
        "{RELAYS} relays, DP mode (allow_exact: false), solver 2^{TABLE_BITS} table |m| < 2^{RANGE_BITS} (built in {:.2} s), {workers} worker threads.\n",
        solver_time.as_secs_f64()
    );
    for d in &data {
        let r = |p: &str| {
            d.sorted[usize::try_from(quantile_rank(quantile_fraction(p).unwrap(), d.n() as i128).unwrap() - 1).unwrap()]
        };
        println!(
            "- {}: n = {}, bounds {}:{}, p10 {} / p50 {} / p90 {}, {} trials per cell",
            d.name,
            d.n(),
            d.bounds.0,
            d.bounds.1,
            r("0.1"),
            r("0.5"),
            r("0.9"),
            d.trials
        );
    }
    let mut results = Vec::new();
    for cell in cells(&data) {
        let (outcomes, took) = run_cell(&cell, &solver, workers);
        let queries = outcomes.len();
        eprintln!(
            "{} n={} ε={} authorities={}: {} queries in {:.1} s ({:.0} ms per query per worker)",
            cell.data.name,
            cell.data.n(),
            cell.epsilon,
            cell.authorities,
            queries,
            took.as_secs_f64(),
            took.as_secs_f64() * 1e3 * workers as f64 / queries as f64
        );
        results.push(Measured { cell, outcomes, took });
    }
    print_report(&results, t0.elapsed(), workers);
}

fn print_report(results: &[Measured], total: Duration, workers: usize) {
    println!("\n## Rank error, 3 authorities\n");
    print_main_table(results);
    println!("\n## Distributed noise: 1 authority (a trusted curator's noise) vs 3, ε = 1\n");
    print_committee_table(results);
    println!("\n## Noise per release (computed)\n");
    print_noise(results);
    println!("\n## Time\n");
    for m in results {
        let queries = m.outcomes.len();
        let mean = |f: fn(&Outcome) -> Duration| {
            m.outcomes.iter().map(f).sum::<Duration>().as_secs_f64() * 1e3 / queries as f64
        };
        println!(
            "- {} n = {} ε = {} {} authorities: {} queries in {:.1} s wall; one query {:.0} ms, authorities {:.0} ms of it (harness trace)",
            m.cell.data.name,
            m.cell.data.n(),
            m.cell.epsilon,
            m.cell.authorities,
            queries,
            m.took.as_secs_f64(),
            mean(|o| o.took),
            mean(|o| o.authorities_took)
        );
    }
    let own: Duration = results.iter().flat_map(|m| &m.outcomes).map(|o| o.took).sum();
    println!(
        "\nwhole bench: {:.1} s wall on {workers} threads; the queries' own time (harness trace) sums to {:.1} s, about {:.1} s on {workers} idle cores",
        total.as_secs_f64(),
        own.as_secs_f64(),
        own.as_secs_f64() / workers as f64
    );
}
