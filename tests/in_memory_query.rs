//! Whole queries in memory: real crypto, real spreadsheet files, every role's
//! state machine, every message through the wire encoding. Each statistic on
//! each column equals tests/data/expected_stats.json exactly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

mod common;

use common::*;
use crux::data::{read_column, SourceSpec};
use crux::stats::{Epsilon, ExactValue, QueryParams, Statistic};

fn exact(st: Statistic) -> QueryParams {
    QueryParams::new(st)
}

fn labels(l: &[String]) -> Vec<&str> {
    l.iter().map(|s| s.as_str()).collect()
}

fn check_column(cluster: &mut MemoryCluster, letter: &str, l: &[String], stats: &serde_json::Value, all: bool) {
    let lab = labels(l);
    let count = stats["count"].as_i64().unwrap() as i128;
    let a = cluster.query(&lab, exact(Statistic::Count)).unwrap();
    assert_eq!(a.result.value, ExactValue::Fixed { mantissa: count, decimals: 0 }, "{letter} count");
    assert_eq!(a.column, *l);

    let a = cluster.query(&lab, exact(Statistic::Sum)).unwrap();
    assert_eq!(a.result.value.exact_string(), stats["sum"].as_str().unwrap(), "{letter} sum");

    let a = cluster.query(&lab, exact(Statistic::Mean)).unwrap();
    let ExactValue::Ratio { num, den } = a.result.value else { panic!("mean is a ratio") };
    assert_eq!((num, den), fraction(stats["mean_exact"].as_str().unwrap()), "{letter} mean");

    let a = cluster.query(&lab, exact(Statistic::Variance)).unwrap();
    let ExactValue::Ratio { num, den } = a.result.value else { panic!("variance is a ratio") };
    assert_eq!((num, den), fraction(stats["variance_pop_exact"].as_str().unwrap()), "{letter} variance");

    let a = cluster.query(&lab, exact(Statistic::Median)).unwrap();
    assert_eq!(a.result.value.exact_string(), stats["median_lower"].as_str().unwrap(), "{letter} median");
    if all {
        let a = cluster.query(&lab, exact(Statistic::Min)).unwrap();
        assert_eq!(a.result.value.exact_string(), stats["min"].as_str().unwrap(), "{letter} min");
        let a = cluster.query(&lab, exact(Statistic::Max)).unwrap();
        assert_eq!(a.result.value.exact_string(), stats["max"].as_str().unwrap(), "{letter} max");
        let a = cluster.query(&lab, exact(Statistic::Stddev)).unwrap();
        let ExactValue::SqrtRatio { num, den } = a.result.value else { panic!("stddev is sqrt of a ratio") };
        assert_eq!((num, den), fraction(stats["variance_pop_exact"].as_str().unwrap()), "{letter} stddev");
        let std: f64 = stats["std_pop"].as_str().unwrap().parse().unwrap();
        assert!(
            (a.result.value.to_f64() - std).abs() <= 1e-6 * std.max(1.0),
            "{letter} stddev {}",
            a.result.value.to_f64()
        );
    }
}

#[test]
fn every_column_every_statistic_three_relays_xlsx() {
    let mut cluster = memory_cluster("areas.xlsx", 3, true, 2);
    for (letter, l, stats) in expected_columns() {
        check_column(&mut cluster, &letter, &l, &stats, true);
    }
}

/// Every file format and every relay count 1..5, every column: count, sum,
/// mean, variance and median (all statistics where N = 5).
#[test]
fn every_format_every_relay_count_every_column() {
    let columns = expected_columns();
    for (file, relays) in [
        ("areas.xls", 1),
        ("areas.ods", 2),
        ("areas.csv", 4),
        ("areas.xlsx", 5),
        ("areas.csv", 5),
        ("areas.xls", 3),
        ("areas.ods", 4),
    ] {
        let mut cluster = memory_cluster(file, relays, true, 1);
        for (letter, l, stats) in &columns {
            check_column(&mut cluster, letter, l, stats, relays == 5);
        }
    }
}

/// Ciphertexts per relay and decryptions per query stay logarithmic in the
/// value range (quantile searches) or fixed (moments), whatever the rows.
#[test]
fn ciphertexts_and_decryptions_per_query() {
    let mut cluster = memory_cluster("areas.xlsx", 3, true, 2);
    let l = ["Population", "All usual residents", "2021"];
    let limb_bits = cluster.view.limb_bits(3);
    cluster.query(&l, exact(Statistic::Count)).unwrap();
    // a count encrypts its count only: no sum limbs it would never release
    assert_eq!(costs(&cluster), (1, 1, 1));
    // no bounds, 0 decimals: |v| < 2^47, so |Σv| < 2^79 and Σv² < 2^126
    // for 2^32 rows: limbs for 79 and 126 bits
    let (sums, squares) = crux::stats::limbs::moment_limbs(47, limb_bits).unwrap();
    assert_eq!((sums, squares), (79u32.div_ceil(limb_bits), 126u32.div_ceil(limb_bits)));
    let (sums, squares) = (sums as usize, squares as usize);
    cluster.query(&l, exact(Statistic::Mean)).unwrap();
    assert_eq!(costs(&cluster), (1, 1 + sums, 1 + sums));
    cluster.query(&l, exact(Statistic::Variance)).unwrap();
    assert_eq!(costs(&cluster), (1, 1 + sums + squares, 1 + sums + squares));
    // relays contribute round 0 under the query's admission
    assert_eq!(cluster.trace.round_trips, 2 + 2, "admission, description, then contribute, register");
    // bounds [0, 100000] (< 2^17): limbs for 49 and 66 bits, fewer than without
    let mut bounded = exact(Statistic::Variance);
    bounded.bounds = Some(("0".into(), "100000".into()));
    cluster.query(&l, bounded).unwrap();
    let (s, q) = (49u32.div_ceil(limb_bits) as usize, 66u32.div_ceil(limb_bits) as usize);
    assert!(s + q < sums + squares);
    assert_eq!(costs(&cluster), (1, 1 + s + q, 1 + s + q));
    // median 6469, values below 2^47: the 25 magnitude buckets by nibble
    // length put it in bucket 16 = [16^3, 16^4 - 1]; the total and all 24
    // cuts in one step; then 16-bucket refinements of widths 3840, 240, 15
    // (15 cuts each) and a last one of 15 single values (14 cuts)
    cluster.query(&l, exact(Statistic::Median)).unwrap();
    assert_eq!(costs(&cluster), (5, 25 + 3 * 16 + 15, 1 + 24 + 3 * 15 + 14));
    // admission, description; each round: contributions (round 0 under the
    // query's admission), then the registration with every cut (and the
    // next round's admission)
    assert_eq!(cluster.trace.round_trips, 2 + 5 * 2);
    // progress as `ProcessorRequest::Progress` reports it: (0, 0) while
    // admitting and describing, then rounds started out of the exact
    // search's 13 (the magnitude round and 12 refinements of the widest
    // bucket, [16^11, 16^12 - 1])
    let progress = &cluster.trace.progress;
    assert_eq!(progress.first(), Some(&(0, 0)), "{progress:?}");
    assert!(progress.windows(2).all(|w| w[0].0 <= w[1].0), "rounds never go back: {progress:?}");
    assert!(progress.contains(&(1, 13)) && progress.contains(&(5, 13)), "{progress:?}");
    assert!(progress.iter().all(|p| p.0 <= 5 && p.1 <= 13), "{progress:?}");
    // a 2-decimal column: values below 2^47 · 100 < 2^54, so 29 magnitude
    // buckets; values up to 2^19 hundredths, still a handful of rounds
    cluster.query(&["Population", "Persons per square kilometre", "2021"], exact(Statistic::Median)).unwrap();
    let (rounds, cts, releases) = costs(&cluster);
    assert!(rounds <= 6 && cts <= 29 + 5 * 16 && releases <= 1 + 28 + 5 * 15, "{:?}", costs(&cluster));
    assert_eq!(cluster.trace.round_trips, 2 + 2 * rounds, "{:?}", costs(&cluster));
    let mut h = exact(Statistic::Histogram);
    h.edges = vec!["0".into(), "1000".into(), "10000".into()];
    cluster.query(&["Land"], h).unwrap();
    assert_eq!(costs(&cluster), (1, 4, 4));
}

/// The plaintext column, read directly, as the reference for quantiles and histograms.
fn plaintext(letter: &str, l: &[String]) -> (Vec<i128>, u32) {
    let spec = SourceSpec::new(data_path("areas.xlsx")).with_header_rows(3);
    let c = read_column(&spec, l).unwrap();
    assert_eq!(c.column_ref, letter);
    (c.values, c.decimals)
}

#[test]
fn quantiles_histograms_and_sample_variance() {
    let mut cluster = memory_cluster("areas.xlsx", 3, true, 2);
    quantiles_and_histograms(&mut cluster);
}

fn quantiles_and_histograms(cluster: &mut MemoryCluster) {
    for (letter, l, stats) in expected_columns().into_iter().filter(|(c, _, _)| ["D", "M", "Q"].contains(&c.as_str())) {
        let (mut values, decimals) = plaintext(&letter, &l);
        values.sort();
        for p in ["0", "0.1", "0.25", "0.9", "0.99", "1"] {
            let mut params = exact(Statistic::Quantile);
            params.quantile = Some(p.to_string());
            let a = cluster.query(&labels(&l), params).unwrap();
            let (num, den) = crux::stats::statistic::quantile_fraction(p).unwrap();
            let rank = crux::stats::statistic::quantile_rank((num, den), values.len() as i128).unwrap();
            let expected = values[(rank - 1) as usize];
            assert_eq!(a.result.value, ExactValue::Fixed { mantissa: expected, decimals }, "{letter} p={p}");
        }
        // histogram over three edges
        let edges = ["0", "1", "100"];
        let mut params = exact(Statistic::Histogram);
        params.edges = edges.iter().map(|s| s.to_string()).collect();
        let a = cluster.query(&labels(&l), params).unwrap();
        let ExactValue::Histogram(buckets) = &a.result.value else { panic!("histogram") };
        let scale = 10i128.pow(decimals);
        let e: Vec<i128> = [0, 1, 100].iter().map(|x| x * scale).collect();
        let want = [
            values.iter().filter(|v| **v < e[0]).count(),
            values.iter().filter(|v| **v >= e[0] && **v < e[1]).count(),
            values.iter().filter(|v| **v >= e[1] && **v < e[2]).count(),
            values.iter().filter(|v| **v >= e[2]).count(),
        ];
        let got: Vec<usize> = buckets.iter().map(|b| b.count as usize).collect();
        assert_eq!(got, want, "{letter} histogram");
        // sample variance = population variance * n / (n - 1)
        let mut params = exact(Statistic::Variance);
        params.sample = true;
        let a = cluster.query(&labels(&l), params).unwrap();
        let ExactValue::Ratio { num, den } = a.result.value else { panic!() };
        let (pn, pd) = fraction(stats["variance_pop_exact"].as_str().unwrap());
        let n = stats["count"].as_i64().unwrap() as i128;
        assert_eq!((num, den), crux::stats::result::reduce(pn * n, pd * (n - 1)).unwrap(), "{letter} sample variance");
    }
}

#[test]
fn noisy_queries_are_charged_and_refused_when_the_budget_is_spent() {
    let mut cluster = memory_cluster("areas.xlsx", 3, false, 2);
    let l = ["Population", "All usual residents", "2021"];
    // exact mode is refused where the authorities do not allow it
    let err = cluster.query(&l, exact(Statistic::Sum)).unwrap_err();
    assert!(err.to_string().contains("exact"), "{err}");
    let mut params = QueryParams::new(Statistic::Mean);
    params.exact = false;
    params.epsilon = Some(Epsilon::parse("4").unwrap());
    params.bounds = Some(("0".into(), "3000000".into()));
    let a = cluster.query(&l, params.clone()).unwrap();
    assert!(!a.exact);
    let mean = a.result.value.to_f64();
    assert!(mean.is_finite() && (mean - 34141.74).abs() < 34141.74, "noisy mean {mean}");
    let a = cluster.query(&l, params.clone()).unwrap();
    assert!(a.result.value.to_f64().is_finite());
    // 8 of 10 spent: a third query of epsilon 4 is refused with the budget in the message
    let err = cluster.query(&l, params).unwrap_err().to_string();
    assert!(err.contains("budget") && err.contains("remaining budget is epsilon 2"), "{err}");
    // a noisy median within bounds lands near the truth (epsilon 2, 1 + 6*4 releases)
    let mut params = QueryParams::new(Statistic::Median);
    params.exact = false;
    params.epsilon = Some(Epsilon::parse("2").unwrap());
    params.bounds = Some(("0".into(), "3000000".into()));
    let a = cluster.query(&l, params).unwrap();
    assert!(a.result.value.to_f64() >= 0.0 && a.result.value.to_f64() <= 3_000_000.0);
}

#[test]
fn noisy_moments_of_large_values_fit_the_discrete_log_range() {
    // sums of squares of population counts (about 10^13) exceed the solver's
    // range; with noise they are released at a resolution near the noise scale
    let mut cluster = memory_cluster("areas.xlsx", 3, false, 2);
    let l = ["Population", "All usual residents", "2021"];
    for (st, eps) in [(Statistic::Variance, "3"), (Statistic::Sum, "3"), (Statistic::Stddev, "3")] {
        let mut params = QueryParams::new(st);
        params.exact = false;
        params.epsilon = Some(Epsilon::parse(eps).unwrap());
        params.bounds = Some(("0".into(), "3000000".into()));
        let a = cluster.query(&l, params).unwrap();
        assert!(a.result.value.to_f64().is_finite(), "{st}");
    }
    // a tight bound keeps the noisy sum near the truth: sum of values clamped to [0, 100000]
    let mut cluster = memory_cluster("areas.xlsx", 3, false, 2);
    let mut params = QueryParams::new(Statistic::Sum);
    params.exact = false;
    params.epsilon = Some(Epsilon::parse("5").unwrap());
    params.bounds = Some(("0".into(), "100000".into()));
    let a = cluster.query(&l, params).unwrap();
    let (values, _) =
        plaintext("H", &["Population".to_string(), "All usual residents".to_string(), "2021".to_string()]);
    let truth: i128 = values.iter().map(|v| (*v).min(100_000)).sum();
    // noise: 3 authorities, scale 100001 * 2 / 5 each: std about 1.41 * 40000 * 1.73, so 10 std is 1e6
    assert!((a.result.value.to_f64() - truth as f64).abs() < 1.0e6, "noisy {} truth {truth}", a.result.value.to_f64());
}

#[test]
fn no_plaintext_in_any_message() {
    let mut cluster = memory_cluster("areas.xlsx", 3, true, 2);
    cluster.transcript = Some(Vec::new());
    let (letter, l, _) = expected_columns().into_iter().find(|(c, _, _)| c == "N").unwrap();
    for st in [Statistic::Sum, Statistic::Variance, Statistic::Median] {
        cluster.query(&labels(&l), exact(st)).unwrap();
    }
    let (values, _) = plaintext(&letter, &l);
    // every distinct value's fixed-point encoding as msgpack integers, and as text
    let mut needles: Vec<Vec<u8>> = Vec::new();
    for v in values.iter().filter(|v| v.unsigned_abs() >= 100_000) {
        needles.push(rmp_serde::to_vec(&(*v as i64)).unwrap());
        needles.push(v.to_string().into_bytes());
    }
    let mut checked = 0;
    for msg in cluster.transcript.as_ref().unwrap() {
        for n in &needles {
            assert!(!msg.windows(n.len()).any(|w| w == n.as_slice()), "a plaintext value appears in a message");
            checked += 1;
        }
    }
    assert!(checked > 1000);
}

/// Regression (found by tests/network_adversary.rs): a query naming another
/// dataset would have been charged to a fresh budget; authorities refuse it.
#[test]
fn authorities_refuse_queries_for_another_dataset() {
    let mut cluster = memory_cluster("areas.xlsx", 3, true, 2);
    let mut view = (*cluster.view).clone();
    view.dataset = "areas-2".into();
    cluster.view = std::sync::Arc::new(view);
    let err = cluster.query(&["Land"], exact(Statistic::Count)).unwrap_err().to_string();
    assert!(err.contains("guards dataset \"areas\""), "{err}");
}

/// The processor leaves signatures and proofs of randomness to the
/// authorities and checks them only when the authorities refuse a round's
/// registration: a relay whose contribution fails either is then left out
/// of round 0 (the round registered again, one round trip more) and the
/// answer is the other relays' exact one; in a later round of a search the
/// query fails naming the relay (its rounds must cover the same relays).
#[test]
fn a_relay_whose_signature_or_proof_fails_is_left_out_after_the_refusal() {
    use crux::protocol::error::PeerReply;
    use crux::protocol::messages::{RelayRequest, RelayResponse};
    let l = ["Population", "All usual residents", "2021"];
    // the reference: relays 1 and 3 alone (the same shards of three)
    let mut reference = memory_cluster("areas.xlsx", 3, true, 2);
    reference.relays.remove(1);
    let sum_of_two = reference.query(&l, exact(Statistic::Sum)).unwrap().result.value;
    let median_of_two = reference.query(&l, exact(Statistic::Median)).unwrap().result.value;
    let mut clean = memory_cluster("areas.xlsx", 3, true, 2);
    let sum_of_three = clean.query(&l, exact(Statistic::Sum)).unwrap().result.value;
    assert_ne!(sum_of_two, sum_of_three, "relay-2's shard counts");
    let clean_trips = clean.trace.round_trips;

    // relay-2 answers round `round` with relay-1's proof or signature
    fn tamper(round: u32, signature: bool) -> crux::harness::RelayHook {
        Box::new(move |request: &RelayRequest, replies: &mut Vec<PeerReply<RelayResponse>>| {
            let RelayRequest::Contribute { round: asked, .. } = request else { return };
            if *asked != round {
                return;
            }
            let first = replies.iter().find_map(|r| match &r.reply {
                Ok(RelayResponse::Contribution(c)) if c.relay == "relay-1" => Some((c.proof, c.signature.clone())),
                _ => None,
            });
            let (proof, sig) = first.unwrap();
            for r in replies.iter_mut().filter(|r| r.peer == "relay-2") {
                if let Ok(RelayResponse::Contribution(c)) = &mut r.reply {
                    if signature {
                        c.signature = sig.clone();
                    } else {
                        c.proof = proof;
                    }
                }
            }
        })
    }
    for signature in [false, true] {
        let mut cluster = memory_cluster("areas.xlsx", 3, true, 2);
        cluster.relay_hook = Some(tamper(0, signature));
        let a = cluster.query(&l, exact(Statistic::Sum)).unwrap();
        assert_eq!(a.result.value, sum_of_two, "signature {signature}");
        assert_eq!(a.relays, ["relay-1", "relay-3"]);
        let (missing, why) = &a.missing_relays[0];
        assert_eq!(missing, "relay-2");
        let expected = if signature { "signature" } else { "proof of randomness does not verify" };
        assert!(why.contains(expected), "{why}");
        assert_eq!(cluster.trace.round_trips, clean_trips + 1, "the round registered again");
        // a search: left out in round 0, the same relays to the end
        let a = cluster.query(&l, exact(Statistic::Median)).unwrap();
        assert_eq!(a.result.value, median_of_two);
        // in round 1 the query fails, naming relay-2
        cluster.relay_hook = Some(tamper(1, signature));
        let e = cluster.query(&l, exact(Statistic::Median)).unwrap_err().to_string();
        assert!(e.contains("relay-2") && e.contains(expected), "{e}");
    }
}

/// The committed-share path (`processor.share_path`): every exact
/// statistic on every column equals the expected value, and quantiles and
/// histograms the plaintext's, with 3 relays and a 2-of-3 committee too.
#[test]
fn every_column_every_statistic_on_the_share_path() {
    for (authorities, threshold) in [(3, None), (3, Some(2))] {
        let cluster = memory_cluster("areas.xlsx", 3, true, 2);
        let sources = cluster.relays.into_iter().map(|(_, source)| source).collect();
        let options =
            crux::harness::Options { authorities, threshold, share_path: true, ..crux::harness::Options::new(true, 2) };
        let mut cluster = MemoryCluster::new(sources, options, solver()).unwrap();
        for (letter, l, stats) in expected_columns() {
            check_column(&mut cluster, &letter, &l, &stats, true);
            // the last query, a stddev, went on the share path: no ciphertext,
            // no partial decryption, one box per decryptor, 4 rounds' trips
            let t = &cluster.trace;
            assert_eq!((t.ciphertexts_per_relay, t.partial_decryptions), (0, 0), "{letter}");
            assert_eq!(t.share_boxes_per_relay, threshold.unwrap_or(3), "{letter}");
            assert!(t.share_sums > 0, "{letter}");
            assert_eq!(t.round_trips, 4, "{letter}");
        }
        quantiles_and_histograms(&mut cluster);
        // a median: every round on the share path, in rounds of 128
        // buckets: the magnitude round puts 6469 in [16^3, 16^4 − 1], then
        // buckets of 480, 4 and 1: 4 rounds where the ElGamal path takes 5
        cluster.query(&["Population", "All usual residents", "2021"], exact(Statistic::Median)).unwrap();
        let t = &cluster.trace;
        assert_eq!((t.ciphertexts_per_relay, t.partial_decryptions), (0, 0));
        assert_eq!(t.rounds, 4);
        assert_eq!(t.round_trips, 2 + 4 * 2);
    }
}

/// On the share path a relay whose signature fails is left out after a
/// decryptor refuses the round (the processor checks signatures only
/// then), and one whose box does not open at a decryptor likewise; the
/// answer is the other relays' exact one.
#[test]
fn a_relay_whose_shares_fail_is_left_out_after_the_refusal_on_the_share_path() {
    use crux::protocol::error::PeerReply;
    use crux::protocol::messages::{RelayRequest, RelayResponse};
    let l = ["Population", "All usual residents", "2021"];
    let shared = |cluster: MemoryCluster| {
        let sources = cluster.relays.into_iter().map(|(_, source)| source).collect();
        let options = crux::harness::Options { share_path: true, ..crux::harness::Options::new(true, 2) };
        MemoryCluster::new(sources, options, solver()).unwrap()
    };
    let mut reference = memory_cluster("areas.xlsx", 3, true, 2);
    reference.relays.remove(1);
    let mut reference = shared(reference);
    let sum_of_two = reference.query(&l, exact(Statistic::Sum)).unwrap().result.value;
    let mut clean = shared(memory_cluster("areas.xlsx", 3, true, 2));
    let sum_of_three = clean.query(&l, exact(Statistic::Sum)).unwrap().result.value;
    assert_ne!(sum_of_two, sum_of_three, "relay-2's shard counts");
    let clean_trips = clean.trace.round_trips;
    // relay-2's shares with relay-1's signature, or with relay-1's boxes
    // (validly signed by nobody: the signature fails too)
    for what in ["signature", "boxes"] {
        let mut cluster = shared(memory_cluster("areas.xlsx", 3, true, 2));
        cluster.relay_hook =
            Some(Box::new(move |request: &RelayRequest, replies: &mut Vec<PeerReply<RelayResponse>>| {
                if !matches!(request, RelayRequest::Contribute { .. }) {
                    return;
                }
                let first = replies.iter().find_map(|r| match &r.reply {
                    Ok(RelayResponse::Shares(s)) if s.relay == "relay-1" => Some((**s).clone()),
                    _ => None,
                });
                let first = first.unwrap();
                for r in replies.iter_mut().filter(|r| r.peer == "relay-2") {
                    if let Ok(RelayResponse::Shares(s)) = &mut r.reply {
                        match what {
                            "signature" => s.signature = first.signature.clone(),
                            _ => s.boxes = first.boxes.clone(),
                        }
                    }
                }
            }));
        let a = cluster.query(&l, exact(Statistic::Sum)).unwrap();
        assert_eq!(a.result.value, sum_of_two, "{what}");
        assert_eq!(a.relays, ["relay-1", "relay-3"], "{what}");
        let (missing, why) = &a.missing_relays[0];
        assert_eq!(missing, "relay-2");
        assert!(why.contains("signature"), "{what}: {why}");
        assert_eq!(cluster.trace.round_trips, clean_trips + 1, "the round registered again");
    }
}

/// A histogram wider than the tabled commitment generators
/// (`crypto::shares::TABLED_BUCKETS`) on the share path: relays commit by
/// multiscalar multiplication, the processor checks without
/// precomputation, and every bucket equals the plaintext's.
#[test]
fn a_histogram_wider_than_the_tabled_generators_on_the_share_path() {
    let cluster = memory_cluster("areas.xlsx", 3, true, 2);
    let sources = cluster.relays.into_iter().map(|(_, source)| source).collect();
    let options = crux::harness::Options { share_path: true, ..crux::harness::Options::new(true, 2) };
    let mut cluster = MemoryCluster::new(sources, options, solver()).unwrap();
    let (letter, l, _) = expected_columns().into_iter().find(|(c, _, _)| c == "H").unwrap();
    let (values, decimals) = plaintext(&letter, &l);
    let scale = 10i128.pow(decimals);
    let edges: Vec<i128> = (0..300).map(|k| k * 100 * scale).collect();
    let mut params = exact(Statistic::Histogram);
    params.edges = edges.iter().map(|e| (e / scale).to_string()).collect();
    let a = cluster.query(&labels(&l), params).unwrap();
    let ExactValue::Histogram(buckets) = &a.result.value else { panic!("histogram") };
    assert_eq!(buckets.len(), edges.len() + 1);
    let mut want = vec![0usize; edges.len() + 1];
    for v in &values {
        want[edges.iter().filter(|e| *e <= v).count()] += 1;
    }
    let got: Vec<usize> = buckets.iter().map(|b| b.count as usize).collect();
    assert_eq!(got, want);
    assert_eq!((cluster.trace.ciphertexts_per_relay, cluster.trace.share_boxes_per_relay), (0, 3));
}

/// A registration is tailored per decryptor only on the share path: an
/// ElGamal registration is the same request for every authority (one
/// encoding), a registration of shares carries each decryptor's own box.
#[test]
fn only_registrations_of_shares_are_tailored_per_decryptor() {
    use crux::protocol::messages::AuthorityRequest;
    use std::sync::{Arc, Mutex};
    let l = ["Population", "All usual residents", "2021"];
    for share_path in [false, true] {
        let cluster = memory_cluster("areas.xlsx", 3, true, 2);
        let sources = cluster.relays.into_iter().map(|(_, source)| source).collect();
        let options = crux::harness::Options { share_path, ..crux::harness::Options::new(true, 2) };
        let mut cluster = MemoryCluster::new(sources, options, solver()).unwrap();
        let seen: Arc<Mutex<Vec<bool>>> = Arc::default();
        let record = seen.clone();
        cluster.authority_hook = Some(Box::new(move |request: &AuthorityRequest, _: &mut _| {
            if matches!(request, AuthorityRequest::Register { .. }) {
                record.lock().unwrap().push(request.for_authority("authority-1").is_some());
            }
        }));
        cluster.query(&l, exact(Statistic::Sum)).unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![share_path], "share path {share_path}");
    }
}
