//! Unit tests of `crypto::dkg`: whole DKG runs among in-memory members (every
//! message passed by a small router, cheaters scripted on the wire),
//! resharing, committee checks and msgpack round trips. Real group math,
//! nothing mocked.

use std::collections::{BTreeMap, BTreeSet};

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::scalar::Scalar;
use frost_ristretto255::keys::dkg::{self as frost_dkg, round1, round2};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::convert::{identifier, share_scalar, signing_share};
use super::*;

type Rng = ChaCha20Rng;

/// Who misbehaves in a scripted run. Scripted cheaters' own outcomes are not
/// returned; every other member runs the honest state machine.
#[derive(Default, Clone)]
struct Script {
    /// Sends nothing at all.
    silent: Vec<u16>,
    /// Sends its round-1 package, then nothing.
    silent_after_round1: Vec<u16>,
    /// Broadcasts a round-1 package whose proof of knowledge is not its own
    /// (then stays silent: everyone has disqualified it).
    bad_proof: Vec<u16>,
    /// (dealer, victim): the victim gets a different, valid round-1 package.
    equivocate: Option<(u16, u16)>,
    /// (dealer, victim): the victim's share is off by one, and so is the
    /// dealer's public justification (unless `withhold_justification`).
    bad_share: Option<(u16, u16)>,
    withhold_justification: bool,
    /// (accuser, accused): an unfounded complaint.
    false_accusation: Option<(u16, u16)>,
}

impl Script {
    fn cheaters(&self) -> BTreeSet<u16> {
        let mut cheaters: BTreeSet<u16> =
            self.silent.iter().chain(&self.silent_after_round1).chain(&self.bad_proof).copied().collect();
        cheaters.extend(self.bad_share.map(|(dealer, _)| dealer));
        cheaters
    }

    fn sends_round2(&self, member: u16) -> bool {
        !self.silent.contains(&member)
            && !self.silent_after_round1.contains(&member)
            && !self.bad_proof.contains(&member)
    }
}

type Outcomes = BTreeMap<u16, Result<Outcome, DkgError>>;

/// Runs one DKG, routing every message, calling `timeout()` wherever a
/// member still waits after a delivery round. Returns the honest members'
/// outcomes.
fn run(members: &[u16], threshold: u16, script: &Script, rng: &mut Rng) -> Outcomes {
    let mut dkgs = BTreeMap::new();
    let mut round1_out = Vec::new();
    for member in members {
        let (dkg, message) = Dkg::start(*member, members, threshold, rng).unwrap();
        dkgs.insert(*member, dkg);
        if !script.silent.contains(member) {
            round1_out.push(message);
        }
    }
    let round1_out = tamper_round1(round1_out, script, members, threshold, rng);
    let live: Vec<u16> = members.iter().copied().filter(|m| script.sends_round2(*m)).collect();
    for (recipient, message) in round1_out {
        if live.contains(&recipient) && recipient != message.sender {
            dkgs.get_mut(&recipient).unwrap().receive_round1(message).unwrap();
        }
    }
    time_out(&mut dkgs, &live, WaitingFor::Round1);
    let mut round2_out = Vec::new();
    for member in &live {
        round2_out.extend(dkgs.get_mut(member).unwrap().round2().unwrap());
    }
    for (recipient, mut message) in round2_out {
        if script.bad_share == Some((message.sender, recipient)) {
            message.share = Some(off_by_one(message.share.as_ref().unwrap()));
        }
        if live.contains(&recipient) {
            dkgs.get_mut(&recipient).unwrap().receive_round2(message).unwrap();
        }
    }
    time_out(&mut dkgs, &live, WaitingFor::Round2);
    let justifications = exchange_complaints(&mut dkgs, &live, script);
    time_out(&mut dkgs, &live, WaitingFor::Complaints);
    for justification in justifications {
        for member in live.iter().filter(|m| **m != justification.dealer) {
            dkgs.get_mut(member).unwrap().receive_justification(justification.clone()).unwrap();
        }
    }
    time_out(&mut dkgs, &live, WaitingFor::Justifications);
    let cheaters = script.cheaters();
    live.iter().filter(|m| !cheaters.contains(m)).map(|m| (*m, dkgs.get_mut(m).unwrap().finish())).collect()
}

/// Every round-1 broadcast as (recipient, message), with the script's
/// tampering applied.
fn tamper_round1(
    out: Vec<Round1Broadcast>,
    script: &Script,
    members: &[u16],
    threshold: u16,
    rng: &mut Rng,
) -> Vec<(u16, Round1Broadcast)> {
    let honest_proof =
        *out.iter().find(|m| !script.bad_proof.contains(&m.sender)).unwrap().package.proof_of_knowledge();
    let n = u16::try_from(members.len()).unwrap();
    let mut addressed = Vec::new();
    for mut message in out {
        if script.bad_proof.contains(&message.sender) {
            message.package = round1::Package::new(message.package.commitment().clone(), honest_proof);
        }
        for recipient in members {
            let mut copy = message.clone();
            if script.equivocate == Some((message.sender, *recipient)) {
                let id = identifier(message.sender).unwrap();
                copy.package = frost_dkg::part1(id, n, threshold, &mut *rng).unwrap().1;
            }
            addressed.push((*recipient, copy));
        }
    }
    addressed
}

fn off_by_one(package: &round2::Package) -> round2::Package {
    let scalar = share_scalar(package.signing_share()).unwrap();
    round2::Package::new(signing_share(&(scalar + Scalar::ONE)).unwrap())
}

/// Complaint lists are broadcast; returns the justifications to broadcast.
fn exchange_complaints(dkgs: &mut BTreeMap<u16, Dkg>, live: &[u16], script: &Script) -> Vec<Justification> {
    let mut lists = Vec::new();
    for member in live.iter().filter(|m| script.sends_round2(**m)) {
        let mut complaints = dkgs.get_mut(member).unwrap().complaints().unwrap();
        if let Some((accuser, accused)) = script.false_accusation {
            if accuser == *member {
                complaints.accused.push(accused);
            }
        }
        lists.push(complaints);
    }
    let mut justifications = Vec::new();
    for complaints in lists {
        for member in live.iter().filter(|m| **m != complaints.accuser) {
            let answer = dkgs.get_mut(member).unwrap().receive_complaints(complaints.clone()).unwrap();
            justifications.extend(answer);
        }
    }
    if let Some((dealer, victim)) = script.bad_share {
        justifications.retain(|j| !(j.dealer == dealer && j.accuser == victim && script.withhold_justification));
        for justification in justifications.iter_mut().filter(|j| j.dealer == dealer && j.accuser == victim) {
            justification.share = off_by_one(&justification.share);
        }
    }
    justifications
}

/// The deadline for messages of kind `what` passed at every live member.
fn time_out(dkgs: &mut BTreeMap<u16, Dkg>, live: &[u16], what: WaitingFor) {
    for member in live {
        let dkg = dkgs.get_mut(member).unwrap();
        if dkg.waiting().what == what {
            dkg.timeout();
        }
    }
}

fn rng(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

fn range(n: u16) -> Vec<u16> {
    (1..=n).collect()
}

/// Every k-element subset of `items`.
fn subsets<T: Clone>(items: &[T], k: usize) -> Vec<Vec<T>> {
    if k == 0 {
        return vec![Vec::new()];
    }
    let Some((first, rest)) = items.split_first() else {
        return Vec::new();
    };
    let mut with_first: Vec<Vec<T>> = subsets(rest, k - 1)
        .into_iter()
        .map(|mut s| {
            s.insert(0, first.clone());
            s
        })
        .collect();
    with_first.extend(subsets(rest, k));
    with_first
}

/// All outcomes are `Done` with one committee key; returns shares and key.
fn expect_done(outcomes: Outcomes) -> (Vec<DkgShare>, CommitteeKey) {
    let mut shares = Vec::new();
    let mut committee: Option<CommitteeKey> = None;
    for (member, outcome) in outcomes {
        match outcome.unwrap() {
            Outcome::Done(share, key) => {
                assert_eq!(share.index, member);
                if let Some(first) = &committee {
                    assert_eq!(first, &key, "members disagree on the committee key");
                }
                committee = Some(key);
                shares.push(share);
            }
            Outcome::Restart { excluded } => panic!("member {member} restarts without {excluded:?}"),
        }
    }
    (shares, committee.unwrap())
}

fn expect_restart(outcomes: &mut Outcomes, excluded: &[u16]) {
    for (member, outcome) in std::mem::take(outcomes) {
        match outcome.unwrap() {
            Outcome::Restart { excluded: found } => assert_eq!(found, excluded, "member {member}"),
            Outcome::Done(..) => panic!("member {member} finished despite a cheater"),
        }
    }
}

/// Each share matches its Y_i, the key checks, and every threshold-subset
/// of shares interpolates to the secret behind the group key.
fn assert_shares_combine(shares: &[DkgShare], committee: &CommitteeKey) {
    committee.check().unwrap();
    for share in shares {
        committee.check_share(share).unwrap();
        assert_eq!(share.verification_key(), committee.verification_key(share.index).unwrap());
    }
    for subset in subsets(shares, usize::from(committee.threshold)) {
        let set: Vec<u16> = subset.iter().map(|s| s.index).collect();
        let secret: Scalar = subset.iter().map(|s| lagrange_at_zero(s.index, &set).unwrap() * s.secret).sum();
        assert_eq!(secret * RISTRETTO_BASEPOINT_POINT, committee.group_key, "subset {set:?}");
    }
}

fn honest_keys(members: &[u16], threshold: u16, rng: &mut Rng) -> (Vec<DkgShare>, CommitteeKey) {
    expect_done(run(members, threshold, &Script::default(), rng))
}

#[test]
fn honest_dkg_every_threshold_subset_recovers_the_group_key() {
    let mut rng = rng(1);
    for (n, t) in [(3, 2), (3, 3), (5, 2), (5, 3), (5, 5)] {
        let (shares, committee) = honest_keys(&range(n), t, &mut rng);
        assert_eq!(shares.len(), usize::from(n));
        assert_eq!(committee.threshold, t);
        assert_eq!(committee.indices(), range(n));
        assert_shares_combine(&shares, &committee);
        // Fewer than t shares interpolate to something else.
        if t > 2 {
            let set: Vec<u16> = range(t - 1);
            let guess: Scalar =
                shares[..usize::from(t - 1)].iter().map(|s| lagrange_at_zero(s.index, &set).unwrap() * s.secret).sum();
            assert_ne!(guess * RISTRETTO_BASEPOINT_POINT, committee.group_key);
        }
    }
}

#[test]
fn committee_check_refuses_altered_keys() {
    let mut rng = rng(2);
    let (_, committee) = honest_keys(&range(5), 3, &mut rng);
    for position in 0..5 {
        let mut altered = committee.clone();
        altered.members[position].1 += RISTRETTO_BASEPOINT_POINT;
        assert!(matches!(altered.check(), Err(DkgError::InconsistentCommittee { .. })), "Y at {position}");
    }
    let mut altered = committee.clone();
    altered.group_key += RISTRETTO_BASEPOINT_POINT;
    assert!(matches!(altered.check(), Err(DkgError::InconsistentCommittee { .. })));
    for threshold in [0, 6] {
        let mut altered = committee.clone();
        altered.threshold = threshold;
        assert!(matches!(altered.check(), Err(DkgError::CommitteeThreshold { .. })));
    }
    let mut altered = committee.clone();
    altered.members[1].0 = altered.members[0].0;
    assert!(matches!(altered.check(), Err(DkgError::DuplicateIndex { .. })));
    altered.members[1].0 = 0;
    assert_eq!(altered.check(), Err(DkgError::ZeroIndex));
    // 1-of-n: every Y_i is the group key.
    let y = committee.group_key;
    CommitteeKey { threshold: 1, members: vec![(1, y), (4, y)], group_key: y }.check().unwrap();
}

#[test]
fn lagrange_at_zero_refuses_bad_sets() {
    assert_eq!(lagrange_at_zero(1, &[1]).unwrap(), Scalar::ONE);
    // λ_1 over {1, 2} is 2/(2−1) = 2, λ_2 is 1/(1−2) = −1.
    assert_eq!(lagrange_at_zero(1, &[1, 2]).unwrap(), Scalar::from(2u8));
    assert_eq!(lagrange_at_zero(2, &[1, 2]).unwrap(), -Scalar::ONE);
    assert!(matches!(lagrange_at_zero(1, &[1, 2, 2]), Err(DkgError::DuplicateIndex { index: 2, .. })));
    assert_eq!(lagrange_at_zero(1, &[0, 1]), Err(DkgError::ZeroIndex));
    assert!(matches!(lagrange_at_zero(3, &[1, 2]), Err(DkgError::NotInSet { index: 3, .. })));
}

#[test]
fn start_refuses_bad_parameters() {
    let mut rng = rng(3);
    let bad = |me: u16, members: &[u16], t: u16, rng: &mut Rng| Dkg::start(me, members, t, rng).err().unwrap();
    assert!(matches!(bad(1, &[1, 2, 3], 1, &mut rng), DkgError::ThresholdOutOfRange { threshold: 1, .. }));
    assert!(matches!(bad(1, &[1, 2, 3], 4, &mut rng), DkgError::ThresholdOutOfRange { threshold: 4, .. }));
    assert!(matches!(bad(4, &[1, 2, 3], 2, &mut rng), DkgError::NotInSet { index: 4, .. }));
    assert!(matches!(bad(1, &[1, 1, 2], 2, &mut rng), DkgError::DuplicateIndex { index: 1, .. }));
    assert!(matches!(bad(1, &[1], 1, &mut rng), DkgError::TooFewMembers { .. }));
    assert_eq!(bad(1, &[0, 1, 2], 2, &mut rng), DkgError::ZeroIndex);
}

#[test]
fn bad_share_with_bad_justification_disqualifies_the_dealer_and_the_rest_restart() {
    let mut rng = rng(4);
    let script = Script { bad_share: Some((2, 4)), ..Script::default() };
    let mut outcomes = run(&range(4), 3, &script, &mut rng);
    assert_eq!(outcomes.len(), 3);
    expect_restart(&mut outcomes, &[2]);
    // The restart among the others succeeds with the same threshold.
    let (shares, committee) = honest_keys(&[1, 3, 4], 3, &mut rng);
    assert_shares_combine(&shares, &committee);
}

#[test]
fn accused_dealer_that_does_not_answer_is_disqualified() {
    let mut rng = rng(5);
    let script = Script { bad_share: Some((3, 1)), withhold_justification: true, ..Script::default() };
    let mut outcomes = run(&range(4), 2, &script, &mut rng);
    expect_restart(&mut outcomes, &[3]);
}

#[test]
fn invalid_proof_of_knowledge_disqualifies_the_dealer() {
    let mut rng = rng(6);
    let script = Script { bad_proof: vec![5], ..Script::default() };
    let mut outcomes = run(&range(5), 3, &script, &mut rng);
    assert_eq!(outcomes.len(), 4);
    expect_restart(&mut outcomes, &[5]);
    // Two cheaters at once are both named in one run.
    let script = Script { bad_proof: vec![1, 4], ..Script::default() };
    let mut outcomes = run(&range(5), 3, &script, &mut rng);
    expect_restart(&mut outcomes, &[1, 4]);
}

#[test]
fn false_accusation_is_dismissed_and_everyone_finishes() {
    let mut rng = rng(7);
    let script = Script { false_accusation: Some((1, 3)), ..Script::default() };
    let (shares, committee) = expect_done(run(&range(3), 2, &script, &mut rng));
    assert_eq!(shares.len(), 3);
    assert_shares_combine(&shares, &committee);
}

#[test]
fn equivocating_dealer_is_detected_by_every_member() {
    let mut rng = rng(8);
    let script = Script { equivocate: Some((2, 3)), ..Script::default() };
    let outcomes = run(&range(4), 3, &script, &mut rng);
    assert_eq!(outcomes.len(), 4);
    for (member, outcome) in outcomes {
        match outcome {
            Err(DkgError::Equivocation { dealers, reported_by }) => {
                assert_eq!(dealers, vec![2], "member {member}");
                assert!(reported_by.contains(&3), "member {member}: the victim reports");
            }
            other => panic!("member {member}: expected equivocation, got {other:?}"),
        }
    }
}

#[test]
fn silent_members_are_timed_out_and_left_out() {
    let mut rng = rng(9);
    let script = Script { silent: vec![4], ..Script::default() };
    let mut outcomes = run(&range(5), 3, &script, &mut rng);
    assert_eq!(outcomes.len(), 4);
    expect_restart(&mut outcomes, &[4]);
    let script = Script { silent_after_round1: vec![1], ..Script::default() };
    let mut outcomes = run(&range(5), 3, &script, &mut rng);
    expect_restart(&mut outcomes, &[1]);
    let (shares, committee) = honest_keys(&[2, 3, 4, 5], 3, &mut rng);
    assert_shares_combine(&shares, &committee);
}

#[test]
fn restart_refuses_when_fewer_than_threshold_remain() {
    let mut rng = rng(10);
    let script = Script { silent: vec![3], ..Script::default() };
    let outcomes = run(&range(3), 3, &script, &mut rng);
    for outcome in outcomes.into_values() {
        assert!(matches!(outcome, Err(DkgError::TooFewQualified { remaining: 2, threshold: 3, .. })));
    }
}

#[test]
fn steps_out_of_order_say_what_is_missing() {
    let mut rng = rng(11);
    let (mut dkg, _) = Dkg::start(1, &[1, 2, 3], 2, &mut rng).unwrap();
    let (_, from_two) = Dkg::start(2, &[1, 2, 3], 2, &mut rng).unwrap();
    assert_eq!(dkg.round2().err(), Some(DkgError::NotReady { what: "round-1 packages", waiting_for: vec![2, 3] }));
    dkg.receive_round1(from_two.clone()).unwrap();
    dkg.receive_round1(from_two.clone()).unwrap();
    let (_, other_two) = Dkg::start(2, &[1, 2, 3], 2, &mut rng).unwrap();
    assert!(matches!(dkg.receive_round1(other_two), Err(DkgError::ConflictingMessage { sender: 2, .. })));
    let stranger = Round1Broadcast { sender: 9, package: from_two.package };
    assert!(matches!(dkg.receive_round1(stranger), Err(DkgError::UnknownSender { sender: 9, .. })));
    assert!(matches!(dkg.finish(), Err(DkgError::NotReady { .. })));
    assert_eq!(dkg.timeout(), vec![3]);
    assert_eq!(dkg.faults().get(&3), Some(&Fault::Round1Missing));
}

#[test]
fn messages_round_trip_through_msgpack_and_hide_secrets_in_debug() {
    let mut rng = rng(12);
    let (mut one, r1) = Dkg::start(1, &[1, 2], 2, &mut rng).unwrap();
    let (mut two, r2) = Dkg::start(2, &[1, 2], 2, &mut rng).unwrap();
    let back: Round1Broadcast = rmp_serde::from_slice(&rmp_serde::to_vec(&r1).unwrap()).unwrap();
    assert_eq!(back, r1);
    one.receive_round1(r2).unwrap();
    two.receive_round1(back).unwrap();
    let (_, private) = one.round2().unwrap().pop().unwrap();
    let back: Round2Private = rmp_serde::from_slice(&rmp_serde::to_vec(&private).unwrap()).unwrap();
    assert_eq!(back, private);
    let secret_hex = hex::encode(private.share.as_ref().unwrap().signing_share().serialize());
    assert!(!format!("{private:?}").contains(&secret_hex));
    let complaints = Complaints { accuser: 1, accused: vec![2], equivocating: vec![] };
    let back: Complaints = rmp_serde::from_slice(&rmp_serde::to_vec(&complaints).unwrap()).unwrap();
    assert_eq!(back, complaints);
    let justification = Justification { dealer: 1, accuser: 2, share: private.share.clone().unwrap() };
    let back: Justification = rmp_serde::from_slice(&rmp_serde::to_vec(&justification).unwrap()).unwrap();
    assert_eq!(back, justification);
    let share = DkgShare { index: 1, secret: Scalar::from(77u8) };
    assert!(format!("{share:?}").contains("<redacted>"));
}

/// Runs a resharing in which every dealer is honest except as `tamper`
/// changes its messages; returns each new member's result.
fn reshare(
    plan: &ResharePlan,
    shares: &[DkgShare],
    rng: &mut Rng,
    tamper: impl Fn(&mut ReshareBroadcast, &mut Vec<(u16, ResharePrivate)>),
) -> BTreeMap<u16, Result<(DkgShare, CommitteeKey), DkgError>> {
    let mut broadcasts = Vec::new();
    let mut privates = Vec::new();
    for dealer in &plan.dealers {
        let share = shares.iter().find(|s| s.index == *dealer).unwrap();
        let (mut broadcast, mut sub_shares) = deal_reshare(plan, share, rng).unwrap();
        tamper(&mut broadcast, &mut sub_shares);
        broadcasts.push(broadcast);
        privates.extend(sub_shares);
    }
    let mut results = BTreeMap::new();
    for member in &plan.new_members {
        let mut receiver = ReshareReceiver::new(plan.clone(), *member).unwrap();
        for broadcast in &broadcasts {
            receiver.receive_broadcast(broadcast.clone()).unwrap();
        }
        for (recipient, private) in privates.iter().filter(|(recipient, _)| recipient == member) {
            assert_eq!(*recipient, private.recipient);
            receiver.receive_private(private.clone()).unwrap();
        }
        results.insert(*member, receiver.finish());
    }
    results
}

fn expect_reshared(
    results: BTreeMap<u16, Result<(DkgShare, CommitteeKey), DkgError>>,
    old: &CommitteeKey,
) -> (Vec<DkgShare>, CommitteeKey) {
    let mut shares = Vec::new();
    let mut committee: Option<CommitteeKey> = None;
    for (member, result) in results {
        let (share, key) = result.unwrap_or_else(|e| panic!("member {member}: {e}"));
        assert_eq!(key.group_key, old.group_key, "the joint key changed");
        if let Some(first) = &committee {
            assert_eq!(first, &key);
        }
        committee = Some(key);
        shares.push(share);
    }
    (shares, committee.unwrap())
}

#[test]
fn resharing_keeps_the_key_while_members_and_threshold_change() {
    let mut rng = rng(20);
    let (shares, old) = honest_keys(&range(4), 2, &mut rng);
    // (dealers, new members, new threshold)
    let cases: [(&[u16], &[u16], u16); 5] = [
        (&[1, 3], &[1, 2, 3, 4, 5], 2),    // n → n+1
        (&[2, 4], &[1, 2, 3], 2),          // n → n−1
        (&[1, 2, 3, 4], &[1, 2, 3, 4], 3), // t up
        (&[3, 4], &[2, 3, 6, 7, 9], 4),    // t up, members swapped
        (&[1, 4], &[5, 8], 2),             // all new members
    ];
    for (dealers, new_members, new_threshold) in cases {
        let plan = ResharePlan::new(old.clone(), dealers, new_members, new_threshold).unwrap();
        let (new_shares, committee) = expect_reshared(reshare(&plan, &shares, &mut rng, |_, _| {}), &old);
        assert_eq!(committee.indices(), new_members);
        assert_eq!(committee.threshold, new_threshold);
        assert_shares_combine(&new_shares, &committee);
    }
    // t down, from a 4-of-5 key.
    let (shares, old) = honest_keys(&range(5), 4, &mut rng);
    let plan = ResharePlan::new(old.clone(), &[1, 2, 4, 5], &[1, 2, 3, 4], 2).unwrap();
    let (new_shares, committee) = expect_reshared(reshare(&plan, &shares, &mut rng, |_, _| {}), &old);
    assert_shares_combine(&new_shares, &committee);
    // And again from the reshared key: chained resharing keeps it too.
    let plan = ResharePlan::new(committee, &[3, 4], &[1, 2, 3], 3).unwrap();
    let (newer, committee) = expect_reshared(reshare(&plan, &new_shares, &mut rng, |_, _| {}), &old);
    assert_shares_combine(&newer, &committee);
}

#[test]
fn resharing_names_a_dealer_with_a_bad_sub_share() {
    let mut rng = rng(21);
    let (shares, old) = honest_keys(&range(3), 2, &mut rng);
    let plan = ResharePlan::new(old, &[1, 2, 3], &[1, 2, 3, 4], 3).unwrap();
    let results = reshare(&plan, &shares, &mut rng, |broadcast, privates| {
        if broadcast.dealer == 2 {
            let (_, private) = privates.iter_mut().find(|(to, _)| *to == 4).unwrap();
            let scalar = share_scalar(&private.sub_share).unwrap();
            private.sub_share = signing_share(&(scalar + Scalar::ONE)).unwrap();
        }
    });
    for (member, result) in results {
        if member == 4 {
            let expected = vec![DealerFault { dealer: 2, fault: DealerFaultKind::InvalidSubShare }];
            assert_eq!(result.err(), Some(DkgError::BadDealers { faults: expected }));
        } else {
            result.unwrap();
        }
    }
}

#[test]
fn resharing_names_a_dealer_that_would_change_the_key() {
    let mut rng = rng(22);
    let (shares, old) = honest_keys(&range(4), 3, &mut rng);
    let plan = ResharePlan::new(old.clone(), &[1, 2, 3], &[1, 2, 3, 4], 3).unwrap();
    // Dealer 3 shares x_3 + 1: its commitment and sub-shares agree with each
    // other, only the constant term gives it away.
    let mut lying_plan = plan.clone();
    let fake = DkgShare { index: 3, secret: shares[2].secret + Scalar::ONE };
    lying_plan.old.members[2].1 = fake.verification_key();
    let (fake_broadcast, fake_privates) = deal_reshare(&lying_plan, &fake, &mut rng).unwrap();
    let results = reshare(&plan, &shares, &mut rng, |broadcast, privates| {
        if broadcast.dealer == 3 {
            *broadcast = fake_broadcast.clone();
            *privates = fake_privates.clone();
        }
    });
    let expected = vec![DealerFault { dealer: 3, fault: DealerFaultKind::WrongConstantTerm }];
    for result in results.into_values() {
        assert_eq!(result.err(), Some(DkgError::BadDealers { faults: expected.clone() }));
    }
    assert!(matches!(
        plan.committee(&[fake_broadcast]),
        Err(DkgError::UnknownSender { .. } | DkgError::NotReady { .. })
    ));
}

#[test]
fn resharing_refuses_bad_plans_and_foreign_shares() {
    let mut rng = rng(23);
    let (shares, old) = honest_keys(&range(4), 3, &mut rng);
    let err =
        |dealers: &[u16], members: &[u16], t: u16| ResharePlan::new(old.clone(), dealers, members, t).err().unwrap();
    assert!(matches!(err(&[1, 2], &[1, 2, 3], 2), DkgError::TooFewMembers { needed: 3, found: 2, .. }));
    assert!(matches!(err(&[1, 2, 9], &[1, 2, 3], 2), DkgError::NotInSet { index: 9, .. }));
    assert!(matches!(err(&[1, 2, 3], &[1, 2, 3], 1), DkgError::ThresholdOutOfRange { threshold: 1, .. }));
    assert!(matches!(err(&[1, 2, 3], &[1, 2, 3], 4), DkgError::ThresholdOutOfRange { threshold: 4, .. }));
    assert!(matches!(err(&[1, 2, 3], &[1, 1, 3], 2), DkgError::DuplicateIndex { index: 1, .. }));
    let plan = ResharePlan::new(old, &[1, 2, 3], &[1, 2, 5], 2).unwrap();
    let wrong = DkgShare { index: 1, secret: shares[1].secret };
    assert_eq!(deal_reshare(&plan, &wrong, &mut rng).err(), Some(DkgError::ShareMismatch { index: 1 }));
    assert!(matches!(deal_reshare(&plan, &shares[3], &mut rng), Err(DkgError::NotInSet { index: 4, .. })));
    assert!(matches!(ReshareReceiver::new(plan.clone(), 4), Err(DkgError::NotInSet { index: 4, .. })));
    let receiver = ReshareReceiver::new(plan.clone(), 5).unwrap();
    assert_eq!(receiver.waiting(), vec![1, 2, 3]);
    assert!(matches!(receiver.finish(), Err(DkgError::NotReady { .. })));
    let (broadcast, privates) = deal_reshare(&plan, &shares[0], &mut rng).unwrap();
    let back: ReshareBroadcast = rmp_serde::from_slice(&rmp_serde::to_vec(&broadcast).unwrap()).unwrap();
    assert_eq!(back, broadcast);
    let (_, private) = &privates[0];
    let back: ResharePrivate = rmp_serde::from_slice(&rmp_serde::to_vec(private).unwrap()).unwrap();
    assert_eq!(&back, private);
    assert!(format!("{private:?}").contains("<redacted>"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]

    /// Random committees: a DKG for n in 2..=7 and t in 1..=n (t = 1 must be
    /// refused), then a resharing to a random new committee.
    #[test]
    fn random_committees_dkg_and_reshare(n in 2u16..=7, t_pick in any::<u16>(), seed in any::<u64>()) {
        let t = 1 + t_pick % n;
        let mut rng = rng(seed);
        if t == 1 {
            let refused = Dkg::start(1, &range(n), t, &mut rng).err();
            let refused_as_expected = matches!(refused, Some(DkgError::ThresholdOutOfRange { threshold: 1, .. }));
            prop_assert!(refused_as_expected, "t = 1 must be refused");
            return Ok(());
        }
        let (shares, old) = honest_keys(&range(n), t, &mut rng);
        assert_shares_combine(&shares, &old);
        let new_n = 2 + (seed % 6) as u16;
        let new_t = 2 + ((seed >> 8) % u64::from(new_n - 1)) as u16;
        let new_members: Vec<u16> = (1..=new_n).map(|i| i + (seed >> 16) as u16 % 3).collect();
        let dealers: Vec<u16> = range(n).into_iter().rev().take(usize::from(t)).collect();
        let plan = ResharePlan::new(old.clone(), &dealers, &new_members, new_t).unwrap();
        let (new_shares, committee) = expect_reshared(reshare(&plan, &shares, &mut rng, |_, _| {}), &old);
        prop_assert_eq!(committee.threshold, new_t);
        assert_shares_combine(&new_shares, &committee);
    }
}
