//! Authority key shares and the joint public key.
//!
//! An authority holds a secret scalar x_i (wiped on drop, never printed) and
//! publishes Y_i = x_i·G with a Schnorr proof of knowledge bound to its id.
//! `JointPublicKey::assemble` checks every proof before summing Y = ΣY_i, so
//! a share whose owner cannot prove knowledge of its secret (a rogue key
//! chosen to cancel the others) is refused. Byte encodings are versioned;
//! writing them to files with 0600 permissions is `data::keystore`'s job.

use std::fmt;

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::elgamal::{decode_point, Ciphertext};
use super::error::CryptoError;
use super::partial::PartialDecryption;
use super::partial::ShareProof;
use super::proofs::{DleqProof, NoisyShareProof, SchnorrProof, ShareStatement};

const KEY_MAGIC: &[u8; 8] = b"CRUXKEY1";

/// An authority's secret key share.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct KeyShare {
    #[zeroize(skip)]
    authority: String,
    secret: Scalar,
    #[zeroize(skip)]
    public: RistrettoPoint,
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare").field("authority", &self.authority).field("secret", &"<redacted>").finish()
    }
}

impl KeyShare {
    pub fn generate(authority: &str, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let secret = Scalar::random(rng);
        let public = RISTRETTO_BASEPOINT_TABLE * &secret;
        KeyShare { authority: authority.to_string(), secret, public }
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    pub fn public_point(&self) -> RistrettoPoint {
        self.public
    }

    /// The secret scalar, for signing inside `crypto` only.
    pub(super) fn secret_scalar(&self) -> &Scalar {
        &self.secret
    }

    /// The public share with a fresh proof of knowledge.
    pub fn public_share(&self, rng: &mut (impl RngCore + CryptoRng)) -> PublicShare {
        PublicShare {
            authority: self.authority.clone(),
            point: self.public,
            proof: SchnorrProof::prove(&self.authority, &self.secret, &self.public, rng),
        }
    }

    /// D_i = x_i·a with a DLEQ proof bound to `context`.
    pub fn partial_decrypt(
        &self,
        ciphertext: &Ciphertext,
        context: &[u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> PartialDecryption {
        let share = ciphertext.a * self.secret;
        let statement = ShareStatement { context, public: &self.public, base: &ciphertext.a, share: &share };
        let proof = DleqProof::prove(&statement, &self.secret, rng);
        PartialDecryption { authority: self.authority.clone(), share, proof: ShareProof::Exact(proof) }
    }

    /// D_i = x_i·a - noise·G with a proof that it is well formed; the
    /// combined plaintext becomes m + Σ noise_i. The noise stays secret.
    pub fn partial_decrypt_noisy(
        &self,
        ciphertext: &Ciphertext,
        noise: i128,
        context: &[u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> PartialDecryption {
        // b - Σ D_i = m·G + Σ noise_i·G when D_i = x_i·a + (-noise_i)·G
        let mut e = -super::scalar_from_i128(noise);
        let share = ciphertext.a * self.secret + RISTRETTO_BASEPOINT_TABLE * &e;
        let statement = ShareStatement { context, public: &self.public, base: &ciphertext.a, share: &share };
        let proof = NoisyShareProof::prove(&statement, &self.secret, &e, rng);
        e.zeroize();
        PartialDecryption { authority: self.authority.clone(), share, proof: ShareProof::Noisy(proof) }
    }

    /// Versioned encoding: magic, id length (u16 BE), id, secret, public.
    pub fn to_bytes(&self) -> Vec<u8> {
        let id = self.authority.as_bytes();
        let mut out = Vec::with_capacity(8 + 2 + id.len() + 64);
        out.extend_from_slice(KEY_MAGIC);
        // ids are validated to be short when configs are read; clamp anyway
        let len = u16::try_from(id.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(id.get(..usize::from(len)).unwrap_or(id));
        out.extend_from_slice(self.secret.as_bytes());
        out.extend_from_slice(self.public.compress().as_bytes());
        out
    }

    /// Decodes `to_bytes`, checking the magic, lengths, a canonical secret and
    /// that the stored public share matches the secret.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let corrupt = |reason: &str| CryptoError::CorruptKey { reason: reason.to_string() };
        let rest = bytes.strip_prefix(KEY_MAGIC.as_slice()).ok_or_else(|| corrupt("missing CRUXKEY1 header"))?;
        let (len, rest) = rest.split_first_chunk::<2>().ok_or_else(|| corrupt("truncated before the id"))?;
        let len = usize::from(u16::from_be_bytes(*len));
        if rest.len() != len + 64 {
            return Err(corrupt(&format!("expected {} bytes after the header, found {}", len + 64, rest.len())));
        }
        let (id, rest) = rest.split_at(len);
        let authority = std::str::from_utf8(id).map_err(|_| corrupt("authority id is not UTF-8"))?.to_string();
        let (secret_bytes, public_bytes) = rest.split_at(32);
        let mut secret_arr = [0u8; 32];
        secret_arr.copy_from_slice(secret_bytes);
        let secret = Option::<Scalar>::from(Scalar::from_canonical_bytes(secret_arr))
            .ok_or_else(|| corrupt("secret is not a canonical scalar"))?;
        secret_arr.zeroize();
        let public = decode_point(public_bytes, "public key share").map_err(|e| corrupt(&e.to_string()))?;
        if RISTRETTO_BASEPOINT_TABLE * &secret != public {
            return Err(corrupt("public share does not match the secret"));
        }
        Ok(KeyShare { authority, secret, public })
    }
}

/// An authority's public share with its proof of possession.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicShare {
    pub authority: String,
    pub point: RistrettoPoint,
    pub proof: SchnorrProof,
}

impl PublicShare {
    pub fn verify(&self) -> Result<(), CryptoError> {
        if self.point == RistrettoPoint::identity() || !self.proof.verify(&self.authority, &self.point) {
            return Err(CryptoError::InvalidKeyProof { authority: self.authority.clone() });
        }
        Ok(())
    }
}

/// Y = ΣY_i over proven shares (n-of-n).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JointPublicKey {
    shares: Vec<PublicShare>,
    point: RistrettoPoint,
}

impl JointPublicKey {
    pub fn assemble(shares: &[PublicShare]) -> Result<Self, CryptoError> {
        if shares.is_empty() {
            return Err(CryptoError::NoShares);
        }
        let mut seen = std::collections::BTreeSet::new();
        for share in shares {
            if !seen.insert(share.authority.as_str()) {
                return Err(CryptoError::DuplicateAuthority { authority: share.authority.clone() });
            }
            share.verify()?;
        }
        let point = shares.iter().map(|s| s.point).sum();
        Ok(JointPublicKey { shares: shares.to_vec(), point })
    }

    pub fn point(&self) -> RistrettoPoint {
        self.point
    }

    pub fn shares(&self) -> &[PublicShare] {
        &self.shares
    }

    /// The public share of one authority.
    pub fn share_of(&self, authority: &str) -> Option<&PublicShare> {
        self.shares.iter().find(|s| s.authority == authority)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn rogue_key_is_refused() {
        let a = KeyShare::generate("a1", &mut OsRng);
        let b = KeyShare::generate("a2", &mut OsRng);
        let honest = a.public_share(&mut OsRng);
        // rogue: Y_r = R - Y_a so that Y = R, with a copied proof
        let r = RISTRETTO_BASEPOINT_TABLE * &Scalar::random(&mut OsRng);
        let rogue =
            PublicShare { authority: "a2".into(), point: r - honest.point, proof: b.public_share(&mut OsRng).proof };
        let err = JointPublicKey::assemble(&[honest.clone(), rogue]).unwrap_err();
        assert_eq!(err, CryptoError::InvalidKeyProof { authority: "a2".into() });
        assert!(err.to_string().contains("a2"));
        let dup = JointPublicKey::assemble(&[honest.clone(), honest.clone()]).unwrap_err();
        assert!(matches!(dup, CryptoError::DuplicateAuthority { .. }));
        let ok = JointPublicKey::assemble(&[honest, b.public_share(&mut OsRng)]).unwrap();
        assert_eq!(ok.point(), a.public_point() + b.public_point());
    }

    #[test]
    fn key_bytes_round_trip_and_corruption_is_caught() {
        let k = KeyShare::generate("authority-7", &mut OsRng);
        let bytes = k.to_bytes();
        let back = KeyShare::from_bytes(&bytes).unwrap();
        assert_eq!(back.public_point(), k.public_point());
        assert_eq!(back.authority(), "authority-7");
        for cut in [0, 5, 9, 20, bytes.len() - 1] {
            assert!(matches!(KeyShare::from_bytes(&bytes[..cut]), Err(CryptoError::CorruptKey { .. })), "cut {cut}");
        }
        let mut flipped = bytes.clone();
        let n = flipped.len();
        flipped[n - 40] ^= 1;
        assert!(matches!(KeyShare::from_bytes(&flipped), Err(CryptoError::CorruptKey { .. })));
        let debug = format!("{k:?}");
        assert!(!debug.contains(&hex::encode(&bytes[bytes.len() - 64..bytes.len() - 32])));
        assert!(debug.contains("redacted"));
    }
}
