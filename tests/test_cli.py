from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import policyhistory
from policyhistory.cli import cli

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = sorted(cli.commands)


@pytest.mark.parametrize("command", COMMANDS)
def test_cli_every_command_has_help_and_a_readme_section(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert 0 == result.exit_code
    assert len(cli.commands[command].get_short_help_str()) > 20
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(rf"policyhistory {command}\b", readme), f"README does not mention `policyhistory {command}`"


def test_cli_default_db_is_created_with_the_catalog(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POLICYHISTORY_DB", raising=False)
    result = CliRunner().invoke(cli, ["policies", "--as-of", "2018-06-15", "--known-at", "2018-06-01", "--json"])
    assert 0 == result.exit_code, result.output
    assert (tmp_path / "policyhistory.db").exists()
    ids = [record["id"] for record in json.loads(result.output)["policies"]]
    assert ["complimentary-dial-out-2018-first-belief", "calling-plan-availability-published-2018-02-01",
            "calling-plan-domestic-us-page-corrected-2018-05-31", "calling-plan-domestic-120-published-2018-02-01",
            "calling-plan-domestic-240-published-2018-02-01", "calling-plan-international-published-2018-02-01",
            "communications-credits-standard-terms-2018", "dial-in-toll-free-on-credits-published-2017-11-28",
            "minute-rounding-up-per-call", "zone-a-2018"] == ids


def test_cli_db_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("POLICYHISTORY_DB", str(tmp_path / "env.db"))
    assert 0 == CliRunner().invoke(cli, ["verify"]).exit_code
    assert (tmp_path / "env.db").exists()


def test_cli_load_bad_file_names_line_and_field(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[version]]\nid = "x"\nkey = "k"\nkind = "zone"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "load", str(bad)])
    assert 1 == result.exit_code
    assert f"{bad}:4, record 'x', field 'kind': unknown policy kind 'zone'" in result.output  # the field's line
    assert "field 'valid_from': required field is missing" in result.output


def test_cli_load_is_idempotent_on_the_bundled_catalog(tmp_path):
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "load"])
    assert "added 0 record(s), 80 already stored" == result.output.strip()


def test_cli_naive_as_of_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "policies", "--as-of", "2018-06-15T10:00"])
    assert 2 == result.exit_code
    assert "expected an aware instant" in result.output


def test_cli_unknown_history_key(tmp_path):
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "history", "nope"])
    assert 1 == result.exit_code
    assert "no policy key 'nope'" in result.output


EXAMPLES = ROOT / "examples"


@pytest.mark.parametrize(("args", "option"), [
    (["rerate", str(EXAMPLES / "calls.csv"), "--output", "{missing}/out.jsonl"], "--output"),
    (["rerate", str(EXAMPLES / "calls.csv"), "--report", "{missing}/report.html"], "--report"),
    (["timeline", "--output", "{missing}/timeline.html"], "--output"),
    (["catalog", "--output", "{missing}/catalog.md"], "--output"),
    (["--db", "{missing}/p.db", "policies", "--as-of", "2020-01-01"], "--db"),
])
def test_cli_file_to_write_in_a_missing_folder_is_a_usage_error(tmp_path, args, option):
    """Found when the arguments are read: no traceback, and no run whose result has nowhere to go."""
    missing = tmp_path / "no such folder"
    args = [arg.replace("{missing}", str(missing)) for arg in args]
    db = [] if args[0] == "--db" else ["--db", str(tmp_path / "p.db")]
    result = CliRunner().invoke(cli, [*db, *args])
    assert 2 == result.exit_code, result.output
    assert f"Invalid value for '{option}': the folder '{missing}' does not exist" in result.output
    assert not missing.exists()


def test_cli_rerate_workdir_must_exist(tmp_path):
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "rerate", str(EXAMPLES / "calls.csv"),
                                      "--workdir", str(tmp_path / "nowhere")])
    assert 2 == result.exit_code
    assert "Invalid value for '--workdir'" in result.output


def test_cli_db_that_is_not_a_store_is_refused_and_left_alone(tmp_path):
    """Not SQLite, or another program's database: exit 2, and no table of ours is added to it."""
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE invoices (id INTEGER)")
    for db, why in [(EXAMPLES / "calls.csv", "file is not a database"),
                    (other, "it holds other tables (invoices)")]:
        result = CliRunner().invoke(cli, ["--db", str(db), "policies", "--as-of", "2020-01-01"])
        assert 2 == result.exit_code, result.output
        assert f"Invalid value for --db: {db} is not a policyhistory store: {why}" in result.output
    with sqlite3.connect(other) as connection:
        assert [("invoices",)] == connection.execute("SELECT name FROM sqlite_master").fetchall()
    with pytest.raises(policyhistory.NotAStoreError):
        policyhistory.open(other)


@pytest.mark.parametrize(("call", "message"), [
    ("[1, 2]", "expected a JSON object of the call's fields, got list '[1, 2]'"),
    ("@{missing}", "cannot read {missing}: No such file or directory"),
])
def test_cli_rate_call_that_is_not_an_object_or_not_there(tmp_path, call, message):
    missing = str(tmp_path / "nowhere.json")
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "rate", "--call",
                                      call.replace("{missing}", missing)])
    assert 2 == result.exit_code, result.output
    assert f"Invalid value for --call: {message.replace('{missing}', missing)}" in result.output
