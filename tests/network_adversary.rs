//! The authorities as privacy gatekeepers, tried as an adversary would: real
//! `crux-node` processes on loopback (written by `crux-node init` into a
//! temporary folder), and this test acting as a dishonest processor (it holds
//! the processor's identity and sends hand-made requests) or as an intruder
//! (an unpinned certificate). Every attempt must be refused or detected, with
//! an error that says why. See SECURITY.md for the threat model.
//!
//! Node processes are killed when a test ends (the `Cluster` guard). Timeouts
//! are short and readiness is polled, so the file runs in seconds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

mod common;

use common::cluster::*;
use common::nodes::*;
use std::process::Command;

use common::data_path;
use crux::actors::error::TransportError;
use crux::actors::keys::{read_joint_key, transport_config, unix_now};
use crux::actors::tls::{generate_certificate, Identity};
use crux::crypto::{
    combine_batches, decode_first_points_only, AdmissionSignature, BatchDecryption, Ciphertext, CryptoError, DlogRange,
    EncryptionKey,
};
use crux::data::read_key_share;
use crux::protocol::drive::{run_query, QueryPeers};
use crux::protocol::processor::{ProcessorView, QueryDriver};
use crux::protocol::wire::{decode, encode, DEFAULT_MAX_FRAME};
use crux::protocol::*;
use crux::stats::release::target;
use crux::stats::{Contribution, Epsilon, PlanStep, Planner, QueryParams, RelayTask, Release, Statistic};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::Scalar;
use rand::rngs::OsRng;

const COUNT_C: u64 = 411;
const SUM_C: &str = "10630925";

fn partial(response: AuthorityResponse) -> BatchDecryption {
    match response {
        AuthorityResponse::Partials(p) => p,
        other => panic!("expected a partial decryption, got {other:?}"),
    }
}

fn exact_sum() -> QueryParams {
    QueryParams::new(Statistic::Sum)
}

fn noisy_count(epsilon: &str) -> QueryParams {
    let mut p = QueryParams::new(Statistic::Count);
    p.exact = false;
    p.epsilon = Some(Epsilon::parse(epsilon).unwrap());
    p
}

fn admitted_remaining(response: AuthorityResponse) -> Option<Epsilon> {
    match response {
        AuthorityResponse::Admitted { remaining_budget, .. } => remaining_budget,
        other => panic!("expected an admission, got {other:?}"),
    }
}

// ------------------------------------------------------------------ 1

#[actix_rt::test]
async fn one_relays_contribution_is_never_decrypted() {
    let (_cluster, evil) = exact_backend().await;
    let q = evil.new_query(exact_sum()).await;
    let (spec, task) = (&q.spec, &q.task);
    let c1 = evil.contribute(&q, "relay-1").await;
    for authority in AUTHORITIES {
        let reason = refusal(evil.register(authority, spec, task, vec![c1.clone()]).await);
        assert!(reason.contains("only 1 relays contributed (relay-1)") && reason.contains("at least 2"), "{reason}");
        // the same relay twice does not count as two
        let reason = refusal(evil.register(authority, spec, task, vec![c1.clone(), c1.clone()]).await);
        assert!(reason.contains("relay-1") && reason.contains("contributed twice"), "{reason}");
        // relay-1's contribution passed off as relay-2's: the signature is relay-1's
        let mut fake = c1.clone();
        fake.relay = "relay-2".into();
        let reason = refusal(evil.register(authority, spec, task, vec![c1.clone(), fake]).await);
        assert!(reason.contains("signature check failed for relay-2"), "{reason}");
        // an invented relay
        let mut stranger = c1.clone();
        stranger.relay = "relay-9".into();
        let reason = refusal(evil.register(authority, spec, task, vec![c1.clone(), stranger]).await);
        assert!(reason.contains("unknown relay relay-9"), "{reason}");
        // nothing was registered: no release of the query exists
        for release in [Release::Count, Release::SumLimb(0), Release::Sum] {
            let reason = refusal(evil.decrypt(authority, spec.id, 0, release).await);
            assert!(reason.contains("round 0 is not registered"), "{reason}");
        }
    }
}

// ------------------------------------------------------------------ 2

#[actix_rt::test]
async fn arbitrary_ciphertexts_and_unplanned_releases_are_not_decrypted() {
    let (_cluster, evil) = exact_backend().await;
    // a query id that was never admitted
    let never = QueryId::random(&mut OsRng);
    for authority in AUTHORITIES {
        let reason = refusal(evil.decrypt(authority, never, 0, Release::Count).await);
        assert!(reason.contains(&never.to_string()) && reason.contains("unknown"), "{reason}");
    }
    // a valid two-relay sum query
    let q = evil.new_query(exact_sum()).await;
    let (spec, task) = (&q.spec, &q.task);
    let contributions = evil.contributions(&q, &["relay-1", "relay-2"]).await;
    for authority in AUTHORITIES {
        registered(evil.register(authority, spec, task, contributions.clone()).await);
        // releases that a sum query's plan does not contain
        for release in [
            Release::HistBucket(0),
            Release::HistTotal,
            Release::HistPrefix(1),
            Release::HistSuffix(1),
            Release::SquaresLimb(0),
            Release::Squares,
            Release::SumLimb(99),
        ] {
            let reason = refusal(evil.decrypt(authority, spec.id, 0, release).await);
            assert!(reason.contains("is not part of") && reason.contains("sum query's plan"), "{release:?}: {reason}");
        }
        // a round that was never registered, and a second round a sum does not have
        let reason = refusal(evil.decrypt(authority, spec.id, 1, Release::Count).await);
        assert!(reason.contains("round 1 is not registered"), "{reason}");
        let request = AuthorityRequest::AdmitRound { spec: spec.clone(), round: 1, task: task.clone() };
        let reason = refusal(evil.authority(authority, &request).await);
        assert!(reason.contains("beyond the 1 rounds"), "{reason}");
        let request = AuthorityRequest::Register {
            shared: Vec::new(),
            spec: spec.clone(),
            round: 1,
            task: task.clone(),
            contributions: contributions.clone(),
            releases: vec![],
        };
        let reason = refusal(evil.authority(authority, &request).await);
        assert!(reason.contains("round 1 with this task was not admitted"), "{reason}");
        // the planned release is answered, and a repeat gets the same share
        let first = partial(evil.decrypt(authority, spec.id, 0, Release::Count).await);
        assert_eq!(first.authority, authority);
        assert_eq!(partial(evil.decrypt(authority, spec.id, 0, Release::Count).await).shares, first.shares);
    }
    registrations_that_carry_releases_follow_the_same_rules(&evil).await;
}

/// A `Register` that asks for releases too: the registration's checks, then
/// the decryption's, as if they were two requests.
async fn registrations_that_carry_releases_follow_the_same_rules(evil: &Peer) {
    let q = evil.new_query(exact_sum()).await;
    let (spec, task) = (&q.spec, &q.task);
    let contributions = evil.contributions(&q, &["relay-1", "relay-2"]).await;
    let planned = vec![Release::Count, Release::SumLimb(0)];
    let one_relay = contributions.iter().take(1).cloned().collect::<Vec<_>>();
    let other = evil.new_query(exact_sum()).await;
    let other_contributions = evil.contributions(&other, &["relay-1", "relay-2"]).await;
    for authority in AUTHORITIES {
        // one relay's contribution: not registered, nothing released
        let reason = refusal(evil.register_with(authority, spec, task, one_relay.clone(), planned.clone()).await);
        assert!(reason.contains("only 1 relays contributed"), "{reason}");
        let reason = refusal(evil.decrypt(authority, spec.id, 0, Release::Count).await);
        assert!(reason.contains("round 0 is not registered"), "{reason}");
        // planned releases: the shares a Decrypt gives afterwards
        let batch = partial(evil.register_with(authority, spec, task, contributions.clone(), planned.clone()).await);
        assert_eq!((batch.authority.as_str(), batch.shares.len()), (authority, 2));
        let again = partial(evil.decrypt(authority, spec.id, 0, Release::Count).await);
        assert_eq!(again.shares.first(), batch.shares.first());
        // a release the plan does not contain: refused, no share; the
        // registration stands (as a Register then a Decrypt would leave it)
        let (ospec, otask) = (&other.spec, &other.task);
        let unplanned = vec![Release::Count, Release::HistTotal];
        let reason = refusal(evil.register_with(authority, ospec, otask, other_contributions.clone(), unplanned).await);
        assert!(reason.contains("is not part of a exact sum query's plan"), "{reason}");
        let reason = refusal(evil.register(authority, ospec, otask, other_contributions.clone()).await);
        assert!(reason.contains("out of order") || reason.contains("registered"), "{reason}");
    }
}

// ------------------------------------------------------------------ 3

#[actix_rt::test]
async fn forged_altered_or_reused_relay_signatures_are_refused() {
    let (cluster, evil) = exact_backend().await;
    let q = evil.new_query(exact_sum()).await;
    let (spec, task) = (&q.spec, &q.task);
    let genuine = evil.contributions(&q, &RELAYS).await;
    let (c1, c2, c3) = (genuine[0].clone(), genuine[1].clone(), genuine[2].clone());
    let joint = read_joint_key(&cluster.config("processor")).unwrap();
    let chosen = EncryptionKey::new(&joint).encrypt(42, &mut OsRng);
    for authority in AUTHORITIES {
        // a flipped signature byte
        let mut forged = c1.clone();
        forged.signature.0[10] ^= 1;
        let reason = refusal(evil.register(authority, spec, task, vec![forged, c2.clone()]).await);
        assert!(reason.contains("signature check failed for relay-1"), "{reason}");
        // a truncated signature
        let mut short = c2.clone();
        short.signature.0.truncate(10);
        let reason = refusal(evil.register(authority, spec, task, vec![c1.clone(), short]).await);
        assert!(reason.contains("signature check failed for relay-2"), "{reason}");
        // relay-3's ciphertexts under relay-1's signature
        let mut swapped = c1.clone();
        swapped.contribution = c3.contribution.clone();
        let reason = refusal(evil.register(authority, spec, task, vec![swapped, c2.clone()]).await);
        assert!(reason.contains("signature check failed for relay-1"), "{reason}");
        // a ciphertext of the attacker's choice (to get it decrypted) in relay-2's contribution
        let mut planted = c2.clone();
        if let Contribution::Moments { count, .. } = &mut planted.contribution {
            *count = chosen;
        }
        let reason = refusal(evil.register(authority, spec, task, vec![c1.clone(), planted]).await);
        assert!(reason.contains("signature check failed for relay-2"), "{reason}");
        // authorities do not decompress second points b
        // (`decode_at_authority`), but b's bytes are signed: another valid
        // point, or bytes that are no point at all, fail the signature
        let bytes = match &c2.contribution {
            Contribution::Moments { count, .. } => count.to_bytes(),
            other => panic!("moments, got {other:?}"),
        };
        let mut other_point = bytes;
        other_point[32..].copy_from_slice(RISTRETTO_BASEPOINT_POINT.compress().as_bytes());
        let mut no_point = bytes;
        no_point[63] = 0xff; // never canonical
        for (what, wire) in [("another b", other_point), ("a b that is no point", no_point)] {
            let mut altered = c2.clone();
            if let Contribution::Moments { count, .. } = &mut altered.contribution {
                *count = decode_first_points_only(|| Ciphertext::from_bytes(&wire)).unwrap();
            }
            let reason = refusal(evil.register(authority, spec, task, vec![c1.clone(), altered]).await);
            assert!(reason.contains("signature check failed for relay-2"), "{what}: {reason}");
        }
        // the round number is signed too
        let mut other_round = c1.clone();
        other_round.round = 1;
        let reason = refusal(evil.register(authority, spec, task, vec![other_round, c2.clone()]).await);
        assert!(reason.contains("relay-1") && reason.contains("signed round 1 not 0"), "{reason}");
    }
    // reuse in another query, or in this one under a changed statement: the
    // authority only registers the spec and task it admitted
    let other = evil.new_query(exact_sum()).await;
    let mut later = spec.clone();
    later.issued_at += 1;
    let mut mean = spec.clone();
    mean.params.statistic = Statistic::Mean;
    let RelayTask::Moments { limb_bits, value_bits, sums, squares, sum_quantum, squares_quantum } = task.clone() else {
        panic!("moments")
    };
    let wider =
        RelayTask::Moments { limb_bits: limb_bits + 1, value_bits, sums, squares, sum_quantum, squares_quantum };
    for authority in AUTHORITIES {
        let reason = refusal(evil.register(authority, &other.spec, &other.task, vec![c1.clone(), c2.clone()]).await);
        assert!(reason.contains("signature check failed for relay-1"), "another query: {reason}");
        for (what, s) in [("another issue time", &later), ("another statistic", &mean)] {
            let reason = refusal(evil.register(authority, s, task, vec![c1.clone(), c2.clone()]).await);
            assert!(reason.contains("differs from the admitted"), "{what}: {reason}");
        }
        let reason = refusal(evil.register(authority, spec, &wider, vec![c1.clone(), c2.clone()]).await);
        assert!(reason.contains("was not admitted"), "another task: {reason}");
        // the untouched contributions of query A are still good (positive control)
        registered(evil.register(authority, spec, task, vec![c1.clone(), c2.clone(), c3.clone()]).await);
    }
}

// ------------------------------------------------------------------ 4

#[actix_rt::test]
async fn replayed_query_ids_are_refused_also_after_an_authority_restart() {
    let (mut cluster, evil) = exact_backend().await;
    let q = evil.new_query(exact_sum()).await;
    let (spec, task) = (&q.spec, &q.task);
    let intent = spec.intent();
    let contributions = evil.contributions(&q, &RELAYS).await;
    for authority in AUTHORITIES {
        registered(evil.register(authority, spec, task, contributions.clone()).await);
        partial(evil.decrypt(authority, spec.id, 0, Release::Count).await);
    }
    for authority in AUTHORITIES {
        // the same query admitted again
        let reason = refusal(
            evil.authority(
                authority,
                &AuthorityRequest::AdmitQuery { sealing: false, query: intent.clone(), user: "user".into(), epoch: 0 },
            )
            .await,
        );
        assert!(reason.contains(&spec.id.to_string()) && reason.contains("replayed query id"), "{reason}");
        // a round registered twice
        let reason = refusal(evil.register(authority, spec, task, contributions.clone()).await);
        assert!(reason.contains("round 0 registered, expected round 1"), "{reason}");
    }
    // a crash and restart of authority-1: its LMDB ledger keeps the query id
    cluster.stop("authority-1", false);
    cluster.start("authority-1");
    evil.wait_ready(&cluster, &["authority-1"]).await;
    let reason = refusal(
        evil.authority(
            "authority-1",
            &AuthorityRequest::AdmitQuery { sealing: false, query: intent.clone(), user: "user".into(), epoch: 0 },
        )
        .await,
    );
    assert!(reason.contains("replayed query id"), "after restart: {reason}");
    // the restarted authority lost the query's admission: no registration, no release
    let reason = refusal(evil.register("authority-1", spec, task, contributions.clone()).await);
    assert!(reason.contains("unknown or expired"), "{reason}");
    let reason = refusal(evil.decrypt("authority-1", spec.id, 0, Release::SumLimb(0)).await);
    assert!(reason.contains("unknown or expired"), "{reason}");
    // stale and future issue times are refused (the replay window bounds the ledger)
    for (issued_at, what) in [(unix_now() - 2 * 86_400, "stale"), (unix_now() + 3_600, "future")] {
        let mut old = evil.intent(exact_sum());
        old.issued_at = issued_at;
        let reason = evil.admit_query(&old).await.unwrap_err();
        assert!(reason.contains("too old or from the future"), "{what}: {reason}");
    }
    // a new query id is admitted (positive control)
    let fresh = evil.new_query(exact_sum()).await;
    let signed = evil.contributions(&fresh, &["relay-1", "relay-3"]).await;
    registered(evil.register("authority-1", &fresh.spec, &fresh.task, signed).await);
}

// ------------------------------------------------------------------ 5

#[actix_rt::test]
async fn the_privacy_budget_holds_also_after_an_authority_restart() {
    setup();
    let mut cluster = Cluster::init(&["--budget", "2"]);
    cluster.start_all(&BACKEND);
    let evil = Peer::new(cluster.config("processor"));
    evil.wait_ready(&cluster, &BACKEND).await;
    let admit = |authority: &'static str, intent: QueryIntent| {
        let evil = &evil;
        async move {
            evil.authority(
                authority,
                &AuthorityRequest::AdmitQuery { sealing: false, query: intent, user: "user".into(), epoch: 0 },
            )
            .await
        }
    };

    // exact queries are refused by a noisy cluster, before any relay is asked
    let reason = evil.admit_query(&evil.intent(exact_sum())).await.unwrap_err();
    assert!(reason.contains("exact (noise-free) queries are disabled on authority authority-1"), "{reason}");

    // epsilon 1.5 of 2
    let intent = evil.intent(noisy_count("1.5"));
    let mut signatures = Vec::new();
    for authority in AUTHORITIES {
        let response = admit(authority, intent.clone()).await;
        if let AuthorityResponse::Admitted { signature, .. } = &response {
            signatures.push((authority.to_string(), *signature));
        }
        assert_eq!(admitted_remaining(response), Some(Epsilon::parse("0.5").unwrap()));
    }
    let q = evil.finish_admission(intent, Admission { signatures }).await.unwrap();
    let signed = evil.contributions(&q, &RELAYS).await;
    for authority in AUTHORITIES {
        registered(evil.register(authority, &q.spec, &q.task, signed.clone()).await);
        // averaging the noise away: a repeated release gets the very same noisy share
        let first = partial(evil.decrypt(authority, q.spec.id, 0, Release::Count).await);
        for _ in 0..3 {
            assert_eq!(partial(evil.decrypt(authority, q.spec.id, 0, Release::Count).await).shares, first.shares);
        }
        // the exact limbs do not exist in a noisy query
        let reason = refusal(evil.decrypt(authority, q.spec.id, 0, Release::SumLimb(0)).await);
        assert!(reason.contains("is not part of"), "{reason}");
    }
    // epsilon 1 does not fit in the 0.5 left
    for authority in AUTHORITIES {
        let reason = refusal(admit(authority, evil.intent(noisy_count("1"))).await);
        assert!(reason.contains("budget") && reason.contains("remaining budget is epsilon 0.5"), "{reason}");
    }
    // a graceful restart of authority-1: the spent budget is in its LMDB ledger
    cluster.stop("authority-1", true);
    cluster.start("authority-1");
    evil.wait_ready(&cluster, &["authority-1"]).await;
    let reason = refusal(admit("authority-1", evil.intent(noisy_count("1"))).await);
    assert!(reason.contains("budget") && reason.contains("remaining budget is epsilon 0.5"), "after restart: {reason}");
    match evil.authority("authority-1", &AuthorityRequest::Status).await {
        AuthorityResponse::Status(s) => {
            assert!(s.details.contains(&("remaining_epsilon".to_string(), "0.5".to_string())), "{:?}", s.details)
        }
        other => panic!("{other:?}"),
    }
    // and after a crash too
    cluster.stop("authority-1", false);
    cluster.start("authority-1");
    evil.wait_ready(&cluster, &["authority-1"]).await;
    let reason = refusal(admit("authority-1", evil.intent(noisy_count("1"))).await);
    assert!(reason.contains("remaining budget is epsilon 0.5"), "after a crash: {reason}");
    // what is left can be spent, once (positive control)
    assert_eq!(admitted_remaining(admit("authority-1", evil.intent(noisy_count("0.5"))).await), Some(Epsilon(0)));
}

// ------------------------------------------------------------------ 6

#[actix_rt::test]
async fn unknown_certificates_are_refused_at_the_handshake() {
    setup();
    let mut cluster = Cluster::init(&["--exact"]);
    cluster.start_all(&["authority-1", "relay-1"]);
    let honest = Peer::new(cluster.config("processor"));
    honest.wait_ready(&cluster, &["authority-1", "relay-1"]).await;

    // a fresh certificate claiming to be the processor, pinning the real nodes
    let cert = generate_certificate("processor", &["127.0.0.1".to_string()]).unwrap();
    let mut tcfg = transport_config(&cluster.config("processor")).unwrap();
    tcfg.identity = Identity::from_pem("processor", &cert.cert_pem, &cert.key_pem).unwrap();
    let impostor = Peer::with_transport(cluster.config("processor"), tcfg);
    for node in ["authority-1", "relay-1"] {
        let err = impostor.raw::<_, AuthorityResponse>(node, &AuthorityRequest::Status).await.err().unwrap();
        assert!(matches!(err, TransportError::Handshake { .. }), "{node}: {err}");
        assert!(err.to_string().contains(node), "{err}");
    }
    // genuine certificates of other roles: only the processor may talk to authorities and relays
    for (who, node) in
        [("relay-2", "authority-1"), ("user", "authority-1"), ("user", "relay-1"), ("authority-2", "relay-1")]
    {
        let mut tcfg = transport_config(&cluster.config(who)).unwrap();
        tcfg.peers = transport_config(&cluster.config("processor")).unwrap().peers;
        tcfg.peers.retain(|p| p.name != who);
        let peer = Peer::with_transport(cluster.config("processor"), tcfg);
        let err = peer.raw::<_, AuthorityResponse>(node, &AuthorityRequest::Status).await.err().unwrap();
        assert!(matches!(err, TransportError::Handshake { .. }), "{who} -> {node}: {err}");
    }
    // the nodes keep serving the real processor
    for _ in 0..2 {
        assert!(matches!(
            honest.authority("authority-1", &AuthorityRequest::Status).await,
            AuthorityResponse::Status(_)
        ));
        assert!(matches!(honest.relay("relay-1", &RelayRequest::Status).await, RelayResponse::Status(_)));
    }
}

// ------------------------------------------------------------------ 7

#[actix_rt::test]
async fn a_partial_decryption_with_a_bad_proof_is_detected() {
    let (cluster, evil) = exact_backend().await;
    let q = evil.new_query(exact_sum()).await;
    let (spec, task) = (q.spec.clone(), q.task.clone());
    let contributions = evil.contributions(&q, &RELAYS).await;
    let mut partials = Vec::new();
    for authority in AUTHORITIES {
        registered(evil.register(authority, &spec, &task, contributions.clone()).await);
        partials.push(partial(evil.decrypt(authority, spec.id, 0, Release::Count).await));
    }
    let joint = read_joint_key(&cluster.config("processor")).unwrap();
    let aggregate = Contribution::aggregate(&task, contributions.iter().map(|c| &c.contribution)).unwrap();
    let ciphertext = target(&task, &aggregate, Release::Count).unwrap();
    let context = releases_context(&spec.id, 0, &[Release::Count]);
    // genuine shares combine to the count of all three relays
    let decryptors = spec.decryptors.clone();
    let combine = |partials: &[BatchDecryption], context: &[u8], exact: bool| {
        combine_batches(&joint.decrypting_set(&decryptors).unwrap(), &[ciphertext], context, partials, exact)
    };
    assert_eq!(combine(&partials, &context, true).unwrap(), vec![RISTRETTO_BASEPOINT_POINT * Scalar::from(COUNT_C)]);

    let bad = |partials: &[BatchDecryption], context: &[u8]| combine(partials, context, true).unwrap_err();
    // authority-2's share shifted by G (the count would come out one lower)
    let mut shifted = partials.clone();
    shifted[1].shares[0] = (shifted[1].shares[0].decompress().unwrap() + RISTRETTO_BASEPOINT_POINT).compress();
    assert_eq!(bad(&shifted, &context), CryptoError::InvalidDecryptionProof { authority: "authority-2".into() });
    // a share for another release (its proof is bound to the releases asked)
    let other = releases_context(&spec.id, 0, &[Release::SumLimb(0)]);
    assert_eq!(bad(&partials, &other), CryptoError::InvalidDecryptionProof { authority: "authority-1".into() });
    // a share relabelled as the other authority's
    let mut relabelled = partials.clone();
    relabelled[1] = partials[0].clone();
    relabelled[1].authority = "authority-2".into();
    assert_eq!(bad(&relabelled, &context), CryptoError::InvalidDecryptionProof { authority: "authority-2".into() });
    // a missing authority
    assert_eq!(bad(&partials[..1], &context), CryptoError::MissingDecryption { authority: "authority-2".into() });
    // a dishonest authority adding (well-proven) noise to an exact query
    let share = read_key_share(&cluster.path("keys/authority-2.share")).unwrap();
    let mut noisy = partials.clone();
    let lambda = joint.lagrange(&decryptors).unwrap()[1];
    let made = share.decryption_shares(&lambda, &[*ciphertext.a()], Some(&[5]));
    noisy[1] = share.prove_decryptions(&lambda, &context, &made.iter().collect::<Vec<_>>(), false, &mut OsRng);
    assert_eq!(bad(&noisy, &context), CryptoError::InvalidDecryptionProof { authority: "authority-2".into() });
    assert_eq!(combine(&noisy, &context, false).unwrap(), vec![RISTRETTO_BASEPOINT_POINT * Scalar::from(COUNT_C + 5)]);
}

/// Runs an in-memory query whose first decryption replies `tamper` changes
/// (the round's first releases, asked with its registration).
fn run_tampered(tamper: impl Fn(&mut Vec<PeerReply<AuthorityResponse>>) + 'static) -> ProtocolError {
    let mut cluster = common::memory_cluster("areas.xlsx", 3, true, 2);
    let mut done = false;
    cluster.authority_hook = Some(Box::new(move |request, replies| {
        if !request.releases().is_empty() && !done {
            done = true;
            tamper(replies);
        }
    }));
    cluster.query(&LABELS, exact_sum()).unwrap_err()
}

/// `run_tampered` changing only `authority`'s batch of shares.
fn run_tampered_shares(
    authority: &'static str,
    tamper: impl Fn(&mut Vec<CompressedRistretto>) + 'static,
) -> ProtocolError {
    run_tampered(move |list| {
        if let Some(PeerReply { reply: Ok(AuthorityResponse::Partials(p)), .. }) =
            list.iter_mut().find(|r| r.peer == authority)
        {
            tamper(&mut p.shares);
        }
    })
}

#[test]
fn the_query_driver_refuses_a_tampered_partial_decryption() {
    setup();
    // authority-2's share shifted by G
    let err = run_tampered_shares("authority-2", |shares| {
        shares[0] = (shares[0].decompress().unwrap() + RISTRETTO_BASEPOINT_POINT).compress();
    });
    assert_eq!(err, ProtocolError::Crypto(CryptoError::InvalidDecryptionProof { authority: "authority-2".into() }));
    assert!(err.to_string().contains("authority-2") && err.to_string().contains("invalid proof"), "{err}");
    // authority-3 answering with authority-1's share
    let err = run_tampered(|list| {
        let first = list.iter().find_map(|r| (r.peer == "authority-1").then(|| r.reply.clone())).unwrap();
        if let Some(r) = list.iter_mut().find(|r| r.peer == "authority-3") {
            r.reply = first;
        }
    });
    assert!(err.to_string().contains("authority-3") && err.to_string().contains("another authority"), "{err}");
    // an authority that stays silent
    let err = run_tampered(|list| list.retain(|r| r.peer != "authority-1"));
    assert!(err.to_string().contains("authority-1") && err.to_string().contains("did not answer"), "{err}");
}

#[test]
fn the_query_driver_refuses_a_batch_with_moved_or_missing_shares() {
    setup();
    // an exact sum asks for the count and every Σv limb in one batch: one
    // proof covers them all, so moving a share to another release fails it
    let err = run_tampered_shares("authority-1", |shares| {
        assert!(shares.len() > 2, "one batch for all releases of the step");
        shares.swap(0, 1);
    });
    assert_eq!(err, ProtocolError::Crypto(CryptoError::InvalidDecryptionProof { authority: "authority-1".into() }));
    // a share left out, or one added
    for extra in [false, true] {
        let err = run_tampered_shares("authority-2", move |shares| {
            if extra {
                shares.push(shares[0]);
            } else {
                shares.pop();
            }
        });
        assert_eq!(err, ProtocolError::Crypto(CryptoError::InvalidDecryptionProof { authority: "authority-2".into() }));
    }
    // every share right but in reverse order
    let err = run_tampered_shares("authority-3", |shares| shares.reverse());
    assert_eq!(err, ProtocolError::Crypto(CryptoError::InvalidDecryptionProof { authority: "authority-3".into() }));
}

// ------------------------------------------------------------------ 8

#[actix_rt::test]
async fn unknown_users_cannot_query() {
    setup();
    let mut cluster = Cluster::init(&["--exact"]);
    cluster.start_all(&BACKEND);
    cluster.start("processor");
    let user = Peer::new(cluster.config("user"));
    user.wait_ready(&cluster, &["processor"]).await;
    let query = ["sum", LABELS[0], LABELS[1], LABELS[2], "--exact", "--json"];

    // the configured user gets an answer (positive control)
    let out = cluster.query(&cluster.path("user.yaml"), &query);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), cluster.logs());
    assert!(String::from_utf8_lossy(&out.stdout).contains(SUM_C), "{}", String::from_utf8_lossy(&out.stdout));

    // eve is added to the folder, but the running processor does not pin her yet
    let added = Command::new(BIN).args(["init", "user", "eve", "--out"]).arg(cluster.path("")).output().unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let out = cluster.query(&cluster.path("user-eve.yaml"), &query);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "eve got an answer: {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.contains("handshake with peer processor"), "{stderr}");

    // mallory: a certificate of her own, in a copy of user.yaml; never pinned
    let cert = generate_certificate("user", &["127.0.0.1".to_string()]).unwrap();
    std::fs::write(cluster.path("certs/mallory.crt"), &cert.cert_pem).unwrap();
    std::fs::write(cluster.path("keys/mallory.key"), &cert.key_pem).unwrap();
    let text = std::fs::read_to_string(cluster.path("user.yaml")).unwrap();
    let text = text.replace("certs/user.crt", "certs/mallory.crt").replace("keys/user.key", "keys/mallory.key");
    assert!(text.contains("mallory.crt") && text.contains("mallory.key"));
    std::fs::write(cluster.path("mallory.yaml"), text).unwrap();
    let out = cluster.query(&cluster.path("mallory.yaml"), &query);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("handshake with peer processor"), "{stderr}");

    // a pinned node that is not a user (relay-1) is refused by the processor
    let relay = Peer::new(cluster.config("relay-1"));
    let request =
        ProcessorRequest::Query { labels: LABELS.iter().map(|s| s.to_string()).collect(), params: exact_sum() };
    match relay.raw::<_, ProcessorResponse>("processor", &request).await.unwrap() {
        ProcessorResponse::Error { message } => {
            assert!(message.contains("relay-1 is not a user of this processor"), "{message}")
        }
        other => panic!("relay-1 got {other:?}"),
    }

    // after a processor restart, eve's pin applies (the refusal above was the pin, not her config)
    cluster.stop("processor", true);
    cluster.start("processor");
    user.wait_ready(&cluster, &["processor"]).await;
    let out = cluster.query(&cluster.path("user-eve.yaml"), &query);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(SUM_C));
    // mallory still cannot
    let out = cluster.query(&cluster.path("mallory.yaml"), &query);
    assert!(!out.status.success());
}

// ------------------------------------------------------------------ transcript

/// An honest processor's peers over QUIC, one request at a time, recording
/// every request and reply.
struct RecordingPeers<'a> {
    me: &'a Peer,
    transcript: &'a mut Vec<Vec<u8>>,
}

impl RecordingPeers<'_> {
    async fn ask<R: serde::de::DeserializeOwned>(&mut self, name: &str, bytes: &[u8]) -> PeerReply<R> {
        let reply = self.me.client.request(name, self.me.addr(name), bytes).await.unwrap();
        self.transcript.push(reply.clone());
        PeerReply::new(name, Ok(decode::<R>(&reply, DEFAULT_MAX_FRAME).unwrap()))
    }
}

impl QueryPeers for RecordingPeers<'_> {
    async fn ask_relays(
        &mut self,
        request: &RelayRequest,
        relays: &[String],
    ) -> Result<Vec<PeerReply<RelayResponse>>, ProtocolError> {
        let bytes = encode(request).unwrap();
        self.transcript.push(bytes.clone());
        let mut replies = Vec::new();
        for name in relays {
            replies.push(self.ask(name, &bytes).await);
        }
        Ok(replies)
    }

    async fn ask_authorities(
        &mut self,
        requests: &[AuthorityRequest],
        authorities: &[String],
    ) -> Result<Vec<Vec<PeerReply<AuthorityResponse>>>, ProtocolError> {
        let mut all = Vec::new();
        for request in requests {
            let bytes = encode(request).unwrap();
            self.transcript.push(bytes.clone());
            let mut list = Vec::new();
            for name in AUTHORITIES.iter().filter(|a| authorities.iter().any(|n| n == *a)) {
                list.push(self.ask(name, &bytes).await);
            }
            all.push(list);
        }
        Ok(all)
    }

    async fn solve(
        &mut self,
        points: Vec<(Release, RistrettoPoint, DlogRange)>,
    ) -> Result<Vec<(Release, i64)>, ProtocolError> {
        let solver = common::solver();
        Ok(points.iter().map(|(r, p, range)| (*r, solver.solve_vartime_in(p, *range).unwrap())).collect())
    }
}

/// Runs one query as an honest processor would, over QUIC to the real relays
/// and authorities, recording every request and reply.
async fn run_recorded(
    me: &Peer,
    view: std::sync::Arc<ProcessorView>,
    params: QueryParams,
    transcript: &mut Vec<Vec<u8>>,
) -> QueryAnswer {
    let labels = LABELS.iter().map(|s| s.to_string()).collect();
    let (mut driver, step) =
        QueryDriver::new(view, QueryId::random(&mut OsRng), unix_now(), "user".into(), labels, params).unwrap();
    let mut peers = RecordingPeers { me, transcript };
    run_query(&mut driver, step, &mut peers, &mut OsRng).await.unwrap()
}

#[actix_rt::test]
async fn no_plaintext_in_any_message_over_quic() {
    let (cluster, me) = exact_backend().await;
    let cfg = cluster.config("processor");
    let view = std::sync::Arc::new(ProcessorView {
        dataset: cfg.cluster.dataset.clone(),
        min_relays: cfg.cluster.min_relays,
        relays: cfg.cluster.relays.iter().map(|r| (r.peer.name.clone(), r.public_key)).collect(),
        authorities: AUTHORITIES.iter().map(|s| s.to_string()).collect(),
        joint: read_joint_key(&cfg).unwrap(),
        dlog_max_abs: common::solver().max_abs(),
        dlog_table_bits: common::solver().table_bits(),
        share_path: false,
    });
    let (_, labels, stats) = common::expected_columns().into_iter().find(|(c, _, _)| c == "C").unwrap();
    assert_eq!(labels, LABELS);
    let mut transcript = Vec::new();
    // the ElGamal path, then the committed-share path
    let shared = std::sync::Arc::new(ProcessorView { share_path: true, ..(*view).clone() });
    for view in [view, shared] {
        let a = run_recorded(&me, view.clone(), QueryParams::new(Statistic::Sum), &mut transcript).await;
        assert_eq!(a.result.value.exact_string(), SUM_C);
        assert_eq!(a.relays, RELAYS);
        let a = run_recorded(&me, view.clone(), QueryParams::new(Statistic::Variance), &mut transcript).await;
        let crux::stats::ExactValue::Ratio { num, den } = a.result.value else { panic!("variance is a ratio") };
        assert_eq!((num, den), common::fraction(stats["variance_pop_exact"].as_str().unwrap()));
        let a = run_recorded(&me, view, QueryParams::new(Statistic::Median), &mut transcript).await;
        assert_eq!(a.result.value.exact_string(), stats["median_lower"].as_str().unwrap());
    }
    // the share path ran: sealed boxes and summed shares were on the wire
    let kinds = |kind: &str| transcript.iter().filter(|m| m.windows(kind.len()).any(|w| w == kind.as_bytes())).count();
    assert!(kinds("Shares") >= 3 && kinds("Sums") >= 2, "the share path did not run");

    // needles: large single values, each relay's own sums, and the totals,
    // as msgpack integers and as text
    let column =
        crux::data::read_column(&crux::data::SourceSpec::new(data_path("areas.xlsx")).with_header_rows(3), &labels)
            .unwrap();
    let mut numbers: Vec<i128> = column.values.iter().copied().filter(|v| v.unsigned_abs() >= 100_000).collect();
    let expected = common::expected();
    let entry = expected["columns"].as_array().unwrap().iter().find(|c| c["column"] == "C").unwrap();
    for relay in entry["relays"]["3"].as_array().unwrap() {
        for key in ["sum", "sum_of_squares"] {
            numbers.push(relay[key].as_str().unwrap().parse().unwrap());
        }
    }
    for key in ["sum", "sum_of_squares"] {
        numbers.push(stats[key].as_str().unwrap().parse().unwrap());
    }
    assert!(numbers.len() > 10);
    let mut needles: Vec<Vec<u8>> = Vec::new();
    for v in &numbers {
        needles.push(rmp_serde::to_vec(&i64::try_from(*v).unwrap()).unwrap());
        needles.push(v.to_string().into_bytes());
    }
    // the search works: a message that did carry a number would be caught
    let probe = encode(&ProcessorRequest::Query { labels: vec![numbers[0].to_string()], params: exact_sum() }).unwrap();
    assert!(needles.iter().any(|n| probe.windows(n.len()).any(|w| w == n.as_slice())));
    for (i, msg) in transcript.iter().enumerate() {
        for (n, needle) in needles.iter().enumerate() {
            assert!(
                !msg.windows(needle.len()).any(|w| w == needle.as_slice()),
                "message {i} carries plaintext number {}",
                numbers[n / 2]
            );
        }
    }
    assert!(transcript.len() > 30, "{} messages", transcript.len());
}

// ------------------------------------------------------------------ regression

/// Regression: a relay's column cache was keyed by query id only, so a
/// processor could have a relay describe one column and then sign a
/// contribution of that column under another column's labels (e.g. to pass
/// off a known or blank column as the second relay of an "aggregate"). Now
/// the query (labels included) is admitted once: another column under the
/// same id is refused by the authorities, and by the relays without them.
#[actix_rt::test]
async fn relay_contributes_the_column_its_signed_statement_names() {
    let (_cluster, evil) = exact_backend().await;
    // column E (2006) admitted and described under query id X
    let mut e = evil.intent(QueryParams::new(Statistic::Count));
    e.labels = vec!["Population".to_string(), "All usual residents".to_string(), "2006".to_string()];
    let qe = evil.finish_admission(e.clone(), evil.admit_query(&e).await.unwrap()).await.unwrap();
    // column C (1996) under the same id X: no authority admits it
    let mut c = e.clone();
    c.labels = LABELS.iter().map(|s| s.to_string()).collect();
    let reason = evil.admit_query(&c).await.unwrap_err();
    assert!(reason.contains("replayed query id"), "{reason}");
    let c_spec = QuerySpec::new(c.clone(), qe.spec.decimals, qe.spec.epoch, qe.spec.decryptors.clone());
    for authority in AUTHORITIES {
        let request = AuthorityRequest::AdmitRound { spec: c_spec.clone(), round: 0, task: qe.task.clone() };
        let reason = refusal(evil.authority(authority, &request).await);
        assert!(reason.contains("differs from the admitted query"), "{reason}");
    }
    // and relay-1 refuses column C under column E's admission
    let request = RelayRequest::Contribute {
        sealing: Vec::new(),
        spec: c_spec.clone(),
        round: 0,
        task: qe.task.clone(),
        admission: qe.admission.clone(),
        admission_of: AdmissionOf::Round,
    };
    let message = relay_error(evil.relay("relay-1", &request).await);
    assert!(message.contains("not admitted"), "{message}");
    let request = RelayRequest::Describe { query: c, admission: qe.query_admission.clone(), epoch: 0 };
    let message = relay_error(evil.relay("relay-1", &request).await);
    assert!(message.contains("not admitted"), "{message}");
    // column E's own round is served (positive control)
    let contribution = evil.contribute(&qe, "relay-1").await;
    assert_eq!(contribution.relay, "relay-1");
}

/// Regression: the authority charged the budget of whatever dataset the
/// processor named in the (relay-signed) query spec, so a dishonest processor
/// got a fresh budget for every new dataset name. Now another dataset is
/// refused at admission, before relays see anything.
#[actix_rt::test]
async fn authority_charges_its_own_dataset_whatever_the_spec_names() {
    setup();
    let mut cluster = Cluster::init(&["--budget", "2"]);
    cluster.start_all(&BACKEND);
    let evil = Peer::new(cluster.config("processor"));
    evil.wait_ready(&cluster, &BACKEND).await;
    evil.new_query(noisy_count("1.5")).await;
    // the same data under another dataset name: authorities refuse to admit it
    for name in ["areas-2", "", "AREAS"] {
        let mut intent = evil.intent(noisy_count("1"));
        intent.dataset = name.to_string();
        for authority in AUTHORITIES {
            let reason = refusal(
                evil.authority(
                    authority,
                    &AuthorityRequest::AdmitQuery {
                        sealing: false,
                        query: intent.clone(),
                        user: "user".into(),
                        epoch: 0,
                    },
                )
                .await,
            );
            assert!(reason.contains("dataset") && reason.contains("\"areas\""), "{name:?}: {reason}");
        }
    }
    match evil.authority("authority-1", &AuthorityRequest::Status).await {
        AuthorityResponse::Status(s) => {
            assert!(s.details.contains(&("remaining_epsilon".to_string(), "0.5".to_string())), "{:?}", s.details)
        }
        other => panic!("{other:?}"),
    }
}

/// A moments task names the width of the values it sums (`value_bits`),
/// which sets how many limbs hold a relay's sums. A narrower width than
/// the query's bounds imply would make a relay with large sums refuse, a
/// refusal that depends on its data. Every authority refuses to admit a
/// round with any other width, and a relay refuses a task its round
/// admission does not name, before reading its column.
#[actix_rt::test]
async fn a_task_with_another_value_width_is_never_admitted_nor_served() {
    let (_cluster, evil) = exact_backend().await;
    let intent = evil.intent(exact_sum());
    let query_admission = evil.admit_query(&intent).await.unwrap();
    let request = RelayRequest::Describe { query: intent.clone(), admission: query_admission, epoch: 0 };
    let RelayResponse::Described(info) = evil.relay("relay-1", &request).await else { panic!("describe") };
    let decryptors = AUTHORITIES.iter().map(|a| a.to_string()).collect();
    let spec = QuerySpec::new(intent.clone(), info.decimals, 0, decryptors);
    let PlanStep::Round { task, .. } = Planner::new(exact_sum(), info.decimals, 20).unwrap().start().unwrap() else {
        panic!("a plan starts with a round")
    };
    let RelayTask::Moments { value_bits, .. } = task else { panic!("moments") };
    let with_width = |bits: u32| {
        let mut t = task.clone();
        if let RelayTask::Moments { value_bits, .. } = &mut t {
            *value_bits = bits;
        }
        t
    };
    for bits in [0, value_bits - 1, value_bits + 1] {
        let reason = evil.admit_round(&spec, 0, &with_width(bits)).await.unwrap_err();
        assert!(reason.contains("value width differs from the query's bounds"), "{bits}: {reason}");
    }
    // the plan's own task is admitted, and a relay serves only that one
    let admission = evil.admit_round(&spec, 0, &task).await.unwrap();
    let narrow = RelayRequest::Contribute {
        sealing: Vec::new(),
        spec: spec.clone(),
        round: 0,
        task: with_width(1),
        admission: admission.clone(),
        admission_of: AdmissionOf::Round,
    };
    let message = relay_error(evil.relay("relay-1", &narrow).await);
    assert!(message.contains("not admitted"), "{message}");
    let honest = RelayRequest::Contribute {
        sealing: Vec::new(),
        spec,
        round: 0,
        task,
        admission,
        admission_of: AdmissionOf::Round,
    };
    assert!(matches!(evil.relay("relay-1", &honest).await, RelayResponse::Contribution(_)));
}

/// `response` + `d`: an admission signature with its response shifted.
fn shifted(signature: &AdmissionSignature, d: Scalar) -> AdmissionSignature {
    let mut bytes = signature.to_bytes();
    let mut response = [0u8; 32];
    response.copy_from_slice(&bytes[32..]);
    let moved = Scalar::from_canonical_bytes(response).unwrap() + d;
    bytes[32..].copy_from_slice(moved.as_bytes());
    AdmissionSignature::from_bytes(&bytes).unwrap()
}

/// Admission signatures are (R, s) pairs that a relay checks in one
/// weighted batch. A dishonest processor holding genuine signatures tries
/// to pass altered ones: two responses shifted so that their unweighted sum
/// still holds, signatures swapped between members, one member's missing,
/// and a query's admission offered as a round's. The relay refuses each,
/// naming what is wrong, before it reads any data, and still serves the
/// genuine admission.
#[actix_rt::test]
async fn admission_signatures_that_only_sum_right_are_refused() {
    let (_cluster, evil) = exact_backend().await;
    let intent = evil.intent(exact_sum());
    let query_admission = evil.admit_query(&intent).await.unwrap();
    let describe = |admission: Admission| RelayRequest::Describe { query: intent.clone(), admission, epoch: 0 };
    let d = Scalar::random(&mut OsRng);
    let mut cancelling = query_admission.clone();
    cancelling.signatures[0].1 = shifted(&cancelling.signatures[0].1, d);
    cancelling.signatures[1].1 = shifted(&cancelling.signatures[1].1, -d);
    let message = relay_error(evil.relay("relay-1", &describe(cancelling)).await);
    assert!(message.contains("not admitted") && message.contains(AUTHORITIES[0]), "{message}");

    let RelayResponse::Described(info) = evil.relay("relay-1", &describe(query_admission.clone())).await else {
        panic!("the genuine query admission is served")
    };
    let decryptors = AUTHORITIES.iter().map(|a| a.to_string()).collect();
    let spec = QuerySpec::new(intent.clone(), info.decimals, 0, decryptors);
    let PlanStep::Round { task, .. } = Planner::new(exact_sum(), info.decimals, 20).unwrap().start().unwrap() else {
        panic!("a plan starts with a round")
    };
    let admission = evil.admit_round(&spec, 0, &task).await.unwrap();
    let contribute = |admission: Admission| RelayRequest::Contribute {
        sealing: Vec::new(),
        spec: spec.clone(),
        round: 0,
        task: task.clone(),
        admission,
        admission_of: AdmissionOf::Round,
    };
    let mut swapped = admission.clone();
    let first = swapped.signatures[0].1;
    swapped.signatures[0].1 = swapped.signatures[1].1;
    swapped.signatures[1].1 = first;
    let mut missing = admission.clone();
    missing.signatures.pop();
    let mut cancelling = admission.clone();
    cancelling.signatures[0].1 = shifted(&cancelling.signatures[0].1, -d);
    cancelling.signatures[1].1 = shifted(&cancelling.signatures[1].1, d);
    for (what, forged, names) in [
        ("swapped between members", swapped, AUTHORITIES[0]),
        ("one missing", missing, "not signed"),
        ("responses that cancel", cancelling, AUTHORITIES[0]),
        ("the query's admission", query_admission, "not admitted"),
    ] {
        let message = relay_error(evil.relay("relay-1", &contribute(forged)).await);
        assert!(message.contains("not admitted") && message.contains(names), "{what}: {message}");
    }
    assert!(matches!(evil.relay("relay-1", &contribute(admission)).await, RelayResponse::Contribution(_)));
}

/// A search's later rounds are admitted as "any one-bucket refinement of the
/// previous round's task" (`AdmitRefinement`). A dishonest processor holding
/// such an admission gets a relay to encrypt only a refinement the plan
/// allows, for that round only; of several refinements it had relays
/// encrypt, every authority registers and decrypts one.
#[actix_rt::test]
async fn refinement_admissions_serve_refinements_only_and_one_per_round() {
    let (_cluster, evil) = exact_backend().await;
    let mut params = QueryParams::new(Statistic::Median);
    params.exact = true;
    params.bounds = Some(("0".into(), "1000000".into()));
    let q = evil.new_query(params).await;
    let (spec, task) = (&q.spec, &q.task);
    let contributions = evil.contributions(&q, &RELAYS).await;
    for authority in AUTHORITIES {
        registered(evil.register(authority, spec, task, contributions.clone()).await);
    }
    let mut signatures = Vec::new();
    for authority in AUTHORITIES {
        let request = AuthorityRequest::AdmitRefinement { spec: spec.clone(), round: 1, previous: task.clone() };
        match evil.authority(authority, &request).await {
            AuthorityResponse::Admitted { signature, .. } => signatures.push((authority.to_string(), signature)),
            other => panic!("{authority}: {other:?}"),
        }
    }
    let refinement = Admission { signatures };
    let fixed = spec.params.fixed(spec.decimals).unwrap();
    let refine = |previous: &RelayTask, bucket: u32| {
        let RelayTask::Histogram { grid } = previous else { panic!("a search round is a histogram") };
        let (lo, hi) = crux::stats::search::refinement_range(grid, bucket, fixed.bounds).unwrap();
        RelayTask::Histogram { grid: crux::stats::Grid::covering(lo, hi, 16).unwrap() }
    };
    let (chosen, fork) = (refine(task, 3), refine(task, 11));
    // round 2 as the plan would have it, under round 1's refinement admission
    let later = refine(&chosen, 0);
    let contribute =
        |round: u32, task: &RelayTask, admission: &Admission, refines: Option<&RelayTask>| RelayRequest::Contribute {
            sealing: Vec::new(),
            spec: spec.clone(),
            round,
            task: task.clone(),
            admission: admission.clone(),
            admission_of: refines.cloned().map_or(AdmissionOf::Round, AdmissionOf::Refinement),
        };
    // a grid of the processor's choosing (one value per bucket, to isolate rows)
    let isolating = RelayTask::Histogram { grid: crux::stats::Grid::Uniform { lo: 0, width: 1, buckets: 16 } };
    for (what, request, want) in [
        ("a grid that refines nothing", contribute(1, &isolating, &refinement, Some(task)), "not a refinement"),
        ("the refinement as round 2's", contribute(2, &later, &refinement, Some(&chosen)), "not admitted"),
        ("the refinement as a round admission", contribute(1, &chosen, &refinement, None), "not admitted"),
        ("round 0's admission as a refinement", contribute(1, &chosen, &q.admission, Some(task)), "not admitted"),
    ] {
        let message = relay_error(evil.relay("relay-1", &request).await);
        assert!(message.contains(want), "{what}: {message}");
    }
    // two refinements of round 0: a relay answers one per round, and of
    // the two (relays 1-2 and relay 3) each authority registers one
    let mut by_task = Vec::new();
    for (next, relays) in [(&chosen, &RELAYS[..2]), (&fork, &RELAYS[2..])] {
        let mut cs = Vec::new();
        for relay in relays {
            match evil.relay(relay, &contribute(1, next, &refinement, Some(task))).await {
                RelayResponse::Contribution(c) => cs.push(*c),
                other => panic!("{relay}: {other:?}"),
            }
        }
        by_task.push(cs);
    }
    for relay in &RELAYS[..2] {
        let message = relay_error(evil.relay(relay, &contribute(1, &fork, &refinement, Some(task))).await);
        assert!(message.contains("answered with another task"), "{relay}: {message}");
    }
    let register = |next: &RelayTask, contributions: Vec<SignedContribution>| AuthorityRequest::Register {
        shared: Vec::new(),
        spec: spec.clone(),
        round: 1,
        task: next.clone(),
        contributions,
        releases: vec![],
    };
    for authority in AUTHORITIES {
        registered(evil.authority(authority, &register(&chosen, by_task[0].clone())).await);
        let reason = refusal(evil.authority(authority, &register(&fork, by_task[1].clone())).await);
        assert!(reason.contains("round 1 registered, expected round 2"), "{reason}");
        let request = AuthorityRequest::AdmitRound { spec: spec.clone(), round: 1, task: fork.clone() };
        let reason = refusal(evil.authority(authority, &request).await);
        assert!(reason.contains("round 1 with this task was not admitted"), "{reason}");
        // the next refinement follows the registered task only
        let request = AuthorityRequest::AdmitRefinement { spec: spec.clone(), round: 2, previous: fork.clone() };
        let reason = refusal(evil.authority(authority, &request).await);
        assert!(reason.contains("round 1 with this task was not admitted"), "{reason}");
        // and round 0 is over
        let reason = refusal(evil.decrypt(authority, spec.id, 0, Release::HistTotal).await);
        assert!(reason.contains("round 0 is over"), "{reason}");
        let partials = evil.decrypt(authority, spec.id, 1, Release::HistPrefix(1)).await;
        assert!(matches!(partials, AuthorityResponse::Partials(_)), "{partials:?}");
    }
}

/// Relays contribute round 0 under the query's admission alone (no round
/// admission): a dishonest processor gets the plan's first task only, for
/// round 0 only, and of round 0s at several scales every authority
/// registers the first one it is shown.
#[actix_rt::test]
async fn round0_under_the_querys_admission_is_the_plans_first_task_only() {
    let (_cluster, evil) = exact_backend().await;
    let intent = evil.intent(exact_sum());
    let admission = evil.admit_query(&intent).await.unwrap();
    let describe = RelayRequest::Describe { query: intent.clone(), admission: admission.clone(), epoch: 0 };
    let RelayResponse::Described(info) = evil.relay("relay-1", &describe).await else { panic!("not described") };
    let decryptors: Vec<String> = AUTHORITIES.iter().map(|a| a.to_string()).collect();
    let spec_at = |decimals: u32| {
        let spec = QuerySpec::new(intent.clone(), decimals, 0, decryptors.clone());
        let PlanStep::Round { task, .. } = Planner::new(exact_sum(), decimals, 20).unwrap().start().unwrap() else {
            panic!("a plan starts with a round")
        };
        (spec, task)
    };
    let (spec, task) = spec_at(info.decimals);
    let contribute = |spec: &QuerySpec, round: u32, task: &RelayTask, admission: &Admission| RelayRequest::Contribute {
        sealing: Vec::new(),
        spec: spec.clone(),
        round,
        task: task.clone(),
        admission: admission.clone(),
        admission_of: AdmissionOf::Query,
    };
    let other = evil.intent(exact_sum());
    let other_admission = evil.admit_query(&other).await.unwrap();
    // one value per bucket: a grid that would isolate rows
    let isolating = RelayTask::Histogram { grid: crux::stats::Grid::Uniform { lo: 0, width: 1, buckets: 16 } };
    // (relay-1 described the query: it verified its admission once and
    // needs no signature again; the others have not)
    for (what, request, want, relays) in [
        ("a histogram for a sum", contribute(&spec, 0, &isolating, &admission), "not the first one", &RELAYS[..]),
        ("round 1", contribute(&spec, 1, &task, &admission), "not the first one", &RELAYS[..]),
        ("another query's admission", contribute(&spec, 0, &task, &other_admission), "not admitted", &RELAYS[1..]),
    ] {
        for relay in relays {
            let message = relay_error(evil.relay(relay, &request).await);
            assert!(message.contains(want), "{what} at {relay}: {message}");
        }
    }
    // an exact median without bounds starts on the magnitude grid of the
    // query's value width and no other: not a wider one (more buckets), not
    // the 127 bit-length buckets of protocol version 4
    let median = QueryParams::new(Statistic::Median);
    let median_intent = evil.intent(median.clone());
    let median_admission = evil.admit_query(&median_intent).await.unwrap();
    let median_spec = QuerySpec::new(median_intent, info.decimals, 0, decryptors.clone());
    let bits = crux::stats::limits::value_bits(&median.fixed(info.decimals).unwrap()).unwrap();
    let magnitudes = |bits: u32| RelayTask::Histogram { grid: crux::stats::Grid::Magnitude { bits } };
    for wrong in [bits + 4, 126] {
        for relay in RELAYS {
            let request = contribute(&median_spec, 0, &magnitudes(wrong), &median_admission);
            let message = relay_error(evil.relay(relay, &request).await);
            assert!(message.contains("not the first one"), "{wrong} bits at {relay}: {message}");
        }
    }
    let right = contribute(&median_spec, 0, &magnitudes(bits), &median_admission);
    match evil.relay("relay-1", &right).await {
        RelayResponse::Contribution(c) => {
            assert_eq!(c.contribution.ciphertexts().len(), 2 * bits.div_ceil(4) as usize + 1)
        }
        other => panic!("the query's own magnitude grid: {other:?}"),
    }
    // round 0 at two scales (relays 1-2, relay 3): a relay answers one, and
    // each authority registers the first it is shown
    let (rescaled, task2) = spec_at(info.decimals + 3);
    let mut firsts = Vec::new();
    let mut seconds = Vec::new();
    for (spec, task, into, relays) in
        [(&spec, &task, &mut firsts, &RELAYS[..2]), (&rescaled, &task2, &mut seconds, &RELAYS[2..])]
    {
        for relay in relays {
            match evil.relay(relay, &contribute(spec, 0, task, &admission)).await {
                RelayResponse::Contribution(c) => into.push(*c),
                other => panic!("{relay}: {other:?}"),
            }
        }
    }
    let message = relay_error(evil.relay("relay-1", &contribute(&rescaled, 0, &task2, &admission)).await);
    assert!(message.contains("answered with another task, scale or path"), "{message}");
    for authority in AUTHORITIES {
        registered(evil.register(authority, &spec, &task, firsts.clone()).await);
        let reason = refusal(evil.register(authority, &rescaled, &task2, seconds.clone()).await);
        assert!(reason.contains("the registered spec differs"), "{reason}");
        let partials = evil.decrypt(authority, spec.id, 0, Release::Count).await;
        assert!(matches!(partials, AuthorityResponse::Partials(_)), "{partials:?}");
    }
}
