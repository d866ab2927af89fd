//! What issue 9's privacy fixes cost, and whether a decryption's time still
//! depends on its noise. Prints figures (a bench binary, no assertions):
//!
//! 1. Time of one noisy partial decryption (noise draw + x·a + e·G + proof),
//!    bucketed by the |noise| drawn, with the fixed-work sampler; and the
//!    same for the previous rejection sampler (kept here, for comparison
//!    only), which looped about |noise|/t times with an OS call per step.
//! 2. Proofs of randomness: encryption with and without a proof, one proof
//!    verified alone, and batched verification per ciphertext.
//! 3. Admissions: an authority signing one statement; a relay checking the
//!    signatures of 3 authorities.
//!
//! Run: `cargo bench --bench privacy`.

use std::time::{Duration, Instant};

use rand::rngs::OsRng;
use rand::Rng;
use rand_core::{CryptoRng, RngCore};

use crux::crypto::{verify_batch, EncryptionKey, JointPublicKey, KeyShare, ProofItem};
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

fn main() {
    let shares: Vec<KeyShare> = (1..=3).map(|i| KeyShare::generate(&format!("authority-{i}"), &mut OsRng)).collect();
    let publics: Vec<_> = shares.iter().map(|s| s.public_share(&mut OsRng)).collect();
    let joint = JointPublicKey::assemble(&publics).unwrap();
    let key = EncryptionKey::new(&joint);
    let ct = key.encrypt(5, &mut OsRng);
    let share = &shares[0];

    // 1
    println!(
        "== noisy partial decryption time by |noise| drawn (median of {DRAWS} draws per scale, split by bucket) =="
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
                std::hint::black_box(share.partial_decrypt_noisy(&ct, e, b"ctx", &mut rng));
                e
            }),
        );
        print_row(
            &format!("noisy share, previous sampler, {label}"),
            &by_noise(|| {
                let e = old::discrete_laplace(t_num, 1, &mut OsRng);
                std::hint::black_box(share.partial_decrypt_noisy(&ct, e, b"ctx", &mut OsRng));
                e
            }),
        );
    }

    // 2
    println!("\n== proofs of randomness (median of 2000) ==");
    let times = |f: &mut dyn FnMut()| {
        median(
            (0..2000)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed()
                })
                .collect(),
        )
    };
    let plain = times(&mut || {
        std::hint::black_box(key.encrypt(7, &mut OsRng));
    });
    let proved = times(&mut || {
        std::hint::black_box(key.encrypt_proved(7, b"context", 3, &mut OsRng));
    });
    let (c, p) = key.encrypt_proved(7, b"context", 3, &mut OsRng);
    let single = times(&mut || {
        std::hint::black_box(p.verify(b"context", 3, &c));
    });
    println!("encryption alone                 {}", us(plain));
    println!("encryption + proof               {} (proof adds {})", us(proved), us(proved.saturating_sub(plain)));
    println!("one proof verified alone         {}", us(single));
    for n in [8usize, 64, 256, 1024] {
        let items: Vec<_> = (0..n).map(|i| key.encrypt_proved(1, b"context", i as u32, &mut OsRng)).collect();
        let batch: Vec<ProofItem> = items
            .iter()
            .enumerate()
            .map(|(i, (c, p))| ProofItem { context: b"context", index: i as u32, ciphertext: c, proof: p })
            .collect();
        let runs: Vec<Duration> = (0..21)
            .map(|_| {
                let t = Instant::now();
                assert!(verify_batch(&batch, &mut OsRng));
                t.elapsed()
            })
            .collect();
        let m = median(runs);
        println!("batched verification, {n:>4} proofs {} per proof ({} in all)", us(m / n as u32), us(m));
    }

    // 3
    println!("\n== admissions (median of 2000) ==");
    let statement = vec![7u8; 300];
    let sign = times(&mut || {
        std::hint::black_box(share.sign_statement(&statement, &mut OsRng));
    });
    let signatures: Vec<(String, _)> =
        shares.iter().map(|s| (s.authority().to_string(), s.sign_statement(&statement, &mut OsRng))).collect();
    let check = times(&mut || {
        joint.verify_all_signed(&statement, &signatures).unwrap();
    });
    println!("authority signs one admission    {}", us(sign));
    println!("relay checks 3 authorities' signatures {}", us(check));
}
