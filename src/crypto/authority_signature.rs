//! Authority signatures: Schnorr signatures on ristretto255 under an
//! authority's key share x_i, checked against its verification key
//! Y_i = x_i·G (already pinned in every node's committee file, so no extra
//! key material is needed). Two forms, each with its own transcript domain:
//!
//! - `AdmissionSignature` (R, s), over query and round admissions
//!   (`protocol::codec`): a query's admission needs t members, a round's
//!   every one of the query's decryptors. Carrying R lets a relay check all
//!   of an admission's signatures with one multiscalar multiplication
//!   (`verify_admissions`), which it does for every round it serves.
//! - `AuthoritySignature` (c, s), over committee documents
//!   (`protocol::committee`: changes, transitions, ledger handovers), which
//!   are stored in committee files and checked rarely.
//!
//! Input: the statement bytes (explicit, versioned, domain-separated). The
//! transcripts are merlin with their own domain labels, so a signature never
//! doubles as a decryption proof or a key-possession proof made with the
//! same share, nor one form as the other. Signing is constant time in the
//! secret; verification is variable time (public values only).

use std::fmt;

use curve25519_dalek::constants::{RISTRETTO_BASEPOINT_POINT, RISTRETTO_BASEPOINT_TABLE};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use merlin::Transcript;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};
use zeroize::Zeroize;

use super::elgamal::Bytes64Visitor;
use super::error::CryptoError;
use super::keys::{EncodedPoint, JointPublicKey, KeyShare};

const DOMAIN: &[u8] = b"crux-authority-signature-v1";

/// A Schnorr signature (c, s) with c = H(Y, R, message), s = r + c·x.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthoritySignature {
    pub challenge: Scalar,
    pub response: Scalar,
}

impl std::fmt::Debug for AuthoritySignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthoritySignature(..)")
    }
}

fn challenge(public: &CompressedRistretto, commitment: &RistrettoPoint, message: &[u8]) -> Scalar {
    let mut t = Transcript::new(DOMAIN);
    t.append_message(b"public-share", public.as_bytes());
    t.append_message(b"message", message);
    t.append_message(b"commitment", commitment.compress().as_bytes());
    let mut buf = [0u8; 64];
    t.challenge_bytes(b"challenge", &mut buf);
    Scalar::from_bytes_mod_order_wide(&buf)
}

impl AuthoritySignature {
    /// Verifies against a public share point.
    pub fn verify_point(&self, public: &RistrettoPoint, message: &[u8]) -> bool {
        self.verify_key(EncodedPoint::of(public), message)
    }

    fn verify_key(&self, key: EncodedPoint<'_>, message: &[u8]) -> bool {
        let commitment =
            RistrettoPoint::vartime_double_scalar_mul_basepoint(&-self.challenge, key.point, &self.response);
        challenge(&key.encoding, &commitment, message) == self.challenge
    }

    /// 64 bytes: challenge then response (canonical scalars).
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(self.challenge.as_bytes());
        out[32..].copy_from_slice(self.response.as_bytes());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let bad = |reason: String| CryptoError::InvalidEncoding { what: "authority signature", reason };
        if bytes.len() != 64 {
            return Err(bad(format!("expected 64 bytes, got {}", bytes.len())));
        }
        let scalar = |b: &[u8]| -> Result<Scalar, CryptoError> {
            let mut arr = [0u8; 32];
            arr.copy_from_slice(b);
            Option::<Scalar>::from(Scalar::from_canonical_bytes(arr)).ok_or_else(|| bad("non-canonical scalar".into()))
        };
        let (c, s) = bytes.split_at(32);
        Ok(AuthoritySignature { challenge: scalar(c)?, response: scalar(s)? })
    }
}

const ADMISSION_DOMAIN: &[u8] = b"crux-admission-signature-v1";

/// A Schnorr signature (R, s) over an admission statement: s·G = R + c·Y
/// with c = H(Y, message, R). 64 bytes on the wire: R compressed, then s
/// (a canonical scalar).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AdmissionSignature {
    commitment: CompressedRistretto,
    response: Scalar,
}

impl fmt::Debug for AdmissionSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdmissionSignature(..)")
    }
}

fn admission_challenge(public: &CompressedRistretto, message: &[u8], commitment: &CompressedRistretto) -> Scalar {
    let mut t = Transcript::new(ADMISSION_DOMAIN);
    t.append_message(b"public-share", public.as_bytes());
    t.append_message(b"message", message);
    t.append_message(b"commitment", commitment.as_bytes());
    let mut buf = [0u8; 64];
    t.challenge_bytes(b"challenge", &mut buf);
    Scalar::from_bytes_mod_order_wide(&buf)
}

impl AdmissionSignature {
    /// Verifies one signature against a public share point.
    pub fn verify_point(&self, public: &RistrettoPoint, message: &[u8]) -> bool {
        verify_admissions(message, &[(EncodedPoint::of(public), self)]).is_ok()
    }

    /// 64 bytes: R compressed, then the response.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(self.commitment.as_bytes());
        out[32..].copy_from_slice(self.response.as_bytes());
        out
    }

    /// Takes 64 bytes; refuses another length and a non-canonical
    /// response. R is decoded when verified (an invalid R never verifies).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let bad = |reason: String| CryptoError::InvalidEncoding { what: "admission signature", reason };
        if bytes.len() != 64 {
            return Err(bad(format!("expected 64 bytes, got {}", bytes.len())));
        }
        let (r, s) = bytes.split_at(32);
        let commitment = CompressedRistretto::from_slice(r).map_err(|_| bad("bad commitment length".into()))?;
        let mut arr = [0u8; 32];
        arr.copy_from_slice(s);
        let response = Option::<Scalar>::from(Scalar::from_canonical_bytes(arr))
            .ok_or_else(|| bad("non-canonical scalar".into()))?;
        Ok(AdmissionSignature { commitment, response })
    }
}

impl serde::Serialize for AdmissionSignature {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> serde::Deserialize<'de> for AdmissionSignature {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_bytes(Bytes64Visitor {
            what: "a 64-byte admission signature (a compressed ristretto255 point and a scalar)",
            parse: AdmissionSignature::from_bytes,
        })
    }
}

/// Checks every (Y_i, signature) over one `message` at once: with weights
/// z_0 = 1 and z_i 128-bit, derived by hashing the message and every key
/// and signature (so fixed before anyone could aim at them), it checks
/// (Σ z_i·s_i)·G − Σ z_i·R_i − Σ z_i·c_i·Y_i = 0 with one multiscalar
/// multiplication. In a prime-order group a wrong signature makes this
/// fail except with probability about 2^-128. On failure each signature is
/// checked alone: `Err(i)` names the first bad one.
pub fn verify_admissions(message: &[u8], items: &[(EncodedPoint<'_>, &AdmissionSignature)]) -> Result<(), usize> {
    let each: Vec<_> = items.iter().map(|(key, sig)| (*key, *sig, message)).collect();
    verify_statements(&each)
}

/// `verify_admissions` for signatures over different statements (each
/// item: signer, signature, its statement), e.g. the decryptors' sealing
/// grants: one multiscalar multiplication for all of them, then each alone
/// on failure (`Err(i)`: the first bad one).
pub fn verify_statements(items: &[(EncodedPoint<'_>, &AdmissionSignature, &[u8])]) -> Result<(), usize> {
    if batch_holds(items) {
        return Ok(());
    }
    for (i, item) in items.iter().enumerate() {
        if !batch_holds(std::slice::from_ref(item)) {
            return Err(i);
        }
    }
    // (unreachable in practice: every one alone holds but not together)
    Err(0)
}

fn batch_holds(items: &[(EncodedPoint<'_>, &AdmissionSignature, &[u8])]) -> bool {
    let mut seed = Sha512::new();
    seed.update(b"crux-admission-batch-v2");
    for (_, sig, message) in items {
        seed.update((message.len() as u64).to_be_bytes());
        seed.update(message);
        seed.update(sig.to_bytes());
    }
    let seed = seed.finalize();
    let mut scalars = Vec::with_capacity(2 * items.len() + 1);
    let mut points = Vec::with_capacity(2 * items.len() + 1);
    let mut g = Scalar::ZERO;
    for (i, (key, sig, message)) in (0u64..).zip(items) {
        let Some(r) = sig.commitment.decompress() else { return false };
        let z = if i == 0 { Scalar::ONE } else { weight(&seed, i) };
        let c = admission_challenge(&key.encoding, message, &sig.commitment);
        g += z * sig.response;
        scalars.push(-z);
        points.push(r);
        scalars.push(-(z * c));
        points.push(*key.point);
    }
    scalars.push(g);
    points.push(RISTRETTO_BASEPOINT_POINT);
    RistrettoPoint::vartime_multiscalar_mul(scalars, points).is_identity()
}

/// A 128-bit weight for item `i` from the batch's seed.
fn weight(seed: &[u8], i: u64) -> Scalar {
    let mut h = Sha512::new();
    h.update(seed);
    h.update(i.to_be_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 32];
    for (b, d) in bytes.iter_mut().zip(digest.iter().take(16)) {
        *b = *d;
    }
    Scalar::from_bytes_mod_order(bytes)
}

impl KeyShare {
    /// Signs `message` (an admission statement) with this share.
    pub fn sign_statement(&self, message: &[u8], rng: &mut (impl RngCore + CryptoRng)) -> AuthoritySignature {
        let mut nonce = Scalar::random(rng);
        let commitment = RISTRETTO_BASEPOINT_TABLE * &nonce;
        let c = challenge(&self.public_point().compress(), &commitment, message);
        let response = nonce + c * self.secret_scalar();
        nonce.zeroize();
        AuthoritySignature { challenge: c, response }
    }

    /// Signs an admission statement (`codec::query_admission`,
    /// `codec::round_admission`) with this share.
    pub fn sign_admission(&self, message: &[u8], rng: &mut (impl RngCore + CryptoRng)) -> AdmissionSignature {
        let mut nonce = Scalar::random(rng);
        let commitment = (RISTRETTO_BASEPOINT_TABLE * &nonce).compress();
        let c = admission_challenge(&self.public_point().compress(), message, &commitment);
        let response = nonce + c * self.secret_scalar();
        nonce.zeroize();
        AdmissionSignature { commitment, response }
    }
}

/// A signature form that members sign with (`AdmissionSignature`,
/// `AuthoritySignature`), as `JointPublicKey::verify_signed_by` checks it.
pub trait MemberSignature {
    /// Checks every (Y_i, signature) over `message`: `Err(i)` names the
    /// first that fails.
    fn verify_all(message: &[u8], items: &[(EncodedPoint<'_>, &Self)]) -> Result<(), usize>;
}

impl MemberSignature for AuthoritySignature {
    fn verify_all(message: &[u8], items: &[(EncodedPoint<'_>, &Self)]) -> Result<(), usize> {
        match items.iter().position(|(key, sig)| !sig.verify_key(*key, message)) {
            Some(i) => Err(i),
            None => Ok(()),
        }
    }
}

impl MemberSignature for AdmissionSignature {
    fn verify_all(message: &[u8], items: &[(EncodedPoint<'_>, &Self)]) -> Result<(), usize> {
        verify_admissions(message, items)
    }
}

impl JointPublicKey {
    /// Checks that at least t distinct members of the committee signed
    /// `message` (a query's admission), each once, and that no one else did.
    pub fn verify_threshold_signed<S: MemberSignature>(
        &self,
        message: &[u8],
        signatures: &[(String, S)],
    ) -> Result<(), CryptoError> {
        let signers: Vec<String> = signatures.iter().map(|(name, _)| name.clone()).collect();
        self.verify_signed_by(message, signatures, &signers)?;
        if signers.len() < usize::from(self.threshold()) {
            return Err(CryptoError::InvalidSignature {
                signer: signers.join(", "),
                reason: format!(
                    "admission signed by {} authorities; the committee's threshold is {}",
                    signers.len(),
                    self.threshold()
                ),
            });
        }
        Ok(())
    }

    /// Checks that every one of `signers` (members of the committee) signed
    /// `message` exactly once, and that no one else did.
    pub fn verify_signed_by<S: MemberSignature>(
        &self,
        message: &[u8],
        signatures: &[(String, S)],
        signers: &[String],
    ) -> Result<(), CryptoError> {
        let fail = |signer: &str, reason: &str| CryptoError::InvalidSignature {
            signer: signer.to_string(),
            reason: reason.to_string(),
        };
        if let Some((stranger, _)) = signatures.iter().find(|(name, _)| !signers.contains(name)) {
            return Err(fail(stranger, "not a signer this admission needs"));
        }
        let mut items = Vec::with_capacity(signers.len());
        for name in signers {
            let key = self.signer_key(name).ok_or_else(|| fail(name, "not an authority of this cluster's key"))?;
            let mut found = signatures.iter().filter(|(signer, _)| signer == name);
            let (_, sig) = found.next().ok_or_else(|| fail(name, "admission not signed"))?;
            if found.next().is_some() {
                return Err(fail(name, "signed twice"));
            }
            items.push((key, sig));
        }
        S::verify_all(message, &items).map_err(|i| {
            let name = signers.get(i).map_or("?", String::as_str);
            fail(name, "admission signature does not match the statement")
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn signatures_bind_key_and_message() {
        let (shares, joint) =
            crate::crypto::deal_for_tests(&["authority-1", "authority-2", "authority-3"], 2, 0, &mut OsRng).unwrap();
        let (a, b) = (&shares[0], &shares[1]);
        let msg = b"statement";
        let sa = a.sign_statement(msg, &mut OsRng);
        let sb = b.sign_statement(msg, &mut OsRng);
        assert!(sa.verify_point(&a.public_point(), msg));
        assert!(!sa.verify_point(&b.public_point(), msg));
        assert!(!sa.verify_point(&a.public_point(), b"statemenT"));
        let both = vec![("authority-1".to_string(), sa), ("authority-2".to_string(), sb)];
        joint.verify_threshold_signed(msg, &both).unwrap();
        joint.verify_signed_by(msg, &both, &["authority-1".into(), "authority-2".into()]).unwrap();
        assert!(joint.verify_threshold_signed(msg, &both[..1]).is_err(), "fewer than t");
        assert!(joint.verify_signed_by(msg, &both, &["authority-1".into(), "authority-3".into()]).is_err());
        let swapped = vec![("authority-1".to_string(), sb), ("authority-2".to_string(), sa)];
        assert!(joint.verify_threshold_signed(msg, &swapped).is_err());
        let mut twice = both.clone();
        twice.push(both[0].clone());
        assert!(joint.verify_threshold_signed(msg, &twice).is_err());
        let mut stranger = both.clone();
        stranger.push(("authority-9".to_string(), sa));
        assert!(joint.verify_threshold_signed(msg, &stranger).is_err());
        assert_eq!(AuthoritySignature::from_bytes(&sa.to_bytes()).unwrap(), sa);
        assert!(AuthoritySignature::from_bytes(&[0xff; 64]).is_err());
    }

    fn committee() -> (Vec<KeyShare>, JointPublicKey) {
        crate::crypto::deal_for_tests(&["authority-1", "authority-2", "authority-3"], 3, 0, &mut OsRng).unwrap()
    }

    #[test]
    fn admission_signatures_check_in_one_batch_and_name_a_bad_one() {
        let (shares, joint) = committee();
        let msg = b"round admission";
        let sigs: Vec<(String, AdmissionSignature)> =
            shares.iter().map(|s| (s.authority().to_string(), s.sign_admission(msg, &mut OsRng))).collect();
        joint.verify_threshold_signed(msg, &sigs).unwrap();
        assert!(sigs[0].1.verify_point(&shares[0].public_point(), msg));
        assert!(!sigs[0].1.verify_point(&shares[1].public_point(), msg), "another key");
        assert!(joint.verify_threshold_signed(b"round admissioN", &sigs).is_err(), "another statement");
        // one bad signature among good ones fails the batch, and is named
        let mut bad = sigs.clone();
        bad[1].1.response += Scalar::ONE;
        let err = joint.verify_threshold_signed(msg, &bad).unwrap_err().to_string();
        assert!(err.contains("authority-2"), "{err}");
        // two wrong signatures whose errors cancel in an unweighted sum:
        // s_1 + d and s_2 - d still sum right, the weights catch it
        let d = Scalar::random(&mut OsRng);
        let mut cancel = sigs.clone();
        cancel[0].1.response += d;
        cancel[1].1.response -= d;
        assert!(joint.verify_threshold_signed(msg, &cancel).is_err());
        // commitments swapped between two members
        let mut swapped = sigs.clone();
        let r0 = swapped[0].1.commitment;
        swapped[0].1.commitment = swapped[1].1.commitment;
        swapped[1].1.commitment = r0;
        assert!(joint.verify_threshold_signed(msg, &swapped).is_err());
        // a (c, s) signature's bytes do not pass as an admission signature
        let cs = shares[0].sign_statement(msg, &mut OsRng);
        let as_admission = AdmissionSignature::from_bytes(&cs.to_bytes());
        assert!(as_admission.map_or(true, |a| !a.verify_point(&shares[0].public_point(), msg)));
        // an invalid commitment never verifies
        let mut bytes = sigs[0].1.to_bytes();
        bytes[31] = 0xff;
        assert!(
            AdmissionSignature::from_bytes(&bytes).map_or(true, |a| !a.verify_point(&shares[0].public_point(), msg))
        );
    }

    #[test]
    fn admission_signatures_travel_as_64_bytes() {
        let (shares, _) = committee();
        let sig = shares[0].sign_admission(b"query admission", &mut OsRng);
        assert_eq!(AdmissionSignature::from_bytes(&sig.to_bytes()).unwrap(), sig);
        let packed = rmp_serde::to_vec(&sig).unwrap();
        assert_eq!(packed.len(), 66, "a 64-byte bin");
        assert_eq!(rmp_serde::from_slice::<AdmissionSignature>(&packed).unwrap(), sig);
        let json = serde_json::to_string(&sig).unwrap();
        assert_eq!(serde_json::from_str::<AdmissionSignature>(&json).unwrap(), sig);
        assert!(AdmissionSignature::from_bytes(&[0u8; 63]).is_err());
        let mut high = sig.to_bytes();
        high[63] = 0xff; // response not canonical
        assert!(AdmissionSignature::from_bytes(&high).is_err());
        assert_eq!(format!("{sig:?}"), "AdmissionSignature(..)");
    }
}
