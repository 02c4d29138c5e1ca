#!/usr/bin/python3
"""Prints every row of a bench-results.json side by side with its peer and ratio.

Usage:
    /usr/bin/python3 scripts/bench_table.py build/release/bench-results.json

`make bench` ends with this table (scripts/run_benchmarks.sh). A row's
`better` says which way is good: ratio >= 1 for `higher`, <= 1 for `lower`;
the last column says which side is better ("even" within 1%). Rows whose
peer is a floor (zmq_ipc_pingpong_*: the transport alone; zmq_openloop_echo_*:
the same open-loop schedule into a raw C++ echo process) or a target rate
are reference points: ours cannot beat a floor, only approach it.
"""

import json
import sys


def main(argv) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        rows = json.load(f)
    assert isinstance(rows, list), "bench-results.json holds a JSON array of rows"
    head = f"{'name':<24} {'metric':<26} {'unit':<7} {'ours':>14}  {'peer':<30} {'peer value':>14}  {'ratio':>8}  better"
    print(head)
    print("-" * len(head))
    for r in rows:
        ours_better = r["ratio"] >= 1 if r["better"] == "higher" else r["ratio"] <= 1
        side = "even" if abs(r["ratio"] - 1.0) < 0.01 else ("ours" if ours_better else "peer")
        print(f"{r['name']:<24} {r['metric']:<26} {r['unit']:<7} {r['ours']:>14,.1f}  {r['peer']:<30} "
              f"{r['peer_value']:>14,.1f}  {r['ratio']:>8.2f}  {r['better']}: {side}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
