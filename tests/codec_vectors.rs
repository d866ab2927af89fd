//! Golden vectors for everything that is signed, proved or hashed
//! (`crux::protocol::codec`, version 2 where a spec is encoded).
//!
//! - `tests/vectors/codec.json`: byte encodings made by the independent
//!   Python encoder `scripts/codec_vectors.py`; the Rust encoder must produce
//!   exactly these bytes, and any changed input must change them.
//!   Also the committed-share path's sealing grants, shares statements (over box hashes), box hashes
//!   and box headers (version 1).
//! - `tests/vectors/signatures.json`: an authority's admission signatures ((R, s)), a
//!   relay's ciphertext proofs, a partial decryption's context, and an exact
//!   (DLEQ) and a noisy (λ-folded) partial decryption with their proofs, made with
//!   fixed keys and a seeded generator; good ones must verify, bad ones (a
//!   changed byte, another statement or domain, another index) must fail.
//!   Regenerate with `CRUX_WRITE_VECTORS=1 cargo test --test codec_vectors`
//!   only when the encoding version changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

use crux::crypto::Ciphertext;
use crux::crypto::{
    base_encodings, verify_batch, AdmissionSignature, BatchDecryption, DleqProof, EncryptionKey, JointPublicKey,
    KeyShare, Member, NoisyShareProof, ProofItem, RandomnessProof, ShareProof,
};
use crux::protocol::codec;
use crux::protocol::{QueryId, QueryIntent, QuerySpec};
use crux::stats::{Contribution, Epsilon, Grid, QueryParams, RelayTask, Release, Statistic};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::Scalar;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};

fn vectors(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

fn params(v: &Value) -> QueryParams {
    let statistic: Statistic = v["statistic"].as_str().unwrap().parse().unwrap();
    let mut p = QueryParams::new(statistic);
    p.sample = v["sample"].as_bool().unwrap();
    p.quantile = v["quantile"].as_str().map(String::from);
    p.edges = strings(&v["edges"]);
    p.bounds = v["bounds"].as_array().map(|b| (b[0].as_str().unwrap().into(), b[1].as_str().unwrap().into()));
    p.exact = v["exact"].as_bool().unwrap();
    p.epsilon = v["epsilon_micros"].as_u64().map(Epsilon);
    p
}

fn query(v: &Value) -> QueryIntent {
    let id: [u8; 16] = hex::decode(v["id"].as_str().unwrap()).unwrap().try_into().unwrap();
    QueryIntent {
        id: QueryId(id),
        issued_at: v["issued_at"].as_u64().unwrap(),
        dataset: v["dataset"].as_str().unwrap().into(),
        labels: strings(&v["labels"]),
        params: params(&v["params"]),
    }
}

fn spec(v: &Value) -> QuerySpec {
    QuerySpec::new(
        query(v),
        u32::try_from(v["decimals"].as_u64().unwrap()).unwrap(),
        v["epoch"].as_u64().unwrap(),
        strings(&v["decryptors"]),
    )
}

/// 128-bit integers travel as decimal strings.
fn int(v: &Value) -> i128 {
    v.as_str().unwrap().parse().unwrap()
}

fn task(v: &Value) -> RelayTask {
    if v["kind"] == "moments" {
        return RelayTask::Moments {
            limb_bits: u32::try_from(v["limb_bits"].as_u64().unwrap()).unwrap(),
            value_bits: u32::try_from(v["value_bits"].as_u64().unwrap()).unwrap(),
            sums: v["sums"].as_bool().unwrap(),
            squares: v["squares"].as_bool().unwrap(),
            sum_quantum: v["sum_quantum"].as_str().unwrap().parse().unwrap(),
            squares_quantum: v["squares_quantum"].as_str().unwrap().parse().unwrap(),
        };
    }
    let g = &v["grid"];
    let grid = match g["kind"].as_str().unwrap() {
        "magnitude" => Grid::Magnitude { bits: u32::try_from(g["bits"].as_u64().unwrap()).unwrap() },
        "uniform" => Grid::Uniform {
            lo: int(&g["lo"]),
            width: int(&g["width"]),
            buckets: u32::try_from(g["buckets"].as_u64().unwrap()).unwrap(),
        },
        _ => Grid::Edges(g["edges"].as_array().unwrap().iter().map(int).collect()),
    };
    RelayTask::Histogram { grid }
}

fn ciphertext(v: &Value) -> Ciphertext {
    let a = v[0].as_str().unwrap();
    let b = v[1].as_str().unwrap();
    Ciphertext::from_bytes(&hex::decode(format!("{a}{b}")).unwrap()).unwrap()
}

fn contribution(v: &Value) -> Contribution {
    let list = |v: &Value| v.as_array().unwrap().iter().map(ciphertext).collect::<Vec<_>>();
    if v["kind"] == "moments" {
        Contribution::Moments { count: ciphertext(&v["count"]), sum: list(&v["sum"]), squares: list(&v["squares"]) }
    } else {
        Contribution::Histogram { counts: list(&v["counts"]) }
    }
}

fn release(v: &Value) -> Release {
    let index = u32::try_from(v["index"].as_u64().unwrap_or(0)).unwrap();
    match v["kind"].as_str().unwrap() {
        "count" => Release::Count,
        "sum" => Release::Sum,
        "squares" => Release::Squares,
        "sum_limb" => Release::SumLimb(index),
        "squares_limb" => Release::SquaresLimb(index),
        "hist_total" => Release::HistTotal,
        "hist_prefix" => Release::HistPrefix(index),
        "hist_suffix" => Release::HistSuffix(index),
        _ => Release::HistBucket(index),
    }
}

/// Fixed-length bytes from hex (a query id, a key, a commitment).
fn fixed<const N: usize>(v: &Value) -> [u8; N] {
    hex::decode(v.as_str().unwrap()).unwrap().try_into().unwrap()
}

fn encode_case(kind: &str, i: &Value) -> Vec<u8> {
    match kind {
        "query_admission" => codec::query_admission(&query(&i["query"])),
        "round_admission" => codec::round_admission(
            &spec(&i["spec"]),
            u32::try_from(i["round"].as_u64().unwrap()).unwrap(),
            &task(&i["task"]),
        ),
        "refinement_admission" => codec::refinement_admission(
            &spec(&i["spec"]),
            u32::try_from(i["round"].as_u64().unwrap()).unwrap(),
            &task(&i["previous"]),
        ),
        "contribution_statement" => codec::contribution_statement(
            &spec(&i["spec"]),
            u32::try_from(i["round"].as_u64().unwrap()).unwrap(),
            &task(&i["task"]),
            i["relay"].as_str().unwrap(),
            &contribution(&i["contribution"]),
        ),
        "releases_context" => {
            let id: [u8; 16] = hex::decode(i["query_id"].as_str().unwrap()).unwrap().try_into().unwrap();
            let releases: Vec<Release> = i["releases"].as_array().unwrap().iter().map(release).collect();
            codec::releases_context(&QueryId(id), u32::try_from(i["round"].as_u64().unwrap()).unwrap(), &releases)
        }
        "sealing_grant" => {
            let id: [u8; 16] = fixed(&i["query_id"]);
            let key: [u8; 32] = fixed(&i["key"]);
            codec::sealing_grant(&QueryId(id), i["epoch"].as_u64().unwrap(), i["authority"].as_str().unwrap(), &key)
        }
        "shares_statement" => {
            let commitment: [u8; 32] = fixed(&i["commitment"]);
            let ephemeral: [u8; 32] = fixed(&i["ephemeral"]);
            let hashes: Vec<[u8; 32]> = i["box_hashes"].as_array().unwrap().iter().map(fixed::<32>).collect();
            codec::shares_statement(
                &spec(&i["spec"]),
                u32::try_from(i["round"].as_u64().unwrap()).unwrap(),
                &task(&i["task"]),
                i["relay"].as_str().unwrap(),
                (&commitment, &ephemeral),
                &hashes,
            )
        }
        "box_hash" => codec::box_hash(&hex::decode(i["box"].as_str().unwrap()).unwrap()).to_vec(),
        "box_header" => {
            let id: [u8; 16] = fixed(&i["query_id"]);
            let commitment: [u8; 32] = fixed(&i["commitment"]);
            codec::box_header(
                &QueryId(id),
                u32::try_from(i["round"].as_u64().unwrap()).unwrap(),
                i["relay"].as_str().unwrap(),
                &commitment,
            )
        }
        other => panic!("unknown case kind {other}"),
    }
}

#[test]
fn the_rust_encoder_matches_the_independent_vectors() {
    let doc = vectors("codec.json");
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 30);
    for kind in ["sealing_grant", "shares_statement", "box_header", "box_hash"] {
        assert!(cases.iter().filter(|c| c["kind"] == kind).count() >= 2, "too few {kind} cases");
    }
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let got = encode_case(case["kind"].as_str().unwrap(), &case["input"]);
        assert_eq!(hex::encode(&got), case["hex"].as_str().unwrap(), "{name}");
    }
}

/// Bad vectors: every single change of an input changes the bytes (so a
/// signature or proof over them no longer verifies).
#[test]
fn any_changed_input_changes_the_bytes() {
    let doc = vectors("codec.json");
    // 1 · G with its last byte changed: one byte off a key or commitment
    let other_point = "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d77";
    let mutations: [(&str, Value); 22] = [
        ("/spec/epoch", json!(4)),
        ("/spec/decryptors/0", json!("authority-2")),
        ("/query/issued_at", json!(1764331201u64)),
        ("/spec/issued_at", json!(1764331201u64)),
        ("/spec/decimals", json!(3)),
        ("/spec/labels/0", json!("population")),
        ("/spec/params/exact", json!(true)),
        ("/round", json!(9)),
        ("/relay", json!("relay-3")),
        ("/task/limb_bits", json!(31)),
        ("/previous/grid/width", json!("16")),
        ("/task/grid/bits", json!(48)),
        ("/release/index", json!(30)),
        ("/query_id", json!("ffeeddccbbaa99887766554433221100")),
        ("/epoch", json!(8)),
        ("/authority", json!("authority-2")),
        ("/key", json!(other_point)),
        ("/commitment", json!(other_point)),
        ("/ephemeral", json!(other_point)),
        ("/box_hashes/0", json!("5a".repeat(32))),
        ("/box_hashes", json!([])),
        ("/box", json!("5a".repeat(48))),
    ];
    let mut changed = 0;
    for case in doc["cases"].as_array().unwrap() {
        let kind = case["kind"].as_str().unwrap();
        let original = hex::decode(case["hex"].as_str().unwrap()).unwrap();
        for (pointer, value) in &mutations {
            let mut input = case["input"].clone();
            if let Some(slot) = input.pointer_mut(pointer).filter(|slot| **slot != *value) {
                *slot = value.clone();
                assert_ne!(encode_case(kind, &input), original, "{} with {pointer} changed", case["name"]);
                changed += 1;
            }
        }
    }
    assert!(changed >= 20, "{changed} mutations tried");
    // domain separation: the same query under the round domain is other bytes
    let q = query(&doc["cases"][0]["input"]["query"]);
    let s = QuerySpec::new(q.clone(), 0, 0, vec!["a".into()]);
    let round = codec::round_admission(&s, 0, &RelayTask::Histogram { grid: Grid::Magnitude { bits: 47 } });
    assert!(!round.starts_with(&codec::query_admission(&q)[..24]));
    // and a refinement admission of the same fields is other bytes than a round's
    let refinement = codec::refinement_admission(&s, 0, &RelayTask::Histogram { grid: Grid::Magnitude { bits: 47 } });
    assert_ne!(refinement, round);
    assert!(!refinement.starts_with(&round[..24]));
}

// ------------------------------------------------------------------ signatures and proofs

fn fixed_share(name: &str, secret_byte: u8) -> KeyShare {
    let secret = Scalar::from_bytes_mod_order([secret_byte; 32]);
    let public = RISTRETTO_BASEPOINT_TABLE * &secret;
    let mut bytes = b"CRUXKEY2".to_vec();
    bytes.extend_from_slice(&0u64.to_be_bytes());
    bytes.extend_from_slice(&1u16.to_be_bytes());
    bytes.extend_from_slice(&u16::try_from(name.len()).unwrap().to_be_bytes());
    bytes.extend_from_slice(name.as_bytes());
    bytes.extend_from_slice(secret.as_bytes());
    bytes.extend_from_slice(public.compress().as_bytes());
    KeyShare::from_bytes(&bytes).unwrap()
}

fn fixed_statement() -> (QueryIntent, QuerySpec, RelayTask) {
    let doc = vectors("codec.json");
    let q = query(&doc["cases"][0]["input"]["query"]);
    let s = spec(&doc["cases"][2]["input"]["spec"]);
    let t = task(&doc["cases"][2]["input"]["task"]);
    (q, s, t)
}

/// A 3-ciphertext moments contribution under the key of `share`, with its proof
/// bound to the statement relay-1 signs for (`s`, round 0, `t`).
fn fixed_contribution(
    share: &KeyShare,
    s: &QuerySpec,
    t: &RelayTask,
    rng: &mut StdRng,
) -> (Contribution, RandomnessProof) {
    let member = Member { authority: share.authority().into(), index: share.index(), point: share.public_point() };
    let joint = JointPublicKey::new(0, 1, vec![member], share.public_point()).unwrap();
    let key = EncryptionKey::new(&joint);
    let mut ks = Vec::new();
    let mut cts = Vec::new();
    for m in [414i64, 1_000_000, -3] {
        let (c, k) = key.encrypt_with_randomness(m, rng);
        cts.push(c);
        ks.push(k);
    }
    let contribution = Contribution::Moments { count: cts[0], sum: cts[1..].to_vec(), squares: Vec::new() };
    let statement = codec::contribution_statement(s, 0, t, "relay-1", &contribution);
    (contribution, RandomnessProof::prove(&statement, &ks, rng))
}

fn proof_holds(s: &QuerySpec, t: &RelayTask, relay: &str, c: &Contribution, proof: &RandomnessProof) -> bool {
    let statement = codec::contribution_statement(s, 0, t, relay, c);
    let item = ProofItem { statement: &statement, a: c.ciphertexts().iter().map(|x| x.a()).collect(), proof };
    verify_batch(&[item], &mut rand::rngs::OsRng)
}

/// Makes the signature vectors (seeded, so stable while the encoding is).
fn make_signature_vectors() -> Value {
    let mut rng = StdRng::seed_from_u64(20_261_128);
    let share = fixed_share("authority-1", 7);
    let (q, s, t) = fixed_statement();
    let query_sig = share.sign_admission(&codec::query_admission(&q), &mut rng);
    let round_sig = share.sign_admission(&codec::round_admission(&s, 0, &t), &mut rng);
    let (contribution, proof) = fixed_contribution(&share, &s, &t, &mut rng);
    let (exact, noisy) = fixed_partials(&share, &contribution, &mut rng);
    json!({
        "about": "admission signatures ((R, s), crux-admission-signature-v1) and a contribution's proof of randomness, version 2, over its crux/contribution/v4 statement (ciphertexts as their wire form); batch decryptions, crux-batch-decryption-v2 (shares scaled by the Lagrange coefficient, here 1/3) with proofs crux-partial-decryption-v2 and crux-noisy-partial-decryption-v2 (transcripts without A* and D*); fixed keys, seeded randomness; see tests/codec_vectors.rs",
        "authority_public": hex::encode(share.public_point().compress().as_bytes()),
        "query_admission_signature": hex::encode(query_sig.to_bytes()),
        "round_admission_signature": hex::encode(round_sig.to_bytes()),
        "contribution": contribution.ciphertexts().iter().map(|c| hex::encode(c.to_bytes())).collect::<Vec<_>>(),
        "randomness_proof": {
            "commitment": hex::encode(proof.commitment.compress().as_bytes()),
            "response": hex::encode(proof.response.as_bytes()),
        },
        "bad_signatures": bad_signature_vectors(&codec::query_admission(&q), &query_sig),
        "batch_decryption": partial_json(&exact),
        "noisy_batch_decryption": partial_json(&noisy),
    })
}

/// The releases context of the fixed batch decryptions (the count and the
/// first Σv limb of round 5) and their λ.
fn partial_inputs() -> (Vec<u8>, Scalar) {
    let (q, _, _) = fixed_statement();
    (codec::releases_context(&q.id, 5, &[Release::Count, Release::SumLimb(0)]), Scalar::from(3u8).invert())
}

/// The first two ciphertexts' first components (count, Σv limb 0).
fn batch_bases(c: &Contribution) -> Vec<curve25519_dalek::RistrettoPoint> {
    c.ciphertexts().iter().take(2).map(|x| *x.a()).collect()
}

/// An exact and a noisy (noises 7 and −2) batch decryption, both scaled by
/// λ = 1/3, of the contribution's first two ciphertexts by the fixed share,
/// bound to `partial_inputs`.
fn fixed_partials(share: &KeyShare, c: &Contribution, rng: &mut StdRng) -> (BatchDecryption, BatchDecryption) {
    let (context, lambda) = partial_inputs();
    let bases = batch_bases(c);
    let exact = share.decryption_shares(&lambda, &bases, None);
    let noisy = share.decryption_shares(&lambda, &bases, Some(&[7, -2]));
    (
        share.prove_decryptions(&lambda, &context, &exact.iter().collect::<Vec<_>>(), true, rng),
        share.prove_decryptions(&lambda, &context, &noisy.iter().collect::<Vec<_>>(), false, rng),
    )
}

fn partial_json(p: &BatchDecryption) -> Value {
    let (challenge, responses) = match &p.proof {
        ShareProof::Exact(d) => (d.challenge, vec![d.response]),
        ShareProof::Noisy(n) => (n.challenge, vec![n.key_response, n.noise_response]),
    };
    json!({
        "shares": p.shares.iter().map(|s| hex::encode(s.as_bytes())).collect::<Vec<_>>(),
        "challenge": hex::encode(challenge.as_bytes()),
        "responses": responses.iter().map(|r| hex::encode(r.as_bytes())).collect::<Vec<_>>(),
    })
}

/// (statement, signature) pairs under the fixed key that must not verify.
fn bad_signature_vectors(statement: &[u8], sig: &AdmissionSignature) -> Value {
    let mut flipped_statement = statement.to_vec();
    flipped_statement[40] ^= 1;
    let mut flipped_signature = sig.to_bytes();
    flipped_signature[40] ^= 1;
    let mut other_domain = statement.to_vec();
    other_domain[4..27].copy_from_slice(b"crux/admission/round/v3");
    json!([
        {"what": "a flipped statement byte", "statement": hex::encode(&flipped_statement), "signature": hex::encode(sig.to_bytes())},
        {"what": "a flipped response byte", "statement": hex::encode(statement), "signature": hex::encode(flipped_signature)},
        {"what": "the same body under the round domain", "statement": hex::encode(&other_domain), "signature": hex::encode(sig.to_bytes())},
        {"what": "a truncated statement", "statement": hex::encode(&statement[..statement.len() - 1]), "signature": hex::encode(sig.to_bytes())},
    ])
}

#[test]
fn signature_and_proof_vectors_verify_and_bad_ones_fail() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/signatures.json");
    if std::env::var("CRUX_WRITE_VECTORS").is_ok() {
        std::fs::write(&path, serde_json::to_string_pretty(&make_signature_vectors()).unwrap() + "\n").unwrap();
    }
    let v = vectors("signatures.json");
    // the fixed inputs still give the same vectors (seeded): nothing drifted
    assert_eq!(v, make_signature_vectors(), "regenerate only when the encoding version changes");
    let share = fixed_share("authority-1", 7);
    assert_eq!(hex::encode(share.public_point().compress().as_bytes()), v["authority_public"]);
    let public = share.public_point();
    let sig = |key: &str| AdmissionSignature::from_bytes(&hex::decode(v[key].as_str().unwrap()).unwrap()).unwrap();
    let (q, s, t) = fixed_statement();
    let query_bytes = codec::query_admission(&q);
    let round_bytes = codec::round_admission(&s, 0, &t);
    // good
    assert!(sig("query_admission_signature").verify_point(&public, &query_bytes));
    assert!(sig("round_admission_signature").verify_point(&public, &round_bytes));
    // bad: another statement, a changed byte, a later round, another key, a flipped signature
    assert!(!sig("query_admission_signature").verify_point(&public, &round_bytes));
    let mut flipped = query_bytes.clone();
    flipped[40] ^= 1;
    assert!(!sig("query_admission_signature").verify_point(&public, &flipped));
    assert!(!sig("round_admission_signature").verify_point(&public, &codec::round_admission(&s, 1, &t)));
    // a round's admission does not pass for a refinement admission of the same bytes' fields
    assert!(!sig("round_admission_signature").verify_point(&public, &codec::refinement_admission(&s, 0, &t)));
    assert!(!sig("query_admission_signature").verify_point(&fixed_share("authority-1", 8).public_point(), &query_bytes));
    let mut bad = sig("query_admission_signature").to_bytes();
    bad[5] ^= 1;
    // a non-canonical scalar is refused outright (Err); else it must not verify
    if let Ok(b) = AdmissionSignature::from_bytes(&bad) {
        assert!(!b.verify_point(&public, &query_bytes));
    }
    // the stored bad vectors must fail
    let bad = v["bad_signatures"].as_array().unwrap();
    assert_eq!(bad.len(), 4);
    for case in bad {
        let statement = hex::decode(case["statement"].as_str().unwrap()).unwrap();
        let verified = AdmissionSignature::from_bytes(&hex::decode(case["signature"].as_str().unwrap()).unwrap())
            .map(|sig| sig.verify_point(&public, &statement))
            .unwrap_or(false);
        assert!(!verified, "bad vector verified: {}", case["what"]);
    }
    // the contribution's proof of randomness
    let cts: Vec<Ciphertext> = v["contribution"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| Ciphertext::from_bytes(&hex::decode(h.as_str().unwrap()).unwrap()).unwrap())
        .collect();
    let contribution = Contribution::Moments { count: cts[0], sum: cts[1..].to_vec(), squares: Vec::new() };
    let p = &v["randomness_proof"];
    let commitment = curve25519_dalek::ristretto::CompressedRistretto::from_slice(
        &hex::decode(p["commitment"].as_str().unwrap()).unwrap(),
    )
    .unwrap()
    .decompress()
    .unwrap();
    let response: [u8; 32] = hex::decode(p["response"].as_str().unwrap()).unwrap().try_into().unwrap();
    let proof = RandomnessProof { commitment, response: Scalar::from_canonical_bytes(response).unwrap() };
    assert!(proof_holds(&s, &t, "relay-1", &contribution, &proof));
    assert!(!proof_holds(&s, &t, "relay-2", &contribution, &proof), "another relay");
    let mut later = s.clone();
    later.issued_at += 1;
    assert!(!proof_holds(&later, &t, "relay-1", &contribution, &proof), "another query");
    let swapped = Contribution::Moments { count: cts[1], sum: vec![cts[0], cts[2]], squares: Vec::new() };
    assert!(!proof_holds(&s, &t, "relay-1", &swapped, &proof), "moved between slots");
    let negated = Contribution::Moments { count: -cts[0], sum: cts[1..].to_vec(), squares: Vec::new() };
    assert!(!proof_holds(&s, &t, "relay-1", &negated, &proof), "negated");

    // batch decryptions of the count and Σv limb 0: the stored proofs verify
    // against the fixed share's key, and fail for another context, other
    // ciphertexts or a changed share
    // (proved against λ·Y_1, the fixed share's public key scaled by λ = 1/3)
    let (context, lambda) = partial_inputs();
    let scaled = public * lambda;
    let bases = batch_bases(&contribution);
    let encodings = base_encodings(&bases);
    for (key, noisy) in [("batch_decryption", false), ("noisy_batch_decryption", true)] {
        let d = &v[key];
        let point = |h: &Value| {
            curve25519_dalek::ristretto::CompressedRistretto::from_slice(&hex::decode(h.as_str().unwrap()).unwrap())
                .unwrap()
        };
        let scalar = |h: &Value| {
            let b: [u8; 32] = hex::decode(h.as_str().unwrap()).unwrap().try_into().unwrap();
            Scalar::from_canonical_bytes(b).unwrap()
        };
        let challenge = scalar(&d["challenge"]);
        let r = d["responses"].as_array().unwrap();
        let proof = if noisy {
            ShareProof::Noisy(NoisyShareProof { challenge, key_response: scalar(&r[0]), noise_response: scalar(&r[1]) })
        } else {
            ShareProof::Exact(DleqProof { challenge, response: scalar(&r[0]) })
        };
        let shares = d["shares"].as_array().unwrap().iter().map(point).collect();
        let batch = BatchDecryption { authority: "authority-1".into(), shares, proof };
        batch.verify(crux::crypto::EncodedPoint::of(&scaled), &context, &bases, &encodings, !noisy).unwrap();
        assert!(
            batch
                .verify(crux::crypto::EncodedPoint::of(&scaled), b"another context", &bases, &encodings, false)
                .is_err(),
            "{key}"
        );
        let swapped = [bases[1], bases[0]];
        assert!(
            batch
                .verify(crux::crypto::EncodedPoint::of(&scaled), &context, &swapped, &base_encodings(&swapped), false)
                .is_err(),
            "{key}"
        );
        let mut shifted = batch.clone();
        shifted.shares[1] =
            (shifted.shares[1].decompress().unwrap() + RISTRETTO_BASEPOINT_TABLE * &Scalar::ONE).compress();
        assert!(
            shifted.verify(crux::crypto::EncodedPoint::of(&scaled), &context, &bases, &encodings, false).is_err(),
            "{key}"
        );
        assert!(
            batch.verify(crux::crypto::EncodedPoint::of(&public), &context, &bases, &encodings, !noisy).is_err(),
            "{key}: Y_1 without λ"
        );
        if noisy {
            assert!(
                batch.verify(crux::crypto::EncodedPoint::of(&scaled), &context, &bases, &encodings, true).is_err(),
                "a noisy batch where exact is required"
            );
        }
    }
}
