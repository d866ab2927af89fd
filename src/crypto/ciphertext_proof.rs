//! Proofs that a relay knows the randomness of each ciphertext it sends
//! (Schnorr proof of knowledge of k with a = k·G, "signed ElGamal"). Each
//! proof is bound to a context (query, round, task, relay: built by
//! `protocol::codec`) and to the ciphertext's index and both of its points,
//! so a ciphertext copied from another relay, slot or query, negated, or
//! combined from other ciphertexts has no valid proof: whoever sends it
//! would have to know the other party's randomness.
//!
//! Made by `stats::contribution` while encrypting (the randomness never
//! leaves that function); checked by authorities and the processor, in
//! batches: one multiscalar multiplication for all proofs of a registration,
//! with random 128-bit weights from the verifier. Verification is variable
//! time (public values only).

use curve25519_dalek::constants::{RISTRETTO_BASEPOINT_POINT, RISTRETTO_BASEPOINT_TABLE};
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use merlin::Transcript;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::elgamal::Ciphertext;

const DOMAIN: &[u8] = b"crux-ciphertext-randomness-v1";

/// (R, s) with R = r·G, c = H(context, index, a, b, R), s = r + c·k.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiphertextProof {
    pub commitment: RistrettoPoint,
    pub response: Scalar,
}

impl std::fmt::Debug for CiphertextProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CiphertextProof(..)")
    }
}

fn challenge(context: &[u8], index: u32, ciphertext: &Ciphertext, commitment: &RistrettoPoint) -> Scalar {
    let mut t = Transcript::new(DOMAIN);
    t.append_message(b"context", context);
    t.append_message(b"index", &index.to_be_bytes());
    t.append_message(b"ciphertext", &ciphertext.to_bytes());
    t.append_message(b"commitment", commitment.compress().as_bytes());
    let mut buf = [0u8; 64];
    t.challenge_bytes(b"challenge", &mut buf);
    Scalar::from_bytes_mod_order_wide(&buf)
}

impl CiphertextProof {
    /// Proves knowledge of `randomness` = k with `ciphertext.a` = k·G.
    pub fn prove(
        context: &[u8],
        index: u32,
        ciphertext: &Ciphertext,
        randomness: &Scalar,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Self {
        let mut nonce = Scalar::random(rng);
        let commitment = RISTRETTO_BASEPOINT_TABLE * &nonce;
        let c = challenge(context, index, ciphertext, &commitment);
        let response = nonce + c * randomness;
        nonce.zeroize();
        CiphertextProof { commitment, response }
    }

    /// Checks one proof (s·G = R + c·a).
    pub fn verify(&self, context: &[u8], index: u32, ciphertext: &Ciphertext) -> bool {
        let c = challenge(context, index, ciphertext, &self.commitment);
        RistrettoPoint::vartime_double_scalar_mul_basepoint(&-c, &ciphertext.a, &self.response) == self.commitment
    }
}

/// One (context, index, ciphertext, proof) to check in a batch.
pub struct ProofItem<'a> {
    pub context: &'a [u8],
    pub index: u32,
    pub ciphertext: &'a Ciphertext,
    pub proof: &'a CiphertextProof,
}

/// Checks all proofs at once: Σ z_j·(s_j·G − R_j − c_j·a_j) = 0 with random
/// 128-bit weights z_j. A batch with any invalid proof fails except with
/// probability about 2^-128; the caller then finds the culprit one by one.
pub fn verify_batch(items: &[ProofItem<'_>], rng: &mut (impl RngCore + CryptoRng)) -> bool {
    if items.is_empty() {
        return true;
    }
    let mut g_scalar = Scalar::ZERO;
    let mut scalars = Vec::with_capacity(2 * items.len() + 1);
    let mut points = Vec::with_capacity(2 * items.len() + 1);
    for item in items {
        let mut weight = [0u8; 32];
        rng.fill_bytes(&mut weight[..16]);
        let z = Scalar::from_bytes_mod_order(weight);
        let c = challenge(item.context, item.index, item.ciphertext, &item.proof.commitment);
        g_scalar += z * item.proof.response;
        scalars.push(-z);
        points.push(item.proof.commitment);
        scalars.push(-(z * c));
        points.push(item.ciphertext.a);
    }
    scalars.push(g_scalar);
    points.push(RISTRETTO_BASEPOINT_POINT);
    RistrettoPoint::vartime_multiscalar_mul(scalars, points).is_identity()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::crypto::{EncryptionKey, JointPublicKey, KeyShare};
    use rand::rngs::OsRng;

    fn key() -> EncryptionKey {
        let s = KeyShare::generate("authority-1", &mut OsRng);
        EncryptionKey::new(&JointPublicKey::assemble(&[s.public_share(&mut OsRng)]).unwrap())
    }

    #[test]
    fn proofs_bind_context_index_and_ciphertext() {
        let key = key();
        let (c1, p1) = key.encrypt_proved(5, b"ctx", 0, &mut OsRng);
        let (c2, p2) = key.encrypt_proved(-7, b"ctx", 1, &mut OsRng);
        assert!(p1.verify(b"ctx", 0, &c1));
        assert!(!p1.verify(b"ctx", 1, &c1), "moved to another slot");
        assert!(!p1.verify(b"other", 0, &c1), "moved to another query or relay");
        assert!(!p1.verify(b"ctx", 0, &(-c1)), "negated");
        assert!(!p1.verify(b"ctx", 0, &(c1 + c2)), "combined");
        assert!(!p2.verify(b"ctx", 0, &c1), "another ciphertext's proof");
        let batch = |first: &CiphertextProof| {
            let items = [
                ProofItem { context: b"ctx", index: 0, ciphertext: &c1, proof: first },
                ProofItem { context: b"ctx", index: 1, ciphertext: &c2, proof: &p2 },
            ];
            verify_batch(&items, &mut OsRng)
        };
        assert!(batch(&p1));
        assert!(!batch(&CiphertextProof { commitment: p1.commitment, response: p1.response + Scalar::ONE }));
        assert!(!batch(&p2), "a proof for another index");
        assert!(verify_batch(&[], &mut OsRng));
    }
}
