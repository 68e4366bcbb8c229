"""Reproducible runs: the manifest (runs table, --summary-json), records that carry known_at and run_id, and
rerate --replay, which says whether a recorded run's records come out identical."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import sqlite_utils
from click.testing import CliRunner

import policyhistory
from policyhistory.cli import cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FACTS = ["--tenants", str(EXAMPLES / "tenants.csv"), "--licenses", str(EXAMPLES / "licenses.csv")]


def invoke(tmp_path, *args):
    return CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), *args])


def recorded_run(tmp_path, *extra):
    calls = tmp_path / "PSTN.calls.csv"
    shutil.copy(EXAMPLES / "PSTN.calls.2022-06-30.csv", calls)
    results = tmp_path / "results.db"
    summary = tmp_path / "summary.json"
    result = invoke(tmp_path, "rerate", str(calls), "--tenant", "contoso", *FACTS, "--output", str(results),
                    "--summary-json", str(summary), *extra)
    assert 0 == result.exit_code, result.output
    [run] = list(sqlite_utils.Database(results).query("SELECT * FROM runs"))
    return calls, results, run, json.loads(summary.read_text(encoding="utf-8"))


def test_manifest_names_inputs_store_state_knowledge_and_counts(tmp_path):
    calls, _, run, summary = recorded_run(tmp_path, "--known-at", "2026-11-23")
    manifest = json.loads(run["manifest"])
    assert manifest == summary["manifest"]
    assert (policyhistory.__name__, "2026-11-23T00:00:00Z", None) == (manifest["tool"], manifest["known_at"],
                                                                      manifest["as_of"])
    assert manifest["tool_version"] and manifest["started_at"] <= manifest["ended_at"]
    calls_file = manifest["inputs"][0]
    assert ("calls", str(calls), calls.stat().st_size, hashlib.sha256(calls.read_bytes()).hexdigest()) == (
        calls_file["role"], calls_file["path"], calls_file["size"], calls_file["sha256"])
    assert ["calls", "tenants", "licenses"] == [item["role"] for item in manifest["inputs"]]
    store = policyhistory.open(tmp_path / "p.db")
    heads = manifest["chain_heads"]
    assert (80, 12) == (heads["policy_versions"]["rows"], heads["licenses"]["rows"])
    last = store.db.execute("SELECT row_hash FROM licenses ORDER BY seq DESC LIMIT 1").fetchone()[0]
    assert last == heads["licenses"]["head"]
    assert 64 == len(manifest["store_digest"])
    assert {"rows": 18, "rated": 18, "rejected": 0, "changed": 5, "written": 18} == manifest["counts"]
    assert "contoso" == manifest["options"]["tenant"]
    # Each record carries what it needs to be traced to its run.
    rows = list(sqlite_utils.Database(tmp_path / "results.db").query("SELECT DISTINCT known_at, run_id FROM ratings"))
    assert [{"known_at": "2026-11-23T00:00:00Z", "run_id": run["run_id"]}] == rows


def test_replay_of_an_untouched_run_is_identical(tmp_path):
    _, results, run, _ = recorded_run(tmp_path)  # known_at now: the manifest keeps the instant
    replayed = invoke(tmp_path, "rerate", "--replay", str(results), run["run_id"])
    assert 0 == replayed.exit_code, replayed.output
    assert f"identical: 18 record(s) of run {run['run_id']} re-rated to the same values" in replayed.stdout


def test_replay_says_what_differs_and_exits_1(tmp_path):
    _, results, run, _ = recorded_run(tmp_path, "--known-at", "2026-11-23")
    # Prices loaded after the run change the recomputed charges of the calls that take credit minutes.
    loaded = invoke(tmp_path, "load", "--rates", str(EXAMPLES / "ratecard.csv"))
    assert 0 == loaded.exit_code, loaded.output
    replayed = invoke(tmp_path, "rerate", "--replay", str(results), run["run_id"])
    assert 1 == replayed.exit_code
    assert f"different: 4 of 18 record(s) of run {run['run_id']} differ" in replayed.stderr
    assert "note: the store changed since the run (rate_cards)" in replayed.stderr
    assert "charge: None -> 0.4, charge_currency: None -> 'USD', charge_difference: None -> 0.08" in replayed.stderr


def test_replay_of_an_unknown_run_or_a_changed_input(tmp_path):
    calls, results, run, _ = recorded_run(tmp_path, "--known-at", "2026-11-23", "--changed-only")
    unknown = invoke(tmp_path, "rerate", "--replay", str(results), "nope")
    # An unusable argument, exit 2 (1 is "different"); a file that is not a results database alike.
    assert 2 == unknown.exit_code and f"has no run 'nope' (its latest runs: {run['run_id']})" in unknown.output
    not_results = invoke(tmp_path, "rerate", "--replay", str(calls), run["run_id"])
    assert 2 == not_results.exit_code and "is not a results database" in not_results.output
    assert "--output results.db" in not_results.output and "give another --output" not in not_results.output
    # Only the changed calls were written; the replay writes and compares the same subset.
    assert 0 == invoke(tmp_path, "rerate", "--replay", str(results), run["run_id"]).exit_code
    text = calls.read_text(encoding="utf-8").replace("2018-07-01T09:00:00Z,2018-07-01T09:15:00Z,900",
                                                     "2018-07-01T09:00:00Z,2018-07-01T09:15:00Z,960")
    calls.write_text(text, encoding="utf-8")
    changed = invoke(tmp_path, "rerate", "--replay", str(results), run["run_id"])
    assert 1 == changed.exit_code
    assert f"note: {calls} changed since the run" in changed.stderr
    assert "billable_minutes: 15 -> 16" in changed.stderr
