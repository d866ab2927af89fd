//! One proof per contribution that the relay knows the randomness of every
//! ciphertext in it ("signed ElGamal", batched): with weights
//! ρ_j = H(statement, j) derived from the whole contribution statement
//! (query, round, task, relay and every ciphertext in order), the relay
//! proves knowledge of k* = Σ ρ_j·k_j for A* = Σ ρ_j·a_j with a Schnorr
//! proof (R, s). Because the weights depend on every ciphertext, a relay
//! that did not make one of them (one copied from another relay, slot, round
//! or query, negated, or combined from others) cannot know k*; rewinding on
//! fresh weights would extract every k_j.
//!
//! Made by `stats::contribution` while encrypting (the randomness never
//! leaves that function); checked by authorities and the processor, in
//! batches over all contributions of a round: one multiscalar multiplication
//! of one point per ciphertext plus one per contribution, with random 128-bit
//! weights from the verifier. Verification is variable time (public values).

use curve25519_dalek::constants::{RISTRETTO_BASEPOINT_POINT, RISTRETTO_BASEPOINT_TABLE};
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};
use zeroize::Zeroize;

const DOMAIN: &[u8] = b"crux-contribution-randomness-v1";

/// (R, s): R = r·G, s = r + c·Σ ρ_j·k_j, c = H(statement, R).
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RandomnessProof {
    pub commitment: RistrettoPoint,
    pub response: Scalar,
}

impl std::fmt::Debug for RandomnessProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RandomnessProof(..)")
    }
}

/// SHA-512 of the domain and the statement: the seed of the weights and the challenge.
fn seed(statement: &[u8]) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(DOMAIN);
    h.update((statement.len() as u64).to_be_bytes());
    h.update(statement);
    h.finalize().into()
}

/// The weight ρ_j of ciphertext j.
fn weight(seed: &[u8; 64], j: u32) -> Scalar {
    let mut h = Sha512::new();
    h.update(b"weight");
    h.update(seed);
    h.update(j.to_be_bytes());
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

fn challenge(seed: &[u8; 64], commitment: &RistrettoPoint) -> Scalar {
    let mut h = Sha512::new();
    h.update(b"challenge");
    h.update(seed);
    h.update(commitment.compress().as_bytes());
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

impl RandomnessProof {
    /// Proves knowledge of `randomness[j]` = k_j with a_j = k_j·G for every
    /// ciphertext j of the contribution that `statement` encodes
    /// (`protocol::codec::contribution_statement`).
    pub fn prove(statement: &[u8], randomness: &[Scalar], rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let seed = seed(statement);
        let mut combined = Scalar::ZERO;
        for (j, k) in (0u32..).zip(randomness) {
            combined += weight(&seed, j) * k;
        }
        let mut nonce = Scalar::random(rng);
        let commitment = RISTRETTO_BASEPOINT_TABLE * &nonce;
        let response = nonce + challenge(&seed, &commitment) * combined;
        nonce.zeroize();
        combined.zeroize();
        RandomnessProof { commitment, response }
    }
}

/// One contribution to check: its statement bytes, the first points `a_j`
/// of its ciphertexts in statement order, and its proof.
pub struct ProofItem<'a> {
    pub statement: &'a [u8],
    pub a: Vec<&'a RistrettoPoint>,
    pub proof: &'a RandomnessProof,
}

/// Checks all proofs at once: Σ_i z_i·(s_i·G − R_i − c_i·Σ_j ρ_ij·a_ij) = 0
/// with random 128-bit weights z_i. A batch with any invalid proof fails
/// except with probability about 2^-128; the caller then finds the culprit
/// one by one.
pub fn verify_batch(items: &[ProofItem<'_>], rng: &mut (impl RngCore + CryptoRng)) -> bool {
    if items.is_empty() {
        return true;
    }
    let total: usize = items.iter().map(|i| i.a.len() + 1).sum();
    let mut scalars = Vec::with_capacity(total + 1);
    let mut points = Vec::with_capacity(total + 1);
    let mut g_scalar = Scalar::ZERO;
    for item in items {
        let mut z = [0u8; 32];
        rng.fill_bytes(&mut z[..16]);
        let z = Scalar::from_bytes_mod_order(z);
        let seed = seed(item.statement);
        let zc = z * challenge(&seed, &item.proof.commitment);
        g_scalar += z * item.proof.response;
        scalars.push(-z);
        points.push(item.proof.commitment);
        for (j, a) in (0u32..).zip(&item.a) {
            scalars.push(-(zc * weight(&seed, j)));
            points.push(**a);
        }
    }
    scalars.push(g_scalar);
    points.push(RISTRETTO_BASEPOINT_POINT);
    RistrettoPoint::vartime_multiscalar_mul(scalars, points).is_identity()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::crypto::{deal_for_tests, Ciphertext, EncryptionKey};
    use rand::rngs::OsRng;

    fn key() -> EncryptionKey {
        EncryptionKey::new(&deal_for_tests(&["authority-1"], 1, 0, &mut OsRng).unwrap().1)
    }

    /// A stand-in statement: the context and the ciphertexts' bytes.
    fn statement(context: &[u8], cts: &[Ciphertext]) -> Vec<u8> {
        let mut s = context.to_vec();
        for c in cts {
            s.extend_from_slice(&c.to_bytes());
        }
        s
    }

    fn check(context: &[u8], cts: &[Ciphertext], proof: &RandomnessProof) -> bool {
        let st = statement(context, cts);
        let item = ProofItem { statement: &st, a: cts.iter().map(|c| c.a()).collect(), proof };
        verify_batch(&[item], &mut OsRng)
    }

    #[test]
    fn proofs_bind_every_ciphertext_its_place_and_the_statement() {
        let key = key();
        let mut ks = Vec::new();
        let mut cts = Vec::new();
        for m in [5i64, -7, 0] {
            let (c, k) = key.encrypt_with_randomness(m, &mut OsRng);
            cts.push(c);
            ks.push(k);
        }
        let proof = RandomnessProof::prove(&statement(b"ctx", &cts), &ks, &mut OsRng);
        assert!(check(b"ctx", &cts, &proof));
        assert!(!check(b"other", &cts, &proof), "another query, round, task or relay");
        let mut swapped = cts.clone();
        swapped.swap(0, 1);
        assert!(!check(b"ctx", &swapped, &proof), "moved between slots");
        let mut negated = cts.clone();
        negated[0] = -negated[0];
        assert!(!check(b"ctx", &negated, &proof), "negated");
        let mut combined = cts.clone();
        combined[2] = cts[0] + cts[1];
        assert!(!check(b"ctx", &combined, &proof), "combined");
        // someone else's ciphertext with a proof made without its randomness
        let (foreign, _) = key.encrypt_with_randomness(9, &mut OsRng);
        let mut copied = cts.clone();
        copied[1] = foreign;
        let forged = RandomnessProof::prove(&statement(b"ctx", &copied), &ks, &mut OsRng);
        assert!(!check(b"ctx", &copied, &forged), "copied");
        // batches: a good one passes, one bad item fails the batch
        let st = statement(b"ctx", &cts);
        let good = ProofItem { statement: &st, a: cts.iter().map(|c| c.a()).collect(), proof: &proof };
        let st2 = statement(b"ctx", &copied);
        let bad = ProofItem { statement: &st2, a: copied.iter().map(|c| c.a()).collect(), proof: &forged };
        assert!(verify_batch(&[good], &mut OsRng));
        let good = ProofItem { statement: &st, a: cts.iter().map(|c| c.a()).collect(), proof: &proof };
        assert!(!verify_batch(&[good, bad], &mut OsRng));
        assert!(verify_batch(&[], &mut OsRng));
    }
}
