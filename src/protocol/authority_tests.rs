//! Unit tests of the authority's policy (`authority::AuthorityState`), in
//! memory: two authorities with `MemoryLedger`s, real relays
//! (`relay::RelayState`) over a small column for genuine signed
//! contributions, a fixed clock and a seeded rng. Every request a dishonest
//! processor could send is refused with its reason, and a refused admission
//! charges nothing. The same attacks over real QUIC and node processes are
//! in tests/network_adversary.rs and tests/network_privacy_holes.rs.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::authority::{AuthorityPolicy, AuthorityState, QueryMemory, ENDED_QUERIES, LIVE_QUERIES};
use super::codec;
use super::ledger::{Ledger, MemoryLedger};
use super::relay::{ColumnSource, ColumnValues, RelayState, SourceError};
use super::*;
use crate::crypto::{deal_for_tests, JointPublicKey, RelayIdentity};
use crate::stats::policy::{first_search_grid, SEARCH_BUCKETS};
use crate::stats::search::refinement_range;
use crate::stats::{Epsilon, Grid, PlanStep, Planner, QueryParams, RelayTask, Release, Statistic, StatsError};

const NOW: u64 = 1_700_000_000;
const WINDOW: u64 = 3600;
const DATASET: &str = "areas";

/// Every relay serves these values (0 declared decimals) under any labels.
const VALUES: [i128; 6] = [5, 17, 42, 99, 1_000, 77_777];

struct Column;

impl ColumnSource for Column {
    fn column(&self, labels: &[String]) -> Result<ColumnValues, SourceError> {
        Ok(ColumnValues { labels: labels.to_vec(), decimals: 0, values: VALUES.to_vec() })
    }

    fn declared_decimals(&self, _labels: &[String]) -> Option<u32> {
        Some(0)
    }
}

fn node_status() -> NodeStatus {
    NodeStatus { name: "test".into(), role: Role::Authority, version: "test".into(), details: vec![] }
}

fn eps(text: &str) -> Epsilon {
    Epsilon::parse(text).unwrap()
}

fn refusal(response: AuthorityResponse) -> String {
    match response {
        AuthorityResponse::Refused { reason } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn exact(statistic: Statistic) -> QueryParams {
    QueryParams::new(statistic)
}

fn noisy(statistic: Statistic, epsilon: &str, bounds: Option<(&str, &str)>) -> QueryParams {
    let mut params = QueryParams::new(statistic);
    params.exact = false;
    params.epsilon = Some(eps(epsilon));
    params.bounds = bounds.map(|(lo, hi)| (lo.to_string(), hi.to_string()));
    params
}

fn decryptors() -> Vec<String> {
    vec!["authority-1".into(), "authority-2".into()]
}

/// Two authorities (2-of-2) guarding `DATASET` with budget 10 and
/// `min_relays` 2, relays `relay-1..3` they know, and `relay-9` they do not.
struct Fixture {
    authorities: Vec<(AuthorityState, MemoryLedger)>,
    joint: JointPublicKey,
    relays: Vec<RelayState>,
    outsider: RelayState,
    rng: StdRng,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_policy(|_| {})
    }

    /// `change` edits the policy both authorities get.
    fn with_policy(change: impl FnOnce(&mut AuthorityPolicy)) -> Fixture {
        let mut rng = StdRng::seed_from_u64(11);
        let (shares, joint) = deal_for_tests(&["authority-1", "authority-2"], 2, 0, &mut rng).unwrap();
        let mut relays = Vec::new();
        let mut keys = HashMap::new();
        for j in 1..=3 {
            let name = format!("relay-{j}");
            let identity = RelayIdentity::generate(&mut rng);
            keys.insert(name.clone(), identity.public_key());
            relays.push(RelayState::new(&name, identity, &joint));
        }
        let outsider = RelayState::new("relay-9", RelayIdentity::generate(&mut rng), &joint);
        let mut policy = AuthorityPolicy {
            dataset: DATASET.into(),
            min_relays: 2,
            allow_exact: true,
            budget: eps("10"),
            replay_window_secs: WINDOW,
            relays: keys,
        };
        change(&mut policy);
        let authorities = shares
            .into_iter()
            .map(|s| (AuthorityState::new(s, joint.clone(), policy.clone()), MemoryLedger::default()))
            .collect();
        Fixture { authorities, joint, relays, outsider, rng }
    }

    /// A fresh query for the column `units`, issued now.
    fn intent(&mut self, params: QueryParams) -> QueryIntent {
        QueryIntent {
            id: QueryId::random(&mut self.rng),
            issued_at: NOW,
            dataset: DATASET.into(),
            labels: vec!["units".into()],
            params,
        }
    }

    /// `request` to authority `i` at time `now`.
    fn ask_at(&mut self, i: usize, request: AuthorityRequest, now: u64) -> AuthorityResponse {
        let (authority, ledger) = &mut self.authorities[i];
        authority.handle(request, ledger, now, node_status, &mut self.rng)
    }

    fn ask(&mut self, i: usize, request: AuthorityRequest) -> AuthorityResponse {
        self.ask_at(i, request, NOW)
    }

    fn ledger(&self, i: usize) -> &MemoryLedger {
        &self.authorities[i].1
    }

    /// `request` to every authority, which must all admit it.
    fn admit_all(&mut self, request: AuthorityRequest) -> Admission {
        let mut signatures = Vec::new();
        for i in 0..self.authorities.len() {
            let name = self.authorities[i].0.name().to_string();
            match self.ask(i, request.clone()) {
                AuthorityResponse::Admitted { signature, .. } => signatures.push((name, signature)),
                other => panic!("{name}: {other:?}"),
            }
        }
        Admission { signatures }
    }

    fn admit_query(&mut self, intent: &QueryIntent) -> Admission {
        self.admit_all(AuthorityRequest::AdmitQuery {
            sealing: false,
            query: intent.clone(),
            user: "alice".into(),
            epoch: 0,
        })
    }

    /// Admits the query and its round 0 (planned as the processor would, at
    /// 0 decimals) at every authority.
    fn round0(&mut self, params: QueryParams) -> (QuerySpec, RelayTask, Admission) {
        let intent = self.intent(params.clone());
        self.admit_query(&intent);
        let PlanStep::Round { round: 0, task } = Planner::new(params, 0, 20).unwrap().start().unwrap() else {
            panic!("a plan starts with round 0")
        };
        let spec = QuerySpec::new(intent, 0, 0, decryptors());
        let admission =
            self.admit_all(AuthorityRequest::AdmitRound { spec: spec.clone(), round: 0, task: task.clone() });
        (spec, task, admission)
    }

    /// Relay `relay`'s genuine contribution to an admitted round.
    fn contribute(
        &mut self,
        relay: usize,
        spec: &QuerySpec,
        round: u32,
        task: &RelayTask,
        admission: &Admission,
    ) -> SignedContribution {
        let request = RelayRequest::Contribute {
            sealing: Vec::new(),
            spec: spec.clone(),
            round,
            task: task.clone(),
            admission: admission.clone(),
            admission_of: AdmissionOf::Round,
        };
        let relay = if relay == 9 { &mut self.outsider } else { &mut self.relays[relay - 1] };
        match relay.handle(request, &Column, node_status, NOW, &mut self.rng) {
            (RelayResponse::Contribution(c), _) => *c,
            (other, note) => panic!("{other:?} {note:?}"),
        }
    }

    fn register(
        &mut self,
        i: usize,
        spec: &QuerySpec,
        round: u32,
        task: &RelayTask,
        contributions: Vec<SignedContribution>,
    ) -> AuthorityResponse {
        self.ask(
            i,
            AuthorityRequest::Register {
                shared: Vec::new(),
                spec: spec.clone(),
                round,
                task: task.clone(),
                contributions,
                releases: vec![],
            },
        )
    }

    /// Round 0 admitted and registered (relays 1 to 3) at every authority.
    fn registered_round0(&mut self, params: QueryParams) -> (QuerySpec, RelayTask) {
        let (spec, task, admission) = self.round0(params);
        let contributions: Vec<_> = (1..=3).map(|r| self.contribute(r, &spec, 0, &task, &admission)).collect();
        for i in 0..self.authorities.len() {
            let response = self.register(i, &spec, 0, &task, contributions.clone());
            assert_eq!(response, AuthorityResponse::Registered);
        }
        (spec, task)
    }

    fn decrypt(&mut self, i: usize, query_id: QueryId, round: u32, release: Release) -> AuthorityResponse {
        self.decrypt_all(i, query_id, round, vec![release])
    }

    fn decrypt_all(&mut self, i: usize, query_id: QueryId, round: u32, releases: Vec<Release>) -> AuthorityResponse {
        self.ask(i, AuthorityRequest::Decrypt { query_id, round, releases })
    }
}

/// The shares of a batch reply (its proof is made afresh on every reply).
fn shares(response: AuthorityResponse) -> Vec<curve25519_dalek::ristretto::CompressedRistretto> {
    match response {
        AuthorityResponse::Partials(p) => p.shares,
        other => panic!("not a batch of shares: {other:?}"),
    }
}

// ------------------------------------------------------------------ admission

#[test]
fn an_admitted_query_is_signed_and_charged_to_the_ledger() {
    let mut f = Fixture::new();
    let intent = f.intent(noisy(Statistic::Count, "0.5", None));
    let request =
        AuthorityRequest::AdmitQuery { sealing: false, query: intent.clone(), user: "alice".into(), epoch: 0 };
    let AuthorityResponse::Admitted { signature, remaining_budget, .. } = f.ask(0, request) else { panic!("refused") };
    assert_eq!(remaining_budget, Some(eps("9.5")));
    assert_eq!(f.ledger(0).remaining(DATASET, eps("10")).unwrap(), eps("9.5"));
    let (count, charges) = f.ledger(0).charges(10).unwrap();
    assert_eq!(count, 1);
    assert_eq!(
        (charges[0].query, charges[0].user.as_str(), charges[0].dataset.as_str(), charges[0].epsilon),
        (intent.id, "alice", DATASET, eps("0.5"))
    );
    assert_eq!(f.ledger(1).charges(10).unwrap().0, 0, "each authority keeps its own ledger");
    // the signature covers this very query: with authority-2's, relays accept it
    let request =
        AuthorityRequest::AdmitQuery { sealing: false, query: intent.clone(), user: "alice".into(), epoch: 0 };
    let AuthorityResponse::Admitted { signature: second, .. } = f.ask(1, request) else { panic!("refused") };
    let signatures = vec![("authority-1".to_string(), signature), ("authority-2".to_string(), second)];
    f.joint.verify_threshold_signed(&codec::query_admission(&intent), &signatures).unwrap();
    let mut other = intent.clone();
    other.labels = vec!["price".into()];
    assert!(f.joint.verify_threshold_signed(&codec::query_admission(&other), &signatures).is_err());
    // an exact query costs nothing
    let intent = f.intent(exact(Statistic::Sum));
    f.admit_query(&intent);
    assert_eq!(f.ledger(0).remaining(DATASET, eps("10")).unwrap(), eps("9.5"));
}

#[test]
fn a_replayed_query_id_is_refused_and_charged_once() {
    let mut f = Fixture::new();
    let intent = f.intent(noisy(Statistic::Count, "1", None));
    f.admit_query(&intent);
    let replay = AuthorityRequest::AdmitQuery { sealing: false, query: intent.clone(), user: "alice".into(), epoch: 0 };
    assert_eq!(refusal(f.ask(0, replay.clone())), ProtocolError::Replay(intent.id.to_string()).to_string());
    // the same id with other labels or parameters is the same query id
    let mut changed = intent.clone();
    changed.labels = vec!["price".into()];
    changed.params = noisy(Statistic::Count, "0.1", None);
    let request = AuthorityRequest::AdmitQuery { sealing: false, query: changed, user: "alice".into(), epoch: 0 };
    assert!(refusal(f.ask(0, request)).contains("replayed query id"));
    assert_eq!(f.ledger(0).charges(10).unwrap().0, 1);
    assert_eq!(f.ledger(0).remaining(DATASET, eps("10")).unwrap(), eps("9"));

    // after a restart (no queries in memory) the ledger still refuses the id
    let (authority, ledger) = &mut f.authorities[0];
    let policy = authority.policy().clone();
    let (mut shares, joint) = deal_for_tests(&["authority-1", "authority-2"], 2, 0, &mut f.rng).unwrap();
    let mut restarted = AuthorityState::new(shares.remove(0), joint, policy);
    let response = restarted.handle(replay, ledger, NOW + 10, node_status, &mut f.rng);
    assert_eq!(refusal(response), ProtocolError::Replay(intent.id.to_string()).to_string());
    assert_eq!(ledger.charges(10).unwrap().0, 1);
}

#[test]
fn an_exhausted_budget_is_refused_and_charges_nothing() {
    let mut f = Fixture::with_policy(|p| p.budget = eps("1"));
    let first = f.intent(noisy(Statistic::Count, "0.6", None));
    f.admit_query(&first);
    let second = f.intent(noisy(Statistic::Count, "0.6", None));
    let response =
        f.ask(0, AuthorityRequest::AdmitQuery { sealing: false, query: second, user: "alice".into(), epoch: 0 });
    let exhausted =
        StatsError::BudgetExhausted { dataset: DATASET.into(), needed: "0.6".into(), remaining: "0.4".into() };
    assert_eq!(refusal(response), ProtocolError::from(exhausted).to_string());
    assert_eq!(f.ledger(0).remaining(DATASET, eps("1")).unwrap(), eps("0.4"));
    assert_eq!(f.ledger(0).charges(10).unwrap().0, 1);
    // what is left can still be spent, exactly
    let last = f.intent(noisy(Statistic::Count, "0.4", None));
    let response =
        f.ask(0, AuthorityRequest::AdmitQuery { sealing: false, query: last, user: "alice".into(), epoch: 0 });
    assert!(matches!(response, AuthorityResponse::Admitted { remaining_budget: Some(Epsilon(0)), .. }), "{response:?}");
    let more = f.intent(noisy(Statistic::Count, "0.000001", None));
    assert!(refusal(
        f.ask(0, AuthorityRequest::AdmitQuery { sealing: false, query: more, user: "alice".into(), epoch: 0 })
    )
    .contains("privacy budget exhausted"));
}

#[test]
fn stale_and_future_queries_are_refused_and_charge_nothing() {
    let mut f = Fixture::new();
    for (issued_at, admitted) in
        [(NOW - WINDOW - 1, false), (NOW - WINDOW, true), (NOW + 60, true), (NOW + 61, false), (0, false)]
    {
        let mut intent = f.intent(noisy(Statistic::Count, "1", None));
        intent.issued_at = issued_at;
        let id = intent.id;
        let response =
            f.ask(0, AuthorityRequest::AdmitQuery { sealing: false, query: intent, user: "alice".into(), epoch: 0 });
        if admitted {
            assert!(matches!(response, AuthorityResponse::Admitted { .. }), "issued at {issued_at}: {response:?}");
        } else {
            let stale = ProtocolError::Stale { id: id.to_string(), issued_at, now: NOW, window_secs: WINDOW };
            assert_eq!(refusal(response), stale.to_string());
        }
    }
    assert_eq!(f.ledger(0).charges(10).unwrap().0, 2);
    assert_eq!(f.ledger(0).remaining(DATASET, eps("10")).unwrap(), eps("8"));
}

#[test]
fn exact_queries_are_refused_where_not_allowed() {
    let mut f = Fixture::with_policy(|p| p.allow_exact = false);
    for statistic in [Statistic::Count, Statistic::Sum, Statistic::Median] {
        let intent = f.intent(exact(statistic));
        let response =
            f.ask(0, AuthorityRequest::AdmitQuery { sealing: false, query: intent, user: "alice".into(), epoch: 0 });
        assert_eq!(refusal(response), ProtocolError::ExactNotAllowed("authority-1".into()).to_string());
    }
    assert_eq!(f.ledger(0).charges(10).unwrap().0, 0);
    let intent = f.intent(noisy(Statistic::Count, "1", None));
    let response =
        f.ask(0, AuthorityRequest::AdmitQuery { sealing: false, query: intent, user: "alice".into(), epoch: 0 });
    assert!(matches!(response, AuthorityResponse::Admitted { .. }), "{response:?}");
}

#[test]
fn another_dataset_is_refused_before_any_charge() {
    let mut f = Fixture::new();
    let mut intent = f.intent(noisy(Statistic::Count, "1", None));
    intent.dataset = "areas-2".into();
    let reason = refusal(
        f.ask(0, AuthorityRequest::AdmitQuery { sealing: false, query: intent, user: "alice".into(), epoch: 0 }),
    );
    assert!(
        reason.contains("names dataset \"areas-2\"") && reason.contains("authority-1 guards dataset \"areas\""),
        "{reason}"
    );
    assert_eq!(f.ledger(0).charges(10).unwrap().0, 0);
    assert_eq!(f.ledger(0).remaining("areas-2", eps("10")).unwrap(), eps("10"));
}

#[test]
fn invalid_parameters_labels_and_caps_are_refused_before_any_charge() {
    let mut f = Fixture::new();
    let labels = |n: usize| (0..n).map(|i| format!("label {i}")).collect::<Vec<_>>();
    let with = |change: fn(&mut QueryParams)| {
        let mut params = noisy(Statistic::Mean, "1", Some(("0", "100")));
        change(&mut params);
        params
    };
    let cases: Vec<(&str, QueryParams, Vec<String>, String)> = vec![
        (
            "noisy mean without bounds",
            noisy(Statistic::Mean, "1", None),
            labels(1),
            StatsError::BoundsRequired.to_string(),
        ),
        ("noisy without epsilon", with(|p| p.epsilon = None), labels(1), "needs --epsilon".into()),
        ("exact with an epsilon", with(|p| p.exact = true), labels(1), "either exact or has an epsilon".into()),
        (
            "histogram without edges",
            noisy(Statistic::Histogram, "1", None),
            labels(1),
            "histogram needs --edges".into(),
        ),
        ("quantile without a level", exact(Statistic::Quantile), labels(1), "needs --quantile".into()),
        ("bounds upside down", with(|p| p.bounds = Some(("5".into(), "-5".into()))), labels(1), "above the".into()),
        (
            "bounds beyond 2^47",
            with(|p| p.bounds = Some(("0".into(), "140737488355328".into()))),
            labels(1),
            "bounds must lie within ±2^47".into(),
        ),
        (
            "a scale of 13 decimals",
            with(|p| p.bounds = Some(("0".into(), "0.0000000000001".into()))),
            labels(1),
            "at most 12 decimals".into(),
        ),
        ("no label", exact(Statistic::Count), labels(0), "1 to 3 labels".into()),
        ("four labels", exact(Statistic::Count), labels(4), "1 to 3 labels".into()),
        ("a label of 257 bytes", exact(Statistic::Count), vec!["x".repeat(257)], "at most 256 bytes".into()),
    ];
    for (what, params, labels, want) in cases {
        let mut intent = f.intent(params);
        intent.labels = labels;
        let id = intent.id;
        let reason = refusal(f.ask(
            0,
            AuthorityRequest::AdmitQuery { sealing: false, query: intent.clone(), user: "alice".into(), epoch: 0 },
        ));
        assert!(reason.contains(&want), "{what}: {reason}");
        // not admitted: no round of it is
        let spec = QuerySpec::new(intent, 0, 0, decryptors());
        let task = RelayTask::exact_moments(20, false, false);
        let reason = refusal(f.ask(0, AuthorityRequest::AdmitRound { spec, round: 0, task }));
        assert_eq!(reason, ProtocolError::UnknownQuery(id.to_string()).to_string(), "{what}");
    }
    assert_eq!(f.ledger(0).charges(10).unwrap().0, 0);
}

// ------------------------------------------------------------------ rounds

#[test]
fn rounds_are_admitted_only_for_the_admitted_query_in_order() {
    let mut f = Fixture::new();
    let params = exact(Statistic::Count);
    let intent = f.intent(params.clone());
    let PlanStep::Round { task, .. } = Planner::new(params, 0, 20).unwrap().start().unwrap() else { panic!("plan") };
    let spec = QuerySpec::new(intent.clone(), 0, 0, decryptors());
    let admit_round = |spec: &QuerySpec, round: u32, task: &RelayTask| AuthorityRequest::AdmitRound {
        spec: spec.clone(),
        round,
        task: task.clone(),
    };
    // never admitted
    assert_eq!(
        refusal(f.ask(0, admit_round(&spec, 0, &task))),
        ProtocolError::UnknownQuery(intent.id.to_string()).to_string()
    );
    f.admit_query(&intent);
    // another column (or statistic) under the admitted id
    let mut other = spec.clone();
    other.labels = vec!["price".into()];
    assert!(refusal(f.ask(0, admit_round(&other, 0, &task))).contains("differs from the admitted query"));
    let mut other = spec.clone();
    other.params = exact(Statistic::Sum);
    assert!(refusal(f.ask(0, admit_round(&other, 0, &task))).contains("differs from the admitted query"));
    // round 1 first
    assert!(refusal(f.ask(0, admit_round(&spec, 1, &task))).contains("round 1 admitted before round 0"));
    // a scale beyond the cap
    let fine = QuerySpec::new(intent.clone(), 13, 0, decryptors());
    assert!(refusal(f.ask(0, admit_round(&fine, 0, &task))).contains("at most 12 decimals"));
    // a task that asks relays for more than a count releases
    let sums = RelayTask::exact_moments(20, true, false);
    let reason = refusal(f.ask(0, admit_round(&spec, 0, &sums)));
    assert!(reason.contains("a count query asks relays for exactly the moments it releases"), "{reason}");
    let histogram = RelayTask::Histogram { grid: Grid::Magnitude { bits: 47 } };
    assert!(refusal(f.ask(0, admit_round(&spec, 0, &histogram))).contains("does not ask for histograms"));

    // round 0 is admitted, and signed again when asked again (a lost reply)
    let admission = f.admit_all(admit_round(&spec, 0, &task));
    f.admit_all(admit_round(&spec, 0, &task));
    // but not with another task or scale, nor round 1 before round 0 is registered
    let reason = refusal(f.ask(0, admit_round(&spec, 0, &sums)));
    assert!(reason.contains("round 0 with this task was not admitted"), "{reason}");
    let rescaled = QuerySpec::new(intent.clone(), 2, 0, decryptors());
    assert!(refusal(f.ask(0, admit_round(&rescaled, 0, &task))).contains("a later round changed the query's scale"));
    let reason = refusal(f.ask(0, admit_round(&spec, 1, &task)));
    assert!(reason.contains("round 1 admitted out of order (1 admitted, 0 registered)"), "{reason}");

    // registered: a count has no round 1
    let contributions: Vec<_> = (1..=3).map(|r| f.contribute(r, &spec, 0, &task, &admission)).collect();
    assert_eq!(f.register(0, &spec, 0, &task, contributions), AuthorityResponse::Registered);
    let reason = refusal(f.ask(0, admit_round(&spec, 1, &task)));
    assert!(reason.contains("round 1 is beyond the 1 rounds a count query may take"), "{reason}");

    // after the replay window the query is forgotten
    let response = f.ask_at(0, admit_round(&spec, 0, &task), NOW + WINDOW + 1);
    assert_eq!(refusal(response), ProtocolError::UnknownQuery(intent.id.to_string()).to_string());
}

/// An exact max over bounds 0:100000 (a search of `SEARCH_BUCKETS`-bucket rounds).
fn exact_max_within_100000() -> QueryParams {
    let mut params = exact(Statistic::Max);
    params.bounds = Some(("0".into(), "100000".into()));
    params
}

#[test]
fn search_rounds_must_refine_one_bucket_of_the_previous_round() {
    let mut f = Fixture::new();
    let (spec, task) = f.registered_round0(exact_max_within_100000());
    let fixed = spec.params.fixed(0).unwrap();
    assert_eq!(task, RelayTask::Histogram { grid: first_search_grid(&fixed, SEARCH_BUCKETS).unwrap() });
    let RelayTask::Histogram { grid } = &task else { unreachable!() };
    let admit_round = |task: RelayTask| AuthorityRequest::AdmitRound { spec: spec.clone(), round: 1, task };
    let refused = [
        (
            RelayTask::Histogram { grid: Grid::Uniform { lo: 0, width: 1, buckets: 64 } },
            "not the refinement of one bucket",
        ),
        (RelayTask::Histogram { grid: Grid::Uniform { lo: -500, width: 10, buckets: 64 } }, "starts outside"),
        (RelayTask::Histogram { grid: Grid::Magnitude { bits: 47 } }, "uniform grids"),
        (RelayTask::Histogram { grid: grid.clone() }, "not the refinement of one bucket"),
        (RelayTask::exact_moments(20, true, false), "a max query does not ask for sums"),
    ];
    for (task, want) in refused {
        let reason = refusal(f.ask(0, admit_round(task.clone())));
        assert!(reason.contains(want), "{task:?}: {reason}");
    }
    // the refinement of the bucket holding 77777 is what the search asks next
    let bucket = grid.bucket_of(77_777).unwrap();
    let (lo, hi) = refinement_range(grid, bucket, fixed.bounds).unwrap();
    let next = RelayTask::Histogram { grid: Grid::covering(lo, hi, SEARCH_BUCKETS).unwrap() };
    let response = f.ask(0, admit_round(next));
    assert!(matches!(response, AuthorityResponse::Admitted { remaining_budget: None, .. }), "{response:?}");
}

/// Round 1 of an exact max within [0, 100000], admitted as a refinement of
/// round 0's (registered) task at every authority: (spec, round 0's task,
/// the refinement admission, the refinement of 77777's bucket, of 5's).
fn refinement_round1(f: &mut Fixture) -> (QuerySpec, RelayTask, Admission, RelayTask, RelayTask) {
    let (spec, task) = f.registered_round0(exact_max_within_100000());
    let fixed = spec.params.fixed(0).unwrap();
    let RelayTask::Histogram { grid } = &task else { unreachable!() };
    let refinement_of = |value: i128| {
        let (lo, hi) = refinement_range(grid, grid.bucket_of(value).unwrap(), fixed.bounds).unwrap();
        RelayTask::Histogram { grid: Grid::covering(lo, hi, SEARCH_BUCKETS).unwrap() }
    };
    let (next, fork) = (refinement_of(77_777), refinement_of(5));
    let admission = f.admit_all(refine(&spec, 1, &task));
    (spec, task, admission, next, fork)
}

fn refine(spec: &QuerySpec, round: u32, previous: &RelayTask) -> AuthorityRequest {
    AuthorityRequest::AdmitRefinement { spec: spec.clone(), round, previous: previous.clone() }
}

impl Fixture {
    /// Relay `relay`'s answer to round 1 of `spec` under `admission`.
    fn contribute_round1(
        &mut self,
        relay: usize,
        spec: &QuerySpec,
        task: &RelayTask,
        admission: &Admission,
        refines: Option<&RelayTask>,
    ) -> RelayResponse {
        let request = RelayRequest::Contribute {
            sealing: Vec::new(),
            spec: spec.clone(),
            round: 1,
            task: task.clone(),
            admission: admission.clone(),
            admission_of: refines.cloned().map_or(AdmissionOf::Round, AdmissionOf::Refinement),
        };
        self.relays[relay - 1].handle(request, &Column, node_status, NOW, &mut self.rng).0
    }
}

/// A search's round 1 admitted as a refinement of round 0's task (asked
/// with round 0's registration): signed over its own statement, for round
/// 1 and round 0's task only; relays check the refinement themselves.
#[test]
fn refinement_admissions_are_for_one_round_and_relays_check_the_refinement() {
    let mut f = Fixture::new();
    let (spec, task, admission, next, _) = refinement_round1(&mut f);
    // round 0 is no refinement, and round 1 refines round 0's task only
    assert!(refusal(f.ask(0, refine(&spec, 0, &task))).contains("cannot be a refinement"));
    assert!(refusal(f.ask(0, refine(&spec, 1, &next))).contains("round 0 with this task was not admitted"));
    // signed over the refinement statement, asked again after a lost reply the same
    let statement = codec::refinement_admission(&spec, 1, &task);
    f.joint.verify_signed_by(&statement, &admission.signatures, &decryptors()).unwrap();
    assert!(matches!(f.ask(0, refine(&spec, 1, &task)), AuthorityResponse::Admitted { remaining_budget: None, .. }));
    // round 0 can still be decrypted: no round 1 task is fixed yet
    assert!(matches!(f.decrypt(0, spec.id, 0, Release::HistTotal), AuthorityResponse::Partials(_)));

    let relay_error = |response: RelayResponse| match response {
        RelayResponse::Error { message } => message,
        other => panic!("contributed: {other:?}"),
    };
    let not_refining = RelayTask::Histogram { grid: Grid::Uniform { lo: 0, width: 1, buckets: 16 } };
    let message = relay_error(f.contribute_round1(1, &spec, &not_refining, &admission, Some(&task)));
    assert!(message.contains("not a refinement the query's plan allows"), "{message}");
    // the refinement admission is no admission of a task, and another
    // previous task is not what was signed
    assert!(relay_error(f.contribute_round1(1, &spec, &next, &admission, None)).contains("not admitted"));
    let message = relay_error(f.contribute_round1(1, &spec, &next, &admission, Some(&next)));
    assert!(message.contains("not a refinement"), "{message}");
    let RelayResponse::Contribution(first) = f.contribute_round1(1, &spec, &next, &admission, Some(&task)) else {
        panic!("a refinement was refused")
    };
    // asked again: the same contribution
    let again = f.contribute_round1(1, &spec, &next, &admission, Some(&task));
    assert!(matches!(again, RelayResponse::Contribution(c) if *c == *first));
}

/// A refinement admission allows any refinement, but each relay answers a
/// round once (another task is refused), and each authority fixes round
/// 1's task at the first registration (or next refinement admission)
/// naming it and registers that one only. (One relay suffices here, so
/// that relays 1 and 2 and relay 3 can each give one fork.)
#[test]
fn a_refinement_admission_fixes_one_task_per_round_at_each_authority() {
    let mut f = Fixture::with_policy(|p| p.min_relays = 1);
    let (spec, task, admission, next, fork) = refinement_round1(&mut f);
    let contribute = |f: &mut Fixture, relays: &[usize], round1: &RelayTask| -> Vec<SignedContribution> {
        relays
            .iter()
            .map(|r| match f.contribute_round1(*r, &spec, round1, &admission, Some(&task)) {
                RelayResponse::Contribution(c) => *c,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let (contributions, forked) = (contribute(&mut f, &[1, 2], &next), contribute(&mut f, &[3], &fork));
    // a relay that answered round 1 does not answer another task for it
    let RelayResponse::Error { message } = f.contribute_round1(1, &spec, &fork, &admission, Some(&task)) else {
        panic!("a fork was answered")
    };
    assert!(message.contains("round 1 of query") && message.contains("answered with another task"), "{message}");
    assert_eq!(f.register(0, &spec, 1, &next, contributions), AuthorityResponse::Registered);
    let reason = refusal(f.register(0, &spec, 1, &fork, forked.clone()));
    assert!(reason.contains("round 1 registered, expected round 2"), "{reason}");
    let reason = refusal(f.ask(0, AuthorityRequest::AdmitRound { spec: spec.clone(), round: 1, task: fork.clone() }));
    assert!(reason.contains("round 1 with this task was not admitted"), "{reason}");
    let reason = refusal(f.decrypt(0, spec.id, 0, Release::HistTotal));
    assert!(reason.contains("round 0 is over"), "{reason}");
    // at another authority the fork comes first: it fixes round 1 there,
    // and the next round can only refine it
    assert_eq!(f.register(1, &spec, 1, &fork, forked), AuthorityResponse::Registered);
    let reason = refusal(f.ask(1, refine(&spec, 2, &next)));
    assert!(reason.contains("round 1 with this task was not admitted"), "{reason}");
    assert!(matches!(f.ask(1, refine(&spec, 2, &fork)), AuthorityResponse::Admitted { .. }));
    assert!(matches!(f.decrypt(0, spec.id, 1, Release::HistPrefix(1)), AuthorityResponse::Partials(_)));
}

/// Round 0 contributed under the query's admission (no round admission):
/// the relay checks that the task is the plan's first and verifies the
/// query's admission once; an authority fixes the spec at the first
/// registration and registers contributions for that spec only.
#[test]
fn round0_under_the_querys_admission_is_the_plans_first_task_for_one_spec() {
    let mut f = Fixture::new();
    let intent = f.intent(exact(Statistic::Sum));
    let admission = f.admit_query(&intent);
    let task = sum_task();
    let spec = QuerySpec::new(intent.clone(), 0, 0, decryptors());
    let ask = |f: &mut Fixture, relay: usize, spec: &QuerySpec, round: u32, task: &RelayTask, admission: &Admission| {
        let (admission, admission_of) = (admission.clone(), AdmissionOf::Query);
        let request = RelayRequest::Contribute {
            sealing: Vec::new(),
            spec: spec.clone(),
            round,
            task: task.clone(),
            admission,
            admission_of,
        };
        f.relays[relay - 1].handle(request, &Column, node_status, NOW, &mut f.rng).0
    };
    let error = |response: RelayResponse| match response {
        RelayResponse::Error { message } => message,
        other => panic!("contributed: {other:?}"),
    };
    // not the plan's first task, not round 0, not this query's admission
    let histogram = RelayTask::Histogram { grid: Grid::Uniform { lo: 0, width: 1, buckets: 16 } };
    let message = error(ask(&mut f, 1, &spec, 0, &histogram, &admission));
    assert!(message.contains("not the first one the query's plan asks for"), "{message}");
    assert!(error(ask(&mut f, 1, &spec, 1, &task, &admission)).contains("not the first one"));
    let other = f.intent(exact(Statistic::Sum));
    let other_admission = f.admit_query(&other);
    assert!(error(ask(&mut f, 1, &spec, 0, &task, &other_admission)).contains("not admitted"));
    // the genuine round 0: relay-1 verifies the admission and remembers it
    let RelayResponse::Contribution(c1) = ask(&mut f, 1, &spec, 0, &task, &admission) else { panic!("refused") };
    let mut dropped = admission.clone();
    dropped.signatures.clear();
    let again = ask(&mut f, 1, &spec, 0, &task, &dropped);
    assert!(matches!(&again, RelayResponse::Contribution(c) if *c == c1), "verified once: {again:?}");
    // relay-2 never verified it: no signatures, no contribution
    assert!(error(ask(&mut f, 2, &spec, 0, &task, &dropped)).contains("not admitted"));
    let RelayResponse::Contribution(c2) = ask(&mut f, 2, &spec, 0, &task, &admission) else { panic!("refused") };
    // round 0 at another scale: a relay that answered it refuses, a fresh one encrypts
    let mut rescaled = spec.clone();
    rescaled.decimals = 2;
    let PlanStep::Round { task: task2, .. } = Planner::new(exact(Statistic::Sum), 2, 20).unwrap().start().unwrap()
    else {
        panic!("a plan starts with round 0")
    };
    assert!(
        error(ask(&mut f, 2, &rescaled, 0, &task2, &admission)).contains("answered with another task, scale or path")
    );
    let RelayResponse::Contribution(r3) = ask(&mut f, 3, &rescaled, 0, &task2, &admission) else { panic!("refused") };
    // the first registration fixes the spec: another scale is refused
    assert_eq!(f.register(0, &spec, 0, &task, vec![*c1, *c2.clone()]), AuthorityResponse::Registered);
    let reason = refusal(f.register(0, &rescaled, 0, &task2, vec![*r3]));
    assert!(reason.contains("the registered spec differs from the admitted one"), "{reason}");
    // an authority that is not among the spec's decryptors starts no plan
    let mut others = spec.clone();
    others.decryptors = vec!["authority-1".into(), "authority-9".into()];
    let reason = refusal(f.register(1, &others, 0, &task, vec![*c2]));
    assert!(reason.contains("decryptors are not valid"), "{reason}");
}

// ------------------------------------------------------------------ register

#[test]
fn contributions_of_unknown_duplicate_or_too_few_relays_are_refused() {
    let mut f = Fixture::new();
    let (spec, task, admission) = f.round0(exact(Statistic::Sum));
    let c1 = f.contribute(1, &spec, 0, &task, &admission);
    let c2 = f.contribute(2, &spec, 0, &task, &admission);
    let c3 = f.contribute(3, &spec, 0, &task, &admission);
    // relay-9 holds a valid identity, but no authority's configuration names it
    let c9 = f.contribute(9, &spec, 0, &task, &admission);
    let reason = refusal(f.register(0, &spec, 0, &task, vec![c1.clone(), c9]));
    assert_eq!(reason, ProtocolError::UnknownRelay("relay-9".into()).to_string());
    let reason = refusal(f.register(0, &spec, 0, &task, vec![c1.clone(), c1.clone()]));
    assert_eq!(reason, "relay relay-1: contributed twice");
    let reason = refusal(f.register(0, &spec, 0, &task, vec![c1.clone()]));
    assert_eq!(reason, "only 1 relays contributed (relay-1); at least 2 are required");
    // relay-2's ciphertexts passed off as relay-3's: the signature is relay-2's
    let mut relabelled = c2.clone();
    relabelled.relay = "relay-3".into();
    let reason = refusal(f.register(0, &spec, 0, &task, vec![c1.clone(), relabelled]));
    assert!(reason.contains("relay-3") && reason.contains("signature does not match"), "{reason}");
    // a round or task that was not admitted
    let reason = refusal(f.register(0, &spec, 1, &task, vec![c1.clone(), c2.clone()]));
    assert!(reason.contains("round 1 registered, expected round 0"), "{reason}");
    let other = RelayTask::exact_moments(16, true, false);
    let reason = refusal(f.register(0, &spec, 0, &other, vec![c1.clone(), c2.clone()]));
    assert!(reason.contains("round 0 with this task was not admitted"), "{reason}");
    // nothing was registered: no decryption yet
    let reason = refusal(f.decrypt(0, spec.id, 0, Release::Count));
    assert!(reason.contains("round 0 is not registered"), "{reason}");

    assert_eq!(f.register(0, &spec, 0, &task, vec![c1.clone(), c2.clone(), c3]), AuthorityResponse::Registered);
    let reason = refusal(f.register(0, &spec, 0, &task, vec![c1, c2]));
    assert!(reason.contains("round 0 registered, expected round 1"), "{reason}");
}

/// Round 0's registration starts the plan of a query whose round 0 was not
/// admitted (relays contributed under the query's admission), but only
/// with contributions signed for that query.
#[test]
fn another_querys_contributions_register_nothing() {
    let mut f = Fixture::new();
    let (spec, task, admission) = f.round0(exact(Statistic::Sum));
    let contributions: Vec<_> = (1..=2).map(|r| f.contribute(r, &spec, 0, &task, &admission)).collect();
    // the same contributions under a query admitted without its round
    let intent = f.intent(exact(Statistic::Sum));
    f.admit_query(&intent);
    let fresh = QuerySpec::new(intent, 0, 0, decryptors());
    let reason = refusal(f.register(0, &fresh, 0, &task, contributions.clone()));
    assert!(reason.contains("relay-1") && reason.contains("signature does not match"), "{reason}");
    let reason = refusal(f.decrypt(0, fresh.id, 0, Release::Count));
    assert!(reason.contains("round 0 is not registered"), "{reason}");
    // nor a later round before round 0
    let reason = refusal(f.register(0, &fresh, 1, &task, contributions.clone()));
    assert!(reason.contains("round 1 registered, expected round 0"), "{reason}");
    // and under no admitted query at all
    let mut unknown = spec.clone();
    unknown.id = QueryId::random(&mut f.rng);
    let reason = refusal(f.register(0, &unknown, 0, &task, contributions));
    assert_eq!(reason, ProtocolError::UnknownQuery(unknown.id.to_string()).to_string());
}

// ------------------------------------------------------------------ decrypt

#[test]
fn only_planned_releases_of_registered_rounds_are_decrypted_once() {
    let mut f = Fixture::new();
    let (spec, _) = f.registered_round0(exact(Statistic::Sum));
    let unknown = QueryId::random(&mut f.rng);
    assert_eq!(
        refusal(f.decrypt(0, unknown, 0, Release::Count)),
        ProtocolError::UnknownQuery(unknown.to_string()).to_string()
    );
    assert!(refusal(f.decrypt(0, spec.id, 1, Release::Count)).contains("round 1 is not registered"));
    for release in [Release::SquaresLimb(0), Release::Squares, Release::HistTotal, Release::SumLimb(7)] {
        let reason = refusal(f.decrypt(0, spec.id, 0, release));
        assert!(reason.contains(&format!("{release:?} is not part of a exact sum query's plan")), "{reason}");
    }
    let first = shares(f.decrypt(0, spec.id, 0, Release::Count));
    // asked again: the same share, not a second one
    assert_eq!(shares(f.decrypt(0, spec.id, 0, Release::Count)), first);
    assert!(matches!(f.decrypt(0, spec.id, 0, Release::SumLimb(0)), AuthorityResponse::Partials(_)));
}

#[test]
fn noisy_search_rounds_release_each_cell_once_and_nothing_across_cells() {
    let mut f = Fixture::new();
    // 4096 values: 4 rounds of 8 buckets (`policy::noisy_search`), epsilon split over the 4
    let (spec, _) = f.registered_round0(noisy(Statistic::Median, "1", Some(("0", "4095"))));
    let mut partials = Vec::new();
    // the round's cells: below the grid, its 8 buckets, at or above its end
    let cells = std::iter::once(Release::HistPrefix(0))
        .chain((0..8).map(Release::HistBucket))
        .chain(std::iter::once(Release::HistSuffix(8)));
    for release in cells {
        match f.decrypt(0, spec.id, 0, release) {
            AuthorityResponse::Partials(p) => partials.push(p.shares),
            other => panic!("{release:?}: {other:?}"),
        }
    }
    // a cell already released is answered again with the same noisy share
    assert_eq!(shares(f.decrypt(0, spec.id, 0, Release::HistPrefix(0))), partials[0]);
    assert_eq!(shares(f.decrypt(0, spec.id, 0, Release::HistBucket(3))), partials[4]);
    // no total, no count across cells (the exact search's prefix and
    // suffix counts), no sum
    for release in [
        Release::HistTotal,
        Release::HistPrefix(1),
        Release::HistPrefix(7),
        Release::HistSuffix(1),
        Release::HistBucket(8),
        Release::Count,
    ] {
        let reason = refusal(f.decrypt(0, spec.id, 0, release));
        assert!(reason.contains("is not part of a median query's plan"), "{release:?}: {reason}");
    }

    // a noisy histogram releases its buckets, never their total
    let mut params = noisy(Statistic::Histogram, "1", None);
    params.edges = vec!["10".into(), "100".into()];
    let (spec, _) = f.registered_round0(params);
    assert!(matches!(f.decrypt(0, spec.id, 0, Release::HistBucket(1)), AuthorityResponse::Partials(_)));
    let reason = refusal(f.decrypt(0, spec.id, 0, Release::HistTotal));
    assert!(reason.contains("a noisy histogram releases its buckets only"), "{reason}");
}

#[test]
fn rounds_are_served_only_to_a_valid_decrypting_set_of_this_epoch() {
    let mut f = Fixture::new();
    let params = exact(Statistic::Count);
    let PlanStep::Round { task, .. } = Planner::new(params.clone(), 0, 20).unwrap().start().unwrap() else {
        panic!("plan")
    };
    let cases: [(&str, u64, Vec<String>, &str); 4] = [
        ("fewer than t", 0, vec!["authority-1".into()], "threshold is 2"),
        ("a stranger", 0, vec!["authority-1".into(), "authority-9".into()], "not a member"),
        ("twice", 0, vec!["authority-1".into(), "authority-1".into()], "twice"),
        ("another epoch", 1, decryptors(), "epoch 1"),
    ];
    for (what, epoch, set, want) in cases {
        let intent = f.intent(params.clone());
        f.admit_query(&intent);
        let spec = QuerySpec::new(intent, 0, epoch, set);
        let reason = refusal(f.ask(0, AuthorityRequest::AdmitRound { spec, round: 0, task: task.clone() }));
        assert!(reason.contains(want), "{what}: {reason}");
    }
    // a relay refuses a round admitted by fewer than all of the spec's decryptors
    let intent = f.intent(params);
    let query_admission = f.admit_query(&intent);
    let spec = QuerySpec::new(intent, 0, 0, decryptors());
    let request = AuthorityRequest::AdmitRound { spec: spec.clone(), round: 0, task: task.clone() };
    let AuthorityResponse::Admitted { signature, .. } = f.ask(0, request) else { panic!("refused") };
    let one = Admission { signatures: vec![("authority-1".into(), signature)] };
    assert!(query_admission.signatures.len() == 2);
    let contribute = RelayRequest::Contribute {
        sealing: Vec::new(),
        spec,
        round: 0,
        task,
        admission: one,
        admission_of: AdmissionOf::Round,
    };
    let (response, _) = f.relays[0].handle(contribute, &Column, node_status, NOW, &mut f.rng);
    let RelayResponse::Error { message } = response else { panic!("contributed: {response:?}") };
    assert!(message.contains("authority-2") && message.contains("not signed"), "{message}");
}

/// The processor polls every member for the next epoch's transition: an
/// authority without one answers `OtherEpoch`, which is no refusal.
#[test]
fn a_poll_for_a_transition_not_made_yet_is_answered_not_refused() {
    let mut f = Fixture::new();
    for epoch in [0, 1, 7] {
        let (authority, ledger) = &mut f.authorities[0];
        let (response, refusal) =
            authority.answer(AuthorityRequest::Transition { epoch }, ledger, NOW, node_status, &mut f.rng);
        match response {
            AuthorityResponse::OtherEpoch { asked, current: 0 } => assert_eq!(asked, epoch),
            other => panic!("expected OtherEpoch, got {other:?}"),
        }
        assert_eq!(refusal, None, "counted as answered, not as a refusal");
    }
}

// ------------------------------------------------------------------ bounded state (issue 13)

/// An exact query of `params` run to its end at authority-1: admitted and
/// its round 0 signed by both authorities, contributed by relays 1 and 2,
/// registered and every planned release decrypted at authority-1 only.
/// Returns the spec and the shares of the last reply.
fn run_at_first(f: &mut Fixture, params: QueryParams, releases: Vec<Release>) -> (QuerySpec, Vec<CompressedShare>) {
    let (spec, task, admission) = f.round0(params);
    let contributions: Vec<_> = (1..=2).map(|r| f.contribute(r, &spec, 0, &task, &admission)).collect();
    assert_eq!(f.register(0, &spec, 0, &task, contributions), AuthorityResponse::Registered);
    let answer = shares(f.decrypt_all(0, spec.id, 0, releases));
    (spec, answer)
}

type CompressedShare = curve25519_dalek::ristretto::CompressedRistretto;

#[test]
fn an_ended_query_keeps_its_shares_not_its_aggregate_and_ended_ones_are_bounded() {
    let mut f = Fixture::new();
    // no bounds, 0 decimals: 4 limbs of 20 bits hold Σv
    let (limbs, _) = sum_task().moment_limbs().unwrap();
    assert_eq!(limbs, 4);
    let sum_releases: Vec<Release> = std::iter::once(Release::Count).chain((0..limbs).map(Release::SumLimb)).collect();
    let (sum, sum_shares) = run_at_first(&mut f, exact(Statistic::Sum), sum_releases);
    let memory = f.authorities[0].0.query_memory();
    assert_eq!(memory, QueryMemory { live: 0, ended: 1, ciphertexts: 0, shares: 5 }, "every planned release made");
    // a release asked again (a lost reply) gets the same share; a release the
    // plan does not make is refused as before; a new share is made no more
    assert_eq!(shares(f.decrypt(0, sum.id, 0, Release::SumLimb(3))), vec![sum_shares[4]]);
    assert!(refusal(f.decrypt(0, sum.id, 0, Release::SumLimb(4))).contains("is not part of a exact sum query's plan"));
    assert!(refusal(f.decrypt(0, sum.id, 0, Release::HistTotal)).contains("is not part of a exact sum query's plan"));
    let reason = refusal(f.decrypt(0, sum.id, 0, Release::Sum));
    assert!(reason.contains("is over: every release its plan makes was answered"), "{reason}");
    assert!(refusal(f.register(0, &sum, 0, &sum_task(), vec![])).contains("round 0 registered, expected round 1"));

    // many more ended queries: the oldest go, and then a request naming one
    // is refused as unknown
    let mut last = None;
    for _ in 0..ENDED_QUERIES {
        last = Some(run_at_first(&mut f, exact(Statistic::Count), vec![Release::Count]));
    }
    let memory = f.authorities[0].0.query_memory();
    assert_eq!(memory, QueryMemory { live: 0, ended: ENDED_QUERIES, ciphertexts: 0, shares: ENDED_QUERIES });
    let reason = refusal(f.decrypt(0, sum.id, 0, Release::SumLimb(3)));
    assert_eq!(reason, ProtocolError::UnknownQuery(sum.id.to_string()).to_string());
    let (count, count_shares) = last.unwrap();
    assert_eq!(shares(f.decrypt(0, count.id, 0, Release::Count)), count_shares);

    // replay protection and the budget need no memory: the ledger refuses
    // the dropped query's id, charging nothing
    let charges = f.ledger(0).charges(0).unwrap().0;
    let replay = AuthorityRequest::AdmitQuery { sealing: false, query: sum.intent(), user: "alice".into(), epoch: 0 };
    assert_eq!(refusal(f.ask(0, replay)), ProtocolError::Replay(sum.id.to_string()).to_string());
    assert_eq!(f.ledger(0).charges(0).unwrap().0, charges);
}

/// The task an exact sum's round 0 has (limbs of 20 bits).
fn sum_task() -> RelayTask {
    let PlanStep::Round { task, .. } = Planner::new(exact(Statistic::Sum), 0, 20).unwrap().start().unwrap() else {
        panic!("a plan starts with round 0")
    };
    task
}

#[test]
fn live_queries_are_bounded_and_the_least_recently_active_goes() {
    let mut f = Fixture::new();
    let mut ids = Vec::new();
    for i in 0..LIVE_QUERIES {
        let intent = f.intent(exact(Statistic::Count));
        let request =
            AuthorityRequest::AdmitQuery { sealing: false, query: intent.clone(), user: "alice".into(), epoch: 0 };
        assert!(matches!(f.ask_at(0, request, NOW + i as u64), AuthorityResponse::Admitted { .. }));
        ids.push(intent);
    }
    // the first query is active again (any request naming it), the second is not
    let spec = |intent: &QueryIntent| QuerySpec::new(intent.clone(), 0, 0, decryptors());
    // a count query's round 0 is no sum: refused, the query still known
    let no_round = "asks relays for exactly the moments it releases";
    let register = |intent: &QueryIntent| AuthorityRequest::Register {
        shared: Vec::new(),
        spec: spec(intent),
        round: 0,
        task: sum_task(),
        contributions: vec![],
        releases: vec![],
    };
    let later = NOW + LIVE_QUERIES as u64;
    assert!(refusal(f.ask_at(0, register(&ids[0]), later)).contains(no_round));
    let one_more = f.intent(exact(Statistic::Count));
    let request = AuthorityRequest::AdmitQuery { sealing: false, query: one_more, user: "alice".into(), epoch: 0 };
    assert!(matches!(f.ask_at(0, request, later), AuthorityResponse::Admitted { .. }));
    assert_eq!(f.authorities[0].0.query_memory().live, LIVE_QUERIES);
    assert!(refusal(f.ask_at(0, register(&ids[0]), later)).contains(no_round));
    let reason = refusal(f.ask_at(0, register(&ids[1]), later));
    assert_eq!(reason, ProtocolError::UnknownQuery(ids[1].id.to_string()).to_string());
    // its id stays spent
    let replay = AuthorityRequest::AdmitQuery { sealing: false, query: ids[1].clone(), user: "alice".into(), epoch: 0 };
    assert_eq!(refusal(f.ask_at(0, replay, later)), ProtocolError::Replay(ids[1].id.to_string()).to_string());
}

#[test]
fn a_search_keeps_only_the_aggregate_of_its_current_round() {
    let mut f = Fixture::new();
    let (spec, task) = f.registered_round0(exact_max_within_100000());
    let RelayTask::Histogram { grid } = &task else { unreachable!() };
    let buckets = grid.buckets() as usize;
    assert_eq!(f.authorities[0].0.query_memory().ciphertexts, buckets);
    let total = shares(f.decrypt(0, spec.id, 0, Release::HistTotal));
    assert_eq!(shares(f.decrypt(0, spec.id, 0, Release::HistTotal)), total);
    // round 1 refines the bucket holding 77777: round 0 is over
    let fixed = spec.params.fixed(0).unwrap();
    let (lo, hi) = refinement_range(grid, grid.bucket_of(77_777).unwrap(), fixed.bounds).unwrap();
    let next = RelayTask::Histogram { grid: Grid::covering(lo, hi, SEARCH_BUCKETS).unwrap() };
    let admission = f.admit_all(AuthorityRequest::AdmitRound { spec: spec.clone(), round: 1, task: next.clone() });
    assert_eq!(f.authorities[0].0.query_memory(), QueryMemory { live: 1, ended: 0, ciphertexts: 0, shares: 0 });
    let reason = refusal(f.decrypt(0, spec.id, 0, Release::HistTotal));
    assert!(reason.contains("round 0 is over: round 1's task was fixed after it"), "{reason}");
    let contributions: Vec<_> = (1..=2).map(|r| f.contribute(r, &spec, 1, &next, &admission)).collect();
    assert_eq!(f.register(0, &spec, 1, &next, contributions), AuthorityResponse::Registered);
    let RelayTask::Histogram { grid: refined } = &next else { unreachable!() };
    assert_eq!(f.authorities[0].0.query_memory().ciphertexts, refined.buckets() as usize);
    assert!(matches!(f.decrypt(0, spec.id, 1, Release::HistPrefix(1)), AuthorityResponse::Partials(_)));
}
