"""kill -9 trials: loads and re-ratings killed at random moments; what the store and the scratch folder hold
afterwards.

python benchmarks/kill9.py [--trials N] [--tenants T] [--calls C] [--seed S] [--workdir DIR]

Each trial copies a store holding the bundled catalog, starts `policyhistory load CATALOG --tenants --licenses`
(a new catalog version and T tenants' facts, one transaction) and kills it with SIGKILL after a random delay
up to the time an unkilled load takes; then `policyhistory verify` must pass and the store must hold all of the
load or none of it. Then it starts `policyhistory rerate` on C calls with --workdir, kills it the same way, and
counts the scratch folders left; the next run in that folder must remove them (their owner is gone).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate

CLI = [sys.executable, "-m", "policyhistory.cli"]
VERSION = """[[version]]
id = "kill9-test-version"
key = "kill9.test"
kind = "minute_rounding"
valid_from = 2020-01-01T00:00:00Z
recorded_at = 2020-01-01T00:00:00Z

[version.params]
unit_seconds = 60
mode = "up"

[version.source]
document = "kill9.md"
section = "s"
quote = "q"
"""


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    status = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    if status not in (0, 3):  # 3: some rows rejected (calls before anything was known), the rest rated
        raise SystemExit(f"{' '.join(command)} exited {status}")
    return time.perf_counter() - started


def killed_after(command: list[str], delay: float) -> tuple[bool, int]:
    """Run, SIGKILL after `delay` seconds; (True when it was still running, its pid)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=delay)
        return False, process.pid
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return True, process.pid


def counts(db: Path) -> tuple[int, int, int]:
    conn = sqlite3.connect(db)
    try:
        return tuple(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[return-value]
                     for table in ("policy_versions", "tenant_facts", "licenses"))
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--tenants", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="kill9-", dir=args.workdir))
    try:
        data = root / "data"
        generate(data, args.calls, args.tenants, args.seed)
        catalog = root / "kill9.toml"
        catalog.write_text(VERSION, encoding="utf-8")
        base = root / "base.db"
        subprocess.run([*CLI, "--db", str(base), "load"], check=True, stdout=subprocess.DEVNULL)  # the bundled catalog
        before = counts(base)
        load = ["load", str(catalog), "--tenants", str(data / "tenants.csv"), "--licenses", str(data / "licenses.csv")]
        probe = root / "probe.db"
        shutil.copy(base, probe)
        load_seconds = timed([*CLI, "--db", str(probe), *load])
        after = counts(probe)
        loaded = rated = verified = whole = half = 0
        for trial in range(args.trials):
            db = root / f"trial{trial}.db"
            shutil.copy(base, db)
            loaded += killed_after([*CLI, "--db", str(db), *load], rng.uniform(0.05, load_seconds))[0]
            ok = subprocess.run([*CLI, "--db", str(db), "verify"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL).returncode == 0
            verified += ok
            found = counts(db)
            whole += found in (before, after)
            half += found not in (before, after)
            db.unlink()
            for suffix in ("-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
        rerate = ["--db", str(probe), "rerate", str(data / "calls.csv"), "--known-at", "2025-01-01",
                  "--output", str(root / "out.jsonl")]
        scratch = root / "scratch"
        scratch.mkdir()
        rerate_seconds = timed([*CLI, *rerate, "--workdir", str(scratch)])
        left = 0
        for _ in range(args.trials):
            # Each run removes the folders of earlier killed runs as it starts: count each kill's own.
            killed, pid = killed_after([*CLI, *rerate, "--workdir", str(scratch)], rng.uniform(0.2, rerate_seconds))
            rated += killed
            left += sum(1 for _ in scratch.glob(f"policyhistory-rerate-{pid}-*"))
        stale_before = sum(1 for _ in scratch.glob("policyhistory-rerate-*"))
        subprocess.run([*CLI, "--db", str(probe), "rerate", str(data / "calls.csv"), "--known-at", "2025-01-01",
                        "--output", str(root / "small.jsonl"), "--workdir", str(scratch)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stale_after = sum(1 for _ in scratch.glob("policyhistory-rerate-*"))
        print(f"load of {after[1] - before[1]} tenant facts and {after[2] - before[2]} licenses + 1 version: "
              f"{load_seconds:.2f} s unkilled; {args.trials} trials, {loaded} killed mid-load")
        print(f"stores verified after the kill: {verified} of {args.trials}; all of the load or none: {whole}; "
              f"half loads: {half}")
        print(f"rerate of {args.calls} calls: {rerate_seconds:.2f} s unkilled; {args.trials} trials, {rated} killed "
              f"mid-run; scratch folders left by the kills: {left}")
        print(f"stale scratch folders before the next run: {stale_before}, after it: {stale_after}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
