//! Exponential ElGamal on ristretto255: Enc(m) = (k·G, k·Y + m·G).
//! Ciphertexts add homomorphically. Encryption uses precomputed tables for G
//! and for the joint key Y (built once per key, see `EncryptionKey::new`).
//! A key can also hold a pool of halves of encryptions of zero made ahead
//! of time (k', k'·G, k'·Y, for randomness k = 2k':
//! `EncryptionKey::precompute`, run by the relay between requests): an
//! encryption that takes one costs a walk of the small-multiples table of
//! G/2, an addition and two doublings instead of two fixed-base
//! multiplications. Each pooled k' is used once and wiped when taken.
//! The wire form is two 32-byte compressed points; decoding rejects
//! non-canonical or invalid points with an error. `Debug` never prints points.
//!
//! A ciphertext keeps its wire form once known: decoding keeps the bytes it
//! read, and a relay's batch encryption (`encrypt_batch_within`) computes
//! them for a whole contribution at about 1.4 µs per ciphertext instead of
//! 2 × 8 µs for compressing a and b one by one. It encrypts halves,
//! (k'·G, k'·Y + m·G/2) with k = 2k', encodes their doubles in one batch
//! (`double_and_compress_batch`), and doubles them. So forwarding a
//! contribution, and encoding its contribution statement
//! (`protocol::codec`), never compress its points again. Arithmetic on
//! ciphertexts drops the cached form.
//!
//! An authority never uses the second points b: it checks the relays'
//! signatures and proofs over the wire bytes, and decrypts with the first
//! points a alone. So it decodes its requests under
//! `decode_first_points_only`, which skips b's decompression (about half
//! its decoding time) and keeps b's bytes in the wire form; such a
//! ciphertext, and any sum it enters, has no second point (`b` is `None`).

use std::cell::Cell;
use std::fmt;
use std::ops::{Add, AddAssign, Neg, Sub};

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoBasepointTable, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::error::CryptoError;
use super::keys::JointPublicKey;
use super::scalar_from_i64;

/// An exponential ElGamal ciphertext (a, b) = (k·G, k·Y + m·G).
/// Serialized as its 64-byte wire form (`to_bytes`), a byte string: 66
/// bytes in MessagePack where serde's default for two points (arrays of 32
/// small integers) took about 100.
/// Equality compares the wire forms when both are known (decoding rejects
/// non-canonical encodings, so for fully decoded ciphertexts that is the
/// points' equality), else the points.
#[derive(Clone, Copy)]
pub struct Ciphertext {
    a: RistrettoPoint,
    /// `None` when decoded under `decode_first_points_only`, or summed with
    /// such a ciphertext
    b: Option<RistrettoPoint>,
    /// The 64-byte wire form of (a, b) when known (decoded or batch-encrypted).
    wire: Option<[u8; 64]>,
}

impl PartialEq for Ciphertext {
    fn eq(&self, other: &Self) -> bool {
        match (&self.wire, &other.wire) {
            (Some(x), Some(y)) => x == y,
            _ => self.a == other.a && self.b == other.b,
        }
    }
}

thread_local! {
    /// Set while `decode_first_points_only` runs on this thread.
    static FIRST_POINTS_ONLY: Cell<bool> = const { Cell::new(false) };
}

/// Resets the flag however `decode_first_points_only`'s closure returns.
struct FirstPointsOnly(bool);

impl Drop for FirstPointsOnly {
    fn drop(&mut self) {
        FIRST_POINTS_ONLY.with(|flag| flag.set(self.0));
    }
}

/// Runs `decode` (e.g. `protocol::wire::decode` of an authority's request)
/// with every ciphertext it decodes on this thread taking only its first
/// point a: b's 32 bytes stay in the wire form, unchecked, and `b()` is
/// `None`. For a party that never decrypts a whole ciphertext itself.
pub fn decode_first_points_only<T>(decode: impl FnOnce() -> T) -> T {
    let _restore = FirstPointsOnly(FIRST_POINTS_ONLY.with(|flag| flag.replace(true)));
    decode()
}

impl Eq for Ciphertext {}

impl fmt::Debug for Ciphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ciphertext(..)")
    }
}

impl Ciphertext {
    /// The ciphertext (a, b), without a cached wire form.
    pub fn from_points(a: RistrettoPoint, b: RistrettoPoint) -> Self {
        Ciphertext { a, b: Some(b), wire: None }
    }

    /// The first point, a = k·G.
    pub fn a(&self) -> &RistrettoPoint {
        &self.a
    }

    /// The second point, b = k·Y + m·G; `None` when it was not decoded
    /// (`decode_first_points_only`).
    pub fn b(&self) -> Option<&RistrettoPoint> {
        self.b.as_ref()
    }

    /// Whether the wire form is cached (decoded or batch-encrypted).
    pub fn has_wire_form(&self) -> bool {
        self.wire.is_some()
    }

    /// Enc(0) with zero randomness: the neutral element for sums.
    pub fn zero() -> Self {
        Ciphertext::from_points(RistrettoPoint::identity(), RistrettoPoint::identity())
    }

    /// A trivial (unblinded) encryption of a public value, e.g. to shift an
    /// aggregate by a public constant.
    pub fn public(m: i64) -> Self {
        Ciphertext::from_points(RistrettoPoint::identity(), RISTRETTO_BASEPOINT_TABLE * &scalar_from_i64(m))
    }

    /// Multiplies the plaintext by a public integer.
    pub fn scale(&self, factor: i64) -> Self {
        self.scale_by(&scalar_from_i64(factor))
    }

    /// Multiplies the plaintext by a public scalar (e.g. a limb weight 2^(kL)).
    pub fn scale_by(&self, factor: &Scalar) -> Self {
        Ciphertext { a: self.a * factor, b: self.b.map(|b| b * factor), wire: None }
    }

    /// The sum of many ciphertexts (Enc(0) for none).
    pub fn sum<'a>(items: impl IntoIterator<Item = &'a Ciphertext>) -> Self {
        items.into_iter().fold(Ciphertext::zero(), |acc, c| acc + *c)
    }

    /// 64-byte wire form: compressed a then compressed b (the cached form
    /// when there is one).
    pub fn to_bytes(&self) -> [u8; 64] {
        if let Some(wire) = self.wire {
            return wire;
        }
        // without b and without a wire form: a sum an authority made of
        // ciphertexts it decoded without b, which it never encodes; b is
        // written as the identity
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(self.a.compress().as_bytes());
        out[32..].copy_from_slice(self.b.unwrap_or_default().compress().as_bytes());
        out
    }

    /// Decodes the 64-byte wire form and keeps it; rejects wrong lengths
    /// and invalid or non-canonical point encodings (of a alone under
    /// `decode_first_points_only`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != 64 {
            return Err(CryptoError::InvalidEncoding {
                what: "ciphertext",
                reason: format!("expected 64 bytes, got {}", bytes.len()),
            });
        }
        let mut wire = [0u8; 64];
        wire.copy_from_slice(bytes);
        let (a, b) = bytes.split_at(32);
        let b = match FIRST_POINTS_ONLY.with(Cell::get) {
            true => None,
            false => Some(decode_point(b, "ciphertext")?),
        };
        Ok(Ciphertext { a: decode_point(a, "ciphertext")?, b, wire: Some(wire) })
    }
}

impl Serialize for Ciphertext {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> Deserialize<'de> for Ciphertext {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_bytes(Bytes64Visitor {
            what: "a 64-byte ciphertext (two compressed ristretto255 points)",
            parse: Ciphertext::from_bytes,
        })
    }
}

/// Deserializes a value sent as 64 bytes (`Ciphertext`,
/// `AdmissionSignature`): a byte string (MessagePack) or a sequence of
/// integers (formats without byte strings, e.g. JSON), checked by `parse`.
pub(crate) struct Bytes64Visitor<T> {
    pub what: &'static str,
    pub parse: fn(&[u8]) -> Result<T, CryptoError>,
}

impl<'de, T> serde::de::Visitor<'de> for Bytes64Visitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<T, E> {
        (self.parse)(bytes).map_err(E::custom)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        let mut bytes = [0u8; 64];
        for (i, slot) in bytes.iter_mut().enumerate() {
            *slot = seq.next_element()?.ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
        }
        if seq.next_element::<u8>()?.is_some() {
            return Err(serde::de::Error::invalid_length(65, &self));
        }
        (self.parse)(&bytes).map_err(serde::de::Error::custom)
    }
}

/// Decodes a 32-byte compressed ristretto255 point.
pub fn decode_point(bytes: &[u8], what: &'static str) -> Result<RistrettoPoint, CryptoError> {
    let compressed = CompressedRistretto::from_slice(bytes).map_err(|_| CryptoError::InvalidEncoding {
        what,
        reason: format!("expected 32 bytes, got {}", bytes.len()),
    })?;
    compressed
        .decompress()
        .ok_or_else(|| CryptoError::InvalidEncoding { what, reason: "not a canonical ristretto255 point".to_string() })
}

impl Add for Ciphertext {
    type Output = Ciphertext;
    fn add(self, rhs: Ciphertext) -> Ciphertext {
        Ciphertext { a: self.a + rhs.a, b: self.b.zip(rhs.b).map(|(x, y)| x + y), wire: None }
    }
}

impl AddAssign for Ciphertext {
    fn add_assign(&mut self, rhs: Ciphertext) {
        self.a += rhs.a;
        self.b = self.b.zip(rhs.b).map(|(x, y)| x + y);
        self.wire = None;
    }
}

impl Sub for Ciphertext {
    type Output = Ciphertext;
    fn sub(self, rhs: Ciphertext) -> Ciphertext {
        Ciphertext { a: self.a - rhs.a, b: self.b.zip(rhs.b).map(|(x, y)| x - y), wire: None }
    }
}

impl Neg for Ciphertext {
    type Output = Ciphertext;
    fn neg(self) -> Ciphertext {
        Ciphertext { a: -self.a, b: self.b.map(|b| -b), wire: None }
    }
}

/// m·G for a signed 64-bit m from a table of d·16^i·G (16 nibbles x 16
/// digits): 16 additions instead of a full 253-bit fixed-base multiplication.
/// Constant time in m: every entry of a row is visited with
/// `conditional_assign` and the sign is applied by a conditional negation.
pub struct SmallMultiples {
    rows: Vec<[RistrettoPoint; 16]>,
}

impl SmallMultiples {
    fn build(mut base: RistrettoPoint) -> Self {
        let mut rows = Vec::with_capacity(16);
        for _ in 0..16 {
            let mut row = [RistrettoPoint::identity(); 16];
            let mut acc = RistrettoPoint::identity();
            for slot in row.iter_mut().skip(1) {
                acc += base;
                *slot = acc;
            }
            base = acc + base; // 16·base
            rows.push(row);
        }
        SmallMultiples { rows }
    }

    /// The process-wide table of G (about 16 KiB, built on first use).
    pub fn get() -> &'static SmallMultiples {
        static TABLE: std::sync::OnceLock<SmallMultiples> = std::sync::OnceLock::new();
        TABLE.get_or_init(|| SmallMultiples::build(curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT))
    }

    /// The process-wide table of G/2 = 2⁻¹·G, for encrypting halves
    /// (`EncryptionKey::encrypt_batch_within`).
    pub fn half() -> &'static SmallMultiples {
        static TABLE: std::sync::OnceLock<SmallMultiples> = std::sync::OnceLock::new();
        TABLE.get_or_init(|| SmallMultiples::build(RISTRETTO_BASEPOINT_TABLE * &super::batch_decryption::half()))
    }

    pub fn mul_i64(&self, m: i64) -> RistrettoPoint {
        self.walk(m, self.rows.len())
    }

    /// m·G for |m| < 2^bits, walking only the ⌈bits/4⌉ rows that such an m
    /// can use: constant time in m for a public `bits` (a relay's counts
    /// stay below 2^33, a limb below 2^limb_bits), and 2 to 4 times cheaper
    /// than `mul_i64` for small bounds. An m outside the bound takes the
    /// whole walk (the caps in `stats::limits` make that impossible).
    pub fn mul_i64_within(&self, m: i64, bits: u32) -> RistrettoPoint {
        let rows = usize::try_from(bits.div_ceil(4)).unwrap_or(usize::MAX).min(self.rows.len());
        let fits = u32::try_from(4 * rows).ok().and_then(|shift| m.unsigned_abs().checked_shr(shift)).unwrap_or(0) == 0;
        self.walk(m, if fits { rows } else { self.rows.len() })
    }

    /// Σ of the first `rows` rows' entries for the nibbles of |m|, negated for m < 0.
    fn walk(&self, m: i64, rows: usize) -> RistrettoPoint {
        use subtle::{ConditionallyNegatable, ConditionallySelectable, ConstantTimeEq};
        let v = m.unsigned_abs();
        let mut acc = RistrettoPoint::identity();
        for (i, row) in self.rows.iter().take(rows).enumerate() {
            let digit = ((v >> (4 * i)) & 15) as u8;
            let mut selected = RistrettoPoint::identity();
            for (d, point) in (0u8..).zip(row.iter()) {
                selected.conditional_assign(point, d.ct_eq(&digit));
            }
            acc += selected;
        }
        acc.conditional_negate(subtle::Choice::from(u8::from(m < 0)));
        acc
    }
}

/// Half of an encryption of zero made ahead of time: (k', k'·G, k'·Y),
/// the encryption's randomness being k = 2k'. k' is wiped when the entry
/// is dropped (taken or discarded with its key).
struct Precomputed {
    k: Scalar,
    a: RistrettoPoint,
    ky: RistrettoPoint,
}

impl Drop for Precomputed {
    fn drop(&mut self) {
        self.k.zeroize();
    }
}

/// The joint public key with its precomputed multiplication table: build
/// once per key and reuse for every encryption; and its pool of
/// encryptions of zero made ahead of time.
pub struct EncryptionKey {
    joint: RistrettoPoint,
    table: Box<RistrettoBasepointTable>,
    pool: std::sync::Mutex<Vec<Precomputed>>,
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKey").field("joint", &hex::encode(self.joint.compress().as_bytes())).finish()
    }
}

impl EncryptionKey {
    pub fn new(key: &JointPublicKey) -> Self {
        let joint = key.point();
        EncryptionKey {
            joint,
            table: Box::new(RistrettoBasepointTable::create(&joint)),
            pool: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Makes up to `at_most` halves of encryptions of zero ahead of time
    /// (`Precomputed`), so that the pool holds at most `capacity`; returns
    /// how many it holds then. The work happens outside the pool's lock.
    pub fn precompute(&self, capacity: usize, at_most: usize, rng: &mut (impl RngCore + CryptoRng)) -> usize {
        let missing = capacity.saturating_sub(self.pooled()).min(at_most);
        let made: Vec<Precomputed> = (0..missing)
            .map(|_| {
                let k = Scalar::random(rng);
                Precomputed { a: RISTRETTO_BASEPOINT_TABLE * &k, ky: &*self.table * &k, k }
            })
            .collect();
        match self.pool.lock() {
            Ok(mut pool) => {
                pool.extend(made);
                pool.len()
            }
            // a poisoned pool is never used again: encryptions make fresh randomness
            Err(_) => 0,
        }
    }

    /// Encryptions of zero waiting in the pool.
    pub fn pooled(&self) -> usize {
        self.pool.lock().map(|p| p.len()).unwrap_or(0)
    }

    fn take_precomputed(&self) -> Option<Precomputed> {
        self.pool.lock().ok().and_then(|mut p| p.pop())
    }

    /// Encrypts a signed 64-bit value with fresh randomness (constant time in
    /// the value and the randomness; the randomness is wiped afterwards).
    pub fn encrypt(&self, m: i64, rng: &mut (impl RngCore + CryptoRng)) -> Ciphertext {
        let mut k = Scalar::random(rng);
        let ct = self.encrypt_with(m, &k);
        k.zeroize();
        ct
    }

    /// Encrypts with fresh randomness and returns it too, for a proof of
    /// knowledge of the randomness (`ciphertext_proof`). The caller must wipe
    /// it (`zeroize`) and never send or log it.
    /// Takes an encryption of zero from the pool when there is one.
    pub fn encrypt_with_randomness(&self, m: i64, rng: &mut (impl RngCore + CryptoRng)) -> (Ciphertext, Scalar) {
        self.encrypt_within(m, 64, rng)
    }

    /// `encrypt_with_randomness` for a value with |m| < 2^bits, where `bits`
    /// is public (`SmallMultiples::mul_i64_within`): a pooled encryption
    /// then costs a walk of ⌈bits/4⌉ table rows instead of 16.
    pub fn encrypt_within(&self, m: i64, bits: u32, rng: &mut (impl RngCore + CryptoRng)) -> (Ciphertext, Scalar) {
        let (half_a, half_b, k) = self.encrypt_half(m, bits, rng);
        (Ciphertext::from_points(half_a + half_a, half_b + half_b), k)
    }

    /// Half of an encryption of m with |m| < 2^bits: (k'·G, k'·Y + m·G/2)
    /// and k = 2k', from the pool when it has an entry.
    fn encrypt_half(
        &self,
        m: i64,
        bits: u32,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> (RistrettoPoint, RistrettoPoint, Scalar) {
        let message = SmallMultiples::half().mul_i64_within(m, bits);
        if let Some(zero) = self.take_precomputed() {
            // `zero` wipes its own copy of k' when it drops here
            return (zero.a, zero.ky + message, zero.k + zero.k);
        }
        let mut half_k = Scalar::random(rng);
        let half = (RISTRETTO_BASEPOINT_TABLE * &half_k, &*self.table * &half_k + message, half_k + half_k);
        half_k.zeroize();
        half
    }

    /// Encrypts every (m, bits) of `values` as `encrypt_within` does and
    /// computes all the ciphertexts' wire forms in one batch (see the
    /// module docs): the relay's encryption of a contribution. Returns the
    /// ciphertexts and their randomness, in order; the caller must wipe it.
    pub fn encrypt_batch_within(
        &self,
        values: &[(i64, u32)],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> (Vec<Ciphertext>, Vec<Scalar>) {
        let mut halves = Vec::with_capacity(values.len());
        let mut randomness = Vec::with_capacity(values.len());
        for &(m, bits) in values {
            let (half_a, half_b, k) = self.encrypt_half(m, bits, rng);
            halves.push((half_a, half_b));
            randomness.push(k);
        }
        let points: Vec<RistrettoPoint> = halves.iter().flat_map(|(a, b)| [*a, *b]).collect();
        let encoded = RistrettoPoint::double_and_compress_batch(&points);
        let ciphertexts = halves
            .iter()
            .zip(encoded.chunks_exact(2))
            .map(|((half_a, half_b), e)| {
                let mut wire = [0u8; 64];
                for (slot, point) in wire.chunks_exact_mut(32).zip(e) {
                    slot.copy_from_slice(point.as_bytes());
                }
                Ciphertext { a: half_a + half_a, b: Some(half_b + half_b), wire: Some(wire) }
            })
            .collect();
        (ciphertexts, randomness)
    }

    /// Encrypts with the given randomness. Only for known-answer tests and
    /// noise ciphertexts whose randomness the caller keeps secret.
    pub fn encrypt_with(&self, m: i64, k: &Scalar) -> Ciphertext {
        let a = RISTRETTO_BASEPOINT_TABLE * k;
        let b = &*self.table * k + SmallMultiples::get().mul_i64(m);
        Ciphertext::from_points(a, b)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn small_multiples_match_the_basepoint_table() {
        let t = SmallMultiples::get();
        for m in [0i64, 1, -1, 15, 16, -17, 42, -123456789, i64::MAX, i64::MIN, i64::MIN + 1, 1 << 40] {
            let expected = RISTRETTO_BASEPOINT_TABLE * &scalar_from_i64(m);
            assert_eq!(t.mul_i64(m), expected, "{m}");
            // within a bound, at its edges, and beyond it (the whole walk)
            for bits in [0u32, 1, 4, 5, 20, 33, 63, 64, 200] {
                assert_eq!(t.mul_i64_within(m, bits), expected, "{m} within 2^{bits}");
            }
        }
        for bits in [4u32, 20, 33] {
            let edge = (1i64 << bits) - 1;
            for m in [edge, -edge, edge + 1, -(edge + 1)] {
                assert_eq!(t.mul_i64_within(m, bits), RISTRETTO_BASEPOINT_TABLE * &scalar_from_i64(m), "{m}");
            }
        }
    }

    /// A pooled encryption is the encryption under its k, each k is used
    /// once, and an empty pool falls back to fresh randomness.
    #[test]
    fn pooled_encryptions_are_ordinary_encryptions_used_once() {
        use crate::crypto::keys::deal_for_tests;
        use rand::rngs::OsRng;
        let key = EncryptionKey::new(&deal_for_tests(&["authority-1"], 1, 0, &mut OsRng).unwrap().1);
        assert_eq!(key.precompute(5, 3, &mut OsRng), 3);
        assert_eq!(key.precompute(5, 100, &mut OsRng), 5);
        assert_eq!(key.precompute(5, 100, &mut OsRng), 5, "never beyond the capacity");
        let mut ks = Vec::new();
        for m in [0i64, 1, -7, 1 << 40, 9, 3] {
            let (c, k) = key.encrypt_with_randomness(m, &mut OsRng);
            assert_eq!(c, key.encrypt_with(m, &k), "{m}");
            assert!(!ks.contains(&k), "a pooled k is used once");
            ks.push(k);
        }
        assert_eq!(key.pooled(), 0, "five from the pool, the sixth fresh");
    }

    /// A batch encryption is, ciphertext by ciphertext, the encryption
    /// under its randomness, pooled or fresh, and its cached wire form is
    /// the points' canonical encoding; arithmetic drops the cache.
    #[test]
    fn batch_encryptions_carry_their_wire_form() {
        use crate::crypto::keys::deal_for_tests;
        use rand::rngs::OsRng;
        let key = EncryptionKey::new(&deal_for_tests(&["authority-1"], 1, 0, &mut OsRng).unwrap().1);
        key.precompute(3, 3, &mut OsRng);
        let values = [(0i64, 4u32), (1, 4), (-7, 33), (1 << 40, 48), (9, 4), (-(1 << 20), 33)];
        let (cts, ks) = key.encrypt_batch_within(&values, &mut OsRng);
        assert_eq!(key.pooled(), 0, "three from the pool, three fresh");
        assert_eq!((cts.len(), ks.len()), (values.len(), values.len()));
        for ((c, k), (m, _)) in cts.iter().zip(&ks).zip(values) {
            assert_eq!(*c, key.encrypt_with(m, k), "{m}");
            assert!(c.has_wire_form());
            let plain = Ciphertext::from_points(*c.a(), *c.b().unwrap());
            assert!(!plain.has_wire_form());
            assert_eq!(c.to_bytes(), plain.to_bytes(), "{m}: the cached form is the encoding");
            let decoded = Ciphertext::from_bytes(&c.to_bytes()).unwrap();
            assert!(decoded.has_wire_form());
            assert_eq!(decoded, *c);
        }
        let mut sum = cts[0];
        sum += cts[1];
        assert!(!sum.has_wire_form() && !(cts[0] + cts[1]).has_wire_form() && !(-cts[0]).has_wire_form());
        assert_eq!(sum.to_bytes(), Ciphertext::from_points(*sum.a(), *sum.b().unwrap()).to_bytes());
    }

    /// Under `decode_first_points_only` a ciphertext keeps a and its whole
    /// wire form but not b, which is not even checked; sums keep a right
    /// and have no b; the flag ends with the closure.
    #[test]
    fn first_points_only_skips_the_second_point() {
        let (x, y) = (Ciphertext::public(5) + Ciphertext::public(0).scale(3), Ciphertext::public(-9));
        let (bx, by) = (x.to_bytes(), y.to_bytes());
        let mut garbage = by;
        garbage[63] = 0xff; // b never canonical
        let (dx, dy, dg) = decode_first_points_only(|| {
            (
                Ciphertext::from_bytes(&bx).unwrap(),
                Ciphertext::from_bytes(&by).unwrap(),
                Ciphertext::from_bytes(&garbage),
            )
        });
        assert!(Ciphertext::from_bytes(&garbage).is_err(), "checked again outside");
        let dg = dg.unwrap();
        assert_eq!((dx.a(), dy.a(), dg.a()), (x.a(), y.a(), y.a()));
        assert!(dx.b().is_none() && dy.b().is_none() && dg.b().is_none());
        assert_eq!((dx.to_bytes(), dg.to_bytes()), (bx, garbage), "the bytes read, b's too");
        assert_eq!(dx, Ciphertext::from_bytes(&bx).unwrap(), "wire forms equal");
        assert_ne!(dx, x, "without a wire form on one side the points count, and b is missing");
        assert_ne!(dg, dy, "b's bytes differ");
        let sum = dx + dy;
        assert_eq!(*sum.a(), x.a() + y.a());
        assert!(sum.b().is_none() && (dx - dy).b().is_none() && (-dx).b().is_none() && dx.scale(2).b().is_none());
        assert!((x + y).b().is_some());
        let mut acc = x;
        acc += dy;
        assert!(acc.b().is_none());
        // a's own encoding is still checked
        let mut bad_a = bx;
        bad_a[31] = 0xff;
        assert!(decode_first_points_only(|| Ciphertext::from_bytes(&bad_a)).is_err());
    }

    #[test]
    fn wire_form_round_trips_and_rejects_garbage() {
        let c = Ciphertext::public(42);
        let bytes = c.to_bytes();
        assert_eq!(Ciphertext::from_bytes(&bytes).unwrap(), c);
        assert!(Ciphertext::from_bytes(&bytes[..63]).is_err());
        let mut bad = bytes;
        bad[40] = 0xff;
        bad[63] = 0xff; // high bit set: never canonical
        assert!(Ciphertext::from_bytes(&bad).is_err());
        assert_eq!(format!("{c:?}"), "Ciphertext(..)");
    }
}
