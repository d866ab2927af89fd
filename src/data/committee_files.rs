//! Files of a committee change, as JSON an operator can read: the change
//! with its approvals (`crux-change/v1`, passed from operator to operator)
//! and the signed transition (`crux-transition/v1`, written by the
//! ceremony and kept beside the committee file). Also where an authority's
//! pending share and transition wait for its running node to switch.
//!
//! Signatures and points are hex; the signed bytes are
//! `protocol::committee`'s, never this JSON.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::keystore::{committee_json, parse_committee};
use crate::crypto::AuthoritySignature;
use crate::protocol::committee::{CommitteeChange, Endpoint, SignedTransition, Transition};

pub const CHANGE_FORMAT: &str = "crux-change/v1";
pub const TRANSITION_FORMAT: &str = "crux-transition/v1";

#[derive(Serialize, Deserialize)]
struct Signature {
    authority: String,
    signature: String,
}

fn to_hex(list: &[(String, AuthoritySignature)]) -> Vec<Signature> {
    list.iter().map(|(a, s)| Signature { authority: a.clone(), signature: hex::encode(s.to_bytes()) }).collect()
}

fn from_hex(list: &[Signature]) -> Result<Vec<(String, AuthoritySignature)>, String> {
    list.iter()
        .map(|s| {
            let bytes =
                hex::decode(&s.signature).map_err(|e| format!("{}'s signature is not hex: {e}", s.authority))?;
            let sig =
                AuthoritySignature::from_bytes(&bytes).map_err(|e| format!("{}'s signature: {e}", s.authority))?;
            Ok((s.authority.clone(), sig))
        })
        .collect()
}

#[derive(Serialize, Deserialize)]
struct ChangeFile {
    format: String,
    change: CommitteeChange,
    approvals: Vec<Signature>,
}

/// A change and the approvals collected so far.
#[derive(Clone, Debug)]
pub struct ApprovedChange {
    pub change: CommitteeChange,
    pub approvals: Vec<(String, AuthoritySignature)>,
}

fn read_text(path: &Path, what: &str) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
}

/// Writes `text` to `path` through a temporary file in the same folder.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, text)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

pub fn read_change(path: &Path) -> Result<ApprovedChange, String> {
    let text = read_text(path, "change file")?;
    let file: ChangeFile =
        serde_json::from_str(&text).map_err(|e| format!("{} is not a change file: {e}", path.display()))?;
    if file.format != CHANGE_FORMAT {
        return Err(format!("{}: format {:?}, expected {CHANGE_FORMAT:?}", path.display(), file.format));
    }
    Ok(ApprovedChange { change: file.change, approvals: from_hex(&file.approvals)? })
}

pub fn write_change(path: &Path, change: &ApprovedChange) -> Result<(), String> {
    let file = ChangeFile {
        format: CHANGE_FORMAT.to_string(),
        change: change.change.clone(),
        approvals: to_hex(&change.approvals),
    };
    let mut text = serde_json::to_string_pretty(&file).map_err(|e| e.to_string())?;
    text.push('\n');
    write_atomic(path, &text)
}

#[derive(Serialize, Deserialize)]
struct TransitionFile {
    format: String,
    from_epoch: u64,
    from_key: String,
    committee: serde_json::Value,
    endpoints: Vec<Endpoint>,
    signatures: Vec<Signature>,
}

/// The signed transition as JSON text.
pub fn transition_json(signed: &SignedTransition) -> Result<String, String> {
    let t = &signed.transition;
    let committee = serde_json::from_str(&committee_json(&t.committee)).map_err(|e| e.to_string())?;
    let file = TransitionFile {
        format: TRANSITION_FORMAT.to_string(),
        from_epoch: t.from_epoch,
        from_key: t.from_key.clone(),
        committee,
        endpoints: t.endpoints.clone(),
        signatures: to_hex(&signed.signatures),
    };
    let mut text = serde_json::to_string_pretty(&file).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(text)
}

/// Reads a transition file (its signatures are checked by the caller,
/// `SignedTransition::verify`, against the committee it follows).
pub fn read_transition(path: &Path) -> Result<SignedTransition, String> {
    let text = read_text(path, "transition file")?;
    let file: TransitionFile =
        serde_json::from_str(&text).map_err(|e| format!("{} is not a transition file: {e}", path.display()))?;
    if file.format != TRANSITION_FORMAT {
        return Err(format!("{}: format {:?}, expected {TRANSITION_FORMAT:?}", path.display(), file.format));
    }
    let committee = parse_committee(&file.committee.to_string()).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(SignedTransition {
        transition: Transition {
            from_epoch: file.from_epoch,
            from_key: file.from_key,
            committee,
            endpoints: file.endpoints,
        },
        signatures: from_hex(&file.signatures)?,
    })
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    path.with_file_name(format!("{name}{suffix}"))
}

/// Where the ceremony leaves an authority's new share for its node.
pub fn next_share_path(key_share: &Path) -> PathBuf {
    beside(key_share, ".next")
}

/// Where the ceremony leaves the signed transition for the authority's node.
pub fn next_transition_path(key_share: &Path) -> PathBuf {
    beside(key_share, ".transition-next.json")
}

/// The last transition a node switched to, beside its committee file
/// (where members outside the configuration are found after a restart).
pub fn transition_path(joint_key: &Path) -> PathBuf {
    beside(joint_key, ".transition.json")
}

/// Overwrites a secret file with zeros, then removes it.
pub fn erase(path: &Path) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot erase {}: {e}", path.display());
    let len = fs::metadata(path).map_err(fail)?.len();
    fs::write(path, vec![0u8; usize::try_from(len).unwrap_or(0)]).map_err(fail)?;
    fs::remove_file(path).map_err(fail)
}
