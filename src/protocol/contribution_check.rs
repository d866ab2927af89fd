//! Checking relays' contributions, the one function both the processor and
//! every authority use: the relay is known and appears once, its signature
//! covers `codec::contribution_statement` for this (query, round, task), the
//! contribution has the task's shape, and every ciphertext carries a valid
//! proof of knowledge of its randomness bound to (query, round, task, relay,
//! index). Proofs are checked in one batch; when a batch fails, each relay is
//! checked alone to name the culprit. No I/O.

use std::collections::HashSet;

use rand_core::{CryptoRng, RngCore};

use super::codec;
use super::error::ProtocolError;
use super::messages::{QuerySpec, SignedContribution};
use crate::crypto::{verify_batch, ProofItem, RelayPublicKey};
use crate::stats::RelayTask;

/// Signature and shape of one contribution (not its proofs).
fn check_signed(
    spec: &QuerySpec,
    round: u32,
    task: &RelayTask,
    key: &RelayPublicKey,
    c: &SignedContribution,
) -> Result<(), ProtocolError> {
    let bad = |reason: String| ProtocolError::BadContribution { relay: c.relay.clone(), reason };
    if c.round != round {
        return Err(bad(format!("signed round {} not {round}", c.round)));
    }
    let bytes = codec::contribution_statement(spec, round, task, &c.relay, &c.contribution);
    key.verify(&c.relay, &spec.id.0, &bytes, &c.signature)?;
    c.contribution.check_shape(task).map_err(|e| bad(e.to_string()))?;
    if c.proofs.len() != c.contribution.ciphertexts().len() {
        return Err(bad(format!(
            "{} ciphertexts but {} proofs of randomness",
            c.contribution.ciphertexts().len(),
            c.proofs.len()
        )));
    }
    Ok(())
}

/// The batch items of one contribution, over its own proof context.
fn items<'a>(context: &'a [u8], c: &'a SignedContribution) -> impl Iterator<Item = ProofItem<'a>> {
    c.contribution
        .ciphertexts()
        .into_iter()
        .zip(c.proofs.iter())
        .zip(0u32..)
        .map(move |((ciphertext, proof), index)| ProofItem { context, index, ciphertext, proof })
}

/// Checks one relay's contribution completely (signature, shape, proofs).
pub fn check_contribution(
    spec: &QuerySpec,
    round: u32,
    task: &RelayTask,
    key: &RelayPublicKey,
    c: &SignedContribution,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(), ProtocolError> {
    check_signed(spec, round, task, key, c)?;
    let context = codec::proof_context(spec, round, task, &c.relay);
    let batch: Vec<ProofItem> = items(&context, c).collect();
    if !verify_batch(&batch, rng) {
        return Err(ProtocolError::BadContribution {
            relay: c.relay.clone(),
            reason: "a ciphertext's proof of randomness does not verify (copied, altered or combined ciphertext)"
                .into(),
        });
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
    let mut contexts = Vec::with_capacity(contributions.len());
    for c in contributions {
        let key = key_of(&c.relay).ok_or_else(|| ProtocolError::UnknownRelay(c.relay.clone()))?;
        if !seen.insert(c.relay.as_str()) {
            return Err(ProtocolError::BadContribution { relay: c.relay.clone(), reason: "contributed twice".into() });
        }
        check_signed(spec, round, task, key, c)?;
        contexts.push(codec::proof_context(spec, round, task, &c.relay));
    }
    let batch: Vec<ProofItem> = contexts.iter().zip(contributions).flat_map(|(ctx, c)| items(ctx, c)).collect();
    if verify_batch(&batch, rng) {
        return Ok(());
    }
    for c in contributions {
        let key = key_of(&c.relay).ok_or_else(|| ProtocolError::UnknownRelay(c.relay.clone()))?;
        check_contribution(spec, round, task, key, c, rng)?;
    }
    Err(ProtocolError::BadContribution {
        relay: "(batch)".into(),
        reason: "the batch of proofs of randomness failed".into(),
    })
}
