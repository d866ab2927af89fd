//! Relay identity keys (ed25519, via ed25519-dalek) and signatures over
//! (context, bytes). The signed message is domain-separated and
//! length-prefixed so that a signature for one context never verifies for
//! another. Secret keys are wiped on drop and never printed.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use super::error::CryptoError;

const DOMAIN: &[u8] = b"crux-relay-signature-v1";

fn signed_message(context: &[u8], message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(DOMAIN.len() + 16 + context.len() + message.len());
    out.extend_from_slice(DOMAIN);
    out.extend_from_slice(&(context.len() as u64).to_be_bytes());
    out.extend_from_slice(context);
    out.extend_from_slice(&(message.len() as u64).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// A relay's secret signing key.
pub struct RelayIdentity {
    key: SigningKey,
}

impl fmt::Debug for RelayIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayIdentity").field("public", &self.public_key()).finish()
    }
}

impl RelayIdentity {
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        RelayIdentity { key: SigningKey::generate(rng) }
    }

    pub fn from_seed(seed: &[u8]) -> Result<Self, CryptoError> {
        let seed: [u8; 32] = seed.try_into().map_err(|_| CryptoError::CorruptKey {
            reason: format!("relay identity key must be 32 bytes, found {}", seed.len()),
        })?;
        Ok(RelayIdentity { key: SigningKey::from_bytes(&seed) })
    }

    /// The 32-byte seed, for the key file only.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn public_key(&self) -> RelayPublicKey {
        RelayPublicKey(self.key.verifying_key().to_bytes())
    }

    pub fn sign(&self, context: &[u8], message: &[u8]) -> RelaySignature {
        RelaySignature(self.key.sign(&signed_message(context, message)).to_bytes().to_vec())
    }
}

/// A relay's public key, as pinned in authority and processor configs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RelayPublicKey(pub [u8; 32]);

impl fmt::Debug for RelayPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelayPublicKey({})", hex::encode(self.0))
    }
}

impl RelayPublicKey {
    pub fn from_hex(text: &str) -> Result<Self, CryptoError> {
        let bytes = hex::decode(text.trim())
            .map_err(|e| CryptoError::InvalidEncoding { what: "relay public key", reason: format!("not hex: {e}") })?;
        let arr: [u8; 32] = bytes.try_into().map_err(|v: Vec<u8>| CryptoError::InvalidEncoding {
            what: "relay public key",
            reason: format!("expected 32 bytes, got {}", v.len()),
        })?;
        VerifyingKey::from_bytes(&arr)
            .map_err(|e| CryptoError::InvalidEncoding { what: "relay public key", reason: e.to_string() })?;
        Ok(RelayPublicKey(arr))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Verifies a signature made by `RelayIdentity::sign` with the same context.
    pub fn verify(
        &self,
        signer: &str,
        context: &[u8],
        message: &[u8],
        signature: &RelaySignature,
    ) -> Result<(), CryptoError> {
        let fail = |reason: String| CryptoError::InvalidSignature { signer: signer.to_string(), reason };
        let key = VerifyingKey::from_bytes(&self.0).map_err(|e| fail(e.to_string()))?;
        let sig = Signature::from_slice(&signature.0).map_err(|e| fail(e.to_string()))?;
        key.verify_strict(&signed_message(context, message), &sig).map_err(|_| fail("signature does not match".into()))
    }
}

/// One signature of a batch: who signed, with which pinned key, over
/// (context, message).
pub struct SignedItem<'a> {
    pub key: &'a RelayPublicKey,
    pub context: &'a [u8],
    pub message: &'a [u8],
    pub signature: &'a RelaySignature,
}

/// Checks many relay signatures at once (ed25519-dalek's `verify_batch`,
/// about half the cost of checking each for a round's contributions).
/// False if any fails, any key is weak (small order) or any signature is
/// malformed; the caller then checks each alone with `verify` (strict) to
/// name the culprits. The batch equation accepts no signature that `verify`
/// rejects unless it was made with the signer's own key (it ignores
/// small-order components), so it lets no one else sign for a relay. Its
/// weights are derived from the inputs, so every node gets the same answer
/// for the same contributions.
pub fn verify_batch_signatures(items: &[SignedItem<'_>]) -> bool {
    let mut messages = Vec::with_capacity(items.len());
    let mut signatures = Vec::with_capacity(items.len());
    let mut keys = Vec::with_capacity(items.len());
    for item in items {
        let (Ok(key), Ok(signature)) =
            (VerifyingKey::from_bytes(&item.key.0), Signature::from_slice(&item.signature.0))
        else {
            return false;
        };
        if key.is_weak() {
            return false;
        }
        messages.push(signed_message(item.context, item.message));
        signatures.push(signature);
        keys.push(key);
    }
    let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
}

/// A 64-byte ed25519 signature (kept as bytes so decoding never panics).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelaySignature(pub Vec<u8>);

impl fmt::Debug for RelaySignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RelaySignature(..)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn signatures_bind_context_and_message() {
        let id = RelayIdentity::generate(&mut OsRng);
        let pk = id.public_key();
        let sig = id.sign(b"query-1", b"contribution");
        pk.verify("relay-1", b"query-1", b"contribution", &sig).unwrap();
        assert!(pk.verify("relay-1", b"query-2", b"contribution", &sig).is_err());
        assert!(pk.verify("relay-1", b"query-1", b"contributioN", &sig).is_err());
        let other = RelayIdentity::generate(&mut OsRng).public_key();
        let err = other.verify("relay-2", b"query-1", b"contribution", &sig).unwrap_err();
        assert!(err.to_string().contains("relay-2"));
        assert!(pk.verify("relay-1", b"query-1", b"contribution", &RelaySignature(vec![1, 2, 3])).is_err());
        assert_eq!(RelayPublicKey::from_hex(&pk.to_hex()).unwrap(), pk);
        let back = RelayIdentity::from_seed(&id.seed()).unwrap();
        assert_eq!(back.public_key(), pk);
    }

    #[test]
    fn batches_pass_only_when_every_signature_does() {
        let ids: Vec<RelayIdentity> = (0..4).map(|_| RelayIdentity::generate(&mut OsRng)).collect();
        let keys: Vec<RelayPublicKey> = ids.iter().map(RelayIdentity::public_key).collect();
        let messages: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 40]).collect();
        let sigs: Vec<RelaySignature> = ids.iter().zip(&messages).map(|(id, m)| id.sign(b"q", m)).collect();
        let batch = |keys: &[RelayPublicKey], context: &[u8], sigs: &[RelaySignature]| {
            let items: Vec<SignedItem> = (0..4)
                .map(|i| SignedItem { key: &keys[i], context, message: &messages[i], signature: &sigs[i] })
                .collect();
            verify_batch_signatures(&items)
        };
        assert!(batch(&keys, b"q", &sigs));
        assert!(verify_batch_signatures(&[]));
        assert!(!batch(&keys, b"other query", &sigs), "another context");
        let mut swapped = sigs.clone();
        swapped.swap(1, 2);
        assert!(!batch(&keys, b"q", &swapped), "signatures of other messages");
        let mut flipped = sigs.clone();
        flipped[3].0[10] ^= 1;
        assert!(!batch(&keys, b"q", &flipped), "one altered signature");
        let mut short = sigs.clone();
        short[0].0.pop();
        assert!(!batch(&keys, b"q", &short), "a malformed signature");
        // the identity point is a weak (small-order) key: refused, as `verify` does
        let mut weak = keys.clone();
        let mut identity = [0u8; 32];
        identity[0] = 1; // y = 1: the neutral point
        weak[2] = RelayPublicKey(identity);
        assert!(!batch(&weak, b"q", &sigs));
        assert!(weak[2].verify("relay-3", b"q", &messages[2], &sigs[2]).is_err());
    }
}
