"""Results you can query: --changed-only, a SQLite results database (several runs, told apart by run id) and
Parquet, each read back and compared with the JSON Lines records of the same run."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import polars as pl
import sqlite_utils
from click.testing import CliRunner

from policyhistory.cli import cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
INPUTS = [str(EXAMPLES / "PSTN.calls.2022-06-30.csv"), str(EXAMPLES / "calls.csv"), "--tenant", "contoso",
          "--tenants", str(EXAMPLES / "tenants.csv"), "--licenses", str(EXAMPLES / "licenses.csv"),
          "--known-at", "2026-11-23"]
LISTS = ("policy_versions", "alerts", "warnings")


def invoke(tmp_path, *args):
    return CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), *args])


def jsonl_records(tmp_path, *args):
    out = tmp_path / "out.jsonl"
    result = invoke(tmp_path, "rerate", *INPUTS, "--output", str(out), *args)
    assert 0 == result.exit_code, result.output
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def flattened(record):
    """A JSON Lines record as a results row: billed flattened into billed_* columns."""
    row = {k: v for k, v in record.items() if k != "billed"}
    for name in ("outcome", "minutes", "charge", "currency"):
        row[f"billed_{name}"] = (record.get("billed") or {}).get(name)
    return row


def test_results_changed_only_keeps_the_changed_calls(tmp_path):
    everything = jsonl_records(tmp_path)
    changed = jsonl_records(tmp_path, "--changed-only")
    assert 21 == len(everything)
    drop = ("run_id",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in everything if r.get("changed")] == [
        {k: v for k, v in r.items() if k not in drop} for r in changed]
    assert 7 == len(changed)


def test_results_sqlite_read_back_equals_the_jsonl_records(tmp_path):
    results = tmp_path / "results.db"
    first = invoke(tmp_path, "rerate", *INPUTS, "--output", str(results))
    assert 0 == first.exit_code, first.output
    assert "results (run " in first.stderr
    db = sqlite_utils.Database(results)
    [run] = list(db.query("SELECT * FROM runs"))
    rows = list(db.query("SELECT * FROM ratings WHERE run_id = ? ORDER BY seq", [run["run_id"]]))
    expected = [flattened(r) for r in jsonl_records(tmp_path)]
    assert len(expected) == len(rows) == 21
    for got, want in zip(rows, expected, strict=True):
        for name, value in want.items():
            stored = got[name]
            if name in LISTS:
                stored = json.loads(stored)
            elif name == "changed":
                stored = None if stored is None else bool(stored)
            elif name == "run_id":
                continue  # two runs, two ids
            assert value == stored, (name, want["call_id"])
    indexed = {tuple(index.columns) for index in db["ratings"].indexes}
    assert {("call_id",), ("tenant_id",), ("start",), ("changed",)} <= indexed
    assert (21, 21, 0, 7) == (run["rows"], run["rated"], run["rejected"], run["changed"])
    # A second run goes into the same file, told apart by its run id; SQL answers the auditor's questions.
    second = invoke(tmp_path, "rerate", *INPUTS, "--output", str(results), "--changed-only")
    assert 0 == second.exit_code, second.output
    counts = dict(sqlite3.connect(results).execute("SELECT run_id, count(*) FROM ratings GROUP BY run_id"))
    runs = {r["run_id"]: r["written"] for r in db.query("SELECT run_id, written FROM runs")}
    assert 2 == len(runs) and runs == counts and 21 == counts[run["run_id"]]
    assert {21, 7} == set(counts.values())
    refund = db.execute("SELECT sum(difference) FROM money_totals WHERE run_id = ? AND currency = 'USD'",
                        [run["run_id"]]).fetchone()[0]
    assert 2.64 == round(refund, 6)


def test_results_sqlite_a_failed_run_leaves_the_earlier_runs_and_nothing_of_its_own(tmp_path, monkeypatch):
    from policyhistory._merge import OutputBlock
    from policyhistory._rerate import Rerate

    results = tmp_path / "results.db"
    assert 0 == invoke(tmp_path, "rerate", *INPUTS, "--output", str(results)).exit_code
    original = Rerate.audited_blocks

    def losing_one(self, audit, progress=None):  # every rating is inserted, then the count check fails
        blocks = [OutputBlock(block.flags, texts=block.lines()) for block in original(self, audit, progress)]
        blocks[-1] = OutputBlock(blocks[-1].flags[:-1], texts=blocks[-1].lines()[:-1])
        yield from blocks

    monkeypatch.setattr(Rerate, "audited_blocks", losing_one)
    failed = invoke(tmp_path, "rerate", *INPUTS, "--output", str(results))
    assert 1 == failed.exit_code and "wrote 20 of 21 input rows" in failed.output
    db = sqlite3.connect(results)
    assert [(21, 1)] == db.execute("SELECT count(*), count(DISTINCT run_id) FROM ratings").fetchall()
    assert 1 == db.execute("SELECT count(*) FROM runs").fetchone()[0]
    assert 0 == db.execute("SELECT count(*) FROM ratings WHERE run_id NOT IN (SELECT run_id FROM runs)").fetchone()[0]


def test_results_sqlite_refuses_a_file_that_is_not_a_results_database(tmp_path):
    itself = invoke(tmp_path, "rerate", *INPUTS, "--output", str(tmp_path / "p.db"))  # the store of this run
    assert 2 == itself.exit_code and "is the store: writing it would destroy it" in itself.output
    other = tmp_path / "other.db"
    assert 0 == CliRunner().invoke(cli, ["--db", str(other), "policies", "--as-of", "2020-01-01"]).exit_code
    result = invoke(tmp_path, "rerate", *INPUTS, "--output", str(other))  # another store
    assert 2 == result.exit_code
    assert "is not a results database: it holds other tables" in result.output
    assert "ratings" not in sqlite_utils.Database(other).table_names()


def test_results_parquet_read_back_equals_the_jsonl_records(tmp_path):
    out = tmp_path / "results.parquet"
    result = invoke(tmp_path, "rerate", *INPUTS, "--output", str(out))
    assert 0 == result.exit_code, result.output
    frame = pl.read_parquet(out)
    expected = [flattened(r) for r in jsonl_records(tmp_path)]
    assert 21 == frame.height
    for got, want in zip(frame.iter_rows(named=True), expected, strict=True):
        assert {k: v for k, v in want.items() if k != "run_id"} == {
            k: got[k] for k in want if k != "run_id"}
    manifest = json.loads(pl.read_parquet_metadata(out)["policyhistory.manifest"])
    assert ({"rows": 21, "rated": 21, "rejected": 0, "changed": 7, "written": 21}, "2026-11-23T00:00:00Z") == (
        manifest["counts"], manifest["known_at"])
    assert frame["run_id"][0] == manifest["run_id"]


def test_results_sqlite_and_parquet_need_an_output_file(tmp_path):
    result = invoke(tmp_path, "rerate", *INPUTS, "--format", "parquet")
    assert 2 == result.exit_code and "--format parquet writes a file: give --output" in result.output


def test_results_parquet_in_several_parts_reads_back_whole(tmp_path, monkeypatch):
    monkeypatch.setattr("policyhistory._results._PARQUET_PART", 5)  # 21 records: 5 parts streamed into one file
    out = tmp_path / "results.parquet"
    assert 0 == invoke(tmp_path, "rerate", *INPUTS, "--output", str(out)).exit_code
    frame = pl.read_parquet(out)
    assert list(range(21)) == frame["seq"].to_list()
    assert [r["call_id"] for r in jsonl_records(tmp_path)] == frame["call_id"].to_list()


def test_results_an_output_never_overwrites_an_input(tmp_path):
    calls = tmp_path / "calls.csv"
    calls.write_bytes((EXAMPLES / "calls.csv").read_bytes())
    for option in ("--output", "--report", "--summary-json"):
        result = invoke(tmp_path, "rerate", str(calls), *INPUTS[4:], option, str(calls))
        assert 2 == result.exit_code and "writing it would destroy it" in result.output, option
    assert (EXAMPLES / "calls.csv").read_bytes() == calls.read_bytes()


def test_results_parquet_keeps_a_field_beyond_its_columns_as_text_in_every_part(tmp_path, monkeypatch):
    """A record's field that is no results column (a later engine's, say) gets a text column of its own, null
    in the rows without it, whichever part first carries it: kept, not lost."""
    from policyhistory._results import RESULT_COLUMNS, write_parquet

    monkeypatch.setattr("policyhistory._results._PARQUET_PART", 4)
    records = [{"call_id": f"c{index}", "outcome": "free"} for index in range(10)]
    records[5]["engine_note"] = 5
    records[9]["engine_note"] = "late"
    records[9]["also"] = {"a": 1}
    out = tmp_path / "extra.parquet"
    assert 10 == write_parquet(out, records)
    frame = pl.read_parquet(out)
    assert [*RESULT_COLUMNS] == frame.columns[:len(RESULT_COLUMNS)]
    assert [None] * 5 + ["5", None, None, None, "late"] == frame["engine_note"].to_list()
    assert [None] * 9 + ['{"a": 1}'] == frame["also"].to_list()
    assert [f"c{index}" for index in range(10)] == frame["call_id"].to_list()


def test_results_billed_minutes_are_whole_numbers_in_parquet_and_sqlite(tmp_path):
    """billed_minutes is a whole number of minutes (the readers refuse 1.9): an integer column in Parquet and
    SQLite alike, as the other minutes are (it was a float column: 15.0)."""
    parquet, db = tmp_path / "r.parquet", tmp_path / "r.db"
    assert 0 == invoke(tmp_path, "rerate", *INPUTS, "--output", str(parquet)).exit_code
    assert 0 == invoke(tmp_path, "rerate", *INPUTS, "--output", str(db)).exit_code
    frame = pl.read_parquet(parquet)
    assert pl.Int64 == frame.schema["billed_minutes"] == frame.schema["credit_minutes"]
    expected = [(record.get("billed") or {}).get("minutes") for record in jsonl_records(tmp_path)]
    assert any(minutes is not None for minutes in expected)
    assert expected == frame["billed_minutes"].to_list()
    with sqlite3.connect(db) as connection:
        assert {"INTEGER"} == {kind for name, kind in (row[1:3] for row in connection.execute(
            "PRAGMA table_info(ratings)")) if name in ("billed_minutes", "credit_minutes")}
        assert expected == [row[0] for row in connection.execute("SELECT billed_minutes FROM ratings ORDER BY seq")]
