//! Magnitudes: 10^6 rows of values near ±2^40 spread over 4 relays give the
//! exact sum, sum of squares (about 2^100), mean, variance and median, through
//! limbs that each fit the discrete-log range.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

mod common;

use common::*;
use crux::stats::{ExactValue, QueryParams, Statistic};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
fn exact_moments_and_median_near_2_pow_40() {
    let mut rng = StdRng::seed_from_u64(40);
    let limit = 1i128 << 40;
    let parts: Vec<Vec<i128>> =
        (0..4)
            .map(|_| {
                (0..250_000)
                    .map(|_| {
                        if rng.gen_bool(0.7) {
                            limit - rng.gen_range(0..1000)
                        } else {
                            -limit + rng.gen_range(0..1000)
                        }
                    })
                    .collect()
            })
            .collect();
    let all: Vec<i128> = parts.iter().flatten().copied().collect();
    let n = all.len() as i128;
    let sum: i128 = all.iter().sum();
    let squares: i128 = all.iter().map(|v| v * v).sum();
    assert!(squares > 1i128 << 99, "sum of squares is about 2^100");
    let mut sorted = all.clone();
    sorted.sort();
    let sources = generated("Generated", parts);
    let mut cluster = with_sources(sources, true, 2);
    let l = ["Generated"];

    let a = cluster.query(&l, QueryParams::new(Statistic::Count)).unwrap();
    assert_eq!(a.result.value, ExactValue::Fixed { mantissa: 1_000_000, decimals: 0 });
    let a = cluster.query(&l, QueryParams::new(Statistic::Sum)).unwrap();
    assert_eq!(a.result.value, ExactValue::Fixed { mantissa: sum, decimals: 0 });
    let a = cluster.query(&l, QueryParams::new(Statistic::Variance)).unwrap();
    let expected = crux::stats::result::reduce(n * squares - sum * sum, n * n).unwrap();
    assert_eq!(a.result.value, ExactValue::Ratio { num: expected.0, den: expected.1 });
    let a = cluster.query(&l, QueryParams::new(Statistic::Mean)).unwrap();
    let m = crux::stats::result::reduce(sum, n).unwrap();
    assert_eq!(a.result.value, ExactValue::Ratio { num: m.0, den: m.1 });
    let a = cluster.query(&l, QueryParams::new(Statistic::Median)).unwrap();
    assert_eq!(a.result.value, ExactValue::Fixed { mantissa: sorted[(n as usize) / 2 - 1], decimals: 0 });
    let a = cluster.query(&l, QueryParams::new(Statistic::Min)).unwrap();
    assert_eq!(a.result.value, ExactValue::Fixed { mantissa: sorted[0], decimals: 0 });
}
