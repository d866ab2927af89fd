//! Committed Shamir shares of a count vector: the crypto of the
//! committed-share path (docs/share_path.md), which the roles run for
//! exact queries when the processor's `share_path` is on
//! (`protocol::shares`); `benches/vs_prio3.rs` also runs it as a prototype
//! (the `*_shares` rows; `benches/scale.rs` at 1000 relays).
//!
//! A relay splits each of its B counts h_j, and a blinding scalar r, into
//! t-of-n Shamir shares (one per authority), and publishes one Pedersen
//! vector commitment C = Σ_j h_j·G_j + r·H. Each authority adds up the
//! shares it got from all relays and releases the sum; any t such sums give
//! the aggregate counts Σ h and blinding Σ r by Lagrange interpolation, and
//! the processor checks them against Σ C. The G_j and H are hashed to the
//! group, so nobody knows a relation between them: an authority that
//! changes its sum (without the matching change to a relay's commitment)
//! is caught, as a wrong partial decryption is caught by its proof today.
//!
//! Shares travel in boxes (`seal`, `open`): ChaCha20-Poly1305 under a key
//! from a Diffie-Hellman between the relay's ephemeral key and the
//! authority's sealing key (`SealingSecret`, derivable per query from a
//! stored secret), bound to a header (relay, query, commitment) and to the
//! round. A decryptor of a noisy release of a whole vector releases its
//! sums plus its noise divided by its Lagrange coefficient (interpolation
//! multiplies it back), with a commitment to that noise (`noisy_release`),
//! so the processor's check still holds. (A release of part of a vector
//! cannot be checked against a vector commitment: docs/share_path.md.)
//!
//! Pure code: no files, sockets or clocks. Randomness comes in as an
//! argument. Commitments to counts are made in constant time (the counts
//! are a relay's secret); the processor's check is variable-time (it works
//! on released sums only).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{
    CompressedRistretto, RistrettoBasepointTable, RistrettoPoint, VartimeRistrettoPrecomputation,
};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, MultiscalarMul, VartimeMultiscalarMul, VartimePrecomputedMultiscalarMul};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha512};
use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop};

use std::sync::{Arc, Mutex};

use super::{lagrange_at_zero, scalar_from_i64, CryptoError, KeyShare};

/// Domain of the hash that makes the generators; the suffix is the version.
/// The generators are fixed by it: changing it changes every commitment.
pub const GENERATORS_DOMAIN: &[u8] = b"crux-share-commitment-generators-v0";

/// Bits of a committed count at most (counts are u32: a relay's rows).
pub const MAX_VALUE_BITS: u32 = 32;
/// A commitment looks its counts up 4 bits at a time.
const WINDOW_BITS: usize = 4;
const WINDOWS: usize = MAX_VALUE_BITS as usize / WINDOW_BITS;
const ENTRIES: usize = 1 << WINDOW_BITS;

/// The k-th window table of one generator: m·16^k·G_j for m = 0..15.
type WindowTable = [RistrettoPoint; ENTRIES];

/// The generators G_0..G_{B−1} (one per bucket) and H (the blinding), with
/// the tables that make commitments cheap: per generator, WINDOWS tables of
/// 16 multiples (constant-time lookups), a basepoint table for H, and a
/// variable-time precomputation of all of them for the processor's check.
/// Beyond `TABLED_BUCKETS` generators only the points are kept (about 20 KB
/// of tables per generator would be): `commit` then refuses (use
/// `commit_values`) and `opens` multiplies without precomputation.
pub struct CommitmentGenerators {
    points: Vec<RistrettoPoint>,
    tables: Vec<[WindowTable; WINDOWS]>,
    blind: RistrettoBasepointTable,
    blind_point: RistrettoPoint,
    check: Option<VartimeRistrettoPrecomputation>,
}

/// Most generators with window tables and a check precomputation: a
/// 256-bucket vector (about 5 MB of tables), the widest a search round or a
/// usual histogram needs.
pub const TABLED_BUCKETS: usize = 256;

/// G_j for bucket j, hashed from the domain, "bucket" and j (4 bytes, big-endian).
pub fn bucket_generator(j: u32) -> RistrettoPoint {
    let mut input = GENERATORS_DOMAIN.to_vec();
    input.extend_from_slice(b"/bucket/");
    input.extend_from_slice(&j.to_be_bytes());
    RistrettoPoint::hash_from_bytes::<Sha512>(&input)
}

/// H, the blinding generator, hashed from the domain and "blind".
pub fn blinding_generator() -> RistrettoPoint {
    let mut input = GENERATORS_DOMAIN.to_vec();
    input.extend_from_slice(b"/blind");
    RistrettoPoint::hash_from_bytes::<Sha512>(&input)
}

fn window_tables(g: RistrettoPoint) -> [WindowTable; WINDOWS] {
    let mut base = g;
    std::array::from_fn(|_| {
        let mut table = [RistrettoPoint::identity(); ENTRIES];
        let mut acc = RistrettoPoint::identity();
        for entry in table.iter_mut().skip(1) {
            acc += base;
            *entry = acc;
        }
        // the next window's base: 16·base
        base = acc + base;
        table
    })
}

impl CommitmentGenerators {
    /// The generators for vectors of `buckets` counts (about 20 KB of
    /// tables per bucket; built once per process).
    pub fn new(buckets: u32) -> Self {
        let points: Vec<RistrettoPoint> = (0..buckets).map(bucket_generator).collect();
        let h = blinding_generator();
        let tabled = points.len() <= TABLED_BUCKETS;
        let tables = if tabled { points.iter().map(|g| window_tables(*g)).collect() } else { Vec::new() };
        let check = tabled.then(|| VartimeRistrettoPrecomputation::new(points.iter().chain(std::iter::once(&h))));
        CommitmentGenerators { points, tables, blind: RistrettoBasepointTable::create(&h), blind_point: h, check }
    }

    /// How many counts a commitment holds.
    pub fn buckets(&self) -> usize {
        self.points.len()
    }

    /// Whether `commit` serves `n` counts (window tables for them).
    pub fn tabled(&self, n: usize) -> bool {
        n <= self.tables.len()
    }

    /// C = Σ_j counts_j·G_j + blind·H, in constant time in the counts and
    /// the blinding (every window of every count looks at all 16 entries).
    /// `bits` is a public bound on every count (a multiple of 4, at most
    /// 32; e.g. from the relay's declared row limit): the work is
    /// proportional to it. Fewer counts than buckets commit the rest as 0;
    /// more, or a count of `bits` bits or more, are an error.
    pub fn commit(&self, counts: &[u32], bits: u32, blind: &Scalar) -> Result<RistrettoPoint, CryptoError> {
        if counts.len() > self.tables.len() {
            return Err(too_many(counts.len(), self.tables.len()));
        }
        if bits == 0 || bits > MAX_VALUE_BITS || !bits.is_multiple_of(WINDOW_BITS as u32) {
            return Err(CryptoError::InvalidEncoding {
                what: "count bound",
                reason: format!("{bits} bits: it must be a multiple of 4 from 4 to {MAX_VALUE_BITS}"),
            });
        }
        if bits < MAX_VALUE_BITS && counts.iter().any(|c| c >> bits != 0) {
            return Err(CryptoError::InvalidEncoding {
                what: "committed count",
                reason: format!("a count needs more than the {bits} bits its bound allows"),
            });
        }
        let windows = usize::try_from(bits).unwrap_or(MAX_VALUE_BITS as usize) / WINDOW_BITS;
        let mut sum = blind * &self.blind;
        for (count, tables) in counts.iter().zip(&self.tables) {
            for (k, table) in tables.iter().enumerate().take(windows) {
                let digit = ((count >> (WINDOW_BITS * k)) & 0xf) as u8;
                let mut pick = RistrettoPoint::identity();
                for (m, entry) in (0u8..).zip(table.iter()) {
                    pick.conditional_assign(entry, digit.ct_eq(&m));
                }
                sum += pick;
            }
        }
        Ok(sum)
    }

    /// C = Σ_j values_j·G_j + blind·H for a few values of any size (sums,
    /// sums of squares), by dalek's constant-time multiscalar
    /// multiplication over full-size scalars (`commit` looks up only the
    /// count's bits), so for narrow vectors only.
    pub fn commit_values(&self, values: &[Scalar], blind: &Scalar) -> Result<RistrettoPoint, CryptoError> {
        if values.len() > self.points.len() {
            return Err(too_many(values.len(), self.points.len()));
        }
        let points = self.points.iter().take(values.len()).chain([&self.blind_point]);
        Ok(RistrettoPoint::multiscalar_mul(values.iter().chain([blind]), points))
    }

    /// Whether `commitment` (the sum of the relays' commitments) opens to
    /// these aggregate values and blinding. Variable time: for released
    /// sums only.
    pub fn opens(&self, commitment: &RistrettoPoint, values: &[Scalar], blind: &Scalar) -> Result<bool, CryptoError> {
        if values.len() > self.points.len() {
            return Err(too_many(values.len(), self.points.len()));
        }
        let zeros = self.points.len() - values.len();
        let scalars = values.iter().copied().chain(std::iter::repeat_n(Scalar::ZERO, zeros)).chain([*blind]);
        let sum = match &self.check {
            Some(check) => check.vartime_multiscalar_mul(scalars),
            None => RistrettoPoint::vartime_multiscalar_mul(scalars, self.points.iter().chain([&self.blind_point])),
        };
        Ok(sum == *commitment)
    }
}

/// Generators for at least `buckets` components. Up to `TABLED_BUCKETS`
/// they are built once per process with their tables, and grown when a
/// longer vector comes (a commitment to fewer components than the
/// generators hold commits the rest as 0, so one set serves every vector
/// up to its length); a longer vector gets points only, made for it and
/// not kept.
pub fn generators_for(buckets: usize) -> Arc<CommitmentGenerators> {
    static CACHE: Mutex<Option<Arc<CommitmentGenerators>>> = Mutex::new(None);
    let size = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    if buckets > TABLED_BUCKETS {
        return Arc::new(CommitmentGenerators::new(size(buckets)));
    }
    let mut cache = CACHE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    match cache.as_ref() {
        Some(g) if g.buckets() >= buckets => g.clone(),
        _ => {
            let made = Arc::new(CommitmentGenerators::new(size(buckets.max(16))));
            *cache = Some(made.clone());
            made
        }
    }
}

fn too_many(found: usize, buckets: usize) -> CryptoError {
    CryptoError::InvalidEncoding {
        what: "committed count vector",
        reason: format!("{found} counts, but the generators were made for {buckets}"),
    }
}

/// Domain of the per-query sealing keys derived from a stored secret.
pub const SEALING_KEY_DOMAIN: &[u8] = b"crux-share-sealing-key-v0";
/// Domain of the box keys.
pub const BOX_KEY_DOMAIN: &[u8] = b"crux-share-box-key-v0";
/// Bytes a box adds to its 32 bytes per value (the Poly1305 tag).
pub const BOX_TAG_BYTES: usize = 16;

/// An authority's sealing secret k, with its public key k·G. Never the ElGamal share.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SealingSecret {
    secret: Scalar,
    #[zeroize(skip)]
    public: SealingKey,
}

/// An authority's sealing public key (a point other than the identity), and its encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealingKey {
    point: RistrettoPoint,
    bytes: CompressedRistretto,
}

impl SealingKey {
    /// From its 32-byte encoding: a valid point other than the identity.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, CryptoError> {
        let bytes = CompressedRistretto(*bytes);
        let point = point_other_than_identity(&bytes, "sealing key")?;
        Ok(SealingKey { point, bytes })
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.bytes.to_bytes()
    }
}

impl SealingSecret {
    fn new(secret: Scalar) -> Self {
        let point = &secret * RISTRETTO_BASEPOINT_TABLE;
        SealingSecret { secret, public: SealingKey { point, bytes: point.compress() } }
    }

    pub fn random(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        Self::new(Scalar::random(rng))
    }

    /// k = SHA-512(domain ‖ len ‖ stored ‖ query) reduced: one key per
    /// query, the same after a restart, and unrelated to any other use of
    /// `stored` (e.g. a signing seed) by the domain.
    pub fn for_query(stored: &[u8], query: &[u8]) -> Self {
        let digest = Sha512::new()
            .chain_update(SEALING_KEY_DOMAIN)
            .chain_update((stored.len() as u64).to_be_bytes())
            .chain_update(stored)
            .chain_update(query);
        Self::new(Scalar::from_hash(digest))
    }

    pub fn public(&self) -> SealingKey {
        self.public
    }
}

impl KeyShare {
    /// This authority's sealing secret for one query: derived from its key
    /// share by `SealingSecret::for_query` (its own domain, so unrelated to
    /// the share's use in decryption and signatures), the same after a
    /// restart and different for every query and epoch.
    pub fn sealing_secret(&self, query: &[u8]) -> SealingSecret {
        let mut stored = self.secret_scalar().to_bytes();
        let secret = SealingSecret::for_query(&stored, query);
        stored.zeroize();
        secret
    }
}

/// A public key's point: a valid encoding of a point other than the
/// identity (a key anyone could use the secret of).
fn point_other_than_identity(bytes: &CompressedRistretto, what: &'static str) -> Result<RistrettoPoint, CryptoError> {
    bytes.decompress().filter(|p| *p != RistrettoPoint::identity()).ok_or_else(|| CryptoError::InvalidEncoding {
        what,
        reason: "not a valid point other than the identity".into(),
    })
}

/// The key of one box: sender and recipient derive the same one.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct BoxKey([u8; 32]);

fn box_key(shared: &RistrettoPoint, ephemeral: &CompressedRistretto, recipient: &SealingKey, context: &[u8]) -> BoxKey {
    let digest = Sha512::new()
        .chain_update(BOX_KEY_DOMAIN)
        .chain_update(shared.compress().as_bytes())
        .chain_update(ephemeral.as_bytes())
        .chain_update(recipient.bytes.as_bytes())
        .chain_update((context.len() as u64).to_be_bytes())
        .chain_update(context)
        .finalize();
    let mut key = [0u8; 32];
    key.iter_mut().zip(digest.iter()).for_each(|(k, d)| *k = *d);
    BoxKey(key)
}

/// A relay's ephemeral key pair for one query: e and E = e·G.
pub struct Ephemeral {
    secret: Scalar,
    pub public: CompressedRistretto,
}

impl Ephemeral {
    pub fn random(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let secret = Scalar::random(rng);
        Ephemeral { public: (&secret * RISTRETTO_BASEPOINT_TABLE).compress(), secret }
    }

    /// The key of the box to `recipient` (its sealing public key), for
    /// `context` (e.g. the query id).
    pub fn box_key(&self, recipient: &SealingKey, context: &[u8]) -> BoxKey {
        box_key(&(self.secret * recipient.point), &self.public, recipient, context)
    }
}

impl Drop for Ephemeral {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl SealingSecret {
    /// The key of a box from the sender of `ephemeral`; an ephemeral key
    /// that is no point, or the identity (whose box anyone could open), is
    /// refused.
    pub fn box_key(&self, ephemeral: &CompressedRistretto, context: &[u8]) -> Result<BoxKey, CryptoError> {
        let point = point_other_than_identity(ephemeral, "sealed share box's ephemeral key")?;
        Ok(box_key(&(self.secret * point), ephemeral, &self.public, context))
    }
}

fn nonce(round: u32) -> Nonce {
    let mut n = [0u8; 12];
    n.iter_mut().zip(round.to_be_bytes()).for_each(|(a, b)| *a = b);
    Nonce::from(n)
}

/// Seals `values` (32 bytes each) for one round under `key`, bound to `header`.
pub fn seal(key: &BoxKey, round: u32, header: &[u8], values: &[Scalar]) -> Result<Vec<u8>, CryptoError> {
    let plain: Vec<u8> = values.iter().flat_map(|v| v.to_bytes()).collect();
    ChaCha20Poly1305::new(Key::from_slice(&key.0))
        .encrypt(&nonce(round), Payload { msg: &plain, aad: header })
        .map_err(|_| CryptoError::InvalidEncoding { what: "sealed share box", reason: "sealing failed".into() })
}

/// Opens a box of `seal`: the values, or an error if the key, round or
/// header differ, the bytes were changed, or a value is not canonical.
pub fn open(key: &BoxKey, round: u32, header: &[u8], sealed: &[u8]) -> Result<Vec<Scalar>, CryptoError> {
    let fail = |reason: &str| CryptoError::InvalidEncoding { what: "sealed share box", reason: reason.into() };
    let plain = ChaCha20Poly1305::new(Key::from_slice(&key.0))
        .decrypt(&nonce(round), Payload { msg: sealed, aad: header })
        .map_err(|_| fail("it does not open: another key, round or header, or changed bytes"))?;
    let chunks = plain.chunks_exact(32);
    if !chunks.remainder().is_empty() {
        return Err(fail("its length is not a whole number of values"));
    }
    chunks
        .map(|c| {
            let bytes: [u8; 32] = c.try_into().map_err(|_| fail("a value is not 32 bytes"))?;
            Option::from(Scalar::from_canonical_bytes(bytes)).ok_or_else(|| fail("a value is not a canonical scalar"))
        })
        .collect()
}

/// A decryptor's noisy release: its summed shares (values, then the
/// blinding last) plus λ⁻¹·e_j on each value and λ⁻¹·ρ on the blinding,
/// for its noise e, a fresh uniform ρ and its Lagrange coefficient λ; and
/// N = Σ_j e_j·G_j + ρ·H. The processor interpolates the t releases as it
/// does exact sums (`reconstruct`: each is multiplied by its λ, so the
/// result carries every e and ρ exactly) and checks them against Σ C_i +
/// Σ N (`opens`). Constant time in the noise (`scalar_from_i64` selects
/// its sign); the noise's scalars and ρ are wiped before it returns.
pub fn noisy_release(
    generators: &CommitmentGenerators,
    sums: &[Scalar],
    lambda: &Scalar,
    noise: &[i64],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(Vec<Scalar>, RistrettoPoint), CryptoError> {
    let (blind, values) = sums.split_last().ok_or_else(|| too_many(0, generators.buckets()))?;
    if noise.len() != values.len() {
        return Err(CryptoError::InvalidEncoding {
            what: "noisy release",
            reason: format!("{} noise draws for {} values", noise.len(), values.len()),
        });
    }
    if *lambda == Scalar::ZERO {
        return Err(CryptoError::InvalidEncoding {
            what: "noisy release",
            reason: "a zero Lagrange coefficient".into(),
        });
    }
    let inverse = lambda.invert();
    let mut noise: Vec<Scalar> = noise.iter().map(|e| scalar_from_i64(*e)).collect();
    let mut rho = Scalar::random(rng);
    let commitment = generators.commit_values(&noise, &rho);
    let mut out: Vec<Scalar> = values.iter().zip(&noise).map(|(v, e)| v + inverse * e).collect();
    out.push(blind + inverse * rho);
    noise.zeroize();
    rho.zeroize();
    Ok((out, commitment?))
}

/// A released value as a signed integer (|v| < 2^127), or None.
pub fn signed_value(s: &Scalar) -> Option<i128> {
    if let Some(v) = small_value(s).and_then(|v| i128::try_from(v).ok()) {
        return Some(v);
    }
    small_value(&-s).and_then(|v| i128::try_from(v).ok()).map(|v| -v)
}

/// Splits every value into t-of-n Shamir shares: one vector per index in
/// `indices` (the authorities' committee indices, distinct and non-zero,
/// else an error),
/// each as long as `values`. A polynomial of degree t−1 with fresh random
/// coefficients per value; `threshold` of the vectors give the values back.
pub fn share_values(
    values: &[Scalar],
    indices: &[u16],
    threshold: u16,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Vec<Vec<Scalar>>, CryptoError> {
    let distinct = indices.iter().enumerate().all(|(k, i)| !indices.iter().skip(k + 1).any(|j| j == i));
    if threshold == 0 || usize::from(threshold) > indices.len() || indices.contains(&0) || !distinct {
        return Err(CryptoError::InvalidCommittee {
            reason: format!("cannot share {threshold}-of-{} over indices {indices:?}", indices.len()),
        });
    }
    let xs: Vec<Scalar> = indices.iter().map(|i| Scalar::from(u64::from(*i))).collect();
    let mut out = vec![Vec::with_capacity(values.len()); indices.len()];
    let mut coefficients = vec![Scalar::ZERO; usize::from(threshold) - 1];
    for value in values {
        coefficients.iter_mut().for_each(|c| *c = Scalar::random(rng));
        for (x, shares) in xs.iter().zip(out.iter_mut()) {
            // Horner: value + x·(c_1 + x·(c_2 + ...))
            let tail = coefficients.iter().rev().fold(Scalar::ZERO, |acc, c| acc * x + c);
            shares.push(value + tail * x);
        }
    }
    coefficients.zeroize();
    Ok(out)
}

/// The values from t share vectors (`(index, vector)` pairs, equally long),
/// by Lagrange interpolation at 0 over their indices.
pub fn reconstruct(shares: &[(u16, &[Scalar])]) -> Result<Vec<Scalar>, CryptoError> {
    let set: Vec<u16> = shares.iter().map(|(i, _)| *i).collect();
    let len = shares.first().map_or(0, |(_, v)| v.len());
    let mut out = vec![Scalar::ZERO; len];
    for (index, vector) in shares {
        if vector.len() != len {
            return Err(CryptoError::InvalidEncoding {
                what: "share vector",
                reason: format!("authority index {index} sent {} values, another {len}", vector.len()),
            });
        }
        let lambda = lagrange_at_zero(*index, &set)?;
        out.iter_mut().zip(vector.iter()).for_each(|(o, s)| *o += lambda * s);
    }
    Ok(out)
}

/// The value of a scalar that holds a count or sum (< 2^128), or None.
pub fn small_value(s: &Scalar) -> Option<u128> {
    let bytes = s.to_bytes();
    let (low, high) = bytes.split_at(16);
    if high.iter().any(|b| *b != 0) {
        return None;
    }
    let low: [u8; 16] = low.try_into().ok()?;
    Some(u128::from_le_bytes(low))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn vector(rng: &mut StdRng, n: usize) -> Vec<u32> {
        (0..n).map(|_| rng.gen()).collect()
    }

    #[test]
    fn commitments_are_the_plain_sum_of_multiples() {
        let g = CommitmentGenerators::new(5);
        let mut rng = StdRng::seed_from_u64(1);
        let counts = [0, 1, 15, 16, u32::MAX];
        let blind = Scalar::random(&mut rng);
        let plain = counts.iter().enumerate().fold(blind * blinding_generator(), |acc, (j, c)| {
            acc + Scalar::from(*c) * bucket_generator(u32::try_from(j).unwrap())
        });
        assert_eq!(g.commit(&counts, 32, &blind).unwrap(), plain);
        // fewer counts: the rest are 0; a smaller bound, the same point
        assert_eq!(g.commit(&counts[..2], 32, &blind).unwrap(), g.commit(&[0, 1, 0, 0, 0], 32, &blind).unwrap());
        assert_eq!(g.commit(&counts[..4], 8, &blind).unwrap(), g.commit(&counts[..4], 32, &blind).unwrap());
        // too many counts, a count over its bound, a bound that is no multiple of 4
        assert!(g.commit(&[1; 6], 32, &blind).is_err());
        assert!(g.commit(&counts[..4], 4, &blind).is_err());
        assert!(g.commit(&counts[..2], 6, &blind).is_err());
        assert!(g.commit(&counts[..2], 36, &blind).is_err());
    }

    /// Beyond `TABLED_BUCKETS` the generators keep points only: `commit`
    /// refuses, `commit_values` and `opens` work without tables, and agree
    /// with the tabled generators on the components both hold.
    #[test]
    fn wide_vectors_commit_and_open_without_tables() {
        let wide = generators_for(TABLED_BUCKETS + 3);
        assert!(!wide.tabled(TABLED_BUCKETS + 3) && wide.buckets() == TABLED_BUCKETS + 3);
        let narrow = generators_for(4);
        assert!(narrow.tabled(4));
        let mut rng = StdRng::seed_from_u64(5);
        let blind = Scalar::random(&mut rng);
        let values: Vec<Scalar> = (0..TABLED_BUCKETS + 3).map(|j| Scalar::from(j as u64 * 7)).collect();
        assert!(wide.commit(&[1; 4], 32, &blind).is_err());
        let c = wide.commit_values(&values, &blind).unwrap();
        assert!(wide.opens(&c, &values, &blind).unwrap());
        let mut shifted = values.clone();
        shifted[TABLED_BUCKETS + 2] += Scalar::ONE;
        assert!(!wide.opens(&c, &shifted, &blind).unwrap());
        // the first components are the same generators as the tabled ones'
        let counts = [3u32, 0, 9, 1];
        let as_scalars: Vec<Scalar> = counts.iter().map(|c| Scalar::from(*c)).collect();
        assert_eq!(wide.commit_values(&as_scalars, &blind).unwrap(), narrow.commit(&counts, 32, &blind).unwrap());
    }

    #[test]
    fn any_t_shares_give_the_sums_that_open_the_summed_commitments() {
        let (buckets, relays, indices, t) = (16usize, 4, [1u16, 2, 3, 5], 3u16);
        let g = CommitmentGenerators::new(16);
        let mut rng = StdRng::seed_from_u64(2);
        let mut sums = vec![vec![Scalar::ZERO; buckets + 1]; indices.len()];
        let (mut total, mut blind, mut commitment) = (vec![0u128; buckets], Scalar::ZERO, RistrettoPoint::identity());
        for _ in 0..relays {
            let counts = vector(&mut rng, buckets);
            let r = Scalar::random(&mut rng);
            commitment += g.commit(&counts, 32, &r).unwrap();
            blind += r;
            total.iter_mut().zip(&counts).for_each(|(a, c)| *a += u128::from(*c));
            let values: Vec<Scalar> = counts.iter().map(|c| Scalar::from(*c)).chain([r]).collect();
            for (sum, share) in sums.iter_mut().zip(share_values(&values, &indices, t, &mut rng).unwrap()) {
                sum.iter_mut().zip(share).for_each(|(a, s)| *a += s);
            }
        }
        for set in [[0usize, 1, 2], [1, 2, 3], [0, 2, 3]] {
            let chosen: Vec<(u16, &[Scalar])> = set.iter().map(|&k| (indices[k], sums[k].as_slice())).collect();
            let values = reconstruct(&chosen).unwrap();
            let (counts, r) = values.split_at(buckets);
            assert_eq!(counts.iter().map(|c| small_value(c).unwrap()).collect::<Vec<_>>(), total);
            assert_eq!(r[0], blind);
            assert!(g.opens(&commitment, counts, &r[0]).unwrap());
        }
        // t − 1 shares interpolate to something else
        let two: Vec<(u16, &[Scalar])> = (0..2).map(|k| (indices[k], sums[k].as_slice())).collect();
        let wrong: Vec<Option<u128>> = reconstruct(&two).unwrap()[..buckets].iter().map(small_value).collect();
        assert_ne!(wrong, total.iter().map(|c| Some(*c)).collect::<Vec<_>>());
    }

    #[test]
    fn value_commitments_match_count_commitments_and_open_with_large_sums() {
        let g = CommitmentGenerators::new(3);
        let mut rng = StdRng::seed_from_u64(5);
        let r = Scalar::random(&mut rng);
        let counts = [7u32, 0, 65_535];
        let as_scalars: Vec<Scalar> = counts.iter().map(|c| Scalar::from(*c)).collect();
        assert_eq!(g.commit_values(&as_scalars, &r).unwrap(), g.commit(&counts, 16, &r).unwrap());
        let big = [Scalar::from(1u128 << 100), Scalar::from(u128::MAX)];
        let c = g.commit_values(&big, &r).unwrap();
        assert!(g.opens(&c, &big, &r).unwrap());
        assert!(!g.opens(&c, &[big[0], big[1] + Scalar::ONE], &r).unwrap());
        assert!(g.commit_values(&[Scalar::ONE; 4], &r).is_err());
    }

    #[test]
    fn a_changed_sum_does_not_open_the_commitments() {
        let g = CommitmentGenerators::new(8);
        let mut rng = StdRng::seed_from_u64(3);
        let counts = vector(&mut rng, 8);
        let r = Scalar::random(&mut rng);
        let c = g.commit(&counts, 32, &r).unwrap();
        let values: Vec<Scalar> = counts.iter().map(|v| Scalar::from(*v)).collect();
        assert!(g.opens(&c, &values, &r).unwrap());
        // an authority adds 1 to one bucket (its share, hence the sum), or moves a count between buckets
        let mut shifted = values.clone();
        shifted[3] += Scalar::ONE;
        assert!(!g.opens(&c, &shifted, &r).unwrap());
        let mut moved = values.clone();
        moved[1] += Scalar::ONE;
        moved[2] -= Scalar::ONE;
        assert!(!g.opens(&c, &moved, &r).unwrap());
        // or changes the blinding only
        assert!(!g.opens(&c, &values, &(r + Scalar::ONE)).unwrap());
        assert!(g.opens(&c, &[Scalar::ZERO; 9], &r).is_err());
    }

    #[test]
    fn boxes_open_only_with_their_key_round_and_header() {
        let mut rng = StdRng::seed_from_u64(6);
        let authority = SealingSecret::random(&mut rng);
        let relay = Ephemeral::random(&mut rng);
        let values: Vec<Scalar> = (0..5u64).map(Scalar::from).collect();
        let sealed = seal(&relay.box_key(&authority.public(), b"q1"), 2, b"relay-1|q1", &values).unwrap();
        assert_eq!(sealed.len(), 5 * 32 + BOX_TAG_BYTES);
        let key = authority.box_key(&relay.public, b"q1").unwrap();
        assert_eq!(open(&key, 2, b"relay-1|q1", &sealed).unwrap(), values);
        // another round, header (a colluding relay passing it off as its own), query or authority
        assert!(open(&key, 3, b"relay-1|q1", &sealed).is_err());
        assert!(open(&key, 2, b"relay-3|q1", &sealed).is_err());
        assert!(open(&authority.box_key(&relay.public, b"q2").unwrap(), 2, b"relay-1|q1", &sealed).is_err());
        let other = SealingSecret::random(&mut rng);
        assert!(open(&other.box_key(&relay.public, b"q1").unwrap(), 2, b"relay-1|q1", &sealed).is_err());
        // changed bytes; an ephemeral key that is no point or the identity
        let mut changed = sealed.clone();
        changed[7] ^= 1;
        assert!(open(&key, 2, b"relay-1|q1", &changed).is_err());
        assert!(authority.box_key(&CompressedRistretto([0xff; 32]), b"q1").is_err());
        assert!(authority.box_key(&RistrettoPoint::identity().compress(), b"q1").is_err());
        // a box of bytes that are not canonical scalars is refused after opening
        let bad = ChaCha20Poly1305::new(Key::from_slice(&relay.box_key(&authority.public(), b"q1").0))
            .encrypt(&nonce(2), Payload { msg: &[0xff; 32], aad: b"relay-1|q1" })
            .unwrap();
        assert!(open(&key, 2, b"relay-1|q1", &bad).is_err());
    }

    #[test]
    fn per_query_sealing_keys_are_stable_and_distinct() {
        let a = SealingSecret::for_query(b"seed of authority-1", b"query 7").public();
        assert_eq!(a, SealingSecret::for_query(b"seed of authority-1", b"query 7").public());
        assert_eq!(SealingKey::from_bytes(&a.to_bytes()).unwrap(), a);
        assert!(SealingKey::from_bytes(&[0; 32]).is_err());
        assert!(SealingKey::from_bytes(&[0xff; 32]).is_err());
        assert_ne!(a, SealingSecret::for_query(b"seed of authority-1", b"query 8").public());
        assert_ne!(a, SealingSecret::for_query(b"seed of authority-2", b"query 7").public());
    }

    #[test]
    fn noisy_releases_add_up_to_the_sums_plus_the_noise_and_pass_the_check() {
        let (buckets, indices) = (4usize, [1u16, 2, 3]);
        let g = CommitmentGenerators::new(4);
        let mut rng = StdRng::seed_from_u64(7);
        let mut sums = vec![vec![Scalar::ZERO; buckets + 1]; 3];
        let (mut total, mut commitment) = (vec![0i128; buckets], RistrettoPoint::identity());
        for _ in 0..3 {
            let counts = vector(&mut rng, buckets).iter().map(|c| c >> 8).collect::<Vec<u32>>();
            let r = Scalar::random(&mut rng);
            commitment += g.commit(&counts, 32, &r).unwrap();
            total.iter_mut().zip(&counts).for_each(|(a, c)| *a += i128::from(*c));
            let values: Vec<Scalar> = counts.iter().map(|c| Scalar::from(*c)).chain([r]).collect();
            for (sum, share) in sums.iter_mut().zip(share_values(&values, &indices, 3, &mut rng).unwrap()) {
                sum.iter_mut().zip(share).for_each(|(a, s)| *a += s);
            }
        }
        let noise = [[-3i64, 0, 5, -1_000_000], [2, 2, 2, 2], [0, -7, 1, 0]];
        let (mut releases, mut check) = (Vec::new(), commitment);
        for (k, index) in indices.iter().enumerate() {
            let lambda = lagrange_at_zero(*index, &indices).unwrap();
            let (r, n) = noisy_release(&g, &sums[k], &lambda, &noise[k], &mut rng).unwrap();
            releases.push((*index, r));
            check += n;
        }
        // interpolated as exact sums are
        let borrowed: Vec<(u16, &[Scalar])> = releases.iter().map(|(i, r)| (*i, r.as_slice())).collect();
        let released = reconstruct(&borrowed).unwrap();
        let (values, blind) = released.split_at(buckets);
        assert!(g.opens(&check, values, &blind[0]).unwrap());
        let expected: Vec<i128> =
            (0..buckets).map(|j| total[j] + noise.iter().map(|e| i128::from(e[j])).sum::<i128>()).collect();
        assert_eq!(values.iter().map(|v| signed_value(v).unwrap()).collect::<Vec<_>>(), expected);
        // a decryptor that adds other noise than it committed to is caught
        let mut shifted = values.to_vec();
        shifted[1] += Scalar::ONE;
        assert!(!g.opens(&check, &shifted, &blind[0]).unwrap());
        // and the noise commitments alone do not open the relays' commitments
        assert!(!g.opens(&commitment, values, &blind[0]).unwrap());
        assert!(noisy_release(&g, &sums[0], &Scalar::ONE, &[1, 2], &mut rng).is_err());
    }

    #[test]
    fn sharing_refuses_thresholds_it_cannot_meet_and_mismatched_vectors() {
        let mut rng = StdRng::seed_from_u64(4);
        let v = [Scalar::ONE];
        assert!(share_values(&v, &[1, 2], 3, &mut rng).is_err());
        assert!(share_values(&v, &[0, 1], 1, &mut rng).is_err());
        assert!(share_values(&v, &[1, 2], 0, &mut rng).is_err());
        assert!(share_values(&v, &[1, 2, 2], 2, &mut rng).is_err());
        let (a, b) = ([Scalar::ONE, Scalar::ONE], [Scalar::ONE]);
        assert!(reconstruct(&[(1, &a[..]), (2, &b[..])]).is_err());
        assert_eq!(small_value(&Scalar::from(u128::MAX)), Some(u128::MAX));
        for e in [0i64, 1, -1, 1_000_000, -1_000_000, i64::MIN, i64::MAX] {
            assert_eq!(signed_value(&scalar_from_i64(e)), Some(i128::from(e)));
        }
        assert_eq!(scalar_from_i64(-3), -Scalar::from(3u64));
        assert_eq!(small_value(&-Scalar::ONE), None);
    }
}
