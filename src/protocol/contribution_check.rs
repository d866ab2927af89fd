//! Checking relays' contributions, the one function both the processor and
//! every authority use (the processor skips signatures and proofs until an
//! authority refuses a round: `check_round_shapes`): the relay is known and
//! appears once, its signature covers `codec::contribution_statement` for
//! this (query, round, task), the contribution has the task's shape, and
//! its proof of knowledge of every ciphertext's randomness verifies against
//! the same statement. Signatures and proofs are each checked in one
//! batch; when a batch fails, each relay is checked alone to name the
//! culprit. No I/O.

use std::collections::HashSet;

use rand_core::{CryptoRng, RngCore};

use super::codec;
use super::error::ProtocolError;
use super::messages::{QuerySpec, SignedContribution, SignedShares};
use crate::crypto::{verify_batch, verify_batch_signatures, ProofItem, RelayPublicKey, RelaySignature, SignedItem};
use crate::stats::RelayTask;

/// A relay's signed answer to a round: ciphertexts (`SignedContribution`)
/// or committed shares (`SignedShares`, `protocol::shares`).
pub trait RelaySigned {
    fn relay(&self) -> &str;
    fn signature(&self) -> &RelaySignature;
}

impl RelaySigned for SignedContribution {
    fn relay(&self) -> &str {
        &self.relay
    }

    fn signature(&self) -> &RelaySignature {
        &self.signature
    }
}

impl RelaySigned for SignedShares {
    fn relay(&self) -> &str {
        &self.relay
    }

    fn signature(&self) -> &RelaySignature {
        &self.signature
    }
}

/// Round and shape of one contribution; with `statement`, the statement
/// its signature and proof must cover (empty without).
fn shape_and_statement(
    spec: &QuerySpec,
    round: u32,
    task: &RelayTask,
    statement: bool,
    c: &SignedContribution,
) -> Result<Vec<u8>, ProtocolError> {
    let bad = |reason: String| ProtocolError::BadContribution { relay: c.relay.clone(), reason };
    if c.round != round {
        return Err(bad(format!("signed round {} not {round}", c.round)));
    }
    c.contribution.check_shape(task).map_err(|e| bad(e.to_string()))?;
    if !statement {
        return Ok(Vec::new());
    }
    Ok(codec::contribution_statement(spec, round, task, &c.relay, &c.contribution))
}

fn item<'a>(statement: &'a [u8], c: &'a SignedContribution) -> ProofItem<'a> {
    ProofItem { statement, a: c.contribution.ciphertexts().into_iter().map(|ct| ct.a()).collect(), proof: &c.proof }
}

fn bad_proof(relay: &str) -> ProtocolError {
    ProtocolError::BadContribution {
        relay: relay.to_string(),
        reason: "its proof of randomness does not verify (copied, altered or combined ciphertexts)".into(),
    }
}

/// A round's contributions sorted into those that pass every check and
/// those that fail one, with the reason.
pub struct Checked<C> {
    pub valid: Vec<C>,
    pub rejected: Vec<(String, ProtocolError)>,
}

/// A round's ciphertext contributions, checked.
pub type CheckedRound = Checked<SignedContribution>;

impl<C> Checked<C> {
    /// All of them valid, or the first failure.
    pub fn all_valid(mut self) -> Result<Vec<C>, ProtocolError> {
        match self.rejected.drain(..).next() {
            Some((_, e)) => Err(e),
            None => Ok(self.valid),
        }
    }
}

/// The one contribution check, used by every authority (which refuses the
/// round if any fails) and by the processor when an authority refused a
/// round (it then leaves out the relays that fail it while it may): known
/// relays, each once, signatures and shapes, and all proofs in one batch;
/// when the batch fails, each proof alone, to name the culprits.
pub fn check_round<'k>(
    spec: &QuerySpec,
    round: u32,
    task: &RelayTask,
    contributions: Vec<SignedContribution>,
    key_of: impl Fn(&str) -> Option<&'k RelayPublicKey>,
    rng: &mut (impl RngCore + CryptoRng),
) -> CheckedRound {
    let (shaped, rejected) = check_shapes(contributions, &key_of, |c| shape_and_statement(spec, round, task, true, c));
    let (signed, rejected) = check_relay_signatures(&spec.id.0, shaped, rejected, &key_of);
    check_proofs(signed, rejected, rng)
}

/// `check_round` without signatures and proofs of randomness: known
/// relays, each once, the round and the shapes. The processor's first
/// check of a round: the authorities check signatures and proofs, and the
/// processor checks them (`check_round`) only when an authority refuses
/// the round, to name and leave out the culprits.
pub fn check_round_shapes<'k>(
    spec: &QuerySpec,
    round: u32,
    task: &RelayTask,
    contributions: Vec<SignedContribution>,
    key_of: impl Fn(&str) -> Option<&'k RelayPublicKey>,
) -> CheckedRound {
    let (signed, rejected) = check_shapes(contributions, &key_of, |c| shape_and_statement(spec, round, task, false, c));
    CheckedRound { valid: signed.into_iter().map(|(_, c)| c).collect(), rejected }
}

/// Committed shares of a round (`protocol::shares`), checked in full by
/// every decryptor (and by the processor when one refuses the round):
/// known relays, each once, the shape (`shares::shape`) and the
/// signatures, in one batch. Without `signatures` (the processor's first
/// check, as `check_round_shapes`), the shapes only.
pub fn check_shares<'k>(
    spec: &QuerySpec,
    (round, task): (u32, &RelayTask),
    shares: Vec<SignedShares>,
    key_of: impl Fn(&str) -> Option<&'k RelayPublicKey>,
    signatures: bool,
) -> Checked<SignedShares> {
    let (shaped, rejected) = check_shapes(shares, &key_of, |s| super::shares::shape(spec, round, task, signatures, s));
    if !signatures {
        return Checked { valid: shaped.into_iter().map(|(_, c)| c).collect(), rejected };
    }
    let (signed, rejected) = check_relay_signatures(&spec.id.0, shaped, rejected, &key_of);
    Checked { valid: signed.into_iter().map(|(_, c)| c).collect(), rejected }
}

type Signed<C> = Vec<(Vec<u8>, C)>;
type Rejected = Vec<(String, ProtocolError)>;

/// Known relays, each once, and `shaped` (round and shape, and the
/// statement signatures are checked on next, all at once, or empty).
fn check_shapes<'k, C: RelaySigned>(
    contributions: Vec<C>,
    key_of: &impl Fn(&str) -> Option<&'k RelayPublicKey>,
    shaped: impl Fn(&C) -> Result<Vec<u8>, ProtocolError>,
) -> (Signed<C>, Rejected) {
    let mut seen = HashSet::new();
    let mut signed = Vec::with_capacity(contributions.len());
    let mut rejected = Vec::new();
    for c in contributions {
        let relay = c.relay().to_string();
        let checked = match key_of(&relay) {
            None => Err(ProtocolError::UnknownRelay(relay.clone())),
            Some(_) if seen.contains(&relay) => {
                Err(ProtocolError::BadContribution { relay: relay.clone(), reason: "contributed twice".into() })
            }
            Some(_) => shaped(&c),
        };
        match checked {
            Ok(statement) => {
                seen.insert(relay);
                signed.push((statement, c));
            }
            Err(e) => rejected.push((relay, e)),
        }
    }
    (signed, rejected)
}

/// All signatures in one batch; when the batch fails, each one alone
/// (strict ed25519), to name the culprits.
fn check_relay_signatures<'k, C: RelaySigned>(
    context: &[u8],
    shaped: Signed<C>,
    mut rejected: Rejected,
    key_of: &impl Fn(&str) -> Option<&'k RelayPublicKey>,
) -> (Signed<C>, Rejected) {
    let keyed: Vec<_> = shaped.into_iter().filter_map(|(s, c)| key_of(c.relay()).map(|k| (k, s, c))).collect();
    let items: Vec<SignedItem> = keyed
        .iter()
        .map(|(key, statement, c)| SignedItem { key, context, message: statement, signature: c.signature() })
        .collect();
    if verify_batch_signatures(&items) {
        return (keyed.into_iter().map(|(_, s, c)| (s, c)).collect(), rejected);
    }
    let mut signed = Vec::with_capacity(keyed.len());
    for (key, statement, c) in keyed {
        match key.verify(c.relay(), context, &statement, c.signature()) {
            Ok(()) => signed.push((statement, c)),
            Err(e) => rejected.push((c.relay().to_string(), e.into())),
        }
    }
    (signed, rejected)
}

/// All proofs in one batch; when the batch fails, each proof alone.
fn check_proofs(
    signed: Signed<SignedContribution>,
    mut rejected: Rejected,
    rng: &mut (impl RngCore + CryptoRng),
) -> CheckedRound {
    let batch: Vec<ProofItem> = signed.iter().map(|(s, c)| item(s, c)).collect();
    if verify_batch(&batch, rng) {
        return CheckedRound { valid: signed.into_iter().map(|(_, c)| c).collect(), rejected };
    }
    let mut valid = Vec::with_capacity(signed.len());
    for (statement, c) in signed {
        if verify_batch(&[item(&statement, &c)], rng) {
            valid.push(c);
        } else {
            rejected.push((c.relay.clone(), bad_proof(&c.relay)));
        }
    }
    CheckedRound { valid, rejected }
}
