"""Runs the fuzz corpus and prints a table of cases per area x outcome, then every failure.

    python tests/fuzz/run.py                      # everything, 2 processes at a time
    python tests/fuzz/run.py --area kernels --area linalg
    python tests/fuzz/run.py --case rbf --verbose # cases whose id contains "rbf", with their code
    python tests/fuzz/run.py --quick --table      # pytest's selection; only the table
    python -m tests.fuzz.run --markdown OUT.md    # also write table and failures to a file

Exit status 1 if any case's outcome is not one it accepts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for python -m tests.fuzz.run

import corpus  # noqa: E402
import harness  # noqa: E402


def _progress(done: list, total: int):
    if not sys.stderr.isatty():
        return None

    def report(result: harness.Result) -> None:
        done.append(result)
        mark = "." if result.passed else "F"
        print(f"\r[{len(done)}/{total}] {mark} {result.case.id[:60]:<60}", end="", file=sys.stderr, flush=True)
    return report


def ctrl_c_latencies(results: list) -> list:
    """(case id, measured latency or the failure) for the Ctrl-C scenarios."""
    rows = []
    for r in results:
        if r.case.area == "ctrl_c":
            rows.append((r.case.id, r.detail if r.outcome != "ok" else r.detail.replace("'", "")))
    return rows


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the ntkfast fuzz corpus, each case in its own process.")
    parser.add_argument("--area", action="append", help="only this area (repeatable)")
    parser.add_argument("--case", action="append", help="only cases whose id contains this (repeatable)")
    parser.add_argument("--jobs", type=int, default=2, help="processes at a time (default 2)")
    parser.add_argument("--quick", action="store_true", help="the pytest selection (two short Ctrl-C calls)")
    parser.add_argument("--table", action="store_true", help="print only the table, not the failures")
    parser.add_argument("--verbose", action="store_true", help="show each failure's code and output tail")
    parser.add_argument("--list", action="store_true", help="list the selected cases and exit")
    parser.add_argument("--markdown", help="also write the table and the failures to this file")
    args = parser.parse_args(argv)

    cases = corpus.select(corpus.all_cases(quick=args.quick), args.area, args.case)
    if args.list:
        for case in cases:
            print(case.id)
        return 0
    if not cases:
        print("no case matches", file=sys.stderr)
        return 2
    start = time.perf_counter()
    results = harness.run_cases(cases, jobs=args.jobs, on_result=_progress([], len(cases)))
    print(f"\r{len(cases)} cases in {time.perf_counter() - start:.0f} s{' ' * 60}", file=sys.stderr)

    table = harness.table(results)
    print(table)
    latencies = ctrl_c_latencies(results)
    if latencies:
        print("\nCtrl-C:\n" + "\n".join(f"- {name}: {what}" for name, what in latencies))
    failures = harness.failure_report(results, verbose=args.verbose)
    if failures and not args.table:
        print("\nFailures:\n" + failures)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n\n## Failures\n\n" + harness.failure_report(results, verbose=True) + "\n")
    return 1 if any(not r.passed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
