#!/usr/bin/env python3
"""Plaintext statistics of one CSV column, computed without Crux.

Reads a CSV or .xlsx (first sheet) in the Crux layout (3 header rows: group label, sub-label,
period; then one data row per record), takes one column by letter (A, B, ...
AA), skips blank cells and computes the same statistics Crux answers, with
the same conventions: population variance (divide by n), lower median
(sorted[ceil(n/2) - 1]), the p-quantile as the value of 1-based rank
max(1, ceil(p*n)), histogram buckets (-inf, e1), [e1, e2), ..., [ek, +inf).

Values are parsed exactly (decimal text to a scaled integer), sums are exact
integers and mean/variance exact fractions (fractions.Fraction), so the
output is the plaintext truth for comparison with Crux's answers.

With --time it also times each statistic with time.perf_counter (the median
of --repeat runs) and the file read + parse of the column, so a benchmark can
print the plaintext floor. Output: one JSON object on stdout. Standard
library only; reads the CSV, writes nothing else.
"""

import argparse
import bisect
import csv
import decimal
import json
import re
import statistics
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from fractions import Fraction

STATS = ["count", "sum", "mean", "variance", "stddev", "min", "max", "median", "quantile", "histogram"]


def column_index(letters):
    index = 0
    for ch in letters.strip().upper():
        if not "A" <= ch <= "Z":
            raise SystemExit(f"bad column letter {letters!r}")
        index = index * 26 + (ord(ch) - ord("A") + 1)
    return index - 1


NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
PKG_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"


def first_sheet_path(zf):
    """The zip member of the workbook's first sheet."""
    wb = ET.fromstring(zf.read("xl/workbook.xml"))
    sheet = wb.find(f"{NS}sheets/{NS}sheet")
    rid = sheet.get(f"{REL_NS}id")
    rels = ET.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
    for rel in rels.iter(f"{PKG_NS}Relationship"):
        if rel.get("Id") == rid:
            target = rel.get("Target")
            return target.lstrip("/") if target.startswith("/") else "xl/" + target
    raise SystemExit("xlsx: first sheet not found")


def shortest_number(text):
    """A stored double as the shortest decimal that round-trips (what the writer meant)."""
    f = float(text)
    if f.is_integer() and abs(f) < 2**53:
        return str(int(f))
    return format(decimal.Decimal(repr(f)), "f")


def read_xlsx_column(path, col, header_rows=3):
    """The first sheet's column `col` (0-based), non-blank cells as text (standard library only)."""
    cells = []
    with zipfile.ZipFile(path) as zf:
        shared = []
        if "xl/sharedStrings.xml" in zf.namelist():
            for si in ET.fromstring(zf.read("xl/sharedStrings.xml")).iter(f"{NS}si"):
                shared.append("".join(t.text or "" for t in si.iter(f"{NS}t")))
        with zf.open(first_sheet_path(zf)) as f:
            for _, el in ET.iterparse(f):
                if el.tag != f"{NS}c":
                    if el.tag == f"{NS}row":
                        el.clear()
                    continue
                m = re.match(r"([A-Z]+)([0-9]+)$", el.get("r", ""))
                if not m or column_index(m.group(1)) != col or int(m.group(2)) <= header_rows:
                    continue
                kind = el.get("t", "n")
                if kind == "inlineStr":
                    text = "".join(t.text or "" for t in el.iter(f"{NS}t"))
                else:
                    v = el.find(f"{NS}v")
                    text = "" if v is None or v.text is None else v.text
                    if kind == "s" and text:
                        text = shared[int(text)]
                    elif kind == "n" and text:
                        text = shortest_number(text)
                text = text.strip()
                if text:
                    cells.append(text)
    return cells


def read_column(path, col, header_rows=3):
    """The column's non-blank cells as text, in file order (.csv or .xlsx)."""
    if path.lower().endswith(".xlsx"):
        return read_xlsx_column(path, col, header_rows)
    cells = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        for i, row in enumerate(reader):
            if i < header_rows:
                continue
            if col < len(row):
                text = row[col].strip()
                if text:
                    cells.append(text)
    return cells


def to_scaled(cells):
    """(integers, decimals): every cell times 10^decimals, exactly."""
    decimals = 0
    for text in cells:
        dot = text.find(".")
        if dot >= 0:
            decimals = max(decimals, len(text) - dot - 1)
    if decimals == 0:
        return [int(t) for t in cells], 0
    return [int(decimal.Decimal(t).scaleb(decimals)) for t in cells], decimals


def fmt_fixed(v, decimals):
    """A scaled integer as decimal text."""
    if decimals == 0:
        return str(v)
    sign = "-" if v < 0 else ""
    q, r = divmod(abs(v), 10**decimals)
    return f"{sign}{q}.{r:0{decimals}d}"


def fmt_fraction(fr, places=6):
    """A Fraction rounded half away from zero to `places` decimals."""
    scale = 10**places
    n = abs(fr) * scale
    q = int(n)
    if n - q >= Fraction(1, 2):
        q += 1
    sign = "-" if fr < 0 and q else ""
    return f"{sign}{q // scale}.{q % scale:0{places}d}"


def sqrt_fraction(fr, places=6):
    ctx = decimal.Context(prec=60)
    d = ctx.divide(decimal.Decimal(fr.numerator), decimal.Decimal(fr.denominator))
    return format(ctx.sqrt(d).quantize(decimal.Decimal(1).scaleb(-places), rounding=decimal.ROUND_HALF_UP), "f")


def rank(p, n):
    r = -((-p * n) // 1)  # ceil(p*n)
    return max(1, int(r))


def compute(stat, xs, decimals, p, edges):
    """One statistic of the scaled integers xs; returns (value text, extra)."""
    scale = 10**decimals
    if stat == "count":
        return str(len(xs)), None
    if stat == "sum":
        return fmt_fixed(sum(xs), decimals), None
    if stat == "mean":
        m = Fraction(sum(xs), len(xs) * scale)
        return fmt_fraction(m), f"{m.numerator}/{m.denominator}"
    if stat in ("variance", "stddev"):
        n = len(xs)
        s = sum(xs)
        ss = sum(x * x for x in xs)
        var = Fraction(n * ss - s * s, n * n * scale * scale)
        if stat == "variance":
            return fmt_fraction(var), f"{var.numerator}/{var.denominator}"
        return sqrt_fraction(var), None
    if stat == "min":
        return fmt_fixed(min(xs), decimals), None
    if stat == "max":
        return fmt_fixed(max(xs), decimals), None
    if stat == "median":
        ys = sorted(xs)
        return fmt_fixed(ys[rank(Fraction(1, 2), len(ys)) - 1], decimals), None
    if stat == "quantile":
        ys = sorted(xs)
        return fmt_fixed(ys[rank(p, len(ys)) - 1], decimals), None
    if stat == "histogram":
        scaled_edges = [int(decimal.Decimal(e).scaleb(decimals)) for e in edges]
        counts = [0] * (len(scaled_edges) + 1)
        for x in xs:
            counts[bisect.bisect_right(scaled_edges, x)] += 1
        return ",".join(str(c) for c in counts), None
    raise SystemExit(f"unknown statistic {stat}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", "--csv", dest="file", required=True, help="a .csv or .xlsx in the Crux layout")
    ap.add_argument("--column", required=True, help="column letter, e.g. H")
    ap.add_argument("--stats", default=",".join(STATS), help="comma-separated statistics")
    ap.add_argument("--quantile", default="0.9")
    ap.add_argument("--edges", default="0,1000,10000,100000")
    ap.add_argument("--time", action="store_true", help="time each statistic (perf_counter)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per timing; the median is reported")
    args = ap.parse_args()

    p = Fraction(decimal.Decimal(args.quantile))
    edges = [e for e in args.edges.split(",") if e]
    stats = [s for s in args.stats.split(",") if s]

    read_times = []
    for _ in range(args.repeat if args.time else 1):
        t0 = time.perf_counter()
        cells = read_column(args.file, column_index(args.column))
        xs, decimals = to_scaled(cells)
        read_times.append(time.perf_counter() - t0)
    if not xs:
        raise SystemExit("the column has no values")

    out = {"file": args.file, "column": args.column, "count": len(xs), "decimals": decimals,
           "quantile": args.quantile, "edges": args.edges, "stats": {}}
    if args.time:
        out["read_ms"] = statistics.median(read_times) * 1000
    for stat in stats:
        times = []
        for _ in range(args.repeat if args.time else 1):
            t0 = time.perf_counter()
            value, exact = compute(stat, xs, decimals, p, edges)
            times.append(time.perf_counter() - t0)
        entry = {"value": value}
        if exact is not None:
            entry["exact"] = exact
        if args.time:
            entry["ms"] = statistics.median(times) * 1000
        out["stats"][stat] = entry
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
