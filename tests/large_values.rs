//! Magnitudes: 10^6 rows of values near ±2^40 spread over 4 relays give the
//! exact sum, sum of squares (about 2^100), mean, variance and median, through
//! limbs that each fit the discrete-log range.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

mod common;

use common::*;
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
    assert_eq!(all.len(), 1_000_000);
    let squares: i128 = all.iter().map(|v| v * v).sum();
    assert!(squares > 1i128 << 99, "sum of squares is about 2^100");
    let mut cluster = with_sources(generated("Generated", parts), true, 2);
    check_exact_against_plaintext(&mut cluster, "Generated", &all);
}
