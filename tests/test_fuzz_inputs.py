"""Fuzzing every input kind through the CLI (bounded examples, for CI): no exception escapes, every call row
comes out once, and a refused load changes nothing."""

from __future__ import annotations

import atexit
import csv
import datetime as dt
import io
import json
import shutil
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policyhistory
from policyhistory.cli import cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FOLDER = Path(tempfile.mkdtemp(prefix="policyhistory-fuzz-"))
atexit.register(shutil.rmtree, FOLDER, True)
DB = FOLDER / "s.db"
_store = policyhistory.open(DB)
_store.load_tenant_facts(EXAMPLES / "tenants.csv", EXAMPLES / "licenses.csv")
_store.close()

NASTY = ["0001-01-01T00:30:00+01:00", "9999-12-31T23:00:00-05:00", "2018-06-01T00:00:00+24:00", "1899-12-31",
         "2020-10-22T09:00:00Z", "2020-10-22", "1.5", "٣٠", "1_000", "-1", "0", str(2**63), "9" * 5000, "1e400",
         "inf", "nan", "\x1b[2J", "", " ", "null", "[", "{", "\x00", "conf_out", "user_out", "+33142685300", "US",
         "MCOMEETADD;MCOPSTNC", "contoso", "seoul", "true", "maybe", "x" * 300]
texts = st.one_of(st.sampled_from(NASTY), st.text(max_size=20))
FIELDS = ["call_id", "tenant_id", "start", "duration_seconds", "call_type", "destination", "organizer_id",
          "organizer_usage_location", "organizer_licenses", "billed_outcome", "billed_minutes", "billed_charge"]
GOOD = {"call_id": "c", "tenant_id": "contoso", "start": "2020-10-22T09:00:00Z", "duration_seconds": "130",
        "call_type": "conf_out", "destination": "+33142685300", "organizer_id": "u",
        "organizer_usage_location": "GB", "organizer_licenses": "MCOMEETADD;MCOPSTNC"}
json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), texts),
                           lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children,
                                                                                               max_size=3),
                           max_leaves=8)
rows = st.lists(st.dictionaries(st.sampled_from(FIELDS), texts, max_size=6).map(lambda bad: {**GOOD, **bad}),
                min_size=1, max_size=6)
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(*args: object):
    result = CliRunner().invoke(cli, ["--db", str(DB), *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def chains() -> dict[str, object]:
    store = policyhistory.open(DB)
    try:
        return store.digest()["chains"]
    finally:
        store.close()


@FUZZ
@given(rows)
def test_fuzz_call_csv_every_row_comes_out_once(records):
    path = FOLDER / "calls.csv"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: str(v).replace("\n", " ").replace("\r", " ") for k, v in record.items()})
    path.write_text(buffer.getvalue(), encoding="utf-8")
    result = run("rerate", path, "--known-at", "2026-01-01")
    assert result.exit_code in (0, 2, 3), result.output
    if result.exit_code != 2:
        expected = sum(1 for _ in csv.reader(io.StringIO(buffer.getvalue()))) - 1
        assert expected == len(result.stdout.splitlines())


@FUZZ
@given(st.lists(st.one_of(rows.map(lambda r: r[0]), json_values), min_size=1, max_size=6))
def test_fuzz_call_json_lines_every_row_comes_out_once(records):
    path = FOLDER / "calls.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    result = run("rerate", path, "--known-at", "2026-01-01")
    assert result.exit_code in (0, 2, 3), result.output
    if result.exit_code != 2:
        assert len(records) == len(result.stdout.splitlines())


TENANT_FIELDS = ["tenant_id", "valid_from", "country", "communications_credits"]
LICENSE_FIELDS = ["tenant_id", "valid_from", "sku", "usage_location", "purchased", "assigned"]


def table(fields: list[str], values: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(values)
    return buffer.getvalue()


@FUZZ
@given(st.lists(st.fixed_dictionaries({name: texts for name in TENANT_FIELDS}), min_size=1, max_size=4),
       st.lists(st.fixed_dictionaries({name: texts for name in LICENSE_FIELDS}), max_size=4))
def test_fuzz_tenant_files_a_refused_load_changes_nothing(tenant_rows, license_rows):
    tenants, licenses = FOLDER / "t.csv", FOLDER / "l.csv"
    tenants.write_text(table(TENANT_FIELDS, tenant_rows), encoding="utf-8")
    licenses.write_text(table(LICENSE_FIELDS, license_rows), encoding="utf-8")
    before = chains()
    result = run("load", "--tenants", tenants, "--licenses", licenses)
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 1:
        assert before == chains()


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, int | float):
        return repr(value) if not isinstance(value, float) or value == value else "nan"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))


toml_values = st.recursive(
    st.one_of(st.integers(min_value=-(2**64), max_value=2**64), st.booleans(), texts,
              st.floats(allow_infinity=False, allow_nan=False),
              st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30),
                           timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=14)),
                                                      dt.timezone(dt.timedelta(hours=-12))]))),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(
        ["unit_seconds", "mode", "countries", "minutes_per_user", "x", "document", "quote", "section"]), children,
        max_size=3), max_leaves=6)
VERSION_FIELDS = ["id", "key", "kind", "valid_from", "valid_to", "recorded_at", "params", "source", "notes",
                  "in_force"]
BASE = {"id": "fuzz", "key": "fuzz.key", "kind": "minute_rounding",
        "valid_from": dt.datetime(2020, 1, 1, tzinfo=dt.UTC), "recorded_at": dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        "params": {"unit_seconds": 60, "mode": "up"}, "source": {"document": "d", "section": "s", "quote": "q"}}


@FUZZ
@given(st.dictionaries(st.sampled_from(VERSION_FIELDS), toml_values, max_size=4))
def test_fuzz_catalog_toml_a_refused_load_changes_nothing(changes):
    record = {**BASE, **changes}
    text = "[[version]]\n" + "".join(f"{name} = {toml_value(value)}\n" for name, value in record.items())
    path = FOLDER / "fuzz.toml"
    path.write_text(text, encoding="utf-8")
    before = chains()
    result = run("load", path)
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 1:
        assert before == chains()
    else:
        assert 0 == run("timeline", "--output", FOLDER / "t.html").exit_code
        path.unlink()
        assert 0 == run("verify").exit_code


@FUZZ
@given(st.one_of(json_values.map(json.dumps), rows.map(lambda r: json.dumps(r[0])), texts))
def test_fuzz_rate_call(text):
    result = run("rate", "--call", text, "--json")
    assert result.exit_code in (0, 1, 2), result.output


@FUZZ
@given(texts, st.sampled_from(["policies", "diff", "timeline"]))
def test_fuzz_date_options(text, command):
    extra = {"policies": ["policies", "--as-of"], "diff": ["diff", "--as-of", "2020-01-01", "--as-of"],
             "timeline": ["timeline", "--output", FOLDER / "t.html", "--known-at"]}[command]
    result = run(*extra, text)
    assert result.exit_code in (0, 1, 2), result.output
