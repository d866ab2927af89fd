//! Zero-knowledge proofs over ristretto255, made non-interactive with merlin
//! transcripts (Fiat-Shamir):
//! - `SchnorrProof`: knowledge of x with Y = x·G, bound to an authority id;
//!   rejects rogue keys when the joint key is assembled.
//! - `DleqProof`: Chaum-Pedersen proof that log_G(Y) = log_A*(D*), and
//!   `NoisyShareProof` with noise folded in, for a batch of partial
//!   decryptions; the caller's context must bind A* and D*
//!   (`ShareStatement`).
//!
//! Proofs are (challenge, response) pairs; verification is variable time
//! (it handles public values only).

use curve25519_dalek::constants::{RISTRETTO_BASEPOINT_POINT, RISTRETTO_BASEPOINT_TABLE};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use merlin::Transcript;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

fn append_point(t: &mut Transcript, label: &'static [u8], p: &RistrettoPoint) {
    t.append_message(label, p.compress().as_bytes());
}

fn challenge(t: &mut Transcript) -> Scalar {
    let mut buf = [0u8; 64];
    t.challenge_bytes(b"challenge", &mut buf);
    Scalar::from_bytes_mod_order_wide(&buf)
}

/// Proof of knowledge of a discrete log, bound to an identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchnorrProof {
    pub challenge: Scalar,
    pub response: Scalar,
}

fn schnorr_transcript(identity: &str, public: &RistrettoPoint, commitment: &RistrettoPoint) -> Scalar {
    let mut t = Transcript::new(b"crux-key-possession-v1");
    t.append_message(b"identity", identity.as_bytes());
    append_point(&mut t, b"public", public);
    append_point(&mut t, b"commitment", commitment);
    challenge(&mut t)
}

impl SchnorrProof {
    pub fn prove(
        identity: &str,
        secret: &Scalar,
        public: &RistrettoPoint,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Self {
        let mut nonce = Scalar::random(rng);
        let commitment = RISTRETTO_BASEPOINT_TABLE * &nonce;
        let c = schnorr_transcript(identity, public, &commitment);
        let response = nonce + c * secret;
        nonce.zeroize();
        SchnorrProof { challenge: c, response }
    }

    pub fn verify(&self, identity: &str, public: &RistrettoPoint) -> bool {
        // commitment = s·G - c·Y
        let commitment = RistrettoPoint::vartime_double_scalar_mul_basepoint(&-self.challenge, public, &self.response);
        schnorr_transcript(identity, public, &commitment) == self.challenge
    }
}

/// Chaum-Pedersen proof that log_G(Y) = log_A*(D*) (`batch_decryption`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DleqProof {
    pub challenge: Scalar,
    pub response: Scalar,
}

/// What a batch's share proof is about: the authority's (scaled) public
/// share Y = x·G with its encoding, and a `context` that must bind every
/// other part of the statement. `batch_decryption` passes its seed, a hash
/// of the releases, Y, every a_j and every share D_j, from which
/// A* = Σ ρ_j·a_j and D* = Σ ρ_j·D_j follow. The transcript therefore
/// hashes the context, Y, t1 and t2 only, and a verifier never forms A* or
/// D*: it computes t2 over the a_j and D_j in one multiscalar
/// multiplication (`Folded`). (Version 1 also hashed A* and D*.)
#[derive(Clone, Copy, Debug)]
pub struct ShareStatement<'a> {
    pub context: &'a [u8],
    pub public: &'a RistrettoPoint,
    pub public_encoding: &'a CompressedRistretto,
}

/// The batch a proof's t2 is checked over: weights ρ_j, bases a_j and
/// shares D_j, all of one length (`batch_decryption` checks it).
pub struct Folded<'a> {
    pub weights: &'a [Scalar],
    pub bases: &'a [RistrettoPoint],
    pub shares: &'a [RistrettoPoint],
}

impl Folded<'_> {
    /// s·A* − c·D* (+ s₂·G) = Σ s·ρ_j·a_j − Σ c·ρ_j·D_j (+ s₂·G).
    fn t2(&self, key_response: &Scalar, challenge: &Scalar, noise_response: Option<&Scalar>) -> RistrettoPoint {
        let scalars = self
            .weights
            .iter()
            .map(|w| key_response * w)
            .chain(self.weights.iter().map(|w| -(challenge * w)))
            .chain(noise_response.copied());
        let points =
            self.bases.iter().chain(self.shares).copied().chain(noise_response.map(|_| RISTRETTO_BASEPOINT_POINT));
        RistrettoPoint::vartime_multiscalar_mul(scalars, points)
    }
}

/// The Fiat-Shamir challenge over a share proof: `domain` separates the
/// exact (DLEQ) proof from the noisy-share proof.
fn share_challenge(
    domain: &'static [u8],
    statement: &ShareStatement<'_>,
    t1: &RistrettoPoint,
    t2: &RistrettoPoint,
) -> Scalar {
    let mut t = Transcript::new(domain);
    t.append_message(b"context", statement.context);
    t.append_message(b"public-share", statement.public_encoding.as_bytes());
    append_point(&mut t, b"t1", t1);
    append_point(&mut t, b"t2", t2);
    challenge(&mut t)
}

const DLEQ_DOMAIN: &[u8] = b"crux-partial-decryption-v2";
const NOISY_DOMAIN: &[u8] = b"crux-noisy-partial-decryption-v2";

impl DleqProof {
    /// Proves D* = x·A* for Y = x·G, with A* = `base` (D* is bound by the
    /// statement's context).
    pub fn prove(
        statement: &ShareStatement<'_>,
        base: &RistrettoPoint,
        secret: &Scalar,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Self {
        let mut nonce = Scalar::random(rng);
        let t1 = RISTRETTO_BASEPOINT_TABLE * &nonce;
        let t2 = base * nonce;
        let c = share_challenge(DLEQ_DOMAIN, statement, &t1, &t2);
        let response = nonce + c * secret;
        nonce.zeroize();
        DleqProof { challenge: c, response }
    }

    pub fn verify(&self, statement: &ShareStatement<'_>, folded: &Folded<'_>) -> bool {
        let t1 =
            RistrettoPoint::vartime_double_scalar_mul_basepoint(&-self.challenge, statement.public, &self.response);
        let t2 = folded.t2(&self.response, &self.challenge, None);
        share_challenge(DLEQ_DOMAIN, statement, &t1, &t2) == self.challenge
    }
}

/// Proof that a noisy combined share D* = x·A* + f·G is well formed: the
/// prover knows (x, f) with Y = x·G. The noise stays hidden (only the
/// shares are public); the processor learns only m + Σ noise after
/// combining all shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoisyShareProof {
    pub challenge: Scalar,
    pub key_response: Scalar,
    pub noise_response: Scalar,
}

impl NoisyShareProof {
    /// Proves D* = x·A* + f·G for Y = x·G (x = `secret`, f = `noise`,
    /// A* = `base`; D* is bound by the statement's context).
    pub fn prove(
        statement: &ShareStatement<'_>,
        base: &RistrettoPoint,
        secret: &Scalar,
        noise: &Scalar,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Self {
        let mut r1 = Scalar::random(rng);
        let mut r2 = Scalar::random(rng);
        let t1 = RISTRETTO_BASEPOINT_TABLE * &r1;
        let t2 = base * r1 + RISTRETTO_BASEPOINT_TABLE * &r2;
        let c = share_challenge(NOISY_DOMAIN, statement, &t1, &t2);
        let proof = NoisyShareProof { challenge: c, key_response: r1 + c * secret, noise_response: r2 + c * noise };
        r1.zeroize();
        r2.zeroize();
        proof
    }

    pub fn verify(&self, statement: &ShareStatement<'_>, folded: &Folded<'_>) -> bool {
        // t1 = s1·G - c·Y ; t2 = s1·A* + s2·G - c·D*
        let t1 =
            RistrettoPoint::vartime_double_scalar_mul_basepoint(&-self.challenge, statement.public, &self.key_response);
        let t2 = folded.t2(&self.key_response, &self.challenge, Some(&self.noise_response));
        share_challenge(NOISY_DOMAIN, statement, &t1, &t2) == self.challenge
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
    use rand::rngs::OsRng;

    /// A context binding Y, the bases and the shares (as the batch seed does).
    fn context(tag: &[u8], y: &RistrettoPoint, bases: &[RistrettoPoint], shares: &[RistrettoPoint]) -> Vec<u8> {
        let mut c = tag.to_vec();
        for p in std::iter::once(y).chain(bases).chain(shares) {
            c.extend_from_slice(p.compress().as_bytes());
        }
        c
    }

    /// Two bases, weights and A* = Σ ρ_j·a_j.
    fn batch() -> ([Scalar; 2], [RistrettoPoint; 2], RistrettoPoint) {
        let weights = [Scalar::random(&mut OsRng), Scalar::random(&mut OsRng)];
        let bases = [RistrettoPoint::random(&mut OsRng), RistrettoPoint::random(&mut OsRng)];
        let a_star = bases[0] * weights[0] + bases[1] * weights[1];
        (weights, bases, a_star)
    }

    #[test]
    fn schnorr_binds_identity_and_key() {
        let x = Scalar::random(&mut OsRng);
        let y = RISTRETTO_BASEPOINT_TABLE * &x;
        let p = SchnorrProof::prove("authority-1", &x, &y, &mut OsRng);
        assert!(p.verify("authority-1", &y));
        assert!(!p.verify("authority-2", &y));
        assert!(!p.verify("authority-1", &(y + RISTRETTO_BASEPOINT_POINT)));
        let tampered = SchnorrProof { challenge: p.challenge, response: p.response + Scalar::ONE };
        assert!(!tampered.verify("authority-1", &y));
    }

    #[test]
    fn dleq_fails_on_any_change() {
        let x = Scalar::random(&mut OsRng);
        let y = RISTRETTO_BASEPOINT_TABLE * &x;
        let y_enc = y.compress();
        let (weights, bases, a_star) = batch();
        let shares = [bases[0] * x, bases[1] * x];
        let ctx = context(b"q1", &y, &bases, &shares);
        let statement = ShareStatement { context: &ctx, public: &y, public_encoding: &y_enc };
        let p = DleqProof::prove(&statement, &a_star, &x, &mut OsRng);
        let folded = Folded { weights: &weights, bases: &bases, shares: &shares };
        assert!(p.verify(&statement, &folded));
        let other_ctx = context(b"q2", &y, &bases, &shares);
        assert!(!p.verify(&ShareStatement { context: &other_ctx, ..statement }, &folded), "other context");
        let doubled = [bases[0] + bases[0], bases[1]];
        assert!(!p.verify(&statement, &Folded { bases: &doubled, ..folded }), "other ciphertext");
        let wrong = [shares[0] + RISTRETTO_BASEPOINT_POINT, shares[1]];
        assert!(!p.verify(&statement, &Folded { shares: &wrong, ..folded }), "wrong share");
        let swapped = [weights[1], weights[0]];
        assert!(!p.verify(&statement, &Folded { weights: &swapped, ..folded }), "other weights");
        let other_y = RISTRETTO_BASEPOINT_TABLE * &Scalar::random(&mut OsRng);
        let other_enc = other_y.compress();
        let other = ShareStatement { public: &other_y, public_encoding: &other_enc, ..statement };
        assert!(!p.verify(&other, &folded), "other authority");
        let tampered = DleqProof { challenge: p.challenge + Scalar::ONE, response: p.response };
        assert!(!tampered.verify(&statement, &folded));
    }

    #[test]
    fn noisy_share_proof() {
        let x = Scalar::random(&mut OsRng);
        let y = RISTRETTO_BASEPOINT_TABLE * &x;
        let y_enc = y.compress();
        let (weights, bases, a_star) = batch();
        let noise = [crate::crypto::scalar_from_i64(-17), crate::crypto::scalar_from_i64(4)];
        let shares = [
            bases[0] * x + RISTRETTO_BASEPOINT_TABLE * &noise[0],
            bases[1] * x + RISTRETTO_BASEPOINT_TABLE * &noise[1],
        ];
        let f_star = weights[0] * noise[0] + weights[1] * noise[1];
        let ctx = context(b"q1", &y, &bases, &shares);
        let statement = ShareStatement { context: &ctx, public: &y, public_encoding: &y_enc };
        let p = NoisyShareProof::prove(&statement, &a_star, &x, &f_star, &mut OsRng);
        let folded = Folded { weights: &weights, bases: &bases, shares: &shares };
        assert!(p.verify(&statement, &folded));
        let other_ctx = context(b"q2", &y, &bases, &shares);
        assert!(!p.verify(&ShareStatement { context: &other_ctx, ..statement }, &folded));
        let doubled = [bases[0] + bases[0], bases[1]];
        assert!(!p.verify(&statement, &Folded { bases: &doubled, ..folded }));
        let other_y = RISTRETTO_BASEPOINT_TABLE * &Scalar::random(&mut OsRng);
        let other_enc = other_y.compress();
        assert!(!p.verify(&ShareStatement { public: &other_y, public_encoding: &other_enc, ..statement }, &folded));
        // an exact proof's transcript is not a noisy one's
        let exact = DleqProof::prove(&statement, &a_star, &x, &mut OsRng);
        let as_noisy =
            NoisyShareProof { challenge: exact.challenge, key_response: exact.response, noise_response: Scalar::ZERO };
        assert!(!as_noisy.verify(&statement, &Folded { shares: &[bases[0] * x, bases[1] * x], ..folded }));
    }
}
