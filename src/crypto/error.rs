//! Errors of the cryptographic core. Messages name the failing object and,
//! where an operator can act, what to do. They never carry secret values.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CryptoError {
    #[error("invalid {what} encoding: {reason}")]
    InvalidEncoding { what: &'static str, reason: String },
    #[error("the committee key is inconsistent: {reason}; copy the committee file again from an authority's folder")]
    InvalidCommittee { reason: String },
    #[error("no partial decryption from authority {authority}, one of the query's decryptors")]
    MissingDecryption { authority: String },
    #[error("authority {authority} appears twice in the joint key")]
    DuplicateAuthority { authority: String },
    #[error("the joint key needs at least one authority")]
    NoShares,
    #[error("partial decryption from authority {authority} has an invalid proof")]
    InvalidDecryptionProof { authority: String },
    #[error("signature check failed for {signer}: {reason}")]
    InvalidSignature { signer: String, reason: String },
    #[error(
        "key file is corrupt or truncated: {reason}; restore it from backup or create new keys with `crux-node init`"
    )]
    CorruptKey { reason: String },
    #[error("value is outside the discrete-log range -{max_abs}..{max_abs}; build a larger table (`crux-node tables build --bits K`) or raise `processor.dlog_range_bits`")]
    DlogOutOfRange { max_abs: u64 },
    #[error("an exact release that cannot be negative is not in 0..{max}: a relay contributed a negative count or square, or it is beyond the discrete-log range (build a larger table with `crux-node tables build --bits K` or raise `processor.dlog_range_bits`)")]
    DlogNotInNonnegativeRange { max: u64 },
    #[error("discrete-log table error: {0}")]
    Table(String),
    #[error("arithmetic overflow in {0}")]
    Overflow(&'static str),
}
