#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
use super::*;
use crate::crypto::deal_for_tests;
use rand::rngs::OsRng;

fn setup() -> (Vec<KeyShare>, JointPublicKey, CommitteeChange) {
    let (shares, joint) = deal_for_tests(&["a1", "a2", "a3"], 2, 0, &mut OsRng).unwrap();
    let change = CommitteeChange {
        from_epoch: 0,
        from_key: joint.fingerprint(),
        kind: ChangeKind::Add,
        subject: Some("a4".into()),
        threshold: 3,
        dealers: vec![test_endpoint("a1", 1), test_endpoint("a2", 2), test_endpoint("a3", 3)],
        members: vec![test_endpoint("a1", 1), test_endpoint("a2", 2), test_endpoint("a3", 3), test_endpoint("a4", 4)],
    };
    (shares, joint, change)
}

#[test]
fn a_change_needs_t_valid_approvals_of_current_members() {
    let (shares, joint, change) = setup();
    change.check(&joint).unwrap();
    let one = vec![("a1".to_string(), change.approve(&shares[0], &mut OsRng))];
    let err = change.check_approved(&joint, &one).unwrap_err();
    assert!(err.to_string().contains("approved by 1 (a1); the current threshold is 2"), "{err}");
    let mut two = one.clone();
    two.push(("a3".to_string(), change.approve(&shares[2], &mut OsRng)));
    assert_eq!(change.check_approved(&joint, &two).unwrap(), vec!["a1".to_string(), "a3".to_string()]);
    // a signature under another name, or over another change, does not count
    let forged = vec![two[0].clone(), ("a2".to_string(), two[1].1)];
    assert!(matches!(change.check_approved(&joint, &forged), Err(CommitteeError::NotApproved(_))));
    let mut other = change.clone();
    other.threshold = 2;
    assert!(matches!(other.check_approved(&joint, &two), Err(CommitteeError::NotApproved(_))));
    let twice = vec![two[0].clone(), two[0].clone()];
    assert!(change.check_approved(&joint, &twice).is_err());
}

#[test]
fn a_change_must_fit_the_current_committee() {
    let (_, joint, change) = setup();
    let mut stale = change.clone();
    stale.from_epoch = 1;
    assert!(matches!(stale.check(&joint), Err(CommitteeError::WrongCommittee { .. })));
    let mut few = change.clone();
    few.dealers.truncate(1);
    assert!(few.check(&joint).unwrap_err().to_string().contains("1 dealers, the current threshold is 2"));
    let mut stranger = change.clone();
    stranger.dealers[0] = test_endpoint("a9", 1);
    assert!(stranger.check(&joint).is_err());
    let mut wrong_members = change.clone();
    wrong_members.members.pop();
    assert!(wrong_members.check(&joint).is_err(), "an add that adds no one");
    let mut t5 = change.clone();
    t5.threshold = 5;
    assert!(t5.check(&joint).is_err());
    let mut rotate = change.clone();
    rotate.kind = ChangeKind::Rotate;
    rotate.subject = None;
    rotate.members.pop();
    rotate.check(&joint).unwrap();
    rotate.dealers.pop();
    assert!(rotate.check(&joint).is_err(), "a rotation by some members only");
}

#[test]
fn a_transition_needs_t_old_signatures_and_the_next_epoch() {
    let (shares, joint, _) = setup();
    let (_, next) = deal_for_tests(&["a1", "a2", "a3"], 2, 1, &mut OsRng).unwrap();
    let transition = Transition {
        from_epoch: 0,
        from_key: joint.fingerprint(),
        committee: next.clone(),
        endpoints: vec![test_endpoint("a1", 1), test_endpoint("a2", 2), test_endpoint("a3", 3)],
    };
    let bytes = transition.signed_bytes();
    let sign = |i: usize| (shares[i].authority().to_string(), shares[i].sign_statement(&bytes, &mut OsRng));
    let signed = SignedTransition { transition: transition.clone(), signatures: vec![sign(0), sign(1)] };
    assert_eq!(signed.verify(&joint).unwrap(), &next);
    let short = SignedTransition { transition: transition.clone(), signatures: vec![sign(0)] };
    assert!(short.verify(&joint).is_err());
    // the new committee's own members cannot vouch for it
    let (new_shares, _) = deal_for_tests(&["a1", "a2", "a3"], 2, 1, &mut OsRng).unwrap();
    let self_signed = SignedTransition {
        transition: transition.clone(),
        signatures: new_shares[..2]
            .iter()
            .map(|s| (s.authority().to_string(), s.sign_statement(&bytes, &mut OsRng)))
            .collect(),
    };
    assert!(self_signed.verify(&joint).is_err());
    // a node already at epoch 1 refuses it
    assert!(signed.verify(&next).is_err());
    let mut no_address = signed.clone();
    no_address.transition.endpoints.pop();
    assert!(no_address.verify(&joint).unwrap_err().to_string().contains("a3 has no address"));
}

#[test]
fn handovers_merge_to_the_most_spent_and_every_record() {
    let (shares, joint, _) = setup();
    let id = |b: u8| QueryId([b; 16]);
    let h1 = LedgerHandover::new(
        1,
        "a1",
        &HashMap::from([("demo".to_string(), Epsilon(300_000))]),
        &HashMap::from([(id(1), 10), (id(2), 20)]),
    )
    .sign(&shares[0], &mut OsRng);
    let h2 = LedgerHandover::new(
        1,
        "a2",
        &HashMap::from([("demo".to_string(), Epsilon(500_000))]),
        &HashMap::from([(id(3), 30)]),
    )
    .sign(&shares[1], &mut OsRng);
    let dealers = vec!["a1".to_string(), "a2".to_string()];
    let (spent, seen) = merge_handovers(&joint, &dealers, 1, &[h1.clone(), h2.clone()]).unwrap();
    assert_eq!(spent["demo"], Epsilon(500_000));
    assert_eq!(seen.len(), 3);
    assert!(merge_handovers(&joint, &dealers, 1, std::slice::from_ref(&h1)).is_err(), "a missing dealer");
    assert!(merge_handovers(&joint, &dealers, 2, &[h1.clone(), h2.clone()]).is_err(), "another epoch");
    let mut lowered = h2.clone();
    lowered.handover.spent[0].1 = 0;
    let err = merge_handovers(&joint, &dealers, 1, &[h1, lowered]).unwrap_err();
    assert!(err.to_string().contains("a2: the signature does not match"), "{err}");
}
