//! t-of-n decryption in memory: real crypto, a real spreadsheet, every
//! message through the wire encoding. A committee of 5 with t = 3 answers
//! exactly with 2 authorities unreachable (and names them), refuses with 3
//! unreachable (naming them), and folds each decryptor's DP noise so that
//! any answering set gives whole integers of noise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::too_many_lines)]

mod common;

use common::*;
use crux::protocol::{AuthorityRequest, PeerFailure, PeerReply, ProtocolError};
use crux::stats::{Epsilon, QueryParams, Statistic};

const COLUMN: [&str; 3] = ["Population", "All usual residents", "2021"];

/// Makes `down` unreachable when the committee is asked to admit a query
/// (later requests go to the decryptors only, which never include them).
fn take_down(cluster: &mut MemoryCluster, down: &'static [&'static str]) {
    cluster.authority_hook = Some(Box::new(move |request, replies: &mut Vec<PeerReply<_>>| {
        if matches!(request, AuthorityRequest::AdmitQuery { .. }) {
            for reply in replies.iter_mut().filter(|r| down.contains(&r.peer.as_str())) {
                reply.reply = Err(PeerFailure::Unreachable("connection refused".into()));
            }
        } else {
            assert!(replies.iter().all(|r| !down.contains(&r.peer.as_str())), "{request:?} went to a down authority");
        }
    }));
}

#[test]
fn three_of_five_answer_exactly_with_two_down() {
    let mut full = memory_cluster("areas.xlsx", 3, true, 2);
    let mut committee = committee_cluster("areas.xlsx", 3, 5, 3);
    take_down(&mut committee, &["authority-2", "authority-5"]);
    for st in [Statistic::Count, Statistic::Sum, Statistic::Variance, Statistic::Median, Statistic::Max] {
        let want = full.query(&COLUMN, QueryParams::new(st)).unwrap();
        let got = committee.query(&COLUMN, QueryParams::new(st)).unwrap();
        assert_eq!(got.result.value, want.result.value, "{st}");
        assert_eq!(got.decryptors, ["authority-1", "authority-3", "authority-4"], "{st}");
        let missing: Vec<&str> = got.missing_authorities.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(missing, ["authority-2", "authority-5"], "{st}");
        assert!(got.missing_authorities[0].1.contains("connection refused"));
    }
    // every authority asked after the admission was a decryptor
    assert!(committee.trace.partial_decryptions > 0);
}

#[test]
fn three_down_of_five_is_a_clear_error_naming_them() {
    let mut committee = committee_cluster("areas.xlsx", 3, 5, 3);
    take_down(&mut committee, &["authority-1", "authority-3", "authority-4"]);
    let err = committee.query(&COLUMN, QueryParams::new(Statistic::Count)).unwrap_err();
    assert!(matches!(err, ProtocolError::NotEnoughAuthorities { got: 2, needed: 3, .. }), "{err}");
    let text = err.to_string();
    for name in ["authority-1", "authority-3", "authority-4"] {
        assert!(text.contains(name), "{text}");
    }
    assert!(text.contains("threshold"), "{text}");
}

#[test]
fn noisy_answers_with_any_decrypting_set_carry_whole_noise() {
    let mut full = memory_cluster("areas.xlsx", 3, true, 2);
    let truth = full.query(&COLUMN, QueryParams::new(Statistic::Count)).unwrap().result.value.exact_string();
    let truth: f64 = truth.parse().unwrap();
    for down in [&["authority-1", "authority-2"][..], &["authority-4", "authority-5"][..], &["authority-3"][..]] {
        let mut committee = committee_cluster("areas.xlsx", 3, 5, 3);
        let down: &'static [&'static str] = Box::leak(down.to_vec().into_boxed_slice());
        take_down(&mut committee, down);
        let mut params = QueryParams::new(Statistic::Count);
        params.exact = false;
        params.epsilon = Some(Epsilon::parse("5").unwrap());
        // a wrongly folded share would leave a non-integer noise: no discrete log
        let answer = committee.query(&COLUMN, params).unwrap();
        assert_eq!(answer.decryptors.len(), 3);
        let value: f64 = answer.result.value.exact_string().parse().unwrap();
        assert!((value - truth).abs() < 40.0, "{down:?}: {value} vs {truth}");
        assert!(answer.noise.unwrap().contains("each of the 3 decrypting authorities"));
    }
}
