"""With workers, the output is merged range by range in the workers and copied into the output file by the
client: the records are the same bytes as one process's merge, for a run of several ranges with rows
rejected while reading (the client's own run) at the ranges' edges, into a file, a pipe and a filter."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from policyhistory._merge import BLOCK_ROWS

from .test_rerate import FACTS, write_synthetic

ROWS = 2 * BLOCK_ROWS + 5_000
BAD_AT = (0, BLOCK_ROWS - 1, BLOCK_ROWS, 2 * BLOCK_ROWS + 1)
"""Rows (counted from 0) replaced by one that fails reading: the first, and on both sides of a range's edge."""


def _calls(tmp_path: Path) -> Path:
    path = tmp_path / "calls.csv"
    write_synthetic(path, ROWS)
    lines = path.read_text(encoding="utf-8").split("\n")
    for row in BAD_AT:
        fields = lines[1 + row].split(",")
        fields[3] = "soon"  # duration_seconds
        lines[1 + row] = ",".join(fields)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _rerate(tmp_path: Path, calls: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "policyhistory.cli", "--db", str(tmp_path / "p.db"), "rerate",
                           str(calls), *FACTS, "--known-at", "2026-11-23", "--workdir", str(tmp_path), *args],
                          capture_output=True, text=True, check=False)
    assert 3 == done.returncode, done.stderr  # rows were rejected
    return done.stdout


def _without_run_id(text: str) -> str:
    return re.sub(r"\d{8}T\d{6}Z-[0-9a-f]{8}", "RUN", text)  # the run id, in JSON and CSV alike


def test_merge_in_workers_gives_one_processs_bytes_in_a_file_a_pipe_and_a_filter(tmp_path):
    calls = _calls(tmp_path)
    outputs = {}
    for workers in ("1", "2"):
        out = tmp_path / f"out-{workers}.jsonl"
        _rerate(tmp_path, calls, "--workers", workers, "--output", str(out))
        outputs[workers] = _without_run_id(out.read_text(encoding="utf-8"))
    one = outputs["1"].split("\n")
    assert ROWS + 1 == len(one) and "" == one[-1]
    assert [f'"line": {row + 2},' in one[row] and '"error"' in one[row] for row in BAD_AT] == [True] * len(BAD_AT)
    assert outputs["1"] == outputs["2"]
    piped = _without_run_id(_rerate(tmp_path, calls, "--workers", "2"))  # stdout is a pipe: no kernel copy
    assert outputs["1"] == piped
    changed = [_without_run_id(_rerate(tmp_path, calls, "--workers", workers, "--changed-only", "--format", "csv"))
               for workers in ("1", "2")]
    assert changed[0] == changed[1]
    assert len(BAD_AT) + 1 <= len(changed[0].splitlines()) < ROWS
