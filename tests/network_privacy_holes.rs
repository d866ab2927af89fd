//! Regression tests for issue 9 ("close the privacy holes"), over real
//! `crux-node` processes on loopback. This test plays a dishonest processor
//! (it holds the processor's identity), alone or with one colluding relay
//! (it also reads that relay's signing key), and tries each attack the
//! review found. Each attempt must be refused; each one worked before the
//! fix (relays answered any well-formed request, ciphertexts carried no
//! proof of randomness, Describe reported the data's own precision).
//! The noise-timing root cause is measured in `benches/dp_timing.rs`; the
//! sampler's fixed work is checked in `stats::dp`'s unit tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

mod common;

use std::time::Duration;

use common::cluster::*;
use common::nodes::*;
use crux::actors::keys::unix_now;
use crux::crypto::{Ciphertext, RandomnessProof, RelayIdentity};
use crux::data::read_relay_identity;
use crux::protocol::codec;
use crux::protocol::*;
use crux::stats::{Contribution, Epsilon, QueryParams, RelayTask, Statistic};

fn exact(st: Statistic) -> QueryParams {
    QueryParams::new(st)
}

fn noisy_mean() -> QueryParams {
    let mut p = QueryParams::new(Statistic::Mean);
    p.exact = false;
    p.epsilon = Some(Epsilon::parse("0.5").unwrap());
    p.bounds = Some(("0".into(), "1000000".into()));
    p
}

async fn backend(extra: &[&str]) -> (Cluster, Peer) {
    setup();
    let mut cluster = Cluster::init(extra);
    cluster.start_all(&BACKEND);
    let evil = Peer::new(cluster.config("processor"));
    evil.wait_ready(&cluster, &BACKEND).await;
    (cluster, evil)
}

fn contribute_request(q: &Query, admission: Admission) -> RelayRequest {
    RelayRequest::Contribute {
        sealing: Vec::new(),
        spec: q.spec.clone(),
        round: 0,
        task: q.task.clone(),
        admission,
        admission_of: AdmissionOf::Round,
    }
}

// ------------------------------------------------------------------ root cause 1

/// Relays answer nothing, not even Describe, without every authority's
/// admission of that exact query, round and task.
#[actix_rt::test]
async fn relays_act_only_on_admitted_queries() {
    let (_cluster, evil) = backend(&["--exact"]).await;
    let q = evil.new_query(exact(Statistic::Sum)).await;
    let intent = q.spec.intent();
    let empty = Admission { signatures: Vec::new() };
    let one = Admission { signatures: q.query_admission.signatures[..1].to_vec() };

    // Describe: no admission, one authority's, another query's
    for (what, admission) in [("none", empty.clone()), ("authority-1 only", one)] {
        let request = RelayRequest::Describe { query: intent.clone(), admission, epoch: 0 };
        let message = relay_error(evil.relay("relay-2", &request).await);
        assert!(message.contains("not admitted"), "{what}: {message}");
    }
    let other = evil.new_query(exact(Statistic::Sum)).await;
    let request = RelayRequest::Describe { query: intent.clone(), admission: other.query_admission.clone(), epoch: 0 };
    assert!(relay_error(evil.relay("relay-2", &request).await).contains("does not match the statement"));
    // the query admission does not admit a round, nor one round another
    let message = relay_error(evil.relay("relay-2", &contribute_request(&q, q.query_admission.clone())).await);
    assert!(message.contains("not admitted"), "{message}");
    let message = relay_error(evil.relay("relay-2", &contribute_request(&q, other.admission.clone())).await);
    assert!(message.contains("not admitted"), "{message}");

    // an altered spec under the genuine round admission: bounds, exactness,
    // scale, labels, statistic; a round or task outside the admitted plan
    let mut altered = Vec::new();
    let mut s = q.spec.clone();
    s.params.bounds = Some(("0".into(), "1".into()));
    altered.push(("bounds", s, 0, q.task.clone()));
    let mut s = q.spec.clone();
    s.decimals = 38;
    altered.push(("scale", s, 0, q.task.clone()));
    let mut s = q.spec.clone();
    s.labels[2] = "2021".into();
    altered.push(("labels", s, 0, q.task.clone()));
    let mut s = q.spec.clone();
    s.params.statistic = Statistic::Variance;
    altered.push(("statistic", s, 0, q.task.clone()));
    altered.push(("round 1", q.spec.clone(), 1, q.task.clone()));
    let RelayTask::Moments { limb_bits, value_bits, sums, squares, sum_quantum, squares_quantum } = q.task.clone()
    else {
        panic!("moments")
    };
    let squares_task =
        RelayTask::Moments { limb_bits, value_bits, sums, squares: !squares, sum_quantum, squares_quantum };
    altered.push(("task", q.spec.clone(), 0, squares_task));
    for (what, spec, round, task) in altered {
        let request = RelayRequest::Contribute {
            sealing: Vec::new(),
            spec,
            round,
            task,
            admission: q.admission.clone(),
            admission_of: AdmissionOf::Round,
        };
        let message = relay_error(evil.relay("relay-2", &request).await);
        assert!(message.contains("not admitted"), "{what}: {message}");
    }

    // a replayed admission gets the very same ciphertexts, not a fresh encryption
    let first = evil.contribute(&q, "relay-2").await;
    let again = evil.contribute(&q, "relay-2").await;
    assert_eq!(first, again);

    // an admission older than the relays' window (authorities admit up to a day)
    let mut old = evil.intent(exact(Statistic::Sum));
    old.issued_at = unix_now() - 2 * 3600;
    let admission = evil.admit_query(&old).await.unwrap();
    let request = RelayRequest::Describe { query: old, admission, epoch: 0 };
    let message = relay_error(evil.relay("relay-2", &request).await);
    assert!(message.contains("outside this relay's window"), "{message}");

    // a colluding relay's key does not help: relays only trust authority signatures
    let described = evil.relay("relay-1", &RelayRequest::Describe { query: intent, admission: empty, epoch: 0 }).await;
    assert!(relay_error(described).contains("not admitted"));
    // positive control: the admitted round is served
    assert_eq!(evil.contribute(&q, "relay-3").await.relay, "relay-3");
}

/// The row-count search through data-dependent overflow (exact variance
/// with bounds (c, c)) and the maximum search through a huge scale: such
/// parameters are refused at admission, and within the caps a relay answers
/// every admitted query, whatever its data.
#[actix_rt::test]
async fn overflow_cannot_reveal_a_relays_row_count_or_maximum() {
    let (_cluster, evil) = backend(&["--exact"]).await;
    let bounded = |c: &str| {
        let mut p = exact(Statistic::Variance);
        p.bounds = Some((c.to_string(), c.to_string()));
        p
    };
    // 2^60 (n·c² overflows i128 for n ≥ 8), and the cap itself, are refused before any relay is asked
    for c in ["1152921504606846976", "140737488355328"] {
        let reason = evil.admit_query(&evil.intent(bounded(c))).await.unwrap_err();
        assert!(reason.contains("bounds must lie within ±2^47"), "{c}: {reason}");
    }
    // a huge scale is refused by every authority, and by the relays without them
    let q = evil.new_query(exact(Statistic::Max)).await;
    let mut huge = q.spec.clone();
    huge.decimals = 30;
    let reason = evil.admit_round(&huge, 0, &q.task).await.unwrap_err();
    assert!(reason.contains("differs from the admitted query") || reason.contains("scale"), "{reason}");
    // within the caps every relay answers, for every c: success does not depend on the data
    for c in ["1", "1000", "1048576", "1099511627776", "140737488355327"] {
        let q = evil.new_query(bounded(c)).await;
        for relay in RELAYS {
            let c = evil.contribute(&q, relay).await;
            assert_eq!(c.relay, relay);
        }
    }
}

// ------------------------------------------------------------------ root cause 2

/// Signs `contribution` as `relay` for the query's round 0, with `proof`.
fn forge(
    identity: &RelayIdentity,
    relay: &str,
    q: &Query,
    contribution: Contribution,
    proof: RandomnessProof,
) -> SignedContribution {
    let bytes = codec::contribution_statement(&q.spec, 0, &q.task, relay, &contribution);
    let signature = identity.sign(&q.spec.id.0, &bytes);
    SignedContribution { relay: relay.to_string(), round: 0, contribution, proof, signature }
}

/// Relay-3 colludes with the processor and signs, as its own, ciphertexts
/// made from relay-1's: the count slot would then release relay-1's sum with
/// the noise of a count. Every variant lacks a valid proof of randomness.
#[actix_rt::test]
#[allow(clippy::vec_init_then_push)] // one commented attempt a line
async fn a_colluding_relay_cannot_pass_off_other_ciphertexts_as_its_own() {
    let (cluster, evil) = backend(&["--budget", "100"]).await;
    let relay3 = read_relay_identity(&cluster.path("keys/relay-3.identity")).unwrap();
    let q = evil.new_query(noisy_mean()).await;
    let genuine = evil.contributions(&q, &RELAYS).await;
    let (c1, c2, c3) = (&genuine[0], &genuine[1], &genuine[2]);
    let parts = |c: &SignedContribution| match &c.contribution {
        Contribution::Moments { count, sum, .. } => (*count, sum.clone()),
        Contribution::Histogram { .. } => panic!("moments"),
    };
    let ((n1, s1), (n2, _), (n3, s3)) = (parts(c1), parts(c2), parts(c3));
    let with_count = |count: Ciphertext| Contribution::Moments { count, sum: s3.clone(), squares: Vec::new() };
    let other = evil.new_query(noisy_mean()).await;
    let from_other_query = evil.contribute(&other, "relay-3").await;

    let mut attempts: Vec<(&str, SignedContribution)> = Vec::new();
    // T - c1 - c2: the total count would equal relay-1's first sum limb
    attempts.push(("combined", forge(&relay3, "relay-3", &q, with_count(s1[0] - n1 - n2), c3.proof)));
    // relay-1's count as relay-3's, with relay-3's proof or with relay-1's
    attempts.push(("copied", forge(&relay3, "relay-3", &q, with_count(n1), c3.proof)));
    attempts.push(("copied with its proof", forge(&relay3, "relay-3", &q, c1.contribution.clone(), c1.proof)));
    // its own count negated
    attempts.push(("negated", forge(&relay3, "relay-3", &q, with_count(-n3), c3.proof)));
    // its own count and first sum limb swapped
    let mut sum = s3.clone();
    sum[0] = n3;
    let swapped = Contribution::Moments { count: s3[0], sum, squares: Vec::new() };
    attempts.push(("moved between slots", forge(&relay3, "relay-3", &q, swapped, c3.proof)));
    // its contribution to another query, re-signed for this one
    attempts.push((
        "moved between queries",
        forge(&relay3, "relay-3", &q, from_other_query.contribution.clone(), from_other_query.proof),
    ));
    for authority in AUTHORITIES {
        for (what, forged) in &attempts {
            let contributions = vec![c1.clone(), c2.clone(), forged.clone()];
            let reason = refusal(evil.register(authority, &q.spec, &q.task, contributions).await);
            assert!(reason.contains("relay-3") && reason.contains("proof"), "{what}: {reason}");
        }
    }
    // without the colluding relay the processor cannot even sign (see
    // network_adversary.rs); the genuine round registers (positive control)
    for authority in AUTHORITIES {
        registered(evil.register(authority, &q.spec, &q.task, genuine.clone()).await);
    }
}

// ------------------------------------------------------------------ root cause 4

/// Describe reports the decimals the relay's config declares, never the
/// precision of its data: a single 2.25 among integers changes nothing.
#[actix_rt::test]
async fn describe_reveals_the_declared_scale_not_the_datas_precision() {
    setup();
    let dir = tempfile::tempdir().unwrap();
    // a one-header CSV; relay-1's slice holds one 2.25 among integers, the
    // other slices only integers
    let mut csv = String::from("Units\n");
    for i in 0..30 {
        csv.push_str(&if i == 3 { "2.25\n".to_string() } else { format!("{}\n", i * 7) });
    }
    let data = dir.path().join("units.csv");
    std::fs::write(&data, csv).unwrap();
    let mut cluster = Cluster::init_with_data(&data, &["--exact"]);
    cluster.start_all(&BACKEND);
    let evil = Peer::new(cluster.config("processor"));
    evil.wait_ready(&cluster, &BACKEND).await;
    let mut intent = evil.intent(exact(Statistic::Sum));
    intent.labels = vec!["Units".into()];
    let admission = evil.admit_query(&intent).await.unwrap();
    let mut answers = Vec::new();
    for relay in RELAYS {
        let request = RelayRequest::Describe { query: intent.clone(), admission: admission.clone(), epoch: 0 };
        match evil.relay(relay, &request).await {
            RelayResponse::Described(info) => answers.push(info.decimals),
            other => panic!("{relay}: {other:?}"),
        }
    }
    // init declared the file's 2 decimals for every relay
    assert_eq!(answers, vec![2, 2, 2]);
    let yaml = std::fs::read_to_string(cluster.path("relay-2.yaml")).unwrap();
    assert!(yaml.contains("decimals: 2"), "{yaml}");
}

// ------------------------------------------------------------------ root cause 6

/// Status requests are rate-limited per user like queries.
#[actix_rt::test]
async fn status_requests_are_rate_limited() {
    setup();
    let mut cluster = Cluster::init(&["--exact"]);
    cluster.start_all(&BACKEND);
    cluster.start_with_env("processor", &[("CRUX__PROCESSOR__RATE_LIMIT_PER_MINUTE", "3")]);
    let user = cluster.path("user.yaml");
    let mut outcomes = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    // wait until the processor answers, then count
    loop {
        let out = cluster.status(&user);
        if String::from_utf8_lossy(&out.stdout).contains("processor") || std::time::Instant::now() > deadline {
            outcomes.push(out);
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for _ in 0..3 {
        outcomes.push(cluster.status(&user));
    }
    let refused: Vec<String> = outcomes
        .iter()
        .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
        .filter(|text| text.contains("rate limit"))
        .collect();
    assert!(!refused.is_empty(), "no status request was rate-limited");
    assert!(refused[0].contains("status requests per minute"), "{}", refused[0]);
}
