//! The committed-share prototype of docs/share_path.md, for `vs_prio3`'s
//! `*_shares` rows and the end of `scale`: the crypto every party would
//! run per round, on the real data, timed per role in thread CPU. Not a
//! role of Crux: no actor, no transport, no budget or replay ledger.
//!
//! A query starts with the crypto of an admission: each authority signs
//! the spec; the processor and every relay check the t signatures. Then,
//! per round:
//! - each relay makes a constant-time Pedersen commitment to its vector,
//!   3-of-3 Shamir shares of its values and blinding, one ChaCha20-Poly1305
//!   box per authority (a per-query ephemeral Diffie-Hellman with the
//!   authority's sealing key) and an ed25519 signature over the whole
//!   message; commitments, shares and boxes are `crypto::shares`'s;
//! - the processor checks the signatures and adds up the commitments;
//! - each authority checks the signatures, opens its boxes, adds up its
//!   shares and releases the sums;
//! - the processor interpolates them and checks them against the summed
//!   commitments.

use std::collections::HashMap;
use std::time::Duration;

use cpu_time::ThreadTime;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use rand::rngs::OsRng;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crux::crypto::shares::{
    open, reconstruct, seal, share_values, small_value, BoxKey, CommitmentGenerators, Ephemeral, SealingKey,
    SealingSecret,
};
use crux::crypto::{verify_batch_signatures, RelayIdentity, RelayPublicKey, RelaySignature, SignedItem};

const SIGN_CONTEXT: &[u8] = b"crux-share-contribution-prototype";
const ADMISSION_CONTEXT: &[u8] = b"crux-share-admission-prototype";
const AUTHORITIES: u16 = 3;
/// A public bound on a relay's count: its rows, 10^6 < 2^20.
const COUNT_BITS: u32 = 20;
/// Search rounds of the exact median: 4 × 7 bits + 4 bits = 32.
pub const MEDIAN_WIDTHS: [u32; 5] = [128, 128, 128, 128, 16];

/// CPU of one round (or a sum of rounds) by role; crit is the busiest relay
/// plus the processor's forward step, the busiest authority and the
/// processor's check, per round.
#[derive(Default, Clone)]
pub struct RoundCost {
    pub relay: Duration,
    pub authority: Duration,
    pub processor: Duration,
    pub crit: Duration,
    /// each authority's CPU
    pub per_authority: Vec<Duration>,
    pub rounds: usize,
    /// values sent per relay (commitments count 1, each share 1)
    pub values_per_relay: usize,
    pub bytes_per_relay: usize,
    pub releases: usize,
}

impl RoundCost {
    fn add(&mut self, o: &RoundCost) {
        self.relay += o.relay;
        self.authority += o.authority;
        self.processor += o.processor;
        self.crit += o.crit;
        self.per_authority.resize(o.per_authority.len().max(self.per_authority.len()), Duration::ZERO);
        self.per_authority.iter_mut().zip(&o.per_authority).for_each(|(a, b)| *a += *b);
        self.rounds += o.rounds;
        self.values_per_relay += o.values_per_relay;
        self.bytes_per_relay += o.bytes_per_relay;
        self.releases += o.releases;
    }
}

struct Authority {
    index: u16,
    /// signs query admissions (an ed25519 key, as an authority's)
    signer: RelayIdentity,
    sealing: SealingSecret,
    public: SealingKey,
    /// per relay: the query's box key, once derived
    keys: HashMap<usize, BoxKey>,
}

struct Relay {
    identity: RelayIdentity,
    /// the relay's CSPRNG (ChaCha20, seeded from the OS)
    rng: ChaCha20Rng,
    /// the query's ephemeral key E and its box key per authority
    ephemeral: Option<(CompressedRistretto, Vec<BoxKey>)>,
}

/// What a relay sends in one round.
struct Message {
    bytes: Vec<u8>,
    signature: RelaySignature,
    /// where each authority's box starts and ends in `bytes`
    boxes: Vec<(usize, usize)>,
}

pub struct SharePath {
    relays: Vec<Relay>,
    keys: Vec<RelayPublicKey>,
    authorities: Vec<Authority>,
    generators: HashMap<u32, CommitmentGenerators>,
    query: u64,
}

/// The header every box binds: relay, query, round and the commitment.
fn header(relay: usize, query: u64, round: u32, commitment: &CompressedRistretto) -> Vec<u8> {
    let mut h = (relay as u64).to_be_bytes().to_vec();
    h.extend_from_slice(&query.to_be_bytes());
    h.extend_from_slice(&round.to_be_bytes());
    h.extend_from_slice(commitment.as_bytes());
    h
}

impl SharePath {
    /// `relays` relays and 3 authorities; generators for every width used.
    pub fn new(relays: usize, widths: &[u32]) -> Self {
        let authorities = (1..=AUTHORITIES)
            .map(|index| {
                let sealing = SealingSecret::random(&mut OsRng);
                Authority {
                    index,
                    signer: RelayIdentity::generate(&mut OsRng),
                    public: sealing.public(),
                    sealing,
                    keys: HashMap::new(),
                }
            })
            .collect();
        let relays: Vec<Relay> = (0..relays)
            .map(|_| Relay {
                identity: RelayIdentity::generate(&mut OsRng),
                rng: ChaCha20Rng::from_rng(OsRng).unwrap(),
                ephemeral: None,
            })
            .collect();
        let keys = relays.iter().map(|r| r.identity.public_key()).collect();
        let generators = widths.iter().map(|w| (*w, CommitmentGenerators::new(*w))).collect();
        SharePath { relays, keys, authorities, generators, query: 0 }
    }

    /// A new query: its admission (each authority signs the query's spec,
    /// 256 bytes here, and the processor and every relay check all t
    /// signatures, as Crux's admission and Describe do), fresh ephemeral
    /// keys at the relays, no keys cached at the authorities.
    pub fn start_query(&mut self) -> RoundCost {
        self.query += 1;
        self.relays.iter_mut().for_each(|r| r.ephemeral = None);
        self.authorities.iter_mut().for_each(|a| a.keys.clear());
        let mut spec = vec![7u8; 256];
        spec[..8].copy_from_slice(&self.query.to_be_bytes());
        let mut cost = RoundCost::default();
        let (mut signatures, mut slowest) = (Vec::new(), Duration::ZERO);
        for a in &self.authorities {
            let t = ThreadTime::now();
            signatures.push((a.signer.public_key(), a.signer.sign(ADMISSION_CONTEXT, &spec)));
            let spent = t.elapsed();
            cost.authority += spent;
            cost.per_authority.push(spent);
            slowest = slowest.max(spent);
        }
        let items: Vec<SignedItem<'_>> = signatures
            .iter()
            .map(|(key, signature)| SignedItem { key, context: ADMISSION_CONTEXT, message: &spec, signature })
            .collect();
        let t = ThreadTime::now();
        assert!(verify_batch_signatures(&items), "admission at the processor");
        cost.processor = t.elapsed();
        let mut busiest = Duration::ZERO;
        for _ in &self.relays {
            let t = ThreadTime::now();
            assert!(verify_batch_signatures(&items), "admission at a relay");
            let spent = t.elapsed();
            cost.relay += spent;
            busiest = busiest.max(spent);
        }
        cost.crit = slowest + cost.processor + busiest;
        cost
    }

    /// One round: `inputs[i]` is relay i's vector (its plaintext pass,
    /// made by the caller and not timed). Returns the aggregate.
    pub fn round(&mut self, round: u32, inputs: &[Input]) -> (Vec<u128>, RoundCost) {
        let width = u32::try_from(inputs[0].len()).unwrap();
        let mut cost = RoundCost { rounds: 1, releases: inputs[0].len(), ..RoundCost::default() };
        let (mut messages, mut busiest) = (Vec::new(), Duration::ZERO);
        for (i, input) in inputs.iter().enumerate() {
            let t = ThreadTime::now();
            messages.push(self.contribute(i, round, input));
            let spent = t.elapsed();
            cost.relay += spent;
            busiest = busiest.max(spent);
        }
        cost.bytes_per_relay = messages[0].bytes.len() + messages[0].signature.0.len();
        cost.values_per_relay = 1 + usize::from(AUTHORITIES) * (inputs[0].len() + 1);
        let t = ThreadTime::now();
        let commitment = self.forward(&messages);
        let forward = t.elapsed();
        let (mut sums, mut slowest) = (Vec::new(), Duration::ZERO);
        for a in 0..self.authorities.len() {
            let t = ThreadTime::now();
            sums.push(self.release(a, round, &messages));
            let spent = t.elapsed();
            cost.authority += spent;
            cost.per_authority.push(spent);
            slowest = slowest.max(spent);
        }
        let t = ThreadTime::now();
        let values = self.combine(width, &commitment, &sums);
        let check = t.elapsed();
        cost.processor = forward + check;
        cost.crit = busiest + forward + slowest + check;
        (values, cost)
    }

    fn contribute(&mut self, i: usize, round: u32, input: &Input) -> Message {
        let query = self.query;
        let publics: Vec<SealingKey> = self.authorities.iter().map(|a| a.public).collect();
        let relay = &mut self.relays[i];
        let (ephemeral, keys) = relay.ephemeral.get_or_insert_with(|| {
            let e = Ephemeral::random(&mut relay.rng);
            let keys = publics.iter().map(|p| e.box_key(p, &query.to_be_bytes())).collect();
            (e.public, keys)
        });
        let generators = &self.generators[&u32::try_from(input.len()).unwrap()];
        let blind = Scalar::random(&mut relay.rng);
        let (commitment, values) = match input {
            Input::Counts(counts) => {
                // a count is at most the relay's rows (10^6 < 2^20), as Prio3's bound
                let c = generators.commit(counts, COUNT_BITS, &blind).unwrap();
                (c, counts.iter().map(|c| Scalar::from(*c)).collect::<Vec<_>>())
            }
            Input::Sums(sums) => {
                let values: Vec<Scalar> = sums.iter().map(|v| Scalar::from(*v)).collect();
                (generators.commit_values(&values, &blind).unwrap(), values)
            }
        };
        let commitment = commitment.compress();
        let values: Vec<Scalar> = values.into_iter().chain([blind]).collect();
        let indices: Vec<u16> = self.authorities.iter().map(|a| a.index).collect();
        let shares = share_values(&values, &indices, AUTHORITIES, &mut relay.rng).unwrap();
        let aad = header(i, query, round, &commitment);
        let mut bytes = aad.clone();
        bytes.extend_from_slice(ephemeral.as_bytes());
        let mut boxes = Vec::new();
        for (key, share) in keys.iter().zip(shares) {
            let sealed = seal(key, round, &aad, &share).unwrap();
            boxes.push((bytes.len(), bytes.len() + sealed.len()));
            bytes.extend_from_slice(&sealed);
        }
        let signature = relay.identity.sign(SIGN_CONTEXT, &bytes);
        Message { bytes, signature, boxes }
    }

    fn signatures_hold(&self, messages: &[Message]) -> bool {
        let items: Vec<SignedItem<'_>> = messages
            .iter()
            .zip(&self.keys)
            .map(|(m, key)| SignedItem { key, context: SIGN_CONTEXT, message: &m.bytes, signature: &m.signature })
            .collect();
        verify_batch_signatures(&items)
    }

    /// The processor: signatures, then the sum of the commitments.
    fn forward(&self, messages: &[Message]) -> RistrettoPoint {
        assert!(self.signatures_hold(messages), "relay signatures");
        messages.iter().fold(RistrettoPoint::identity(), |acc, m| {
            let c = CompressedRistretto::from_slice(&m.bytes[20..52]).unwrap();
            acc + c.decompress().unwrap()
        })
    }

    /// Authority `a`: signatures, its boxes, the sum of its shares (encoded).
    fn release(&mut self, a: usize, round: u32, messages: &[Message]) -> Vec<u8> {
        assert!(self.signatures_hold(messages), "relay signatures at an authority");
        let query = self.query;
        let authority = &mut self.authorities[a];
        let mut sum: Vec<Scalar> = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let key = authority.keys.entry(i).or_insert_with(|| {
                let big_e = CompressedRistretto::from_slice(&m.bytes[52..84]).unwrap();
                authority.sealing.box_key(&big_e, &query.to_be_bytes()).unwrap()
            });
            let (start, end) = m.boxes[a];
            let shares = open(key, round, &m.bytes[..52], &m.bytes[start..end]).expect("box opens");
            if sum.is_empty() {
                sum = shares;
            } else {
                sum.iter_mut().zip(shares).for_each(|(s, x)| *s += x);
            }
        }
        sum.iter().flat_map(|s| s.to_bytes()).collect()
    }

    /// The processor: interpolate the released sums and check them against the commitments.
    fn combine(&self, width: u32, commitment: &RistrettoPoint, sums: &[Vec<u8>]) -> Vec<u128> {
        let decoded: Vec<Vec<Scalar>> = sums
            .iter()
            .map(|s| {
                s.chunks_exact(32)
                    .map(|c| Option::from(Scalar::from_canonical_bytes(c.try_into().unwrap())).unwrap())
                    .collect()
            })
            .collect();
        let chosen: Vec<(u16, &[Scalar])> =
            self.authorities.iter().zip(&decoded).map(|(a, v)| (a.index, v.as_slice())).collect();
        let values = reconstruct(&chosen).unwrap();
        let (counts, blind) = values.split_at(values.len() - 1);
        assert!(self.generators[&width].opens(commitment, counts, &blind[0]).unwrap(), "sums open the commitments");
        counts.iter().map(|c| small_value(c).expect("a count")).collect()
    }
}

/// A relay's vector for one round.
pub enum Input {
    /// counts below `COUNT_BITS` bits: committed with window tables
    Counts(Vec<u32>),
    /// a few sums of any size: committed by multiscalar multiplication
    Sums(Vec<u128>),
}

impl Input {
    fn len(&self) -> usize {
        match self {
            Input::Counts(c) => c.len(),
            Input::Sums(s) => s.len(),
        }
    }
}

/// Counts of the values in [lo, lo + width·2^shift), in `width` buckets of 2^shift.
pub fn local_counts(rows: &[u32], lo: u64, shift: u32, width: u32) -> Vec<u32> {
    let mut counts = vec![0u32; width as usize];
    let end = lo + (u64::from(width) << shift);
    for v in rows.iter().map(|v| u64::from(*v)).filter(|v| (lo..end).contains(v)) {
        counts[usize::try_from((v - lo) >> shift).unwrap()] += 1;
    }
    counts
}

/// The bucket of a round's `counts` that holds rank `rank`, when `below`
/// values lie below the round's range; and the count below that bucket.
pub fn bucket_of_rank(counts: &[u128], below: u128, rank: u128) -> (usize, u128) {
    let mut cumulative = below;
    let k = counts
        .iter()
        .position(|c| {
            cumulative += c;
            cumulative >= rank
        })
        .expect("the rank lies in the round's range");
    (k, cumulative - counts[k])
}

/// The exact median by the search rounds of `MEDIAN_WIDTHS`: returns it and the cost.
pub fn median(path: &mut SharePath, relays: &[Vec<u32>]) -> (u32, RoundCost) {
    let mut cost = path.start_query();
    let (mut lo, mut below, mut rank, mut bits) = (0u64, 0u128, None, 32u32);
    for (round, width) in (0u32..).zip(MEDIAN_WIDTHS) {
        bits -= width.ilog2();
        let counts: Vec<Input> = relays.iter().map(|r| Input::Counts(local_counts(r, lo, bits, width))).collect();
        let (aggregate, c) = path.round(round, &counts);
        cost.add(&c);
        let rank = *rank.get_or_insert_with(|| aggregate.iter().sum::<u128>().div_ceil(2).max(1));
        let k;
        (k, below) = bucket_of_rank(&aggregate, below, rank);
        lo += u64::try_from(k).unwrap() << bits;
    }
    (u32::try_from(lo).unwrap(), cost)
}

/// A 256-bucket histogram of [0, 2^32) in one round.
pub fn histogram(path: &mut SharePath, relays: &[Vec<u32>]) -> (Vec<u128>, RoundCost) {
    let mut cost = path.start_query();
    let counts: Vec<Input> = relays.iter().map(|r| Input::Counts(local_counts(r, 0, 24, 256))).collect();
    let (values, c) = path.round(0, &counts);
    cost.add(&c);
    (values, cost)
}

/// (count, Σv, Σv²) in one round; `moments` is each relay's local triple
/// (its plaintext pass).
pub fn moments(path: &mut SharePath, moments: &[[u128; 3]]) -> (Vec<u128>, RoundCost) {
    let mut cost = path.start_query();
    let sums: Vec<Input> = moments.iter().map(|m| Input::Sums(m.to_vec())).collect();
    let (values, c) = path.round(0, &sums);
    cost.add(&c);
    (values, cost)
}
