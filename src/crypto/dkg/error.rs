//! Errors of the dealerless key lifecycle (`crypto::dkg`). Messages name the
//! members involved and say what the caller can do; they never carry secret
//! values (shares, polynomial coefficients).

use std::fmt;

use thiserror::Error;

/// What went wrong with one resharing dealer, as seen by a new member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealerFault {
    pub dealer: u16,
    pub fault: DealerFaultKind,
}

/// The ways a resharing dealer can fail its public checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DealerFaultKind {
    /// Its commitment has the wrong number of coefficients.
    CommitmentDegree { found: usize, expected: u16 },
    /// Its commitment's constant term is not λ_i·Y_i: it would change the key.
    WrongConstantTerm,
    /// The sub-share it sent does not lie on its committed polynomial.
    InvalidSubShare,
    /// Its commitment or sub-share could not be decoded.
    Malformed(String),
}

impl fmt::Display for DealerFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dealer = self.dealer;
        match &self.fault {
            DealerFaultKind::CommitmentDegree { found, expected } => {
                write!(f, "dealer {dealer} committed to {found} coefficients, expected {expected}")
            }
            DealerFaultKind::WrongConstantTerm => {
                write!(
                    f,
                    "dealer {dealer}'s commitment constant term is not λ·Y_{dealer} (it would change the joint key)"
                )
            }
            DealerFaultKind::InvalidSubShare => {
                write!(f, "dealer {dealer}'s sub-share does not match its commitment")
            }
            DealerFaultKind::Malformed(reason) => write!(f, "dealer {dealer} sent a malformed value: {reason}"),
        }
    }
}

/// Errors of `crypto::dkg`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DkgError {
    #[error("member index 0 is not allowed; indices start at 1")]
    ZeroIndex,
    #[error("member index {index} appears twice in {what}")]
    DuplicateIndex { index: u16, what: &'static str },
    #[error("member {index} is not in {what} {set:?}")]
    NotInSet { index: u16, what: &'static str, set: Vec<u16> },
    #[error("threshold {threshold} is outside 2..={members} (the number of members); FROST needs at least 2 and a 1-of-n key would give every member the whole secret")]
    ThresholdOutOfRange { threshold: u16, members: usize },
    #[error("committee threshold {threshold} is outside 1..={members}")]
    CommitteeThreshold { threshold: u16, members: usize },
    #[error("{what} needs at least {needed} members, got {found}")]
    TooFewMembers { what: &'static str, needed: usize, found: usize },
    #[error("{what} from member {sender}, who is not in this run's member list")]
    UnknownSender { sender: u16, what: &'static str },
    #[error("{what} from member {sender} is addressed to member {recipient}, but this is member {me}")]
    Misaddressed { sender: u16, recipient: u16, me: u16, what: &'static str },
    #[error("member {sender} sent two different {what}; keeping the first (a member that equivocates should be removed by the operator)")]
    ConflictingMessage { sender: u16, what: &'static str },
    #[error("cannot {action} while {phase}")]
    WrongPhase { action: &'static str, phase: &'static str },
    #[error("still waiting for {what} from members {waiting_for:?}; deliver them or call `timeout()` once the deadline has passed")]
    NotReady { what: &'static str, waiting_for: Vec<u16> },
    #[error("member {accuser} complained about this member before it dealt its round-2 shares; call `round2` first")]
    ComplaintBeforeDealing { accuser: u16 },
    #[error("round-1 packages differ between members (equivocation): dealers {dealers:?}, reported by {reported_by:?}; rerun the DKG without the dealers named, after checking their logs")]
    Equivocation { dealers: Vec<u16>, reported_by: Vec<u16> },
    #[error("only {remaining} members remain after excluding {excluded:?}, fewer than the threshold {threshold} (or than 2); a new DKG needs more members or a lower threshold")]
    TooFewQualified { remaining: usize, threshold: u16, excluded: Vec<u16> },
    #[error("invalid {what} encoding: {reason}")]
    Encoding { what: &'static str, reason: String },
    #[error("FROST refused {during}: {reason}")]
    Frost { during: &'static str, reason: String },
    #[error("the secret share of member {index} does not match its verification key Y_{index} in the committee key; the key file is corrupt or belongs to another committee")]
    ShareMismatch { index: u16 },
    #[error("committee key is inconsistent: {reason}")]
    InconsistentCommittee { reason: String },
    #[error("resharing dealers failed their checks: {}; rerun the resharing with a dealing set without them", list_faults(.faults))]
    BadDealers { faults: Vec<DealerFault> },
}

fn list_faults(faults: &[DealerFault]) -> String {
    faults.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl DkgError {
    /// Wraps an error returned by the `frost-ristretto255` crate.
    pub(crate) fn frost(during: &'static str, err: frost_ristretto255::Error) -> Self {
        DkgError::Frost { during, reason: err.to_string() }
    }
}

/// `Ok` for a repeated identical message, an error for a different one.
pub(crate) fn same_or_conflict(same: bool, sender: u16, what: &'static str) -> Result<(), DkgError> {
    if same {
        Ok(())
    } else {
        Err(DkgError::ConflictingMessage { sender, what })
    }
}
