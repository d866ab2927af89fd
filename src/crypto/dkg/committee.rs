//! The outputs of a DKG or a resharing: a member's secret share (`DkgShare`)
//! and the public `CommitteeKey` (threshold, every member's verification key
//! Y_i = x_i·G, the joint key), plus Lagrange coefficients over member
//! indices. Input comes from `dkg::participant` / `dkg::reshare` or from the
//! caller's key store; `CommitteeKey::check` refuses keys whose verification
//! keys do not lie on one polynomial. No I/O; secrets are wiped on drop.

use std::collections::BTreeSet;
use std::fmt;

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::error::DkgError;

/// One member's share x_i of the joint secret (wiped on drop, never printed).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DkgShare {
    pub index: u16,
    pub secret: Scalar,
}

impl fmt::Debug for DkgShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkgShare").field("index", &self.index).field("secret", &"<redacted>").finish()
    }
}

impl DkgShare {
    /// The verification key Y_i = x_i·G of this share.
    pub fn verification_key(&self) -> RistrettoPoint {
        RISTRETTO_BASEPOINT_TABLE * &self.secret
    }
}

/// The public side of a t-of-n sharing: who holds a share, each holder's
/// verification key, and the joint key Y = x·G.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitteeKey {
    pub threshold: u16,
    /// (index, Y_i = x_i·G), sorted by index.
    pub members: Vec<(u16, RistrettoPoint)>,
    pub group_key: RistrettoPoint,
}

impl CommitteeKey {
    /// The member indices, in the order stored.
    pub fn indices(&self) -> Vec<u16> {
        self.members.iter().map(|(index, _)| *index).collect()
    }

    /// Member `index`'s verification key Y_i.
    pub fn verification_key(&self, index: u16) -> Option<RistrettoPoint> {
        self.members.iter().find(|(i, _)| *i == index).map(|(_, point)| *point)
    }

    /// Refuses a share whose x_i·G is not the committee's Y_i.
    pub fn check_share(&self, share: &DkgShare) -> Result<(), DkgError> {
        let expected = self.verification_key(share.index).ok_or(DkgError::NotInSet {
            index: share.index,
            what: "the committee",
            set: self.indices(),
        })?;
        if share.verification_key() == expected {
            Ok(())
        } else {
            Err(DkgError::ShareMismatch { index: share.index })
        }
    }

    /// Checks that the threshold is in 1..=n, indices are distinct and
    /// non-zero, and every Y_i (and the joint key at 0) lies on the one
    /// degree-(t−1) polynomial interpolated in the exponent from the first t
    /// members. Variable time: the inputs are public.
    pub fn check(&self) -> Result<(), DkgError> {
        let n = self.members.len();
        if self.threshold == 0 || usize::from(self.threshold) > n {
            return Err(DkgError::CommitteeThreshold { threshold: self.threshold, members: n });
        }
        let indices = self.indices();
        validate_indices(&indices, "the committee")?;
        let (base, rest) = self.members.split_at(usize::from(self.threshold));
        let base_indices: Vec<u16> = base.iter().map(|(index, _)| *index).collect();
        let base_points: Vec<RistrettoPoint> = base.iter().map(|(_, point)| *point).collect();
        for (index, point) in rest {
            if interpolate_vartime(Scalar::from(*index), &base_indices, &base_points)? != *point {
                return Err(DkgError::InconsistentCommittee {
                    reason: format!(
                        "verification key of member {index} is not on the degree-{} polynomial through members {base_indices:?}",
                        self.threshold - 1
                    ),
                });
            }
        }
        if interpolate_vartime(Scalar::ZERO, &base_indices, &base_points)? != self.group_key {
            return Err(DkgError::InconsistentCommittee {
                reason: format!(
                    "the group key is not the value at 0 of the polynomial through members {base_indices:?}"
                ),
            });
        }
        Ok(())
    }
}

/// Σ_k L_k(x)·P_k: the polynomial through (indices[k], points[k]) evaluated
/// at x in the exponent. Variable time.
fn interpolate_vartime(x: Scalar, indices: &[u16], points: &[RistrettoPoint]) -> Result<RistrettoPoint, DkgError> {
    let coefficients = lagrange_basis(x, indices)?;
    Ok(RistrettoPoint::vartime_multiscalar_mul(&coefficients, points))
}

/// Refuses a zero or a repeated index.
pub(crate) fn validate_indices(set: &[u16], what: &'static str) -> Result<(), DkgError> {
    let mut seen = BTreeSet::new();
    for index in set {
        if *index == 0 {
            return Err(DkgError::ZeroIndex);
        }
        if !seen.insert(*index) {
            return Err(DkgError::DuplicateIndex { index: *index, what });
        }
    }
    Ok(())
}

/// The Lagrange coefficient λ_index = Π_{j ≠ index} j / (j − index) of
/// member `index` for interpolating at 0 over `set`.
pub fn lagrange_at_zero(index: u16, set: &[u16]) -> Result<Scalar, DkgError> {
    lagrange_at(Scalar::ZERO, index, set)
}

/// Every member's Lagrange basis polynomial over `set`, evaluated at `x`,
/// in `set` order (`lagrange_at` of each), with one field inversion for the
/// whole set instead of one per member.
pub fn lagrange_basis(x: Scalar, set: &[u16]) -> Result<Vec<Scalar>, DkgError> {
    validate_indices(set, "the interpolation set")?;
    let mut numerators = Vec::with_capacity(set.len());
    let mut denominators = Vec::with_capacity(set.len());
    for &index in set {
        let (mut numerator, mut denominator) = (Scalar::ONE, Scalar::ONE);
        for &other in set.iter().filter(|other| **other != index) {
            numerator *= x - Scalar::from(other);
            denominator *= Scalar::from(index) - Scalar::from(other);
        }
        numerators.push(numerator);
        denominators.push(denominator);
    }
    // Distinct indices below 2^16 differ mod ℓ, so no denominator is zero.
    Scalar::batch_invert(&mut denominators);
    Ok(numerators.iter().zip(&denominators).map(|(n, d)| n * d).collect())
}

/// The Lagrange basis polynomial of `index` over `set`, evaluated at `x`:
/// Π_{j ≠ index} (x − j) / (index − j).
pub(crate) fn lagrange_at(x: Scalar, index: u16, set: &[u16]) -> Result<Scalar, DkgError> {
    validate_indices(set, "the interpolation set")?;
    if !set.contains(&index) {
        return Err(DkgError::NotInSet { index, what: "the interpolation set", set: set.to_vec() });
    }
    let mut numerator = Scalar::ONE;
    let mut denominator = Scalar::ONE;
    for other in set.iter().filter(|other| **other != index) {
        numerator *= x - Scalar::from(*other);
        denominator *= Scalar::from(index) - Scalar::from(*other);
    }
    // Distinct indices below 2^16 differ mod ℓ, so the denominator is non-zero.
    Ok(numerator * denominator.invert())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The whole basis (one inversion) equals each member's polynomial,
    /// at 0, at a member's index and elsewhere; bad sets are refused.
    #[test]
    fn the_basis_is_each_members_polynomial() {
        for set in [vec![1u16], vec![1, 2], vec![3, 1, 7], vec![2, 9, 4, 11, 5]] {
            for x in [0u16, 1, 5, 40] {
                let x = Scalar::from(x);
                let basis = lagrange_basis(x, &set).unwrap();
                for (index, l) in set.iter().zip(&basis) {
                    assert_eq!(*l, lagrange_at(x, *index, &set).unwrap());
                }
            }
        }
        assert!(lagrange_basis(Scalar::ZERO, &[0, 1]).is_err());
        assert!(lagrange_basis(Scalar::ZERO, &[1, 2, 2]).is_err());
    }
}
