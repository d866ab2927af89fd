#!/usr/bin/env python3
"""Prints one part of scripts/bench_cluster.sh's result table.

Usage: bench_report.py OUT_DIR TITLE REPS RELAYS BOUNDS "STAT STAT ..." PROCESSOR_LOG

Reads, from OUT_DIR (written by bench_cluster.sh): NAME.ns (one wall time in
ns per run of `crux-node query`), NAME.ids (the query id of each run),
NAME.json (the last answer), start.ns (process start alone) and plain.json
(scripts/plain_stats.py --time on the same file); NAME is STAT-exact or
STAT-dp. From PROCESSOR_LOG it takes the processor's own `elapsed_ms` of
each query id (the time inside the cluster, without the CLI's process start
and handshake). Checks every exact answer against the plaintext one and exits
non-zero if one differs. Standard library only; writes only to stdout.
"""

import json
import re
import statistics
import sys
from decimal import Decimal
from fractions import Fraction


def main():
    out, title, reps, relays, bounds, stats, plog = sys.argv[1:8]
    stats = stats.split()
    plain = json.load(open(f"{out}/plain.json"))
    read_ms = plain["read_ms"]

    elapsed = {}
    ansi = re.compile(r"\x1b\[[0-9;]*m")
    with open(plog, errors="replace") as f:
        for line in f:
            line = ansi.sub("", line)
            m = re.search(r"query_id=([0-9a-f]+).*answered .*elapsed_ms=([0-9]+)", line)
            if m:
                elapsed[m.group(1)] = int(m.group(2))

    def wall_ms(name):
        with open(f"{out}/{name}.ns") as f:
            return statistics.median(int(x) for x in f if x.strip()) / 1e6

    def proc_ms(name):
        with open(f"{out}/{name}.ids") as f:
            ids = [x.strip() for x in f if x.strip()]
        vals = [elapsed[i] for i in ids if i in elapsed]
        return statistics.median(vals) if vals else None

    def frac(text):
        return Fraction(text) if "/" in text else Fraction(Decimal(text))

    def answer(a):
        if a.get("buckets") is not None:
            return ",".join(str(b["count"]) for b in a["buckets"])
        return a["exact_value"]

    def check(stat, crux, truth):
        t = truth["value"]
        if stat == "histogram":
            return "ok" if crux == t else "DIFF"
        if stat == "stddev":
            # Crux answers sqrt(exact variance); compare the radicand.
            m = re.fullmatch(r"sqrt\((.*)\)", crux)
            if m:
                var = plain["stats"].get("variance", {})
                if "exact" in var:
                    return "ok (sqrt of exact var.)" if frac(m.group(1)) == frac(var["exact"]) else "DIFF"
                return "?"
        try:
            return "ok" if frac(crux) == frac(truth.get("exact", t)) else "DIFF"
        except (ValueError, ArithmeticError):
            return "DIFF"

    def fmt_ms(x):
        if x is None:
            return "-"
        if x >= 100:
            return f"{x:,.0f}"
        if x >= 1:
            return f"{x:.1f}"
        return f"{x:.2g}" if x >= 0.0001 else "<0.0001"

    def short(text, width=30):
        return text if len(text) <= width else text[: width - 3] + "..."

    rows, bad = [], False
    for kind in ["exact", "dp"]:
        for stat in stats if kind == "exact" else ["sum", "mean", "median"]:
            name = f"{stat}-{kind}"
            a = json.load(open(f"{out}/{name}.json"))
            t = plain["stats"][stat]
            c, pm = wall_ms(name), proc_ms(name)
            p = t["ms"]
            pr = read_ms + p
            if kind == "exact":
                crux = answer(a)
                verdict = check(stat, crux, t)
                bad |= verdict.startswith("DIFF")
                label = stat + (f" {plain.get('quantile', '')}" if stat == "quantile" else "")
            else:
                crux = f"{a['value']:.2f}"
                verdict = f"noise {float(a['value']) - float(t['value']):+.2f}"
                label = f"{stat} (DP eps=1)"
            rows.append([label, fmt_ms(c), fmt_ms(pm), fmt_ms(p), fmt_ms(pr), f"{c / pr:,.1f}x", f"{c / p:,.0f}x" if p > 0 else "-", short(crux), verdict])
    head = ["statistic", "Crux e2e ms", "processor ms", "plain ms", "plain+read ms", "e2e/(plain+read)", "e2e/plain", "Crux answer", "vs plaintext"]
    w = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]

    def line(r):
        return " | ".join(c.ljust(w[i]) if i in (0, 8) else c.rjust(w[i]) for i, c in enumerate(r)).rstrip()

    print()
    print(f"{title}: {plain['count']} values, {relays} relays, 3 authorities")
    print(f"  Crux e2e = median of {reps} runs of `crux-node query ... --json`, wall time around the process")
    print(f"    (includes process start, config/key loading and the CLI's TLS handshake; process start alone,")
    print(f"    `crux-node --version`: {wall_ms('start'):.1f} ms); processor = its own elapsed_ms for the same queries")
    print(f"  plain = Python on the parsed values (median of {reps}); plain+read adds reading + parsing the column")
    print(f"    from {plain['file']}: {read_ms:,.1f} ms")
    print(f"  DP rows: --epsilon 1 --bounds {bounds}; 'vs plaintext' is the DP answer minus the exact value")
    print(line(head))
    print("-+-".join("-" * x for x in w))
    for r in rows:
        print(line(r))
    if bad:
        sys.exit("error: an exact Crux answer differs from the plaintext computation")


if __name__ == "__main__":
    main()
