//! The relay side of every statistic: what a relay computes from its own
//! plaintext column and encrypts, and how the processor and the authorities
//! add contributions up.
//!
//! - `RelayTask::Moments`: the relay's count and, only when the plan releases
//!   them, Σv (signed limbs) and Σv² (limbs) of L bits each, as many as
//!   the query's value width needs for 2^32 rows (`limbs::moment_limbs`:
//!   3 + 4 of 26 bits with bounds [0, 2^32), at most 2·ceil(128/L)),
//!   whatever the row count.
//! - `RelayTask::Histogram`: one encrypted count per bucket of the grid.
//!
//! Values arrive as fixed-point integers at the query's common decimals,
//! already clamped when the query has bounds (`prepare_values`). Nothing in a
//! contribution is plaintext; encryption randomness never leaves this module:
//! the contribution comes with one proof of knowledge of the randomness of
//! every ciphertext (`crypto::ciphertext_proof`), bound to the statement the
//! relay signs (query, round, task, relay, every ciphertext in
//! `Contribution::ciphertexts` order).

use rand::SeedableRng;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use super::error::StatsError;
use super::grid::Grid;
use super::limbs;
use curve25519_dalek::scalar::Scalar;
use zeroize::Zeroize;

use crate::crypto::{Ciphertext, EncryptionKey, RandomnessProof};

/// What the processor asks the relays to encrypt in one round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayTask {
    /// `sum_quantum`/`squares_quantum` are 1 in exact mode; with noise they
    /// are the released resolution (`policy::moments_quanta`): the relay
    /// sums stochastically rounded v/q and v²/q, so noisy aggregates stay
    /// small enough for the discrete-log range whatever the magnitudes.
    Moments {
        limb_bits: u32,
        /// |v| < 2^value_bits for every value summed (`limits::value_bits`
        /// of the query): sets how many limbs Σv and Σv² take
        /// (`limbs::moment_limbs`).
        value_bits: u32,
        /// Σv limbs are encrypted only when the plan releases a sum
        sums: bool,
        squares: bool,
        sum_quantum: u128,
        squares_quantum: u128,
    },
    Histogram {
        grid: Grid,
    },
}

impl RelayTask {
    pub fn validate(&self) -> Result<(), StatsError> {
        match self {
            RelayTask::Moments { limb_bits, sum_quantum, squares_quantum, .. } => {
                if *sum_quantum == 0 || *squares_quantum == 0 {
                    return Err(StatsError::InvalidParameter { name: "quantum", reason: "must be at least 1".into() });
                }
                limbs::limb_count(*limb_bits).map(|_| ())
            }
            RelayTask::Histogram { grid } => grid.validate(),
        }
    }

    /// How many limbs of Σv and of Σv² a relay sends (0 for those not
    /// asked, and for a histogram).
    pub fn moment_limbs(&self) -> Result<(u32, u32), StatsError> {
        match self {
            RelayTask::Moments { limb_bits, value_bits, sums, squares, .. } => {
                let (s, q) = limbs::moment_limbs(*value_bits, *limb_bits)?;
                Ok((if *sums { s } else { 0 }, if *squares { q } else { 0 }))
            }
            RelayTask::Histogram { .. } => Ok((0, 0)),
        }
    }

    /// Ciphertexts one relay sends for this task.
    pub fn ciphertexts_per_relay(&self) -> Result<usize, StatsError> {
        Ok(match self {
            RelayTask::Moments { .. } => {
                let (s, q) = self.moment_limbs()?;
                1 + usize::try_from(s + q).unwrap_or(usize::MAX)
            }
            RelayTask::Histogram { grid } => usize::try_from(grid.buckets()).unwrap_or(usize::MAX),
        })
    }
}

#[cfg(test)]
impl RelayTask {
    /// An exact moments task for a query without bounds at 0 decimals
    /// (values below 2^47): what unit tests ask with.
    pub fn exact_moments(limb_bits: u32, sums: bool, squares: bool) -> Self {
        RelayTask::Moments { limb_bits, value_bits: 47, sums, squares, sum_quantum: 1, squares_quantum: 1 }
    }
}

/// The components of a task's contribution, encrypted (`Contribution`) or
/// in the clear (`PlainAggregate`: a sum over relays that the processor
/// read off committed shares); releases are the same linear functions of
/// either (`release::target`).
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Components<T> {
    Moments { count: T, sum: Vec<T>, squares: Vec<T> },
    Histogram { counts: Vec<T> },
}

/// An encrypted contribution (of one relay, or the sum over relays).
pub type Contribution = Components<Ciphertext>;

/// The sum of contributions over relays; same shape as one contribution.
pub type Aggregate = Contribution;

/// An aggregate in the clear: what the processor reads off the decryptors'
/// summed shares of a round on the committed-share path.
pub type PlainAggregate = Components<i128>;

impl<T> Components<T> {
    /// Every component in statement order: count, Σv limbs, Σv² limbs; or
    /// the histogram's counts.
    pub fn values(&self) -> Vec<&T> {
        match self {
            Components::Moments { count, sum, squares } => {
                std::iter::once(count).chain(sum.iter()).chain(squares.iter()).collect()
            }
            Components::Histogram { counts } => counts.iter().collect(),
        }
    }

    /// The components of `task`'s shape, from `values` in statement order
    /// (`values`); None when there are too few or too many.
    pub fn from_values(task: &RelayTask, values: Vec<T>) -> Option<Self> {
        match task {
            RelayTask::Moments { .. } => {
                let (s, q) = task.moment_limbs().ok()?;
                let (s, q) = (usize::try_from(s).ok()?, usize::try_from(q).ok()?);
                if values.len() != 1 + s + q {
                    return None;
                }
                let mut it = values.into_iter();
                let count = it.next()?;
                let sum = it.by_ref().take(s).collect();
                Some(Components::Moments { count, sum, squares: it.collect() })
            }
            RelayTask::Histogram { grid } => (values.len() == usize::try_from(grid.buckets()).ok()?)
                .then_some(Components::Histogram { counts: values }),
        }
    }
}

/// Rescaled column values -> values the statistic sees (clamped to bounds).
pub fn prepare_values(values: &[i128], bounds: Option<(i128, i128)>) -> Vec<i128> {
    match bounds {
        Some((lo, hi)) => values.iter().map(|v| (*v).clamp(lo, hi)).collect(),
        None => values.to_vec(),
    }
}

/// Plaintext local aggregates of a moments task (also the plaintext floor in benches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalMoments {
    pub count: i64,
    pub sum: i128,
    pub squares: i128,
}

/// Count, Σv and (only when `with_squares`) Σv², with checked arithmetic.
pub fn local_moments(values: &[i128], with_squares: bool) -> Result<LocalMoments, StatsError> {
    let mut sum: i128 = 0;
    let mut squares: i128 = 0;
    for v in values {
        sum = sum.checked_add(*v).ok_or(StatsError::ArithmeticOverflow("relay sum"))?;
        if with_squares {
            let sq = v.checked_mul(*v).ok_or(StatsError::ArithmeticOverflow("relay square"))?;
            squares = squares.checked_add(sq).ok_or(StatsError::ArithmeticOverflow("relay sum of squares"))?;
        }
    }
    let count = i64::try_from(values.len()).map_err(|_| StatsError::ArithmeticOverflow("relay count"))?;
    Ok(LocalMoments { count, sum, squares })
}

/// v/q rounded to one of its two neighbouring integers, up with probability
/// frac(v/q): unbiased, so the released sum stays an unbiased estimate.
fn stochastic_round(v: i128, q: u128, rng: &mut (impl RngCore + CryptoRng)) -> Result<i128, StatsError> {
    let q = i128::try_from(q).map_err(|_| StatsError::ArithmeticOverflow("quantum"))?;
    let (whole, rest) = (v.div_euclid(q), v.rem_euclid(q));
    let draw = i128::try_from(rand::Rng::gen_range(rng, 0..q.unsigned_abs()))
        .map_err(|_| StatsError::ArithmeticOverflow("quantum"))?;
    Ok(if draw < rest { whole + 1 } else { whole })
}

/// Local sums of v/q_s and v²/q_q, each stochastically rounded per row.
pub fn quantized_moments(
    values: &[i128],
    sum_quantum: u128,
    squares_quantum: u128,
    with_squares: bool,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<LocalMoments, StatsError> {
    let mut sum: i128 = 0;
    let mut squares: i128 = 0;
    for v in values {
        sum = sum
            .checked_add(stochastic_round(*v, sum_quantum, rng)?)
            .ok_or(StatsError::ArithmeticOverflow("relay sum"))?;
        if !with_squares {
            continue;
        }
        let sq = v.checked_mul(*v).ok_or(StatsError::ArithmeticOverflow("relay square"))?;
        squares = squares
            .checked_add(stochastic_round(sq, squares_quantum, rng)?)
            .ok_or(StatsError::ArithmeticOverflow("relay sum of squares"))?;
    }
    let count = i64::try_from(values.len()).map_err(|_| StatsError::ArithmeticOverflow("relay count"))?;
    Ok(LocalMoments { count, sum, squares })
}

/// Plaintext bucket counts of a histogram task.
pub fn local_histogram(values: &[i128], grid: &Grid) -> Vec<i64> {
    let mut counts = vec![0i64; usize::try_from(grid.buckets()).unwrap_or(0)];
    for v in values {
        if let Some(slot) = grid.bucket_of(*v).and_then(|b| usize::try_from(b).ok()).and_then(|b| counts.get_mut(b)) {
            *slot += 1;
        }
    }
    counts
}

/// A relay's two cells outside `grid`, with their public bound: its values
/// below the first bucket and at or above the end of the last (an open
/// end has none). With the grid's buckets they partition the column: what
/// a noisy search round shares on the committed-share path. Never leaves
/// the relay.
pub fn outside_cells(values: &[i128], grid: &Grid) -> ((i64, u32), (i64, u32)) {
    let (first, last) = (grid.range_of(0).lo, grid.range_of(grid.buckets().saturating_sub(1)).hi);
    // one pass over the column for both cells
    let (below, above) = values.iter().fold((0i64, 0i64), |(below, above), v| {
        let is_below = first.is_some_and(|lo| *v < lo);
        let is_above = last.is_some_and(|hi| *v > hi);
        (below.saturating_add(i64::from(is_below)), above.saturating_add(i64::from(is_above)))
    });
    ((below, COUNT_BITS), (above, COUNT_BITS))
}

/// Encrypts values in order, keeping their randomness for the proof (wiped on drop).
/// A relay's counts (rows, bucket counts) are at most `ROWS_LIMIT` = 2^32,
/// so below 2^33: the public bound their encryption walks to.
const COUNT_BITS: u32 = super::limits::ROWS_LIMIT.ilog2() + 1;

/// The values of a contribution with their public bounds |m| < 2^bits, in
/// statement order; encrypted together (`EncryptionKey::encrypt_batch_within`).
/// The randomness is wiped when it drops.
struct ProvedEncryptor {
    values: Vec<(i64, u32)>,
    randomness: Vec<Scalar>,
}

impl ProvedEncryptor {
    /// Encrypts everything queued, in order, keeping the randomness.
    fn encrypt(&mut self, key: &EncryptionKey, rng: &mut (impl RngCore + CryptoRng)) -> Vec<Ciphertext> {
        let (ciphertexts, randomness) = key.encrypt_batch_within(&self.values, rng);
        self.randomness = randomness;
        ciphertexts
    }
}

impl Drop for ProvedEncryptor {
    fn drop(&mut self) {
        self.randomness.zeroize();
        for (m, _) in &mut self.values {
            m.zeroize();
        }
    }
}

/// A relay's plaintext local aggregate for one task: what it encrypts.
/// Never leaves the relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalAggregate {
    Moments(LocalMoments),
    Histogram(Vec<i64>),
}

/// The plaintext pass over the relay's prepared values for `task`.
pub fn local_aggregate(
    task: &RelayTask,
    values: &[i128],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<LocalAggregate, StatsError> {
    task.validate()?;
    Ok(match task {
        RelayTask::Moments { squares, sum_quantum, squares_quantum, .. } => {
            LocalAggregate::Moments(if *sum_quantum > 1 || *squares_quantum > 1 {
                // one OS draw seeds a ChaCha stream for the per-row rounding
                let mut rounding = rand::rngs::StdRng::from_rng(&mut *rng)
                    .map_err(|e| StatsError::InvalidParameter { name: "rng", reason: e.to_string() })?;
                quantized_moments(values, *sum_quantum, *squares_quantum, *squares, &mut rounding)?
            } else {
                local_moments(values, *squares)?
            })
        }
        RelayTask::Histogram { grid } => LocalAggregate::Histogram(local_histogram(values, grid)),
    })
}

/// A relay's plaintext components for `task` in statement order
/// (`Components::values`), each with its public bound |m| < 2^bits (counts
/// `COUNT_BITS`, limbs the task's limb width): what it encrypts, or shares
/// on the committed-share path. Never leaves the relay.
pub fn plain_components(task: &RelayTask, local: &LocalAggregate) -> Result<Vec<(i64, u32)>, StatsError> {
    task.validate()?;
    Ok(match (task, local) {
        (RelayTask::Moments { limb_bits, sums, squares, .. }, LocalAggregate::Moments(m)) => {
            let (s, q) = task.moment_limbs()?;
            let sum_limbs = if *sums { limbs::split(m.sum, *limb_bits, s)? } else { Vec::new() };
            let square_limbs = if *squares { limbs::split(m.squares, *limb_bits, q)? } else { Vec::new() };
            std::iter::once((m.count, COUNT_BITS))
                .chain(sum_limbs.into_iter().chain(square_limbs).map(|l| (l, *limb_bits)))
                .collect()
        }
        (RelayTask::Histogram { .. }, LocalAggregate::Histogram(counts)) => {
            counts.iter().map(|c| (*c, COUNT_BITS)).collect()
        }
        _ => return Err(StatsError::Inconsistent("a local aggregate of another task".into())),
    })
}

/// The relay's encrypted contribution for `task` from its local aggregate,
/// the statement it signs (`statement_of`, i.e.
/// `protocol::codec::contribution_statement`), and one proof of knowledge of
/// the randomness of every ciphertext, bound to that statement.
pub fn encrypt_local(
    task: &RelayTask,
    local: &LocalAggregate,
    key: &EncryptionKey,
    statement_of: &dyn Fn(&Contribution) -> Vec<u8>,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(Contribution, Vec<u8>, RandomnessProof), StatsError> {
    let mut enc = ProvedEncryptor { values: plain_components(task, local)?, randomness: Vec::new() };
    let contribution = Contribution::from_values(task, enc.encrypt(key, rng))
        .ok_or_else(|| StatsError::Inconsistent("a contribution does not have the shape of its task".into()))?;
    let statement = statement_of(&contribution);
    let proof = RandomnessProof::prove(&statement, &enc.randomness, rng);
    Ok((contribution, statement, proof))
}

/// `local_aggregate` then `encrypt_local`.
pub fn contribute(
    task: &RelayTask,
    values: &[i128],
    key: &EncryptionKey,
    statement_of: &dyn Fn(&Contribution) -> Vec<u8>,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(Contribution, Vec<u8>, RandomnessProof), StatsError> {
    let local = local_aggregate(task, values, rng)?;
    encrypt_local(task, &local, key, statement_of, rng)
}

impl Contribution {
    /// Checks that the contribution has the shape the task asks for.
    pub fn check_shape(&self, task: &RelayTask) -> Result<(), StatsError> {
        let ok = match (self, task) {
            (Contribution::Moments { sum, squares, .. }, RelayTask::Moments { .. }) => {
                let (s, q) = task.moment_limbs()?;
                let len = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
                sum.len() == len(s) && squares.len() == len(q)
            }
            (Contribution::Histogram { counts }, RelayTask::Histogram { grid }) => {
                counts.len() == usize::try_from(grid.buckets()).unwrap_or(usize::MAX)
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(StatsError::Inconsistent("a contribution does not have the shape of the round's task".into()))
        }
    }

    /// Every ciphertext in proof-index order (`Components::values`).
    pub fn ciphertexts(&self) -> Vec<&Ciphertext> {
        self.values()
    }

    /// Adds contributions of the same task.
    pub fn aggregate<'a>(
        task: &RelayTask,
        items: impl IntoIterator<Item = &'a Contribution>,
    ) -> Result<Aggregate, StatsError> {
        let mut acc: Option<Contribution> = None;
        for item in items {
            item.check_shape(task)?;
            acc = Some(match (acc, item) {
                (None, c) => c.clone(),
                (
                    Some(Contribution::Moments { count, sum, squares }),
                    Contribution::Moments { count: c2, sum: s2, squares: q2 },
                ) => Contribution::Moments {
                    count: count + *c2,
                    sum: sum.iter().zip(s2).map(|(a, b)| *a + *b).collect(),
                    squares: squares.iter().zip(q2).map(|(a, b)| *a + *b).collect(),
                },
                (Some(Contribution::Histogram { counts }), Contribution::Histogram { counts: c2 }) => {
                    Contribution::Histogram { counts: counts.iter().zip(c2).map(|(a, b)| *a + *b).collect() }
                }
                _ => return Err(StatsError::Inconsistent("contributions of different kinds".into())),
            });
        }
        acc.ok_or_else(|| StatsError::Inconsistent("no contributions to aggregate".into()))
    }
}
