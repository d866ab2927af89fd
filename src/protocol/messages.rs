//! Message types between the roles. Every message about a query carries its
//! `QueryId`. Ciphertexts travel as compressed points; no message carries a
//! plaintext value, encryption randomness or key share.
//!
//! User -> Processor: `ProcessorRequest` / `ProcessorResponse`.
//! Processor -> Relay: `RelayRequest` / `RelayResponse`.
//! Processor -> Authority: `AuthorityRequest` / `AuthorityResponse`.
//! Messages are decoded once and moved, never copied in bulk, so variants of
//! different sizes are fine (`clippy::large_enum_variant` is allowed here).
#![allow(clippy::large_enum_variant)]

use serde::{Deserialize, Serialize};

use super::error::PeerFailure;
use super::ids::QueryId;
use crate::crypto::{AdmissionSignature, BatchDecryption, RandomnessProof, RelaySignature};
use crate::stats::{Contribution, Epsilon, QueryParams, RelayTask, Release, StatResult, Statistic};

/// A query as the user asked it, before the column's scale is known: what
/// the authorities admit first (and charge the budget for).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryIntent {
    pub id: QueryId,
    pub issued_at: u64,
    pub dataset: String,
    pub labels: Vec<String>,
    pub params: QueryParams,
}

/// A query as relays and authorities see it once the processor has fixed the
/// column's common scale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuerySpec {
    pub id: QueryId,
    /// seconds since the Unix epoch, set by the processor; authorities refuse
    /// queries outside their replay window.
    pub issued_at: u64,
    /// the privacy-budget key.
    pub dataset: String,
    /// 1 to 3 header labels naming the column.
    pub labels: Vec<String>,
    pub params: QueryParams,
    /// fixed-point scale: values are integers times 10^-decimals.
    pub decimals: u32,
    /// the committee epoch whose joint key the relays encrypt to.
    pub epoch: u64,
    /// the t authorities that admit the rounds, register them and decrypt
    /// (chosen by the processor among those that admitted the query).
    pub decryptors: Vec<String>,
}

impl QuerySpec {
    pub fn new(intent: QueryIntent, decimals: u32, epoch: u64, decryptors: Vec<String>) -> Self {
        let QueryIntent { id, issued_at, dataset, labels, params } = intent;
        QuerySpec { id, issued_at, dataset, labels, params, decimals, epoch, decryptors }
    }

    /// The admitted query this spec fixes the scale of.
    pub fn intent(&self) -> QueryIntent {
        QueryIntent {
            id: self.id,
            issued_at: self.issued_at,
            dataset: self.dataset.clone(),
            labels: self.labels.clone(),
            params: self.params.clone(),
        }
    }
}

/// 32 bytes (a compressed point or a canonical scalar), one msgpack `bin`
/// on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bytes32(#[serde(with = "serde_bytes")] pub [u8; 32]);

/// An authority's sealing key for one query (committed-share path), with
/// its signature over `codec::sealing_grant`: relays seal a decryptor's
/// shares only to a key so signed by it (`protocol::shares`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealingGrant {
    pub key: Bytes32,
    pub signature: AdmissionSignature,
}

/// A relay's contribution on the committed-share path, signed over
/// `codec::shares_statement`: a commitment to its components and blinding
/// (`crypto::shares`), its ephemeral key for the round, and one sealed
/// box of Shamir shares per decryptor, in the spec's order. The signature
/// covers the boxes' hashes, so the processor sends each decryptor its own
/// box only (the others empty, with `hashes`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedShares {
    pub relay: String,
    pub round: u32,
    pub commitment: Bytes32,
    pub ephemeral: Bytes32,
    pub boxes: Vec<serde_bytes::ByteBuf>,
    pub signature: RelaySignature,
    /// every box's hash (`codec::box_hash`), when some boxes are left out;
    /// empty: computed from the boxes
    #[serde(default)]
    pub hashes: Vec<Bytes32>,
}

impl SignedShares {
    /// The boxes' hashes, which the signature covers: `hashes` checked
    /// against every box present, or computed from the boxes (all
    /// present). None when they disagree or a box is missing without them.
    pub fn box_hashes(&self) -> Option<Vec<[u8; 32]>> {
        if self.hashes.is_empty() {
            return self.boxes.iter().map(|b| (!b.is_empty()).then(|| super::codec::box_hash(b))).collect();
        }
        let agree = self.hashes.len() == self.boxes.len()
            && self.boxes.iter().zip(&self.hashes).all(|(b, h)| b.is_empty() || super::codec::box_hash(b) == h.0);
        agree.then(|| self.hashes.iter().map(|h| h.0).collect())
    }

    /// These shares with `hashes` filled in (computed from the boxes once;
    /// unchanged if already there or if a box is missing).
    pub fn with_hashes(mut self) -> SignedShares {
        if self.hashes.is_empty() {
            if let Some(hashes) = self.box_hashes() {
                self.hashes = hashes.into_iter().map(Bytes32).collect();
            }
        }
        self
    }

    /// These shares as sent to the decryptor at `position`: its own box,
    /// the others left out, every hash kept (`with_hashes` first; the
    /// decryptor checks its own box against its hash).
    pub fn for_decryptor(&self, position: usize) -> Option<SignedShares> {
        let hashes = if self.hashes.is_empty() {
            self.box_hashes()?.into_iter().map(Bytes32).collect()
        } else {
            self.hashes.clone()
        };
        let boxes = self
            .boxes
            .iter()
            .enumerate()
            .map(|(k, b)| if k == position { b.clone() } else { serde_bytes::ByteBuf::new() })
            .collect();
        Some(SignedShares { boxes, hashes, ..self.clone() })
    }
}

/// A decryptor's sums of the shares it received for a round, values in
/// statement order then the blinding: any t of them interpolate to the
/// round's aggregate, which the processor checks against the relays'
/// commitments (with noise, plus the decryptors' noise commitments).
/// Unsigned: a wrong sum fails that check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareSums {
    pub authority: String,
    pub round: u32,
    pub values: Vec<Bytes32>,
    pub blind: Bytes32,
    /// a noisy query's: the decryptor's commitment to the noise it added,
    /// Σ η_k·G_k + ρ·H (`shares::noisy_share_sums`); None when exact
    pub noise: Option<Bytes32>,
}

/// Authorities' signatures over one admission statement: at least t
/// members of the committee for `codec::query_admission`, every one of the
/// spec's decryptors for `codec::round_admission`. Relays act only on a
/// request that carries such an admission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    pub signatures: Vec<(String, AdmissionSignature)>,
}

/// A node's role: what `node.role` names in its config (and its settings'
/// section), and what `status` reports. Users only ask; they never serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Authority,
    Processor,
    Relay,
    User,
}

impl Role {
    /// The name used in `node.role` and for the section of the role's settings.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Authority => "authority",
            Role::Processor => "processor",
            Role::Relay => "relay",
            Role::User => "user",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    pub role: Role,
    pub version: String,
    /// role-specific facts, e.g. remaining budget or table size
    pub details: Vec<(String, String)>,
}

// ---------------------------------------------------------------- user

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessorRequest {
    Query {
        labels: Vec<String>,
        params: QueryParams,
    },
    Status,
    /// reachability of every node, as seen by the processor
    ClusterStatus,
    /// the column labels relays publish (`publish_columns` in their config)
    Columns,
    /// how far the asking user's queries in flight have got
    Progress,
}

/// How far one query in flight has got (no values: the plan's shape only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryProgress {
    pub query_id: QueryId,
    pub statistic: Statistic,
    /// rounds of relay contributions started
    pub rounds: u32,
    /// most rounds the plan may take (a search may finish sooner); 0 until
    /// the relays have described the column
    pub max_rounds: u32,
    pub elapsed_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryAnswer {
    pub query_id: QueryId,
    pub column: Vec<String>,
    pub result: StatResult,
    pub relays: Vec<String>,
    pub missing_relays: Vec<(String, String)>,
    /// the t authorities that decrypted
    #[serde(default)]
    pub decryptors: Vec<String>,
    /// authorities that did not answer the admission, with the reason
    #[serde(default)]
    pub missing_authorities: Vec<(String, String)>,
    pub exact: bool,
    pub epsilon: Option<Epsilon>,
    /// human description of the noise applied, if any
    pub noise: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub name: String,
    pub role: Role,
    pub address: String,
    /// Ok(status) when reachable, Err(reason) otherwise
    pub status: Result<NodeStatus, String>,
}

/// One relay's published column labels (each column 1 to 3 labels), or why
/// it did not answer.
pub type RelayColumns = (String, Result<Vec<Vec<String>>, String>);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ProcessorResponse {
    Answer(Box<QueryAnswer>),
    Status(NodeStatus),
    ClusterStatus(Vec<PeerStatus>),
    /// per relay: the labels of the columns it publishes, or why it did not answer
    Columns(Vec<RelayColumns>),
    Progress(Vec<QueryProgress>),
    Error {
        message: String,
    },
}

// ---------------------------------------------------------------- relay

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayRequest {
    /// Which column do the admitted query's labels name, and at how many
    /// declared decimals? (no values; config only)
    Describe {
        query: QueryIntent,
        admission: Admission,
        /// the committee epoch whose members signed the admission
        #[serde(default)]
        epoch: u64,
    },
    /// Encrypt the admitted round's task over the column, under
    /// `admission`'s signatures over the statement `admission_of` names.
    Contribute {
        spec: QuerySpec,
        round: u32,
        task: RelayTask,
        admission: Admission,
        #[serde(default)]
        admission_of: AdmissionOf,
        /// the decryptors' sealing keys, in the spec's order: when given,
        /// the relay answers `Shares` (committed-share path) instead of
        /// ciphertexts
        #[serde(default)]
        sealing: Vec<(String, SealingGrant)>,
    },
    Status,
    /// The header labels of the columns the relay's config publishes.
    Columns,
    /// A new committee, signed by t members of the relay's current one
    /// (passed on by the processor; the relay checks it itself).
    Transition(Box<super::committee::SignedTransition>),
}

/// What the signatures of a `Contribute`'s admission are over.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdmissionOf {
    /// `codec::round_admission` of this round's task, by the spec's decryptors
    #[default]
    Round,
    /// `codec::query_admission` of the spec's query, by t members of the
    /// committee: round 0 only, whose task the relay checks against the
    /// query's plan itself (`policy::check_task`)
    Query,
    /// `codec::refinement_admission` of this round and the previous round's
    /// task (this one), by the spec's decryptors; the relay checks that the
    /// task refines one bucket of it (`policy::check_task`)
    Refinement(RelayTask),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub labels: Vec<String>,
    /// the decimals the relay's config declares for its sources (never
    /// detected from the data at query time)
    pub decimals: u32,
}

/// A relay's contribution, signed over `codec::contribution_statement`
/// (query, round, task, relay, ciphertexts); `proof` proves knowledge of the
/// randomness of every ciphertext, bound to that same statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedContribution {
    pub relay: String,
    pub round: u32,
    pub contribution: Contribution,
    pub proof: RandomnessProof,
    pub signature: RelaySignature,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayResponse {
    Described(ColumnInfo),
    Contribution(Box<SignedContribution>),
    /// a contribution on the committed-share path
    Shares(Box<SignedShares>),
    Status(NodeStatus),
    Columns(Vec<Vec<String>>),
    Error {
        message: String,
    },
    /// the relay now encrypts to committee epoch `epoch`
    Switched {
        epoch: u64,
    },
}

// ---------------------------------------------------------------- authority

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthorityRequest {
    /// Admit a query before any relay reads data: the authority checks the
    /// dataset, parameters, exact permission, replay window and budget,
    /// charges the budget, and signs `codec::query_admission`.
    AdmitQuery {
        query: QueryIntent,
        /// the user the processor authenticated: recorded with the charge
        /// (not signed: the processor is trusted to name its users)
        user: String,
        /// the committee epoch the processor runs the query under; an
        /// authority signs with that epoch's share or answers `OtherEpoch`
        #[serde(default)]
        epoch: u64,
        /// also give a sealing key for the query (`SealingGrant`), for the
        /// committed-share path
        #[serde(default)]
        sealing: bool,
    },
    /// Admit one round's task of an admitted query (plan, scale, bounds, and
    /// for later search rounds the refinement of the previous grid); signs
    /// `codec::round_admission`.
    AdmitRound {
        spec: QuerySpec,
        round: u32,
        task: RelayTask,
    },
    /// Admit round `round` of an admitted search as any one-bucket
    /// refinement of `previous`, round `round − 1`'s task (which this
    /// fixes, if a refinement admission left it open); signs
    /// `codec::refinement_admission`. Asked together with round
    /// `round − 1`'s registration, so a search round needs no admission
    /// round trip of its own; the first `Register` or `AdmitRefinement`
    /// naming round `round`'s task fixes it.
    AdmitRefinement {
        spec: QuerySpec,
        round: u32,
        previous: RelayTask,
    },
    /// Register an admitted round's signed, proved contributions; the
    /// authority recomputes the aggregate itself. With `releases`, it then
    /// answers them as a `Decrypt` of the round would (`Partials`, under
    /// the same rules), saving a round trip; without, `Registered`.
    Register {
        spec: QuerySpec,
        round: u32,
        task: RelayTask,
        contributions: Vec<SignedContribution>,
        #[serde(default)]
        releases: Vec<Release>,
        /// the round's contributions on the committed-share path (then
        /// `contributions` is empty); the releases are answered with `Sums`
        #[serde(default)]
        shared: Vec<SignedShares>,
    },
    /// Partial decryptions of permitted releases of a registered round,
    /// with one proof for all of them (`crypto::batch_decryption`).
    Decrypt {
        query_id: QueryId,
        round: u32,
        releases: Vec<Release>,
    },
    Status,
    /// The signed statement of this authority's switch to committee epoch
    /// `epoch` (`protocol::committee::SignedTransition`), for the processor
    /// to pass on to relays.
    Transition {
        epoch: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthorityResponse {
    Admitted {
        signature: AdmissionSignature,
        remaining_budget: Option<Epsilon>,
        /// the query's sealing key, when `AdmitQuery` asked for it
        #[serde(default)]
        sealing: Option<SealingGrant>,
    },
    Registered,
    Partials(BatchDecryption),
    /// the releases of a round on the committed-share path: the whole
    /// round's summed shares
    Sums(ShareSums),
    Refused {
        reason: String,
    },
    Status(NodeStatus),
    /// the request is for committee epoch `asked`, this authority runs `current`
    OtherEpoch {
        asked: u64,
        current: u64,
    },
    Transition(Box<super::committee::SignedTransition>),
}

/// The name of a message's kind, for logs and error messages (never its content).
pub trait MessageKind {
    fn kind(&self) -> &'static str;
}

impl MessageKind for ProcessorRequest {
    fn kind(&self) -> &'static str {
        match self {
            ProcessorRequest::Query { .. } => "Query",
            ProcessorRequest::Status => "Status",
            ProcessorRequest::ClusterStatus => "ClusterStatus",
            ProcessorRequest::Columns => "Columns",
            ProcessorRequest::Progress => "Progress",
        }
    }
}

impl MessageKind for ProcessorResponse {
    fn kind(&self) -> &'static str {
        match self {
            ProcessorResponse::Answer(_) => "Answer",
            ProcessorResponse::Status(_) => "Status",
            ProcessorResponse::ClusterStatus(_) => "ClusterStatus",
            ProcessorResponse::Columns(_) => "Columns",
            ProcessorResponse::Progress(_) => "Progress",
            ProcessorResponse::Error { .. } => "Error",
        }
    }
}

impl MessageKind for RelayRequest {
    fn kind(&self) -> &'static str {
        match self {
            RelayRequest::Describe { .. } => "Describe",
            RelayRequest::Transition(_) => "Transition",
            RelayRequest::Contribute { .. } => "Contribute",
            RelayRequest::Status => "Status",
            RelayRequest::Columns => "Columns",
        }
    }
}

impl MessageKind for RelayResponse {
    fn kind(&self) -> &'static str {
        match self {
            RelayResponse::Described(_) => "Described",
            RelayResponse::Contribution(_) => "Contribution",
            RelayResponse::Shares(_) => "Shares",
            RelayResponse::Status(_) => "Status",
            RelayResponse::Columns(_) => "Columns",
            RelayResponse::Error { .. } => "Error",
            RelayResponse::Switched { .. } => "Switched",
        }
    }
}

impl MessageKind for AuthorityRequest {
    fn kind(&self) -> &'static str {
        match self {
            AuthorityRequest::AdmitQuery { .. } => "AdmitQuery",
            AuthorityRequest::AdmitRound { .. } => "AdmitRound",
            AuthorityRequest::AdmitRefinement { .. } => "AdmitRefinement",
            AuthorityRequest::Register { .. } => "Register",
            AuthorityRequest::Decrypt { .. } => "Decrypt",
            AuthorityRequest::Status => "Status",
            AuthorityRequest::Transition { .. } => "Transition",
        }
    }
}

impl MessageKind for AuthorityResponse {
    fn kind(&self) -> &'static str {
        match self {
            AuthorityResponse::Admitted { .. } => "Admitted",
            AuthorityResponse::Registered => "Registered",
            AuthorityResponse::Partials(_) => "Partials",
            AuthorityResponse::Sums(_) => "Sums",
            AuthorityResponse::Refused { .. } => "Refused",
            AuthorityResponse::Status(_) => "Status",
            AuthorityResponse::OtherEpoch { .. } => "OtherEpoch",
            AuthorityResponse::Transition(_) => "Transition",
        }
    }
}

impl RelayResponse {
    /// Why this answer is not the `expected` kind: the relay's own error
    /// message, or the kind it sent instead.
    pub fn failure(self, expected: &'static str) -> PeerFailure {
        match self {
            RelayResponse::Error { message } => PeerFailure::Refused(message),
            other => PeerFailure::Unexpected { found: other.kind(), expected },
        }
    }
}

impl AuthorityResponse {
    /// Why this answer is not the `expected` kind: the authority's refusal,
    /// or the kind it sent instead.
    pub fn failure(self, expected: &'static str) -> PeerFailure {
        match self {
            AuthorityResponse::Refused { reason } => PeerFailure::Refused(reason),
            AuthorityResponse::OtherEpoch { asked, current } => PeerFailure::Refused(format!(
                "it runs committee epoch {current}, the request is for epoch {asked} (a committee change is under way)"
            )),
            other => PeerFailure::Unexpected { found: other.kind(), expected },
        }
    }
}

impl AuthorityRequest {
    /// The request as sent to `authority`, when it differs from the one
    /// sent to all: a registration of shares carries each decryptor's own
    /// boxes only (`SignedShares::for_decryptor`). None: the same for all.
    pub fn for_authority(&self, authority: &str) -> Option<AuthorityRequest> {
        let AuthorityRequest::Register { spec, round, task, contributions, releases, shared } = self else {
            return None;
        };
        // ciphertexts go to every authority alike: one encoding serves all
        if shared.is_empty() {
            return None;
        }
        let position = spec.decryptors.iter().position(|d| d == authority)?;
        let shared = shared.iter().map(|s| s.for_decryptor(position).unwrap_or_else(|| s.clone())).collect();
        let (spec, task) = (spec.clone(), task.clone());
        let (contributions, releases) = (contributions.clone(), releases.clone());
        Some(AuthorityRequest::Register { spec, round: *round, task, contributions, releases, shared })
    }

    /// The releases the request asks to decrypt (a `Decrypt`'s, or those a
    /// `Register` carries); none for the others.
    pub fn releases(&self) -> &[Release] {
        match self {
            AuthorityRequest::Decrypt { releases, .. } | AuthorityRequest::Register { releases, .. } => releases,
            _ => &[],
        }
    }

    /// Whether the request may be sent again after a connection was lost
    /// mid-request. An admission charges the budget and records the query
    /// id, a registration records the round: resent, the second would be
    /// refused as a replay or out of order. The others are idempotent (a
    /// repeated release gets the same partial decryption).
    pub fn may_resend(&self) -> bool {
        !matches!(self, AuthorityRequest::AdmitQuery { .. } | AuthorityRequest::Register { .. })
    }
}

pub use super::codec::releases_context;
