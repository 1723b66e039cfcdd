#!/usr/bin/env python3
"""A/B rounds: runs two (or more) commands in alternation, records every round, prints
medians with their min-max and the ratio of the first side to the second.

    bench/ab.py --rounds 3 --key rps [--record FILE.jsonl] [--row LABEL --table FILE.md]
                --side 'monsoon=COMMAND' --side 'nginx=COMMAND'

Each COMMAND runs under `bash -c` with ROUND (1, 2, ...) and SIDE in its environment and must
print one JSON object of numbers on its last line of output (bench/wrk.py does); a command
that exits non-zero fails the whole comparison, so no figure is ever made of a failed run.

This machine is shared and drifts by 10-30 % between runs, so the order alternates: round 1
runs A then B, round 2 B then A, and so on; a side never profits from always going first.
Every round's figures go to the --record file (one JSON line per run) so a table can be
re-checked; the summary gives, per side and per figure, the median and the min-max, and the
ratio of the medians of --key with the ratio of each round. A third side and beyond (a
baseline build, say) is compared with the first side the same way.

With --row and --table, one Markdown row is appended to the table file:
`| LABEL | A key | A others... | B key | B others... | ratio | per round |`, where each cell is
that side's median (the figures listed by --columns, default every figure of the first run).

A one-off experiment becomes a reproducible command this way: two builds or two settings as
two sides, e.g.
    bench/ab.py --rounds 5 --key rps \\
      --side "yield=bench/wrk.py http://127.0.0.1:18481/x --conns 64 --seconds 5" \\
      --side "no-yield=bench/wrk.py http://127.0.0.1:18483/x --conns 64 --seconds 5"
"""

import argparse
import json
import os
import statistics
import subprocess
import sys


class Failed(Exception):
    """A side's command failed: its reason, from the last line of its stderr."""


def run_side(name, command, round_no):
    env = dict(os.environ, ROUND=str(round_no), SIDE=name)
    out = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        reason = (out.stderr.strip().splitlines() or [f"exited {out.returncode}"])[-1]
        raise Failed(f"{name}, round {round_no}: {reason}")
    lines = [line for line in out.stdout.strip().splitlines() if line.strip()]
    if not lines:
        raise SystemExit(f"ab.py: side {name!r}, round {round_no}: printed nothing")
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError:
        raise SystemExit(f"ab.py: side {name!r}, round {round_no}: last line is not JSON: {lines[-1]}")


def rounds(sides, count, record=None):
    """Runs every side `count` times, alternating the order; returns {name: [result...]} and
    the failures. A failed run is recorded and the rounds go on, so one bad run does not hide
    the others; but the comparison as a whole then fails."""
    results = {name: [] for name, _ in sides}
    failures = []
    for r in range(1, count + 1):
        order = sides if r % 2 == 1 else list(reversed(sides))
        for name, command in order:
            try:
                result = run_side(name, command, r)
            except Failed as e:
                failures.append(str(e))
                result = {"failed": str(e)}
            else:
                results[name].append(result)
            if record:
                with open(record, "a") as f:
                    f.write(json.dumps({"side": name, "round": r, **result}) + "\n")
    return results, failures


def fmt(v):
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.2f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def median_run(runs, key):
    """The run whose `key` is the median (the lower median for an even count), so the other
    figures of a row come from one real run rather than from different ones."""
    ordered = sorted(runs, key=lambda r: r[key])
    return ordered[(len(ordered) - 1) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--key", required=True, help="the figure the ratio is taken of")
    parser.add_argument("--side", action="append", required=True, help="NAME=COMMAND")
    parser.add_argument("--record", help="append every run as a JSON line to this file")
    parser.add_argument("--row", help="label of the Markdown row appended to --table")
    parser.add_argument("--table", help="Markdown file the row is appended to")
    parser.add_argument("--columns", help="comma-separated figures for the row (after --key)")
    args = parser.parse_args()
    sides = []
    for s in args.side:
        name, sep, command = s.partition("=")
        if not sep or not command:
            parser.error(f"--side {s!r}: expected NAME=COMMAND")
        sides.append((name, command))
    if len(sides) < 2:
        parser.error("at least two --side")

    results, failures = rounds(sides, args.rounds, args.record)
    names = [n for n, _ in sides]
    a, b = names[0], names[1]
    for name in names:
        if any(args.key not in r for r in results[name]):
            raise SystemExit(f"ab.py: side {name!r} did not report {args.key!r}")
    if failures:
        for f in failures:
            print(f"ab.py: FAILED: {f}", file=sys.stderr)
        if args.table:
            with open(args.table, "a") as f:
                f.write(f"| {args.row or ''} | FAILED: {failures[0]} |\n")
        medians = {f"{n}_{args.key}": statistics.median(r[args.key] for r in results[n])
                   for n in names if results[n]}
        print(json.dumps({"failed": failures, **medians}))
        sys.exit(1)
    figures = [k for k, v in results[a][0].items() if isinstance(v, (int, float))]

    print(f"{args.row or 'A/B'}: {args.rounds} rounds, alternating", file=sys.stderr)
    for name in names:
        cells = []
        for k in figures:
            values = [r[k] for r in results[name] if k in r]
            if values:
                cells.append(f"{k} {fmt(statistics.median(values))} ({fmt(min(values))}-{fmt(max(values))})")
        print(f"  {name:>10}: " + ", ".join(cells), file=sys.stderr)
    med = {n: statistics.median(r[args.key] for r in results[n]) for n in names}
    per_round = [ra[args.key] / rb[args.key] for ra, rb in zip(results[a], results[b])]
    ratio = med[a] / med[b]
    print(f"  {args.key} {a}/{b}: {ratio:.2f} (rounds: {' '.join(f'{x:.2f}' for x in per_round)})",
          file=sys.stderr)

    if args.table:
        columns = args.columns.split(",") if args.columns else [k for k in figures if k != args.key]
        cells = [args.row or ""]
        for name in (a, b):
            run = median_run(results[name], args.key)
            cells.append(fmt(run[args.key]))
            cells += [fmt(run[c]) if c in run else "" for c in columns]
        cells.append(f"{ratio:.2f}")
        cells.append(" ".join(f"{x:.2f}" for x in per_round))
        with open(args.table, "a") as f:
            f.write("| " + " | ".join(cells) + " |\n")
    # Further sides (a baseline build, say) against the first, round by round.
    others = {}
    for name in names[2:]:
        rounds_vs = [ra[args.key] / rn[args.key] for ra, rn in zip(results[a], results[name])]
        others[f"{a}/{name}"] = {"ratio": med[a] / med[name], "per_round": rounds_vs}
        print(f"  {args.key} {a}/{name}: {med[a] / med[name]:.2f} "
              f"(rounds: {' '.join(f'{x:.2f}' for x in rounds_vs)})", file=sys.stderr)
    print(json.dumps({"ratio": ratio, "per_round": per_round, "others": others,
                      **{f"{n}_{args.key}": med[n] for n in names}}))


if __name__ == "__main__":
    main()
