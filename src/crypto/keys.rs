//! Authority key shares and the committee's joint public key (t-of-n).
//!
//! The committee's secret x is never held anywhere: each authority holds a
//! Shamir share x_i = f(i) of a degree-(t−1) polynomial f with f(0) = x,
//! made by a distributed key generation (`crypto::dkg`), and publishes its
//! verification key Y_i = x_i·G. Any t shares recover x·G-relations through
//! Lagrange coefficients at zero: x = Σ_{i∈S} λ_i^S·x_i for |S| = t.
//!
//! `JointPublicKey` is public: the epoch, the threshold t, every member's
//! name, index i and Y_i, and the joint key Y = x·G. `JointPublicKey::new`
//! checks that the Y_i lie on one polynomial of degree t−1 whose value at
//! zero is Y (Lagrange in the exponent), so a file whose keys were altered
//! is refused. Key shares are wiped on drop and never printed. Byte
//! encodings are versioned; writing them to files is `data::keystore`'s job.

use std::fmt;

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::dkg::CommitteeKey;
use super::elgamal::decode_point;
use super::error::CryptoError;

const KEY_MAGIC: &[u8; 8] = b"CRUXKEY2";

/// An authority's secret key share x_i at index i of one epoch's committee.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct KeyShare {
    #[zeroize(skip)]
    authority: String,
    #[zeroize(skip)]
    epoch: u64,
    #[zeroize(skip)]
    index: u16,
    secret: Scalar,
    #[zeroize(skip)]
    public: RistrettoPoint,
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("authority", &self.authority)
            .field("epoch", &self.epoch)
            .field("index", &self.index)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl KeyShare {
    /// A share from its parts (the DKG's output); the index must not be 0.
    pub fn new(authority: &str, epoch: u64, index: u16, secret: Scalar) -> Result<Self, CryptoError> {
        if index == 0 {
            return Err(CryptoError::CorruptKey { reason: "a key share's index must not be 0".into() });
        }
        let public = RISTRETTO_BASEPOINT_TABLE * &secret;
        Ok(KeyShare { authority: authority.to_string(), epoch, index, secret, public })
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn index(&self) -> u16 {
        self.index
    }

    /// Y_i = x_i·G, this share's verification key.
    pub fn public_point(&self) -> RistrettoPoint {
        self.public
    }

    /// The secret scalar, inside `crypto` only (signing, resharing).
    /// The share as the DKG layer's type, to deal it to a new committee
    /// (`dkg::deal_reshare`).
    pub fn to_dkg_share(&self) -> super::dkg::DkgShare {
        super::dkg::DkgShare { index: self.index, secret: self.secret }
    }

    pub(super) fn secret_scalar(&self) -> &Scalar {
        &self.secret
    }

    /// Versioned encoding: magic `CRUXKEY2`, epoch (u64 BE), index (u16 BE),
    /// id length (u16 BE), id, secret (32), public (32).
    pub fn to_bytes(&self) -> Vec<u8> {
        let id = self.authority.as_bytes();
        let mut out = Vec::with_capacity(8 + 12 + id.len() + 64);
        out.extend_from_slice(KEY_MAGIC);
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.index.to_be_bytes());
        // ids are validated to be short when configs are read; clamp anyway
        let len = u16::try_from(id.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(id.get(..usize::from(len)).unwrap_or(id));
        out.extend_from_slice(self.secret.as_bytes());
        out.extend_from_slice(self.public.compress().as_bytes());
        out
    }

    /// Decodes `to_bytes`, checking the magic, lengths, a canonical secret,
    /// a non-zero index and that the stored public share matches the secret.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let corrupt = |reason: &str| CryptoError::CorruptKey { reason: reason.to_string() };
        let rest = bytes.strip_prefix(KEY_MAGIC.as_slice()).ok_or_else(|| {
            if bytes.starts_with(b"CRUXKEY1") {
                corrupt("an n-of-n key share from before the committee; run the distributed key generation")
            } else {
                corrupt("missing CRUXKEY2 header")
            }
        })?;
        let (epoch, rest) = rest.split_first_chunk::<8>().ok_or_else(|| corrupt("truncated before the epoch"))?;
        let (index, rest) = rest.split_first_chunk::<2>().ok_or_else(|| corrupt("truncated before the index"))?;
        let (len, rest) = rest.split_first_chunk::<2>().ok_or_else(|| corrupt("truncated before the id"))?;
        let len = usize::from(u16::from_be_bytes(*len));
        if rest.len() != len + 64 {
            return Err(corrupt(&format!("expected {} bytes after the header, found {}", len + 64, rest.len())));
        }
        let (id, rest) = rest.split_at(len);
        let authority = std::str::from_utf8(id).map_err(|_| corrupt("authority id is not UTF-8"))?;
        let (secret_bytes, public_bytes) = rest.split_at(32);
        let mut secret_arr = [0u8; 32];
        secret_arr.copy_from_slice(secret_bytes);
        let secret = Option::<Scalar>::from(Scalar::from_canonical_bytes(secret_arr))
            .ok_or_else(|| corrupt("secret is not a canonical scalar"))?;
        secret_arr.zeroize();
        let public = decode_point(public_bytes, "public key share").map_err(|e| corrupt(&e.to_string()))?;
        let share = KeyShare::new(authority, u64::from_be_bytes(*epoch), u16::from_be_bytes(*index), secret)?;
        if share.public != public {
            return Err(corrupt("public share does not match the secret"));
        }
        Ok(share)
    }
}

/// A public point with its encoding, which transcripts hash: a member's
/// verification key Y_i (`authority_signature`) or a decryptor's λ_i·Y_i
/// (`batch_decryption`), compressed once instead of at every check.
#[derive(Clone, Copy, Debug)]
pub struct EncodedPoint<'a> {
    pub point: &'a RistrettoPoint,
    pub encoding: CompressedRistretto,
}

impl<'a> EncodedPoint<'a> {
    /// Compresses `point` (for a single check; `JointPublicKey::signer_key`
    /// and `DecryptingSet` keep their encodings).
    pub fn of(point: &'a RistrettoPoint) -> Self {
        EncodedPoint { point, encoding: point.compress() }
    }
}

/// One committee member: its name, its Shamir index and Y_i = x_i·G.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub authority: String,
    pub index: u16,
    pub point: RistrettoPoint,
}

/// The committee's public key: epoch, threshold, members and Y.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JointPublicKey {
    epoch: u64,
    threshold: u16,
    members: Vec<Member>,
    point: RistrettoPoint,
    /// each member's Y_i compressed, in `members` order, which signature
    /// checks hash: made on first use, never serialized
    #[serde(skip)]
    encodings: std::sync::OnceLock<Vec<CompressedRistretto>>,
}

impl PartialEq for JointPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.epoch == other.epoch
            && self.threshold == other.threshold
            && self.members == other.members
            && self.point == other.point
    }
}

impl Eq for JointPublicKey {}

/// λ_i for index `index` within `set` at zero: Π_{j∈set, j≠i} j / (j − i)
/// (`dkg::lagrange_at_zero`, with this module's error).
pub fn lagrange_at_zero(index: u16, set: &[u16]) -> Result<Scalar, CryptoError> {
    super::dkg::lagrange_at_zero(index, set).map_err(|e| CryptoError::InvalidCommittee { reason: e.to_string() })
}

impl JointPublicKey {
    /// Checks and builds a committee key: members with distinct names and
    /// no identity key, and `dkg::CommitteeKey::check` (1 ≤ t ≤ n, distinct
    /// non-zero indices, every Y_i and Y on one polynomial of degree t−1).
    pub fn new(epoch: u64, threshold: u16, members: Vec<Member>, point: RistrettoPoint) -> Result<Self, CryptoError> {
        if members.is_empty() {
            return Err(CryptoError::NoShares);
        }
        for (pos, m) in members.iter().enumerate() {
            if members.iter().skip(pos + 1).any(|o| o.authority == m.authority) {
                return Err(CryptoError::DuplicateAuthority { authority: m.authority.clone() });
            }
            if m.point == RistrettoPoint::identity() {
                return Err(CryptoError::InvalidCommittee {
                    reason: format!("member {} has the identity as its key", m.authority),
                });
            }
        }
        let committee =
            CommitteeKey { threshold, members: members.iter().map(|m| (m.index, m.point)).collect(), group_key: point };
        committee.check().map_err(|e| {
            let named = members.iter().fold(e.to_string(), |text, m| {
                text.replace(&format!("member {} ", m.index), &format!("member {} ", m.authority))
            });
            CryptoError::InvalidCommittee { reason: named }
        })?;
        Ok(JointPublicKey { epoch, threshold, members, point, encodings: std::sync::OnceLock::new() })
    }

    /// Y, the key relays encrypt to.
    pub fn point(&self) -> RistrettoPoint {
        self.point
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// t: how many members decrypt together.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The member called `authority`.
    pub fn share_of(&self, authority: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.authority == authority)
    }

    /// The key of member `authority` as a signature check needs it: Y_i
    /// and its encoding (compressed once per committee key).
    pub fn signer_key(&self, authority: &str) -> Option<EncodedPoint<'_>> {
        let at = self.members.iter().position(|m| m.authority == authority)?;
        let encodings = self.encodings.get_or_init(|| self.members.iter().map(|m| m.point.compress()).collect());
        Some(EncodedPoint { point: &self.members.get(at)?.point, encoding: *encodings.get(at)? })
    }

    /// Hex of the compressed joint key: what `committee status` shows and
    /// operators compare.
    pub fn fingerprint(&self) -> String {
        hex::encode(self.point.compress().as_bytes())
    }

    /// The DKG layer's view of this committee (indices and Y_i, t, Y).
    pub fn committee_key(&self) -> super::dkg::CommitteeKey {
        super::dkg::CommitteeKey {
            threshold: self.threshold,
            members: self.members.iter().map(|m| (m.index, m.point)).collect(),
            group_key: self.point,
        }
    }

    /// Checks that `set` names exactly t distinct members (a query's
    /// decryptors) and gives each one's Lagrange coefficient, in order.
    /// (`dkg::lagrange_basis` at 0: one field inversion for the set.)
    pub fn lagrange(&self, set: &[String]) -> Result<Vec<Scalar>, CryptoError> {
        let indices = self.decryptor_indices(set)?;
        super::dkg::lagrange_basis(Scalar::ZERO, &indices)
            .map_err(|e| CryptoError::InvalidCommittee { reason: e.to_string() })
    }

    /// Checks that `set` names exactly t distinct members (what `lagrange`
    /// needs), without computing the coefficients: for a relay, which
    /// only checks who signed.
    pub fn check_decryptors(&self, set: &[String]) -> Result<(), CryptoError> {
        self.decryptor_indices(set).map(|_| ())
    }

    /// The members' indices of a decrypting set: t distinct members.
    fn decryptor_indices(&self, set: &[String]) -> Result<Vec<u16>, CryptoError> {
        if set.len() != usize::from(self.threshold) {
            return Err(CryptoError::InvalidCommittee {
                reason: format!("{} decryptors named where the threshold is {}", set.len(), self.threshold),
            });
        }
        let indices = set
            .iter()
            .map(|name| {
                self.share_of(name).map(|m| m.index).ok_or_else(|| CryptoError::InvalidCommittee {
                    reason: format!("{name} is not a member of the committee"),
                })
            })
            .collect::<Result<Vec<u16>, CryptoError>>()?;
        super::dkg::committee::validate_indices(&indices, "the decrypting set")
            .map_err(|e| CryptoError::InvalidCommittee { reason: e.to_string() })?;
        Ok(indices)
    }
}

/// A trusted dealer's Shamir sharing, for tests and benchmarks only: real
/// committees come from the distributed key generation, where no one
/// holds x. Members get indices 1..=n in the order of `names`.
pub fn deal_for_tests(
    names: &[&str],
    threshold: u16,
    epoch: u64,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(Vec<KeyShare>, JointPublicKey), CryptoError> {
    let coefficients: Vec<Scalar> = (0..threshold.max(1)).map(|_| Scalar::random(rng)).collect();
    let mut shares = Vec::with_capacity(names.len());
    let mut members = Vec::with_capacity(names.len());
    for (pos, name) in names.iter().enumerate() {
        let index = u16::try_from(pos + 1).map_err(|_| CryptoError::Overflow("member index"))?;
        let x = Scalar::from(index);
        let secret = coefficients.iter().rev().fold(Scalar::ZERO, |acc, c| acc * x + c);
        let share = KeyShare::new(name, epoch, index, secret)?;
        members.push(Member { authority: name.to_string(), index, point: share.public_point() });
        shares.push(share);
    }
    let point = RISTRETTO_BASEPOINT_TABLE * coefficients.first().unwrap_or(&Scalar::ZERO);
    let joint = JointPublicKey::new(epoch, threshold, members, point)?;
    Ok((shares, joint))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
    use rand::rngs::OsRng;

    #[test]
    fn any_t_shares_recover_the_key_and_altered_keys_are_refused() {
        let names = ["a1", "a2", "a3", "a4", "a5"];
        let (shares, joint) = deal_for_tests(&names, 3, 0, &mut OsRng).unwrap();
        for s in 0..5 {
            for u in s + 1..5 {
                for v in u + 1..5 {
                    let set: Vec<String> = [s, u, v].iter().map(|&i| names[i].to_string()).collect();
                    let l = joint.lagrange(&set).unwrap();
                    let x = l[0] * shares[s].secret + l[1] * shares[u].secret + l[2] * shares[v].secret;
                    assert_eq!(RISTRETTO_BASEPOINT_TABLE * &x, joint.point(), "{set:?}");
                }
            }
        }
        let mut members = joint.members().to_vec();
        members[4].point += RISTRETTO_BASEPOINT_POINT;
        let err = JointPublicKey::new(0, 3, members, joint.point()).unwrap_err();
        assert!(err.to_string().contains("a5"), "{err}");
        let err = JointPublicKey::new(0, 3, joint.members().to_vec(), joint.point() + joint.point()).unwrap_err();
        assert!(matches!(err, CryptoError::InvalidCommittee { .. }));
        assert!(JointPublicKey::new(0, 6, joint.members().to_vec(), joint.point()).is_err());
        assert!(JointPublicKey::new(0, 0, joint.members().to_vec(), joint.point()).is_err());
        for set in [["a1", "a2", "a3"], ["a5", "a2", "a4"], ["a3", "a1", "a5"]] {
            let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
            let indices: Vec<u16> = set.iter().map(|n| joint.share_of(n).unwrap().index).collect();
            let one_by_one: Vec<Scalar> = indices.iter().map(|&i| lagrange_at_zero(i, &indices).unwrap()).collect();
            assert_eq!(joint.lagrange(&set).unwrap(), one_by_one, "each member's coefficient, in the set's order");
            joint.check_decryptors(&set).unwrap();
        }
        for bad in [vec!["a1", "a2"], vec!["a1", "a2", "a9"], vec!["a1", "a2", "a1"]] {
            let bad: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
            assert!(joint.check_decryptors(&bad).is_err(), "{bad:?}");
        }
        assert!(joint.lagrange(&["a1".into(), "a2".into()]).is_err(), "fewer than t");
        assert!(joint.lagrange(&["a1".into(), "a2".into(), "a9".into()]).is_err(), "a stranger");
        assert!(joint.lagrange(&["a1".into(), "a2".into(), "a1".into()]).is_err(), "twice");
    }

    #[test]
    fn key_bytes_round_trip_and_corruption_is_caught() {
        let (shares, _) = deal_for_tests(&["authority-7", "b"], 2, 4, &mut OsRng).unwrap();
        let k = &shares[0];
        let bytes = k.to_bytes();
        let back = KeyShare::from_bytes(&bytes).unwrap();
        assert_eq!(back.public_point(), k.public_point());
        assert_eq!((back.authority(), back.epoch(), back.index()), ("authority-7", 4, 1));
        for cut in [0, 5, 9, 20, bytes.len() - 1] {
            assert!(matches!(KeyShare::from_bytes(&bytes[..cut]), Err(CryptoError::CorruptKey { .. })), "cut {cut}");
        }
        let mut flipped = bytes.clone();
        let n = flipped.len();
        flipped[n - 40] ^= 1;
        assert!(matches!(KeyShare::from_bytes(&flipped), Err(CryptoError::CorruptKey { .. })));
        let debug = format!("{k:?}");
        assert!(!debug.contains(&hex::encode(&bytes[bytes.len() - 64..bytes.len() - 32])));
        assert!(debug.contains("redacted"));
        let mut old = bytes.clone();
        old[7] = b'1';
        assert!(KeyShare::from_bytes(&old).unwrap_err().to_string().contains("before the committee"));
    }

    #[test]
    fn lagrange_refuses_bad_sets() {
        assert!(lagrange_at_zero(0, &[0, 1]).is_err());
        assert!(matches!(lagrange_at_zero(0, &[0, 1]), Err(CryptoError::InvalidCommittee { .. })));
        assert!(lagrange_at_zero(3, &[1, 2]).is_err());
        assert!(lagrange_at_zero(1, &[1, 2, 2]).is_err());
        assert_eq!(lagrange_at_zero(1, &[1]).unwrap(), Scalar::ONE);
        // f(x) = 5 + 7x: f(1) = 12, f(2) = 19; λ1 = 2, λ2 = -1
        let l1 = lagrange_at_zero(1, &[1, 2]).unwrap();
        let l2 = lagrange_at_zero(2, &[1, 2]).unwrap();
        assert_eq!(l1 * Scalar::from(12u8) + l2 * Scalar::from(19u8), Scalar::from(5u8));
    }

    /// The committee's coefficients (one inversion for the set) equal the
    /// per-member formula.
    #[test]
    fn committee_lagrange_matches_the_formula() {
        let names = ["a", "b", "c", "d", "e"];
        let (_, joint) = deal_for_tests(&names, 3, 0, &mut rand::rngs::OsRng).unwrap();
        for set in [["a", "b", "c"], ["e", "b", "d"], ["c", "e", "a"]] {
            let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
            let indices: Vec<u16> = set.iter().map(|n| joint.share_of(n).unwrap().index).collect();
            let lambdas = joint.lagrange(&set).unwrap();
            for (index, lambda) in indices.iter().zip(&lambdas) {
                assert_eq!(*lambda, lagrange_at_zero(*index, &indices).unwrap());
            }
        }
        let set: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert!(joint.lagrange(&set[..2]).is_err(), "fewer than t");
        let stranger: Vec<String> = ["a", "b", "z"].iter().map(|s| s.to_string()).collect();
        assert!(joint.lagrange(&stranger).is_err(), "not a member");
    }
}
