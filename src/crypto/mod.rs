//! Cryptographic core: exponential ElGamal on ristretto255 under a t-of-n
//! Shamir-shared key (`keys`; made without a dealer by `dkg`), Schnorr proofs, Chaum-Pedersen (DLEQ) proofs
//! for partial decryptions, ed25519 signatures for relay contributions, and
//! baby-step giant-step discrete logs over a `DlogTable`.
//!
//! Pure code: no files, sockets or clocks. Randomness comes in as an argument.
//! Key files are written by `data::keystore`, LMDB tables live in
//! `data::lmdb_table`; this module only defines the `DlogTable` trait.

pub mod authority_signature;
pub mod batch_decryption;
pub mod ciphertext_proof;
pub mod dkg;
pub mod dlog;
pub mod elgamal;
pub mod error;
pub mod keys;
pub mod proofs;
pub mod shares;
pub mod signing;

pub use authority_signature::{
    verify_admissions, verify_statements, AdmissionSignature, AuthoritySignature, MemberSignature,
};
pub use batch_decryption::{
    base_encodings, combine_batches, BatchDecryption, DecryptingSet, DecryptionShare, ShareProof,
};
pub use ciphertext_proof::{verify_batch, ProofItem, RandomnessProof};
pub use dlog::{DlogRange, DlogSolver, DlogTable, MemoryTable, TableKey};
pub use elgamal::{decode_first_points_only, Ciphertext, EncryptionKey};
pub use error::CryptoError;
pub use keys::{deal_for_tests, lagrange_at_zero, EncodedPoint, JointPublicKey, KeyShare, Member};
pub use proofs::{DleqProof, NoisyShareProof, SchnorrProof, ShareStatement};
pub use signing::{verify_batch_signatures, RelayIdentity, RelayPublicKey, RelaySignature, SignedItem};

use curve25519_dalek::scalar::Scalar;
use subtle::ConditionallySelectable;

/// The scalar for a signed 64-bit integer (negative values map to the group
/// order minus their magnitude).
pub fn scalar_from_i64(value: i64) -> Scalar {
    scalar_from_i128(i128::from(value))
}

/// The scalar for a signed 128-bit integer. Selects the sign instead of
/// branching on it: the values are noise draws too (`batch_decryption`,
/// `shares::noisy_release`), whose sign must not show in the timing.
pub fn scalar_from_i128(value: i128) -> Scalar {
    let magnitude = Scalar::from(value.unsigned_abs());
    Scalar::conditional_select(&magnitude, &-magnitude, subtle::Choice::from(u8::from(value < 0)))
}

#[cfg(test)]
mod tests;
