//! Zero-knowledge proofs over ristretto255, made non-interactive with merlin
//! transcripts (Fiat-Shamir):
//! - `SchnorrProof`: knowledge of x with Y = x·G, bound to an authority id;
//!   rejects rogue keys when the joint key is assembled.
//! - `DleqProof`: Chaum-Pedersen proof that log_G(Y_i) = log_a(D_i), bound to
//!   a caller-supplied context (query id and request), for partial decryptions.
//!
//! Proofs are (challenge, response) pairs; verification is variable time
//! (it handles public values only).

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::RistrettoPoint;
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

/// Chaum-Pedersen proof that log_G(Y_i) = log_a(D_i).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DleqProof {
    pub challenge: Scalar,
    pub response: Scalar,
}

/// What a decryption-share proof is about: the authority's public share
/// Y = x·G, the ciphertext's first component a, the decryption share D (or
/// D'), and the caller's context (query id and request) the proof is bound to.
#[derive(Clone, Copy, Debug)]
pub struct ShareStatement<'a> {
    pub context: &'a [u8],
    pub public: &'a RistrettoPoint,
    pub base: &'a RistrettoPoint,
    pub share: &'a RistrettoPoint,
}

/// The Fiat-Shamir challenge over a decryption share: `domain` separates
/// the exact (DLEQ) proof from the noisy-share proof.
fn share_challenge(
    domain: &'static [u8],
    statement: &ShareStatement<'_>,
    t1: &RistrettoPoint,
    t2: &RistrettoPoint,
) -> Scalar {
    let mut t = Transcript::new(domain);
    t.append_message(b"context", statement.context);
    append_point(&mut t, b"public-share", statement.public);
    append_point(&mut t, b"ciphertext-a", statement.base);
    append_point(&mut t, b"decryption-share", statement.share);
    append_point(&mut t, b"t1", t1);
    append_point(&mut t, b"t2", t2);
    challenge(&mut t)
}

const DLEQ_DOMAIN: &[u8] = b"crux-partial-decryption-v1";
const NOISY_DOMAIN: &[u8] = b"crux-noisy-partial-decryption-v1";

impl DleqProof {
    /// Proves D = x·a for Y = x·G, where the caller passes D and Y in the
    /// statement.
    pub fn prove(statement: &ShareStatement<'_>, secret: &Scalar, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut nonce = Scalar::random(rng);
        let t1 = RISTRETTO_BASEPOINT_TABLE * &nonce;
        let t2 = statement.base * nonce;
        let c = share_challenge(DLEQ_DOMAIN, statement, &t1, &t2);
        let response = nonce + c * secret;
        nonce.zeroize();
        DleqProof { challenge: c, response }
    }

    pub fn verify(&self, statement: &ShareStatement<'_>) -> bool {
        let neg_c = -self.challenge;
        let t1 = RistrettoPoint::vartime_double_scalar_mul_basepoint(&neg_c, statement.public, &self.response);
        let t2 = RistrettoPoint::vartime_multiscalar_mul([self.response, neg_c], [*statement.base, *statement.share]);
        share_challenge(DLEQ_DOMAIN, statement, &t1, &t2) == self.challenge
    }
}

/// Proof that a noisy decryption share D' = x·a + e·G is well formed: the
/// prover knows (x, e) with Y = x·G and D' = x·a + e·G. The noise e stays
/// hidden (only D' is public); the processor learns only m - Σe after
/// combining all shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoisyShareProof {
    pub challenge: Scalar,
    pub key_response: Scalar,
    pub noise_response: Scalar,
}

impl NoisyShareProof {
    /// Proves D' = x·a + e·G for Y = x·G (x = `secret`, e = `noise`), where
    /// the caller passes D' and Y in the statement.
    pub fn prove(
        statement: &ShareStatement<'_>,
        secret: &Scalar,
        noise: &Scalar,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Self {
        let mut r1 = Scalar::random(rng);
        let mut r2 = Scalar::random(rng);
        let t1 = RISTRETTO_BASEPOINT_TABLE * &r1;
        let t2 = statement.base * r1 + RISTRETTO_BASEPOINT_TABLE * &r2;
        let c = share_challenge(NOISY_DOMAIN, statement, &t1, &t2);
        let proof = NoisyShareProof { challenge: c, key_response: r1 + c * secret, noise_response: r2 + c * noise };
        r1.zeroize();
        r2.zeroize();
        proof
    }

    pub fn verify(&self, statement: &ShareStatement<'_>) -> bool {
        let neg_c = -self.challenge;
        // t1 = s1·G - c·Y ; t2 = s1·a + s2·G - c·D'
        let t1 = RistrettoPoint::vartime_double_scalar_mul_basepoint(&neg_c, statement.public, &self.key_response);
        let t2 =
            RistrettoPoint::vartime_multiscalar_mul([self.key_response, neg_c], [*statement.base, *statement.share])
                + RISTRETTO_BASEPOINT_TABLE * &self.noise_response;
        share_challenge(NOISY_DOMAIN, statement, &t1, &t2) == self.challenge
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
    use rand::rngs::OsRng;

    fn statement<'a>(
        context: &'a [u8],
        public: &'a RistrettoPoint,
        base: &'a RistrettoPoint,
        share: &'a RistrettoPoint,
    ) -> ShareStatement<'a> {
        ShareStatement { context, public, base, share }
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
        let a = RistrettoPoint::random(&mut OsRng);
        let d = a * x;
        let p = DleqProof::prove(&statement(b"q1", &y, &a, &d), &x, &mut OsRng);
        assert!(p.verify(&statement(b"q1", &y, &a, &d)));
        assert!(!p.verify(&statement(b"q2", &y, &a, &d)), "other context");
        assert!(!p.verify(&statement(b"q1", &y, &(a + a), &d)), "other ciphertext");
        assert!(!p.verify(&statement(b"q1", &y, &a, &(d + RISTRETTO_BASEPOINT_POINT))), "wrong share");
        let other_y = RISTRETTO_BASEPOINT_TABLE * &Scalar::random(&mut OsRng);
        assert!(!p.verify(&statement(b"q1", &other_y, &a, &d)), "other authority");
        let tampered = DleqProof { challenge: p.challenge + Scalar::ONE, response: p.response };
        assert!(!tampered.verify(&statement(b"q1", &y, &a, &d)));
    }

    #[test]
    fn noisy_share_proof() {
        let x = Scalar::random(&mut OsRng);
        let e = crate::crypto::scalar_from_i64(-17);
        let y = RISTRETTO_BASEPOINT_TABLE * &x;
        let a = RistrettoPoint::random(&mut OsRng);
        let d = a * x + RISTRETTO_BASEPOINT_TABLE * &e;
        let p = NoisyShareProof::prove(&statement(b"q1", &y, &a, &d), &x, &e, &mut OsRng);
        assert!(p.verify(&statement(b"q1", &y, &a, &d)));
        assert!(!p.verify(&statement(b"q2", &y, &a, &d)));
        assert!(!p.verify(&statement(b"q1", &y, &(a + a), &d)));
        let other_y = RISTRETTO_BASEPOINT_TABLE * &Scalar::random(&mut OsRng);
        assert!(!p.verify(&statement(b"q1", &other_y, &a, &d)));
    }
}
