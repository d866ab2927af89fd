//! Dealerless key lifecycle for the authorities: a Pedersen distributed key
//! generation with complaints, and proactive resharing (new members, fewer
//! members, another threshold, same joint key). Built on the Zcash
//! Foundation's `frost-ristretto255` (DKG parts 1–3, Feldman commitments,
//! `keys::split`, `SecretShare::verify`); results are plain curve25519-dalek
//! values (`DkgShare`, `CommitteeKey`) for the caller to map into its own key
//! types. Pure: no I/O, sockets or clocks; randomness comes in as an
//! argument; deadlines come in as `timeout()` calls. Input: messages decoded
//! by the caller (msgpack over QUIC); output: messages to send and the keys.
//!
//! # Running a DKG (one `Dkg` per authority)
//!
//! 1. `Dkg::start(me, &members, threshold, rng)` → broadcast the
//!    `Round1Broadcast` (commitment + proof of knowledge) to every member.
//! 2. Feed each received one to `receive_round1`. When `waiting()` is empty
//!    (or after the deadline, `timeout()`, which disqualifies the silent),
//!    call `round2()` and send each `Round2Private` to its recipient only.
//! 3. Feed received ones to `receive_round2` (early arrivals are kept). When
//!    `waiting()` is empty (or after `timeout()`, which turns the missing
//!    shares into complaints), call `complaints()` and broadcast the list,
//!    even when empty.
//! 4. Feed other members' lists to `receive_complaints`; when it returns a
//!    `Justification` (this member was accused), broadcast it. Feed received
//!    justifications to `receive_justification`. Two more waits follow, for
//!    complaint lists, then for justifications, each ended by `waiting()`
//!    becoming empty or by `timeout()` (the silent are disqualified).
//! 5. `finish()` → `Outcome::Done(share, committee)` when nobody was
//!    disqualified, or `Outcome::Restart { excluded }`.
//!
//! A complaint names a dealer whose share did not verify against its round-1
//! commitment (or never came). The accused answers publicly with the share;
//! a valid answer dismisses the complaint (the accuser uses the revealed
//! share), an invalid or missing one disqualifies the dealer. Every round-2
//! message carries SHA-256 digests of all round-1 packages its sender
//! received; a mismatch is reported in the complaint lists and `finish`
//! fails with `DkgError::Equivocation` naming the dealers (members cannot
//! tell a dealer that equivocated from a member that lies about its digest,
//! so nobody is disqualified for it: the operator reruns without them).
//!
//! frost's part 3 needs packages from all n − 1 other members, so a run with
//! disqualified members does not finish among the rest: disqualified members
//! are left out of the qualified set by a restart without them (as drand
//! does). The caller starts a fresh `Dkg` among the remaining members; the
//! threshold must stay ≤ the remaining members (else `TooFewQualified`).
//! Broadcasts are assumed to reach every member (the caller sends the same
//! bytes to all): a member that sends a complaint list or justification to
//! only some can make members disagree between `Done` and `Restart`, never
//! make them accept a wrong key. Compare the `CommitteeKey`s before use.
//!
//! # Resharing
//!
//! `ResharePlan::new(old_committee, dealers, new_members, new_threshold)`,
//! the same on every participant. Each dealer calls `deal_reshare(&plan,
//! &share, rng)`, broadcasts the `ReshareBroadcast` and sends each
//! `ResharePrivate` to its new member. Each new member feeds a
//! `ReshareReceiver` and calls `finish()` for its new share and the new
//! committee key (same group key). A dealer whose sub-share or commitment
//! fails is named in `DkgError::BadDealers`; rerun with another dealing set.
//!
//! Thresholds are at least 2: frost refuses 1, and a 1-of-n key would hand
//! every member the whole secret.

pub mod committee;
mod convert;
pub mod error;
pub mod messages;
pub mod participant;
pub mod reshare;

#[cfg(test)]
mod tests;

pub use committee::{lagrange_at_zero, lagrange_basis, CommitteeKey, DkgShare};
pub use error::{DealerFault, DealerFaultKind, DkgError};
pub use messages::{Complaints, Fault, Justification, Outcome, Round1Broadcast, Round2Private, Waiting, WaitingFor};
pub use participant::Dkg;
pub use reshare::{deal_reshare, ReshareBroadcast, ResharePlan, ResharePrivate, ReshareReceiver};
