//! What happened to a request or a query, as one label from a fixed set:
//! the classifications behind the operator's metrics (`actors::metrics`)
//! and the processor's readiness. Input: a state machine's result or error,
//! a peer's reply, the reachability of the processor's peers (all passed in
//! by the actors); output: `&'static str` labels and a readiness verdict.
//! A label never carries a message, a value or anything a user typed: each
//! is chosen from the error's variant only. No I/O.

use super::error::{PeerFailure, ProtocolError};
use super::messages::{AuthorityRequest, AuthorityResponse, QueryAnswer, RelayRequest, RelayResponse};
use crate::stats::StatsError;

/// How a query the processor took ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueryOutcome {
    Answered,
    /// an authority refused an admission or a release (budget, exact mode, replay...)
    Refused,
    /// fewer relays contributed than `cluster.min_relays`
    RelaysMissing,
    /// the query's parameters are invalid (refused before any peer is asked)
    Invalid,
    /// anything else: a relay's error, a bad proof, a transport failure
    Failed,
    /// the query ran longer than `timeouts.query_ms`
    TimedOut,
    /// the user's rate limit refused it before it ran
    RefusedRateLimit,
}

impl QueryOutcome {
    pub const ALL: [QueryOutcome; 7] = [
        QueryOutcome::Answered,
        QueryOutcome::Refused,
        QueryOutcome::RelaysMissing,
        QueryOutcome::Invalid,
        QueryOutcome::Failed,
        QueryOutcome::TimedOut,
        QueryOutcome::RefusedRateLimit,
    ];

    /// The outcome of a query that ran to its end (not timed out).
    pub fn of(result: &Result<QueryAnswer, ProtocolError>) -> QueryOutcome {
        match result {
            Ok(_) => QueryOutcome::Answered,
            Err(e) => QueryOutcome::of_error(e),
        }
    }

    /// The outcome of a query that failed with `error`.
    pub fn of_error(error: &ProtocolError) -> QueryOutcome {
        match error {
            ProtocolError::Refused { .. } => QueryOutcome::Refused,
            ProtocolError::NotEnoughRelays { .. } => QueryOutcome::RelaysMissing,
            ProtocolError::Stats(StatsError::InvalidParameter { .. } | StatsError::UnknownStatistic(_)) => {
                QueryOutcome::Invalid
            }
            _ => QueryOutcome::Failed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QueryOutcome::Answered => "answered",
            QueryOutcome::Refused => "refused",
            QueryOutcome::RelaysMissing => "relays_missing",
            QueryOutcome::Invalid => "invalid",
            QueryOutcome::Failed => "failed",
            QueryOutcome::TimedOut => "timed_out",
            QueryOutcome::RefusedRateLimit => "refused_rate_limit",
        }
    }
}

/// Why an authority refused a request: one label per kind of error, never
/// its message (which may name a query id, a relay or a number).
pub fn refusal_reason(error: &ProtocolError) -> &'static str {
    match error {
        ProtocolError::Invalid(_) | ProtocolError::UnexpectedMessage { .. } => "invalid_request",
        ProtocolError::TooLarge { .. } | ProtocolError::Decode(_) | ProtocolError::Version { .. } => "malformed",
        ProtocolError::Replay(_) => "replay",
        ProtocolError::Stale { .. } => "stale",
        ProtocolError::Stats(StatsError::BudgetExhausted { .. }) => "budget",
        ProtocolError::ExactNotAllowed(_) => "exact_not_allowed",
        ProtocolError::UnknownQuery(_) => "unknown_query",
        ProtocolError::NotEnoughRelays { .. } => "not_enough_relays",
        ProtocolError::BadContribution { .. } | ProtocolError::UnknownRelay(_) | ProtocolError::RelayFailed { .. } => {
            "bad_contribution"
        }
        ProtocolError::Stats(StatsError::ReleaseRefused(_)) => "release_refused",
        ProtocolError::Stats(_) => "invalid_parameters",
        ProtocolError::Crypto(_) | ProtocolError::SharesDoNotOpen { .. } | ProtocolError::SharesOutOfRange { .. } => {
            "crypto"
        }
        ProtocolError::Ledger(_) => "ledger",
        ProtocolError::Internal(_) | ProtocolError::Refused { .. } | ProtocolError::NotEnoughAuthorities { .. } => {
            "internal"
        }
    }
}

/// Every label `refusal_reason` returns.
pub const REFUSAL_REASONS: [&str; 14] = [
    "invalid_request",
    "malformed",
    "replay",
    "stale",
    "budget",
    "exact_not_allowed",
    "unknown_query",
    "not_enough_relays",
    "bad_contribution",
    "release_refused",
    "invalid_parameters",
    "crypto",
    "ledger",
    "internal",
];

/// Why an actor refused a request before its state machine saw it
/// (`protocol::access`, the wire decoder).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessRefusal {
    /// a relay or authority asked by a pinned node other than the processor
    NotProcessor,
    /// the processor asked by a pinned node that is not a configured user
    NotUser,
    /// bytes that do not decode into a request
    Malformed,
    /// a user's status-like requests beyond `processor.rate_limit_per_minute`
    RateLimit,
}

impl AccessRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessRefusal::NotProcessor => "not_processor",
            AccessRefusal::NotUser => "not_a_user",
            AccessRefusal::Malformed => "malformed",
            AccessRefusal::RateLimit => "rate_limit",
        }
    }
}

/// An authority request's kind as a label.
pub fn authority_request(request: &AuthorityRequest) -> &'static str {
    match request {
        AuthorityRequest::AdmitQuery { .. } => "admit_query",
        AuthorityRequest::AdmitRound { .. } => "admit_round",
        AuthorityRequest::AdmitRefinement { .. } => "admit_refinement",
        AuthorityRequest::Register { .. } => "register",
        AuthorityRequest::Decrypt { .. } => "decrypt",
        AuthorityRequest::Status => "status",
        AuthorityRequest::Transition { .. } => "transition",
    }
}

/// A relay request's kind as a label.
pub fn relay_request(request: &RelayRequest) -> &'static str {
    match request {
        RelayRequest::Describe { .. } => "describe",
        RelayRequest::Transition(_) => "transition",
        RelayRequest::Contribute { .. } => "contribute",
        RelayRequest::Status => "status",
        RelayRequest::Columns => "columns",
    }
}

/// A reply that may be a refusal in the peer's own words.
pub trait RefusalReply {
    fn is_refusal(&self) -> bool;
}

impl RefusalReply for RelayResponse {
    fn is_refusal(&self) -> bool {
        matches!(self, RelayResponse::Error { .. })
    }
}

impl RefusalReply for AuthorityResponse {
    fn is_refusal(&self) -> bool {
        matches!(self, AuthorityResponse::Refused { .. })
    }
}

/// How one peer answered one request of the processor: `ok`, `refused`
/// (its own error or refusal), or why no usable reply came.
pub fn reply_outcome<T: RefusalReply>(reply: &Result<T, PeerFailure>) -> &'static str {
    match reply {
        Ok(r) if r.is_refusal() => "refused",
        Ok(_) => "ok",
        Err(PeerFailure::Unreachable(_)) => "unreachable",
        Err(PeerFailure::InvalidReply(_)) => "invalid_reply",
        Err(PeerFailure::Refused(_)) => "refused",
        Err(PeerFailure::Unexpected { .. }) => "unexpected",
        Err(PeerFailure::Rejected(_)) => "rejected",
    }
}

/// Whether the processor can answer queries: its discrete-log table is
/// open, at least t authorities are reachable (decryption is t-of-n) and at least
/// `min_relays` relays are. `Err` says why not, naming the configured
/// peers that did not answer the last probe.
pub fn processor_readiness(
    table_loaded: bool,
    authorities: &[(String, bool)],
    threshold: usize,
    relays: &[(String, bool)],
    min_relays: usize,
) -> Result<(), String> {
    if !table_loaded {
        return Err("the discrete-log table is not loaded".into());
    }
    let down = |peers: &[(String, bool)]| -> Vec<String> {
        peers.iter().filter(|(_, up)| !up).map(|(name, _)| name.clone()).collect()
    };
    let (authorities_down, relays_down) = (down(authorities), down(relays));
    let relays_up = relays.len().saturating_sub(relays_down.len());
    let authorities_up = authorities.len().saturating_sub(authorities_down.len());
    if authorities_up >= threshold && relays_up >= min_relays {
        return Ok(());
    }
    let mut unreachable = authorities_down;
    unreachable.extend(relays_down);
    Err(format!(
        "not ready: unreachable {}; queries need {threshold} of the {} authorities ({authorities_up} reachable) and at least {min_relays} relays ({relays_up} reachable)",
        unreachable.join(", "),
        authorities.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::InvalidRequest;

    #[test]
    fn refusals_are_labelled_by_variant_never_by_message() {
        let secret = "Population 2021 = 4242".to_string();
        let cases = [
            (ProtocolError::Replay(secret.clone()), "replay"),
            (ProtocolError::Stale { id: secret.clone(), issued_at: 1, now: 2, window_secs: 3 }, "stale"),
            (
                ProtocolError::Stats(StatsError::BudgetExhausted {
                    dataset: secret.clone(),
                    needed: "1".into(),
                    remaining: "0".into(),
                }),
                "budget",
            ),
            (ProtocolError::ExactNotAllowed(secret.clone()), "exact_not_allowed"),
            (ProtocolError::UnknownQuery(secret.clone()), "unknown_query"),
            (ProtocolError::BadContribution { relay: secret.clone(), reason: secret.clone() }, "bad_contribution"),
            (ProtocolError::UnknownRelay(secret.clone()), "bad_contribution"),
            (ProtocolError::Stats(StatsError::ReleaseRefused(secret.clone())), "release_refused"),
            (ProtocolError::Invalid(InvalidRequest::SpecDiffers), "invalid_request"),
            (ProtocolError::Decode(secret.clone()), "malformed"),
            (ProtocolError::Stats(StatsError::NoData { blank: 4242 }), "invalid_parameters"),
            (ProtocolError::Ledger(secret.clone()), "ledger"),
            (ProtocolError::Internal(secret.clone()), "internal"),
        ];
        for (error, label) in cases {
            assert_eq!(refusal_reason(&error), label, "{error:?}");
            assert!(REFUSAL_REASONS.contains(&label));
        }
    }

    #[test]
    fn query_outcomes_come_from_a_fixed_set() {
        let refused = Err(ProtocolError::Refused { authority: "authority-1".into(), reason: "budget".into() });
        assert_eq!(QueryOutcome::of(&refused), QueryOutcome::Refused);
        let missing =
            Err(ProtocolError::NotEnoughRelays { got: 1, needed: 2, names: "relay-1".into(), missing: String::new() });
        assert_eq!(QueryOutcome::of(&missing), QueryOutcome::RelaysMissing);
        let invalid = Err(ProtocolError::Stats(StatsError::InvalidParameter { name: "q", reason: "x".into() }));
        assert_eq!(QueryOutcome::of(&invalid), QueryOutcome::Invalid);
        let failed = Err(ProtocolError::RelayFailed { relay: "relay-1".into(), reason: "no such column".into() });
        assert_eq!(QueryOutcome::of(&failed), QueryOutcome::Failed);
        let labels: Vec<&str> = QueryOutcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(
            labels,
            ["answered", "refused", "relays_missing", "invalid", "failed", "timed_out", "refused_rate_limit"]
        );
    }

    #[test]
    fn replies_are_classified_by_kind() {
        let refused: Result<RelayResponse, PeerFailure> = Ok(RelayResponse::Error { message: "cell B7".into() });
        assert_eq!(reply_outcome(&refused), "refused");
        let ok: Result<AuthorityResponse, PeerFailure> = Ok(AuthorityResponse::Registered);
        assert_eq!(reply_outcome(&ok), "ok");
        let down: Result<AuthorityResponse, PeerFailure> = Err(PeerFailure::Unreachable("timed out".into()));
        assert_eq!(reply_outcome(&down), "unreachable");
        assert_eq!(authority_request(&AuthorityRequest::Status), "status");
        assert_eq!(relay_request(&RelayRequest::Columns), "columns");
    }

    #[test]
    fn the_processor_is_ready_with_every_authority_and_enough_relays() {
        let peers = |up: &[bool], prefix: &str| -> Vec<(String, bool)> {
            up.iter().enumerate().map(|(i, u)| (format!("{prefix}-{}", i + 1), *u)).collect()
        };
        let all = peers(&[true, true], "authority");
        assert_eq!(processor_readiness(true, &all, 2, &peers(&[true, false, true], "relay"), 2), Ok(()));
        let err = processor_readiness(true, &all, 2, &peers(&[true, false, false], "relay"), 2).unwrap_err();
        assert!(err.contains("relay-2, relay-3") && err.contains("1 reachable"), "{err}");
        let err = processor_readiness(true, &peers(&[true, false], "authority"), 2, &peers(&[true; 3], "relay"), 2)
            .unwrap_err();
        assert!(err.contains("unreachable authority-2;"), "{err}");
        let err = processor_readiness(false, &all, 2, &peers(&[true; 3], "relay"), 2).unwrap_err();
        assert!(err.contains("discrete-log table"), "{err}");
    }
}
