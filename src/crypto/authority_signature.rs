//! Authority signatures over admission statements: Schnorr signatures on
//! ristretto255 under an authority's key share x_i, checked against its
//! verification key Y_i = x_i·G (already pinned in every node's committee
//! file, so no extra key material is needed). A query's admission needs t
//! members; a round's admission needs every one of the query's decryptors.
//!
//! Input: the statement bytes from `protocol::codec` (explicit, versioned,
//! domain-separated); output: a (challenge, response) pair. The transcript
//! is merlin with its own domain label, so a signature never doubles as a
//! decryption proof or a key-possession proof made with the same share.
//! Signing is constant time in the secret; verification is variable time
//! (public values only).

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use merlin::Transcript;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::error::CryptoError;
use super::keys::{JointPublicKey, KeyShare};

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

fn challenge(public: &RistrettoPoint, commitment: &RistrettoPoint, message: &[u8]) -> Scalar {
    let mut t = Transcript::new(DOMAIN);
    t.append_message(b"public-share", public.compress().as_bytes());
    t.append_message(b"message", message);
    t.append_message(b"commitment", commitment.compress().as_bytes());
    let mut buf = [0u8; 64];
    t.challenge_bytes(b"challenge", &mut buf);
    Scalar::from_bytes_mod_order_wide(&buf)
}

impl AuthoritySignature {
    /// Verifies against a public share point.
    pub fn verify_point(&self, public: &RistrettoPoint, message: &[u8]) -> bool {
        let commitment = RistrettoPoint::vartime_double_scalar_mul_basepoint(&-self.challenge, public, &self.response);
        challenge(public, &commitment, message) == self.challenge
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

impl KeyShare {
    /// Signs `message` (an admission statement) with this share.
    pub fn sign_statement(&self, message: &[u8], rng: &mut (impl RngCore + CryptoRng)) -> AuthoritySignature {
        let mut nonce = Scalar::random(rng);
        let commitment = RISTRETTO_BASEPOINT_TABLE * &nonce;
        let c = challenge(&self.public_point(), &commitment, message);
        let response = nonce + c * self.secret_scalar();
        nonce.zeroize();
        AuthoritySignature { challenge: c, response }
    }
}

impl JointPublicKey {
    /// Checks that at least t distinct members of the committee signed
    /// `message` (a query's admission), each once, and that no one else did.
    pub fn verify_threshold_signed(
        &self,
        message: &[u8],
        signatures: &[(String, AuthoritySignature)],
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
    pub fn verify_signed_by(
        &self,
        message: &[u8],
        signatures: &[(String, AuthoritySignature)],
        signers: &[String],
    ) -> Result<(), CryptoError> {
        let fail = |signer: &str, reason: &str| CryptoError::InvalidSignature {
            signer: signer.to_string(),
            reason: reason.to_string(),
        };
        if let Some((stranger, _)) = signatures.iter().find(|(name, _)| !signers.contains(name)) {
            return Err(fail(stranger, "not a signer this admission needs"));
        }
        for name in signers {
            let member = self.share_of(name).ok_or_else(|| fail(name, "not an authority of this cluster's key"))?;
            let mut found = signatures.iter().filter(|(signer, _)| signer == name);
            let (_, sig) = found.next().ok_or_else(|| fail(name, "admission not signed"))?;
            if found.next().is_some() {
                return Err(fail(name, "signed twice"));
            }
            if !sig.verify_point(&member.point, message) {
                return Err(fail(name, "admission signature does not match the statement"));
            }
        }
        Ok(())
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
}
