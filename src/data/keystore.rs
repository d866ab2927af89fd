//! Key files: an authority's `KeyShare`, a relay's `RelayIdentity`, and the
//! committee file (epoch, threshold, every member's verification key and
//! the joint key, as JSON; public, so written without the 0600 rule).
//!
//! Input: key objects from `crypto` (writing) or files on disk (reading).
//! Output: files created with mode 0600, written to a temporary file in the
//! same directory and renamed over the target, so a crash never leaves a
//! half-written key. Reading refuses files readable or writable by group or
//! others (`KeyFilePermissions`, fix with `chmod 600`).
//!
//! Formats: a key share file holds `KeyShare::to_bytes` (binary, versioned
//! with the `CRUXKEY1` magic). A relay identity file holds the 32-byte
//! ed25519 seed as 64 lowercase hex digits and a newline (text, so operators
//! can back it up by copy-paste). Secrets are never logged.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::error::DataError;
use crate::crypto::{CryptoError, JointPublicKey, KeyShare, Member, RelayIdentity};

/// Largest key file read (a key share with a long id is far smaller).
const MAX_KEY_FILE_LEN: u64 = 64 * 1024;

fn key_err<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(std::io::Error) -> DataError + 'a {
    move |source: std::io::Error| DataError::KeyFile { path: path.to_path_buf(), action, reason: source.to_string() }
}

/// Writes `bytes` to `path` with mode 0600 via a temporary file and rename.
fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let file_name = path.file_name().ok_or_else(|| DataError::KeyFile {
        path: path.to_path_buf(),
        action: "choosing a file name",
        reason: "path has no file name".to_string(),
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp: PathBuf = path.with_file_name(tmp_name);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(key_err(&tmp, "creating"))?;
        file.write_all(bytes).map_err(key_err(&tmp, "writing"))?;
        file.sync_all().map_err(key_err(&tmp, "syncing"))?;
        drop(file);
        fs::rename(&tmp, path).map_err(key_err(path, "renaming the temporary file over"))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads a key file after checking that only its owner may access it.
fn read_secret_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, DataError> {
    let meta = fs::metadata(path).map_err(key_err(path, "reading"))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(DataError::KeyFilePermissions { path: path.to_path_buf(), mode });
    }
    if meta.len() > MAX_KEY_FILE_LEN {
        return Err(DataError::KeyFileCorrupt {
            path: path.to_path_buf(),
            reason: CryptoError::CorruptKey { reason: format!("file is {} bytes, too large for a key", meta.len()) },
        });
    }
    fs::read(path).map(Zeroizing::new).map_err(key_err(path, "reading"))
}

/// Writes an authority key share (binary `KeyShare::to_bytes`), mode 0600.
pub fn write_key_share(path: &Path, share: &KeyShare) -> Result<(), DataError> {
    let bytes = Zeroizing::new(share.to_bytes());
    write_secret_file(path, &bytes)
}

/// Reads and checks an authority key share.
pub fn read_key_share(path: &Path) -> Result<KeyShare, DataError> {
    let bytes = read_secret_file(path)?;
    KeyShare::from_bytes(&bytes)
        .map_err(|source| DataError::KeyFileCorrupt { path: path.to_path_buf(), reason: source })
}

/// Writes a relay identity as its 32-byte seed in hex plus a newline, mode 0600.
pub fn write_relay_identity(path: &Path, identity: &RelayIdentity) -> Result<(), DataError> {
    let seed = Zeroizing::new(identity.seed());
    let mut text = Zeroizing::new(hex::encode(*seed));
    text.push('\n');
    write_secret_file(path, text.as_bytes())
}

/// Reads a relay identity written by `write_relay_identity`.
pub fn read_relay_identity(path: &Path) -> Result<RelayIdentity, DataError> {
    let bytes = read_secret_file(path)?;
    let corrupt = |reason: String| DataError::KeyFileCorrupt {
        path: path.to_path_buf(),
        reason: CryptoError::CorruptKey { reason },
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| corrupt("not text; expected 64 hex digits".into()))?;
    let seed = Zeroizing::new(
        hex::decode(text.trim()).map_err(|e| corrupt(format!("not hex ({e}); expected 64 hex digits")))?,
    );
    RelayIdentity::from_seed(&seed)
        .map_err(|source| DataError::KeyFileCorrupt { path: path.to_path_buf(), reason: source })
}

/// The committee file's format tag; a file with another is refused.
pub const COMMITTEE_FORMAT: &str = "crux-committee/v1";

/// The committee file as JSON: public, so an admin can read, compare and
/// copy it (`{"format", "epoch", "threshold", "members": [{"name", "index",
/// "key"}], "joint_key"}`, keys as hex of compressed ristretto255 points).
#[derive(serde::Serialize, serde::Deserialize)]
struct CommitteeFile {
    format: String,
    epoch: u64,
    threshold: u16,
    members: Vec<CommitteeMember>,
    joint_key: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CommitteeMember {
    name: String,
    index: u16,
    key: String,
}

/// Encodes a committee key as the committee file's JSON text.
pub fn committee_json(joint: &JointPublicKey) -> String {
    let file = CommitteeFile {
        format: COMMITTEE_FORMAT.to_string(),
        epoch: joint.epoch(),
        threshold: joint.threshold(),
        members: joint
            .members()
            .iter()
            .map(|m| CommitteeMember {
                name: m.authority.clone(),
                index: m.index,
                key: hex::encode(m.point.compress().as_bytes()),
            })
            .collect(),
        joint_key: joint.fingerprint(),
    };
    let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
    text.push('\n');
    text
}

/// Decodes and checks committee JSON (`JointPublicKey::new`'s checks).
pub fn parse_committee(text: &str) -> Result<JointPublicKey, String> {
    let file: CommitteeFile = serde_json::from_str(text).map_err(|e| format!("cannot decode it: {e}"))?;
    if file.format != COMMITTEE_FORMAT {
        return Err(format!("its format is {:?}, expected {COMMITTEE_FORMAT:?}", file.format));
    }
    let point = |what: &str, text: &str| {
        let bytes = hex::decode(text).map_err(|e| format!("{what} is not hex: {e}"))?;
        crate::crypto::elgamal::decode_point(&bytes, "committee key").map_err(|e| format!("{what}: {e}"))
    };
    let members = file
        .members
        .iter()
        .map(|m| Ok(Member { authority: m.name.clone(), index: m.index, point: point(&m.name, &m.key)? }))
        .collect::<Result<Vec<Member>, String>>()?;
    JointPublicKey::new(file.epoch, file.threshold, members, point("joint_key", &file.joint_key)?)
        .map_err(|e| e.to_string())
}

/// Writes the committee file (public: no 0600 rule) via a temporary file.
pub fn write_joint_key(path: &Path, joint: &JointPublicKey) -> Result<(), DataError> {
    let fail = |reason: String| DataError::JointKey { path: path.to_path_buf(), reason };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, committee_json(joint)).map_err(|e| fail(format!("cannot write it: {e}")))?;
    fs::rename(&tmp, path).map_err(|e| fail(format!("cannot write it: {e}")))
}

/// Reads and checks the committee file (without comparing its members to
/// a configuration: after a committee change they differ).
pub fn read_committee(path: &Path) -> Result<JointPublicKey, DataError> {
    let fail = |reason: String| DataError::JointKey { path: path.to_path_buf(), reason };
    let text = fs::read_to_string(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    parse_committee(&text)
        .map_err(|reason| fail(format!("{reason}; the file is damaged: copy it again from an authority's folder")))
}

/// Reads the committee file, checks it, and checks that its members are
/// exactly `authorities` (the configured ones).
pub fn read_joint_key(path: &Path, authorities: &[&str]) -> Result<JointPublicKey, DataError> {
    let fail = |reason: String| DataError::JointKey { path: path.to_path_buf(), reason };
    let text = fs::read_to_string(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    let joint = parse_committee(&text)
        .map_err(|reason| fail(format!("{reason}; the file is damaged: copy it again from an authority's folder")))?;
    let in_key: Vec<&str> = joint.members().iter().map(|m| m.authority.as_str()).collect();
    if authorities.len() != in_key.len() || authorities.iter().any(|a| !in_key.contains(a)) {
        return Err(fail(format!(
            "it holds the committee [{}] but the config names authorities [{}]",
            in_key.join(", "),
            authorities.join(", ")
        )));
    }
    Ok(joint)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::rngs::OsRng;

    fn test_share() -> KeyShare {
        crate::crypto::deal_for_tests(&["auth-1"], 1, 0, &mut OsRng).unwrap().0.remove(0)
    }

    #[test]
    fn committee_file_round_trips_and_tampering_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("committee.json");
        let (_, joint) = crate::crypto::deal_for_tests(&["a1", "a2", "a3"], 2, 5, &mut OsRng).unwrap();
        write_joint_key(&path, &joint).unwrap();
        assert_eq!(read_joint_key(&path, &["a3", "a1", "a2"]).unwrap(), joint);
        let err = read_joint_key(&path, &["a1", "a2"]).unwrap_err().to_string();
        assert!(err.contains("config names authorities"), "{err}");
        let text = fs::read_to_string(&path).unwrap();
        let other = hex::encode((joint.members()[0].point + joint.point()).compress().as_bytes());
        fs::write(&path, text.replace(&hex::encode(joint.members()[0].point.compress().as_bytes()), &other)).unwrap();
        let err = read_joint_key(&path, &["a1", "a2", "a3"]).unwrap_err().to_string();
        assert!(err.contains("inconsistent") && err.contains("copy it again"), "{err}");
        fs::write(&path, text.replace(COMMITTEE_FORMAT, "crux-committee/v0")).unwrap();
        assert!(read_joint_key(&path, &["a1", "a2", "a3"]).unwrap_err().to_string().contains("format"));
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn key_share_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authority.key");
        let share = test_share();
        write_key_share(&path, &share).unwrap();
        assert_eq!(mode(&path), 0o600);
        let back = read_key_share(&path).unwrap();
        assert_eq!(back.authority(), "auth-1");
        assert_eq!(back.index(), 1);
        assert_eq!(back.public_point(), share.public_point());
        // overwrite keeps working and leaves no temporary files
        write_key_share(&path, &share).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn relay_identity_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.key");
        let id = RelayIdentity::generate(&mut OsRng);
        write_relay_identity(&path, &id).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::read_to_string(&path).unwrap().trim().len(), 64);
        assert_eq!(read_relay_identity(&path).unwrap().public_key(), id.public_key());
    }

    #[test]
    fn truncated_files_are_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authority.key");
        write_key_share(&path, &test_share()).unwrap();
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        let err = read_key_share(&path).unwrap_err();
        assert!(matches!(err, DataError::KeyFileCorrupt { .. }), "{err}");
        assert!(err.to_string().contains("authority.key"), "{err}");

        let rpath = dir.path().join("relay.key");
        write_relay_identity(&rpath, &RelayIdentity::generate(&mut OsRng)).unwrap();
        let text = fs::read_to_string(&rpath).unwrap();
        fs::write(&rpath, &text[..40]).unwrap();
        let err = read_relay_identity(&rpath).unwrap_err();
        assert!(matches!(err, DataError::KeyFileCorrupt { .. }), "{err}");
        assert!(err.to_string().contains("relay.key"), "{err}");
    }

    #[test]
    fn wider_permissions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authority.key");
        write_key_share(&path, &test_share()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_key_share(&path).unwrap_err();
        assert!(matches!(err, DataError::KeyFilePermissions { mode: 0o644, .. }), "{err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.key");
        let err = read_key_share(&path).unwrap_err();
        assert!(err.to_string().contains("nope.key"), "{err}");
    }
}
