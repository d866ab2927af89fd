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

use super::ids::QueryId;
use crate::crypto::{PartialDecryption, RelaySignature};
use crate::stats::{Contribution, Epsilon, QueryParams, RelayTask, Release, StatResult};

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
}

/// Node roles, as reported by `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Authority,
    Processor,
    Relay,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Authority => "authority",
            Role::Processor => "processor",
            Role::Relay => "relay",
        })
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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryAnswer {
    pub query_id: QueryId,
    pub column: Vec<String>,
    pub result: StatResult,
    pub relays: Vec<String>,
    pub missing_relays: Vec<(String, String)>,
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessorResponse {
    Answer(Box<QueryAnswer>),
    Status(NodeStatus),
    ClusterStatus(Vec<PeerStatus>),
    Error { message: String },
}

// ---------------------------------------------------------------- relay

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayRequest {
    /// Which column do these labels name, and at how many decimals? (no values)
    Describe {
        query_id: QueryId,
        labels: Vec<String>,
    },
    Contribute {
        spec: QuerySpec,
        round: u32,
        task: RelayTask,
    },
    Status,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub labels: Vec<String>,
    pub decimals: u32,
}

/// A relay's contribution, signed over (query, round, task, relay, contribution).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedContribution {
    pub relay: String,
    pub round: u32,
    pub contribution: Contribution,
    pub signature: RelaySignature,
}

/// What a relay signs, encoded with `wire::encode`.
#[derive(Serialize)]
pub struct ContributionStatement<'a> {
    pub spec: &'a QuerySpec,
    pub round: u32,
    pub task: &'a RelayTask,
    pub relay: &'a str,
    pub contribution: &'a Contribution,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayResponse {
    Described(ColumnInfo),
    Contribution(Box<SignedContribution>),
    Status(NodeStatus),
    Error { message: String },
}

// ---------------------------------------------------------------- authority

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthorityRequest {
    /// Register a round's signed contributions; the authority recomputes the
    /// aggregate itself. Round 0 also charges the query's privacy budget.
    Register {
        spec: QuerySpec,
        round: u32,
        task: RelayTask,
        contributions: Vec<SignedContribution>,
    },
    /// A partial decryption of one permitted release of a registered round.
    Decrypt {
        query_id: QueryId,
        round: u32,
        release: Release,
    },
    Status,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthorityResponse {
    Registered { remaining_budget: Option<Epsilon> },
    Partial(PartialDecryption),
    Refused { reason: String },
    Status(NodeStatus),
}

/// The context a partial decryption's proof is bound to.
pub fn decryption_context(query_id: &QueryId, round: u32, release: Release) -> Vec<u8> {
    let mut ctx = b"crux-release-v1".to_vec();
    ctx.extend_from_slice(&query_id.0);
    ctx.extend_from_slice(&round.to_be_bytes());
    ctx.extend_from_slice(format!("{release:?}").as_bytes());
    ctx
}
