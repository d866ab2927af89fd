//! The messages of one DKG run and its result. Built by `dkg::participant`,
//! sent by the caller (msgpack over QUIC) and fed back into the receiving
//! member's `Dkg`. Every type is serde-serializable; the frost packages
//! inside validate their points and scalars when decoded. Debug output
//! never shows a share.

use std::fmt;

use frost_ristretto255::keys::dkg::{round1, round2};
use serde::{Deserialize, Serialize};

use super::committee::{CommitteeKey, DkgShare};

/// Round 1, broadcast: the sender's Feldman commitment and its proof of
/// knowledge of the constant term (frost `round1::Package`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round1Broadcast {
    pub sender: u16,
    pub package: round1::Package,
}

/// Round 2, private to `recipient` (send it over an encrypted, authenticated
/// channel): the sender's share f_sender(recipient), and a SHA-256 digest of
/// every round-1 package the sender received (its own included), so members
/// can tell whether a dealer showed different commitments to different
/// members. `share` is `None` when the sender already disqualified someone in
/// round 1: no shares can be dealt and the run ends in a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round2Private {
    pub sender: u16,
    pub recipient: u16,
    pub round1_digests: Vec<(u16, [u8; 32])>,
    pub share: Option<round2::Package>,
}

/// Broadcast by every member once its round-2 shares are in, even when both
/// lists are empty, so that everyone knows when the complaint phase ends.
/// `accused`: dealers whose share to `accuser` did not verify against their
/// round-1 commitment, or never came. `equivocating`: dealers whose round-1
/// digest, as reported by some member, differs from what `accuser` received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Complaints {
    pub accuser: u16,
    pub accused: Vec<u16>,
    pub equivocating: Vec<u16>,
}

/// Broadcast by an accused dealer: the share it sent to `accuser`, in the
/// clear, for everyone to check against the dealer's round-1 commitment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Justification {
    pub dealer: u16,
    pub accuser: u16,
    pub share: round2::Package,
}

/// How a run ended for this member.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "made once per run and moved out at once; boxing would only burden the caller"
)]
pub enum Outcome {
    /// Every member qualified: this member's share and the committee key.
    Done(DkgShare, CommitteeKey),
    /// Members were disqualified; restart a fresh DKG among the others.
    Restart { excluded: Vec<u16> },
}

/// Why a member was disqualified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// No round-1 package before the deadline.
    Round1Missing,
    /// Its round-1 package failed frost's checks (proof of knowledge, degree).
    Round1Invalid { reason: String },
    /// No complaint list before the deadline.
    ComplaintsMissing,
    /// Accused by `accuser`, it did not publish the share before the deadline.
    JustificationMissing { accuser: u16 },
    /// Accused by `accuser`, it published a share that does not match its commitment.
    JustificationInvalid { accuser: u16 },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Round1Missing => write!(f, "sent no round-1 package"),
            Fault::Round1Invalid { reason } => write!(f, "sent an invalid round-1 package: {reason}"),
            Fault::ComplaintsMissing => write!(f, "sent no complaint list"),
            Fault::JustificationMissing { accuser } => write!(f, "did not answer the complaint of member {accuser}"),
            Fault::JustificationInvalid { accuser } => {
                write!(f, "answered the complaint of member {accuser} with a share that does not match its commitment")
            }
        }
    }
}

/// What a member waits for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitingFor {
    Round1,
    Round2,
    Complaints,
    Justifications,
    Nothing,
}

/// The members whose message of kind `what` has not arrived yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub what: WaitingFor,
    pub members: Vec<u16>,
}
