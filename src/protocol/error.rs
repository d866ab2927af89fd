//! Protocol errors: malformed or unexpected messages, refused requests,
//! failed verifications, and wrapped statistics/crypto errors. Messages name
//! the peer involved and never carry plaintext values or key material.

use thiserror::Error;

use crate::crypto::CryptoError;
use crate::stats::StatsError;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("protocol version {found} is not supported (this node speaks {expected}); upgrade the older node")]
    Version { found: u16, expected: u16 },
    #[error("{peer} sent {found}, expected {expected}")]
    UnexpectedMessage { peer: String, found: String, expected: &'static str },
    #[error("authority {authority} refused: {reason}")]
    Refused { authority: String, reason: String },
    #[error("relay {relay} failed: {reason}")]
    RelayFailed { relay: String, reason: String },
    #[error("only {got} relays contributed ({names}); at least {needed} are required{missing}")]
    NotEnoughRelays { got: usize, needed: usize, names: String, missing: String },
    #[error("unknown relay {0}: it is not in this node's configuration")]
    UnknownRelay(String),
    #[error("relay {relay}: {reason}")]
    BadContribution { relay: String, reason: String },
    #[error("query {0} is unknown or expired on this authority; start a new query")]
    UnknownQuery(String),
    #[error("query {0} was already run (replayed query id); start a new query")]
    Replay(String),
    #[error("query {id} is too old or from the future (issued {issued_at}, now {now}, window {window_secs} s); check the clocks and retry")]
    Stale { id: String, issued_at: u64, now: u64, window_secs: u64 },
    #[error("exact (noise-free) queries are disabled on authority {0}; drop --exact and pass --epsilon, or enable `authority.allow_exact` on every authority")]
    ExactNotAllowed(String),
    #[error("ledger error: {0}")]
    Ledger(String),
    #[error(transparent)]
    Stats(#[from] StatsError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}
