//! Partial decryptions of several releases at once, with one proof per
//! authority per step (`crux-batch-decryption-v2`).
//!
//! An authority with share x_i (Y_i = x_i·G) and Lagrange coefficient λ_i in
//! the query's decrypting set answers k ciphertexts (a_j, b_j) of one round
//! with shares already scaled by λ_i: D_j = λ_i·x_i·a_j (exact) or
//! D_j = λ_i·x_i·a_j − e_j·G (noisy: its discrete-Laplace noise e_j), so the
//! processor combines by adding, b_j − Σ_i D_ij = m_j·G (+ Σ_i e_ij·G).
//! Weights ρ_j = H(seed, j), with seed = SHA-512 over the domain, the
//! release context (`protocol::codec::releases_context`: query, round,
//! releases), the scaled public share λ_i·Y_i, every a_j and every D_j,
//! turn the k statements into one: A* = Σ ρ_j·a_j, D* = Σ ρ_j·D_j. The
//! authority proves D* = (λ_i·x_i)·A* against λ_i·Y_i (Chaum-Pedersen,
//! `proofs::DleqProof`) or knowledge of (λ_i·x_i, f*) with
//! D* = (λ_i·x_i)·A* + f*·G, f* = −Σ ρ_j·e_j (`proofs::NoisyShareProof`),
//! both bound to the seed, which already fixes A* and D*: the proofs'
//! transcripts (`crux-partial-decryption-v2`,
//! `crux-noisy-partial-decryption-v2`) hash the seed, λ_i·Y_i, t1 and t2,
//! and a verifier computes t2 = s·A* − c·D* as one multiscalar
//! multiplication over the a_j and D_j without forming A* or D*. An exact
//! share D_j ≠ λ_i·x_i·a_j makes D* ≠ λ_i·x_i·A* except with probability
//! 1/ℓ over weights fixed only after every D_j. (Version 1 sent unscaled
//! shares, x_i·a_j with the noise folded as −λ_i⁻¹·e_j, and the processor
//! multiplied each by λ_i; the proofs' version 1 also hashed A* and D*.)
//!
//! Points enter the hash as 32-byte encodings: a D_j as sent (compressed),
//! an a_j as the encoding of 2·a_j (`double_and_compress_batch`, one field
//! inversion for the whole batch instead of one per point; doubling is a
//! bijection of the prime-order group). The authority computes h_j = D_j/2
//! and batch-encodes 2·h_j = D_j, so no share is compressed one by one.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::elgamal::Ciphertext;
use super::error::CryptoError;
use super::keys::{EncodedPoint, JointPublicKey, KeyShare};
use super::proofs::{DleqProof, Folded, NoisyShareProof, ShareStatement};

const DOMAIN: &[u8] = b"crux-batch-decryption-v2";

/// How a batch was proved: exactly (every D_j = x_i·a_j, one DLEQ proof of
/// D* = x_i·A*) or with the authority's differential-privacy noise folded
/// in (D* = x_i·A* + f*·G, `NoisyShareProof`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShareProof {
    Exact(DleqProof),
    Noisy(NoisyShareProof),
}

/// One authority's shares of the releases of one request, in request order,
/// and one proof for all of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchDecryption {
    pub authority: String,
    pub shares: Vec<CompressedRistretto>,
    pub proof: ShareProof,
}

/// A decryption share as its authority keeps it while the query runs (a
/// release asked again gets the same share): the point, its encoding and
/// the folded noise f (zero when exact; secret, wiped on drop).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DecryptionShare {
    /// the first component a_j of the ciphertext it decrypts
    #[zeroize(skip)]
    base: RistrettoPoint,
    #[zeroize(skip)]
    point: RistrettoPoint,
    #[zeroize(skip)]
    encoded: CompressedRistretto,
    folded_noise: Scalar,
}

impl std::fmt::Debug for DecryptionShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptionShare").field("encoded", &self.encoded).finish_non_exhaustive()
    }
}

/// The encodings of the ciphertexts' first components a_j that the batch
/// proofs bind (2·a_j, batch-compressed); the same for every authority.
pub fn base_encodings(bases: &[RistrettoPoint]) -> Vec<CompressedRistretto> {
    RistrettoPoint::double_and_compress_batch(bases)
}

fn seed(
    context: &[u8],
    public: &CompressedRistretto,
    bases: &[CompressedRistretto],
    shares: &[CompressedRistretto],
) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(DOMAIN);
    h.update((context.len() as u64).to_be_bytes());
    h.update(context);
    h.update(public.as_bytes());
    h.update((bases.len() as u64).to_be_bytes());
    for (a, d) in bases.iter().zip(shares) {
        h.update(a.as_bytes());
        h.update(d.as_bytes());
    }
    h.finalize().into()
}

fn weights(seed: &[u8; 64], count: usize) -> Vec<Scalar> {
    (0u64..)
        .take(count)
        .map(|j| {
            let mut h = Sha512::new();
            h.update(b"weight");
            h.update(seed);
            h.update(j.to_be_bytes());
            Scalar::from_bytes_mod_order_wide(&h.finalize().into())
        })
        .collect()
}

/// 1/2 mod ℓ = (ℓ + 1)/2, little-endian (a reduction, not an inversion,
/// per call).
const HALF: [u8; 32] = [
    0xf7, 0xe9, 0x7a, 0x2e, 0x8d, 0x31, 0x09, 0x2c, 0x6b, 0xce, 0x7b, 0x51, 0xef, 0x7c, 0x6f, 0x0a, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08,
];

pub(crate) fn half() -> Scalar {
    Scalar::from_bytes_mod_order(HALF)
}

impl KeyShare {
    /// Shares of the ciphertexts whose first components are `bases`, scaled
    /// by this authority's Lagrange coefficient `lambda` in the decrypting
    /// set: λ_i·x_i·a_j, or with `noise` (one integer e_j per base)
    /// λ_i·x_i·a_j − e_j·G.
    pub fn decryption_shares(
        &self,
        lambda: &Scalar,
        bases: &[RistrettoPoint],
        noise: Option<&[i128]>,
    ) -> Vec<DecryptionShare> {
        let half = half();
        let mut scaled_half = self.secret_scalar() * lambda * half;
        let mut folded: Vec<Scalar> =
            noise.map(|e| e.iter().map(|e| -super::scalar_from_i128(*e)).collect()).unwrap_or_default();
        let halves: Vec<RistrettoPoint> = bases
            .iter()
            .enumerate()
            .map(|(j, a)| match folded.get(j) {
                Some(f) => a * scaled_half + RISTRETTO_BASEPOINT_TABLE * &(f * half),
                None => a * scaled_half,
            })
            .collect();
        scaled_half.zeroize();
        let encoded = RistrettoPoint::double_and_compress_batch(&halves);
        let shares = halves
            .iter()
            .zip(bases)
            .zip(encoded)
            .enumerate()
            .map(|(j, ((h, base), encoded))| DecryptionShare {
                base: *base,
                point: h + h,
                encoded,
                folded_noise: folded.get(j).copied().unwrap_or(Scalar::ZERO),
            })
            .collect();
        folded.zeroize();
        shares
    }

    /// One proof over `shares` (made with the same `lambda`, in the order
    /// of the releases), bound to `context`; `exact` selects the proof.
    pub fn prove_decryptions(
        &self,
        lambda: &Scalar,
        context: &[u8],
        shares: &[&DecryptionShare],
        exact: bool,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> BatchDecryption {
        let bases: Vec<RistrettoPoint> = shares.iter().map(|s| s.base).collect();
        let n = bases.len();
        let mut secret = self.secret_scalar() * lambda;
        let public = RISTRETTO_BASEPOINT_TABLE * &secret;
        let public_encoding = public.compress();
        let encoded: Vec<CompressedRistretto> = shares.iter().map(|s| s.encoded).collect();
        let seed = seed(context, &public_encoding, &base_encodings(&bases), &encoded);
        let rho = weights(&seed, n);
        let a_star = RistrettoPoint::vartime_multiscalar_mul(&rho, &bases);
        // D* = Σ ρ_j·D_j = λ_i·x_i·A* + f*·G is bound by the seed: the
        // proof needs A* and f*, never D* itself
        let mut f_star: Scalar = rho.iter().zip(shares).map(|(r, s)| r * s.folded_noise).sum();
        let statement = ShareStatement { context: &seed, public: &public, public_encoding: &public_encoding };
        let proof = if exact {
            ShareProof::Exact(DleqProof::prove(&statement, &a_star, &secret, rng))
        } else {
            ShareProof::Noisy(NoisyShareProof::prove(&statement, &a_star, &secret, &f_star, rng))
        };
        f_star.zeroize();
        secret.zeroize();
        BatchDecryption { authority: self.authority().to_string(), shares: encoded, proof }
    }
}

impl BatchDecryption {
    /// Checks the one proof against the authority's scaled public share
    /// `public` = λ_i·Y_i (`JointPublicKey::decryptor_public`) with its
    /// encoding, the ciphertexts' first components `bases` and their
    /// `encodings` (`base_encodings`); returns the shares as points. With
    /// `exact`, a noisy proof is refused. t2 is one multiscalar
    /// multiplication over the a_j and the shares (`proofs::Folded`).
    pub fn verify(
        &self,
        public: EncodedPoint<'_>,
        context: &[u8],
        bases: &[RistrettoPoint],
        encodings: &[CompressedRistretto],
        exact: bool,
    ) -> Result<Vec<RistrettoPoint>, CryptoError> {
        let bad = || CryptoError::InvalidDecryptionProof { authority: self.authority.clone() };
        if self.shares.len() != bases.len() || encodings.len() != bases.len() {
            return Err(bad());
        }
        let points = self.shares.iter().map(|s| s.decompress().ok_or_else(bad)).collect::<Result<Vec<_>, _>>()?;
        let seed = seed(context, &public.encoding, encodings, &self.shares);
        let rho = weights(&seed, bases.len());
        let statement = ShareStatement { context: &seed, public: public.point, public_encoding: &public.encoding };
        let folded = Folded { weights: &rho, bases, shares: &points };
        let ok = match (&self.proof, exact) {
            (ShareProof::Exact(p), _) => p.verify(&statement, &folded),
            (ShareProof::Noisy(p), false) => p.verify(&statement, &folded),
            (ShareProof::Noisy(_), true) => false,
        };
        if ok {
            Ok(points)
        } else {
            Err(bad())
        }
    }
}

/// A query's decrypting set (exactly t members, in order) with each
/// member's λ_i·Y_i, what its batches are proved against: computed once per
/// query (`JointPublicKey::decrypting_set`), not once per round.
#[derive(Clone, Debug)]
pub struct DecryptingSet {
    names: Vec<String>,
    publics: Vec<RistrettoPoint>,
    encodings: Vec<CompressedRistretto>,
}

impl DecryptingSet {
    /// λ_i·Y_i of `authority`, if it is in the set.
    pub fn public_of(&self, authority: &str) -> Option<RistrettoPoint> {
        self.names.iter().position(|name| name == authority).and_then(|at| self.publics.get(at).copied())
    }
}

/// Verifies one batch from each member of the decrypting `set` over
/// `ciphertexts` and returns m_j·G = b_j − Σ_i D_ij for every ciphertext
/// ((m_j + Σ noise)·G when noisy): the shares come scaled by λ_i, so
/// combining is adding. A missing decryptor, a duplicate, a stranger or a
/// bad proof is an error naming the authority.
pub fn combine_batches(
    set: &DecryptingSet,
    ciphertexts: &[Ciphertext],
    context: &[u8],
    batches: &[BatchDecryption],
    exact: bool,
) -> Result<Vec<RistrettoPoint>, CryptoError> {
    if let Some(stranger) = batches.iter().find(|p| !set.names.contains(&p.authority)) {
        return Err(CryptoError::InvalidDecryptionProof { authority: stranger.authority.clone() });
    }
    let bases: Vec<RistrettoPoint> = ciphertexts.iter().map(|c| *c.a()).collect();
    let encodings = base_encodings(&bases);
    let mut combined: Vec<RistrettoPoint> = ciphertexts
        .iter()
        .map(|c| {
            c.b().copied().ok_or(CryptoError::InvalidEncoding {
                what: "ciphertext",
                reason: "its second point was not decoded (decode_first_points_only): it cannot be decrypted here"
                    .into(),
            })
        })
        .collect::<Result<_, _>>()?;
    for ((name, point), encoding) in set.names.iter().zip(&set.publics).zip(&set.encodings) {
        let public = EncodedPoint { point, encoding: *encoding };
        let mut found = batches.iter().filter(|p| &p.authority == name);
        let batch = found.next().ok_or_else(|| CryptoError::MissingDecryption { authority: name.clone() })?;
        if found.next().is_some() {
            return Err(CryptoError::DuplicateAuthority { authority: name.clone() });
        }
        // (`verify` checked that there is one share per ciphertext)
        for (sum, share) in combined.iter_mut().zip(batch.verify(public, context, &bases, &encodings, exact)?) {
            *sum -= share;
        }
    }
    Ok(combined)
}

impl JointPublicKey {
    /// The decrypting set `decryptors` (exactly t distinct members) with
    /// each member's λ_i·Y_i, in order: what their batches of shares are
    /// proved against (`BatchDecryption::verify`).
    pub fn decrypting_set(&self, decryptors: &[String]) -> Result<DecryptingSet, CryptoError> {
        let lambdas = self.lagrange(decryptors)?;
        let publics: Vec<RistrettoPoint> = decryptors
            .iter()
            .zip(&lambdas)
            .map(|(name, lambda)| {
                let member = self
                    .share_of(name)
                    .ok_or_else(|| CryptoError::InvalidDecryptionProof { authority: name.clone() })?;
                // public values: variable time
                Ok(RistrettoPoint::vartime_double_scalar_mul_basepoint(lambda, &member.point, &Scalar::ZERO))
            })
            .collect::<Result<_, CryptoError>>()?;
        let encodings = publics.iter().map(RistrettoPoint::compress).collect();
        Ok(DecryptingSet { names: decryptors.to_vec(), publics, encodings })
    }

    /// λ_i·Y_i of one member of the decrypting set `decryptors`.
    pub fn decryptor_public(&self, authority: &str, decryptors: &[String]) -> Result<RistrettoPoint, CryptoError> {
        self.decrypting_set(decryptors)?
            .public_of(authority)
            .ok_or_else(|| CryptoError::InvalidDecryptionProof { authority: authority.to_string() })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::crypto::{deal_for_tests, EncryptionKey};
    use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
    use rand::rngs::OsRng;

    #[test]
    fn half_is_the_inverse_of_two() {
        assert_eq!(half() * Scalar::from(2u8), Scalar::ONE);
        assert_eq!(half(), Scalar::from(2u8).invert());
    }

    fn point(m: i64) -> RistrettoPoint {
        RISTRETTO_BASEPOINT_POINT * crate::crypto::scalar_from_i64(m)
    }

    #[test]
    fn two_of_three_decrypt_a_batch_exactly_and_with_noise() {
        let (shares, joint) = deal_for_tests(&["a", "b", "c"], 2, 0, &mut OsRng).unwrap();
        let key = EncryptionKey::new(&joint);
        let values = [414i64, -3, 0, 1 << 30];
        let cts: Vec<Ciphertext> = values.iter().map(|m| key.encrypt(*m, &mut OsRng)).collect();
        let bases: Vec<RistrettoPoint> = cts.iter().map(|c| *c.a()).collect();
        let set = vec!["a".to_string(), "c".to_string()];
        let lambdas = joint.lagrange(&set).unwrap();
        let picked = [&shares[0], &shares[2]];
        let exact: Vec<BatchDecryption> = picked
            .iter()
            .zip(&lambdas)
            .map(|(s, l)| {
                let made = s.decryption_shares(l, &bases, None);
                s.prove_decryptions(l, b"ctx", &made.iter().collect::<Vec<_>>(), true, &mut OsRng)
            })
            .collect();
        let points = combine_batches(&joint.decrypting_set(&set).unwrap(), &cts, b"ctx", &exact, true).unwrap();
        assert_eq!(points, values.iter().map(|m| point(*m)).collect::<Vec<_>>());
        // noise e_j from each decryptor: the combination is m_j + Σ e_j
        let noises = [[5i128, -1, 0, 7], [-2, -2, 3, 0]];
        let noisy: Vec<BatchDecryption> = picked
            .iter()
            .zip(&lambdas)
            .zip(&noises)
            .map(|((s, l), e)| {
                let made = s.decryption_shares(l, &bases, Some(e));
                s.prove_decryptions(l, b"ctx", &made.iter().collect::<Vec<_>>(), false, &mut OsRng)
            })
            .collect();
        let points = combine_batches(&joint.decrypting_set(&set).unwrap(), &cts, b"ctx", &noisy, false).unwrap();
        let expected: Vec<RistrettoPoint> =
            (0..4).map(|j| point(values[j] + (noises[0][j] + noises[1][j]) as i64)).collect();
        assert_eq!(points, expected);
        // exact required: the noisy batches are refused
        assert!(combine_batches(&joint.decrypting_set(&set).unwrap(), &cts, b"ctx", &noisy, true).is_err());
    }

    #[test]
    fn any_change_to_a_batch_fails_its_proof() {
        let (shares, joint) = deal_for_tests(&["a", "b"], 2, 0, &mut OsRng).unwrap();
        let key = EncryptionKey::new(&joint);
        let cts: Vec<Ciphertext> = (0..3).map(|m| key.encrypt(m, &mut OsRng)).collect();
        let bases: Vec<RistrettoPoint> = cts.iter().map(|c| *c.a()).collect();
        let encodings = base_encodings(&bases);
        let set = vec!["a".to_string(), "b".to_string()];
        let lambda = joint.lagrange(&set).unwrap()[0];
        let public = joint.decryptor_public("a", &set).unwrap();
        let made = shares[0].decryption_shares(&lambda, &bases, None);
        let batch = shares[0].prove_decryptions(&lambda, b"ctx", &made.iter().collect::<Vec<_>>(), true, &mut OsRng);
        assert!(batch.verify(EncodedPoint::of(&public), b"ctx", &bases, &encodings, true).is_ok());
        assert!(
            batch.verify(EncodedPoint::of(&public), b"other", &bases, &encodings, true).is_err(),
            "another context"
        );
        let mut moved = batch.clone();
        moved.shares.swap(1, 2);
        assert!(moved.verify(EncodedPoint::of(&public), b"ctx", &bases, &encodings, true).is_err(), "shares moved");
        let mut shifted = batch.clone();
        shifted.shares[2] = (shifted.shares[2].decompress().unwrap() + RISTRETTO_BASEPOINT_POINT).compress();
        assert!(
            shifted.verify(EncodedPoint::of(&public), b"ctx", &bases, &encodings, true).is_err(),
            "one share shifted"
        );
        let other = joint.decryptor_public("b", &set).unwrap();
        assert!(
            batch.verify(EncodedPoint::of(&other), b"ctx", &bases, &encodings, true).is_err(),
            "another authority's key"
        );
        let unscaled = joint.share_of("a").unwrap().point;
        assert!(
            batch.verify(EncodedPoint::of(&unscaled), b"ctx", &bases, &encodings, true).is_err(),
            "Y_i without λ_i"
        );
        let fewer = &bases[..2];
        assert!(
            batch.verify(EncodedPoint::of(&public), b"ctx", fewer, &base_encodings(fewer), true).is_err(),
            "another length"
        );
        let mut garbage = batch.clone();
        garbage.shares[0] = CompressedRistretto([0xff; 32]);
        assert!(garbage.verify(EncodedPoint::of(&public), b"ctx", &bases, &encodings, true).is_err(), "not a point");
    }
}
