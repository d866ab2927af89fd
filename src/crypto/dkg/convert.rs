//! Conversions between `frost-ristretto255` types and plain curve25519-dalek
//! values, always through frost's canonical `serialize()` bytes (32-byte
//! scalar, compressed point). Input comes from frost objects built by this
//! module or decoded from the network; every failure becomes a `DkgError`.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use frost_ristretto255::keys::{SigningShare, VerifiableSecretSharingCommitment, VerifyingShare};
use frost_ristretto255::{Identifier, VerifyingKey};
use zeroize::Zeroizing;

use super::error::DkgError;

/// The frost identifier of member `index` (the scalar `index`).
pub(crate) fn identifier(index: u16) -> Result<Identifier, DkgError> {
    Identifier::try_from(index).map_err(|_| DkgError::ZeroIndex)
}

/// A canonical 32-byte scalar encoding as a dalek scalar.
pub(crate) fn scalar_from_bytes(bytes: &[u8], what: &'static str) -> Result<Scalar, DkgError> {
    let array: Zeroizing<[u8; 32]> = Zeroizing::new(
        bytes
            .try_into()
            .map_err(|_| DkgError::Encoding { what, reason: format!("{} bytes, expected 32", bytes.len()) })?,
    );
    Option::from(Scalar::from_canonical_bytes(*array))
        .ok_or(DkgError::Encoding { what, reason: "not a canonical scalar".to_string() })
}

/// A compressed ristretto point encoding as a dalek point.
pub(crate) fn point_from_bytes(bytes: &[u8], what: &'static str) -> Result<RistrettoPoint, DkgError> {
    CompressedRistretto::from_slice(bytes)
        .map_err(|_| DkgError::Encoding { what, reason: format!("{} bytes, expected 32", bytes.len()) })?
        .decompress()
        .ok_or(DkgError::Encoding { what, reason: "not a valid ristretto point".to_string() })
}

/// The secret scalar inside a frost signing share.
pub(crate) fn share_scalar(share: &SigningShare) -> Result<Scalar, DkgError> {
    let bytes = Zeroizing::new(share.serialize());
    scalar_from_bytes(&bytes, "signing share")
}

/// A frost signing share holding `scalar` (tests build tampered shares with it).
#[cfg(test)]
pub(crate) fn signing_share(scalar: &Scalar) -> Result<SigningShare, DkgError> {
    let bytes = Zeroizing::new(scalar.to_bytes());
    SigningShare::deserialize(bytes.as_slice()).map_err(|e| DkgError::frost("a signing share", e))
}

/// The point of a frost verifying share (Y_i = x_i·G).
pub(crate) fn verifying_share_point(share: &VerifyingShare) -> Result<RistrettoPoint, DkgError> {
    let bytes = share.serialize().map_err(|e| DkgError::frost("to encode a verifying share", e))?;
    point_from_bytes(&bytes, "verifying share")
}

/// The point of a frost verifying key (the group key, or a commitment's constant term).
pub(crate) fn verifying_key_point(key: &VerifyingKey) -> Result<RistrettoPoint, DkgError> {
    let bytes = key.serialize().map_err(|e| DkgError::frost("to encode a verifying key", e))?;
    point_from_bytes(&bytes, "verifying key")
}

/// The coefficient commitments C_0..C_{t-1} of a Feldman commitment.
pub(crate) fn commitment_points(
    commitment: &VerifiableSecretSharingCommitment,
) -> Result<Vec<RistrettoPoint>, DkgError> {
    let encoded = commitment.serialize().map_err(|e| DkgError::frost("to encode a commitment", e))?;
    encoded.iter().map(|bytes| point_from_bytes(bytes, "coefficient commitment")).collect()
}

/// A frost Feldman commitment from coefficient commitments C_0..C_{t-1}.
pub(crate) fn commitment_from_points(points: &[RistrettoPoint]) -> Result<VerifiableSecretSharingCommitment, DkgError> {
    let encoded: Vec<[u8; 32]> = points.iter().map(|p| p.compress().to_bytes()).collect();
    VerifiableSecretSharingCommitment::deserialize(encoded).map_err(|e| DkgError::frost("a summed commitment", e))
}
