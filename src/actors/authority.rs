//! AuthorityActor: runs the authority's state machine (`protocol::authority`)
//! on its own thread (a one-thread `SyncArbiter`: partial decryptions and
//! signature checks are CPU work), with the LMDB ledger. It receives request
//! bytes from the transport, decodes them under the frame limit, and returns
//! encoded replies; it counts requests, refusals (by their fixed label) and
//! the remaining budget into its `AuthorityMetrics`. Nothing secret is
//! logged or counted.

use actix::prelude::*;
use tracing::{debug, info, info_span, warn};

use super::keys::unix_now;
use super::metrics::AuthorityMetrics;
use super::RequestBytes;
use crate::data::ledger::LmdbLedger;
use crate::protocol::access::only_processor;
use crate::protocol::authority::AuthorityState;
use crate::protocol::ledger::Ledger;
use crate::protocol::outcome::{authority_request, AccessRefusal};
use crate::protocol::wire::{decode_at_authority, encode};
use crate::protocol::{AuthorityRequest, AuthorityResponse, NodeStatus, Role};
use crate::stats::dp::NoiseRng;

pub struct AuthorityActor {
    pub state: AuthorityState,
    pub ledger: LmdbLedger,
    pub dataset: String,
    pub processor: String,
    pub max_frame: usize,
    /// ChaCha20 seeded from the OS: noise, nonces and batch weights
    pub rng: NoiseRng,
    pub metrics: AuthorityMetrics,
    /// the key share and committee files it switches on a committee change
    pub files: super::committee_watch::WatchedFiles,
}

/// Charges shown by `status` (newest first).
const RECENT_CHARGES: usize = 3;

impl Actor for AuthorityActor {
    type Context = SyncContext<Self>;
}

fn refused(reason: String) -> Vec<u8> {
    encode(&AuthorityResponse::Refused { reason }).unwrap_or_default()
}

impl AuthorityActor {
    /// Role, budget (with the ledger's charges) and policy, for `status`.
    fn node_status(&self) -> NodeStatus {
        let budget = self.state.policy().budget;
        let policy = self.state.policy();
        let remaining =
            self.ledger.remaining(&self.dataset, budget).map(|e| e.to_string()).unwrap_or_else(|e| e.to_string());
        let (charges, recent) = match self.ledger.charges(RECENT_CHARGES) {
            Ok((count, recent)) => {
                (count.to_string(), recent.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("; "))
            }
            Err(e) => (e.to_string(), String::new()),
        };
        NodeStatus {
            name: self.state.name().to_string(),
            role: Role::Authority,
            version: env!("CARGO_PKG_VERSION").to_string(),
            details: vec![
                ("dataset".into(), self.dataset.clone()),
                ("budget_epsilon".into(), budget.to_string()),
                ("remaining_epsilon".into(), remaining),
                ("allow_exact".into(), policy.allow_exact.to_string()),
                ("min_relays".into(), policy.min_relays.to_string()),
                ("charges".into(), charges),
                ("recent_charges".into(), recent),
                ("epoch".into(), self.state.joint_key().epoch().to_string()),
                ("threshold".into(), self.state.joint_key().threshold().to_string()),
                ("joint_key".into(), self.state.joint_key().fingerprint()),
            ],
        }
    }
}

impl Handler<RequestBytes> for AuthorityActor {
    type Result = Vec<u8>;

    fn handle(&mut self, msg: RequestBytes, _ctx: &mut Self::Context) -> Vec<u8> {
        if let Err(refusal) = only_processor(self.state.name(), &self.processor, &msg.peer) {
            warn!(peer = %msg.peer, "refusing a request from a node that is not the processor");
            self.metrics.access.refused(AccessRefusal::NotProcessor);
            return refused(refusal);
        }
        let request: AuthorityRequest = match decode_at_authority(&msg.bytes, self.max_frame) {
            Ok(r) => r,
            Err(e) => {
                warn!(peer = %msg.peer, cause = %e, "dropping a malformed request");
                self.metrics.access.refused(AccessRefusal::Malformed);
                return refused(e.to_string());
            }
        };
        let (query_id, kind) = match &request {
            AuthorityRequest::AdmitQuery { query, .. } => (query.id.to_string(), "admit query".to_string()),
            AuthorityRequest::AdmitRound { spec, round, .. } => (spec.id.to_string(), format!("admit round {round}")),
            AuthorityRequest::AdmitRefinement { spec, round, .. } => {
                (spec.id.to_string(), format!("admit round {round} as a refinement"))
            }
            AuthorityRequest::Register { spec, round, releases, .. } => {
                (spec.id.to_string(), format!("register round {round} and {} releases", releases.len()))
            }
            AuthorityRequest::Decrypt { query_id, round, releases } => {
                (query_id.to_string(), format!("decrypt round {round}: {} releases", releases.len()))
            }
            AuthorityRequest::Status => (String::new(), "status".to_string()),
            AuthorityRequest::Transition { epoch } => (String::new(), format!("transition to epoch {epoch}")),
        };
        let span = info_span!("query", query_id = %query_id, role = "authority");
        let _guard = span.enter();
        // who asked for what, for the log: the charge itself is in the ledger
        let admission = match &request {
            AuthorityRequest::AdmitQuery { query, user, .. } => Some((
                user.clone(),
                if query.params.exact { "0".to_string() } else { query.params.epsilon.unwrap_or_default().to_string() },
            )),
            _ => None,
        };
        // the ledger is read for a status request only, not on every request
        let node_status = matches!(request, AuthorityRequest::Status).then(|| self.node_status());
        let name = self.state.name().to_string();
        let status = move || {
            node_status.unwrap_or_else(|| NodeStatus {
                name,
                role: Role::Authority,
                version: env!("CARGO_PKG_VERSION").to_string(),
                details: Vec::new(),
            })
        };
        let label = authority_request(&request);
        // the processor's poll for a committee change, 4 times a second
        let poll = matches!(request, AuthorityRequest::Transition { .. });
        let (response, refusal) = self.state.answer(request, &mut self.ledger, unix_now(), status, &mut self.rng);
        self.metrics.request(label, refusal);
        if let AuthorityResponse::Admitted { remaining_budget: Some(remaining), .. } = &response {
            self.metrics.budget(&self.dataset, None, remaining.as_f64());
        }
        match (&response, admission) {
            (AuthorityResponse::Refused { reason }, _) => warn!(request = %kind, reason = %reason, "refused"),
            (AuthorityResponse::Admitted { remaining_budget, .. }, Some((user, epsilon))) => info!(
                request = %kind,
                user = %user,
                epsilon = %epsilon,
                remaining = %remaining_budget.map(|e| e.to_string()).unwrap_or_default(),
                "admitted: budget charged"
            ),
            _ if poll => debug!(request = %kind, "answered"),
            _ => info!(request = %kind, "answered"),
        }
        encode(&response).unwrap_or_else(|e| refused(e.to_string()))
    }
}
