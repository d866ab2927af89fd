//! File helpers shared by every `crux-node init` command: public files,
//! private files created with mode 0600, self-signed TLS certificates
//! (`certs/NAME.crt` public, `keys/NAME.key` private), node configs as YAML
//! with a header, and the name rule for nodes and users. Writes only where
//! its caller says; never prints or logs a key.

use std::path::Path;

use anyhow::{bail, Context};
use serde::Serialize;

use crate::actors::tls::generate_certificate;

/// Writes a public file.
pub(super) fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Writes a private file: created with mode 0600 (and truncated if it exists).
pub(super) fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// The names a certificate for `host` carries besides the node's own.
pub(super) fn hosts_for(host: &str) -> Vec<String> {
    let mut hosts = vec![host.to_string()];
    if host != "127.0.0.1" {
        hosts.push("127.0.0.1".into());
    }
    hosts
}

/// Writes certs/NAME.crt and keys/NAME.key (0600) under `out`; returns their
/// paths relative to `out` and the certificate's PEM.
pub(super) fn certificate(out: &Path, name: &str, host: &str) -> anyhow::Result<(String, String, String)> {
    let cert = generate_certificate(name, &hosts_for(host))?;
    let crt = format!("certs/{name}.crt");
    let key = format!("keys/{name}.key");
    write(&out.join(&crt), &cert.cert_pem)?;
    write_private(&out.join(&key), &cert.key_pem)?;
    Ok((crt, key, cert.cert_pem))
}

/// A node config as YAML, with the header every config `init` writes.
pub(super) fn yaml<T: Serialize>(config: &T) -> anyhow::Result<String> {
    Ok(format!(
        "# Crux node configuration, written by `crux-node init`.\n# Every key can be overridden by an environment variable CRUX__SECTION__KEY,\n# e.g. CRUX__NODE__LISTEN=127.0.0.1:9000. Relative paths are relative to this file.\n{}",
        serde_yaml_ng::to_string(config).context("encoding YAML")?
    ))
}

/// A node or user name: it becomes a file name and a certificate name.
pub(super) fn check_name(what: &str, name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 48
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !ok {
        bail!("{what} name {name:?} is not valid: use 1 to 48 letters, digits, '-' or '_', starting with a letter or digit (e.g. bob-smith)");
    }
    Ok(())
}
