//! Properties and known answers of the cryptographic core: homomorphic
//! identities (proptest), RFC 9496 generator multiples, and a whole t-of-n
//! flow in memory (3 of 4 authorities, many encryptions, proofs, combine, solve).
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, OnceLock};

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use proptest::prelude::*;
use rand::rngs::{OsRng, StdRng};
use rand::{Rng, SeedableRng};

use super::*;

/// RFC 9496, Appendix A.1: encodings of 0·B .. 15·B.
const RFC9496_MULTIPLES: [&str; 16] = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76",
    "6a493210f7499cd17fecb510ae0cea23a110e8d5b901f8acadd3095c73a3b919",
    "94741f5d5d52755ece4f23f044ee27d5d1ea1e2bd196b462166b16152a9d0259",
    "da80862773358b466ffadfe0b3293ab3d9fd53c5ea6c955358f568322daf6a57",
    "e882b131016b52c1d3337080187cf768423efccbb517bb495ab812c4160ff44e",
    "f64746d3c92b13050ed8d80236a7f0007c3b3f962f5ba793d19a601ebb1df403",
    "44f53520926ec81fbd5a387845beb7df85a96a24ece18738bdcfa6a7822a176d",
    "903293d8f2287ebe10e2374dc1a53e0bc887e592699f02d077d5263cdd55601c",
    "02622ace8f7303a31cafc63f8fc48fdc16e1c8c8d234b2f0d6685282a9076031",
    "20706fd788b2720a1ed2a5dad4952b01f413bcf0e7564de8cdc816689e2db95f",
    "bce83f8ba5dd2fa572864c24ba1810f9522bc6004afe95877ac73241cafdab42",
    "e4549ee16b9aa03099ca208c67adafcafa4c3f3e4e5303de6026e3ca8ff84460",
    "aa52e000df2e16f55fb1032fc33bc42742dad6bd5a8fc0be0167436c5948501f",
    "46376b80f409b29dc2b5f6f0c52591990896e5716f41477cd30085ab7f10301e",
    "e0c418f7c8d9c4cdd7395b93ea124f3ad99021bb681dfc3302a9d99a2e53e64e",
];

#[test]
fn rfc9496_generator_multiples() {
    for (i, expected) in RFC9496_MULTIPLES.iter().enumerate() {
        let p = RISTRETTO_BASEPOINT_TABLE * &Scalar::from(i as u64);
        assert_eq!(hex::encode(p.compress().as_bytes()), *expected, "{i}·B");
        // and our decoder accepts it and gives the same point back
        let decoded = elgamal::decode_point(&hex::decode(expected).unwrap(), "test").unwrap();
        assert_eq!(decoded, p);
    }
    // a public-value ciphertext carries m·B in its second half
    let c = Ciphertext::public(7);
    assert_eq!(hex::encode(&c.to_bytes()[32..]), RFC9496_MULTIPLES[7]);
}

struct Cluster {
    shares: Vec<KeyShare>,
    joint: JointPublicKey,
    key: EncryptionKey,
    solver: DlogSolver<Arc<MemoryTable>>,
}

fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let (shares, joint) =
            deal_for_tests(&["authority-1", "authority-2", "authority-3", "authority-4"], 3, 0, &mut OsRng).unwrap();
        let key = EncryptionKey::new(&joint);
        let table = Arc::new(MemoryTable::build(14).unwrap());
        let solver = DlogSolver::new(table, 30).unwrap();
        Cluster { shares, joint, key, solver }
    })
}

fn names(set: &[&str]) -> Vec<String> {
    set.iter().map(|s| s.to_string()).collect()
}

/// One authority's proved shares of a batch of releases `cts` for the
/// decrypting `set` (scaled by its Lagrange coefficient there): exact, or
/// with `noise` (one integer per release) folded in.
fn batch(
    c: &Cluster,
    share: &KeyShare,
    set: &[String],
    cts: &[Ciphertext],
    context: &[u8],
    noise: Option<&[i128]>,
) -> BatchDecryption {
    let bases: Vec<RistrettoPoint> = cts.iter().map(|c| *c.a()).collect();
    let lambdas = c.joint.lagrange(set).unwrap();
    let at = set.iter().position(|n| n == share.authority()).unwrap();
    let made = share.decryption_shares(&lambdas[at], &bases, noise);
    share.prove_decryptions(&lambdas[at], context, &made.iter().collect::<Vec<_>>(), noise.is_none(), &mut OsRng)
}

/// Batches from every member of `set`.
fn batches(c: &Cluster, set: &[String], cts: &[Ciphertext], context: &[u8]) -> Vec<BatchDecryption> {
    set.iter()
        .map(|name| batch(c, c.shares.iter().find(|s| s.authority() == name).unwrap(), set, cts, context, None))
        .collect()
}

fn decrypt(c: &Cluster, ct: &Ciphertext) -> i64 {
    let cts = [*ct];
    let set = names(&["authority-2", "authority-3", "authority-4"]);
    let batches = batches(c, &set, &cts, b"ctx");
    let points = combine_batches(&c.joint.decrypting_set(&set).unwrap(), &cts, b"ctx", &batches, true).unwrap();
    assert_eq!(points.len(), 1);
    c.solver.solve_vartime(&points[0]).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn addition_is_homomorphic(a in -(1i64 << 28)..(1 << 28), b in -(1i64 << 28)..(1 << 28)) {
        let c = cluster();
        let sum = c.key.encrypt(a, &mut OsRng) + c.key.encrypt(b, &mut OsRng);
        prop_assert_eq!(decrypt(c, &sum), a + b);
        let diff = c.key.encrypt(a, &mut OsRng) - c.key.encrypt(b, &mut OsRng);
        prop_assert_eq!(decrypt(c, &diff), a - b);
        prop_assert_eq!(decrypt(c, &-c.key.encrypt(a, &mut OsRng)), -a);
    }

    #[test]
    fn scaling_is_homomorphic(a in -(1i64 << 14)..(1 << 14), k in -(1i64 << 14)..(1 << 14)) {
        let c = cluster();
        prop_assert_eq!(decrypt(c, &c.key.encrypt(a, &mut OsRng).scale(k)), a * k);
    }

    #[test]
    fn sums_of_many(values in proptest::collection::vec(-(1i64 << 20)..(1 << 20), 0..40)) {
        let c = cluster();
        let cts: Vec<Ciphertext> = values.iter().map(|v| c.key.encrypt(*v, &mut OsRng)).collect();
        prop_assert_eq!(decrypt(c, &Ciphertext::sum(&cts)), values.iter().sum::<i64>());
    }

    #[test]
    fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = Ciphertext::from_bytes(&bytes);
        let _ = KeyShare::from_bytes(&bytes);
        let _ = rmp_serde::from_slice::<Ciphertext>(&bytes);
        let _ = rmp_serde::from_slice::<BatchDecryption>(&bytes);
    }
}

/// Two releases for one batch: the sum of 500 encrypted values and the sum
/// of their first 7; with their plaintext sums.
fn summed_releases(c: &Cluster) -> (Vec<i64>, [Ciphertext; 2]) {
    let mut rng = StdRng::seed_from_u64(1);
    let values: Vec<i64> = (0..500).map(|_| rng.gen_range(-1_000_000..1_000_000)).collect();
    let encrypted: Vec<Ciphertext> = values.iter().map(|v| c.key.encrypt(*v, &mut OsRng)).collect();
    let sums = vec![values.iter().sum::<i64>(), values[..7].iter().sum::<i64>()];
    (sums, [Ciphertext::sum(&encrypted), Ciphertext::sum(&encrypted[..7])])
}

#[test]
fn threshold_flow_with_proofs() {
    let c = cluster();
    let (sums, cts) = summed_releases(c);
    let bases: Vec<RistrettoPoint> = cts.iter().map(|ct| *ct.a()).collect();
    // every 3 of the 4 authorities decrypt exactly, each release of the batch
    for skip in 0..4 {
        let set: Vec<String> = (0..4).filter(|&i| i != skip).map(|i| format!("authority-{}", i + 1)).collect();
        let some = batches(c, &set, &cts, b"query-7/sum");
        for b in &some {
            let public = c.joint.decryptor_public(&b.authority, &set).unwrap();
            b.verify(crate::crypto::EncodedPoint::of(&public), b"query-7/sum", &bases, &base_encodings(&bases), true)
                .unwrap();
        }
        let points =
            combine_batches(&c.joint.decrypting_set(&set).unwrap(), &cts, b"query-7/sum", &some, true).unwrap();
        let solved: Vec<i64> = points.iter().map(|p| c.solver.solve_vartime(p).unwrap()).collect();
        assert_eq!(solved, sums, "without {skip}");
    }
}

#[test]
fn wrong_or_missing_shares_are_refused() {
    let c = cluster();
    let (_, cts) = summed_releases(c);
    let set = names(&["authority-1", "authority-2", "authority-3"]);
    let mut batches = batches(c, &set, &cts, b"query-7/sum");
    let fourth = names(&["authority-2", "authority-3", "authority-4"]);
    batches.push(batch(c, &c.shares[3], &fourth, &cts, b"query-7/sum", None));
    let three = &batches[..3];
    let combine = |cts: &[Ciphertext], context: &[u8], batches: &[BatchDecryption], set: &[String]| {
        c.joint.decrypting_set(set).and_then(|set| combine_batches(&set, cts, context, batches, true))
    };
    assert!(combine(&cts, b"query-7/sum", three, &set).is_ok(), "positive control");

    // a share for another context, another ciphertext, or a wrong value is caught
    assert!(combine(&cts, b"query-8/sum", three, &set).is_err());
    let other = [cts[0] + c.key.encrypt(0, &mut OsRng), cts[1]]; // same plaintexts, other randomness
    assert!(combine(&other, b"query-7/sum", three, &set).is_err());
    let mut forged = three.to_vec();
    forged[1].shares[0] =
        (forged[1].shares[0].decompress().unwrap() + curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT).compress();
    assert_eq!(
        combine(&cts, b"query-7/sum", &forged, &set),
        Err(CryptoError::InvalidDecryptionProof { authority: "authority-2".into() })
    );
    // a missing decryptor, a stranger, or fewer than t named are errors, not wrong answers
    assert_eq!(
        combine(&cts, b"query-7/sum", &batches[..2], &set),
        Err(CryptoError::MissingDecryption { authority: "authority-3".into() })
    );
    assert_eq!(
        combine(&cts, b"query-7/sum", &batches, &set),
        Err(CryptoError::InvalidDecryptionProof { authority: "authority-4".into() }),
        "a share not asked for"
    );
    assert!(combine(&cts, b"query-7/sum", &batches[..2], &set[..2]).is_err());
}

#[test]
fn noisy_shares_combine_to_the_sum_plus_whole_noise() {
    // noisy shares made for the answering set: the result is m + Σ noise, whole
    // integers whatever the set; proofs verify; exact mode refuses them
    let c = cluster();
    let (sums, cts) = summed_releases(c);
    let noises: [[i128; 2]; 3] = [[5, 0], [-3, -8], [11, 1]];
    for set in
        [names(&["authority-1", "authority-2", "authority-3"]), names(&["authority-4", "authority-2", "authority-1"])]
    {
        let noisy: Vec<BatchDecryption> = set
            .iter()
            .zip(&noises)
            .map(|(name, e)| {
                let s = c.shares.iter().find(|s| s.authority() == name).unwrap();
                batch(c, s, &set, &cts, b"q/noisy", Some(e))
            })
            .collect();
        let points = combine_batches(&c.joint.decrypting_set(&set).unwrap(), &cts, b"q/noisy", &noisy, false).unwrap();
        let solved: Vec<i64> = points.iter().map(|p| c.solver.solve_vartime(p).unwrap()).collect();
        assert_eq!(solved, [sums[0] + 13, sums[1] - 7], "{set:?}");
        assert!(combine_batches(&c.joint.decrypting_set(&set).unwrap(), &cts, b"q/noisy", &noisy, true).is_err());
    }
}

#[test]
fn encryption_is_randomised_and_wire_safe() {
    let c = cluster();
    let a = c.key.encrypt(5, &mut OsRng);
    let b = c.key.encrypt(5, &mut OsRng);
    assert_ne!(a.to_bytes(), b.to_bytes());
    assert_eq!(Ciphertext::from_bytes(&a.to_bytes()).unwrap(), a);
    let encoded = rmp_serde::to_vec(&a).unwrap();
    assert_eq!(rmp_serde::from_slice::<Ciphertext>(&encoded).unwrap(), a);
    // a MessagePack byte string: bin8 marker, length 64, the wire form
    assert_eq!(encoded.len(), 66);
    assert_eq!(encoded[..2], [0xc4, 64]);
    assert_eq!(encoded[2..], a.to_bytes());
    // formats without byte strings (JSON) round-trip through a sequence
    let json = serde_json::to_string(&a).unwrap();
    assert_eq!(serde_json::from_str::<Ciphertext>(&json).unwrap(), a);
    // wrong lengths and a non-canonical point are refused, never accepted
    let short = rmp_serde::to_vec(&serde_bytes_of(&a.to_bytes()[..63])).unwrap();
    assert!(rmp_serde::from_slice::<Ciphertext>(&short).is_err());
    let mut bad = a.to_bytes();
    bad[..32].fill(0xff);
    assert!(rmp_serde::from_slice::<Ciphertext>(&rmp_serde::to_vec(&serde_bytes_of(&bad)).unwrap()).is_err());
    let _: RistrettoPoint = *a.b().unwrap();
}

/// A byte string as MessagePack `bin` (what a peer sends as a ciphertext).
fn serde_bytes_of(bytes: &[u8]) -> impl serde::Serialize + '_ {
    struct Bin<'a>(&'a [u8]);
    impl serde::Serialize for Bin<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }
    Bin(bytes)
}
