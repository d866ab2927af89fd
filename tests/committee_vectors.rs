//! Golden vectors for what is signed about committee changes
//! (`crux::protocol::committee`, version 1): a proposed change, the old
//! committee's transition statement and a dealer's ledger handover.
//!
//! `tests/vectors/committee.json` holds byte encodings made by the
//! independent Python encoder `scripts/codec_vectors.py`; the Rust encoder
//! must produce exactly these bytes, and any changed input must change them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::HashMap;

use crux::crypto::{JointPublicKey, Member};
use crux::protocol::committee::{
    ChangeKind, CommitteeChange, Endpoint, LedgerHandover, Transition, DOMAIN_CHANGE, DOMAIN_HANDOVER,
    DOMAIN_TRANSITION,
};
use crux::protocol::QueryId;
use crux::stats::Epsilon;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use serde_json::{json, Value};

fn vectors() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/committee.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap().to_string()
}

fn u16_of(v: &Value) -> u16 {
    u16::try_from(v.as_u64().unwrap()).unwrap()
}

fn point(v: &Value) -> RistrettoPoint {
    let bytes: [u8; 32] = hex::decode(v.as_str().unwrap()).unwrap().try_into().unwrap();
    CompressedRistretto(bytes).decompress().unwrap()
}

fn query_id(v: &Value) -> QueryId {
    QueryId(hex::decode(v.as_str().unwrap()).unwrap().try_into().unwrap())
}

fn endpoint(v: &Value) -> Endpoint {
    Endpoint {
        name: text(&v["name"]),
        index: u16_of(&v["index"]),
        address: text(&v["address"]),
        ceremony: text(&v["ceremony"]),
        certificate: text(&v["certificate"]),
    }
}

fn endpoints(v: &Value) -> Vec<Endpoint> {
    v.as_array().unwrap().iter().map(endpoint).collect()
}

fn change(v: &Value) -> CommitteeChange {
    let kind = match v["kind"].as_str().unwrap() {
        "add" => ChangeKind::Add,
        "remove" => ChangeKind::Remove,
        "threshold" => ChangeKind::Threshold,
        "rotate" => ChangeKind::Rotate,
        other => panic!("unknown change kind {other}"),
    };
    CommitteeChange {
        from_epoch: v["from_epoch"].as_u64().unwrap(),
        from_key: text(&v["from_key"]),
        kind,
        subject: v["subject"].as_str().map(String::from),
        threshold: u16_of(&v["threshold"]),
        dealers: endpoints(&v["dealers"]),
        members: endpoints(&v["members"]),
    }
}

/// The new committee's key: `JointPublicKey::new` checks that every Y_i and
/// Y lie on one polynomial of degree t−1.
fn joint_key(v: &Value) -> Result<JointPublicKey, crux::crypto::CryptoError> {
    let members = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Member { authority: text(&m["name"]), index: u16_of(&m["index"]), point: point(&m["point"]) })
        .collect();
    JointPublicKey::new(v["epoch"].as_u64().unwrap(), u16_of(&v["threshold"]), members, point(&v["point"]))
}

fn transition(v: &Value) -> Transition {
    Transition {
        from_epoch: v["from_epoch"].as_u64().unwrap(),
        from_key: text(&v["from_key"]),
        committee: joint_key(v).expect("the vector's committee key is consistent"),
        endpoints: endpoints(&v["endpoints"]),
    }
}

/// Through `LedgerHandover::new`, from maps (whose order is arbitrary): it sorts.
fn handover(v: &Value) -> LedgerHandover {
    let spent: HashMap<String, Epsilon> =
        v["spent"].as_array().unwrap().iter().map(|p| (text(&p[0]), Epsilon(p[1].as_u64().unwrap()))).collect();
    let seen: HashMap<QueryId, u64> =
        v["seen"].as_array().unwrap().iter().map(|p| (query_id(&p[0]), p[1].as_u64().unwrap())).collect();
    LedgerHandover::new(v["to_epoch"].as_u64().unwrap(), v["dealer"].as_str().unwrap(), &spent, &seen)
}

fn encode_case(kind: &str, i: &Value) -> Vec<u8> {
    match kind {
        "committee_change" => change(i).signed_bytes(),
        "transition" => transition(i).signed_bytes(),
        "ledger_handover" => handover(i).signed_bytes(),
        other => panic!("unknown case kind {other}"),
    }
}

fn case<'a>(doc: &'a Value, kind: &str) -> &'a Value {
    doc["cases"].as_array().unwrap().iter().find(|c| c["kind"] == kind).unwrap()
}

#[test]
fn the_rust_encoder_matches_the_independent_vectors() {
    let doc = vectors();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    let mut kinds = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let kind = case["kind"].as_str().unwrap();
        let got = encode_case(kind, &case["input"]);
        assert_eq!(hex::encode(&got), case["hex"].as_str().unwrap(), "{name}");
        // the domain tag, as a str, starts the bytes
        let domain = match kind {
            "committee_change" => DOMAIN_CHANGE,
            "transition" => DOMAIN_TRANSITION,
            _ => DOMAIN_HANDOVER,
        };
        assert_eq!(&got[..4], &u32::try_from(domain.len()).unwrap().to_be_bytes(), "{name}");
        assert_eq!(&got[4..4 + domain.len()], domain.as_bytes(), "{name}");
        if kind == "committee_change" {
            kinds.push(change(&case["input"]).kind);
        }
    }
    for kind in [ChangeKind::Add, ChangeKind::Remove, ChangeKind::Threshold, ChangeKind::Rotate] {
        assert!(kinds.contains(&kind), "no vector for {kind:?}");
    }
}

/// Single-field changes per kind of case; each must change the bytes (so an
/// approval, a transition's or a handover's signature no longer verifies).
fn mutations(kind: &str) -> Vec<(&'static str, Value)> {
    let other_certificate = json!("-----BEGIN CERTIFICATE-----\nMIIBeTCCAR+gAwIBAgIUYXV0aG9yaXR5LTMtY2VydGlmaWNhdGUwCgYIKoZIzj0F\n-----END CERTIFICATE-----\n");
    match kind {
        "committee_change" => vec![
            ("/from_epoch", json!(8)),
            ("/from_key", json!("f64746d3c92b13050ed8d80236a7f0007c3b3f962f5ba793d19a601ebb1df404")),
            ("/kind", json!("remove")),
            ("/kind", json!("rotate")),
            ("/subject", Value::Null),
            ("/subject", json!("")),
            ("/threshold", json!(4)),
            ("/dealers/0/index", json!(5)),
            ("/dealers/1/certificate", other_certificate),
            ("/members/0/address", json!("10.0.0.9:7400")),
            ("/members/1/ceremony", json!("10.0.0.2:7411")),
            ("/members/1/name", json!("authority-9")),
        ],
        "transition" => vec![
            ("/from_epoch", json!(6)),
            ("/from_key", json!("f64746d3c92b13050ed8d80236a7f0007c3b3f962f5ba793d19a601ebb1df404")),
            ("/epoch", json!(9)),
            // still consistent: three points lie on a polynomial of degree 2
            ("/threshold", json!(3)),
            ("/members/1/name", json!("authority-9")),
            ("/endpoints/2/certificate", other_certificate),
            ("/endpoints/0/index", json!(4)),
            ("/endpoints/1/address", json!("10.0.0.9:7400")),
        ],
        "ledger_handover" => vec![
            ("/to_epoch", json!(9)),
            ("/dealer", json!("authority-1")),
            ("/spent/0/1", json!(1_000_000)),
            ("/spent/1/0", json!("zones")),
            ("/seen/0/1", json!(1_764_331_261u64)),
            ("/seen/1/0", json!("00112233445566778899aabbccddeefe")),
        ],
        other => panic!("unknown case kind {other}"),
    }
}

#[test]
fn any_changed_input_changes_the_bytes() {
    let doc = vectors();
    let mut changed = 0;
    for case in doc["cases"].as_array().unwrap() {
        let kind = case["kind"].as_str().unwrap();
        let original = hex::decode(case["hex"].as_str().unwrap()).unwrap();
        for (pointer, value) in mutations(kind) {
            let mut input = case["input"].clone();
            if let Some(slot) = input.pointer_mut(pointer).filter(|slot| **slot != value) {
                *slot = value.clone();
                assert_ne!(encode_case(kind, &input), original, "{} with {pointer} changed", case["name"]);
                changed += 1;
            }
        }
    }
    assert!(changed >= 55, "{changed} mutations tried");
}

#[test]
fn order_and_field_boundaries_are_in_the_bytes() {
    let doc = vectors();
    // endpoints are signed in their order
    let c = change(&case(&doc, "committee_change")["input"]);
    let mut reversed = c.clone();
    reversed.members.reverse();
    assert_ne!(reversed.signed_bytes(), c.signed_bytes());
    // dealers and members are separate lists
    let mut moved = c.clone();
    let last = moved.members.pop().unwrap();
    moved.dealers.push(last);
    assert_ne!(moved.signed_bytes(), c.signed_bytes());
    // a character moved from one field to the next
    let mut shifted = c.clone();
    let e = &mut shifted.dealers[0];
    let tail = e.name.pop().unwrap();
    e.address.insert(0, tail);
    assert_ne!(shifted.signed_bytes(), c.signed_bytes());
    // the same certificate with CRLF line ends
    let mut crlf = c.clone();
    crlf.dealers[0].certificate = crlf.dealers[0].certificate.replace('\n', "\r\n");
    assert_ne!(crlf.signed_bytes(), c.signed_bytes());
    // the same fields under another domain: the first 4 + 24 bytes differ
    let t = transition(&case(&doc, "transition")["input"]);
    assert_ne!(t.signed_bytes()[..28], c.signed_bytes()[..28]);
}

#[test]
fn the_transition_vector_is_a_consistent_committee() {
    let doc = vectors();
    let input = &case(&doc, "transition")["input"];
    let key = joint_key(input).unwrap();
    assert_eq!(key.threshold(), 2);
    assert_eq!(key.members().len(), 3);
    assert_eq!(key.fingerprint(), input["point"].as_str().unwrap());
    // another Y alone is not on the members' line: refused
    let mut bad = input.clone();
    bad["point"] = input["members"][2]["point"].clone();
    assert!(joint_key(&bad).is_err());
    // the same members on another line (f(x) = 4 − x: Y = 4·G, Y_i = 3·G,
    // 2·G, 1·G for i = 1, 2, 3): consistent, and other bytes
    let original = transition(input).signed_bytes();
    let mut other = input.clone();
    other["members"][0]["point"] = input["members"][1]["point"].clone();
    other["members"][1]["point"] = input["members"][0]["point"].clone();
    other["members"][2]["point"] = input["point"].clone();
    other["point"] = input["members"][2]["point"].clone();
    assert_ne!(transition(&other).signed_bytes(), original);
}

#[test]
fn the_handover_is_sorted_whatever_the_maps_order() {
    let doc = vectors();
    let c = case(&doc, "ledger_handover");
    let input = &c["input"];
    let h = handover(input);
    // byte order: "Zones" before "areas"
    let datasets: Vec<&str> = h.spent.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(datasets, ["Zones", "areas"]);
    assert!(h.seen.windows(2).all(|w| w[0].0 .0 < w[1].0 .0));
    // rebuilt many times (each HashMap has its own hash order): the same bytes
    for _ in 0..16 {
        assert_eq!(hex::encode(handover(input).signed_bytes()), c["hex"].as_str().unwrap());
    }
    // the fields in the vector's (unsorted) input order are other bytes
    let unsorted = LedgerHandover {
        to_epoch: h.to_epoch,
        dealer: h.dealer.clone(),
        spent: input["spent"].as_array().unwrap().iter().map(|p| (text(&p[0]), p[1].as_u64().unwrap())).collect(),
        seen: input["seen"].as_array().unwrap().iter().map(|p| (query_id(&p[0]), p[1].as_u64().unwrap())).collect(),
    };
    assert_ne!(unsorted.spent, h.spent);
    assert_ne!(unsorted.seen, h.seen);
    assert_ne!(unsorted.signed_bytes(), h.signed_bytes());
}
