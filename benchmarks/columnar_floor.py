"""What a columnar engine would cost for the parts of a re-rating that need no rules, on one core.

Not part of the project (polars is not a dependency): `pip install polars`, then
python benchmarks/columnar_floor.py CALLS.csv [--workdir DIR]

Times, with polars on one thread: reading the CSV as text columns, parsing the start instants, finding the
distinct call kinds and destinations, sorting by (tenant, start, call id), and building and writing a
record of about the size `rerate` writes (550 bytes) for every row. The sum is a floor for a rewrite of the
bulk path in such an engine, before any rule, pool or check runs; benchmarks/README.md compares it with the
4 x CSV-read target.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ["POLARS_MAX_THREADS"] = "1"  # read before polars is imported: the target is one core

import polars as pl

RECORD_FILLER = "x" * 400  # the record's keys and per-plan parts, about 400 of its 550 bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("calls", type=Path)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp"))
    args = parser.parse_args()
    steps: dict[str, float] = {}
    began = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal began
        now = time.perf_counter()
        steps[name] = round(now - began, 2)
        began = now

    frame = pl.read_csv(args.calls, infer_schema=False)
    lap("read_csv")
    frame = frame.with_columns(
        pl.col("start").str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%SZ", strict=False).alias("instant"),
        pl.col("duration_seconds").cast(pl.Int64, strict=False).alias("seconds"),
        pl.int_range(pl.len()).alias("row"))
    lap("parse_start_and_duration")
    kinds = frame.select("call_type", "organizer_usage_location", "organizer_licenses").unique().height
    destinations = frame.select("destination").unique().height
    lap("distinct_kinds_and_destinations")
    frame.sort(["tenant_id", "instant", "call_id"])
    lap("sort")
    records = frame.select(pl.concat_str([
        pl.lit('{"file": "calls.csv", "line": '), pl.col("row").cast(pl.Utf8), pl.lit(', "call_id": "'),
        pl.col("call_id"), pl.lit('", "tenant_id": "'), pl.col("tenant_id"), pl.lit('", "start": "'),
        pl.col("start"), pl.lit(f'", "{RECORD_FILLER}"}}')]).alias("record"))
    lap("build_records")
    out = args.workdir / "columnar-floor.jsonl"
    records.write_csv(out, include_header=False, quote_style="never")
    lap("write_records")
    out.unlink()
    print(json.dumps({"polars": pl.__version__, "rows": frame.height, "kinds": kinds,
                      "destinations": destinations, "seconds": steps, "total": round(sum(steps.values()), 2)},
                     indent=2))


if __name__ == "__main__":
    main()
