//! Key files: an authority's `KeyShare`, a relay's `RelayIdentity`, and the
//! cluster's joint public key (every authority's public share with its
//! proof, msgpack; public, so written without the 0600 rule).
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
use crate::crypto::{CryptoError, JointPublicKey, KeyShare, PublicShare, RelayIdentity};

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

/// Writes the joint key file: the authorities' public shares with their proofs.
pub fn write_joint_key(path: &Path, shares: &[PublicShare]) -> Result<(), DataError> {
    let fail = |reason: String| DataError::JointKey { path: path.to_path_buf(), reason };
    let bytes = rmp_serde::to_vec(shares).map_err(|e| fail(format!("cannot encode it: {e}")))?;
    fs::write(path, bytes).map_err(|e| fail(format!("cannot write it: {e}")))
}

/// Reads the joint key file, verifies every authority's proof, and checks
/// that it holds exactly the shares of `authorities` (the configured ones).
pub fn read_joint_key(path: &Path, authorities: &[&str]) -> Result<JointPublicKey, DataError> {
    let fail = |reason: String| DataError::JointKey { path: path.to_path_buf(), reason };
    let bytes = fs::read(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    let shares: Vec<PublicShare> = rmp_serde::from_slice(&bytes).map_err(|e| {
        fail(format!(
            "cannot decode it: {e}; the file is damaged: copy it again from the cluster's `crux-node init` output"
        ))
    })?;
    let joint = JointPublicKey::assemble(&shares).map_err(|e| fail(e.to_string()))?;
    let in_key: Vec<&str> = joint.shares().iter().map(|s| s.authority.as_str()).collect();
    if authorities.len() != in_key.len() || authorities.iter().any(|a| !in_key.contains(a)) {
        return Err(fail(format!(
            "it holds shares of [{}] but the config names authorities [{}]",
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

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn key_share_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authority.key");
        let share = KeyShare::generate("auth-1", &mut OsRng);
        write_key_share(&path, &share).unwrap();
        assert_eq!(mode(&path), 0o600);
        let back = read_key_share(&path).unwrap();
        assert_eq!(back.authority(), "auth-1");
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
        write_key_share(&path, &KeyShare::generate("auth-1", &mut OsRng)).unwrap();
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
        write_key_share(&path, &KeyShare::generate("auth-1", &mut OsRng)).unwrap();
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
