//! Protocol errors: bytes that do not decode, requests that break the
//! protocol (`InvalidRequest`, a reason enum), refusals by policy, failed
//! verifications, a node's own internal failures, and wrapped
//! statistics/crypto errors; and `PeerFailure`, why one peer's reply is
//! missing or unusable. Produced by the state machines in `protocol` and by
//! `actors`; shown to users and operators. Messages name the peer involved
//! and never carry plaintext values or key material.

use thiserror::Error;

use crate::crypto::CryptoError;
use crate::stats::StatsError;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// bytes that are not a message of this protocol (wire decoding)
    #[error("malformed message: {0}")]
    Decode(String),
    /// a well-formed request that breaks the protocol
    #[error("invalid request: {0}")]
    Invalid(#[from] InvalidRequest),
    /// this node's own failure (a worker thread died, encoding failed)
    #[error("internal error: {0}; this is a bug or a resource problem on this node, please report it")]
    Internal(String),
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
    #[error("only {got} of the committee's authorities admitted the query, {needed} are needed (the threshold): {missing}; start the missing authorities or wait for them to come back")]
    NotEnoughAuthorities { got: usize, needed: usize, missing: String },
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
    /// the committed-share path's check failed (`protocol::shares::combine_sums`)
    #[error("the decryptors' sums of round {round} do not open the relays' commitments: a relay shared other values than it committed to, or a decryptor ({decryptors}) released a wrong sum; no answer is given, start the query again and, if it repeats, read the relays' and authorities' logs")]
    SharesDoNotOpen { round: u32, decryptors: String },
    /// the committed-share path's sums open the commitments but are no
    /// count or sum (`protocol::shares::combine_sums`)
    #[error("the aggregate of round {round} is not made of integers below 2^127: a relay committed to and shared a value no count or sum can be; no answer is given, start the query again and, if it repeats, read the relays' logs")]
    SharesOutOfRange { round: u32 },
    #[error(transparent)]
    Stats(#[from] StatsError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// Why an authority takes a well-formed request for a protocol violation.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum InvalidRequest {
    #[error("query {query} names dataset {asked:?}, but {authority} guards dataset {guarded:?}; every node must have the same `cluster.dataset`")]
    WrongDataset { query: String, asked: String, authority: String, guarded: String },
    #[error("a query names 1 to 3 labels of at most 256 bytes, got {got} labels")]
    Labels { got: usize },
    #[error("the round's spec differs from the admitted query")]
    SpecDiffers,
    #[error("the query is for committee epoch {asked}, but this authority's committee is at epoch {current}; start a new query")]
    WrongEpoch { asked: u64, current: u64 },
    #[error("the query's decryptors are not valid: {reason}")]
    Decryptors { reason: String },
    #[error("the registered spec differs from the admitted one")]
    RegisteredSpecDiffers,
    #[error("a later round changed the query's scale")]
    ScaleChanged,
    #[error("round {round} admitted before round 0")]
    RoundBeforeFirst { round: u32 },
    #[error("round {round} admitted out of order ({admitted} admitted, {registered} registered)")]
    RoundOutOfOrder { round: u32, admitted: usize, registered: usize },
    #[error("no round of this query was admitted")]
    NoRoundAdmitted,
    #[error("round {round} registered, expected round {expected}")]
    RegisteredOutOfOrder { round: u32, expected: usize },
    #[error("round {round} is not registered")]
    RoundNotRegistered { round: u32 },
}

/// Why one peer's reply is missing or unusable; the peer is named beside it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PeerFailure {
    /// not reached, timed out, or the connection was lost
    #[error("{0}")]
    Unreachable(String),
    /// the reply did not decode
    #[error("sent an invalid reply: {0}")]
    InvalidReply(String),
    /// the peer answered with a refusal or an error message
    #[error("{0}")]
    Refused(String),
    /// a well-formed answer of the wrong kind
    #[error("unexpected answer {found}, expected {expected}")]
    Unexpected { found: &'static str, expected: &'static str },
    /// the answer failed this node's checks (signature, proof, shape)
    #[error("{0}")]
    Rejected(String),
}

/// One peer's reply to a request.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerReply<T> {
    pub peer: String,
    pub reply: Result<T, PeerFailure>,
}

impl<T> PeerReply<T> {
    pub fn new(peer: impl Into<String>, reply: Result<T, PeerFailure>) -> Self {
        PeerReply { peer: peer.into(), reply }
    }
}
