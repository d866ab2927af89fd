#!/usr/bin/env python3
"""Golden vectors for Crux's signed/proved byte encodings (src/protocol/codec.rs
and src/protocol/committee.rs).

An independent implementation of the layouts written down in the module
docs of codec.rs and committee.rs: it shares no code with the Rust
encoder. codec.json also holds the committed-share path's encodings
(version 1): sealing grants (crux/sealing-key/v1), shares statements
(crux/contribution/shares/v1, binding each sealed box by its hash), box
hashes (crux/share-box-hash/v1, SHA-512 cut to 32 bytes) and box headers
(crux/share-box/v1). Writes tests/vectors/codec.json (checked by
tests/codec_vectors.rs) and tests/vectors/committee.json (committee
changes, transitions and ledger handovers, checked by
tests/committee_vectors.rs); the tests check that the Rust encoder
produces exactly these bytes (and that other inputs do not).

128-bit integers are written as decimal strings (JSON numbers lose them).

Usage: scripts/codec_vectors.py [OUT [COMMITTEE_OUT]]
  OUT            default tests/vectors/codec.json
  COMMITTEE_OUT  default committee.json next to OUT
"""
import hashlib
import json
import struct
import sys
from pathlib import Path

# RFC 9496 A.1: encodings of k·G for k = 0..6 (valid ristretto255 points)
RFC = {
    0: "00" * 32,
    1: "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76",
    2: "6a493210f7499cd17fecb510ae0cea23a110e8d5b901f8acadd3095c73a3b919",
    3: "94741f5d5d52755ece4f23f044ee27d5d1ea1e2bd196b462166b16152a9d0259",
    4: "da80862773358b466ffadfe0b3293ab3d9fd53c5ea6c955358f568322daf6a57",
    6: "f64746d3c92b13050ed8d80236a7f0007c3b3f962f5ba793d19a601ebb1df403",
}
P0, P1, P2, P3 = RFC[0], RFC[1], RFC[2], RFC[3]


STATISTICS = ["count", "sum", "mean", "variance", "stddev", "min", "max", "median", "quantile", "histogram"]
RELEASES = {"count": 0, "sum": 1, "squares": 2, "sum_limb": 3, "squares_limb": 4, "hist_total": 5, "hist_prefix": 6, "hist_bucket": 7, "hist_suffix": 8}


def u8(v): return struct.pack(">B", v)
def u32(v): return struct.pack(">I", v)
def u64(v): return struct.pack(">Q", v)
def u128(v): return v.to_bytes(16, "big")
def i128(v): return v.to_bytes(16, "big", signed=True)
def boolean(v): return u8(1 if v else 0)
def string(s): b = s.encode("utf-8"); return u32(len(b)) + b
def opt_str(s): return u8(0) if s is None else u8(1) + string(s)


def params(p):
    out = u8(STATISTICS.index(p["statistic"])) + boolean(p["sample"]) + opt_str(p["quantile"])
    out += u32(len(p["edges"])) + b"".join(string(e) for e in p["edges"])
    out += u8(0) if p["bounds"] is None else u8(1) + string(p["bounds"][0]) + string(p["bounds"][1])
    out += boolean(p["exact"])
    out += u8(0) if p["epsilon_micros"] is None else u8(1) + u64(p["epsilon_micros"])
    return out


def query(q):
    out = bytes.fromhex(q["id"]) + u64(q["issued_at"]) + string(q["dataset"])
    out += u8(len(q["labels"])) + b"".join(string(l) for l in q["labels"])
    return out + params(q["params"])


def spec(s):
    out = query(s) + u32(s["decimals"]) + u64(s["epoch"])
    return out + u8(len(s["decryptors"])) + b"".join(string(d) for d in s["decryptors"])


def task(t):
    if t["kind"] == "moments":
        return (u8(0) + u32(t["limb_bits"]) + u32(t["value_bits"]) + boolean(t["sums"]) + boolean(t["squares"])
                + u128(int(t["sum_quantum"])) + u128(int(t["squares_quantum"])))
    g = t["grid"]
    if g["kind"] == "magnitude":
        return u8(1) + u8(3) + u32(g["bits"])
    if g["kind"] == "uniform":
        return u8(1) + u8(1) + i128(int(g["lo"])) + i128(int(g["width"])) + u32(g["buckets"])
    return u8(1) + u8(2) + u32(len(g["edges"])) + b"".join(i128(int(e)) for e in g["edges"])


def ct(pair):
    """A ciphertext (a, b) as its wire form: the encodings of a and b."""
    return bytes.fromhex(pair[0] + pair[1])


def cts(list_):
    return u32(len(list_)) + b"".join(ct(p) for p in list_)


def contribution(c):
    if c["kind"] == "moments":
        return u8(0) + ct(c["count"]) + cts(c["sum"]) + cts(c["squares"])
    return u8(1) + cts(c["counts"])


def release(r):
    return u8(RELEASES[r["kind"]]) + u32(r.get("index", 0))


def domain(d):
    return string(d)


# ------------------------------------------------------- the committed-share path

def sealing_grant(g):
    """query id, epoch u64, authority str, key (32 bytes, no length)."""
    return (domain("crux/sealing-key/v1") + bytes.fromhex(g["query_id"]) + u64(g["epoch"])
            + string(g["authority"]) + bytes.fromhex(g["key"]))


def shares_statement(x):
    """spec, round u32, task, relay str, commitment and ephemeral key (32
    bytes each, no length), box hashes (u32 count, each 32 bytes, no length)."""
    out = domain("crux/contribution/shares/v1") + spec(x["spec"]) + u32(x["round"]) + task(x["task"])
    out += string(x["relay"]) + bytes.fromhex(x["commitment"]) + bytes.fromhex(x["ephemeral"])
    hashes = [bytes.fromhex(h) for h in x["box_hashes"]]
    assert all(len(h) == 32 for h in hashes)
    return out + u32(len(hashes)) + b"".join(hashes)


def box_hash(sealed):
    """The first 32 bytes of SHA-512 over (domain str, the box as bytes: u32
    length + bytes)."""
    return hashlib.sha512(domain("crux/share-box-hash/v1") + u32(len(sealed)) + sealed).digest()[:32]


def box_header(h):
    """query id, round u32, relay str, commitment (32 bytes, no length)."""
    return (domain("crux/share-box/v1") + bytes.fromhex(h["query_id"]) + u32(h["round"])
            + string(h["relay"]) + bytes.fromhex(h["commitment"]))


def sealed_box(n, seed):
    """n arbitrary but fixed bytes standing in for a sealed box (hex)."""
    return bytes((seed * 37 + 11 * j) % 256 for j in range(n)).hex()


SPEC = {
    "id": "00112233445566778899aabbccddeeff",
    "issued_at": 1764331200,
    "dataset": "areas",
    "labels": ["Population", "All usual residents", "2021"],
    "params": {"statistic": "mean", "sample": False, "quantile": None, "edges": [],
               "bounds": ["-20", "900.5"], "exact": False, "epsilon_micros": 1500000},
    "decimals": 2,
    "epoch": 3,
    "decryptors": ["authority-1", "authority-3"],
}
SPEC2 = dict(SPEC, labels=["Land"], decimals=0, epoch=0, decryptors=["a"],
             params={"statistic": "quantile", "sample": True, "quantile": "0.9", "edges": ["1", "2.5"],
                     "bounds": None, "exact": True, "epsilon_micros": None})
MOMENTS = {"kind": "moments", "limb_bits": 32, "value_bits": 33, "sums": True, "squares": False,
           "sum_quantum": str(1 << 18), "squares_quantum": str(1 << 100)}
UNIFORM = {"kind": "histogram", "grid": {"kind": "uniform", "lo": "-2000", "width": "15", "buckets": 62}}
MAGNITUDE = {"kind": "histogram", "grid": {"kind": "magnitude", "bits": 47}}
EDGES = {"kind": "histogram", "grid": {"kind": "edges", "edges": [str(-(1 << 100)), "0", "1000"]}}
CONTRIB = {"kind": "moments", "count": [P1, P2], "sum": [[P0, P3], [P2, P1]], "squares": []}
HIST = {"kind": "histogram", "counts": [[P3, P3], [P0, P0], [P1, P0]]}


# ---------------------------------------------------------------- committee.rs

CHANGE_KINDS = ["add", "remove", "threshold", "rotate"]


def endpoints(list_):
    """u32 count, each: name str, index u32, address str, ceremony str, certificate str."""
    out = u32(len(list_))
    for e in list_:
        out += string(e["name"]) + u32(e["index"]) + string(e["address"]) + string(e["ceremony"]) + string(e["certificate"])
    return out


def committee_change(c):
    out = domain("crux/committee-change/v1") + u64(c["from_epoch"]) + string(c["from_key"])
    out += u8(CHANGE_KINDS.index(c["kind"])) + opt_str(c["subject"]) + u32(c["threshold"])
    return out + endpoints(c["dealers"]) + endpoints(c["members"])


def transition(t):
    out = domain("crux/committee-transition/v1") + u64(t["from_epoch"]) + string(t["from_key"])
    out += u64(t["epoch"]) + u32(t["threshold"]) + u32(len(t["members"]))
    for m in t["members"]:
        out += string(m["name"]) + u32(m["index"]) + bytes.fromhex(m["point"])
    return out + bytes.fromhex(t["point"]) + endpoints(t["endpoints"])


def ledger_handover(h):
    """spent sorted by dataset (UTF-8 byte order = code point order), seen by id."""
    out = domain("crux/ledger-handover/v1") + u64(h["to_epoch"]) + string(h["dealer"])
    spent = sorted(h["spent"], key=lambda pair: pair[0].encode("utf-8"))
    out += u32(len(spent)) + b"".join(string(d) + u64(micros) for d, micros in spent)
    seen = sorted(h["seen"], key=lambda pair: bytes.fromhex(pair[0]))
    return out + u32(len(seen)) + b"".join(bytes.fromhex(i) + u64(at) for i, at in seen)


def pem(body_lines):
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(body_lines) + "\n-----END CERTIFICATE-----\n"


def endpoint(name, index, host, lines):
    return {"name": name, "index": index, "address": f"{host}:7400", "ceremony": f"{host}:7410",
            "certificate": pem(lines)}


CERT_1 = ["MIIBezCCASGgAwIBAgIUQ2VydGlmaWNhdGUtMS1mb3ItY3J1eDAKBggqhkjOPQQD",
          "AjAWMRQwEgYDVQQDDAthdXRob3JpdHktMTAeFw0yNTExMjgwMDAwMDBaFw0zNTEx"]
CERT_2 = ["MIIBfDCCASKgAwIBAgIVAKm9dGhvcml0eS0yLWNlcnRpZmljYXRlMAoGCCqGSM49",
          "BAMCMBYxFDASBgNVBAMMC2F1dGhvcml0eS0yMB4XDTI1MTEyODAwMDAwMFoXDTM1",
          "MTEyODAwMDAwMFowFjEUMBIGA1UEAwwLYXV0aG9yaXR5LTI="]
CERT_3 = ["MIIBeTCCAR+gAwIBAgIUYXV0aG9yaXR5LTMtY2VydGlmaWNhdGUwCgYIKoZIzj0E"]
CERT_4 = ["MIIBfTCCASOgAwIBAgIUYXV0aG9yaXR5LTQtY2VydGlmaWNhdGUwCgYIKoZIzj0E",
          "AwIwFjEUMBIGA1UEAwwLYXV0aG9yaXR5LTQ="]
A1 = endpoint("authority-1", 1, "10.0.0.1", CERT_1)
A2 = endpoint("authority-2", 2, "10.0.0.2", CERT_2)
A3 = endpoint("authority-3", 3, "[2001:db8::3]", CERT_3)
A4 = endpoint("authority-4", 4, "authority-4.example.org", CERT_4)
# hex of the current joint key (6·G), as JointPublicKey::fingerprint writes it
FROM_KEY = RFC[6]


def change(kind, subject, threshold, dealers, members):
    return {"from_epoch": 7, "from_key": FROM_KEY, "kind": kind, "subject": subject, "threshold": threshold,
            "dealers": dealers, "members": members}


def committee_vectors():
    cases = []

    def add(name, kind, inputs, data):
        cases.append({"name": name, "kind": kind, "input": inputs, "hex": data.hex()})

    # current committee: authority-1..3, threshold 2
    for name, c in [
        ("change, add authority-4", change("add", "authority-4", 3, [A1, A3],
                                           [A1, A2, A3, A4])),
        ("change, remove authority-2", change("remove", "authority-2", 2, [A1, A2],
                                              [A1, dict(A3, index=2)])),
        ("change, threshold 3", change("threshold", None, 3, [A2, A3], [A1, A2, A3])),
        ("change, rotate", change("rotate", None, 2, [A1, A2, A3], [A1, A2, A3])),
    ]:
        add(name, "committee_change", c, committee_change(c))

    # the new committee of epoch 8: t = 2, f(x) = 1 + x in the exponent:
    # Y = 1·G, Y_1 = 2·G, Y_2 = 3·G, Y_3 = 4·G (consistent for t = 2 and t = 3)
    t = {"from_epoch": 7, "from_key": FROM_KEY, "epoch": 8, "threshold": 2,
         "members": [{"name": "authority-1", "index": 1, "point": RFC[2]},
                     {"name": "authority-2", "index": 2, "point": RFC[3]},
                     {"name": "authority-3", "index": 3, "point": RFC[4]}],
         "point": RFC[1],
         "endpoints": [A1, A2, A3]}
    add("transition, 3 members", "transition", t, transition(t))

    # given out of order: the encoder sorts spent by dataset (bytes: "Zones"
    # before "areas", unlike a case-insensitive order) and seen by id
    h = {"to_epoch": 8, "dealer": "authority-2",
         "spent": [["areas", 1000001], ["Zones", 2500000]],
         "seen": [["ffeeddccbbaa99887766554433221100", 1764331260],
                  ["00112233445566778899aabbccddeeff", 1764331200]]}
    add("ledger handover, 2 datasets, 2 queries", "ledger_handover", h, ledger_handover(h))
    return cases


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "tests/vectors/codec.json"
    committee_out = Path(sys.argv[2]) if len(sys.argv) > 2 else out.parent / "committee.json"
    cases = []

    def add(name, kind, inputs, data):
        cases.append({"name": name, "kind": kind, "input": inputs, "hex": data.hex()})

    for name, s in [("query admission, noisy mean", SPEC), ("query admission, exact quantile", SPEC2)]:
        add(name, "query_admission", {"query": s}, domain("crux/admission/query/v1") + query(s))
    for name, s, r, t in [("round admission, moments", SPEC, 0, MOMENTS),
                          ("round admission, uniform grid", SPEC, 3, UNIFORM),
                          ("round admission, magnitude grid", SPEC2, 0, MAGNITUDE),
                          ("round admission, histogram edges", SPEC2, 0, EDGES)]:
        add(name, "round_admission", {"spec": s, "round": r, "task": t},
            domain("crux/admission/round/v3") + spec(s) + u32(r) + task(t))
    for name, s, r, t in [("refinement admission, uniform grid", SPEC, 4, UNIFORM),
                          ("refinement admission, magnitude grid", SPEC2, 1, MAGNITUDE)]:
        add(name, "refinement_admission", {"spec": s, "round": r, "previous": t},
            domain("crux/admission/refinement/v1") + spec(s) + u32(r) + task(t))
    for name, t, c in [("contribution, moments", MOMENTS, CONTRIB), ("contribution, histogram", UNIFORM, HIST)]:
        add(name, "contribution_statement", {"spec": SPEC, "round": 1, "task": t, "relay": "relay-2", "contribution": c},
            domain("crux/contribution/v4") + spec(SPEC) + u32(1) + task(t) + string("relay-2") + contribution(c))
    singles = [[{"kind": "count"}], [{"kind": "sum_limb", "index": 3}], [{"kind": "hist_prefix", "index": 31}],
               [{"kind": "hist_bucket", "index": 4095}], [{"kind": "squares"}],
               [{"kind": "hist_suffix", "index": 63}]]
    batches = [[{"kind": "count"}, {"kind": "sum_limb", "index": 0}, {"kind": "squares_limb", "index": 4}],
               [{"kind": "hist_bucket", "index": b} for b in range(7)], []]
    for rs in singles + batches:
        name = "releases context, " + (", ".join(r["kind"] for r in rs) or "none")
        add(name, "releases_context", {"query_id": SPEC["id"], "round": 5, "releases": rs},
            domain("crux/releases/v1") + bytes.fromhex(SPEC["id"]) + u32(5) + u32(len(rs))
            + b"".join(release(r) for r in rs))
    # the committed-share path (version 1); appended, so that the indices of
    # the cases above (tests/codec_vectors.rs reads cases 0 and 2) stay
    for name, g in [
        ("sealing grant, authority-1, epoch 0",
         {"query_id": SPEC["id"], "epoch": 0, "authority": "authority-1", "key": RFC[1]}),
        ("sealing grant, authority-3, epoch 7",
         {"query_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "epoch": 7, "authority": "authority-3", "key": RFC[2]}),
    ]:
        add(name, "sealing_grant", g, sealing_grant(g))
    SPEC3 = dict(SPEC, decryptors=["authority-1", "authority-2", "authority-3"])
    # box hashes of stand-in boxes (box_hash above, independent of the Rust one)
    for name, s, r, t, relay, commitment, ephemeral, boxes in [
        ("shares statement, moments, 3 box hashes", SPEC3, 0, MOMENTS, "relay-1", RFC[3], RFC[4],
         [sealed_box(48, k) for k in (1, 2, 3)]),
        ("shares statement, uniform grid, 2 box hashes of boxes of other lengths", SPEC, 3, UNIFORM, "relay-2",
         RFC[6], RFC[2], [sealed_box(48, 4), sealed_box(17, 5)]),
        # edge cases: the hash of one empty box, and no box hash at all
        ("shares statement, magnitude grid, hash of one empty box", SPEC2, 0, MAGNITUDE, "relay-1", RFC[0], RFC[1],
         [""]),
        ("shares statement, histogram edges, no box hashes", SPEC2, 1, EDGES, "relay-4", RFC[2], RFC[3], []),
    ]:
        x = {"spec": s, "round": r, "task": t, "relay": relay, "commitment": commitment, "ephemeral": ephemeral,
             "box_hashes": [box_hash(bytes.fromhex(b)).hex() for b in boxes]}
        add(name, "shares_statement", x, shares_statement(x))
    for name, h in [
        ("box header, relay-1, round 0", {"query_id": SPEC["id"], "round": 0, "relay": "relay-1", "commitment": RFC[3]}),
        ("box header, relay-2, round 3", {"query_id": SPEC["id"], "round": 3, "relay": "relay-2", "commitment": RFC[6]}),
    ]:
        add(name, "box_header", h, box_header(h))
    # the box as bytes (u32 length first): an empty box, a short one and one
    # of many SHA-512 blocks (4144 bytes = 32.375 blocks of 128)
    for name, b in [
        ("box hash, empty box", ""),
        ("box hash, 48-byte box", sealed_box(48, 1)),
        ("box hash, 4144-byte box", sealed_box(4144, 9)),
    ]:
        add(name, "box_hash", {"box": b}, box_hash(bytes.fromhex(b)))
    doc = {
        "about": "Crux signed/proved byte encodings, version 3 (src/protocol/codec.rs: spec with epoch and decryptors, moments task with value_bits), and the committed-share path's sealing grants, shares statements (box hashes), box hashes (SHA-512/32 of crux/share-box-hash/v1) and box headers, version 1; made by scripts/codec_vectors.py, an independent encoder",
        "cases": cases,
    }
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {out}")
    committee_cases = committee_vectors()
    committee_doc = {
        "about": "Crux committee changes, transitions and ledger handovers, version 1 (src/protocol/committee.rs); made by scripts/codec_vectors.py, an independent encoder",
        "cases": committee_cases,
    }
    committee_out.write_text(json.dumps(committee_doc, indent=1) + "\n")
    print(f"wrote {len(committee_cases)} cases to {committee_out}")


if __name__ == "__main__":
    main()
