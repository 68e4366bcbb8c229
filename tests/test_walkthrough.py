"""The README's auditor's walk-through gives what it shows: load, re-rate into results.db, query, replay."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from policyhistory.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
WALK = README.split("## An auditor's walk-through", 1)[1].split("\n## ", 1)[0]


def test_walkthrough_gives_what_the_readme_shows(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    db = ["--db", str(tmp_path / "audit.db")]
    results = tmp_path / "results.db"
    loaded = CliRunner().invoke(cli, [*db, "load", "--tenants", "examples/tenants.csv", "--licenses",
                                      "examples/licenses.csv", "--rates", "examples/ratecard.csv"])
    assert 0 == loaded.exit_code, loaded.output
    run = CliRunner().invoke(cli, [*db, "rerate", "examples/PSTN.calls.2022-06-30.csv", "examples/calls.csv",
                                   "--tenant", "contoso", "--known-at", "2026-11-23", "--output", str(results),
                                   "--summary-json", str(tmp_path / "summary.json"), "--report",
                                   str(tmp_path / "report.html")])
    assert 0 == run.exit_code, run.output
    for line in re.findall(r"^#    (  .*)$", WALK, re.M):  # the summary lines the walk-through quotes
        assert line in run.stderr.splitlines()
    query = re.search(r'sqlite3 -header -column results.db "(.*?)"', WALK, re.S).group(1)
    shown = [line[2:].split() for line in re.findall(r"^# 0000.*$", WALK, re.M)]
    rows = [[str(value) for value in row] for row in sqlite3.connect(results).execute(query)]
    assert shown == rows
    [run_id] = [row[0] for row in sqlite3.connect(results).execute("SELECT run_id FROM runs")]
    replay = CliRunner().invoke(cli, [*db, "rerate", "--replay", str(results), run_id])
    assert f"identical: 21 record(s) of run {run_id}" in replay.output
    assert "identical: 21 record(s) of run ..." in WALK
