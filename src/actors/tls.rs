//! Node identities and certificate pinning for mutual TLS over QUIC.
//!
//! Input: PEM certificates and keys read by the config layer (or generated
//! here with `generate_certificate` for `crux-node init`), and the list of
//! pinned peers. Output: rustls server/client configs for `transport`, and the
//! mapping from a peer's presented certificate back to its pinned name.
//!
//! Trust is by pin only: a peer is accepted if and only if its end-entity
//! certificate is byte-for-byte one of the pinned certificates. CA chains,
//! names and validity dates are ignored; handshake signatures are still
//! verified with the ring provider. Nothing here logs or prints key material.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};

use super::error::TransportError;

/// ALPN protocol identifier spoken by Crux nodes.
pub const ALPN: &[u8] = b"crux/1";

/// A freshly generated self-signed certificate and its private key, in PEM.
pub struct NodeCertificate {
    pub cert_pem: String,
    pub key_pem: String,
}

impl fmt::Debug for NodeCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeCertificate").field("cert_pem", &self.cert_pem).field("key_pem", &"<redacted>").finish()
    }
}

/// The DNS name used for a node in TLS (SNI and certificate SAN): the node
/// name lowercased, every character outside `a-z0-9-` replaced by `-`,
/// trimmed of leading/trailing `-`, cut to 63 characters, prefixed with
/// `node-` if it would otherwise start with a digit or be empty.
pub fn server_name_for(node_name: &str) -> String {
    let mapped: String = node_name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches('-');
    let mut name = match trimmed.chars().next() {
        None => "node".to_string(),
        Some(first) if first.is_ascii_digit() => format!("node-{trimmed}"),
        Some(_) => trimmed.to_string(),
    };
    name.truncate(63);
    let name = name.trim_end_matches('-').to_string();
    name
}

/// Self-signed certificate for a node name (e.g. "authority-1", "processor",
/// "relay-2", "user-alice"), with SANs: the node's DNS name
/// (`server_name_for`), "localhost", and the given IPs/hostnames.
pub fn generate_certificate(node_name: &str, hosts: &[String]) -> Result<NodeCertificate, TransportError> {
    let mut sans = vec![server_name_for(node_name), "localhost".to_string()];
    for host in hosts {
        if ServerName::try_from(host.as_str()).is_err() {
            return Err(TransportError::Certificate {
                reason: format!("`{host}` is neither an IP address nor a DNS name; fix the host list of {node_name}"),
            });
        }
        if !sans.contains(host) {
            sans.push(host.clone());
        }
    }
    let mut params = rcgen::CertificateParams::new(sans)
        .map_err(|err| TransportError::Certificate { reason: format!("invalid host name for {node_name}: {err}") })?;
    params.distinguished_name.push(rcgen::DnType::CommonName, node_name);
    let key = rcgen::KeyPair::generate().map_err(|err| TransportError::Certificate {
        reason: format!("key generation for {node_name} failed: {err}"),
    })?;
    let cert = params.self_signed(&key).map_err(|err| TransportError::Certificate {
        reason: format!("signing the certificate of {node_name} failed: {err}"),
    })?;
    Ok(NodeCertificate { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

fn parse_certificate(name: &str, cert_pem: &str) -> Result<CertificateDer<'static>, TransportError> {
    CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|err| TransportError::Certificate { reason: format!("no PEM certificate for {name}: {err}") })
}

fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// This node's certificate chain and private key.
pub struct Identity {
    pub name: String,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Parses a PEM certificate chain (end-entity first) and a PEM private key.
    pub fn from_pem(name: &str, cert_pem: &str, key_pem: &str) -> Result<Self, TransportError> {
        let certs =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>().map_err(|err| {
                TransportError::Certificate { reason: format!("certificate PEM of {name} is malformed: {err}") }
            })?;
        if certs.is_empty() {
            return Err(TransportError::Certificate {
                reason: format!("certificate PEM of {name} holds no certificate"),
            });
        }
        // The key error is not shown: it could echo key bytes.
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| TransportError::Certificate {
            reason: format!("private key PEM of {name} is missing or malformed"),
        })?;
        let identity = Identity { name: name.to_string(), certs, key };
        // Check that the key is usable and matches the certificate now rather
        // than at the first handshake.
        let provider = rustls::crypto::ring::default_provider();
        let certified =
            rustls::sign::CertifiedKey::from_der(identity.certs.clone(), identity.key.clone_key(), &provider).map_err(
                |err| TransportError::Certificate {
                    reason: format!("private key of {name} does not fit its certificate: {err}"),
                },
            )?;
        drop(certified);
        Ok(identity)
    }

    /// DER bytes of the end-entity certificate (what peers pin).
    pub fn certificate_der(&self) -> &[u8] {
        // `from_pem` guarantees at least one certificate.
        self.certs.first().map(|c| c.as_ref()).unwrap_or(&[])
    }

    /// The pin other nodes should hold for this identity.
    pub fn pinned(&self) -> PinnedPeer {
        PinnedPeer { name: self.name.clone(), cert_der: self.certificate_der().to_vec() }
    }

    /// SHA-256 of the end-entity certificate, hex.
    pub fn fingerprint_hex(&self) -> String {
        fingerprint(self.certificate_der())
    }

    /// Key for QUIC stateless-reset tokens, derived one-way from the private
    /// key, so that a restarted node can tell peers at once that their old
    /// connection is gone (instead of them waiting for the idle timeout).
    pub(crate) fn stateless_reset_secret(&self) -> [u8; 32] {
        self.derive_secret(b"crux/1 QUIC stateless reset key\0")
    }

    /// Key for the connection-ID generator, derived like the reset key: a
    /// restarted node must recognise its old connection IDs to reset them.
    pub(crate) fn connection_id_key(&self) -> u64 {
        let secret = self.derive_secret(b"crux/1 QUIC connection id key\0");
        u64::from_le_bytes(secret.first_chunk::<8>().copied().unwrap_or_default())
    }

    fn derive_secret(&self, label: &[u8]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(label);
        hasher.update(self.key.secret_der());
        hasher.finalize().into()
    }

    pub(crate) fn cert_chain(&self) -> Vec<CertificateDer<'static>> {
        self.certs.clone()
    }

    pub(crate) fn private_key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity { name: self.name.clone(), certs: self.certs.clone(), key: self.key.clone_key() }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("name", &self.name)
            .field("fingerprint", &self.fingerprint_hex())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A peer trusted by the exact bytes of its certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct PinnedPeer {
    pub name: String,
    pub cert_der: Vec<u8>,
}

impl PinnedPeer {
    /// Pins the first certificate in `cert_pem` under `name`.
    pub fn from_pem(name: &str, cert_pem: &str) -> Result<Self, TransportError> {
        let der = parse_certificate(name, cert_pem)?;
        Ok(PinnedPeer { name: name.to_string(), cert_der: der.as_ref().to_vec() })
    }

    /// SHA-256 of the pinned certificate, hex.
    pub fn fingerprint_hex(&self) -> String {
        fingerprint(&self.cert_der)
    }
}

impl fmt::Debug for PinnedPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedPeer").field("name", &self.name).field("fingerprint", &self.fingerprint_hex()).finish()
    }
}

/// Name of the pinned peer whose certificate is `end_entity`, if any.
pub fn pinned_name<'a>(peers: &'a [PinnedPeer], end_entity: &[u8]) -> Option<&'a str> {
    peers.iter().find(|p| p.cert_der.as_slice() == end_entity).map(|p| p.name.as_str())
}

/// Accepts exactly the pinned certificates; checks handshake signatures.
#[derive(Debug)]
struct PinVerifier {
    peers: Vec<PinnedPeer>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinVerifier {
    fn new(peers: Vec<PinnedPeer>) -> Self {
        PinVerifier { peers, algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms }
    }

    fn check(&self, end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        match pinned_name(&self.peers, end_entity.as_ref()) {
            Some(_) => Ok(()),
            None => Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)),
        }
    }
}

impl ClientCertVerifier for PinVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity).map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity).map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Server side: presents `identity`, requires a client certificate that is
/// one of `peers`. TLS 1.3 only (QUIC requires it), ALPN `crux/1`.
pub fn server_config(identity: &Identity, peers: &[PinnedPeer]) -> Result<rustls::ServerConfig, TransportError> {
    let verifier = Arc::new(PinVerifier::new(peers.to_vec()));
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.cert_chain(), identity.private_key())?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// Client side: presents `identity`, accepts only the server certificate of
/// `peer`. TLS 1.3 only, ALPN `crux/1`.
pub fn client_config(identity: &Identity, peer: &PinnedPeer) -> Result<rustls::ClientConfig, TransportError> {
    let verifier = Arc::new(PinVerifier::new(vec![peer.clone()]));
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(identity.cert_chain(), identity.private_key())?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn server_names_are_dns_labels() {
        assert_eq!(server_name_for("authority-1"), "authority-1");
        assert_eq!(server_name_for("User_Alice"), "user-alice");
        assert_eq!(server_name_for("1relay"), "node-1relay");
        assert_eq!(server_name_for("--"), "node");
        assert_eq!(server_name_for(&"x".repeat(100)).len(), 63);
    }

    #[test]
    fn generated_certificate_round_trips_and_pins() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cert = generate_certificate("relay 2", &["127.0.0.1".into(), "relay.example".into()]).unwrap();
        let identity = Identity::from_pem("relay 2", &cert.cert_pem, &cert.key_pem).unwrap();
        let pin = PinnedPeer::from_pem("relay 2", &cert.cert_pem).unwrap();
        assert_eq!(identity.certificate_der(), pin.cert_der.as_slice());
        assert_eq!(identity.fingerprint_hex(), pin.fingerprint_hex());
        assert_eq!(pin.fingerprint_hex().len(), 64);
        assert_eq!(pinned_name(std::slice::from_ref(&pin), &pin.cert_der), Some("relay 2"));
        let debug = format!("{identity:?}");
        assert!(!debug.contains("PRIVATE"));
        assert!(!debug.contains(&cert.key_pem));
        server_config(&identity, std::slice::from_ref(&pin)).unwrap();
        client_config(&identity, &pin).unwrap();
    }

    #[test]
    fn mismatched_key_and_garbage_are_rejected() {
        let a = generate_certificate("a", &[]).unwrap();
        let b = generate_certificate("b", &[]).unwrap();
        assert!(Identity::from_pem("a", &a.cert_pem, &b.key_pem).is_err());
        assert!(Identity::from_pem("a", "garbage", &a.key_pem).is_err());
        assert!(Identity::from_pem("a", &a.cert_pem, "garbage").is_err());
        assert!(PinnedPeer::from_pem("a", "").is_err());
        assert!(generate_certificate("a", &["not a host!".into()]).is_err());
    }
}
