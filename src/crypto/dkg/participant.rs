//! One authority's side of a Pedersen DKG with complaints (`Dkg`), on top of
//! frost's `keys::dkg::{part1, part2, part3}`. Input: the messages of the
//! other members (decoded by the caller) and the caller's deadlines
//! (`timeout`); output: the messages to send and finally an `Outcome`. No
//! I/O, no clocks; randomness is passed in. Secret packages stay inside.

use std::collections::{BTreeMap, BTreeSet};

use frost_ristretto255::keys::dkg::{self as frost_dkg, round1, round2};
use frost_ristretto255::keys::SecretShare;
use frost_ristretto255::Identifier;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

use super::committee::{validate_indices, CommitteeKey, DkgShare};
use super::convert::{identifier, share_scalar, verifying_key_point, verifying_share_point};
use super::error::{same_or_conflict, DkgError};
use super::messages::{Complaints, Fault, Justification, Outcome, Round1Broadcast, Round2Private, Waiting, WaitingFor};

const ROUND1_DIGEST_DOMAIN: &[u8] = b"crux-dkg-round1-package-v1";

/// The state of one run, named for what it waits for.
enum Phase {
    AwaitingRound1 {
        secret: round1::SecretPackage,
    },
    /// `secret` is `None` when round 1 disqualified someone (no shares dealt).
    AwaitingRound2 {
        secret: Option<round2::SecretPackage>,
    },
    AwaitingComplaints {
        secret: Option<round2::SecretPackage>,
    },
    Finished,
}

/// One member's DKG run. See the module documentation of `crypto::dkg` for
/// the order of calls.
pub struct Dkg {
    me: u16,
    members: Vec<u16>,
    threshold: u16,
    phase: Phase,
    round1: BTreeMap<u16, round1::Package>,
    faults: BTreeMap<u16, Fault>,
    my_digests: BTreeMap<u16, [u8; 32]>,
    round2: BTreeMap<u16, Round2Private>,
    missing_round2: BTreeSet<u16>,
    sent: BTreeMap<u16, round2::Package>,
    complaints: BTreeMap<u16, Complaints>,
    justifications: BTreeMap<(u16, u16), Justification>,
}

impl Dkg {
    /// Starts a run of `members` (distinct indices ≥ 1, `me` among them) for a
    /// `threshold`-of-n key (2 ≤ threshold ≤ n); returns the round-1 package
    /// to broadcast to every other member.
    pub fn start(
        me: u16,
        members: &[u16],
        threshold: u16,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(Dkg, Round1Broadcast), DkgError> {
        validate_indices(members, "the DKG members")?;
        if !members.contains(&me) {
            return Err(DkgError::NotInSet { index: me, what: "the DKG members", set: members.to_vec() });
        }
        let n = u16::try_from(members.len()).map_err(|_| DkgError::TooFewMembers {
            what: "a DKG (at most 65535)",
            needed: 2,
            found: members.len(),
        })?;
        if n < 2 {
            return Err(DkgError::TooFewMembers { what: "a DKG", needed: 2, found: members.len() });
        }
        if threshold < 2 || threshold > n {
            return Err(DkgError::ThresholdOutOfRange { threshold, members: members.len() });
        }
        let (secret, package) =
            frost_dkg::part1(identifier(me)?, n, threshold, rng).map_err(|e| DkgError::frost("DKG part 1", e))?;
        let mut sorted = members.to_vec();
        sorted.sort_unstable();
        let dkg = Dkg {
            me,
            members: sorted,
            threshold,
            phase: Phase::AwaitingRound1 { secret },
            round1: BTreeMap::from([(me, package.clone())]),
            faults: BTreeMap::new(),
            my_digests: BTreeMap::new(),
            round2: BTreeMap::new(),
            missing_round2: BTreeSet::new(),
            sent: BTreeMap::new(),
            complaints: BTreeMap::new(),
            justifications: BTreeMap::new(),
        };
        Ok((dkg, Round1Broadcast { sender: me, package }))
    }

    /// This member's index.
    pub fn index(&self) -> u16 {
        self.me
    }

    /// The members disqualified so far, and why.
    pub fn faults(&self) -> &BTreeMap<u16, Fault> {
        &self.faults
    }

    /// Accepts a round-1 package. A package that fails frost's checks (proof
    /// of knowledge, number of coefficients) disqualifies its sender; that is
    /// recorded in `faults()`, not returned as an error.
    pub fn receive_round1(&mut self, message: Round1Broadcast) -> Result<(), DkgError> {
        let sender = message.sender;
        self.check_sender(sender, "round-1 package")?;
        if !matches!(self.phase, Phase::AwaitingRound1 { .. }) {
            return Err(DkgError::WrongPhase { action: "accept a round-1 package", phase: self.phase_name() });
        }
        if let Some(known) = self.round1.get(&sender) {
            return same_or_conflict(known == &message.package, sender, "round-1 packages");
        }
        if let Err(reason) = check_round1(identifier(self.me)?, identifier(sender)?, &message.package, self.threshold) {
            self.faults.insert(sender, Fault::Round1Invalid { reason: reason.to_string() });
        }
        self.round1.insert(sender, message.package);
        Ok(())
    }

    /// Accepts a round-2 message addressed to this member. It may arrive
    /// before this member has dealt; it is checked in `complaints`.
    pub fn receive_round2(&mut self, message: Round2Private) -> Result<(), DkgError> {
        let sender = message.sender;
        self.check_sender(sender, "round-2 share")?;
        if message.recipient != self.me {
            let recipient = message.recipient;
            return Err(DkgError::Misaddressed { sender, recipient, me: self.me, what: "round-2 share" });
        }
        if !matches!(self.phase, Phase::AwaitingRound1 { .. } | Phase::AwaitingRound2 { .. }) {
            return Err(DkgError::WrongPhase { action: "accept a round-2 share", phase: self.phase_name() });
        }
        if let Some(known) = self.round2.get(&sender) {
            return same_or_conflict(known == &message, sender, "round-2 shares");
        }
        self.round2.insert(sender, message);
        Ok(())
    }

    /// What this member waits for, and from whom. When the caller's deadline
    /// for that passes, it calls `timeout`.
    pub fn waiting(&self) -> Waiting {
        let others = self.active_others();
        let (what, members) = match &self.phase {
            Phase::AwaitingRound1 { .. } => {
                (WaitingFor::Round1, others.into_iter().filter(|m| !self.round1.contains_key(m)).collect())
            }
            Phase::AwaitingRound2 { .. } => (
                WaitingFor::Round2,
                others
                    .into_iter()
                    .filter(|m| !self.round2.contains_key(m) && !self.missing_round2.contains(m))
                    .collect(),
            ),
            Phase::AwaitingComplaints { .. } => {
                let silent: Vec<u16> = others.into_iter().filter(|m| !self.complaints.contains_key(m)).collect();
                if silent.is_empty() {
                    let unanswered = self.unanswered_complaints().into_iter().map(|(dealer, _)| dealer);
                    (WaitingFor::Justifications, unanswered.collect::<BTreeSet<u16>>().into_iter().collect())
                } else {
                    (WaitingFor::Complaints, silent)
                }
            }
            Phase::Finished => (WaitingFor::Nothing, Vec::new()),
        };
        Waiting { what: if members.is_empty() { WaitingFor::Nothing } else { what }, members }
    }

    /// The caller's deadline for the current wait passed: members missing a
    /// round-1 package, a complaint list or a justification are disqualified;
    /// dealers missing a round-2 share are accused in this member's
    /// complaints (they can still publish the share). Returns those members.
    pub fn timeout(&mut self) -> Vec<u16> {
        let waiting = self.waiting();
        match waiting.what {
            WaitingFor::Round1 => self.disqualify(&waiting.members, &Fault::Round1Missing),
            WaitingFor::Round2 => self.missing_round2.extend(waiting.members.iter().copied()),
            WaitingFor::Complaints => self.disqualify(&waiting.members, &Fault::ComplaintsMissing),
            WaitingFor::Justifications => {
                for (dealer, accuser) in self.unanswered_complaints() {
                    self.faults.entry(dealer).or_insert(Fault::JustificationMissing { accuser });
                }
            }
            WaitingFor::Nothing => {}
        }
        waiting.members
    }

    /// Once every round-1 package is in (or timed out): the round-2 messages,
    /// one per other qualified member, to send privately.
    pub fn round2(&mut self) -> Result<Vec<(u16, Round2Private)>, DkgError> {
        self.require_ready()?;
        let secret = match std::mem::replace(&mut self.phase, Phase::Finished) {
            Phase::AwaitingRound1 { secret } => secret,
            other => {
                self.phase = other;
                return Err(DkgError::WrongPhase { action: "deal round-2 shares", phase: self.phase_name() });
            }
        };
        self.my_digests = self
            .round1
            .iter()
            .map(|(dealer, package)| Ok((*dealer, round1_digest(*dealer, package)?)))
            .collect::<Result<_, DkgError>>()?;
        let digests: Vec<(u16, [u8; 32])> = self.my_digests.iter().map(|(d, h)| (*d, *h)).collect();
        let recipients = self.active_others();
        let mut shares = BTreeMap::new();
        let mut round2_secret = None;
        if self.faults.is_empty() {
            let view = self.frost_round1_view()?;
            let (secret2, mut dealt) = frost_dkg::part2(secret, &view).map_err(|e| DkgError::frost("DKG part 2", e))?;
            for recipient in &recipients {
                let package = dealt.remove(&identifier(*recipient)?).ok_or(DkgError::Frost {
                    during: "DKG part 2",
                    reason: format!("no share for member {recipient}"),
                })?;
                shares.insert(*recipient, package);
            }
            round2_secret = Some(secret2);
        }
        self.sent.clone_from(&shares);
        self.phase = Phase::AwaitingRound2 { secret: round2_secret };
        let me = self.me;
        Ok(recipients
            .into_iter()
            .map(|recipient| {
                let share = shares.remove(&recipient);
                (recipient, Round2Private { sender: me, recipient, round1_digests: digests.clone(), share })
            })
            .collect())
    }

    /// Once every round-2 share is in (or timed out): checks each share
    /// against its dealer's commitment and each sender's round-1 digests
    /// against this member's, and returns this member's complaint list, to
    /// broadcast (also when empty).
    pub fn complaints(&mut self) -> Result<Complaints, DkgError> {
        self.require_ready()?;
        let secret = match std::mem::replace(&mut self.phase, Phase::Finished) {
            Phase::AwaitingRound2 { secret } => secret,
            other => {
                self.phase = other;
                return Err(DkgError::WrongPhase { action: "send complaints", phase: self.phase_name() });
            }
        };
        let mut equivocating = BTreeSet::new();
        for message in self.round2.values() {
            let theirs: BTreeMap<u16, [u8; 32]> = message.round1_digests.iter().copied().collect();
            let dealers: BTreeSet<u16> = theirs.keys().chain(self.my_digests.keys()).copied().collect();
            equivocating.extend(dealers.into_iter().filter(|d| theirs.get(d) != self.my_digests.get(d)));
        }
        let mut accused = Vec::new();
        if self.faults.is_empty() {
            for dealer in self.active_others() {
                if !self.share_verifies(dealer)? {
                    accused.push(dealer);
                }
            }
        }
        let complaints = Complaints { accuser: self.me, accused, equivocating: equivocating.into_iter().collect() };
        self.complaints.insert(self.me, complaints.clone());
        self.phase = Phase::AwaitingComplaints { secret };
        Ok(complaints)
    }

    /// Accepts another member's complaint list. If it accuses this member,
    /// returns the justification to broadcast (this member's share for the
    /// accuser, in the clear); it is also recorded here.
    pub fn receive_complaints(&mut self, message: Complaints) -> Result<Option<Justification>, DkgError> {
        let accuser = message.accuser;
        self.check_sender(accuser, "complaint list")?;
        if matches!(self.phase, Phase::Finished) {
            return Err(DkgError::WrongPhase { action: "accept a complaint list", phase: self.phase_name() });
        }
        if let Some(accused) = message.accused.iter().chain(&message.equivocating).find(|m| !self.members.contains(m)) {
            return Err(DkgError::NotInSet { index: *accused, what: "the DKG members", set: self.members.clone() });
        }
        if let Some(known) = self.complaints.get(&accuser) {
            return same_or_conflict(known == &message, accuser, "complaint lists").map(|()| None);
        }
        if message.accused.contains(&self.me) && matches!(self.phase, Phase::AwaitingRound1 { .. }) {
            return Err(DkgError::ComplaintBeforeDealing { accuser });
        }
        // No share was sent when round 1 already disqualified someone: the
        // run restarts, there is nothing to justify.
        let justification = match self.sent.get(&accuser) {
            Some(share) if message.accused.contains(&self.me) => {
                Some(Justification { dealer: self.me, accuser, share: share.clone() })
            }
            _ => None,
        };
        if let Some(justification) = &justification {
            self.justifications.insert((self.me, accuser), justification.clone());
        }
        self.complaints.insert(accuser, message);
        Ok(justification)
    }

    /// Accepts a dealer's public answer to a complaint. It is checked against
    /// the dealer's commitment in `finish`.
    pub fn receive_justification(&mut self, message: Justification) -> Result<(), DkgError> {
        self.check_sender(message.dealer, "justification")?;
        self.check_sender(message.accuser, "complaint")?;
        if matches!(self.phase, Phase::Finished) {
            return Err(DkgError::WrongPhase { action: "accept a justification", phase: self.phase_name() });
        }
        let key = (message.dealer, message.accuser);
        if let Some(known) = self.justifications.get(&key) {
            return same_or_conflict(known == &message, message.dealer, "justifications");
        }
        self.justifications.insert(key, message);
        Ok(())
    }

    /// Once every complaint list and justification is in (or timed out):
    /// `Done` with this member's share and the committee key when nobody was
    /// disqualified, else `Restart` naming the members to leave out.
    pub fn finish(&mut self) -> Result<Outcome, DkgError> {
        self.require_ready()?;
        let secret = match std::mem::replace(&mut self.phase, Phase::Finished) {
            Phase::AwaitingComplaints { secret } => secret,
            other => {
                self.phase = other;
                return Err(DkgError::WrongPhase { action: "finish", phase: self.phase_name() });
            }
        };
        self.check_equivocation()?;
        let mut revealed = BTreeMap::new();
        for (dealer, accuser) in self.open_complaints() {
            match self.justifications.get(&(dealer, accuser)) {
                Some(justification) if self.justification_verifies(justification)? => {
                    if accuser == self.me {
                        revealed.insert(dealer, justification.share.clone());
                    }
                }
                _ => {
                    self.faults.entry(dealer).or_insert(Fault::JustificationInvalid { accuser });
                }
            }
        }
        match secret {
            Some(secret) if self.faults.is_empty() => self.complete(&secret, revealed),
            _ => self.restart(),
        }
    }

    fn disqualify(&mut self, members: &[u16], fault: &Fault) {
        for member in members {
            self.faults.entry(*member).or_insert_with(|| fault.clone());
        }
    }

    fn restart(&self) -> Result<Outcome, DkgError> {
        let excluded: Vec<u16> = self.faults.keys().copied().collect();
        let remaining = self.members.len().saturating_sub(excluded.len());
        if remaining < usize::from(self.threshold).max(2) {
            return Err(DkgError::TooFewQualified { remaining, threshold: self.threshold, excluded });
        }
        Ok(Outcome::Restart { excluded })
    }

    /// frost part 3 over every other member's round-1 package and round-2
    /// share (revealed shares replacing the ones complained about).
    fn complete(
        &self,
        secret: &round2::SecretPackage,
        mut revealed: BTreeMap<u16, round2::Package>,
    ) -> Result<Outcome, DkgError> {
        let round1_view = self.frost_round1_view()?;
        let mut round2_view = BTreeMap::new();
        for dealer in self.others() {
            let share = revealed
                .remove(&dealer)
                .or_else(|| self.round2.get(&dealer).and_then(|message| message.share.clone()))
                .ok_or(DkgError::NotReady { what: "a round-2 share", waiting_for: vec![dealer] })?;
            round2_view.insert(identifier(dealer)?, share);
        }
        let (key_package, public) =
            frost_dkg::part3(secret, &round1_view, &round2_view).map_err(|e| DkgError::frost("DKG part 3", e))?;
        let share = DkgShare { index: self.me, secret: share_scalar(key_package.signing_share())? };
        let mut members = Vec::with_capacity(self.members.len());
        for member in &self.members {
            let verifying_share = public.verifying_shares().get(&identifier(*member)?).ok_or(DkgError::Frost {
                during: "DKG part 3",
                reason: format!("no verifying share for member {member}"),
            })?;
            members.push((*member, verifying_share_point(verifying_share)?));
        }
        let committee = CommitteeKey {
            threshold: self.threshold,
            members,
            group_key: verifying_key_point(public.verifying_key())?,
        };
        committee.check()?;
        committee.check_share(&share)?;
        Ok(Outcome::Done(share, committee))
    }

    fn check_equivocation(&self) -> Result<(), DkgError> {
        let mut dealers = BTreeSet::new();
        let mut reported_by = Vec::new();
        for (member, complaints) in &self.complaints {
            if !complaints.equivocating.is_empty() {
                dealers.extend(complaints.equivocating.iter().copied());
                reported_by.push(*member);
            }
        }
        if dealers.is_empty() {
            Ok(())
        } else {
            Err(DkgError::Equivocation { dealers: dealers.into_iter().collect(), reported_by })
        }
    }

    /// Whether `dealer`'s round-2 share to this member verifies against its
    /// round-1 commitment (frost `SecretShare::verify`).
    fn share_verifies(&self, dealer: u16) -> Result<bool, DkgError> {
        let Some(package) = self.round2.get(&dealer).and_then(|message| message.share.as_ref()) else {
            return Ok(false);
        };
        let commitment = self.commitment_of(dealer)?;
        let share = SecretShare::new(identifier(self.me)?, *package.signing_share(), commitment.clone());
        Ok(share.verify().is_ok())
    }

    fn justification_verifies(&self, justification: &Justification) -> Result<bool, DkgError> {
        let commitment = self.commitment_of(justification.dealer)?;
        let share = SecretShare::new(
            identifier(justification.accuser)?,
            *justification.share.signing_share(),
            commitment.clone(),
        );
        Ok(share.verify().is_ok())
    }

    fn commitment_of(
        &self,
        dealer: u16,
    ) -> Result<&frost_ristretto255::keys::VerifiableSecretSharingCommitment, DkgError> {
        self.round1
            .get(&dealer)
            .map(round1::Package::commitment)
            .ok_or(DkgError::NotReady { what: "a round-1 package", waiting_for: vec![dealer] })
    }

    /// Complaints (dealer, accuser) between qualified members that still
    /// need a justification.
    fn unanswered_complaints(&self) -> Vec<(u16, u16)> {
        self.open_complaints().into_iter().filter(|key| !self.justifications.contains_key(key)).collect()
    }

    /// Every complaint (dealer, accuser) between qualified members.
    fn open_complaints(&self) -> Vec<(u16, u16)> {
        let mut open = Vec::new();
        for (accuser, complaints) in &self.complaints {
            if self.faults.contains_key(accuser) {
                continue;
            }
            for dealer in complaints.accused.iter().filter(|dealer| !self.faults.contains_key(dealer)) {
                open.push((*dealer, *accuser));
            }
        }
        open
    }

    fn frost_round1_view(&self) -> Result<BTreeMap<Identifier, round1::Package>, DkgError> {
        let mut view = BTreeMap::new();
        for member in self.others() {
            let package = self
                .round1
                .get(&member)
                .ok_or(DkgError::NotReady { what: "a round-1 package", waiting_for: vec![member] })?;
            view.insert(identifier(member)?, package.clone());
        }
        Ok(view)
    }

    fn require_ready(&self) -> Result<(), DkgError> {
        let waiting = self.waiting();
        if waiting.members.is_empty() {
            return Ok(());
        }
        let what = match waiting.what {
            WaitingFor::Round1 => "round-1 packages",
            WaitingFor::Round2 => "round-2 shares",
            WaitingFor::Complaints => "complaint lists",
            WaitingFor::Justifications | WaitingFor::Nothing => "justifications",
        };
        Err(DkgError::NotReady { what, waiting_for: waiting.members })
    }

    fn check_sender(&self, sender: u16, what: &'static str) -> Result<(), DkgError> {
        if self.members.contains(&sender) {
            Ok(())
        } else {
            Err(DkgError::UnknownSender { sender, what })
        }
    }

    fn others(&self) -> Vec<u16> {
        self.members.iter().copied().filter(|m| *m != self.me).collect()
    }

    fn active_others(&self) -> Vec<u16> {
        self.others().into_iter().filter(|m| !self.faults.contains_key(m)).collect()
    }

    fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::AwaitingRound1 { .. } => "awaiting round-1 packages",
            Phase::AwaitingRound2 { .. } => "awaiting round-2 shares",
            Phase::AwaitingComplaints { .. } => "awaiting complaints and justifications",
            Phase::Finished => "finished",
        }
    }
}

/// SHA-256 over a domain tag, the dealer's index and frost's canonical
/// encoding of its round-1 package.
fn round1_digest(dealer: u16, package: &round1::Package) -> Result<[u8; 32], DkgError> {
    let encoded = package.serialize().map_err(|e| DkgError::frost("to encode a round-1 package", e))?;
    let mut hasher = Sha256::new();
    hasher.update(ROUND1_DIGEST_DOMAIN);
    hasher.update(dealer.to_be_bytes());
    hasher.update(&encoded);
    Ok(hasher.finalize().into())
}

/// frost's own round-1 checks (proof of knowledge, number of coefficients)
/// for one dealer. frost runs them only inside `part2`, which wants exactly
/// max_signers − 1 packages; a one-dealer view (max_signers = 2) with a
/// throwaway zero polynomial checks each dealer on its own, so every
/// cheating dealer is named, not only the first.
fn check_round1(
    me: Identifier,
    dealer: Identifier,
    package: &round1::Package,
    threshold: u16,
) -> Result<(), frost_ristretto255::Error> {
    let zero_polynomial = vec![curve25519_dalek::scalar::Scalar::ZERO; usize::from(threshold)];
    let probe = round1::SecretPackage::new(me, zero_polynomial, package.commitment().clone(), threshold, 2);
    frost_dkg::part2(probe, &BTreeMap::from([(dealer, package.clone())])).map(|_| ())
}
