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

use crate::crypto::dkg::{Complaints, Justification, Round1Broadcast, Round2Private};

/// What a member asks another for, in run `run` (a run restarts without
/// the members the previous one disqualified).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Want {
    Round1,
    Round2,
    Complaints,
    Justifications,
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
}

impl Board {
    /// Clears the board for run `run` and publishes its round-1 broadcast.
    pub fn start_run(&mut self, run: u32, round1: Round1Broadcast) {
        *self = Board { run, round1: Some(round1), ..Board::default() };
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

    /// Answers member `asker` (its index, from its TLS identity).
    pub fn answer(&mut self, asker: u16, request: &KeygenRequest) -> KeygenReply {
        let not_ready = KeygenReply::NotReady { run: self.run };
        if request.run != self.run {
            return not_ready;
        }
        let reply = match request.want {
            Want::Round1 => self.round1.clone().map(KeygenReply::Round1),
            Want::Round2 => self.round2.get(&asker).cloned().map(KeygenReply::Round2),
            Want::Complaints => self.complaints.clone().map(KeygenReply::Complaints),
            Want::Justifications => {
                let list = self.justifications.clone();
                if list.is_some() {
                    self.fetched_final.insert(asker);
                }
                list.map(KeygenReply::Justifications)
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
        assert!(matches!(board.answer(2, &ask(4, Want::Round1)), KeygenReply::Round1(r) if r == r1));
        assert!(matches!(board.answer(2, &ask(3, Want::Round1)), KeygenReply::NotReady { run: 4 }));
        assert!(matches!(board.answer(2, &ask(4, Want::Round2)), KeygenReply::NotReady { .. }));
        for (index, other) in
            [(2, Dkg::start(2, &[1, 2, 3], 2, &mut OsRng)), (3, Dkg::start(3, &[1, 2, 3], 2, &mut OsRng))]
        {
            a.receive_round1(other.unwrap().1).unwrap();
            assert!(index > 1);
        }
        board.publish_round2(a.round2().unwrap());
        let KeygenReply::Round2(to_2) = board.answer(2, &ask(4, Want::Round2)) else { panic!("no share for 2") };
        assert_eq!((to_2.sender, to_2.recipient), (1, 2));
        let KeygenReply::Round2(to_3) = board.answer(3, &ask(4, Want::Round2)) else { panic!("no share for 3") };
        assert_eq!(to_3.recipient, 3);
        assert!(!board.all_fetched(&[2, 3]));
        board.publish_justifications(Vec::new());
        assert!(matches!(board.answer(2, &ask(4, Want::Justifications)), KeygenReply::Justifications(_)));
        assert!(!board.all_fetched(&[2, 3]));
        board.answer(3, &ask(4, Want::Justifications));
        assert!(board.all_fetched(&[2, 3]));
    }
}
