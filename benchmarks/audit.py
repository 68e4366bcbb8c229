"""What the audit fields cost per record (issue 16), side by side in one process on one file.

python benchmarks/audit.py CALLS.csv --tenants T.csv --licenses L.csv [--rates RATES.csv] [--repeat 3]

Each repeat times, in this order: the engine's records as JSON text (`records_json`, what `rerate` wrote
before the audit fields), the same records parsed (`records`), parsed and passed through `Audit.add` with no
rate card, the same with the rate card, and the last encoded back to JSON text (what `rerate --format jsonl`
now does). Medians are printed with each step's ratio to the first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import policyhistory
from policyhistory._ratecards import RateCard


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("calls", type=Path)
    parser.add_argument("--tenants", type=Path, required=True)
    parser.add_argument("--licenses", type=Path, required=True)
    parser.add_argument("--rates", type=Path, default=Path(__file__).resolve().parent.parent / "examples" /
                        "ratecard.csv")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    store = policyhistory.open()
    store.load_tenant_facts(args.tenants, args.licenses)
    store.load_rates(args.rates)
    known = "2026-11-23"
    encode = json.JSONEncoder(check_circular=False).encode

    def run() -> policyhistory.Rerate:
        return policyhistory.Rerate(store, [args.calls], known_at=known)

    def audited(rates: RateCard, then_encode: bool = False) -> None:
        audit = policyhistory.Audit(rates, known_at=known, run_id="bench")
        for record in run().records():
            audit.add(record)
            if then_encode:
                encode(record)

    steps: dict[str, Callable[[], None]] = {
        "records_json (text, no audit)": lambda: sum(1 for _ in run().records_json()),  # type: ignore[func-returns-value]
        "records (parsed)": lambda: sum(1 for _ in run().records()),  # type: ignore[func-returns-value]
        "+ Audit.add, no rate card": lambda: audited(RateCard([])),
        "+ Audit.add, rate card": lambda: audited(store.rate_cards()),
        "+ Audit.add, rate card, encoded": lambda: audited(store.rate_cards(), True),
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeat):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    first = statistics.median(next(iter(times.values())))
    for name, measured in times.items():
        median = statistics.median(measured)
        print(f"{name:36} median {median:6.2f} s  ({median / first:4.2f} x)  runs: "
              + ", ".join(f"{t:.2f}" for t in measured))


if __name__ == "__main__":
    main()
