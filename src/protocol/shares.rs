//! The committed-share path in the roles (docs/share_path.md): for an
//! exact query or a noisy search (`serves`), when the processor's
//! `share_path` is on, a relay commits
//! to its components (what the ElGamal path would encrypt, in statement
//! order) and a blinding, Shamir-shares them t-of-t to the query's
//! decryptors, seals each decryptor's shares to the sealing key that
//! decryptor signed into its admission (`SealingGrant`), and signs it all
//! (`codec::shares_statement`). Each decryptor opens its boxes and adds
//! its shares up; the processor interpolates the decryptors' sums and
//! checks them against the sum of the relays' commitments before it reads
//! a value. No discrete log (so the widest limbs), no proof per release.
//!
//! A noisy search round's vector also holds the relay's two cells outside
//! the round's grid (values below it, values at or above its end), so the
//! vector is a partition of the column. Each decryptor adds its own
//! discrete Laplace noise to every component of its sums, scaled by the
//! inverse of its Lagrange coefficient so that it adds exactly its noise
//! to the interpolated value, with a blinded commitment to that noise
//! (`noisy_share_sums`); the processor checks the sums against the
//! relays' commitments plus the decryptors' noise commitments.
//!
//! Used by `relay` (`sealing_keys`, `share_round`), `authority`
//! (`open_and_sum`, `share_sums`) and `processor` (`commitment`,
//! `combine_sums`);
//! `contribution_check::check_shares` checks shapes (`shape`) and
//! signatures. No I/O.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroize;

use super::codec;
use super::error::ProtocolError;
use super::messages::{Bytes32, QuerySpec, SealingGrant, ShareSums, SignedShares};
use crate::crypto::shares::{
    generators_for, noisy_release, open, reconstruct, seal, share_values, signed_value, Ephemeral, SealingKey,
    SealingSecret, BOX_TAG_BYTES,
};
use crate::crypto::{scalar_from_i64, verify_statements, CryptoError, JointPublicKey, RelayIdentity};
use crate::stats::contribution::PlainAggregate;
use crate::stats::dp::discrete_laplace;
use crate::stats::release::Outside;
use crate::stats::{QueryParams, RelayTask};

/// Whether a query may take the committed-share path: an exact query, or
/// a noisy search (its rounds' cells are noised by each decryptor). Other
/// noisy queries encrypt.
pub fn serves(params: &QueryParams) -> bool {
    params.exact || params.statistic.is_search()
}

/// Components of `task`'s vector (count and limbs, or buckets), and with
/// noise (`exact` false: a search round) the two cells outside its grid.
fn components(task: &RelayTask, exact: bool) -> Result<usize, ProtocolError> {
    let own = task.ciphertexts_per_relay()?;
    Ok(if exact { own } else { own.saturating_add(2) })
}

/// Bytes of one decryptor's box for `task`: its shares of every
/// component and of the blinding, 32 bytes each, and the tag.
fn box_len(task: &RelayTask, exact: bool) -> Result<usize, ProtocolError> {
    components(task, exact)?
        .checked_add(1)
        .and_then(|n| n.checked_mul(32))
        .and_then(|n| n.checked_add(BOX_TAG_BYTES))
        .ok_or_else(|| ProtocolError::Internal("box size overflows".into()))
}

/// The round and one box per decryptor of the right length; with
/// `statement`, the statement the relay's signature must cover
/// (`codec::shares_statement`; empty without). The
/// points are checked where they are used: the commitment by the processor
/// (`commitment`), the ephemeral key by each decryptor (`open_and_sum`).
pub fn shape(
    spec: &QuerySpec,
    round: u32,
    task: &RelayTask,
    statement: bool,
    s: &SignedShares,
) -> Result<Vec<u8>, ProtocolError> {
    let bad = |reason: String| ProtocolError::BadContribution { relay: s.relay.clone(), reason };
    if s.round != round {
        return Err(bad(format!("signed round {} not {round}", s.round)));
    }
    if s.boxes.len() != spec.decryptors.len() {
        return Err(bad(format!("{} share boxes for {} decryptors", s.boxes.len(), spec.decryptors.len())));
    }
    let expected = box_len(task, spec.params.exact)?;
    if s.boxes.iter().any(|b| !b.is_empty() && b.len() != expected) {
        return Err(bad(format!("a share box is not the {expected} bytes this round's task needs")));
    }
    if !statement {
        return Ok(Vec::new());
    }
    let hashes =
        s.box_hashes().ok_or_else(|| bad("its boxes do not match their hashes, or a box is missing".into()))?;
    Ok(codec::shares_statement(spec, round, task, &s.relay, (&s.commitment.0, &s.ephemeral.0), &hashes))
}

/// A relay's check of the sealing keys a `Contribute` carries: one per
/// decryptor of the spec, in its order, each signed by that decryptor over
/// `codec::sealing_grant` and a valid key; with each decryptor's
/// committee index (the point its shares are evaluated at).
pub fn sealing_keys(
    committee: &JointPublicKey,
    spec: &QuerySpec,
    grants: &[(String, SealingGrant)],
) -> Result<Vec<(u16, SealingKey)>, String> {
    if grants.len() != spec.decryptors.len() {
        return Err(format!("{} sealing keys for {} decryptors", grants.len(), spec.decryptors.len()));
    }
    let mut keys = Vec::with_capacity(grants.len());
    let mut signed = Vec::with_capacity(grants.len());
    for (decryptor, (name, grant)) in spec.decryptors.iter().zip(grants) {
        if decryptor != name {
            return Err(format!("a sealing key from {name} where the spec names {decryptor}"));
        }
        let statement = codec::sealing_grant(&spec.id, spec.epoch, name, &grant.key.0);
        let signer = committee.signer_key(name).ok_or_else(|| format!("{name} is not in the committee"))?;
        let member = committee.share_of(name).ok_or_else(|| format!("{name} is not in the committee"))?;
        let key = SealingKey::from_bytes(&grant.key.0).map_err(|e| format!("the sealing key of {name}: {e}"))?;
        keys.push((member.index, key));
        signed.push((signer, &grant.signature, statement));
    }
    // every grant in one batch
    let items: Vec<_> = signed.iter().map(|(k, sig, st)| (*k, *sig, st.as_slice())).collect();
    verify_statements(&items).map_err(|i| {
        let name = grants.get(i).map_or("?", |(n, _)| n.as_str());
        format!("the sealing key of {name} is not signed by it (the signature does not match the statement)")
    })?;
    Ok(keys)
}

/// What one relay sends for one round on the committed-share path.
pub struct RoundShares<'a> {
    pub spec: &'a QuerySpec,
    pub round: u32,
    pub task: &'a RelayTask,
    pub relay: &'a str,
    /// the decryptors' committee indices and sealing keys (`sealing_keys`)
    pub keys: &'a [(u16, SealingKey)],
}

/// Commits to `plain` (the relay's components in statement order, with
/// their public bounds) and a fresh blinding, shares both t-of-t to the
/// decryptors, seals each decryptor's shares and signs the lot. `narrow`:
/// every component is a count below 2^32 (a histogram of a column of at
/// most 2^32 − 1 rows), committed with constant-time window tables;
/// otherwise by constant-time multiscalar multiplication. The values, the
/// blinding and the shares are wiped before it returns.
pub fn share_round(
    round: &RoundShares<'_>,
    identity: &RelayIdentity,
    plain: &[(i64, u32)],
    narrow: bool,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<SignedShares, CryptoError> {
    let generators = generators_for(plain.len());
    let mut blind = Scalar::random(rng);
    // the components, then the blinding: what is shared
    let mut values: Vec<Scalar> = plain.iter().map(|(v, _)| scalar_from_i64(*v)).chain([blind]).collect();
    let components = values.get(..plain.len()).unwrap_or_default();
    let commitment = if narrow && generators.tabled(plain.len()) {
        let mut counts: Vec<u32> = plain.iter().map(|(v, _)| u32::try_from(*v).unwrap_or(u32::MAX)).collect();
        let c = generators.commit(&counts, 32, &blind);
        counts.zeroize();
        c
    } else {
        generators.commit_values(components, &blind)
    };
    blind.zeroize();
    let commitment = match commitment {
        Ok(c) => c.compress().to_bytes(),
        Err(e) => {
            values.zeroize();
            return Err(e);
        }
    };
    let indices: Vec<u16> = round.keys.iter().map(|(i, _)| *i).collect();
    let threshold = u16::try_from(indices.len()).unwrap_or(u16::MAX);
    let shared = share_values(&values, &indices, threshold, rng);
    values.zeroize();
    let mut shared = shared?;
    let ephemeral = Ephemeral::random(rng);
    let header = codec::box_header(&round.spec.id, round.round, round.relay, &commitment);
    let boxes = round
        .keys
        .iter()
        .zip(&shared)
        .map(|((_, key), shares)| seal(&ephemeral.box_key(key, &round.spec.id.0), round.round, &header, shares))
        .collect::<Result<Vec<_>, _>>();
    shared.iter_mut().for_each(|s| s.zeroize());
    let boxes = boxes?;
    let ephemeral = ephemeral.public.to_bytes();
    let hashes: Vec<[u8; 32]> = boxes.iter().map(|b| codec::box_hash(b)).collect();
    let statement =
        codec::shares_statement(round.spec, round.round, round.task, round.relay, (&commitment, &ephemeral), &hashes);
    Ok(SignedShares {
        relay: round.relay.to_string(),
        round: round.round,
        commitment: Bytes32(commitment),
        ephemeral: Bytes32(ephemeral),
        boxes: boxes.into_iter().map(serde_bytes::ByteBuf::from).collect(),
        signature: identity.sign(&round.spec.id.0, &statement),
        hashes: Vec::new(),
    })
}

/// A decryptor's sums of its shares (every component, then the blinding)
/// over the round's checked contributions: it opens its box (`position`:
/// its place among the spec's decryptors) from each relay with its
/// sealing secret for the query. A box that does not open names its relay.
pub fn open_and_sum(
    spec: &QuerySpec,
    round: u32,
    task: &RelayTask,
    position: usize,
    secret: &SealingSecret,
    shares: &[SignedShares],
) -> Result<Vec<Scalar>, ProtocolError> {
    let mut sums = vec![Scalar::ZERO; components(task, spec.params.exact)?.saturating_add(1)];
    for s in shares {
        let bad = |reason: String| ProtocolError::BadContribution { relay: s.relay.clone(), reason };
        let sealed = s
            .boxes
            .get(position)
            .filter(|b| !b.is_empty())
            .ok_or_else(|| bad("no share box for this decryptor".into()))?;
        let key = secret.box_key(&CompressedRistretto(s.ephemeral.0), &spec.id.0).map_err(|e| bad(e.to_string()))?;
        let header = codec::box_header(&spec.id, round, &s.relay, &s.commitment.0);
        let mut opened = open(&key, round, &header, sealed).map_err(|e| bad(format!("its share box: {e}")))?;
        if opened.len() != sums.len() {
            opened.zeroize();
            return Err(bad(format!("its share box holds {} values, the task needs {}", opened.len(), sums.len())));
        }
        sums.iter_mut().zip(&opened).for_each(|(sum, v)| *sum += v);
        opened.zeroize();
    }
    Ok(sums)
}

/// A decryptor's release of a round: its sums, the blinding last.
pub fn share_sums(authority: &str, round: u32, sums: &[Scalar]) -> Result<ShareSums, ProtocolError> {
    let (blind, values) = sums.split_last().ok_or_else(|| ProtocolError::Internal("no sums to release".into()))?;
    Ok(ShareSums {
        authority: authority.to_string(),
        round,
        values: values.iter().map(|v| Bytes32(v.to_bytes())).collect(),
        blind: Bytes32(blind.to_bytes()),
        noise: None,
    })
}

/// A decryptor's noisy release of a noisy search round: every sum gets a
/// fresh discrete Laplace draw of scale `scale` (num, den), divided by its
/// Lagrange coefficient λ among the spec's decryptors so that the
/// interpolated value carries exactly the draw, with a blinded commitment
/// to the noise that the processor adds to the relays' commitments
/// (`crypto::shares::noisy_release`, `combine_sums`). The noise is wiped
/// before it returns; the caller keeps the result and gives the same sums
/// each time.
pub fn noisy_share_sums(
    authority: &str,
    round: u32,
    sums: &[Scalar],
    (lambda, scale): (&Scalar, (u128, u128)),
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<ShareSums, ProtocolError> {
    let count = sums.len().saturating_sub(1);
    let mut noise: Vec<i64> = Vec::with_capacity(count);
    for _ in 0..count {
        let draw = i64::try_from(discrete_laplace(scale.0, scale.1, rng));
        noise.push(draw.map_err(|_| ProtocolError::Internal("a noise draw beyond 2^63".into()))?);
    }
    let released = noisy_release(&generators_for(count), sums, lambda, &noise, rng);
    noise.zeroize();
    let (mut values, committed) = released?;
    let blind = values.pop().ok_or_else(|| ProtocolError::Internal("no sums to release".into()))?;
    Ok(ShareSums {
        authority: authority.to_string(),
        round,
        values: values.iter().map(|v| Bytes32(v.to_bytes())).collect(),
        blind: Bytes32(blind.to_bytes()),
        noise: Some(Bytes32(committed.compress().to_bytes())),
    })
}

/// A relay's commitment as a point, or why not (the processor leaves
/// such a relay out like one whose signature fails).
pub fn commitment(s: &SignedShares) -> Result<RistrettoPoint, ProtocolError> {
    CompressedRistretto(s.commitment.0).decompress().ok_or_else(|| ProtocolError::BadContribution {
        relay: s.relay.clone(),
        reason: "its commitment is not a valid point".into(),
    })
}

/// A round opened from the decryptors' sums: its aggregate, and for a
/// noisy search round the two cells outside its grid as the round's
/// outside (below it; the column's count, which with the round's buckets
/// and `below` gives the cell above: `release::round_target`).
#[derive(Debug)]
pub struct Opened {
    pub aggregate: PlainAggregate,
    pub outside: Option<Outside<i128>>,
}

/// The round's aggregate from every decryptor's sums (`(committee index,
/// sums)`, t of them): interpolated at 0, checked against `commitments`
/// (the sum of the relays' commitments, plus with noise every decryptor's
/// noise commitment), then read as integers. A sum that does not open the
/// commitments fails the query (`ProtocolError::SharesDoNotOpen`); nothing
/// is read from it. An exact query's sums carry no noise commitment, a
/// noisy one's must (else refused, naming the decryptor).
pub fn combine_sums(
    (task, exact): (&RelayTask, bool),
    round: u32,
    sums: &[(u16, &ShareSums)],
    commitments: &RistrettoPoint,
) -> Result<Opened, ProtocolError> {
    let n = components(task, exact)?;
    let mut vectors = Vec::with_capacity(sums.len());
    let mut committed = *commitments;
    for (index, s) in sums {
        let bad = |reason: String| ProtocolError::Refused { authority: s.authority.clone(), reason };
        match (&s.noise, exact) {
            (None, true) => {}
            (Some(_), true) => return Err(bad("noisy sums for an exact query".into())),
            (None, false) => return Err(bad("sums without noise for a noisy query".into())),
            (Some(e), false) => {
                committed += CompressedRistretto(e.0)
                    .decompress()
                    .ok_or_else(|| bad("its noise commitment is not a valid point".into()))?;
            }
        }
        if s.round != round || s.values.len() != n {
            return Err(bad(format!(
                "released {} sums of round {}, expected {n} of round {round}",
                s.values.len(),
                s.round
            )));
        }
        let scalars = s
            .values
            .iter()
            .chain([&s.blind])
            .map(|b| {
                Option::from(Scalar::from_canonical_bytes(b.0))
                    .ok_or_else(|| bad("a sum is not a canonical scalar".into()))
            })
            .collect::<Result<Vec<Scalar>, _>>()?;
        vectors.push((*index, scalars));
    }
    let borrowed: Vec<(u16, &[Scalar])> = vectors.iter().map(|(i, v)| (*i, v.as_slice())).collect();
    let opened = reconstruct(&borrowed)?;
    let (blind, values) = opened.split_last().ok_or_else(|| ProtocolError::Internal("no sums".into()))?;
    let decryptors = || sums.iter().map(|(_, s)| s.authority.as_str()).collect::<Vec<_>>().join(", ");
    if !generators_for(n).opens(&committed, values, blind)? {
        return Err(ProtocolError::SharesDoNotOpen { round, decryptors: decryptors() });
    }
    let mut read = values
        .iter()
        .map(signed_value)
        .collect::<Option<Vec<i128>>>()
        .ok_or(ProtocolError::SharesOutOfRange { round })?;
    let outside = if exact {
        None
    } else {
        let cells = read.split_off(read.len().saturating_sub(2));
        let (below, above) = (cells.first().copied().unwrap_or(0), cells.get(1).copied().unwrap_or(0));
        let total = read.iter().fold(below.saturating_add(above), |a, v| a.saturating_add(*v));
        Some(Outside { below, total: Some(total) })
    };
    let aggregate = PlainAggregate::from_values(task, read)
        .ok_or_else(|| ProtocolError::Internal("an aggregate without the shape of its task".into()))?;
    Ok(Opened { aggregate, outside })
}
