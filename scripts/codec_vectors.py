#!/usr/bin/env python3
"""Golden vectors for Crux's signed/proved byte encodings (src/protocol/codec.rs).

An independent implementation of the layout written down in codec.rs's
module docs: it shares no code with the Rust encoder. Writes
tests/vectors/codec.json; tests/codec_vectors.rs checks that the Rust
encoder produces exactly these bytes (and that other inputs do not).

128-bit integers are written as decimal strings (JSON numbers lose them).

Usage: scripts/codec_vectors.py [OUT]   (default tests/vectors/codec.json)
"""
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


def doubled(point_hex):
    """The encoding of 2·P for P = k·G (k <= 3), from the RFC table."""
    k = next(k for k, v in RFC.items() if v == point_hex)
    return RFC[2 * k]

STATISTICS = ["count", "sum", "mean", "variance", "stddev", "min", "max", "median", "quantile", "histogram"]
RELEASES = {"count": 0, "sum": 1, "squares": 2, "sum_limb": 3, "squares_limb": 4, "hist_total": 5, "hist_prefix": 6, "hist_bucket": 7}


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
        return (u8(0) + u32(t["limb_bits"]) + boolean(t["sums"]) + boolean(t["squares"])
                + u128(int(t["sum_quantum"])) + u128(int(t["squares_quantum"])))
    g = t["grid"]
    if g["kind"] == "magnitude":
        return u8(1) + u8(0)
    if g["kind"] == "uniform":
        return u8(1) + u8(1) + i128(int(g["lo"])) + i128(int(g["width"])) + u32(g["buckets"])
    return u8(1) + u8(2) + u32(len(g["edges"])) + b"".join(i128(int(e)) for e in g["edges"])


def ct(pair):
    """A ciphertext (a, b) as the encodings of 2·a and 2·b."""
    return bytes.fromhex(doubled(pair[0]) + doubled(pair[1]))


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
MOMENTS = {"kind": "moments", "limb_bits": 32, "sums": True, "squares": False,
           "sum_quantum": str(1 << 18), "squares_quantum": str(1 << 100)}
UNIFORM = {"kind": "histogram", "grid": {"kind": "uniform", "lo": "-2000", "width": "15", "buckets": 62}}
MAGNITUDE = {"kind": "histogram", "grid": {"kind": "magnitude"}}
EDGES = {"kind": "histogram", "grid": {"kind": "edges", "edges": [str(-(1 << 100)), "0", "1000"]}}
CONTRIB = {"kind": "moments", "count": [P1, P2], "sum": [[P0, P3], [P2, P1]], "squares": []}
HIST = {"kind": "histogram", "counts": [[P3, P3], [P0, P0], [P1, P0]]}


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "tests/vectors/codec.json"
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
            domain("crux/admission/round/v2") + spec(s) + u32(r) + task(t))
    for name, t, c in [("contribution, moments", MOMENTS, CONTRIB), ("contribution, histogram", UNIFORM, HIST)]:
        add(name, "contribution_statement", {"spec": SPEC, "round": 1, "task": t, "relay": "relay-2", "contribution": c},
            domain("crux/contribution/v2") + spec(SPEC) + u32(1) + task(t) + string("relay-2") + contribution(c))
    for r in [{"kind": "count"}, {"kind": "sum_limb", "index": 3}, {"kind": "hist_prefix", "index": 31},
              {"kind": "hist_bucket", "index": 4095}, {"kind": "squares"}]:
        add(f"release context, {r['kind']}", "decryption_context", {"query_id": SPEC["id"], "round": 5, "release": r},
            domain("crux/release/v1") + bytes.fromhex(SPEC["id"]) + u32(5) + release(r))
    doc = {
        "about": "Crux signed/proved byte encodings, version 2 (src/protocol/codec.rs: spec with epoch and decryptors); made by scripts/codec_vectors.py, an independent encoder",
        "cases": cases,
    }
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
