//! Benchmarks of the statistics engine against the questions: relay
//! contribution time for 10^6 rows (plaintext scan vs crypto) per statistic,
//! processor aggregation per relay, ciphertexts per relay and decryptions per
//! query, and, in the same run, the plaintext computation of the same
//! statistic on the same data as the floor.
//!
//! Input: 10^6 seeded fixed-point values per column (uniform in ±2^40, and a
//! Pareto-skewed "population" column), and tests/data/areas.xlsx. Output:
//! plain text on stdout (criterion prints its own lines for the small
//! per-operation timings). Whole queries run in memory through every role's
//! real state machine and the wire encoding, as tests/common/mod.rs does,
//! with counters added. Nothing here is used by the crate.
//!
//! Run: `cargo bench --bench stats`. Figures on a shared 2-core VM are noisy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use rand::rngs::{OsRng, StdRng};
use rand::{Rng, SeedableRng};

use crux::actors::column_source::FileColumnSource;
use crux::crypto::{deal_for_tests, DlogSolver, EncryptionKey, JointPublicKey, KeyShare, MemoryTable, RelayIdentity};
use crux::data::{Shard, SourceSpec};
use crux::harness::{MemoryCluster, Options, QueryTrace, Solver, NOW};
use crux::protocol::codec;
use crux::protocol::relay::{ColumnSource, ColumnValues, RelayState, SourceError};
use crux::protocol::*;
use crux::stats::contribution::{contribute, local_histogram, local_moments};
use crux::stats::grid::Grid;
use crux::stats::limbs;
use crux::stats::statistic::{quantile_fraction, quantile_rank};
use crux::stats::{Contribution, ExactValue, QueryParams, RelayTask, Statistic};

const ROWS: usize = 1_000_000;
/// Limb width the processor picks with the default solver (2^20 table, range 2^36) for up to 15 relays.
const LIMB_BITS: u32 = 32;
/// An exact moments task (count and sums, with or without squares) whose
/// limbs cover 128-bit sums, as without bounds (value width 96).
fn moments_task(squares: bool) -> RelayTask {
    RelayTask::Moments { limb_bits: LIMB_BITS, value_bits: 96, sums: true, squares, sum_quantum: 1, squares_quantum: 1 }
}
/// Default processor discrete-log configuration (config/raw.rs): table 2^20, range 2^36.
const TABLE_BITS: u32 = 20;
const RANGE_BITS: u32 = 36;
const RUNS: usize = 11;
/// Runs of each whole in-memory query (the median end-to-end run is printed).
const QUERY_RUNS: usize = 5;

// ------------------------------------------------------------------ data

/// Uniform in [-2^40, 2^40].
fn wide_column(seed: u64) -> Vec<i128> {
    let mut rng = StdRng::seed_from_u64(seed);
    let limit = 1i128 << 40;
    (0..ROWS).map(|_| rng.gen_range(-limit..=limit)).collect()
}

/// Pareto(alpha 1.16, x_min 50) population counts, capped at 10^7: mostly
/// villages, a few cities (like census subdivisions).
fn population_column(seed: u64) -> Vec<i128> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..ROWS)
        .map(|_| {
            let u: f64 = rng.gen_range(f64::EPSILON..1.0);
            let x = 50.0 / u.powf(1.0 / 1.16);
            x.min(1e7).floor() as i128
        })
        .collect()
}

// ------------------------------------------------------------------ timing helpers

/// Median wall time of `RUNS` calls.
fn median_time<T>(mut f: impl FnMut() -> T) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn ratio(a: Duration, b: Duration) -> String {
    if b < Duration::from_micros(1) {
        "-".into()
    } else {
        format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64())
    }
}

// ------------------------------------------------------------------ part 1 and 2: relay contribution vs floor

/// Encrypts the local aggregates the way `contribute` does (the crypto part alone).
fn encrypt_moments(m: &crux::stats::contribution::LocalMoments, squares: bool, key: &EncryptionKey) -> usize {
    let mut n = 1;
    black_box(key.encrypt(m.count, &mut OsRng));
    for l in limbs::split(m.sum, LIMB_BITS, limbs::limb_count(LIMB_BITS).unwrap()).unwrap() {
        black_box(key.encrypt(l, &mut OsRng));
        n += 1;
    }
    if squares {
        for l in limbs::split(m.squares, LIMB_BITS, limbs::limb_count(LIMB_BITS).unwrap()).unwrap() {
            black_box(key.encrypt(l, &mut OsRng));
            n += 1;
        }
    }
    n
}

fn encrypt_counts(counts: &[i64], key: &EncryptionKey) -> usize {
    for c in counts {
        black_box(key.encrypt(*c, &mut OsRng));
    }
    counts.len()
}

fn floor_median(values: &[i128]) -> i128 {
    let mut copy = values.to_vec();
    let n = i128::try_from(copy.len()).unwrap();
    let rank = quantile_rank((1, 2), n).unwrap();
    let k = usize::try_from(rank - 1).unwrap();
    *copy.select_nth_unstable(k).1
}

fn floor_histogram(values: &[i128], edges: &[i128]) -> Vec<u64> {
    let mut counts = vec![0u64; edges.len() + 1];
    for v in values {
        counts[edges.partition_point(|e| e <= v)] += 1;
    }
    counts
}

struct Row {
    statistic: &'static str,
    task: String,
    ciphertexts: usize,
    scan: Duration,
    crypto: Duration,
    contribute: Duration,
    /// `RelayState::handle` of the Contribute request: rescale, clamp copy, contribute, sign
    handle: Duration,
    floor: Duration,
    floor_what: &'static str,
}

/// Times the relay's whole Contribute handler over `values` (column cached, as in a query's later rounds).
struct RelayBench<'a> {
    relay: RelayState,
    source: Generated,
    shares: &'a [KeyShare],
}

fn status(name: &str, role: Role) -> NodeStatus {
    NodeStatus { name: name.to_string(), role, version: "bench".into(), details: vec![] }
}

impl<'a> RelayBench<'a> {
    fn new(values: &[i128], joint: &JointPublicKey, shares: &'a [KeyShare]) -> Self {
        let relay = RelayState::new("relay-1", RelayIdentity::generate(&mut OsRng), joint);
        let source = Generated { columns: vec![("Generated", values.to_vec())] };
        RelayBench { relay, source, shares }
    }

    /// An admitted Contribute request for a fresh query (a relay answers an
    /// admitted round once, then serves the same contribution again).
    fn request(&self, st: Statistic, edges: &[i128], task: &RelayTask) -> RelayRequest {
        let intent = QueryIntent {
            id: QueryId::random(&mut OsRng),
            issued_at: NOW,
            dataset: "bench".into(),
            labels: vec!["Generated".into()],
            params: params(st, edges),
        };
        let names = self.shares.iter().map(|s| s.authority().to_string()).collect();
        let spec = QuerySpec::new(intent, 0, 0, names);
        let statement = codec::round_admission(&spec, 0, task);
        let signatures =
            self.shares.iter().map(|s| (s.authority().to_string(), s.sign_admission(&statement, &mut OsRng))).collect();
        RelayRequest::Contribute {
            sealing: Vec::new(),
            spec,
            round: 0,
            task: task.clone(),
            admission: Admission { signatures },
            admission_of: AdmissionOf::Round,
        }
    }

    /// The relay's whole handler (admission check, rescale, clamp, encrypt with proofs, sign).
    fn time(&mut self, st: Statistic, edges: &[i128], task: &RelayTask) -> Duration {
        let mut requests: Vec<RelayRequest> = (0..=RUNS).map(|_| self.request(st, edges, task)).collect();
        let mut run = || {
            let request = requests.pop().unwrap_or_else(|| self.request(st, edges, task));
            let (resp, _) =
                self.relay.handle(request, &self.source, || status("relay-1", Role::Relay), NOW, &mut OsRng);
            assert!(matches!(resp, RelayResponse::Contribution(_)), "{resp:?}");
        };
        run();
        median_time(run)
    }
}

fn print_rows(column: &str, rows: &[Row]) {
    println!("\n== relay contribution for {ROWS} rows, column `{column}` (median of {RUNS} runs) ==");
    println!(
        "{:<22} {:<26} {:>4} {:>12} {:>12} {:>12} {:>14} {:>12} {:>12} {:>9} {:>9}  floor computation",
        "statistic",
        "relay task",
        "cts",
        "scan",
        "crypto",
        "scan+crypto",
        "contribute()",
        "handle()",
        "floor",
        "ctb/floor",
        "hdl/floor"
    );
    for r in rows {
        println!(
            "{:<22} {:<26} {:>4} {:>12} {:>12} {:>12} {:>14} {:>12} {:>12} {:>9} {:>9}  {}",
            r.statistic,
            r.task,
            r.ciphertexts,
            ms(r.scan),
            ms(r.crypto),
            ms(r.scan + r.crypto),
            ms(r.contribute),
            ms(r.handle),
            ms(r.floor),
            ratio(r.contribute, r.floor),
            ratio(r.handle, r.floor),
            r.floor_what
        );
    }
}

fn relay_vs_floor(
    column: &str,
    values: &[i128],
    edges: &[i128],
    key: &EncryptionKey,
    joint: &JointPublicKey,
    shares: &[KeyShare],
) {
    let mut rows = Vec::new();
    let mut relay = RelayBench::new(values, joint, shares);
    moment_rows(values, edges, key, &mut relay, &mut rows);
    let breakdown = histogram_rows(column, values, edges, key, &mut relay, &mut rows);
    print_rows(column, &rows);
    println!("{breakdown}");
    println!(
        "(cts = ciphertexts per relay; crypto = encrypting the local aggregates only; contribute() = scan + encryption as the relay runs it;\n handle() = the relay's whole Contribute handler (admission check, rescale to the query's decimals, clamp copy, contribute with proofs, sign);\n ctb/floor and hdl/floor = contribute() and handle() over the floor; the median floor is the whole statistic, the relay figure one round of the search)"
    );
}

/// count, sum / mean and variance / stddev rows of `relay_vs_floor`.
fn moment_rows(values: &[i128], edges: &[i128], key: &EncryptionKey, relay: &mut RelayBench, rows: &mut Vec<Row>) {
    let moments = local_moments(values, true).unwrap();

    // count: the relay sends count and sum limbs (Moments without squares); the floor is len().
    let task = moments_task(false);
    let scan = median_time(|| local_moments(values, true).unwrap());
    let crypto = median_time(|| encrypt_moments(&moments, false, key));
    let total = median_time(|| contribute(&task, values, key, &|_| b"bench".to_vec(), &mut OsRng).unwrap());
    let floor = median_time(|| black_box(values).len());
    rows.push(Row {
        statistic: "count",
        handle: relay.time(Statistic::Count, edges, &task),
        task: "moments (no squares)".into(),
        ciphertexts: task.ciphertexts_per_relay().unwrap(),
        scan,
        crypto,
        contribute: total,
        floor,
        floor_what: "values.len() (O(1), no ratio)",
    });

    // sum / mean: same task; floor = i128 sum and the mean's division.
    let floor = median_time(|| {
        let s: i128 = black_box(values).iter().sum();
        (s, s / i128::try_from(values.len()).unwrap())
    });
    rows.push(Row {
        statistic: "sum / mean",
        handle: relay.time(Statistic::Sum, edges, &task),
        task: "moments (no squares)".into(),
        ciphertexts: task.ciphertexts_per_relay().unwrap(),
        scan,
        crypto,
        contribute: total,
        floor,
        floor_what: "i128 sum, sum / n",
    });

    // variance / stddev: Moments with squares; floor = i128 sum and sum of squares, n·q - s².
    let task = moments_task(true);
    let crypto = median_time(|| encrypt_moments(&moments, true, key));
    let total = median_time(|| contribute(&task, values, key, &|_| b"bench".to_vec(), &mut OsRng).unwrap());
    let floor = median_time(|| {
        let (mut s, mut q) = (0i128, 0i128);
        for v in black_box(values) {
            s += v;
            q += v * v;
        }
        let n = i128::try_from(values.len()).unwrap();
        (n * q - s * s, n * n)
    });
    rows.push(Row {
        statistic: "variance / stddev",
        handle: relay.time(Statistic::Variance, edges, &task),
        task: "moments (squares)".into(),
        ciphertexts: task.ciphertexts_per_relay().unwrap(),
        scan,
        crypto,
        contribute: total,
        floor,
        floor_what: "i128 sum and sum of squares, n*q - s^2",
    });
}

/// Median rounds and histogram rows of `relay_vs_floor`; returns the median floor's breakdown line.
fn histogram_rows(
    column: &str,
    values: &[i128],
    edges: &[i128],
    key: &EncryptionKey,
    relay: &mut RelayBench,
    rows: &mut Vec<Row>,
) -> String {
    // median: round 0 on the 25 magnitude buckets of 47-bit values, and one 64-bucket refinement round.
    let floor = median_time(|| floor_median(values));
    let median = floor_median(values);
    let copy = median_time(|| values.to_vec());
    let sort = median_time(|| {
        let mut v = values.to_vec();
        v.sort_unstable();
        v
    });
    let breakdown = format!(
        "`{column}` median floor breakdown: copy alone {}, copy + select_nth_unstable {}, copy + sort_unstable {}",
        ms(copy),
        ms(floor),
        ms(sort)
    );
    for (label, grid) in [
        ("median round 0", Grid::Magnitude { bits: 47 }),
        ("median refinement round", Grid::covering(median - (1 << 20), median + (1 << 20), 64).unwrap()),
    ] {
        let task = RelayTask::Histogram { grid: grid.clone() };
        let scan = median_time(|| local_histogram(values, &grid));
        let counts = local_histogram(values, &grid);
        let crypto = median_time(|| encrypt_counts(&counts, key));
        let total = median_time(|| contribute(&task, values, key, &|_| b"bench".to_vec(), &mut OsRng).unwrap());
        rows.push(Row {
            statistic: label,
            handle: relay.time(Statistic::Median, edges, &task),
            task: match grid {
                Grid::Magnitude { .. } => "histogram, magnitude grid".into(),
                _ => "histogram, uniform grid".into(),
            },
            ciphertexts: task.ciphertexts_per_relay().unwrap(),
            scan,
            crypto,
            contribute: total,
            floor,
            floor_what: "select_nth_unstable on a copy",
        });
    }

    // histogram with 10 edges (11 buckets); floor = partition_point per value.
    let grid = Grid::Edges(edges.to_vec());
    let task = RelayTask::Histogram { grid: grid.clone() };
    let scan = median_time(|| local_histogram(values, &grid));
    let counts = local_histogram(values, &grid);
    let floor_counts = floor_histogram(values, edges);
    assert_eq!(counts.iter().map(|c| u64::try_from(*c).unwrap()).collect::<Vec<_>>(), floor_counts);
    let crypto = median_time(|| encrypt_counts(&counts, key));
    let total = median_time(|| contribute(&task, values, key, &|_| b"bench".to_vec(), &mut OsRng).unwrap());
    let floor = median_time(|| floor_histogram(values, edges));
    rows.push(Row {
        statistic: "histogram (10 edges)",
        handle: relay.time(Statistic::Histogram, edges, &task),
        task: "histogram, 10 edges".into(),
        ciphertexts: task.ciphertexts_per_relay().unwrap(),
        scan,
        crypto,
        contribute: total,
        floor,
        floor_what: "partition_point per value",
    });
    breakdown
}

// ------------------------------------------------------------------ part 3: processor aggregation, signatures

fn criterion_benches(c: &mut Criterion, key: &EncryptionKey, values: &[i128]) {
    let relays = 8;
    let chunk = values.len() / relays;
    for (name, task) in [
        ("moments 1+4+4", moments_task(true)),
        ("histogram 25 magnitude", RelayTask::Histogram { grid: Grid::Magnitude { bits: 47 } }),
        ("histogram 64 uniform", RelayTask::Histogram { grid: Grid::covering(-(1 << 40), 1 << 40, 64).unwrap() }),
    ] {
        let contributions: Vec<Contribution> = values
            .chunks(chunk)
            .take(relays)
            .map(|v| contribute(&task, v, key, &|_| b"bench".to_vec(), &mut OsRng).unwrap().0)
            .collect();
        c.bench_function(&format!("aggregate {relays} relays, {name}"), |b| {
            b.iter(|| Contribution::aggregate(&task, black_box(&contributions)).unwrap())
        });
    }

    let identity = RelayIdentity::generate(&mut OsRng);
    let public = identity.public_key();
    let message = vec![7u8; 1024];
    let sig = identity.sign(b"query-id-bytes..", &message);
    c.bench_function("RelayPublicKey::verify, 1 KiB message", |b| {
        b.iter(|| public.verify("relay-1", b"query-id-bytes..", black_box(&message), &sig).unwrap())
    });
    // a signed statement of about 127 * 64 bytes (a 127-bucket contribution; a magnitude grid now has 25)
    let big = vec![7u8; 127 * 66 + 200];
    let sig = identity.sign(b"query-id-bytes..", &big);
    c.bench_function("RelayPublicKey::verify, 8.6 KB message", |b| {
        b.iter(|| public.verify("relay-1", b"query-id-bytes..", black_box(&big), &sig).unwrap())
    });
}

/// Aggregation per relay for many relays, with an Instant loop.
fn aggregation_per_relay(key: &EncryptionKey) {
    println!(
        "\n== processor aggregation per relay (Contribution::aggregate over N contributions, / N; median of {RUNS}) =="
    );
    for (name, task) in [
        ("moments 1+4+4 (variance)", moments_task(true)),
        ("histogram 25 magnitude", RelayTask::Histogram { grid: Grid::Magnitude { bits: 47 } }),
        ("histogram 64 uniform", RelayTask::Histogram { grid: Grid::covering(0, 6399, 64).unwrap() }),
    ] {
        let one = contribute(&task, &[1, 2, 3], key, &|_| b"bench".to_vec(), &mut OsRng).unwrap().0;
        for n in [8usize, 64] {
            let items: Vec<Contribution> = (0..n).map(|_| one.clone()).collect();
            let t = median_time(|| Contribution::aggregate(&task, &items).unwrap());
            println!(
                "{name:<26} N = {n:>3}: {:>10.2} µs total, {:>8.2} µs per relay ({} ciphertext additions per relay)",
                t.as_secs_f64() * 1e6,
                t.as_secs_f64() * 1e6 / n as f64,
                task.ciphertexts_per_relay().unwrap()
            );
        }
    }
}

// ------------------------------------------------------------------ part 4: whole queries in memory, counted

struct Generated {
    columns: Vec<(&'static str, Vec<i128>)>,
}

impl ColumnSource for Generated {
    fn column(&self, labels: &[String]) -> Result<ColumnValues, SourceError> {
        let want = labels.first().map(String::as_str).unwrap_or("");
        self.columns
            .iter()
            .find(|(name, _)| *name == want)
            .map(|(name, v)| ColumnValues { labels: vec![name.to_string()], decimals: 0, values: v.clone() })
            .ok_or_else(|| SourceError { public: format!("no column {want}"), private: String::new() })
    }

    fn declared_decimals(&self, _labels: &[String]) -> Option<u32> {
        Some(0)
    }
}

/// A whole query in memory: the answer and what it cost.
fn run_query(cluster: &mut MemoryCluster, labels: &[&str], params: QueryParams) -> (QueryAnswer, QueryTrace) {
    let answer = cluster.query(labels, params).unwrap();
    (answer, cluster.trace.clone())
}

fn new_cluster(sources: Vec<Box<dyn ColumnSource>>, solver: &Solver) -> MemoryCluster {
    let mut options = Options::new(true, 1);
    options.dataset = "bench".into();
    MemoryCluster::new(sources, options, solver.clone()).unwrap()
}

fn print_query_header() {
    println!(
        "{:<40} {:>6} {:>8} {:>9} {:>8} {:>8} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}",
        "query",
        "rounds",
        "cts/rly",
        "bytes/rly",
        "releases",
        "partials",
        "end-to-end",
        "relays(sum)",
        "relays(par)",
        "authority",
        "processor",
        "dlog solve",
        "describe",
        "admission"
    );
}

fn print_query(label: &str, c: &QueryTrace) {
    println!(
        "{:<40} {:>6} {:>8} {:>9} {:>8} {:>8} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}",
        label,
        c.rounds,
        c.ciphertexts_per_relay,
        c.bytes_per_relay,
        c.releases,
        c.partial_decryptions,
        ms(c.total),
        ms(c.relay),
        ms(c.relay_critical),
        ms(c.authority),
        ms(c.processor),
        ms(c.solve),
        ms(c.describe),
        ms(c.admission)
    );
}

fn params(st: Statistic, edges: &[i128]) -> QueryParams {
    let mut p = QueryParams::new(st);
    if st == Statistic::Histogram {
        p.edges = edges.iter().map(|e| e.to_string()).collect();
    }
    p
}

fn sorted_median(values: &[i128]) -> i128 {
    let mut v = values.to_vec();
    v.sort_unstable();
    let (num, den) = quantile_fraction("0.5").unwrap();
    let rank = quantile_rank((num, den), i128::try_from(v.len()).unwrap()).unwrap();
    v[usize::try_from(rank - 1).unwrap()]
}

/// Runs count, mean, variance, median and histogram queries and checks median and mean against plaintext.
fn run_queries(cluster: &mut MemoryCluster, name: &str, labels: &[&str], values: &[i128], edges: &[i128]) {
    let n = i128::try_from(values.len()).unwrap();
    let sum: i128 = values.iter().sum();
    let median = sorted_median(values);
    for st in [Statistic::Count, Statistic::Mean, Statistic::Variance, Statistic::Median, Statistic::Histogram] {
        // QUERY_RUNS runs; the run with the median end-to-end time is printed
        let mut runs: Vec<(QueryAnswer, QueryTrace)> =
            (0..QUERY_RUNS).map(|_| run_query(cluster, labels, params(st, edges))).collect();
        runs.sort_by_key(|(_, c)| c.total);
        let (answer, counts) = runs.swap_remove(QUERY_RUNS / 2);
        match st {
            Statistic::Median => {
                assert_eq!(answer.result.value, ExactValue::Fixed { mantissa: median, decimals: 0 }, "{name} median")
            }
            Statistic::Mean => {
                let (num, den) = crux::stats::result::reduce(sum, n).unwrap();
                assert_eq!(answer.result.value, ExactValue::Ratio { num, den }, "{name} mean")
            }
            Statistic::Count => assert_eq!(answer.result.count, n, "{name} count"),
            _ => {}
        }
        print_query(&format!("{name}: {st}"), &counts);
    }
}

fn main() {
    let t0 = Instant::now();
    let (shares, joint) = deal_for_tests(&["authority-1", "authority-2", "authority-3"], 3, 0, &mut OsRng).unwrap();
    let key = EncryptionKey::new(&joint);

    let wide = wide_column(40);
    let population = population_column(2021);
    let wide_edges: Vec<i128> = (-5..5).map(|k| k * (1i128 << 38)).collect();
    let pop_edges: Vec<i128> = vec![100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000];
    println!(
        "data: {ROWS} rows `wide` uniform in ±2^40 (seed 40); {ROWS} rows `population` Pareto(1.16, 50) capped at 1e7 (seed 2021), median {}, max {}",
        floor_median(&population),
        population.iter().max().unwrap()
    );
    println!(
        "limb_bits {LIMB_BITS}: moments = 1 count + {} sum limbs (+ {} square limbs)",
        limbs::limb_count(LIMB_BITS).unwrap(),
        limbs::limb_count(LIMB_BITS).unwrap()
    );

    // 1 and 2
    relay_vs_floor("wide", &wide, &wide_edges, &key, &joint, &shares);
    relay_vs_floor("population", &population, &pop_edges, &key, &joint, &shares);

    // 3
    aggregation_per_relay(&key);
    println!("\n== criterion: per-operation timings ==");
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    criterion_benches(&mut c, &key, &wide);

    // 4
    let t = Instant::now();
    let solver: Solver =
        Arc::new(DlogSolver::new(Arc::new(MemoryTable::build(TABLE_BITS).unwrap()), RANGE_BITS).unwrap());
    println!(
        "\n== whole queries in memory (3 authorities, exact mode, wire-encoded messages, solver 2^{TABLE_BITS} table, |m| < 2^{RANGE_BITS}, built in {}) ==",
        ms(t.elapsed())
    );
    println!("(cts/rly and bytes/rly: one relay's contributions summed over rounds; releases: aggregates decrypted; partials: partial decryptions with DLEQ proofs;");
    println!(" relays(sum): all relays' handle time; relays(par): sum over rounds of the slowest relay, as if relays ran in parallel;");
    println!(" describe: relays reading and describing their column (summed); each row is the median of {QUERY_RUNS} runs by end-to-end time)");
    print_query_header();

    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/areas.xlsx");
    let mut declared = SourceSpec::new(&data).with_header_rows(3);
    crux::data::source::declare_detected_decimals(&mut declared).unwrap();
    let sources: Vec<Box<dyn ColumnSource>> = (0..3u32)
        .map(|j| {
            let mut spec = declared.clone();
            spec.shard = Some(Shard { index: j, count: 3 });
            Box::new(FileColumnSource::new(&format!("relay-{}", j + 1), vec![spec])) as Box<dyn ColumnSource>
        })
        .collect();
    let mut areas = new_cluster(sources, &solver);
    let column = crux::data::read_column(
        &SourceSpec::new(&data).with_header_rows(3),
        &["Population".into(), "All usual residents".into(), "2021".into()],
    )
    .unwrap();
    run_queries(
        &mut areas,
        "areas.xlsx 3 relays",
        &["Population", "All usual residents", "2021"],
        &column.values,
        &pop_edges,
    );

    for (name, values, edges) in [("wide", &wide, &wide_edges), ("population", &population, &pop_edges)] {
        let sources: Vec<Box<dyn ColumnSource>> = values
            .chunks(ROWS / 8)
            .map(|part| Box::new(Generated { columns: vec![(name, part.to_vec())] }) as Box<dyn ColumnSource>)
            .collect();
        let mut cluster = new_cluster(sources, &solver);
        run_queries(&mut cluster, &format!("{name} 10^6 rows 8 relays"), &[name], values, edges);
    }
    println!("\nwhole bench: {:.1} s", t0.elapsed().as_secs_f64());
}
