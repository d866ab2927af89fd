//! Exponential ElGamal on ristretto255: Enc(m) = (k·G, k·Y + m·G).
//! Ciphertexts add homomorphically. Encryption uses precomputed tables for G
//! and for the joint key Y (built once per key, see `EncryptionKey::new`).
//! A key can also hold a pool of encryptions of zero made ahead of time
//! (k, k·G, k·Y: `EncryptionKey::precompute`, run by the relay between
//! requests): an encryption that takes one costs a walk of the
//! small-multiples table and an addition instead of two fixed-base
//! multiplications. Each pooled k is used once and wiped when taken.
//! The wire form is two 32-byte compressed points; decoding rejects
//! non-canonical or invalid points with an error. `Debug` never prints points.

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
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ciphertext {
    pub a: RistrettoPoint,
    pub b: RistrettoPoint,
}

impl fmt::Debug for Ciphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ciphertext(..)")
    }
}

impl Ciphertext {
    /// Enc(0) with zero randomness: the neutral element for sums.
    pub fn zero() -> Self {
        Ciphertext { a: RistrettoPoint::identity(), b: RistrettoPoint::identity() }
    }

    /// A trivial (unblinded) encryption of a public value, e.g. to shift an
    /// aggregate by a public constant.
    pub fn public(m: i64) -> Self {
        Ciphertext { a: RistrettoPoint::identity(), b: RISTRETTO_BASEPOINT_TABLE * &scalar_from_i64(m) }
    }

    /// Multiplies the plaintext by a public integer.
    pub fn scale(&self, factor: i64) -> Self {
        let s = scalar_from_i64(factor);
        Ciphertext { a: self.a * s, b: self.b * s }
    }

    /// Multiplies the plaintext by a public scalar (e.g. a limb weight 2^(kL)).
    pub fn scale_by(&self, factor: &Scalar) -> Self {
        Ciphertext { a: self.a * factor, b: self.b * factor }
    }

    /// The sum of many ciphertexts (Enc(0) for none).
    pub fn sum<'a>(items: impl IntoIterator<Item = &'a Ciphertext>) -> Self {
        items.into_iter().fold(Ciphertext::zero(), |acc, c| acc + *c)
    }

    /// 64-byte wire form: compressed a then compressed b.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(self.a.compress().as_bytes());
        out[32..].copy_from_slice(self.b.compress().as_bytes());
        out
    }

    /// Decodes the 64-byte wire form; rejects wrong lengths and invalid or
    /// non-canonical point encodings.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != 64 {
            return Err(CryptoError::InvalidEncoding {
                what: "ciphertext",
                reason: format!("expected 64 bytes, got {}", bytes.len()),
            });
        }
        let (a, b) = bytes.split_at(32);
        Ok(Ciphertext { a: decode_point(a, "ciphertext")?, b: decode_point(b, "ciphertext")? })
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
        Ciphertext { a: self.a + rhs.a, b: self.b + rhs.b }
    }
}

impl AddAssign for Ciphertext {
    fn add_assign(&mut self, rhs: Ciphertext) {
        self.a += rhs.a;
        self.b += rhs.b;
    }
}

impl Sub for Ciphertext {
    type Output = Ciphertext;
    fn sub(self, rhs: Ciphertext) -> Ciphertext {
        Ciphertext { a: self.a - rhs.a, b: self.b - rhs.b }
    }
}

impl Neg for Ciphertext {
    type Output = Ciphertext;
    fn neg(self) -> Ciphertext {
        Ciphertext { a: -self.a, b: -self.b }
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
    fn build() -> Self {
        let mut rows = Vec::with_capacity(16);
        let mut base = curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
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

    /// The process-wide table (about 16 KiB, built on first use).
    pub fn get() -> &'static SmallMultiples {
        static TABLE: std::sync::OnceLock<SmallMultiples> = std::sync::OnceLock::new();
        TABLE.get_or_init(SmallMultiples::build)
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

/// An encryption of zero made ahead of time: (k, k·G, k·Y). k is wiped
/// when the entry is dropped (taken or discarded with its key).
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

    /// Makes up to `at_most` encryptions of zero ahead of time, so that the
    /// pool holds at most `capacity`; returns how many it holds then. The
    /// work happens outside the pool's lock.
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
        if let Some(zero) = self.take_precomputed() {
            // `zero` wipes its own copy of k when it drops here
            return (Ciphertext { a: zero.a, b: zero.ky + SmallMultiples::get().mul_i64_within(m, bits) }, zero.k);
        }
        let k = Scalar::random(rng);
        (self.encrypt_with(m, &k), k)
    }

    /// Encrypts with the given randomness. Only for known-answer tests and
    /// noise ciphertexts whose randomness the caller keeps secret.
    pub fn encrypt_with(&self, m: i64, k: &Scalar) -> Ciphertext {
        let a = RISTRETTO_BASEPOINT_TABLE * k;
        let b = &*self.table * k + SmallMultiples::get().mul_i64(m);
        Ciphertext { a, b }
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
