"""Measure re-rating speed on one synthetic file, in one run: bare CSV read, end-to-end `policyhistory
rerate` (a subprocess, as a user runs it) a first time on a fresh store and a second time (numbers'
classifications cached), with --workers 1, --workers 2 and on a Dask LocalCluster of 2 worker processes, and a
naive baseline resolving policies with one SQL query per call; also what merely copying the output file costs
(a floor for writing it). Prints JSON: each repeat's figures, and their medians.

Each repeat measures the CSV read, the re-rating and the baseline one after the other, so that the ratios
compare figures taken under the same load: this machine's speed drifts by up to a third over an hour.

python benchmarks/run.py [--calls N] [--baseline-sample M] [--workdir DIR] [--repeat R] [--numbers-per-base K]
    [--no-dask] [--no-naive]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import policyhistory
from policyhistory import PolicySet, PoolState, Rating, rate_call
from policyhistory._layouts import own_row
from policyhistory._store import _version_from_row

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import generate  # noqa: E402


def bare_read(path: Path) -> tuple[int, float]:
    os.sync()
    began = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as handle:
        rows = sum(1 for _ in csv.DictReader(handle))
    return rows, time.perf_counter() - began


def load_facts(data: Path, workdir: Path) -> Path:
    """A fresh store with the file's tenant facts loaded (not timed): the first run classifies every number."""
    db = workdir / "bench.db"
    db.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "policyhistory.cli", "--db", str(db), "load", "--tenants",
                    str(data / "tenants.csv"), "--licenses", str(data / "licenses.csv")], check=True,
                   capture_output=True)
    return db


GNU_TIME = shutil.which("time", path="/usr/bin:/bin")


def end_to_end(data: Path, workdir: Path, db: Path, *options: str) -> tuple[float, float, float, int, str]:
    """(wall seconds, CPU seconds of it and its workers, peak MB of the command's processes, exit status, first summary
    line) of `policyhistory rerate` with `options` (--workers N, --dask ADDRESS)."""
    timed = [sys.executable, "-m", "policyhistory.cli", "--db", str(db), "rerate", str(data / "calls.csv"),
             "--output", str(workdir / "out.jsonl"), "--workdir", str(workdir), *options]
    # Not the file system's leftovers: truncating the last run's 600 MB output, or writing back the dirty
    # pages of the files written before, took up to a second of the timed run.
    (workdir / "out.jsonl").unlink(missing_ok=True)
    os.sync()
    # The peak is GNU time's %M where it is installed: this process's ru_maxrss of its children is the largest
    # child's so far, and Linux carries a process's ru_maxrss over an exec, so that each child would also
    # report this process's own size (GNU time's own is a few MB).
    peak_file = workdir / "peak.txt"
    command = [GNU_TIME, "-f", "%M", "-o", str(peak_file), *timed] if GNU_TIME else timed
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = result.stderr.splitlines()[0] if result.stderr else ""
    peak = int(peak_file.read_text().split()[-1]) / 1024 if GNU_TIME else after.ru_maxrss / 1024
    return elapsed, cpu, peak, result.returncode, summary


def copy_output(workdir: Path) -> tuple[int, float]:
    """(bytes, seconds) to copy the re-rating's output file in Python: less than writing it can cost."""
    source, target = workdir / "out.jsonl", workdir / "out-copy.jsonl"
    began = time.perf_counter()
    with source.open("rb") as reader, target.open("wb") as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)
    elapsed = time.perf_counter() - began
    size = target.stat().st_size
    target.unlink()
    return size, elapsed


NAIVE_QUERY = """
SELECT * FROM policy_versions AS v
WHERE v.recorded_at <= :known AND v.valid_from <= :at AND (v.valid_to IS NULL OR v.valid_to > :at)
  AND NOT EXISTS (
    SELECT 1 FROM policy_versions AS w
    WHERE w.key = v.key AND w.recorded_at <= :known AND w.valid_from <= :at
      AND (w.valid_to IS NULL OR w.valid_to > :at) AND (w.recorded_at, w.id) > (v.recorded_at, v.id))
"""


def naive_baseline(data: Path, sample: int) -> tuple[int, float]:
    """The same evaluator, but each call's policies come from one SQL query instead of the timeline."""
    store = policyhistory.open()
    store.load_tenant_facts(data / "tenants.csv", data / "licenses.csv")
    known = policyhistory.format_instant(store.now())
    state = PoolState()
    rated = 0
    began = time.perf_counter()
    with (data / "calls.csv").open(encoding="utf-8", newline="") as handle:
        for index, raw in enumerate(csv.DictReader(handle)):
            if index >= sample:
                break
            try:
                call = policyhistory.Call(**own_row(raw).fields)
                at = policyhistory.format_instant(call.start)
                rows = store.db.query(NAIVE_QUERY, {"known": known, "at": at})
                policies = PolicySet(tuple(_version_from_row(row) for row in rows if row["in_force"]))
                rating: Rating = rate_call(call, policies, store.tenant_index.snapshot(call.tenant_id, call.start),
                                           state.used, known_at=store.now())
                state.apply(call.tenant_id, rating)
                rated += 1
            except policyhistory.PolicyHistoryError:
                rated += 1
    return rated, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=2_000)
    parser.add_argument("--baseline-sample", type=int, default=20_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/policyhistory-bench"))
    parser.add_argument("--numbers-per-base", type=int, default=10_000,
                        help="distinct dialed numbers per base number, up to 10,000 (the default: about 200,000 "
                             "distinct numbers in 1,000,000 calls); 1: the same 21 numbers again and again")
    parser.add_argument("--repeat", type=int, default=3, help="measure everything this many times, interleaved")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask LocalCluster (2 worker processes)")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive per-call SQL baseline")
    args = parser.parse_args()
    suffix = f"-n{args.numbers_per_base}" if args.numbers_per_base > 1 else ""
    data = args.workdir / f"data-{args.calls}{suffix}"
    if not (data / "calls.csv").exists():
        generate(data, args.calls, args.tenants, seed=20181, numbers_per_base=args.numbers_per_base)
    runs = [measure(data, args.workdir, args.baseline_sample, not args.no_dask, args.no_naive)
            for _ in range(args.repeat)]
    fixed = ("calls", "rerate_exit", "rerate_peak_mb", "naive_sample")
    medians = {key: statistics.median(run[key] for run in runs) for key, value in runs[0].items()
               if isinstance(value, (int, float)) and key not in fixed}
    figures = {"python": platform.python_version(), "machine": platform.machine(), "calls": runs[0]["calls"],
               "repeats": runs, "median": {key: round(value, 2) for key, value in medians.items()},
               "rerate_peak_mb": max(run["rerate_peak_mb"] for run in runs)}
    print(json.dumps(figures, indent=2))


def on_local_cluster(data: Path, workdir: Path, db: Path) -> float:
    """Seconds of a run on a Dask LocalCluster of 2 worker processes, started before the timing and closed
    after it: left running beside the other runs, its four idle processes took about 2 s of a --workers 2
    run's 16 s (both cores busy), though none of the --workers 1 run's."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        on_dask, _, _, _, _ = end_to_end(data, workdir, db, "--dask", cluster.scheduler_address)
    return on_dask


def measure(data: Path, workdir: Path, baseline_sample: int, dask: bool, skip_naive: bool) -> dict[str, object]:
    """One repeat, every figure a minute or so from the others: the bare read; a first run on a fresh store
    (every number classified) and a second (classifications cached in the store), both --workers 1; then
    --workers 2 and the Dask cluster (cached); the naive baseline."""
    rows, read_seconds = bare_read(data / "calls.csv")
    db = load_facts(data, workdir)
    first, first_cpu, _, status, summary = end_to_end(data, workdir, db, "--workers", "1")
    output_bytes, copy_seconds = copy_output(workdir)
    elapsed, cpu, peak_mb, _, _ = end_to_end(data, workdir, db, "--workers", "1")
    two, two_cpu, _, _, _ = end_to_end(data, workdir, db, "--workers", "2")
    figures: dict[str, object] = {
        "calls": rows, "csv_read_s": round(read_seconds, 2), "rerate_s": round(elapsed, 2),
        "rerate_cpu_s": round(cpu, 2), "rerate_calls_per_s": round(rows / elapsed), "rerate_exit": status,
        "rerate_peak_mb": round(peak_mb), "rerate_summary": summary,
        "first_run_s": round(first, 2), "first_run_cpu_s": round(first_cpu, 2),
        "second_run_faster": round(1 - elapsed / first, 3),
        "workers_2_s": round(two, 2), "workers_2_cpu_s": round(two_cpu, 2),
        "workers_2_speedup": round(elapsed / two, 2),
        "output_mb": round(output_bytes / 1e6), "output_copy_s": round(copy_seconds, 2),
        "x_csv_read": round(elapsed / read_seconds, 1),
    }
    if dask:
        on_dask = on_local_cluster(data, workdir, db)
        figures.update(dask_s=round(on_dask, 2), dask_speedup=round(elapsed / on_dask, 2))
    if not skip_naive:
        sampled, naive_seconds = naive_baseline(data, baseline_sample)
        naive_rate = sampled / naive_seconds
        figures.update(naive_sample=sampled, naive_calls_per_s=round(naive_rate),
                       speedup_vs_naive=round(rows / elapsed / naive_rate, 1))
    return figures

if __name__ == "__main__":
    main()
