//! The committed-share path (docs/share_path.md, `processor.share_path`)
//! tried as a dishonest processor would, alone or with one colluding relay:
//! real `crux-node` processes on loopback (authorities and relays, written
//! by `crux-node init`), this test holding the processor's identity and, in
//! the collusion tests, relay-3's signing key. One test per row of
//! SECURITY.md's share-path table; each attempt is refused or detected,
//! with a control that the honest version goes through.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

mod common;

use common::nodes::*;

use crux::crypto::shares::{
    generators_for, reconstruct, seal, share_values, signed_value, Ephemeral, SealingKey, SealingSecret,
};
use crux::crypto::{scalar_from_i64, RelayIdentity};
use crux::data::read_relay_identity;
use crux::protocol::shares::{combine_sums, commitment};
use crux::protocol::*;
use crux::stats::contribution::PlainAggregate;
use crux::stats::limbs::MAX_LIMB_BITS;
use crux::stats::release::target;
use crux::stats::{Epsilon, PlanStep, Planner, QueryParams, RelayTask, Release, Statistic};
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::traits::Identity;
use curve25519_dalek::Scalar;
use rand::rngs::OsRng;

/// Column C of areas.xlsx (`LABELS`): 411 values summing to 10630925.
const COUNT_C: i128 = 411;
const SUM_C: i128 = 10_630_925;

fn exact_sum() -> QueryParams {
    QueryParams::new(Statistic::Sum)
}

/// The decryptors' sealing grants, in the spec's order.
type Grants = Vec<(String, SealingGrant)>;

/// An exact query admitted with the decryptors' sealing keys, as the
/// processor runs it on the share path: round 0 under the query's admission.
#[derive(Clone)]
struct SharedQuery {
    spec: QuerySpec,
    task: RelayTask,
    admission: Admission,
    grants: Vec<(String, SealingGrant)>,
}

async fn shared_query(evil: &Peer, params: QueryParams) -> SharedQuery {
    let intent = evil.intent(params.clone());
    let (mut signatures, mut grants) = (Vec::new(), Vec::new());
    for authority in AUTHORITIES {
        let request =
            AuthorityRequest::AdmitQuery { query: intent.clone(), user: "user".into(), epoch: 0, sealing: true };
        match evil.authority(authority, &request).await {
            AuthorityResponse::Admitted { signature, sealing: Some(grant), .. } => {
                signatures.push((authority.to_string(), signature));
                grants.push((authority.to_string(), grant));
            }
            other => panic!("{authority}: {other:?}"),
        }
    }
    let admission = Admission { signatures };
    let describe = RelayRequest::Describe { query: intent.clone(), admission: admission.clone(), epoch: 0 };
    let RelayResponse::Described(info) = evil.relay("relay-1", &describe).await else { panic!("describe") };
    let decimals = info.decimals.max(params.parameter_decimals().unwrap());
    let decryptors = AUTHORITIES.iter().map(|a| a.to_string()).collect();
    let spec = QuerySpec::new(intent, decimals, 0, decryptors);
    let PlanStep::Round { round: 0, task } = Planner::new(params, decimals, MAX_LIMB_BITS).unwrap().start().unwrap()
    else {
        panic!("a plan starts with round 0")
    };
    SharedQuery { spec, task, admission, grants }
}

fn contribute(q: &SharedQuery, sealing: Vec<(String, SealingGrant)>) -> RelayRequest {
    RelayRequest::Contribute {
        spec: q.spec.clone(),
        round: 0,
        task: q.task.clone(),
        admission: q.admission.clone(),
        admission_of: AdmissionOf::Query,
        sealing,
    }
}

async fn shares(evil: &Peer, q: &SharedQuery, relay: &str) -> SignedShares {
    match evil.relay(relay, &contribute(q, q.grants.clone())).await {
        RelayResponse::Shares(s) => *s,
        other => panic!("{relay}: {other:?}"),
    }
}

async fn register(
    evil: &Peer,
    authority: &str,
    q: &SharedQuery,
    shared: Vec<SignedShares>,
    releases: Vec<Release>,
) -> AuthorityResponse {
    let request = AuthorityRequest::Register {
        spec: q.spec.clone(),
        round: 0,
        task: q.task.clone(),
        contributions: Vec::new(),
        releases,
        shared,
    };
    evil.authority(authority, &request).await
}

fn sums(response: AuthorityResponse) -> ShareSums {
    match response {
        AuthorityResponse::Sums(s) => s,
        other => panic!("expected sums, got {other:?}"),
    }
}

/// Every release a sum query's plan makes of round 0.
fn planned(q: &SharedQuery) -> Vec<Release> {
    crux::stats::policy::planned_releases(&q.spec.params, &q.task).unwrap().unwrap()
}

/// Registers `shared` at both decryptors with the plan's releases and
/// combines their sums as the processor does.
async fn run_round(evil: &Peer, q: &SharedQuery, shared: &[SignedShares]) -> Result<PlainAggregate, ProtocolError> {
    let mut released = Vec::new();
    for authority in AUTHORITIES {
        released.push(sums(register(evil, authority, q, shared.to_vec(), planned(q)).await));
    }
    let commitments: RistrettoPoint = shared.iter().map(|s| commitment(s).unwrap()).sum();
    combine_sums((&q.task, true), 0, &[(1, &released[0]), (2, &released[1])], &commitments).map(|o| o.aggregate)
}

/// The count and sum a moments aggregate gives (limbs weighed back).
fn count_and_sum(task: &RelayTask, aggregate: &PlainAggregate) -> (i128, i128) {
    (target(task, aggregate, Release::Count).unwrap(), target(task, aggregate, Release::Sum).unwrap())
}

/// What a relay colluding with the processor sends: a commitment to
/// `committed` and shares of `shared` (both in statement order, then the
/// blinding), sealed to the decryptors' keys and signed with its own key.
fn forge(
    q: &SharedQuery,
    (identity, relay): (&RelayIdentity, &str),
    committed: &[Scalar],
    shared: &[Scalar],
) -> SignedShares {
    let blind = Scalar::random(&mut OsRng);
    let c = generators_for(committed.len()).commit_values(committed, &blind).unwrap().compress().to_bytes();
    let values: Vec<Scalar> = shared.iter().copied().chain([blind]).collect();
    let vectors = share_values(&values, &[1, 2], 2, &mut OsRng).unwrap();
    let ephemeral = Ephemeral::random(&mut OsRng);
    let header = codec::box_header(&q.spec.id, 0, relay, &c);
    let boxes: Vec<Vec<u8>> = q
        .grants
        .iter()
        .zip(&vectors)
        .map(|((_, g), v)| {
            let key = SealingKey::from_bytes(&g.key.0).unwrap();
            seal(&ephemeral.box_key(&key, &q.spec.id.0), 0, &header, v).unwrap()
        })
        .collect();
    let e = ephemeral.public.to_bytes();
    let hashes: Vec<[u8; 32]> = boxes.iter().map(|b| codec::box_hash(b)).collect();
    let statement = codec::shares_statement(&q.spec, 0, &q.task, relay, (&c, &e), &hashes);
    SignedShares {
        relay: relay.to_string(),
        round: 0,
        commitment: Bytes32(c),
        ephemeral: Bytes32(e),
        boxes: boxes.into_iter().map(serde_bytes::ByteBuf::from).collect(),
        signature: identity.sign(&q.spec.id.0, &statement),
        hashes: Vec::new(),
    }
}

/// `shares` re-signed by `identity` as `relay` (a colluding relay passing
/// off someone else's boxes as its own).
fn resign(q: &SharedQuery, s: &SignedShares, (identity, relay): (&RelayIdentity, &str)) -> SignedShares {
    let hashes = s.box_hashes().unwrap();
    let statement =
        codec::shares_statement(&q.spec, s.round, &q.task, relay, (&s.commitment.0, &s.ephemeral.0), &hashes);
    SignedShares { relay: relay.to_string(), signature: identity.sign(&q.spec.id.0, &statement), ..s.clone() }
}

// ------------------------------------------------------------------ sealing keys

/// "Give relays its own key as P_A": relays take a decryptor's sealing key
/// only with that decryptor's signature over it for this query.
#[actix_rt::test]
async fn relays_seal_only_to_keys_the_decryptors_signed_for_the_query() {
    let (_cluster, evil) = exact_backend().await;
    let q = shared_query(&evil, exact_sum()).await;
    let other = shared_query(&evil, exact_sum()).await;
    let own = SealingSecret::random(&mut OsRng).public().to_bytes();
    let grants = |k: usize, grant: SealingGrant| {
        let mut all = q.grants.clone();
        all[k].1 = grant;
        all
    };
    let mut attempts: Vec<(&str, Grants, &str)> = Vec::new();
    let signed_by_1 = q.grants[0].1.signature;
    attempts.push((
        "its own key under authority-1's signature",
        grants(0, SealingGrant { key: Bytes32(own), signature: signed_by_1 }),
        "sealing key of authority-1 is not signed by it",
    ));
    attempts.push((
        "authority-2's grant as authority-1's",
        grants(0, q.grants[1].1.clone()),
        "sealing key of authority-1 is not signed by it",
    ));
    attempts.push((
        "authority-1's grant of another query",
        grants(0, other.grants[0].1.clone()),
        "sealing key of authority-1 is not signed by it",
    ));
    attempts.push(("the grants swapped", q.grants.iter().rev().cloned().collect(), "where the spec names authority-1"));
    attempts.push(("one decryptor's grant only", q.grants[..1].to_vec(), "1 sealing keys for 2 decryptors"));
    attempts.push((
        "the identity as a key",
        grants(
            0,
            SealingGrant { key: Bytes32(RistrettoPoint::identity().compress().to_bytes()), signature: signed_by_1 },
        ),
        "not a valid point other than the identity",
    ));
    for (what, sealing, expected) in attempts {
        for relay in RELAYS {
            let message = relay_error(evil.relay(relay, &contribute(&q, sealing.clone())).await);
            assert!(message.contains(expected) && message.contains("not admitted"), "{what} at {relay}: {message}");
        }
    }
    // the same round asked again gets the same shares, not a fresh sharing;
    // asked on the other path, it is refused as a fork
    let first = shares(&evil, &q, "relay-1").await;
    assert_eq!(shares(&evil, &q, "relay-1").await, first);
    let message = relay_error(evil.relay("relay-1", &contribute(&q, Vec::new())).await);
    assert!(message.contains("answered with another task, scale or path"), "{message}");
    // a noisy query's relays encrypt (a noisy search excepted): no shares,
    // even with genuine grants
    let mut noisy = QueryParams::new(Statistic::Count);
    noisy.exact = false;
    noisy.epsilon = Some(Epsilon::parse("0.5").unwrap());
    let n = shared_query(&evil, noisy).await;
    let message = relay_error(evil.relay("relay-1", &contribute(&n, n.grants.clone())).await);
    assert!(message.contains("for exact queries and noisy searches only"), "{message}");
}

// ------------------------------------------------------------------ changed, moved, too few

/// "Change a commitment, a box or E_i", "replay a relay's box in another
/// query or round", "too few relays": every decryptor refuses; the honest
/// round registers and its release is the same whenever it is asked.
#[actix_rt::test]
async fn decryptors_refuse_changed_moved_or_too_few_shares() {
    let (_cluster, evil) = exact_backend().await;
    let q = shared_query(&evil, exact_sum()).await;
    let other = shared_query(&evil, exact_sum()).await;
    let (s1, s2, s3) =
        (shares(&evil, &q, "relay-1").await, shares(&evil, &q, "relay-2").await, shares(&evil, &q, "relay-3").await);
    let from_other = shares(&evil, &other, "relay-1").await;
    let mut attempts: Vec<(&str, Vec<SignedShares>, &str)> = Vec::new();
    attempts.push(("one relay", vec![s1.clone()], "only 1 relays contributed (relay-1)"));
    attempts.push(("one relay twice", vec![s1.clone(), s1.clone()], "contributed twice"));
    let mut changed = s1.clone();
    changed.commitment.0[0] ^= 1;
    attempts.push(("a changed commitment", vec![changed, s2.clone()], "signature check failed for relay-1"));
    let mut changed = s1.clone();
    changed.ephemeral = s2.ephemeral;
    attempts.push(("another ephemeral key", vec![changed, s2.clone()], "signature check failed for relay-1"));
    let mut changed = s1.clone();
    let last = changed.boxes[1].len() - 1;
    changed.boxes[1][last] ^= 1;
    attempts.push(("a changed box", vec![changed, s2.clone()], "signature check failed for relay-1"));
    let mut renamed = s1.clone();
    renamed.relay = "relay-2".into();
    attempts.push(("relay-1's shares as relay-2's", vec![s3.clone(), renamed], "signature check failed for relay-2"));
    attempts.push((
        "relay-1's shares of another query",
        vec![from_other, s2.clone()],
        "signature check failed for relay-1",
    ));
    let mut later = s1.clone();
    later.round = 1;
    attempts.push(("relay-1's shares as another round's", vec![later, s2.clone()], "signed round 1 not 0"));
    let mut short = s1.clone();
    short.boxes[0].truncate(40);
    attempts.push(("a cut box", vec![short, s2.clone()], "a share box is not the"));
    // each decryptor is sent its own box only, with every box's hash: a
    // hash that does not match its box, or a box left out without hashes
    let mut wrong = s1.clone().with_hashes();
    wrong.hashes[0].0[0] ^= 1;
    wrong.hashes[1].0[0] ^= 1;
    attempts.push(("a box's hash changed", vec![wrong, s2.clone()], "do not match their hashes"));
    let mut left_out = s1.clone();
    left_out.boxes[0] = serde_bytes::ByteBuf::new();
    left_out.boxes[1] = serde_bytes::ByteBuf::new();
    attempts.push(("the boxes left out without hashes", vec![left_out, s2.clone()], "a box is missing"));
    let mut other_hash = s1.clone().with_hashes();
    other_hash.hashes[0] = s2.clone().with_hashes().hashes[0];
    other_hash.hashes[1] = s2.clone().with_hashes().hashes[1];
    other_hash.boxes = other_hash.boxes.iter().map(|_| serde_bytes::ByteBuf::new()).collect();
    attempts.push(("relay-2's hashes, no box", vec![other_hash, s2.clone()], "relay-1"));
    for authority in AUTHORITIES {
        for (what, shared, expected) in &attempts {
            let reason = refusal(register(&evil, authority, &q, shared.clone(), planned(&q)).await);
            assert!(reason.contains(expected), "{what} at {authority}: {reason}");
        }
    }
    // the honest round, each decryptor sent its own boxes only (as the
    // processor does): registered and released; asked again, the same sums
    let honest = vec![s1.clone(), s2.clone(), s3.clone()];
    let mut released = Vec::new();
    for (position, authority) in AUTHORITIES.iter().enumerate() {
        let own: Vec<SignedShares> = honest.iter().map(|s| s.for_decryptor(position).unwrap()).collect();
        assert!(own.iter().all(|s| s.boxes.iter().filter(|b| !b.is_empty()).count() == 1));
        released.push(sums(register(&evil, authority, &q, own, planned(&q)).await));
    }
    let commitments: RistrettoPoint = honest.iter().map(|s| commitment(s).unwrap()).sum();
    let aggregate =
        combine_sums((&q.task, true), 0, &[(1, &released[0]), (2, &released[1])], &commitments).unwrap().aggregate;
    assert_eq!(count_and_sum(&q.task, &aggregate), (COUNT_C, SUM_C));
    for authority in AUTHORITIES {
        let again = AuthorityRequest::Decrypt { query_id: q.spec.id, round: 0, releases: planned(&q) };
        let first = sums(evil.authority(authority, &again).await);
        assert_eq!(sums(evil.authority(authority, &again).await), first);
        // a release the plan does not make: refused
        let histogram =
            AuthorityRequest::Decrypt { query_id: q.spec.id, round: 0, releases: vec![Release::HistBucket(0)] };
        let reason = refusal(evil.authority(authority, &histogram).await);
        assert!(reason.contains("is not part of"), "{reason}");
        // the round cannot be registered again, with ciphertexts or shares
        let reason = refusal(register(&evil, authority, &q, honest.clone(), Vec::new()).await);
        assert!(reason.contains("round 0"), "{reason}");
    }
}

// ------------------------------------------------------------------ a colluding relay

/// "A relay passing off another's contribution": relay-3, colluding,
/// signs relay-1's commitment, ephemeral key and boxes as its own (in this
/// query, and moved from another query): the boxes are bound to relay-1's
/// name and to their query, so they do not open.
#[actix_rt::test]
async fn a_colluding_relay_cannot_pass_off_another_relays_boxes() {
    let (cluster, evil) = exact_backend().await;
    let relay3 = read_relay_identity(&cluster.path("keys/relay-3.identity")).unwrap();
    let q = shared_query(&evil, exact_sum()).await;
    let other = shared_query(&evil, exact_sum()).await;
    let (s1, s2) = (shares(&evil, &q, "relay-1").await, shares(&evil, &q, "relay-2").await);
    let copied = resign(&q, &s1, (&relay3, "relay-3"));
    let moved = resign(&q, &shares(&evil, &other, "relay-1").await, (&relay3, "relay-3"));
    for authority in AUTHORITIES {
        for (what, forged) in [("copied", &copied), ("moved from another query", &moved)] {
            let reason = refusal(register(&evil, authority, &q, vec![s2.clone(), forged.clone()], planned(&q)).await);
            assert!(reason.contains("relay-3") && reason.contains("does not open"), "{what} at {authority}: {reason}");
        }
    }
    // relay-3's own shares register (positive control)
    let s3 = shares(&evil, &q, "relay-3").await;
    assert_eq!(count_and_sum(&q.task, &run_round(&evil, &q, &[s1, s2, s3]).await.unwrap()), (COUNT_C, SUM_C));
}

/// "With one relay: commit to one vector and share another", "send huge
/// field elements": the decryptors cannot tell, the processor's check
/// can. The sums either fail to open the commitments or open to no count
/// or sum: the query gets no answer.
#[actix_rt::test]
async fn a_relay_sharing_other_values_than_it_committed_to_gets_no_answer() {
    let (cluster, evil) = exact_backend().await;
    let relay3 = read_relay_identity(&cluster.path("keys/relay-3.identity")).unwrap();
    let as3 = (&relay3, "relay-3");
    let q = shared_query(&evil, exact_sum()).await;
    let width = q.task.ciphertexts_per_relay().unwrap();
    let (s1, s2) = (shares(&evil, &q, "relay-1").await, shares(&evil, &q, "relay-2").await);
    let small: Vec<Scalar> = (0..width).map(|k| scalar_from_i64(1000 + k as i64)).collect();
    let other: Vec<Scalar> = (0..width).map(|k| scalar_from_i64(5 + k as i64)).collect();
    // committed to one vector, shared another: the sums do not open
    let lying = forge(&q, as3, &small, &other);
    let Err(e) = run_round(&evil, &q, &[s1.clone(), s2.clone(), lying]).await else { panic!("a lie went through") };
    assert!(matches!(e, ProtocolError::SharesDoNotOpen { round: 0, .. }), "{e}");
    assert!(e.to_string().contains("do not open the relays' commitments"), "{e}");
    // consistent but huge: committed and shared a field element no count is
    let q = shared_query(&evil, exact_sum()).await;
    let (s1, s2) = (shares(&evil, &q, "relay-1").await, shares(&evil, &q, "relay-2").await);
    let mut huge = small.clone();
    huge[0] = Scalar::from_bytes_mod_order([0x55; 32]);
    let forged = forge(&q, as3, &huge, &huge);
    let Err(e) = run_round(&evil, &q, &[s1, s2, forged]).await else { panic!("a huge value went through") };
    assert!(matches!(e, ProtocolError::SharesOutOfRange { round: 0 }), "{e}");
    // consistent and small: the lie of a relay about its own data goes
    // through, as on any path (positive control of the forging)
    let q = shared_query(&evil, exact_sum()).await;
    let (s1, s2) = (shares(&evil, &q, "relay-1").await, shares(&evil, &q, "relay-2").await);
    let aggregate = run_round(&evil, &q, &[s1, s2, forge(&q, as3, &small, &small)]).await.unwrap();
    assert_eq!(target(&q.task, &aggregate, Release::Count).unwrap() % 1000, (COUNT_C * 2 / 3) % 1000);
}

/// "Give authorities different relay sets": each decryptor sums the set it
/// checked; sums over different sets interpolate to no aggregate (the
/// honest relay's shares stay masked), and the check against either set's
/// commitments fails.
#[actix_rt::test]
async fn different_relay_sets_at_the_decryptors_interpolate_to_nothing() {
    let (_cluster, evil) = exact_backend().await;
    let q = shared_query(&evil, exact_sum()).await;
    let (s1, s2, s3) =
        (shares(&evil, &q, "relay-1").await, shares(&evil, &q, "relay-2").await, shares(&evil, &q, "relay-3").await);
    let a = sums(register(&evil, "authority-1", &q, vec![s1.clone(), s2.clone()], planned(&q)).await);
    let b = sums(register(&evil, "authority-2", &q, vec![s1.clone(), s3.clone()], planned(&q)).await);
    for set in [[&s1, &s2], [&s1, &s3]] {
        let commitments: RistrettoPoint = set.iter().map(|s| commitment(s).unwrap()).sum();
        let e = combine_sums((&q.task, true), 0, &[(1, &a), (2, &b)], &commitments).err().unwrap();
        assert!(matches!(e, ProtocolError::SharesDoNotOpen { .. }), "{e}");
    }
    // what the processor could interpolate itself: not a count
    let scalars = |s: &ShareSums| -> Vec<Scalar> {
        s.values.iter().chain([&s.blind]).map(|b| Scalar::from_canonical_bytes(b.0).unwrap()).collect()
    };
    let (va, vb) = (scalars(&a), scalars(&b));
    let mixed = reconstruct(&[(1, va.as_slice()), (2, vb.as_slice())]).unwrap();
    assert!(signed_value(&mixed[0]).is_none_or(|count| count.abs() > 1 << 64), "the count came out");
}

/// A noisy search on the share path (SECURITY.md, "noisy sums"): a round's
/// vector is its buckets and the two cells outside its grid, and each
/// decryptor adds its own noise to its sums with a commitment to it.
/// A dishonest processor gets the same noisy sums each time it asks
/// (nothing to average), no total or count across cells, and sums that
/// interpolate only to noisy counts: two queries of the same data give
/// different cells. It cannot pass noisy sums off as an exact round's, nor
/// drop or change a decryptor's noise commitment (the sums then fail to
/// open). Relays share for noisy searches only, not for other noisy
/// queries.
#[actix_rt::test]
async fn noisy_search_sums_carry_each_decryptors_own_noise_once() {
    let (_cluster, evil) = exact_backend().await;
    let noisy = |st: Statistic| {
        let mut p = QueryParams::new(st);
        p.exact = false;
        p.epsilon = Some(Epsilon::parse("1").unwrap());
        p.bounds = Some(("0".into(), "3000000".into()));
        p
    };
    let mut totals = Vec::new();
    let mut cells_of_queries = Vec::new();
    for _ in 0..2 {
        let q = shared_query(&evil, noisy(Statistic::Median)).await;
        let RelayTask::Histogram { grid } = &q.task else { panic!("a search round") };
        let buckets = grid.buckets();
        let cells: Vec<Release> = (0..buckets).map(Release::HistBucket).collect();
        let mut shared = Vec::new();
        for relay in RELAYS {
            shared.push(shares(&evil, &q, relay).await);
        }
        let mut released = Vec::new();
        for authority in AUTHORITIES {
            let s = sums(register(&evil, authority, &q, shared.clone(), cells.clone()).await);
            assert!(s.noise.is_some(), "{authority}: noisy sums come with a noise commitment");
            // the buckets and the two outside cells
            assert_eq!(s.values.len(), buckets as usize + 2);
            // asked again, with any of the round's cells: the same sums
            let again = Decrypt { query_id: q.spec.id, round: 0, releases: vec![Release::HistBucket(1)] };
            assert_eq!(sums(evil.authority(authority, &again.request()).await), s, "{authority}");
            // no total, no count across cells
            for refused in [Release::HistTotal, Release::HistPrefix(1), Release::HistSuffix(1), Release::Count] {
                let request = Decrypt { query_id: q.spec.id, round: 0, releases: vec![refused] };
                let reason = refusal(evil.authority(authority, &request.request()).await);
                assert!(reason.contains("is not part of a median query's plan"), "{refused:?}: {reason}");
            }
            released.push(s);
        }
        let commitments: RistrettoPoint = shared.iter().map(|s| commitment(s).unwrap()).sum();
        let pair = |a: &ShareSums, b: &ShareSums, exact: bool| {
            let (a, b) = (a.clone(), b.clone());
            combine_sums((&q.task, exact), 0, &[(1, &a), (2, &b)], &commitments)
        };
        let opened = pair(&released[0], &released[1], false).unwrap();
        // noisy sums passed off as an exact round's are refused, naming the decryptor
        let e = pair(&released[0], &released[1], true).err().unwrap().to_string();
        assert!(e.contains("authority-1") && e.contains("noisy sums for an exact query"), "{e}");
        // a decryptor's noise commitment dropped, or replaced by the identity
        let mut dropped = released[1].clone();
        dropped.noise = None;
        let e = pair(&released[0], &dropped, false).err().unwrap().to_string();
        assert!(e.contains("authority-2") && e.contains("sums without noise"), "{e}");
        let mut hidden = released[1].clone();
        hidden.noise = Some(Bytes32(RistrettoPoint::identity().compress().to_bytes()));
        let e = pair(&released[0], &hidden, false).err().unwrap();
        assert!(matches!(e, ProtocolError::SharesDoNotOpen { .. }), "{e}");
        let PlainAggregate::Histogram { counts } = &opened.aggregate else { panic!("histogram") };
        let outside = opened.outside.unwrap();
        totals.push(outside.total.unwrap());
        cells_of_queries.push((counts.clone(), outside.below));
    }
    // each total is the column's 411 rows plus the noise of 2 decryptors on
    // every cell (scale 6 each at epsilon 1/6 a round: far inside ±411)
    for total in &totals {
        assert!((total - COUNT_C).abs() < COUNT_C, "{total}");
    }
    assert_ne!(cells_of_queries[0], cells_of_queries[1], "fresh noise per query");
    // relays share for noisy searches only
    let mean = shared_query(&evil, noisy(Statistic::Mean)).await;
    for relay in RELAYS {
        let message = relay_error(evil.relay(relay, &contribute(&mean, mean.grants.clone())).await);
        assert!(message.contains("for exact queries and noisy searches only"), "{relay}: {message}");
    }
}

/// A `Decrypt` of some releases of a round.
struct Decrypt {
    query_id: QueryId,
    round: u32,
    releases: Vec<Release>,
}

impl Decrypt {
    fn request(&self) -> AuthorityRequest {
        AuthorityRequest::Decrypt { query_id: self.query_id, round: self.round, releases: self.releases.clone() }
    }
}
