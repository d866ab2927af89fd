//! What issue 9's privacy fixes cost, and whether a decryption's time still
//! depends on its noise. Prints figures (a bench binary, no assertions):
//!
//! 1. Time of one noisy decryption share, a batch of 1 (noise draw +
//!    x·a + e·G + proof), bucketed by the |noise| drawn, with the
//!    fixed-work sampler; and the same for the previous rejection sampler
//!    (kept here, for comparison only), which looped about |noise|/t times
//!    with an OS call per step.
//! 2. Proofs of randomness (one per contribution): proving, per ciphertext,
//!    and batched verification of 8 contributions, per ciphertext.
//! 3. Admissions: an authority signing one statement; a relay checking the
//!    signatures of 3 authorities.
//!
//! Run: `cargo bench --bench privacy`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use rand::rngs::OsRng;
use rand::Rng;
use rand_core::{CryptoRng, RngCore};

use crux::crypto::{
    deal_for_tests, verify_batch, BatchDecryption, Ciphertext, DecryptionShare, EncryptionKey, JointPublicKey,
    KeyShare, ProofItem, RandomnessProof,
};
use crux::stats::dp::{discrete_laplace, noise_rng};

const DRAWS: usize = 20_000;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

// ---- the previous sampler (before issue 9), for comparison only
mod old {
    use super::*;
    fn uniform_below(n: u128, rng: &mut (impl RngCore + CryptoRng)) -> u128 {
        rng.gen_range(0..n)
    }
    fn bernoulli(num: u128, den: u128, rng: &mut (impl RngCore + CryptoRng)) -> bool {
        uniform_below(den, rng) < num
    }
    fn bernoulli_exp_le1(num: u128, den: u128, rng: &mut (impl RngCore + CryptoRng)) -> bool {
        let mut k: u128 = 1;
        loop {
            let Some(kden) = den.checked_mul(k) else { return k % 2 == 1 };
            if bernoulli(num, kden, rng) {
                k += 1;
            } else {
                return k % 2 == 1;
            }
        }
    }
    fn bernoulli_exp(mut num: u128, den: u128, rng: &mut (impl RngCore + CryptoRng)) -> bool {
        while num > den {
            if !bernoulli_exp_le1(1, 1, rng) {
                return false;
            }
            num -= den;
        }
        bernoulli_exp_le1(num, den, rng)
    }
    fn geometric_exp(num: u128, den: u128, rng: &mut (impl RngCore + CryptoRng)) -> u128 {
        loop {
            let u = uniform_below(den, rng);
            if !bernoulli_exp(u, den, rng) {
                continue;
            }
            let mut v: u128 = 0;
            while bernoulli_exp_le1(1, 1, rng) {
                v += 1;
            }
            return v.saturating_mul(den).saturating_add(u) / num;
        }
    }
    pub fn discrete_laplace(t_num: u128, t_den: u128, rng: &mut (impl RngCore + CryptoRng)) -> i128 {
        loop {
            let negative = bernoulli(1, 2, rng);
            let magnitude = geometric_exp(t_den, t_num, rng);
            if negative && magnitude == 0 {
                continue;
            }
            let m = i128::try_from(magnitude).unwrap_or(i128::MAX);
            return if negative { -m } else { m };
        }
    }
}

const BUCKETS: [(&str, u128, u128); 4] = [("0", 0, 0), ("1-7", 1, 7), ("8-63", 8, 63), (">=64", 64, u128::MAX)];

/// Times `draw` (which returns the noise it used) DRAWS times; median per |noise| bucket.
fn by_noise(mut draw: impl FnMut() -> i128) -> Vec<(usize, Duration)> {
    let mut buckets: Vec<Vec<Duration>> = vec![Vec::new(); BUCKETS.len()];
    for _ in 0..DRAWS {
        let t = Instant::now();
        let noise = draw();
        let took = t.elapsed();
        let m = noise.unsigned_abs();
        if let Some(i) = BUCKETS.iter().position(|(_, lo, hi)| m >= *lo && m <= *hi) {
            buckets[i].push(took);
        }
    }
    buckets.into_iter().map(|b| (b.len(), median(b))).collect()
}

fn print_row(name: &str, rows: &[(usize, Duration)]) {
    let cells: Vec<String> =
        rows.iter().map(|(n, d)| if *n == 0 { "-".to_string() } else { format!("{} (n={n})", us(*d)) }).collect();
    println!("{name:<44} {}", cells.join("  "));
}

/// Median wall time of `runs` calls of `f`.
fn times(runs: usize, f: &mut dyn FnMut()) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let (shares, joint) = deal_for_tests(&["authority-1", "authority-2", "authority-3"], 3, 0, &mut OsRng).unwrap();
    let key = EncryptionKey::new(&joint);
    let ct = key.encrypt(5, &mut OsRng);
    let share = &shares[0];

    noise_timing(share, &ct);
    randomness_proofs(&key);
    admissions(&shares, &joint);
}

/// A noisy share of `ct` with `noise` folded in (λ = 1) and its proof: a
/// batch of one release.
fn noisy_share(
    share: &KeyShare,
    ct: &Ciphertext,
    noise: i128,
    rng: &mut (impl RngCore + CryptoRng),
) -> BatchDecryption {
    let bases = [*ct.a()];
    let one = curve25519_dalek::Scalar::ONE;
    let made = share.decryption_shares(&one, &bases, Some(&[noise]));
    let made: Vec<&DecryptionShare> = made.iter().collect();
    share.prove_decryptions(&one, b"ctx", &made, false, rng)
}

/// 1: a noisy decryption share's time (batch of 1) by the |noise| it drew.
fn noise_timing(share: &KeyShare, ct: &Ciphertext) {
    println!(
        "== noisy decryption share (batch of 1) time by |noise| drawn (median of {DRAWS} draws per scale, split by bucket) =="
    );
    println!("{:<44} {}", "", BUCKETS.map(|(n, _, _)| format!("|noise| {n}")).join("  "));
    for (t_num, label) in [(2u128, "t = 2 (count, epsilon 1)"), (25, "t = 25 (median prefix count)")] {
        let mut rng = noise_rng();
        print_row(&format!("sampler alone, fixed work, {label}"), &by_noise(|| discrete_laplace(t_num, 1, &mut rng)));
        print_row(
            &format!("sampler alone, previous, {label}"),
            &by_noise(|| old::discrete_laplace(t_num, 1, &mut OsRng)),
        );
        let mut rng = noise_rng();
        print_row(
            &format!("noisy share, fixed work, {label}"),
            &by_noise(|| {
                let e = discrete_laplace(t_num, 1, &mut rng);
                std::hint::black_box(noisy_share(share, ct, e, &mut rng));
                e
            }),
        );
        print_row(
            &format!("noisy share, previous sampler, {label}"),
            &by_noise(|| {
                let e = old::discrete_laplace(t_num, 1, &mut OsRng);
                std::hint::black_box(noisy_share(share, ct, e, &mut OsRng));
                e
            }),
        );
    }
}

/// 2: proofs of randomness, proved and batch-verified.
fn randomness_proofs(key: &EncryptionKey) {
    println!("\n== proofs of randomness (one per contribution; median of runs) ==");
    let plain = times(2000, &mut || {
        std::hint::black_box(key.encrypt(7, &mut OsRng));
    });
    println!("encryption alone                               {}", us(plain));
    for n in [1usize, 5, 64, 255] {
        let make = || {
            let mut ks = Vec::new();
            let mut cts = Vec::new();
            for m in 0..n {
                let (c, k) = key.encrypt_with_randomness(m as i64, &mut OsRng);
                cts.push(c);
                ks.push(k);
            }
            (cts, ks)
        };
        let (cts, ks) = make();
        let statement: Vec<u8> = cts.iter().flat_map(|c| c.to_bytes()).collect();
        let prove = times(51, &mut || {
            std::hint::black_box(RandomnessProof::prove(&statement, &ks, &mut OsRng));
        });
        // 8 relays' contributions verified in one batch, as an authority does
        let contributions: Vec<(Vec<u8>, Vec<_>, RandomnessProof)> = (0..8)
            .map(|_| {
                let (cts, ks) = make();
                let statement: Vec<u8> = cts.iter().flat_map(|c| c.to_bytes()).collect();
                let proof = RandomnessProof::prove(&statement, &ks, &mut OsRng);
                (statement, cts, proof)
            })
            .collect();
        let verify = times(21, &mut || {
            let batch: Vec<ProofItem> = contributions
                .iter()
                .map(|(s, cts, p)| ProofItem { statement: s, a: cts.iter().map(|c| c.a()).collect(), proof: p })
                .collect();
            assert!(verify_batch(&batch, &mut OsRng));
        });
        println!(
            "contribution of {n:>3} ciphertexts: proof {} ({} per ciphertext); batch of 8 verified: {} per ciphertext",
            us(prove),
            us(prove / n as u32),
            us(verify / (8 * n) as u32)
        );
    }
}

/// 3: an authority signs an admission; a relay checks every authority's,
/// in one batch (`AdmissionSignature`), against the one-by-one check of
/// the committee documents' (c, s) form (`AuthoritySignature`).
fn admissions(shares: &[KeyShare], joint: &JointPublicKey) {
    let share = &shares[0];
    println!("\n== admissions (median of 2000) ==");
    let statement = vec![7u8; 300];
    let sign = times(2000, &mut || {
        std::hint::black_box(share.sign_admission(&statement, &mut OsRng));
    });
    let signatures: Vec<(String, _)> =
        shares.iter().map(|s| (s.authority().to_string(), s.sign_admission(&statement, &mut OsRng))).collect();
    let check = times(2000, &mut || {
        joint.verify_threshold_signed(&statement, &signatures).unwrap();
    });
    let one_by_one: Vec<(String, _)> =
        shares.iter().map(|s| (s.authority().to_string(), s.sign_statement(&statement, &mut OsRng))).collect();
    let check_cs = times(2000, &mut || {
        joint.verify_threshold_signed(&statement, &one_by_one).unwrap();
    });
    println!("authority signs one admission    {}", us(sign));
    println!("relay checks 3 authorities' signatures {} (one batch; (c, s) one by one: {})", us(check), us(check_cs));
}
