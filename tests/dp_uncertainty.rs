//! Issue 10: every noisy answer carries its noise standard deviation and a
//! 95% interval. Seeded, so the run is reproducible. Over many noisy queries of the same column (every role's
//! real state machine, 3 authorities, epsilon 1), the truth falls inside the
//! interval about 95% of the time for count, sum and mean; for the median
//! (a rank interval turned into values with the released prefix counts) at
//! least that often. Prints the measured coverage.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

mod common;

use crux::harness::{MemoryCluster, Options};
use crux::stats::{Epsilon, QueryParams, Statistic};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TRIALS: usize = 120;

#[test]
fn the_truth_falls_inside_the_95_percent_interval_about_95_percent_of_the_time() {
    let mut rng = StdRng::seed_from_u64(95);
    let parts: Vec<Vec<i128>> = (0..3).map(|_| (0..300).map(|_| rng.gen_range(0..=1000)).collect()).collect();
    let all: Vec<i128> = parts.concat();
    let n = all.len() as f64;
    let sum: i128 = all.iter().sum();
    let mut sorted = all.clone();
    sorted.sort();
    let median = sorted[all.len().div_ceil(2) - 1];
    let truth = |st: Statistic| match st {
        Statistic::Count => n,
        Statistic::Sum => sum as f64,
        Statistic::Mean => sum as f64 / n,
        _ => median as f64,
    };
    let sources = common::generated("Units", parts);
    let mut options = Options::new(false, 2);
    options.budget = Epsilon(u64::MAX / 2);
    options.seed = Some(2026);
    let mut cluster = MemoryCluster::new(sources, options, common::solver()).unwrap();
    for st in [Statistic::Count, Statistic::Sum, Statistic::Mean, Statistic::Median] {
        let mut inside = 0;
        let mut width = 0.0;
        for _ in 0..TRIALS {
            let mut p = QueryParams::new(st);
            p.exact = false;
            p.epsilon = Some(Epsilon::parse("1").unwrap());
            if st != Statistic::Count {
                p.bounds = Some(("0".into(), "1000".into()));
            }
            let a = cluster.query(&["Units"], p).unwrap();
            let u = a.result.uncertainty.unwrap_or_else(|| panic!("{st}: a noisy answer without uncertainty"));
            assert!(u.stddev > 0.0 && u.ci95.0 <= a.result.value.to_f64() && a.result.value.to_f64() <= u.ci95.1);
            width += u.ci95.1 - u.ci95.0;
            if u.ci95.0 <= truth(st) && truth(st) <= u.ci95.1 {
                inside += 1;
            }
        }
        let coverage = inside as f64 / TRIALS as f64;
        println!(
            "{st}: truth inside the 95% interval in {inside} of {TRIALS} ({:.1}%), mean width {:.2}",
            coverage * 100.0,
            width / TRIALS as f64
        );
        if st == Statistic::Median {
            assert!(coverage >= 0.9, "{st}: coverage {coverage}");
        } else {
            // 95% ± 3 standard errors of a 120-trial proportion
            assert!((0.89..=1.0).contains(&coverage) && coverage <= 0.995, "{st}: coverage {coverage}");
        }
    }
}
