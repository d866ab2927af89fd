//! Crux against Prio3 (libprio 0.18.1, 2 aggregators) on the same job
//! (issue 13): D relays (3 and 8) each hold 10^6 u32 rows (uniform, and
//! Pareto-skewed capped at 2^32 - 1) and send one report of their local
//! aggregate per query: count, sum, variance, a 256-bucket histogram, the
//! exact median and a DP median at epsilon 1.
//!
//! Crux runs in memory (`harness::MemoryCluster`: every role's real state
//! machine and wire encoding, 3 authorities); Prio3 runs every step of the
//! VDAF in-process (shard, verify_init, verifier_shares_to_message,
//! verify_next, aggregate, unshard). Everything runs on this thread and is
//! timed in thread CPU time. Output: one table per (D, data) on stdout,
//! then one `vs_prio3 ...` summary line per (query, D, data). Nothing here
//! is used by the crate.
//!
//! Run: `cargo bench --bench vs_prio3` (VS_PRIO3_RUNS=N lowers the runs
//! per figure, VS_PRIO3_MEDIAN_RUNS=N those of the median queries;
//! VS_PRIO3_ONLY=variance,histogram256 runs only those queries, e.g. for a
//! profile).
//!
//! The exact queries run twice: on the ElGamal path (rows `count` ...
//! `median`) and on the committed-share path (`processor.share_path`,
//! docs/share_path.md; rows `count_shares` ... `median_shares`), each
//! against the same Prio3 job. The DP median runs on both paths too
//! (`dp_median`, `dp_median_shares`: noisy searches take the share path,
//! each decryptor noising its sums).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpu_time::ThreadTime;
use prio::codec::{Encode, ParameterizedDecode};
use prio::vdaf::prio3::{optimal_chunk_length, Prio3Sum, Prio3SumVec};
use prio::vdaf::{Aggregator, Client, Collector, VerifyTransition};
use rand::rngs::{OsRng, StdRng};
use rand::{Rng, RngCore, SeedableRng};

use crux::config::defaults::{DLOG_RANGE_BITS, DLOG_TABLE_BITS};
use crux::crypto::{DlogSolver, MemoryTable};
use crux::harness::{MemoryCluster, Options, Solver};
use crux::protocol::relay::{ColumnSource, ColumnValues, SourceError};
use crux::protocol::QueryAnswer;
use crux::stats::result::reduce;
use crux::stats::{Epsilon, ExactValue, QueryParams, Statistic};

/// Rows each relay holds.
const ROWS: usize = 1_000_000;
const MAX_RELAYS: usize = 8;
const RELAY_COUNTS: [usize; 2] = [3, 8];
const U32_MAX: u128 = u32::MAX as u128;
/// Histogram buckets (Crux edges k·2^24; Prio3 SumVec length), and the
/// buckets of each of the 4 Prio3 median rounds (8 bits per round).
const BUCKETS: usize = 256;
const MEDIAN_ROUNDS: u32 = 4;
const LABEL: &str = "value";
const CTX: &[u8] = b"crux vs_prio3";
const QUERIES: [&str; 6] = ["count", "sum", "variance", "histogram256", "median", "dp_median"];
/// The committed-share path's rows and the query (and Prio3 job) of each.
const SHARE_QUERIES: [(&str, &str); 5] = [
    ("count_shares", "count"),
    ("sum_shares", "sum"),
    ("variance_shares", "variance"),
    ("histogram256_shares", "histogram256"),
    ("median_shares", "median"),
];

// ------------------------------------------------------------------ data

/// One data set: every relay's rows, as u32 (for Prio3's measurements and
/// the plaintext truth) and as i128 (what Crux's relays read).
struct DataSet {
    name: &'static str,
    rows: Vec<Vec<u32>>,
    columns: Vec<Arc<Vec<i128>>>,
}

fn data_set(name: &'static str, seed: u64, draw: fn(&mut StdRng) -> u32) -> DataSet {
    let mut rng = StdRng::seed_from_u64(seed);
    let rows: Vec<Vec<u32>> = (0..MAX_RELAYS).map(|_| (0..ROWS).map(|_| draw(&mut rng)).collect()).collect();
    let columns = rows.iter().map(|r| Arc::new(r.iter().map(|v| i128::from(*v)).collect())).collect();
    DataSet { name, rows, columns }
}

fn uniform(rng: &mut StdRng) -> u32 {
    rng.gen()
}

/// Pareto(alpha 0.9, x_min 1000) capped at 2^32 - 1: mostly small values, a
/// heavy tail that reaches the cap now and then.
fn skewed(rng: &mut StdRng) -> u32 {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    let x = 1000.0 / u.powf(1.0 / 0.9);
    x.min(u32::MAX as f64).floor() as u32
}

/// The plaintext answers over the first D relays.
struct Truth {
    n: u128,
    sum: u128,
    squares: u128,
    histogram: Vec<u128>,
    /// all values, sorted (median and DP-median rank)
    sorted: Vec<u32>,
}

impl Truth {
    fn new(relays: &[Vec<u32>]) -> Self {
        let mut sorted: Vec<u32> = relays.iter().flatten().copied().collect();
        sorted.sort_unstable();
        let moments: Vec<[u128; 3]> = relays.iter().map(|r| local_moments(r)).collect();
        let histogram = relays.iter().map(|r| local_histogram(r, 0, 24)).fold(vec![0; BUCKETS], |mut acc, h| {
            acc.iter_mut().zip(h).for_each(|(a, b)| *a += b);
            acc
        });
        Truth {
            n: moments.iter().map(|m| m[0]).sum(),
            sum: moments.iter().map(|m| m[1]).sum(),
            squares: moments.iter().map(|m| m[2]).sum(),
            histogram,
            sorted,
        }
    }

    /// The lower median: rank max(1, ceil(n/2)), as Crux defines it.
    fn median_rank(&self) -> usize {
        self.sorted.len().div_ceil(2).max(1)
    }

    fn median(&self) -> u32 {
        self.sorted[self.median_rank() - 1]
    }

    /// How many ranks `value` lies from the median's rank (0 when some copy
    /// of `value` holds that rank).
    fn rank_distance(&self, value: i128) -> usize {
        let below = self.sorted.partition_point(|v| i128::from(*v) < value);
        let upto = self.sorted.partition_point(|v| i128::from(*v) <= value);
        let r = self.median_rank();
        if r <= below {
            below + 1 - r
        } else {
            r.saturating_sub(upto)
        }
    }
}

/// (count, Σv, Σv²) of one relay's rows.
fn local_moments(rows: &[u32]) -> [u128; 3] {
    rows.iter().fold([0u128; 3], |[n, s, q], v| {
        let v = u128::from(*v);
        [n + 1, s + v, q + v * v]
    })
}

/// Counts of the values in [lo, lo + 256·2^shift), in 256 buckets of 2^shift.
fn local_histogram(rows: &[u32], lo: u64, shift: u32) -> Vec<u128> {
    let mut counts = vec![0u128; BUCKETS];
    let end = lo + ((BUCKETS as u64) << shift);
    for v in rows.iter().map(|v| u64::from(*v)).filter(|v| (lo..end).contains(v)) {
        counts[usize::try_from((v - lo) >> shift).unwrap()] += 1;
    }
    counts
}

/// The bucket of a round's `counts` that holds rank `rank`, when `below`
/// values lie below the round's range; and the count below that bucket.
fn bucket_of_rank(counts: &[u128], below: u128, rank: u128) -> (usize, u128) {
    let mut cumulative = below;
    let k = counts
        .iter()
        .position(|c| {
            cumulative += c;
            cumulative >= rank
        })
        .expect("the rank lies in the round's range");
    (k, cumulative - counts[k])
}

// ------------------------------------------------------------------ Crux side

/// A relay's column in memory; counts the thread CPU time spent handing it
/// out (a column read, part of the relay's plaintext work).
struct SharedColumn {
    values: Arc<Vec<i128>>,
    read_nanos: Arc<AtomicU64>,
}

impl ColumnSource for SharedColumn {
    fn column(&self, labels: &[String]) -> Result<ColumnValues, SourceError> {
        if labels.first().map(String::as_str) != Some(LABEL) {
            return Err(SourceError { public: format!("no column {labels:?}"), private: String::new() });
        }
        let t = ThreadTime::now();
        let values = self.values.as_ref().clone();
        let nanos = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.read_nanos.fetch_add(nanos, Ordering::Relaxed);
        Ok(ColumnValues { labels: vec![LABEL.to_string()], decimals: 0, values })
    }

    fn declared_decimals(&self, _labels: &[String]) -> Option<u32> {
        Some(0)
    }
}

struct Crux {
    cluster: MemoryCluster,
    read_nanos: Arc<AtomicU64>,
    relays: usize,
}

impl Crux {
    /// D relays over the first D columns; exact mode or DP mode; exact
    /// queries on the committed-share path with `share_path`.
    fn new(data: &DataSet, relays: usize, (exact, share_path): (bool, bool), solver: &Solver) -> Self {
        let read_nanos = Arc::new(AtomicU64::new(0));
        let sources = data.columns[..relays]
            .iter()
            .map(|c| {
                Box::new(SharedColumn { values: c.clone(), read_nanos: read_nanos.clone() }) as Box<dyn ColumnSource>
            })
            .collect();
        let mut options = Options::new(exact, relays);
        options.dataset = "vs_prio3".into();
        options.share_path = share_path;
        // DP median runs repeat: a budget that never runs out
        options.budget = Epsilon(Epsilon::MICROS * 1_000_000);
        let mut cluster = MemoryCluster::new(sources, options, solver.clone()).unwrap();
        // relays keep encryptions of zero ready, as the relay actor does between requests
        cluster.precompute_encryptions = true;
        Crux { cluster, read_nanos, relays }
    }

    fn query(&mut self, params: QueryParams) -> (QueryAnswer, Cost) {
        let before = self.read_nanos.load(Ordering::Relaxed);
        let answer = self.cluster.query(&[LABEL], params).unwrap();
        let read = Duration::from_nanos(self.read_nanos.load(Ordering::Relaxed) - before);
        let t = &self.cluster.trace;
        // the relays' Describe minus their column read: admission checks
        let describe = t.describe.saturating_sub(read);
        let relay = t.relay.saturating_sub(t.relay_plain) + describe;
        let d = u32::try_from(self.relays).unwrap();
        let cost = Cost {
            parts: [relay, t.authority, t.processor, t.solve],
            total: relay + t.authority + t.processor + t.solve,
            crit: t.relay_crypto_critical + describe / d + t.authority_critical + t.processor + t.solve,
            codec: t.codec,
            round_trips: t.round_trips,
            rounds: t.rounds,
            // (the share path's: sealed boxes)
            ciphertexts: t.ciphertexts_per_relay + t.share_boxes_per_relay,
            releases: t.releases,
            bytes: t.bytes_per_relay,
            prep_bytes: 0,
            offline: t.relay_precompute,
        };
        (answer, cost)
    }
}

/// What one run of one query cost one system (thread CPU time).
#[derive(Clone, Default)]
struct Cost {
    /// Crux: relay crypto, authority, processor, solve; Prio3: clients,
    /// aggregators, collector, 0
    parts: [Duration; 4],
    total: Duration,
    crit: Duration,
    codec: Duration,
    round_trips: usize,
    rounds: usize,
    ciphertexts: usize,
    releases: usize,
    /// Crux: relay-1's encoded contributions; Prio3: one report
    bytes: usize,
    /// Prio3: one report's verifier shares (both) and verifier message
    prep_bytes: usize,
    /// Crux: the relays' encryptions of zero made ahead of time (between
    /// queries), summed; in no other figure
    offline: Duration,
}

impl Cost {
    fn add(&mut self, other: &Cost) {
        for (a, b) in self.parts.iter_mut().zip(other.parts) {
            *a += b;
        }
        self.total += other.total;
        self.crit += other.crit;
        self.codec += other.codec;
        self.round_trips += other.round_trips;
        self.rounds += other.rounds;
        self.bytes += other.bytes;
        self.prep_bytes += other.prep_bytes;
    }
}

const BOUNDS: (&str, &str) = ("0", "4294967295");

fn crux_params(query: &str) -> QueryParams {
    let statistic = match query {
        "count" => Statistic::Count,
        "sum" => Statistic::Sum,
        "variance" => Statistic::Variance,
        "histogram256" => Statistic::Histogram,
        _ => Statistic::Median,
    };
    let mut p = QueryParams::new(statistic);
    p.bounds = Some((BOUNDS.0.into(), BOUNDS.1.into()));
    if statistic == Statistic::Histogram {
        p.edges = (1..BUCKETS).map(|k| (k << 24).to_string()).collect();
    }
    if query == "dp_median" {
        p.exact = false;
        p.epsilon = Some(Epsilon(Epsilon::MICROS));
    }
    p
}

fn fixed(mantissa: u128) -> ExactValue {
    ExactValue::Fixed { mantissa: i128::try_from(mantissa).unwrap(), decimals: 0 }
}

/// Checks Crux's answer against the plaintext; returns a note (DP rank distance).
fn check_crux(query: &str, answer: &QueryAnswer, truth: &Truth) -> Option<usize> {
    let value = &answer.result.value;
    let n = i128::try_from(truth.n).unwrap();
    match query {
        "count" => assert_eq!((value, answer.result.count), (&fixed(truth.n), n), "crux count"),
        "sum" => assert_eq!(value, &fixed(truth.sum), "crux sum"),
        "variance" => {
            let (s, q) = (i128::try_from(truth.sum).unwrap(), i128::try_from(truth.squares).unwrap());
            let (num, den) = reduce(n * q - s * s, n * n).unwrap();
            assert_eq!(value, &ExactValue::Ratio { num, den }, "crux variance");
        }
        "histogram256" => {
            let ExactValue::Histogram(buckets) = value else { panic!("crux histogram: {value:?}") };
            let counts: Vec<u128> = buckets.iter().map(|b| u128::try_from(b.count).unwrap()).collect();
            assert_eq!(counts, truth.histogram, "crux histogram");
        }
        "median" => assert_eq!(value, &fixed(u128::from(truth.median())), "crux median"),
        _ => {
            let ExactValue::Fixed { mantissa, decimals: 0 } = value else { panic!("crux dp median: {value:?}") };
            let distance = truth.rank_distance(*mantissa);
            // ε = 1: observed a few ranks; 0.1% of n would be far off
            assert!(distance <= truth.sorted.len() / 1000, "crux dp median {mantissa} is {distance} ranks off");
            return Some(distance);
        }
    }
    None
}

// ------------------------------------------------------------------ Prio3 side

/// One Prio3 VDAF run (1 round): every relay is a client with one report
/// of its measurement; 2 aggregators; the collector unshards. Timed step by
/// step; encoding and decoding of every message is timed apart (`codec`).
fn prio_run<V>(vdaf: &V, measurements: &[V::Measurement]) -> (V::AggregateResult, Cost)
where
    V: Client<16> + Aggregator<32, 16> + Collector<AggregationParam = ()>,
{
    let mut verify_key = [0u8; 32];
    OsRng.fill_bytes(&mut verify_key);
    let mut cost = Cost { rounds: 1, round_trips: 3, ..Cost::default() };
    // clients: shard, then the report's encoding and the aggregators' decoding
    let mut shard_max = Duration::ZERO;
    let mut reports = Vec::new();
    for m in measurements {
        let t = ThreadTime::now();
        let mut nonce = [0u8; 16];
        OsRng.fill_bytes(&mut nonce);
        let (public, inputs) = vdaf.shard(CTX, m, &nonce).unwrap();
        let took = t.elapsed();
        cost.parts[0] += took;
        shard_max = shard_max.max(took);
        let t = ThreadTime::now();
        let public_bytes = public.get_encoded().unwrap();
        let input_bytes: Vec<Vec<u8>> = inputs.iter().map(|s| s.get_encoded().unwrap()).collect();
        let publics: Vec<V::PublicShare> =
            (0..2).map(|_| V::PublicShare::get_decoded_with_param(vdaf, &public_bytes).unwrap()).collect();
        let inputs: Vec<V::InputShare> = input_bytes
            .iter()
            .enumerate()
            .map(|(a, b)| V::InputShare::get_decoded_with_param(&(vdaf, a), b).unwrap())
            .collect();
        cost.codec += t.elapsed();
        cost.bytes = nonce.len() + public_bytes.len() + input_bytes.iter().map(Vec::len).sum::<usize>();
        reports.push((nonce, publics, inputs));
    }
    let (out_shares, aggregators) = prio_verify(vdaf, &verify_key, &reports, &mut cost);
    // aggregate shares to the collector, who unshards
    let t = ThreadTime::now();
    let encoded: Vec<Vec<u8>> = out_shares.iter().map(|s| s.get_encoded().unwrap()).collect();
    let agg_shares: Vec<V::AggregateShare> =
        encoded.iter().map(|b| V::AggregateShare::get_decoded_with_param(&(vdaf, &()), b).unwrap()).collect();
    cost.codec += t.elapsed();
    let t = ThreadTime::now();
    let result = vdaf.unshard(&(), agg_shares, measurements.len()).unwrap();
    let unshard = t.elapsed();
    cost.parts[2] = unshard;
    cost.total = cost.parts[0] + cost.parts[1] + unshard;
    cost.crit = shard_max + aggregators + unshard;
    (result, cost)
}

type Report<V> = ([u8; 16], Vec<<V as prio::vdaf::Vdaf>::PublicShare>, Vec<<V as prio::vdaf::Vdaf>::InputShare>);

/// The aggregators' part, each step over the whole batch of reports (one
/// timer per aggregator and step): verify_init on each, the verifier
/// message (once per report), verify_next and aggregate on each. Adds their
/// time to `cost.parts[1]`; returns the two aggregate shares and the
/// critical path (per step the busier aggregator).
fn prio_verify<V>(
    vdaf: &V,
    verify_key: &[u8; 32],
    reports: &[Report<V>],
    cost: &mut Cost,
) -> (Vec<V::AggregateShare>, Duration)
where
    V: Aggregator<32, 16> + Collector<AggregationParam = ()>,
{
    let mut step = [[Duration::ZERO; 2]; 3];
    let mut inits: [Vec<(V::VerifyState, V::VerifierShare)>; 2] = Default::default();
    for (a, init) in inits.iter_mut().enumerate() {
        let t = ThreadTime::now();
        *init = reports
            .iter()
            .map(|(nonce, publics, inputs)| {
                vdaf.verify_init(verify_key, CTX, a, &(), nonce, &publics[a], &inputs[a]).unwrap()
            })
            .collect();
        step[0][a] = t.elapsed();
    }
    // verifier shares to the party that combines them
    let t = ThreadTime::now();
    let [leader, helper] = inits;
    let mut states: [Vec<V::VerifyState>; 2] = Default::default();
    let mut pairs = Vec::new();
    for ((s0, v0), (s1, v1)) in leader.into_iter().zip(helper) {
        let (b0, b1) = (v0.get_encoded().unwrap(), v1.get_encoded().unwrap());
        cost.prep_bytes = b0.len() + b1.len();
        pairs.push([b0, b1].map(|b| V::VerifierShare::get_decoded_with_param(&s0, &b).unwrap()));
        states[0].push(s0);
        states[1].push(s1);
    }
    cost.codec += t.elapsed();
    let t = ThreadTime::now();
    let messages: Vec<V::VerifierMessage> =
        pairs.into_iter().map(|p| vdaf.verifier_shares_to_message(CTX, &(), p).unwrap()).collect();
    let combine = t.elapsed();
    // the verifier message to both aggregators
    let t = ThreadTime::now();
    let encoded: Vec<Vec<u8>> = messages.iter().map(|m| m.get_encoded().unwrap()).collect();
    cost.prep_bytes += encoded.first().map_or(0, Vec::len);
    let inbound = states.each_ref().map(|st| {
        st.iter()
            .zip(&encoded)
            .map(|(s, b)| V::VerifierMessage::get_decoded_with_param(s, b).unwrap())
            .collect::<Vec<_>>()
    });
    cost.codec += t.elapsed();
    let mut aggregates = Vec::new();
    for (a, (st, inbound)) in states.into_iter().zip(inbound).enumerate() {
        let t = ThreadTime::now();
        let outs: Vec<V::OutputShare> = st
            .into_iter()
            .zip(inbound)
            .map(|(s, m)| match vdaf.verify_next(CTX, s, m).unwrap() {
                VerifyTransition::Finish(out) => out,
                VerifyTransition::Continue(..) => panic!("Prio3 verifies in one round"),
            })
            .collect();
        step[1][a] = t.elapsed();
        let t = ThreadTime::now();
        aggregates.push(vdaf.aggregate(&(), outs).unwrap());
        step[2][a] = t.elapsed();
    }
    cost.parts[1] += step.iter().flatten().sum::<Duration>() + combine;
    let crit = step.iter().map(|s| s[0].max(s[1])).sum::<Duration>() + combine;
    (aggregates, crit)
}

/// Prio3's version of each query over the relays' rows; the measurements
/// (local aggregates) are computed outside the timing. Checks the answer.
fn prio_query(query: &str, relays: &[Vec<u32>], truth: &Truth) -> Cost {
    let rows = ROWS as u128;
    match query {
        "count" => {
            // a relay's local count is at most its rows
            let vdaf = Prio3Sum::new_sum(2, ROWS as u64).unwrap();
            let m: Vec<u64> = relays.iter().map(|r| r.len() as u64).collect();
            let (n, cost) = prio_run(&vdaf, &m);
            assert_eq!(u128::from(n), truth.n, "prio3 count");
            cost
        }
        "sum" => {
            let vdaf = Prio3Sum::new_sum(2, u64::try_from(rows * U32_MAX).unwrap()).unwrap();
            let m: Vec<u64> = relays.iter().map(|r| u64::try_from(local_moments(r)[1]).unwrap()).collect();
            let (s, cost) = prio_run(&vdaf, &m);
            assert_eq!(u128::from(s), truth.sum, "prio3 sum");
            cost
        }
        "variance" => {
            let max = rows * U32_MAX * U32_MAX;
            let vdaf = Prio3SumVec::new_sum_vec(2, max, 3, optimal_chunk_length(3 * bits(max))).unwrap();
            let m: Vec<Vec<u128>> = relays.iter().map(|r| local_moments(r).to_vec()).collect();
            let (v, cost) = prio_run(&vdaf, &m);
            assert_eq!(v, vec![truth.n, truth.sum, truth.squares], "prio3 moments");
            cost
        }
        "histogram256" => {
            let m: Vec<Vec<u128>> = relays.iter().map(|r| local_histogram(r, 0, 24)).collect();
            let (h, cost) = prio_run(&histogram_vdaf(), &m);
            assert_eq!(h, truth.histogram, "prio3 histogram");
            cost
        }
        _ => {
            let (median, cost) = prio_median(relays);
            assert_eq!(median, truth.median(), "prio3 median");
            cost
        }
    }
}

fn bits(max: u128) -> usize {
    usize::try_from(max.ilog2() + 1).unwrap()
}

/// SumVec of 256 counts, each at most a relay's rows.
fn histogram_vdaf() -> Prio3SumVec {
    let max = ROWS as u128;
    Prio3SumVec::new_sum_vec(2, max, BUCKETS, optimal_chunk_length(BUCKETS * bits(max))).unwrap()
}

/// The exact median by 4 sequential 256-bucket SumVec rounds: each round
/// narrows [lo, lo + 2^(32-8r)) to the bucket holding the median's rank.
fn prio_median(relays: &[Vec<u32>]) -> (u32, Cost) {
    let vdaf = histogram_vdaf();
    let mut cost = Cost::default();
    let (mut lo, mut below, mut rank) = (0u64, 0u128, None);
    for round in 0..MEDIAN_ROUNDS {
        let shift = 24 - 8 * round;
        let m: Vec<Vec<u128>> = relays.iter().map(|r| local_histogram(r, lo, shift)).collect();
        let (counts, c) = prio_run(&vdaf, &m);
        cost.add(&c);
        // round 0 counts every value: the collector learns n there
        let rank = *rank.get_or_insert_with(|| counts.iter().sum::<u128>().div_ceil(2).max(1));
        let k;
        (k, below) = bucket_of_rank(&counts, below, rank);
        lo += u64::try_from(k).unwrap() << shift;
    }
    (u32::try_from(lo).unwrap(), cost)
}

// ------------------------------------------------------------------ runs and output

fn env_runs(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Field-wise median of the runs' costs (counts are the same every run).
fn median_cost(runs: &[Cost]) -> Cost {
    let mut m = runs[runs.len() / 2].clone();
    for i in 0..4 {
        m.parts[i] = median(runs.iter().map(|c| c.parts[i]).collect());
    }
    m.total = median(runs.iter().map(|c| c.total).collect());
    m.crit = median(runs.iter().map(|c| c.crit).collect());
    m.codec = median(runs.iter().map(|c| c.total + c.codec).collect()).saturating_sub(m.total);
    m.offline = median(runs.iter().map(|c| c.offline).collect());
    m
}

struct Row {
    query: &'static str,
    crux: Cost,
    prio: Cost,
    runs: usize,
    /// DP median: the median rank distance over the runs
    note: String,
}

/// Runs one query `runs` times on both systems, alternating, and checks
/// every answer; the row is named `row`.
fn measure(
    (row, query): (&'static str, &'static str),
    crux: &mut Crux,
    relays: &[Vec<u32>],
    truth: &Truth,
    runs: usize,
) -> Row {
    let (mut c, mut p, mut distances) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let (answer, cost) = crux.query(crux_params(query));
        distances.extend(check_crux(query, &answer, truth));
        c.push(cost);
        // Prio3 has no DP: its dp_median is the same 4-round SumVec job
        p.push(prio_query(query, relays, truth));
    }
    distances.sort_unstable();
    let note = match distances.get(distances.len() / 2) {
        Some(d) => format!("median rank distance {d} of n = {}", truth.n),
        None => String::new(),
    };
    Row { query: row, crux: median_cost(&c), prio: median_cost(&p), runs, note }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn print_table(relays: usize, data: &str, rows: &[Row]) {
    println!("\n== D = {relays} relays x {ROWS} rows, data = {data} (thread CPU ms; median of runs) ==");
    println!(
        "{:<19} {:>4} {:>9} {:>9} {:>9} {:>8} {:>10} {:>10} {:>7} {:>9} {:>9} {:>6} {:>10} {:>10} {:>7} {:>5} {:>5} {:>6} {:>6} {:>8} {:>8} {:>8}",
        "query", "runs", "c.rlycry", "c.auth", "c.proc", "c.solve", "Crux TOT", "Prio3 TOT", "ratio",
        "Crux crit", "P3 crit", "crit-r", "Crux+cdc", "P3+cdc", "r+cdc", "cts", "rel", "RT c", "RT p3",
        "B/rly c", "B/rly p3", "prep p3"
    );
    for r in rows {
        let (c, p) = (&r.crux, &r.prio);
        println!(
            "{:<19} {:>4} {:>9} {:>9} {:>9} {:>8} {:>10} {:>10} {:>7.2} {:>9} {:>9} {:>6.2} {:>10} {:>10} {:>7.2} {:>5} {:>5} {:>6} {:>6} {:>8} {:>8} {:>8}  {}",
            r.query, r.runs, ms(c.parts[0]), ms(c.parts[1]), ms(c.parts[2]), ms(c.parts[3]), ms(c.total),
            ms(p.total), ratio(c.total, p.total), ms(c.crit), ms(p.crit), ratio(c.crit, p.crit),
            ms(c.total + c.codec), ms(p.total + p.codec), ratio(c.total + c.codec, p.total + p.codec),
            c.ciphertexts, c.releases, c.round_trips, p.round_trips, c.bytes, p.bytes, p.prep_bytes, r.note
        );
    }
    let p3: Vec<String> = rows
        .iter()
        .map(|r| format!("{} {}/{}/{}", r.query, ms(r.prio.parts[0]), ms(r.prio.parts[1]), ms(r.prio.parts[2])))
        .collect();
    println!("Prio3 clients/aggregators/collector ms: {}", p3.join("; "));
    let pre: Vec<String> = rows.iter().map(|r| format!("{} {}", r.query, ms(r.crux.offline))).collect();
    println!(
        "Crux relays' encryptions of zero made ahead of time (all relays, between queries, in no column above) ms: {}",
        pre.join("; ")
    );
}

fn print_legend(solver_bits: (u32, u32), built: Duration) {
    println!(
        "vs_prio3: Crux (MemoryCluster, 3 authorities t = 3, min_relays = D, bounds [0, 2^32-1], exact mode; DP mode at epsilon 1 for dp_median; dlog table 2^{} built once in {:.1} s, range 2^{}) vs Prio3 (libprio 0.18.1, 2 aggregators, all steps in-process).",
        solver_bits.0, built.as_secs_f64(), solver_bits.1
    );
    println!("Prio3: count = Prio3Sum max {ROWS} (a relay's local count <= its rows); sum = Prio3Sum max {ROWS}*(2^32-1); variance = Prio3SumVec len 3 max {ROWS}*(2^32-1)^2 (84 bits per entry, Field128);");
    println!("  histogram256 = Prio3SumVec len 256 max {ROWS}; median = 4 sequential rounds of that SumVec (8 bits per round); dp_median = the same job (Prio3 has no DP); chunk lengths by prio3::optimal_chunk_length.");
    println!("TOTAL = all parties' thread CPU per query: Crux = relay crypto (relay - relay_plain, + Describe minus its column read) + authority + processor + solve; Prio3 = client shards + aggregators (verify_init, verifier_shares_to_message, verify_next, aggregate) + collector unshard.");
    println!("  Excluded: Crux relays' plaintext pass and column reads, Prio3 measurement computation, and the codec (+cdc columns add encoding/decoding of every message for both).");
    println!("crit = Crux relay_crypto_critical + Describe check / D + authority_critical + processor + solve; Prio3 slowest shard + per step the busier aggregator + combine + unshard (summed over rounds).");
    println!("ratio = Crux / Prio3. cts = ciphertexts per relay, rel = releases (Crux); RT = round trips (Crux trace; Prio3 3 per VDAF run: upload, prepare, collect); B/rly = bytes per relay (Crux encoded contributions; Prio3 nonce + public share + both input shares), summed over rounds; prep p3 = one report's 2 verifier shares + verifier message, summed over rounds.");
    println!("*_shares rows: Crux with processor.share_path on (docs/share_path.md): per round each relay commits to its components (constant time), Shamir-shares them and a blinding 3-of-3, seals a ChaCha20-Poly1305 box per decryptor (per-query ephemeral DH to the sealing key in its signed admission) and signs; the processor checks the signatures and adds the commitments; each decryptor checks them, opens its boxes and releases its sums; the processor interpolates and checks them against the commitments (no solve).");
    println!("  Same roles, budget ledger and wire encoding as the other rows; cts = sealed boxes per relay (one per decryptor a round); median_shares searches in rounds of 128 buckets (policy::WIDE_SEARCH_BUCKETS).");
    println!("  dp_median_shares: the DP median on that path (each round's buckets and two outside cells shared; each decryptor adds its own noise to its sums and commits to it). Both DP medians search in rounds of policy::noisy_search's width (24 buckets, 7 rounds over 2^32 values).");
    println!("Each figure is the median over the runs of that figure alone (runs alternate Crux and Prio3); every answer of both is checked against the plaintext.");
}

/// CPU time of one thread-CPU clock read (each timed step takes two).
fn clock_read() -> Duration {
    let reads = 100_000u32;
    let t = ThreadTime::now();
    for _ in 0..reads {
        std::hint::black_box(ThreadTime::now());
    }
    t.elapsed() / reads
}

/// Whether `VS_PRIO3_ONLY` (a comma-separated list of queries, e.g. for a
/// profile of one) lets this query run; unset: all of them.
fn chosen(query: &str) -> bool {
    std::env::var("VS_PRIO3_ONLY").map_or(true, |only| only.split(',').any(|q| q.trim() == query))
}

fn main() {
    let start = Instant::now();
    let runs = env_runs("VS_PRIO3_RUNS", 9);
    let median_runs = env_runs("VS_PRIO3_MEDIAN_RUNS", runs);
    let t = Instant::now();
    let table = Arc::new(MemoryTable::build(DLOG_TABLE_BITS).unwrap());
    let solver: Solver = Arc::new(DlogSolver::new(table, DLOG_RANGE_BITS).unwrap());
    print_legend((DLOG_TABLE_BITS, DLOG_RANGE_BITS), t.elapsed());
    println!(
        "One thread-CPU clock read costs {:.2} us here; the harness reads it around every role's handler and message, the Prio3 side around each client's shard and each aggregator's step over the batch.",
        clock_read().as_secs_f64() * 1e6
    );
    let sets = [data_set("uniform", 13, uniform), data_set("skewed", 1316, skewed)];
    let mut summary = Vec::new();
    for relays in RELAY_COUNTS {
        for data in &sets {
            let rows = &data.rows[..relays];
            let truth = Truth::new(rows);
            let mut table = Vec::new();
            let mut exact = Crux::new(data, relays, (true, false), &solver);
            for query in QUERIES[..5].iter().filter(|q| chosen(q)) {
                let n = if *query == "median" { median_runs } else { runs };
                table.push(measure((query, query), &mut exact, rows, &truth, n));
            }
            drop(exact);
            if chosen(QUERIES[5]) {
                let mut dp = Crux::new(data, relays, (false, false), &solver);
                table.push(measure((QUERIES[5], QUERIES[5]), &mut dp, rows, &truth, median_runs));
            }
            if chosen("dp_median_shares") {
                let mut dp = Crux::new(data, relays, (false, true), &solver);
                table.push(measure(("dp_median_shares", QUERIES[5]), &mut dp, rows, &truth, median_runs));
            }
            let shares: Vec<_> = SHARE_QUERIES.iter().filter(|(q, _)| chosen(q)).collect();
            if !shares.is_empty() {
                let mut shared = Crux::new(data, relays, (true, true), &solver);
                for q in shares {
                    let n = if q.1 == "median" { median_runs } else { runs };
                    table.push(measure(*q, &mut shared, rows, &truth, n));
                }
            }
            print_table(relays, data.name, &table);
            for r in &table {
                summary.push(format!(
                    "vs_prio3 D={relays} data={} query={} total_ratio={:.1} crit_ratio={:.1} round_trips={}",
                    data.name,
                    r.query,
                    ratio(r.crux.total, r.prio.total),
                    ratio(r.crux.crit, r.prio.crit),
                    r.crux.round_trips
                ));
            }
        }
    }
    println!("\nwhole bench: {:.1} s (runs {runs}, median runs {median_runs})\n", start.elapsed().as_secs_f64());
    for line in summary {
        println!("{line}");
    }
}
