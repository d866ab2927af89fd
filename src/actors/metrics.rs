//! The node's Prometheus metrics (prometheus-client): one `Registry` per
//! node, built by `node::prepare` with the families of its role, and the
//! handles that the actors and the transport count into. Input: events the
//! actors and the transport report, each labelled from a fixed set
//! (`protocol::outcome`), a statistic's name, or a name from the node's
//! own config (peers, dataset); output: the registry, encoded as text by
//! `actors::http` for the node's operator.
//!
//! No metric carries a query's value, a column label, a user's name or
//! anything else a user typed; see SECURITY.md, "Metrics". Handles of the
//! families a role does not register count into nothing.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::protocol::outcome::{AccessRefusal, QueryOutcome, REFUSAL_REASONS};
use crate::protocol::Role;
use crate::stats::Statistic;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    pub statistic: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatisticLabel {
    pub statistic: &'static str,
}

/// A peer of the processor (a configured name), what it was asked and how it answered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerRequestLabels {
    pub peer: String,
    pub request: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub request: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

/// `cluster.dataset` of the authority's own config.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DatasetLabel {
    pub dataset: String,
}

/// Which end of a QUIC connection this node is.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SideLabel {
    pub side: &'static str,
}

/// Connections this node accepted (`server`) or opened (`client`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Server,
    Client,
}

impl Side {
    fn label(self) -> SideLabel {
        SideLabel {
            side: match self {
                Side::Server => "server",
                Side::Client => "client",
            },
        }
    }
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// Query latency buckets: 5 ms to about 80 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// QUIC connections and bytes, counted by `actors::transport`.
#[derive(Clone, Debug, Default)]
pub struct TransportMetrics {
    connections: Family<SideLabel, Gauge>,
    request_bytes: Family<SideLabel, Counter>,
    reply_bytes: Family<SideLabel, Counter>,
}

impl TransportMetrics {
    pub fn connection_opened(&self, side: Side) {
        self.connections.get_or_create(&side.label()).inc();
    }

    pub fn connection_closed(&self, side: Side) {
        self.connections.get_or_create(&side.label()).dec();
    }

    /// Request bytes read (server) or sent (client).
    pub fn request_bytes(&self, side: Side, bytes: usize) {
        self.request_bytes.get_or_create(&side.label()).inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
    }

    /// Reply bytes written (server) or received (client).
    pub fn reply_bytes(&self, side: Side, bytes: usize) {
        self.reply_bytes.get_or_create(&side.label()).inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
    }

    fn register(&self, registry: &mut Registry) {
        // both sides shown from the start, at 0
        for side in [Side::Server, Side::Client] {
            let _ = self.connections.get_or_create(&side.label());
            let _ = self.request_bytes.get_or_create(&side.label());
            let _ = self.reply_bytes.get_or_create(&side.label());
        }
        let r = registry;
        r.register("quic_connections", "Open QUIC connections, by side", self.connections.clone());
        r.register("quic_request_bytes", "Request bytes over QUIC, by side", self.request_bytes.clone());
        r.register("quic_reply_bytes", "Reply bytes over QUIC, by side", self.reply_bytes.clone());
    }
}

/// Requests an actor refused before its state machine saw them.
#[derive(Clone, Debug, Default)]
pub struct AccessMetrics {
    refused: Family<ReasonLabel, Counter>,
}

impl AccessMetrics {
    pub fn refused(&self, why: AccessRefusal) {
        self.refused.get_or_create(&ReasonLabel { reason: why.as_str() }).inc();
    }
}

/// The processor's queries and what it asked its peers.
#[derive(Clone, Debug)]
pub struct ProcessorMetrics {
    pub access: AccessMetrics,
    queries: Family<QueryLabels, Counter>,
    latency: HistogramFamily<StatisticLabel>,
    rounds: Family<StatisticLabel, Counter>,
    releases: Family<StatisticLabel, Counter>,
    peer_replies: Family<PeerRequestLabels, Counter>,
    dlog_table_entries: Gauge,
}

impl Default for ProcessorMetrics {
    fn default() -> Self {
        ProcessorMetrics {
            access: AccessMetrics::default(),
            queries: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            rounds: Family::default(),
            releases: Family::default(),
            peer_replies: Family::default(),
            dlog_table_entries: Gauge::default(),
        }
    }
}

impl ProcessorMetrics {
    pub fn query(&self, statistic: Statistic, outcome: QueryOutcome) {
        self.queries.get_or_create(&QueryLabels { statistic: statistic.name(), outcome: outcome.as_str() }).inc();
    }

    /// An answered query took `took`.
    pub fn answered_in(&self, statistic: Statistic, took: Duration) {
        self.latency.get_or_create(&StatisticLabel { statistic: statistic.name() }).observe(took.as_secs_f64());
    }

    /// A round of relay contributions was asked for.
    pub fn round(&self, statistic: Statistic) {
        self.rounds.get_or_create(&StatisticLabel { statistic: statistic.name() }).inc();
    }

    /// `n` releases were asked of the authorities.
    pub fn releases(&self, statistic: Statistic, n: usize) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.releases.get_or_create(&StatisticLabel { statistic: statistic.name() }).inc_by(n);
    }

    /// How a configured peer answered one request.
    pub fn peer_reply(&self, peer: &str, request: &'static str, outcome: &'static str) {
        self.peer_replies.get_or_create(&PeerRequestLabels { peer: peer.to_string(), request, outcome }).inc();
    }

    pub fn dlog_table_entries(&self, entries: u64) {
        self.dlog_table_entries.set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    fn register(&self, r: &mut Registry) {
        r.register("queries", "Queries taken by the processor, by statistic and outcome", self.queries.clone());
        r.register("query_duration_seconds", "Time to answer a query, by statistic", self.latency.clone());
        r.register("query_rounds", "Rounds of relay contributions asked for, by statistic", self.rounds.clone());
        r.register(
            "query_releases",
            "Releases (decryptions) asked of the authorities, by statistic",
            self.releases.clone(),
        );
        r.register(
            "processor_peer_replies",
            "Replies of each configured relay and authority, by request and outcome",
            self.peer_replies.clone(),
        );
        r.register("dlog_table_entries", "Baby steps in the discrete-log table", self.dlog_table_entries.clone());
    }
}

/// The authority's requests, refusals and budget.
#[derive(Clone, Debug, Default)]
pub struct AuthorityMetrics {
    pub access: AccessMetrics,
    requests: Family<RequestLabels, Counter>,
    refusals: Family<ReasonLabel, Counter>,
    budget_remaining: Family<DatasetLabel, FloatGauge>,
    budget_total: Family<DatasetLabel, FloatGauge>,
}

impl AuthorityMetrics {
    /// One request handled: `refusal` is its reason label when refused.
    pub fn request(&self, request: &'static str, refusal: Option<&'static str>) {
        let outcome = if refusal.is_some() { "refused" } else { "answered" };
        self.requests.get_or_create(&RequestLabels { request, outcome }).inc();
        if let Some(reason) = refusal {
            self.refusals.get_or_create(&ReasonLabel { reason }).inc();
        }
    }

    /// The budget of the authority's own dataset: whole and remaining epsilon.
    pub fn budget(&self, dataset: &str, total: Option<f64>, remaining: f64) {
        let label = DatasetLabel { dataset: dataset.to_string() };
        if let Some(total) = total {
            self.budget_total.get_or_create(&label).set(total);
        }
        self.budget_remaining.get_or_create(&label).set(remaining);
    }

    fn register(&self, r: &mut Registry) {
        for reason in REFUSAL_REASONS {
            let _ = self.refusals.get_or_create(&ReasonLabel { reason });
        }
        r.register("authority_requests", "Requests handled, by kind and outcome", self.requests.clone());
        r.register("authority_refusals", "Refused requests, by reason", self.refusals.clone());
        r.register(
            "authority_budget_remaining_epsilon",
            "Privacy budget left, by dataset",
            self.budget_remaining.clone(),
        );
        r.register("authority_budget_epsilon", "Whole privacy budget, by dataset", self.budget_total.clone());
    }
}

/// The relay's requests.
#[derive(Clone, Debug, Default)]
pub struct RelayMetrics {
    pub access: AccessMetrics,
    requests: Family<RequestLabels, Counter>,
    precomputed: Gauge,
}

impl RelayMetrics {
    /// Encryptions of zero ready in the pool (`RelayState::precompute`).
    pub fn precomputed(&self, ready: usize) {
        self.precomputed.set(i64::try_from(ready).unwrap_or(i64::MAX));
    }

    /// One request handled; `failed` when the relay answered with an error.
    pub fn request(&self, request: &'static str, failed: bool) {
        let outcome = if failed { "error" } else { "answered" };
        self.requests.get_or_create(&RequestLabels { request, outcome }).inc();
    }

    fn register(&self, r: &mut Registry) {
        r.register(
            "relay_requests",
            "Requests handled (contribute: contributions), by kind and outcome",
            self.requests.clone(),
        );
        r.register(
            "relay_precomputed_encryptions",
            "Encryptions of zero made ahead of time and not used yet (refilled between requests)",
            self.precomputed.clone(),
        );
    }
}

/// Every handle a node counts into, and the registry that holds the
/// families of its role (names prefixed `crux_`).
#[derive(Debug)]
pub struct NodeMetrics {
    pub registry: Registry,
    pub transport: TransportMetrics,
    pub processor: ProcessorMetrics,
    pub authority: AuthorityMetrics,
    pub relay: RelayMetrics,
}

impl NodeMetrics {
    pub fn new(role: Role) -> NodeMetrics {
        let mut metrics = NodeMetrics {
            registry: Registry::with_prefix("crux"),
            transport: TransportMetrics::default(),
            processor: ProcessorMetrics::default(),
            authority: AuthorityMetrics::default(),
            relay: RelayMetrics::default(),
        };
        let r = &mut metrics.registry;
        metrics.transport.register(r);
        let access = match role {
            Role::Processor => {
                metrics.processor.register(r);
                &metrics.processor.access
            }
            Role::Authority => {
                metrics.authority.register(r);
                &metrics.authority.access
            }
            Role::Relay | Role::User => {
                metrics.relay.register(r);
                &metrics.relay.access
            }
        };
        let reasons = match role {
            Role::Processor => [AccessRefusal::NotUser, AccessRefusal::Malformed, AccessRefusal::RateLimit].as_slice(),
            _ => [AccessRefusal::NotProcessor, AccessRefusal::Malformed].as_slice(),
        };
        for why in reasons {
            let _ = access.refused.get_or_create(&ReasonLabel { reason: why.as_str() });
        }
        r.register("requests_refused", "Requests refused before they were read, by reason", access.refused.clone());
        metrics
    }

    /// The registry in the text exposition format.
    pub fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_registers_its_families() {
        let node = NodeMetrics::new(Role::Authority);
        node.authority.request("admit_query", Some("budget"));
        node.authority.budget("areas", Some(10.0), 9.5);
        node.processor.query(Statistic::Median, QueryOutcome::Answered);
        let text = NodeMetrics::encode(&node.registry).unwrap();
        assert!(
            text.contains("crux_authority_requests_total{request=\"admit_query\",outcome=\"refused\"} 1"),
            "{text}"
        );
        assert!(text.contains("crux_authority_refusals_total{reason=\"budget\"} 1"), "{text}");
        assert!(text.contains("crux_authority_refusals_total{reason=\"replay\"} 0"), "{text}");
        assert!(text.contains("crux_authority_budget_remaining_epsilon{dataset=\"areas\"} 9.5"), "{text}");
        assert!(text.contains("crux_quic_connections{side=\"server\"} 0"), "{text}");
        assert!(text.contains("crux_requests_refused_total{reason=\"not_processor\"} 0"), "{text}");
        // the processor's families are not an authority's
        assert!(!text.contains("crux_queries"), "{text}");

        let node = NodeMetrics::new(Role::Processor);
        node.processor.query(Statistic::Median, QueryOutcome::Answered);
        node.processor.answered_in(Statistic::Median, Duration::from_millis(120));
        node.processor.peer_reply("relay-1", "contribute", "ok");
        node.processor.access.refused(AccessRefusal::NotUser);
        let text = NodeMetrics::encode(&node.registry).unwrap();
        assert!(text.contains("crux_queries_total{statistic=\"median\",outcome=\"answered\"} 1"), "{text}");
        assert!(text.contains("crux_query_duration_seconds_count{statistic=\"median\"} 1"), "{text}");
        assert!(
            text.contains(
                "crux_processor_peer_replies_total{peer=\"relay-1\",request=\"contribute\",outcome=\"ok\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("crux_requests_refused_total{reason=\"not_a_user\"} 1"), "{text}");
    }
}
