//! Checking relays' contributions, the one function both the processor and
//! every authority use: the relay is known and appears once, its signature
//! covers `codec::contribution_statement` for this (query, round, task), the
//! contribution has the task's shape, and its proof of knowledge of every
//! ciphertext's randomness verifies against the same statement. Proofs are
//! checked in one batch; when a batch fails, each relay is checked alone to
//! name the culprit. No I/O.

use std::collections::HashSet;

use rand_core::{CryptoRng, RngCore};

use super::codec;
use super::error::ProtocolError;
use super::messages::{QuerySpec, SignedContribution};
use crate::crypto::{verify_batch, ProofItem, RelayPublicKey};
use crate::stats::RelayTask;

/// Signature and shape of one contribution (not its proof); returns the
/// signed statement, which the proof is bound to.
fn check_signed(
    spec: &QuerySpec,
    round: u32,
    task: &RelayTask,
    key: &RelayPublicKey,
    c: &SignedContribution,
) -> Result<Vec<u8>, ProtocolError> {
    let bad = |reason: String| ProtocolError::BadContribution { relay: c.relay.clone(), reason };
    if c.round != round {
        return Err(bad(format!("signed round {} not {round}", c.round)));
    }
    let statement = codec::contribution_statement(spec, round, task, &c.relay, &c.contribution);
    key.verify(&c.relay, &spec.id.0, &statement, &c.signature)?;
    c.contribution.check_shape(task).map_err(|e| bad(e.to_string()))?;
    Ok(statement)
}

fn item<'a>(statement: &'a [u8], c: &'a SignedContribution) -> ProofItem<'a> {
    ProofItem { statement, a: c.contribution.ciphertexts().into_iter().map(|ct| &ct.a).collect(), proof: &c.proof }
}

fn bad_proof(relay: &str) -> ProtocolError {
    ProtocolError::BadContribution {
        relay: relay.to_string(),
        reason: "its proof of randomness does not verify (copied, altered or combined ciphertexts)".into(),
    }
}

/// Checks one relay's contribution completely (signature, shape, proof).
pub fn check_contribution(
    spec: &QuerySpec,
    round: u32,
    task: &RelayTask,
    key: &RelayPublicKey,
    c: &SignedContribution,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(), ProtocolError> {
    let statement = check_signed(spec, round, task, key, c)?;
    if !verify_batch(&[item(&statement, c)], rng) {
        return Err(bad_proof(&c.relay));
    }
    Ok(())
}

/// Checks a whole round: known relays, each once, signatures and shapes,
/// and all proofs in one batch.
pub fn check_contributions<'k>(
    spec: &QuerySpec,
    round: u32,
    task: &RelayTask,
    contributions: &[SignedContribution],
    key_of: impl Fn(&str) -> Option<&'k RelayPublicKey>,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(), ProtocolError> {
    let mut seen = HashSet::new();
    let mut statements = Vec::with_capacity(contributions.len());
    for c in contributions {
        let key = key_of(&c.relay).ok_or_else(|| ProtocolError::UnknownRelay(c.relay.clone()))?;
        if !seen.insert(c.relay.as_str()) {
            return Err(ProtocolError::BadContribution { relay: c.relay.clone(), reason: "contributed twice".into() });
        }
        statements.push(check_signed(spec, round, task, key, c)?);
    }
    let batch: Vec<ProofItem> = statements.iter().zip(contributions).map(|(s, c)| item(s, c)).collect();
    if verify_batch(&batch, rng) {
        return Ok(());
    }
    for (statement, c) in statements.iter().zip(contributions) {
        if !verify_batch(&[item(statement, c)], rng) {
            return Err(bad_proof(&c.relay));
        }
    }
    Err(bad_proof("(batch)"))
}
