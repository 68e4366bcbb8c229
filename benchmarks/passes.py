"""Where a re-rating's time goes: reading into shards, classifying the distinct numbers, rating the shards,
merging, timed in-process around the run's own functions (private: this is a measuring tool, not a use of
the library).

python benchmarks/passes.py DATA_DIR [--workdir DIR] [--workers N] [--db STORE] [--calls FILE]

DATA_DIR is a folder `benchmarks/run.py` generated (calls.csv, tenants.csv, licenses.csv). The records are
made but not written anywhere, so the figures leave out the output file (`run.py` times copying it). With
`--db`, a store file whose classification cache a second run uses. `--calls`: the call file in DATA_DIR
(default calls.csv; calls.jsonl, say, for the same calls as JSON Lines). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pendulum

import policyhistory
from policyhistory import Rerate, _executors, _reading, _rerate

KNOWN_AT = pendulum.datetime(2026, 11, 23, tz="UTC")


def timed(seconds: dict[str, float], owner: Any, name: str, label: str) -> None:
    function: Callable[..., Any] = getattr(owner, name)

    def timing(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - began

    setattr(owner, name, timing)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", type=Path)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--calls", default="calls.csv")
    args = parser.parse_args()
    calls = args.data / args.calls
    store = policyhistory.open(args.db)
    store.load_tenant_facts(args.data / "tenants.csv", args.data / "licenses.csv")
    seconds: dict[str, float] = {}
    timed(seconds, _reading.ShardReading, "read", "read_s")
    timed(seconds, _rerate, "classify_numbers", "classify_s")
    for executor in (_executors.InProcess, _executors.Processes):
        timed(seconds, executor, "rate", "rate_s")
    run = Rerate(store, [calls], known_at=KNOWN_AT, workdir=args.workdir, workers=args.workers)
    began = time.perf_counter()
    records = sum(1 for _ in run.records_json())
    total = time.perf_counter() - began
    merge = total - sum(seconds.values())
    print(json.dumps({"records": records, "total_s": round(total, 2),
                      **{key: round(value, 2) for key, value in seconds.items()},
                      "merge_and_rest_s": round(merge, 2)}, indent=2))


if __name__ == "__main__":
    main()
