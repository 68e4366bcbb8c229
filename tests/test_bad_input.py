"""Bad input gets a clear error naming file, line, field and value: never a traceback, never a silent loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import policyhistory
from policyhistory import InstantRangeError, InvalidFieldError, InvalidRecordsError
from policyhistory.cli import cli

from .conftest import version_toml

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CALL = {"call_id": "c1", "tenant_id": "contoso", "start": "2020-10-22T09:00:00Z", "duration_seconds": 130,
        "call_type": "conf_out", "destination": "+33142685300", "organizer_usage_location": "GB",
        "organizer_licenses": "MCOMEETADD;MCOPSTNC"}


def invoke(tmp_path, *args: object):
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "s.db"), *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


@pytest.mark.parametrize("text", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:00:00-05:00", "1899-12-31T23:59:59Z"])
def test_instants_outside_the_supported_range_are_refused(text):
    with pytest.raises(InstantRangeError, match="outside the supported range"):
        policyhistory.to_instant(text, "as_of")
    assert "1900-01-01T00:00:00Z" == policyhistory.format_instant(policyhistory.to_instant("1900-01-01"))


@pytest.mark.parametrize("text", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:00:00-05:00",
                                  "2018-06-01T00:00:00+24:00"])
@pytest.mark.parametrize("option", [["policies", "--as-of"], ["diff", "--as-of", "2020-01-01", "--as-of"],
                                    ["timeline", "--output", "t.html", "--known-at"]])
def test_every_date_option_refuses_an_instant_it_cannot_hold(tmp_path, option, text):
    option = [str(tmp_path / part) if part == "t.html" else part for part in option]
    result = invoke(tmp_path, *option, text)
    assert 2 == result.exit_code, result.output
    assert text in result.output


def test_a_call_row_or_tenants_row_out_of_range_is_a_problem_not_a_crash(tmp_path):
    tenants = tmp_path / "t.csv"
    tenants.write_text("tenant_id,valid_from,country,communications_credits\n"
                       "contoso,0001-01-01T00:30:00+01:00,US,true\n", encoding="utf-8")
    result = invoke(tmp_path, "load", "--tenants", tenants)
    assert 1 == result.exit_code
    assert f"{tenants}:2, record 'contoso', field 'valid_from'" in result.output
    assert "outside the supported range" in result.output
    calls = tmp_path / "c.jsonl"
    rows = [{**CALL, "call_id": "a"}, {**CALL, "call_id": "b", "start": "9999-12-31T23:00:00-05:00"},
            {**CALL, "call_id": "c", "start": "2020-10-22T10:00:00Z"}]
    calls.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    result = invoke(tmp_path, "rerate", calls, "--tenants", EXAMPLES / "tenants.csv", "--licenses",
                    EXAMPLES / "licenses.csv")
    assert 3 == result.exit_code
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert ["a", "b", "c"] == [record["call_id"] for record in records]
    assert "rejected" == records[1]["outcome"] and "outside the supported range" in records[1]["error"]


def test_a_call_nested_100000_deep_or_with_a_5000_digit_integer(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text('{"a":' * 100_000 + "1" + "}" * 100_000, encoding="utf-8")
    result = invoke(tmp_path, "rate", "--call", f"@{deep}")
    assert 2 == result.exit_code and "nested too deeply" in result.output
    result = invoke(tmp_path, "rate", "--call", json.dumps(CALL).replace("130", "9" * 5000))
    assert 2 == result.exit_code and "integer too long" in result.output
    calls = tmp_path / "c.jsonl"
    calls.write_text(json.dumps(CALL) + "\n" + "[" * 100_000 + "]" * 100_000 + "\n"
                     + json.dumps({**CALL, "call_id": "c2"}).replace("130", "9" * 5000) + "\n", encoding="utf-8")
    result = invoke(tmp_path, "rerate", calls, "--tenants", EXAMPLES / "tenants.csv", "--licenses",
                    EXAMPLES / "licenses.csv")
    assert 3 == result.exit_code, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [None, "nested too deeply", "integer too long"] == [
        None if r["outcome"] != "rejected" else ("nested too deeply" if "nested" in r["error"] else
                                                 "integer too long" if "too long" in r["error"] else r["error"])
        for r in records]


def test_a_json_key_given_twice_is_refused_not_read_as_its_last_value(tmp_path):
    """json keeps the last of two equal keys: which value the record meant is ambiguous, so it is refused."""
    twice = json.dumps(CALL)[:-1] + ', "call_type": "user_in"}'
    result = invoke(tmp_path, "rate", "--call", twice)
    assert 2 == result.exit_code
    assert "the key 'call_type' is given twice in one object" in result.output
    calls = tmp_path / "c.jsonl"
    calls.write_text(json.dumps(CALL) + "\n" + twice + "\n", encoding="utf-8")
    result = invoke(tmp_path, "rerate", calls, "--tenants", EXAMPLES / "tenants.csv", "--licenses",
                    EXAMPLES / "licenses.csv")
    assert 3 == result.exit_code, result.output
    first, second = [json.loads(line) for line in result.stdout.splitlines()]
    assert first["outcome"] != "rejected" and ("rejected", 2) == (second["outcome"], second["line"])
    assert "the key 'call_type' is given twice" in second["error"]
    array = tmp_path / "c.json"
    array.write_text("[" + json.dumps(CALL) + ",\n" + twice + "]", encoding="utf-8")
    result = invoke(tmp_path, "rerate", array, "--tenants", EXAMPLES / "tenants.csv", "--licenses",
                    EXAMPLES / "licenses.csv")
    assert 2 == result.exit_code and "c.json: not readable JSON: the key 'call_type' is given twice" in result.output
    assert "Traceback" not in result.output


def test_a_day_that_does_not_exist_is_named_as_such(tmp_path):
    """2018-02-30 has ISO 8601's shape: the error says the calendar has no such day, not only "expected ISO"."""
    result = invoke(tmp_path, "rate", "--call", json.dumps(CALL), "--as-of", "2018-02-30")
    assert 2 == result.exit_code
    assert "got '2018-02-30' (no such date or time: day is out of range for month)" in result.output
    calls = tmp_path / "c.jsonl"
    calls.write_text(json.dumps({**CALL, "start": "2022-04-31T10:00:00Z"}) + "\n", encoding="utf-8")
    result = invoke(tmp_path, "rerate", calls, "--tenants", EXAMPLES / "tenants.csv", "--licenses",
                    EXAMPLES / "licenses.csv")
    record = json.loads(result.stdout.splitlines()[0])
    assert "rejected" == record["outcome"] and "day is out of range for month" in record["error"]


def test_a_row_that_ends_before_its_destination_says_so_and_reasons_past_five_are_counted(tmp_path):
    calls = tmp_path / "c.csv"
    header = "call_id,tenant_id,start,duration_seconds,call_type,organizer_id,organizer_usage_location,"
    calls.write_text(header + "organizer_licenses,destination\n"
                     "b1,contoso,2022-04-31T10:00:00Z,600,user_out,ann,US,MCOPSTN1,+12027621401\n"
                     "b2,contoso,2022-04-04T10:00:00Z,1.5,user_out,ann,US,MCOPSTN1,+12027621401\n"
                     "b3,contoso,2022-04-04T10:00:00Z,600,user_outt,ann,US,MCOPSTN1,+12027621401\n"
                     "b4,contoso,2022-04-04T10:00:00Z,600,user_out,ann,US,MCOPSTN99,+12027621401\n"
                     "b5,nobody,2022-04-04T10:00:00Z,600,user_out,ann,US,MCOPSTN1,+12027621401\n"
                     "b6,contoso,2022-04-04T10:00:00Z,600,user_out,ann,US\n"
                     "b7,contoso,2022-04-04T10:00:00Z,600,user_out,ann,XX,MCOPSTN1,+12027621401\n", encoding="utf-8")
    result = invoke(tmp_path, "rerate", calls, "--tenants", EXAMPLES / "tenants.csv", "--licenses",
                    EXAMPLES / "licenses.csv")
    records = {record["call_id"]: record for record in map(json.loads, result.stdout.splitlines())}
    assert "None" not in records["b6"]["error"]
    # The file's column, the call's field (the licenses file's column is `sku`) and the SKU it does not know.
    assert records["b4"]["error"].startswith("column 'organizer_licenses' (licenses): expected one of "
                                             "audio_conferencing, ")
    assert records["b4"]["error"].endswith(", got 'MCOPSTN99'")
    assert records["b7"]["error"].startswith("column 'organizer_usage_location' (usage_location): expected ")
    assert "the row has none (it ends before that column), got nothing" in records["b6"]["error"]
    assert "rejected rows by reason (7 reason(s), the 5 most frequent):" in result.stderr
    assert "  2 more row(s) for 2 other reason(s) (every reason: --summary-json FILE, or the report)" in (
        result.stderr)


def test_a_license_count_of_2_63_is_a_problem(tmp_path):
    licenses = tmp_path / "l.csv"
    licenses.write_text("tenant_id,valid_from,sku,usage_location,purchased,assigned\n"
                        f"contoso,2018-01-22,MCOMEETADV,US,{2**63},1\n", encoding="utf-8")
    result = invoke(tmp_path, "load", "--tenants", EXAMPLES / "tenants.csv", "--licenses", licenses)
    assert 1 == result.exit_code
    assert f"{licenses}:2, record 'contoso', field 'purchased': expected a whole number of licenses" in result.output
    assert str(2**63) in result.output
    assert 0 == policyhistory.open(tmp_path / "s.db").db["tenant_facts"].count


@pytest.mark.parametrize(("text", "field", "words"), [
    ("params = 5", "params", "expected a table of parameters"),
    ('params = "abc"', "params", "got 'abc'"),
    ("params = [1, 2]", "params", "got [1, 2]"),
    ("kind = []", "kind", "unknown policy kind []"),
    ("notes = " + "[" * 5000 + "]" * 5000, None, "nested too deeply"),
])
def test_toml_values_of_the_wrong_shape(empty_store, write_catalog, text, field, words):
    toml = version_toml("v1").replace('kind = "minute_rounding"', text if text.startswith("kind") else
                                      f'kind = "minute_rounding"\n{text}')
    if text.startswith("params"):
        toml = toml.replace("[version.params]\nunit_seconds = 60\nmode = \"up\"\n", "")
    with pytest.raises(InvalidRecordsError) as caught:
        empty_store.load([write_catalog("bad.toml", toml)])
    assert field in [p.field for p in caught.value.problems], caught.value
    assert words in str(caught.value)
    assert 0 == empty_store.db["policy_versions"].count


@pytest.mark.parametrize(("value", "words"), [
    ("0", "more than 0, got 0"), ("-60", "more than 0, got -60"), ("1.5", "expected a whole number, got 1.5"),
    ("true", "expected a whole number, got True"), ('"sixty"', "expected int, got 'sixty'"),
])
def test_minute_rounding_unit_is_checked_at_load(empty_store, write_catalog, value, words):
    path = write_catalog("bad.toml", version_toml("v1").replace("unit_seconds = 60", f"unit_seconds = {value}"))
    with pytest.raises(InvalidRecordsError) as caught:
        empty_store.load([path])
    [problem] = caught.value.problems
    assert ("params.unit_seconds", 9) == (problem.field, problem.line)  # the field's own line
    assert words in problem.message


def test_a_literal_names_what_was_given_and_what_is_allowed(empty_store, write_catalog):
    path = write_catalog("bad.toml", version_toml("v1").replace('mode = "up"', 'mode = "sideways"'))
    with pytest.raises(InvalidRecordsError) as caught:
        empty_store.load([path])
    assert "expected one of 'up', 'nearest', 'down', got 'sideways'" == caught.value.problems[0].message


def test_a_valid_from_too_late_for_the_timeline_is_refused(empty_store, write_catalog):
    path = write_catalog("late.toml", version_toml("v1", valid_from="9999-12-31T23:59:59Z"))
    with pytest.raises(InvalidRecordsError, match="too late"):
        empty_store.load([path])


def test_dev_null_and_a_5000_character_call(tmp_path):
    result = CliRunner().invoke(cli, ["--db", "/dev/null", "verify"])
    assert result.exit_code in (1, 2) and "not a regular file" in result.output
    result = CliRunner().invoke(cli, ["--db", "/dev/null", "policies", "--as-of", "2020-01-01"])
    assert 2 == result.exit_code and "not a regular file" in result.output
    result = invoke(tmp_path, "rate", "--call", "x" * 5000)
    assert 2 == result.exit_code and "no such file" in result.output
    result = invoke(tmp_path, "rate", "--call", "nonexist.json")
    assert 2 == result.exit_code and "no such file: 'nonexist.json'" in result.output


def test_a_duplicate_csv_header_is_refused(tmp_path):
    calls = tmp_path / "c.csv"
    calls.write_text((EXAMPLES / "calls.csv").read_text(encoding="utf-8").replace("destination", "start", 1),
                     encoding="utf-8")
    result = invoke(tmp_path, "rerate", calls)
    assert 2 == result.exit_code
    assert "the column appears twice in the header" in result.output and "'start'" in result.output
    tenants = tmp_path / "t.csv"
    tenants.write_text("tenant_id,valid_from,country,country,communications_credits\nx,2018-01-01,US,FR,true\n",
                       encoding="utf-8")
    result = invoke(tmp_path, "load", "--tenants", tenants)
    assert 1 == result.exit_code and f"{tenants}:1, field 'country': the column appears twice" in result.output


@pytest.mark.parametrize("text", ["1.5", "٣٠", "1_000", "+30", "30 s"])
def test_durations_are_ascii_digits_only(text):
    with pytest.raises(InvalidFieldError, match="duration_seconds"):
        policyhistory.call_from_mapping({**CALL, "duration_seconds": text})
    assert 30 == policyhistory.call_from_mapping({**CALL, "duration_seconds": " 30 "}).duration_seconds


@pytest.mark.parametrize("text", ["٣٠", "1_000", "1.5"])
def test_license_counts_are_ascii_digits_only(tmp_path, text):
    licenses = tmp_path / "l.csv"
    licenses.write_text("tenant_id,valid_from,sku,usage_location,purchased,assigned\n"
                        f"contoso,2018-01-22,MCOMEETADV,US,{text},1\n", encoding="utf-8")
    with pytest.raises(InvalidRecordsError, match="purchased"):
        policyhistory.open().load_tenant_facts(EXAMPLES / "tenants.csv", licenses)


def test_table_output_escapes_control_characters(tmp_path):
    calls = tmp_path / "c.jsonl"
    calls.write_text(json.dumps({**CALL, "call_id": "\x1b]0;owned\x07\x1b[2J"}) + "\n", encoding="utf-8")
    result = invoke(tmp_path, "rerate", calls, "--tenants", EXAMPLES / "tenants.csv", "--licenses",
                    EXAMPLES / "licenses.csv", "--format", "table")
    assert 0 == result.exit_code, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b]0;owned\\x07\\x1b[2J" in result.stdout


def test_a_tenants_row_reports_all_its_problems_and_licenses_problems_show_too(tmp_path):
    tenants = tmp_path / "t.csv"
    tenants.write_text("tenant_id,valid_from,country,communications_credits\nx,2018-13-01,XX,perhaps\n",
                       encoding="utf-8")
    licenses = tmp_path / "l.csv"
    licenses.write_text("tenant_id,valid_from,sku,usage_location,purchased,assigned\n"
                        "x,2018-01-01,MCOFAKE,US,1,1\n", encoding="utf-8")
    result = invoke(tmp_path, "load", "--tenants", tenants, "--licenses", licenses)
    assert 1 == result.exit_code
    for field in ("valid_from", "country", "communications_credits"):
        assert f"{tenants}:2, record 'x', field '{field}'" in result.output
    assert f"{licenses}:2, record 'x', field 'sku'" in result.output
    assert "4 problem(s), nothing was written" in result.output


def test_a_conflicting_tenant_row_names_its_file_line_and_what_differs(tmp_path):
    assert 0 == invoke(tmp_path, "load", "--tenants", EXAMPLES / "tenants.csv").exit_code
    changed = tmp_path / "t.csv"
    changed.write_text((EXAMPLES / "tenants.csv").read_text(encoding="utf-8").replace("seoul,2018-01-22,KR",
                                                                                       "seoul,2018-01-22,JP"),
                       encoding="utf-8")
    result = invoke(tmp_path, "load", "--tenants", changed)
    assert 1 == result.exit_code
    assert f"{changed}:3: record 'tenant_facts seoul/2018-01-22T00:00:00Z' already exists with other content " \
           "(country 'KR' stored, 'JP' given)" in result.output


def test_db_is_accepted_after_the_command(tmp_path):
    db = tmp_path / "after.db"
    result = CliRunner().invoke(cli, ["policies", "--as-of", "2020-01-01", "--db", str(db), "--json"])
    assert 0 == result.exit_code, result.output
    assert db.exists()
    result = CliRunner().invoke(cli, ["rerate", str(EXAMPLES / "calls.csv"), "--db", str(db), "--tenants",
                                      str(EXAMPLES / "tenants.csv"), "--licenses", str(EXAMPLES / "licenses.csv")])
    assert 0 == result.exit_code, result.output


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])  # CSV: the columnar reader's checks too
@pytest.mark.parametrize(("field", "value"), [("duration_seconds", "٣٠"), ("start", "1899-12-31T00:00:00Z")])
def test_rerate_refuses_what_the_shared_checks_refuse(tmp_path, field, value, suffix):
    calls = tmp_path / f"c{suffix}"
    row = {**CALL, field: value}
    if suffix == ".jsonl":
        calls.write_text(json.dumps(row) + "\n", encoding="utf-8")
    else:
        calls.write_text(",".join(row) + "\n" + ",".join(str(v) for v in row.values()) + "\n", encoding="utf-8")
    result = invoke(tmp_path, "rerate", calls, "--tenants", EXAMPLES / "tenants.csv", "--licenses",
                    EXAMPLES / "licenses.csv")
    [record] = [json.loads(line) for line in result.stdout.splitlines()]
    assert "rejected" == record["outcome"] and field in record["error"], record


def test_an_unknown_license_of_a_call_given_to_store_rate_names_the_calls_field(tmp_path):
    store = policyhistory.open()
    store.load_tenant_facts(EXAMPLES / "tenants.csv", EXAMPLES / "licenses.csv")
    with pytest.raises(InvalidFieldError) as raised:
        store.rate({**CALL, "organizer_licenses": "MCOMEETADD;NOPE"}, known_at="2026-11-23")
    assert ("licenses", "NOPE") == (raised.value.field, raised.value.value)


def test_half_a_surrogate_pair_in_a_json_text_is_a_rejected_row_naming_its_field(tmp_path):
    """json.loads keeps a lone \\ud800 escape, which no UTF-8 output can hold: rerate wrote a traceback when
    the row reached its shard's Parquet part. Now the row is rejected (its call id shown escaped), the other
    rows are rated, every output format is written, and store.rate refuses the same call alike."""
    rows = [dict(CALL, call_id="ok1"), dict(CALL, call_id="c\ud800"), dict(CALL, call_id="ok2", usage_id="u\udfff"),
            dict(CALL, call_id="ok3", organizer_id="ann\ud83d"), dict(CALL, call_id="ok4")]
    calls = tmp_path / "calls.jsonl"
    calls.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="ascii")  # escaped: \ud800
    facts = ["--tenants", EXAMPLES / "tenants.csv", "--licenses", EXAMPLES / "licenses.csv"]
    result = invoke(tmp_path, "rerate", calls, *facts, "--known-at", "2026-11-23")
    assert 3 == result.exit_code, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert ["ok1", "c\\ud800", "ok2", "ok3", "ok4"] == [record["call_id"] for record in records]
    assert ["rejected" == record["outcome"] for record in records] == [False, True, True, True, False]
    assert [record["error"].split(":")[0] for record in records[1:4]] == [
        "field 'call_id'", "field 'usage_id'", "field 'organizer_id'"]
    for fmt in ("csv", "table"):
        written = invoke(tmp_path, "rerate", calls, *facts, "--known-at", "2026-11-23", "--format", fmt)
        assert 3 == written.exit_code and "c\\ud800" in written.stdout, written.output
    store = policyhistory.open()
    store.load_tenant_facts(EXAMPLES / "tenants.csv", EXAMPLES / "licenses.csv")
    with pytest.raises(InvalidFieldError) as raised:
        store.rate(rows[1], known_at="2026-11-23")
    assert "call_id" == raised.value.field


def test_a_refused_license_or_location_names_the_column_or_key_the_row_gave_it_by(tmp_path):
    """Our layout reads licenses from organizer_licenses or its synonym licenses (the usage location alike):
    the reason names the one the row gave, in a CSV file and in a JSON record."""
    calls = tmp_path / "c.csv"
    calls.write_text("call_id,tenant_id,start,duration_seconds,call_type,organizer_id,usage_location,licenses,"
                     "destination\nl1,contoso,2022-04-04T10:00:00Z,600,user_out,ann,US,MCOPSTN99,+12027621401\n"
                     "l2,contoso,2022-04-04T10:00:00Z,600,user_out,ann,XX,MCOPSTN1,+12027621401\n", encoding="utf-8")
    lines = tmp_path / "c.jsonl"
    call = {"tenant_id": "contoso", "start": "2022-04-04T10:00:00Z", "duration_seconds": 600,
            "call_type": "user_out", "organizer_id": "ann", "destination": "+12027621401"}
    lines.write_text("\n".join(json.dumps({"call_id": call_id, **call, **fields}) for call_id, fields in [
        ("j1", {"organizer_licenses": "MCOPSTN99"}), ("j2", {"licenses": "MCOPSTN99"}),
        ("j3", {"organizer_licenses": " ", "licenses": "MCOPSTN99"}),
        ("j4", {"organizer_usage_location": "XX"}), ("j5", {"usage_location": "XX"})]) + "\n", encoding="utf-8")
    result = invoke(tmp_path, "rerate", calls, lines, "--tenants", EXAMPLES / "tenants.csv", "--licenses",
                    EXAMPLES / "licenses.csv")
    errors = {record["call_id"]: record["error"].split(": expected")[0]
              for record in map(json.loads, result.stdout.splitlines())}
    assert {"l1": "field 'licenses'", "l2": "field 'usage_location'",
            "j1": "column 'organizer_licenses' (licenses)", "j2": "field 'licenses'", "j3": "field 'licenses'",
            "j4": "column 'organizer_usage_location' (usage_location)", "j5": "field 'usage_location'"} == errors
    # The summary's reasons keep the expected form's own digits (alpha-2) and give a column's reason its fix.
    assert "column 'organizer_usage_location' (usage_location): expected an ISO 3166 alpha-2 country code" in (
        result.stderr)
    assert "fix: Correct the column named in the reason to the form it expects." in result.stderr
    inspected = invoke(tmp_path, "inspect", lines)
    assert "  1: column 'organizer_licenses' (licenses): expected one of " in inspected.output
    assert "  2: field 'licenses': expected one of " in inspected.output
    assert "tenants: none counted (no row is readable)" in inspected.output  # not "none in the file"
