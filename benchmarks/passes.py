"""Where a re-rating's time goes: its three passes, and classifying the numbers no earlier row dialed, timed
in-process around the run's own methods (private: this is a measuring tool, not a use of the library).

python benchmarks/passes.py DATA_DIR [--workdir DIR] [--classified-before]

DATA_DIR is a folder `benchmarks/run.py` generated (calls.csv, tenants.csv, licenses.csv). The records are
made but not written anywhere, so the figures leave out the output file (`run.py` times copying it).
`--classified-before` classifies every distinct number of the file before the run and lets the run look
them up in a dict: the run's time then shows what many distinct numbers cost besides phonenumbers' work.
Prints JSON.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import policyhistory
from policyhistory import _rerate
from policyhistory._rerate import Rerate, _Run

KNOWN_AT = policyhistory.to_instant("2026-11-23T00:00:00Z", "known_at")


def timed(seconds: dict[str, float], counts: dict[str, int], name: str) -> None:
    method: Callable[..., Any] = getattr(_Run, name)

    def timing(self: _Run, *args: Any) -> Any:
        began = time.perf_counter()
        try:
            return method(self, *args)
        finally:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - began
            counts[name] = counts.get(name, 0) + (len(args[0]) if name == "_classify" else 1)

    setattr(_Run, name, timing)


def classify_before(calls: Path) -> int:
    """Classify the file's distinct numbers now, and make the run look them up."""
    found: dict[str, object] = {}
    with calls.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            number = row["destination"]
            if number not in found:
                try:
                    found[number] = _rerate._classify_number(number)
                except policyhistory.PolicyHistoryError as error:
                    found[number] = error

    def look_up(number: str) -> object:
        result = found[number]
        if isinstance(result, Exception):
            raise result
        return result

    _rerate._classify_number = look_up  # type: ignore[assignment]
    return len(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", type=Path)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--classified-before", action="store_true")
    args = parser.parse_args()
    calls = args.data / "calls.csv"
    store = policyhistory.open()
    store.load_tenant_facts(args.data / "tenants.csv", args.data / "licenses.csv")
    numbers = classify_before(calls) if args.classified_before else None
    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}
    for name in ("_read", "_classify", "_draw"):
        timed(seconds, counts, name)
    gc.freeze()  # as the CLI does
    gc.set_threshold(100_000, 50, 100)
    run = Rerate(store, [calls], known_at=KNOWN_AT, workdir=args.workdir)
    began = time.perf_counter()
    records = sum(1 for _ in run.records_json())
    total = time.perf_counter() - began
    read, draw = seconds["_read"], seconds["_draw"]
    print(json.dumps({
        "records": records, "total_s": round(total, 2),
        "read_s": round(read, 2), "classify_s": round(seconds.get("_classify", 0.0), 2),
        "classified_in_run": counts.get("_classify", 0), "classified_before": numbers,
        "draw_s": round(draw, 2), "write_s": round(total - read - draw, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
