//! RelayActor: runs the relay's state machine (`protocol::relay`) on its own
//! thread (a one-thread `SyncArbiter`: reading files and encrypting are CPU
//! work). It answers only the processor. Data errors name the cell but never
//! quote its content, neither in the reply nor in the log. It counts
//! requests by kind and outcome into its `RelayMetrics` (no message text).
//! Between requests it makes encryptions of zero ahead of time
//! (`RelayState::precompute`), `PRECOMPUTE_CHUNK` per `Refill` message so
//! that a request waits for one chunk at most (about 2 ms).

use actix::prelude::*;
use rand::rngs::OsRng;
use tracing::{info, info_span, warn};

use super::column_source::FileColumnSource;
use super::keys::unix_now;
use super::metrics::RelayMetrics;
use super::RequestBytes;
use crate::protocol::access::only_processor;
use crate::protocol::outcome::{relay_request, AccessRefusal};
use crate::protocol::relay::RelayState;
use crate::protocol::wire::{decode, encode};
use crate::protocol::{NodeStatus, RelayRequest, RelayResponse, Role};

pub struct RelayActor {
    pub state: RelayState,
    pub source: FileColumnSource,
    pub processor: String,
    pub max_frame: usize,
    pub metrics: RelayMetrics,
    /// a `Refill` is queued
    pub refilling: bool,
}

/// Encryptions of zero made per `Refill`.
pub const PRECOMPUTE_CHUNK: usize = 64;

/// Make the next chunk of encryptions of zero (sent by the actor to itself).
#[derive(Message)]
#[rtype(result = "()")]
struct Refill;

impl RelayActor {
    fn refill_later(&mut self, ctx: &mut SyncContext<Self>) {
        if !self.refilling {
            self.refilling = true;
            ctx.address().do_send(Refill);
        }
    }
}

impl Actor for RelayActor {
    type Context = SyncContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.refill_later(ctx);
    }
}

impl Handler<Refill> for RelayActor {
    type Result = ();

    fn handle(&mut self, _: Refill, ctx: &mut Self::Context) {
        self.refilling = false;
        let short = self.state.precompute(PRECOMPUTE_CHUNK, &mut OsRng);
        self.metrics.precomputed(self.state.precomputed());
        if short {
            self.refill_later(ctx);
        }
    }
}

fn error(message: String) -> Vec<u8> {
    encode(&RelayResponse::Error { message }).unwrap_or_default()
}

impl Handler<RequestBytes> for RelayActor {
    type Result = Vec<u8>;

    fn handle(&mut self, msg: RequestBytes, ctx: &mut Self::Context) -> Vec<u8> {
        if let Err(refusal) = only_processor(self.state.name(), &self.processor, &msg.peer) {
            warn!(peer = %msg.peer, "refusing a request from a node that is not the processor");
            self.metrics.access.refused(AccessRefusal::NotProcessor);
            return error(refusal);
        }
        let request: RelayRequest = match decode(&msg.bytes, self.max_frame) {
            Ok(r) => r,
            Err(e) => {
                warn!(peer = %msg.peer, cause = %e, "dropping a malformed request");
                self.metrics.access.refused(AccessRefusal::Malformed);
                return error(e.to_string());
            }
        };
        let (query_id, kind) = match &request {
            RelayRequest::Describe { query, .. } => (query.id.to_string(), "describe".to_string()),
            RelayRequest::Contribute { spec, round, .. } => (spec.id.to_string(), format!("contribute round {round}")),
            RelayRequest::Status => (String::new(), "status".to_string()),
            RelayRequest::Columns => (String::new(), "columns".to_string()),
            RelayRequest::Transition(t) => {
                (String::new(), format!("switch to committee epoch {}", t.transition.committee.epoch()))
            }
        };
        let span = info_span!("query", query_id = %query_id, role = "relay");
        let _guard = span.enter();
        let name = self.state.name().to_string();
        let files = self.source.files();
        let status = move || NodeStatus {
            name,
            role: Role::Relay,
            version: env!("CARGO_PKG_VERSION").to_string(),
            details: vec![("files".into(), files.to_string())],
        };
        let label = relay_request(&request);
        let (response, note) = self.state.handle(request, &self.source, status, unix_now(), &mut OsRng);
        // after a contribution (or a committee switch) the pool is short
        self.metrics.precomputed(self.state.precomputed());
        self.refill_later(ctx);
        self.metrics.request(label, matches!(response, RelayResponse::Error { .. }));
        if let RelayResponse::Error { message } = &response {
            // the detail stays in this relay's log (never a cell's content)
            warn!(request = %kind, cause = %message, detail = note.as_deref().unwrap_or(""), "request failed");
        } else {
            info!(request = %kind, "answered");
        }
        encode(&response).unwrap_or_else(|e| error(e.to_string()))
    }
}
