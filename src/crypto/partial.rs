//! Partial decryptions D_i = x_i·a with their DLEQ proofs, and combining
//! the shares of a query's t decryptors: m·G = b − Σ λ_i·D_i. The processor verifies every share against the
//! authority's public share before combining; the result still needs a
//! discrete log (`dlog`) to become m.

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use serde::{Deserialize, Serialize};

use super::elgamal::Ciphertext;
use super::error::CryptoError;
use super::keys::JointPublicKey;
use super::proofs::{DleqProof, NoisyShareProof, ShareStatement};

/// How a share was made: exactly (D = x·a, DLEQ proof) or with the
/// authority's differential-privacy noise folded in (D = x·a + e·G).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShareProof {
    Exact(DleqProof),
    Noisy(NoisyShareProof),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialDecryption {
    pub authority: String,
    pub share: RistrettoPoint,
    pub proof: ShareProof,
}

impl PartialDecryption {
    /// Checks the proof against the authority's public share and the ciphertext.
    pub fn verify(&self, key: &JointPublicKey, ciphertext: &Ciphertext, context: &[u8]) -> Result<(), CryptoError> {
        let bad = || CryptoError::InvalidDecryptionProof { authority: self.authority.clone() };
        let public = key.share_of(&self.authority).ok_or_else(bad)?;
        let statement = ShareStatement { context, public: &public.point, base: &ciphertext.a, share: &self.share };
        let ok = match &self.proof {
            ShareProof::Exact(p) => p.verify(&statement),
            ShareProof::Noisy(p) => p.verify(&statement),
        };
        if ok {
            Ok(())
        } else {
            Err(bad())
        }
    }
}

/// Verifies one partial decryption from each of the query's `decryptors`
/// (exactly t members of the committee) and returns m·G = b − Σ λ_i·D_i
/// ((m + Σ noise_i)·G with noisy shares). A missing decryptor, a duplicate
/// or a stranger is an error; with `require_exact`, a noisy share is refused.
pub fn combine(
    key: &JointPublicKey,
    ciphertext: &Ciphertext,
    context: &[u8],
    partials: &[PartialDecryption],
    decryptors: &[String],
) -> Result<RistrettoPoint, CryptoError> {
    combine_checked(key, ciphertext, context, partials, decryptors, false)
}

pub fn combine_checked(
    key: &JointPublicKey,
    ciphertext: &Ciphertext,
    context: &[u8],
    partials: &[PartialDecryption],
    decryptors: &[String],
    require_exact: bool,
) -> Result<RistrettoPoint, CryptoError> {
    if require_exact {
        if let Some(noisy) = partials.iter().find(|p| matches!(p.proof, ShareProof::Noisy(_))) {
            return Err(CryptoError::InvalidDecryptionProof { authority: noisy.authority.clone() });
        }
    }
    if let Some(stranger) = partials.iter().find(|p| !decryptors.contains(&p.authority)) {
        return Err(CryptoError::InvalidDecryptionProof { authority: stranger.authority.clone() });
    }
    let lambdas = key.lagrange(decryptors)?;
    let mut shares = Vec::with_capacity(decryptors.len());
    for name in decryptors {
        let mut found = partials.iter().filter(|p| &p.authority == name);
        let partial = found.next().ok_or_else(|| CryptoError::MissingDecryption { authority: name.clone() })?;
        if found.next().is_some() {
            return Err(CryptoError::DuplicateAuthority { authority: name.clone() });
        }
        partial.verify(key, ciphertext, context)?;
        shares.push(partial.share);
    }
    Ok(ciphertext.b - RistrettoPoint::vartime_multiscalar_mul(lambdas, shares))
}
