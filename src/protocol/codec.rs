//! The one specified byte encoding of everything that is signed, proved or
//! hashed: admission statements (signed by authorities), contribution
//! statements (signed by relays, and the base of their proofs of randomness)
//! and the context of a batch of partial decryptions and its proof. Messages on the wire
//! stay msgpack (`wire`); these bytes never depend on serde layout or
//! `Debug` text, so a refactor or a crate upgrade cannot change them.
//!
//! Layout (all integers big-endian; version 4 for contribution statements,
//! version 3 for everything else that encodes a task, whose domain tags end
//! in `/v3`, version 2 for a spec without a task, version 1 otherwise):
//! - every statement starts with its domain tag as `str`;
//! - `str`/`bytes`: u32 length, then the bytes; `bool`: one byte 0/1;
//!   `opt<T>`: one byte 0 (absent) or 1 followed by T;
//! - query id: its 16 bytes; ciphertext: 64 bytes, its wire form (the
//!   canonical ristretto255 encodings of a and b), which relays compute in
//!   one batch when they encrypt and everyone else keeps from decoding, so
//!   encoding a statement compresses no point (contribution statements
//!   version 4; version 3 encoded 2·a and 2·b);
//! - query = id, issued_at u64, dataset str, labels (u8 count, str each),
//!   params; params = statistic u8 (count 0, sum 1, mean 2, variance 3,
//!   stddev 4, min 5, max 6, median 7, quantile 8, histogram 9), sample bool,
//!   quantile opt<str>, edges (u32 count, str each), bounds opt<str, str>,
//!   exact bool, epsilon opt<u64 millionths>;
//! - spec = query, decimals u32, epoch u64, decryptors (u8 count, str each)
//!   (version 2: the committee epoch and the t authorities that decrypt);
//! - task = 0 (moments): limb_bits u32, value_bits u32 (version 3), sums
//!   bool, squares bool, sum_quantum u128, squares_quantum u128; or
//!   1 (histogram): grid = 1 (uniform): lo i128, width i128, buckets u32
//!   | 2 (edges): u32 count, i128 each | 3 (magnitude, protocol version 5:
//!   nibble lengths): bits u32 (tag 0 was the 127 bit-length buckets of
//!   earlier versions, never written now);
//! - contribution = 0 (moments): count ct, sums (u32 count, ct each), squares
//!   (same); or 1 (histogram): counts (u32 count, ct each);
//! - release = tag u8 (count 0, sum 1, squares 2, sum limb 3, squares limb 4,
//!   histogram total 5, prefix 6, bucket 7), then u32 index (0 when none);
//! - releases context (`crux/releases/v1`) = query id, round u32, releases
//!   (u32 count, release each).
//!
//! The committed-share path (`crypto::shares`, docs/share_path.md), all
//! version 1:
//! - sealing grant (`crux/sealing-key/v1`), what an authority signs with
//!   its admission of a query to give relays its sealing key for it =
//!   query id, epoch u64, authority str, key (32 bytes, a compressed
//!   ristretto255 point);
//! - shares statement (`crux/contribution/shares/v1`), what a relay signs
//!   = spec, round u32, task, relay str, commitment (32 bytes), ephemeral
//!   key (32 bytes), box hashes (u32 count, 32 bytes each: one per
//!   decryptor, in the spec's order), so that each decryptor can be sent
//!   its own box only;
//! - box hash = the first 32 bytes of SHA-512 over (`crux/share-box-hash/v1`
//!   as `str`, then the box as `bytes`);
//! - box header (`crux/share-box/v1`), the associated data of each box =
//!   query id, round u32, relay str, commitment (32 bytes).
//!
//! The proof of randomness of a contribution is bound to its contribution
//! statement (`crypto::ciphertext_proof`).
//!
//! Golden vectors: `tests/vectors/codec.json`, produced by the independent
//! Python encoder `scripts/codec_vectors.py`. No I/O.

use sha2::{Digest, Sha512};

use super::ids::QueryId;
use super::messages::{QueryIntent, QuerySpec};

use crate::crypto::Ciphertext;
use crate::stats::{Contribution, Grid, QueryParams, RelayTask, Release, Statistic};

pub const DOMAIN_QUERY_ADMISSION: &str = "crux/admission/query/v1";
pub const DOMAIN_ROUND_ADMISSION: &str = "crux/admission/round/v3";
pub const DOMAIN_REFINEMENT_ADMISSION: &str = "crux/admission/refinement/v1";
pub const DOMAIN_CONTRIBUTION: &str = "crux/contribution/v4";
pub const DOMAIN_RELEASES: &str = "crux/releases/v1";
pub const DOMAIN_SEALING_KEY: &str = "crux/sealing-key/v1";
pub const DOMAIN_SHARES: &str = "crux/contribution/shares/v1";
pub const DOMAIN_SHARE_BOX: &str = "crux/share-box/v1";
pub const DOMAIN_SHARE_BOX_HASH: &str = "crux/share-box-hash/v1";

/// Appends fields in the specified layout.
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new(domain: &str) -> Self {
        let mut w = Writer { buf: Vec::with_capacity(256) };
        w.str(domain);
        w
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u128(&mut self, v: u128) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn i128(&mut self, v: i128) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    /// Lengths beyond u32 cannot occur in a decoded message (frame limit);
    /// they are clamped rather than panicking.
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }

    pub fn bytes(&mut self, v: &[u8]) {
        self.len(v.len());
        self.buf.extend_from_slice(v);
    }

    /// Bytes of a fixed length, without a length prefix (a point).
    pub fn raw(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }

    pub fn opt_str(&mut self, v: Option<&str>) {
        match v {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }

    /// Ciphertexts as their 64-byte wire form (cached when decoded or
    /// batch-encrypted, `Ciphertext::to_bytes`); `counts` gives the lengths
    /// to write before each group (None: no length).
    fn ciphertext_groups(&mut self, groups: &[(Option<usize>, &[Ciphertext])]) {
        for (count, group) in groups {
            if let Some(n) = count {
                self.len(*n);
            }
            for c in group.iter() {
                self.buf.extend_from_slice(&c.to_bytes());
            }
        }
    }

    pub fn query_id(&mut self, id: &QueryId) {
        self.buf.extend_from_slice(&id.0);
    }

    pub fn query(&mut self, q: &QueryIntent) {
        self.query_id(&q.id);
        self.u64(q.issued_at);
        self.str(&q.dataset);
        self.u8(u8::try_from(q.labels.len()).unwrap_or(u8::MAX));
        for label in &q.labels {
            self.str(label);
        }
        self.params(&q.params);
    }

    pub fn params(&mut self, p: &QueryParams) {
        self.u8(statistic_code(p.statistic));
        self.bool(p.sample);
        self.opt_str(p.quantile.as_deref());
        self.len(p.edges.len());
        for e in &p.edges {
            self.str(e);
        }
        match &p.bounds {
            None => self.u8(0),
            Some((lo, hi)) => {
                self.u8(1);
                self.str(lo);
                self.str(hi);
            }
        }
        self.bool(p.exact);
        match p.epsilon {
            None => self.u8(0),
            Some(e) => {
                self.u8(1);
                self.u64(e.0);
            }
        }
    }

    pub fn spec(&mut self, spec: &QuerySpec) {
        self.query(&spec.intent());
        self.u32(spec.decimals);
        self.u64(spec.epoch);
        // at most 255 decryptors: `QuerySpec::check_decryptors` refuses more
        self.u8(u8::try_from(spec.decryptors.len()).unwrap_or(u8::MAX));
        for name in spec.decryptors.iter().take(usize::from(u8::MAX)) {
            self.str(name);
        }
    }

    pub fn task(&mut self, task: &RelayTask) {
        match task {
            RelayTask::Moments { limb_bits, value_bits, sums, squares, sum_quantum, squares_quantum } => {
                self.u8(0);
                self.u32(*limb_bits);
                self.u32(*value_bits);
                self.bool(*sums);
                self.bool(*squares);
                self.u128(*sum_quantum);
                self.u128(*squares_quantum);
            }
            RelayTask::Histogram { grid } => {
                self.u8(1);
                match grid {
                    Grid::Magnitude { bits } => {
                        self.u8(3);
                        self.u32(*bits);
                    }
                    Grid::Uniform { lo, width, buckets } => {
                        self.u8(1);
                        self.i128(*lo);
                        self.i128(*width);
                        self.u32(*buckets);
                    }
                    Grid::Edges(edges) => {
                        self.u8(2);
                        self.len(edges.len());
                        for e in edges {
                            self.i128(*e);
                        }
                    }
                }
            }
        }
    }

    pub fn contribution(&mut self, c: &Contribution) {
        match c {
            Contribution::Moments { count, sum, squares } => {
                self.u8(0);
                let count = std::slice::from_ref(count);
                self.ciphertext_groups(&[(None, count), (Some(sum.len()), sum), (Some(squares.len()), squares)]);
            }
            Contribution::Histogram { counts } => {
                self.u8(1);
                self.ciphertext_groups(&[(Some(counts.len()), counts)]);
            }
        }
    }

    pub fn release(&mut self, r: Release) {
        let (tag, index) = match r {
            Release::Count => (0, 0),
            Release::Sum => (1, 0),
            Release::Squares => (2, 0),
            Release::SumLimb(k) => (3, k),
            Release::SquaresLimb(k) => (4, k),
            Release::HistTotal => (5, 0),
            Release::HistPrefix(n) => (6, n),
            Release::HistBucket(k) => (7, k),
            Release::HistSuffix(n) => (8, n),
        };
        self.u8(tag);
        self.u32(index);
    }
}

pub fn statistic_code(s: Statistic) -> u8 {
    match s {
        Statistic::Count => 0,
        Statistic::Sum => 1,
        Statistic::Mean => 2,
        Statistic::Variance => 3,
        Statistic::Stddev => 4,
        Statistic::Min => 5,
        Statistic::Max => 6,
        Statistic::Median => 7,
        Statistic::Quantile => 8,
        Statistic::Histogram => 9,
    }
}

/// What t authorities sign to admit a query (before any relay reads data).
pub fn query_admission(query: &QueryIntent) -> Vec<u8> {
    let mut w = Writer::new(DOMAIN_QUERY_ADMISSION);
    w.query(query);
    w.finish()
}

/// What every decryptor of the query signs to admit one round's task of a query.
pub fn round_admission(spec: &QuerySpec, round: u32, task: &RelayTask) -> Vec<u8> {
    spec_round_task(DOMAIN_ROUND_ADMISSION, spec, round, task)
}

/// What every decryptor of the query signs to admit round `round` as any
/// one-bucket refinement of `previous` (round `round − 1`'s task): the
/// layout of `round_admission`, under its own domain, so that neither
/// statement passes for the other.
pub fn refinement_admission(spec: &QuerySpec, round: u32, previous: &RelayTask) -> Vec<u8> {
    spec_round_task(DOMAIN_REFINEMENT_ADMISSION, spec, round, previous)
}

/// The layout of both round statements: domain, spec, round, a task.
fn spec_round_task(domain: &str, spec: &QuerySpec, round: u32, task: &RelayTask) -> Vec<u8> {
    let mut w = Writer::new(domain);
    w.spec(spec);
    w.u32(round);
    w.task(task);
    w.finish()
}

/// What a relay signs: its ciphertexts for (query, round, task), by name.
pub fn contribution_statement(
    spec: &QuerySpec,
    round: u32,
    task: &RelayTask,
    relay: &str,
    contribution: &Contribution,
) -> Vec<u8> {
    let mut w = Writer::new(DOMAIN_CONTRIBUTION);
    w.spec(spec);
    w.u32(round);
    w.task(task);
    w.str(relay);
    w.contribution(contribution);
    w.finish()
}

/// The context an authority's batch of partial decryptions and its one
/// proof are bound to (`crypto::batch_decryption`): the query, the round and
/// every release asked, in order.
pub fn releases_context(query_id: &QueryId, round: u32, releases: &[Release]) -> Vec<u8> {
    let mut w = Writer::new(DOMAIN_RELEASES);
    w.query_id(query_id);
    w.u32(round);
    w.len(releases.len());
    for r in releases {
        w.release(*r);
    }
    w.finish()
}

/// What an admitting authority signs to give relays its sealing key for
/// one query (committed-share path): relays seal shares only to a key so
/// signed by the decryptor it names.
pub fn sealing_grant(query: &QueryId, epoch: u64, authority: &str, key: &[u8; 32]) -> Vec<u8> {
    let mut w = Writer::new(DOMAIN_SEALING_KEY);
    w.query_id(query);
    w.u64(epoch);
    w.str(authority);
    w.raw(key);
    w.finish()
}

/// What a relay signs on the committed-share path: its commitment,
/// ephemeral key and the hashes of its sealed boxes, one per decryptor
/// (`box_hash`), for (query, round, task), by name.
pub fn shares_statement(
    spec: &QuerySpec,
    round: u32,
    task: &RelayTask,
    relay: &str,
    (commitment, ephemeral): (&[u8; 32], &[u8; 32]),
    box_hashes: &[[u8; 32]],
) -> Vec<u8> {
    let mut w = Writer::new(DOMAIN_SHARES);
    w.spec(spec);
    w.u32(round);
    w.task(task);
    w.str(relay);
    w.raw(commitment);
    w.raw(ephemeral);
    w.len(box_hashes.len());
    for h in box_hashes {
        w.raw(h);
    }
    w.finish()
}

/// What a relay's signature binds of one sealed box (`shares_statement`).
pub fn box_hash(sealed: &[u8]) -> [u8; 32] {
    let mut w = Writer::new(DOMAIN_SHARE_BOX_HASH);
    w.bytes(sealed);
    let digest = Sha512::digest(w.finish());
    let mut out = [0u8; 32];
    out.iter_mut().zip(digest.iter()).for_each(|(o, d)| *o = *d);
    out
}

/// The associated data of a relay's sealed boxes: a box opens only for
/// the query, round, relay and commitment it was sealed for.
pub fn box_header(query: &QueryId, round: u32, relay: &str, commitment: &[u8; 32]) -> Vec<u8> {
    let mut w = Writer::new(DOMAIN_SHARE_BOX);
    w.query_id(query);
    w.u32(round);
    w.str(relay);
    w.raw(commitment);
    w.finish()
}
