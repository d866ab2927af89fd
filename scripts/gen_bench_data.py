#!/usr/bin/env python3
"""Writes a synthetic CSV in the Crux layout for benchmarks.

Usage: gen_bench_data.py OUT.csv [ROWS] [SEED]

Layout: row 1 group label ("Generated", column B blank so it inherits),
row 2 sub-labels ("Values", "Amounts"), row 3 period ("2026"), then ROWS
data rows (default 10^6). Column A: integers from a seeded log-normal
(median ~8100, long right tail) clipped to [0, 10^7]; column B: amounts with
2 decimals from another log-normal, clipped to [0.01, 10^6]. Deterministic
for a given ROWS and SEED (default 2026). Standard library only; writes only
OUT.csv.
"""

import csv
import random
import sys


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    out = sys.argv[1]
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 2026
    rng = random.Random(seed)
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["Generated", ""])
        w.writerow(["Values", "Amounts"])
        w.writerow(["2026", "2026"])
        for _ in range(rows):
            v = min(10_000_000, int(rng.lognormvariate(9.0, 1.6)))
            cents = min(100_000_000, max(1, round(rng.lognormvariate(4.5, 1.2) * 100)))
            w.writerow([v, f"{cents // 100}.{cents % 100:02d}"])


if __name__ == "__main__":
    main()
