"""What a newcomer trying the command line met: messages that hid the value, named a column the file does not
have, or took a mistaken option for rejected rows. Each through the CLI, on a real store file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner
from freezegun import freeze_time

from policyhistory.cli import cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TEAMS = EXAMPLES / "PSTN.calls.2022-06-30.csv"
OWN = EXAMPLES / "calls.csv"
FACTS = ["--tenants", str(EXAMPLES / "tenants.csv"), "--licenses", str(EXAMPLES / "licenses.csv")]
SEOUL_CALL = {"call_id": "x", "tenant_id": "seoul", "start": "2020-06-15T02:00:00Z", "duration_seconds": 60,
              "call_type": "conference_dial_out", "destination": "+33142685300"}


def invoke(tmp_path: Path, *args: str) -> object:
    return CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), *args])


def test_a_reason_of_rejected_rows_shows_its_first_row_and_the_fix(tmp_path):
    # No tenant facts loaded: every row of our layout is rejected for one reason, whose text hides the tenant.
    result = invoke(tmp_path, "rerate", str(OWN), "--output", str(tmp_path / "out.jsonl"))
    assert 3 == result.exit_code
    lines = result.stderr.splitlines()
    at = lines.index("rejected rows by reason (1 reason(s)):")
    assert [
        "  3 row(s): no tenant facts for '...' in force at <instant>",
        f"    first: {OWN}:2: no tenant facts for 'seoul' in force at 2019-03-05T01:00:00Z",
        "    fix: Load the tenant's facts (policyhistory load --tenants T --licenses L) with a valid_from at or "
        "before the call, or correct the row's tenant_id.",
    ] == lines[at + 1:at + 4]
    # Every row rejected: there is no money to compare, whatever the input's charges.
    assert "money: no row was rated (every one was rejected): nothing to compare" in lines


def test_an_unknown_tenant_option_is_a_usage_error_naming_the_close_one(tmp_path):
    output = tmp_path / "out.jsonl"
    result = invoke(tmp_path, "rerate", str(TEAMS), "--tenant", "contosa", "--output", str(output), *FACTS)
    assert 2 == result.exit_code
    assert ("Error: field 'tenant': expected --tenant naming a tenant the store has facts for (is it 'contoso'? "
            "it has 2: 'contoso', 'seoul'; load a tenant's facts with --tenants FILE --licenses FILE), got "
            "'contosa'") == result.stderr.strip().splitlines()[-1]
    assert not output.exists()
    # Right, it rates; a file of our layout ignores --tenant (its rows name their tenant).
    assert 0 == invoke(tmp_path, "rerate", str(TEAMS), "--tenant", "contoso", "--output", str(output)).exit_code
    assert 0 == invoke(tmp_path, "rerate", str(OWN), "--tenant", "nobody", "--output", str(output)).exit_code


def test_teams_rows_are_refused_naming_the_export_s_columns(tmp_path):
    rows = list(csv.reader(TEAMS.read_text(encoding="utf-8").splitlines()))
    header = rows[0]
    rows[1][header.index("Duration Seconds")] = "abc"
    rows[2][header.index("Call Type")] = "conf_zz"
    export = tmp_path / "PSTN.calls.csv"
    with export.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows[:4])
    output = tmp_path / "out.jsonl"
    result = invoke(tmp_path, "rerate", str(export), "--tenant", "contoso", "--output", str(output), *FACTS)
    assert 3 == result.exit_code
    errors = [json.loads(line).get("error") for line in output.read_text().splitlines()]
    assert ["column 'Duration Seconds' (duration_seconds): expected a whole number of seconds, got 'abc'",
            "column 'Call Type' (call_type): expected one of conference_dial_out, pstn_outbound, conference_dial_in, "
            "pstn_inbound, emergency or conf_out, ucap_out_conf, user_out_conf, user_out, user_out_transfer, "
            "user_out_forwarding, ucap_out, emergency_out, dr_emergency_out, fmc_out, conf_in, user_in, ucap_in, "
            "emergency_in, fmc_in, unassigned_in, got 'conf_zz'", None] == errors
    # Our own layout's fields keep their names: they are the file's columns.
    own = tmp_path / "calls.csv"
    own.write_text(OWN.read_text(encoding="utf-8").replace(",1800,", ",abc,", 1), encoding="utf-8")
    invoke(tmp_path, "rerate", str(own), "--output", str(output))
    assert "field 'duration_seconds': expected a whole number of seconds, got 'abc'" == \
        json.loads(output.read_text().splitlines()[0])["error"]


def test_rate_names_call_for_a_call_it_cannot_read(tmp_path):
    naive = {**SEOUL_CALL, "start": "2020-06-15T02:00:00"}
    result = invoke(tmp_path, "rate", "--call", json.dumps(naive), *FACTS)
    assert 2 == result.exit_code
    assert ("Error: Invalid value for --call: start: expected an aware instant (with a UTC offset, e.g. "
            "2018-06-15T00:00:00Z) or a date, got naive '2020-06-15T02:00:00'") == \
        result.stderr.strip().splitlines()[-1]


@freeze_time("2026-12-03T12:00:00Z")
def test_a_known_at_later_than_now_is_said_on_stderr(tmp_path):
    result = invoke(tmp_path, "rate", "--call", json.dumps(SEOUL_CALL), "--known-at", "2027-01-01", "--json", *FACTS)
    assert 0 == result.exit_code
    assert "2027-01-01T00:00:00Z" == json.loads(result.stdout)["known_at"]
    assert ["warning: --known-at 2027-01-01T00:00:00Z is later than now (2026-12-03T12:00:00Z): the answer is what "
            "the store knows now; what is recorded until then may change it"] == result.stderr.splitlines()
    # Now or earlier: nothing to say.
    result = invoke(tmp_path, "rate", "--call", json.dumps(SEOUL_CALL), "--known-at", "2026-12-03", "--json")
    assert (0, "") == (result.exit_code, result.stderr)
    result = invoke(tmp_path, "rerate", str(OWN), "--known-at", "2099-01-01", "--output", str(tmp_path / "o.jsonl"))
    assert 0 == result.exit_code
    assert result.stderr.startswith("warning: --known-at 2099-01-01T00:00:00Z is later than now")
