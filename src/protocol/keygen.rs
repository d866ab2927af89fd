//! The authorities' key generation over the network: messages and the
//! board each authority serves them from. Pull-based: each authority
//! publishes its own messages of the current run on its board and fetches
//! the others' from their boards (`actors::keygen` moves the bytes, over
//! QUIC with mutual TLS between authorities only), so no message order or
//! delivery is assumed; a peer not ready yet answers `NotReady` and is
//! asked again. Round-2 shares are served only to their recipient (the
//! TLS-authenticated peer), the rest to every member. The DKG itself is
//! `crypto::dkg` (frost's Pedersen DKG with complaints).
//!
//! Members are the configured authorities in config order, indices 1..=n.
//! Input: requests from peers (with their pinned name); output: replies. No I/O.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::committee::SignedHandover;
use crate::crypto::dkg::{Complaints, Justification, ReshareBroadcast, ResharePrivate, Round1Broadcast, Round2Private};
use crate::crypto::AuthoritySignature;

/// What a member asks another for, in run `run` (a run restarts without
/// the members the previous one disqualified).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Want {
    Round1,
    Round2,
    Complaints,
    Justifications,
    /// a committee change (`committee apply`): a dealer's resharing commitment
    ReshareCommitment,
    /// a dealer's sub-share for the asker
    ReshareShare,
    /// a dealer's signed ledger
    Handover,
    /// an old member's signature over the transition
    Signature,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeygenRequest {
    pub run: u32,
    pub want: Want,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum KeygenReply {
    /// not published yet (or another run): ask again
    NotReady {
        run: u32,
    },
    Round1(Round1Broadcast),
    Round2(Round2Private),
    Complaints(Complaints),
    /// the final list of this member's answers to complaints against it
    Justifications(Vec<Justification>),
    Refused {
        reason: String,
    },
    ReshareCommitment(ReshareBroadcast),
    ReshareShare(ResharePrivate),
    Handover(Box<SignedHandover>),
    Signature(AuthoritySignature),
}

/// One participant's published messages of a committee change that do not
/// depend on a DKG run: kept across runs.
#[derive(Default)]
pub struct Handoff {
    commitment: Option<ReshareBroadcast>,
    /// sub-shares by recipient name
    shares: BTreeMap<String, ResharePrivate>,
    handover: Option<SignedHandover>,
    signature: Option<AuthoritySignature>,
    /// participants that fetched the signature
    fetched_signature: BTreeSet<String>,
}

/// One member's published messages of the current run.
#[derive(Default)]
pub struct Board {
    run: u32,
    round1: Option<Round1Broadcast>,
    round2: BTreeMap<u16, Round2Private>,
    complaints: Option<Complaints>,
    justifications: Option<Vec<Justification>>,
    /// members that fetched this run's final justifications
    fetched_final: BTreeSet<u16>,
    /// the previous run's justifications: a member still finishing that
    /// run must not take this one, already restarted, for silent
    previous: Option<(u32, Vec<Justification>)>,
    handoff: Handoff,
}

impl Board {
    /// Clears the board for run `run` and publishes its round-1 broadcast.
    pub fn start_run(&mut self, run: u32, round1: Round1Broadcast) {
        let handoff = std::mem::take(&mut self.handoff);
        let previous = self.justifications.take().map(|list| (self.run, list));
        *self = Board { run, round1: Some(round1), handoff, previous, ..Board::default() };
    }

    /// Publishes a dealer's resharing: its commitment, the sub-share of
    /// each new member (by name) and its signed ledger.
    pub fn publish_reshare(
        &mut self,
        commitment: ReshareBroadcast,
        shares: BTreeMap<String, ResharePrivate>,
        handover: SignedHandover,
    ) {
        self.handoff.commitment = Some(commitment);
        self.handoff.shares = shares;
        self.handoff.handover = Some(handover);
    }

    /// Publishes this old member's signature over the transition.
    pub fn publish_signature(&mut self, signature: AuthoritySignature) {
        self.handoff.signature = Some(signature);
    }

    /// Whether every one of `names` fetched the signature.
    pub fn all_fetched_signature(&self, names: &[String]) -> bool {
        names.iter().all(|n| self.handoff.fetched_signature.contains(n))
    }

    /// Answers a committee change's request from participant `asker` (its
    /// TLS-pinned name).
    fn answer_handoff(&mut self, asker: &str, want: Want) -> Option<KeygenReply> {
        let h = &mut self.handoff;
        match want {
            Want::ReshareCommitment => h.commitment.clone().map(KeygenReply::ReshareCommitment),
            Want::ReshareShare => h.shares.get(asker).cloned().map(KeygenReply::ReshareShare),
            Want::Handover => h.handover.clone().map(|x| KeygenReply::Handover(Box::new(x))),
            Want::Signature => {
                if h.signature.is_some() {
                    h.fetched_signature.insert(asker.to_string());
                }
                h.signature.map(KeygenReply::Signature)
            }
            Want::Round1 | Want::Round2 | Want::Complaints | Want::Justifications => None,
        }
    }

    pub fn publish_round2(&mut self, shares: Vec<(u16, Round2Private)>) {
        self.round2 = shares.into_iter().collect();
    }

    pub fn publish_complaints(&mut self, complaints: Complaints) {
        self.complaints = Some(complaints);
    }

    pub fn publish_justifications(&mut self, justifications: Vec<Justification>) {
        self.justifications = Some(justifications);
    }

    /// Whether every one of `members` fetched the final justifications (so
    /// this member may stop serving).
    pub fn all_fetched(&self, members: &[u16]) -> bool {
        members.iter().all(|m| self.fetched_final.contains(m))
    }

    /// Answers member `asker` (its DKG index and name, from its TLS identity).
    pub fn answer(&mut self, asker: (u16, &str), request: &KeygenRequest) -> KeygenReply {
        let not_ready = KeygenReply::NotReady { run: self.run };
        let (index, name) = asker;
        let in_run = request.run == self.run;
        let reply = match request.want {
            Want::Round1 if in_run => self.round1.clone().map(KeygenReply::Round1),
            Want::Round2 if in_run => self.round2.get(&index).cloned().map(KeygenReply::Round2),
            Want::Complaints if in_run => self.complaints.clone().map(KeygenReply::Complaints),
            Want::Justifications if in_run => {
                let list = self.justifications.clone();
                if list.is_some() {
                    self.fetched_final.insert(index);
                }
                list.map(KeygenReply::Justifications)
            }
            Want::Justifications => self
                .previous
                .as_ref()
                .filter(|(run, _)| *run == request.run)
                .map(|(_, list)| list.clone())
                .map(KeygenReply::Justifications),
            Want::Round1 | Want::Round2 | Want::Complaints => None,
            Want::ReshareCommitment | Want::ReshareShare | Want::Handover | Want::Signature => {
                self.answer_handoff(name, request.want)
            }
        };
        reply.unwrap_or(not_ready)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::crypto::dkg::Dkg;
    use rand::rngs::OsRng;

    #[test]
    fn shares_go_to_their_recipient_only_and_runs_do_not_mix() {
        let (mut a, r1) = Dkg::start(1, &[1, 2, 3], 2, &mut OsRng).unwrap();
        let mut board = Board::default();
        board.start_run(4, r1.clone());
        let ask = |run, want| KeygenRequest { run, want };
        assert!(matches!(board.answer((2, "a2"), &ask(4, Want::Round1)), KeygenReply::Round1(r) if r == r1));
        assert!(matches!(board.answer((2, "a2"), &ask(3, Want::Round1)), KeygenReply::NotReady { run: 4 }));
        assert!(matches!(board.answer((2, "a2"), &ask(4, Want::Round2)), KeygenReply::NotReady { .. }));
        for (index, other) in
            [(2, Dkg::start(2, &[1, 2, 3], 2, &mut OsRng)), (3, Dkg::start(3, &[1, 2, 3], 2, &mut OsRng))]
        {
            a.receive_round1(other.unwrap().1).unwrap();
            assert!(index > 1);
        }
        board.publish_round2(a.round2().unwrap());
        let KeygenReply::Round2(to_2) = board.answer((2, "a2"), &ask(4, Want::Round2)) else {
            panic!("no share for 2")
        };
        assert_eq!((to_2.sender, to_2.recipient), (1, 2));
        let KeygenReply::Round2(to_3) = board.answer((3, "a3"), &ask(4, Want::Round2)) else {
            panic!("no share for 3")
        };
        assert_eq!(to_3.recipient, 3);
        assert!(!board.all_fetched(&[2, 3]));
        board.publish_justifications(Vec::new());
        assert!(matches!(board.answer((2, "a2"), &ask(4, Want::Justifications)), KeygenReply::Justifications(_)));
        assert!(!board.all_fetched(&[2, 3]));
        board.answer((3, "a3"), &ask(4, Want::Justifications));
        assert!(board.all_fetched(&[2, 3]));
    }

    /// A member that restarted (run 5) still serves run 4's justifications
    /// to one finishing run 4, which would otherwise take it for silent.
    #[test]
    fn the_previous_runs_justifications_stay_served_after_a_restart() {
        let (_, r1) = Dkg::start(1, &[1, 2, 3], 2, &mut OsRng).unwrap();
        let mut board = Board::default();
        board.start_run(4, r1.clone());
        board.publish_justifications(Vec::new());
        board.start_run(5, r1);
        let ask = |run, want| KeygenRequest { run, want };
        assert!(matches!(board.answer((2, "a2"), &ask(4, Want::Justifications)), KeygenReply::Justifications(_)));
        assert!(matches!(board.answer((2, "a2"), &ask(5, Want::Justifications)), KeygenReply::NotReady { run: 5 }));
        assert!(matches!(board.answer((2, "a2"), &ask(3, Want::Justifications)), KeygenReply::NotReady { run: 5 }));
        assert!(matches!(board.answer((2, "a2"), &ask(4, Want::Complaints)), KeygenReply::NotReady { run: 5 }));
    }
}
