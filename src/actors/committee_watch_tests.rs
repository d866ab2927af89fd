//! `switch_files` on real files: a pending change is taken over whether the
//! committee file still names the old committee or already the new one.

use curve25519_dalek::ristretto::RistrettoPoint;
use rand::rngs::OsRng;

use super::{previous_share_path, switch_files, WatchedFiles};
use crate::crypto::{deal_for_tests, JointPublicKey};
use crate::data::committee_files::{next_share_path, next_transition_path, transition_json, write_atomic};
use crate::data::keystore::{write_joint_key, write_key_share};
use crate::data::read_key_share;
use crate::protocol::committee::{test_endpoint, SignedTransition, Transition};

const NAMES: [&str; 2] = ["a1", "a2"];

/// Epoch 0 and its successor (a rotation), the successor's transition
/// signed by both old members, and a1's files with the change pending.
fn pending(dir: &std::path::Path) -> (WatchedFiles, JointPublicKey, JointPublicKey, RistrettoPoint) {
    let (old_shares, old) = deal_for_tests(&NAMES, 2, 0, &mut OsRng).unwrap();
    let (new_shares, new) = deal_for_tests(&NAMES, 2, 1, &mut OsRng).unwrap();
    let transition = Transition {
        from_epoch: 0,
        from_key: old.fingerprint(),
        committee: new.clone(),
        endpoints: NAMES.iter().zip(1u16..).map(|(n, i)| test_endpoint(n, i)).collect(),
    };
    let bytes = transition.signed_bytes();
    let signatures =
        old_shares.iter().map(|s| (s.authority().to_string(), s.sign_statement(&bytes, &mut OsRng))).collect();
    let signed = SignedTransition { transition, signatures };
    let files =
        WatchedFiles { name: "a1".into(), key_share: dir.join("a1-share.bin"), joint_key: dir.join("committee.json") };
    write_key_share(&files.key_share, &old_shares[0]).unwrap();
    write_key_share(&next_share_path(&files.key_share), &new_shares[0]).unwrap();
    write_atomic(&next_transition_path(&files.key_share), &transition_json(&signed).unwrap()).unwrap();
    (files, old, new, new_shares[0].public_point())
}

#[test]
fn a_pending_change_is_taken_over_from_the_old_committee() {
    let dir = tempfile::tempdir().unwrap();
    let (files, old, new, share) = pending(dir.path());
    write_joint_key(&files.joint_key, &old).unwrap();
    let (installed, signed) = switch_files(&files, &old).unwrap().unwrap();
    assert_eq!(signed.transition.committee, new);
    assert_eq!(installed.unwrap().public_point(), share);
    assert_eq!(read_key_share(&files.key_share).unwrap().epoch(), 1);
    assert_eq!(read_key_share(&previous_share_path(&files.key_share)).unwrap().epoch(), 0);
    assert!(!next_transition_path(&files.key_share).exists());
    // done: nothing pending any more
    assert!(switch_files(&files, &new).unwrap().is_none());
}

/// The local cluster shares one committee file: another node may have
/// written the new committee into it before this one starts.
#[test]
fn a_pending_change_is_taken_over_when_the_committee_file_is_already_new() {
    let dir = tempfile::tempdir().unwrap();
    let (files, _, new, share) = pending(dir.path());
    write_joint_key(&files.joint_key, &new).unwrap();
    let (installed, _) = switch_files(&files, &new).unwrap().unwrap();
    assert_eq!(installed.unwrap().public_point(), share);
    assert_eq!(read_key_share(&files.key_share).unwrap().epoch(), 1);
    assert!(!next_share_path(&files.key_share).exists());
}

#[test]
fn a_leftover_transition_without_a_share_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (files, _, new, _) = pending(dir.path());
    std::fs::remove_file(next_share_path(&files.key_share)).unwrap();
    assert!(switch_files(&files, &new).unwrap().is_none());
    assert!(!next_transition_path(&files.key_share).exists());
    assert_eq!(read_key_share(&files.key_share).unwrap().epoch(), 0, "the share in place stays");
}
