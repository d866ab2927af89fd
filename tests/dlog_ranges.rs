//! A discrete-log range that validates always works (issue 13): counts of
//! rows, buckets and prefixes are solved up to relays·2^32 whatever the
//! configured range, and limbs are sized from the range, the table and the
//! relay count, so every aggregated limb stays inside the range and cheap to
//! solve. Here a 2^10 table with the smallest range config accepts
//! (dlog_range_bits = dlog_table_bits), 3 relays and 3·6000 rows: the count
//! is beyond the range, and exact answers still come out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;

use common::*;
use crux::crypto::{DlogSolver, MemoryTable};
use crux::harness::{MemoryCluster, Options};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TABLE_BITS: u32 = 10;

fn small_range_cluster(parts: Vec<Vec<i128>>) -> MemoryCluster {
    let solver = Arc::new(DlogSolver::new(Arc::new(MemoryTable::build(TABLE_BITS).unwrap()), TABLE_BITS).unwrap());
    MemoryCluster::new(generated("Generated", parts), Options::new(true, 2), solver).unwrap()
}

#[test]
fn counts_beyond_the_range_and_limbs_inside_it_give_exact_answers() {
    let mut rng = StdRng::seed_from_u64(13);
    let parts: Vec<Vec<i128>> = (0..3).map(|_| (0..6000).map(|_| rng.gen_range(-5000..100_000)).collect()).collect();
    let all: Vec<i128> = parts.iter().flatten().copied().collect();
    assert!(all.len() > 1 << TABLE_BITS, "the count is beyond the configured range");
    let mut cluster = small_range_cluster(parts);
    // the limb width leaves room for 3 relays inside 2^10: 8 bits
    assert_eq!(cluster.view.limb_bits(3), TABLE_BITS - 2);
    check_exact_against_plaintext(&mut cluster, "Generated", &all);
}

#[test]
fn limbs_are_sized_for_cheap_solving_with_the_default_range() {
    // the shared test solver: a 2^16 table, |m| < 2^30; the default
    // processor: a 2^22 table, |m| < 2^36
    let cluster = with_sources(generated("Generated", vec![vec![1], vec![2]]), true, 2);
    let view = &cluster.view;
    assert_eq!(view.limb_bits(2), 16 + 8 - 2, "the table binds: 2^22 per relay, below 2^24 summed over 2");
    let mut wide = (**view).clone();
    (wide.dlog_max_abs, wide.dlog_table_bits) = (1 << 36, 22);
    assert_eq!(wide.limb_bits(8), 22 + 8 - 4, "the table binds: summed over 8 relays a limb stays below 2^30");
    assert_eq!(wide.limb_bits(1000), 20);
    // counts are searched up to relays·2^32 (and one bit for noise)
    assert_eq!(wide.dlog_bound(crux::stats::Release::Count, 8), 1 << 37);
    assert_eq!(wide.dlog_bound(crux::stats::Release::HistPrefix(3), 1000), 1 << 43);
    assert_eq!(wide.dlog_bound(crux::stats::Release::SumLimb(0), 1000), 1 << 36);
    // exact releases that cannot be negative are searched on the positive side only
    use crux::crypto::DlogRange;
    use crux::stats::Release::{Count, HistSuffix, Squares, SquaresLimb, Sum, SumLimb};
    let range = |r, exact, nonnegative_values| wide.dlog_range(r, 8, exact, nonnegative_values);
    assert_eq!(range(Count, true, false), DlogRange::nonnegative(1 << 37));
    assert_eq!(range(HistSuffix(2), true, false), DlogRange::nonnegative(1 << 37));
    assert_eq!(range(SquaresLimb(1), true, false), DlogRange::nonnegative(1 << 36));
    assert_eq!(range(SumLimb(0), true, false), DlogRange::symmetric(1 << 36), "values may be negative");
    assert_eq!(range(SumLimb(0), true, true), DlogRange::nonnegative(1 << 36));
    // noisy releases can be negative whatever they count
    for r in [Count, HistSuffix(2), Sum, Squares] {
        assert_eq!(range(r, false, true), DlogRange::symmetric(wide.dlog_bound(r, 8)), "{r:?}");
    }
}
