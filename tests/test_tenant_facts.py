from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from policyhistory import AppendOnlyError, InvalidRecordsError
from policyhistory.cli import cli

TENANTS = "tenant_id,valid_from,country,communications_credits\ncontoso,2018-01-01,US,true\n"
LICENSES = (
    "tenant_id,valid_from,sku,usage_location,purchased,assigned\n"
    "contoso,2018-01-01,MCOMEETADV,US,115,10\n"
    "contoso,2018-01-01,audio_conferencing,GB,0,100\n"
    "contoso,2020-06-01T00:00:00Z,audio_conferencing,GB,0,50\n"
)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_tenant_facts_csv_loads_and_holds_until_the_next_row(fresh_store, tmp_path):
    report = fresh_store.load_tenant_facts(write(tmp_path, "t.csv", TENANTS), write(tmp_path, "l.csv", LICENSES))
    assert 4 == len(report.added)
    index = fresh_store.tenant_index
    assert 110 == index.snapshot("contoso", _at("2020-05-31T23:59:59Z")).licensed(["audio_conferencing"], "assigned")
    assert 60 == index.snapshot("contoso", _at("2020-06-01T00:00:00Z")).licensed(["audio_conferencing"], "assigned")
    assert 115 == index.snapshot("contoso", _at("2020-06-01T00:00:00Z")).licensed(["audio_conferencing"], "purchased")


def _at(text):
    from policyhistory import to_instant

    return to_instant(text)


def test_tenant_facts_json_and_tab_separated(fresh_store, tmp_path):
    tenants = write(tmp_path, "t.json", json.dumps([{"tenant_id": "k", "valid_from": "2018-01-01", "country": "KR",
                                                      "communications_credits": False}]))
    licenses = write(tmp_path, "l.tsv", LICENSES.replace(",", "\t").replace("contoso", "k"))
    fresh_store.load_tenant_facts(tenants, licenses)
    snapshot = fresh_store.tenant_index.snapshot("k", _at("2019-01-01"))
    assert ("KR", False, 110) == (snapshot.tenant.country, snapshot.tenant.communications_credits,
                                  snapshot.licensed(["audio_conferencing"], "assigned"))


def test_tenant_facts_load_is_idempotent_and_append_only(fresh_store, tmp_path):
    tenants = write(tmp_path, "t.csv", TENANTS)
    fresh_store.load_tenant_facts(tenants)
    assert 1 == len(fresh_store.load_tenant_facts(tenants).unchanged)
    with pytest.raises(AppendOnlyError, match="tenant_facts contoso/2018-01-01T00:00:00Z"):
        fresh_store.load_tenant_facts(write(tmp_path, "t2.csv", TENANTS.replace("US,true", "US,false")))


def test_tenant_facts_every_bad_row_is_reported_and_nothing_written(fresh_store, tmp_path):
    bad = write(tmp_path, "l.csv", LICENSES + "contoso,2018-01-01,MCOFAKE,US,1,1\n"
                                              "contoso,2018-01-01T00:00:00,audio_conferencing,XX,1,1\n"
                                              "contoso,2018-01-01,audio_conferencing,FR,-1,1\n")
    with pytest.raises(InvalidRecordsError) as caught:
        fresh_store.load_tenant_facts(licenses=bad)
    # every problem of a row at once (issue 15): line 6 has a naive valid_from and an unknown usage location
    assert [(5, "sku"), (6, "valid_from"), (6, "usage_location"), (7, "purchased")] == [
        (p.line, p.field) for p in caught.value.problems]
    assert "expected one of audio_conferencing" in caught.value.problems[0].message
    assert "expected an aware instant" in caught.value.problems[1].message
    assert 0 == fresh_store.db["licenses"].count


def test_tenant_facts_missing_column(fresh_store, tmp_path):
    with pytest.raises(InvalidRecordsError, match="field 'communications_credits': required column is missing"):
        fresh_store.load_tenant_facts(write(tmp_path, "t.csv", "tenant_id,valid_from,country\nx,2018-01-01,US\n"))


def test_tenant_facts_cli_rate(tmp_path):
    call = {"call_id": "c1", "tenant_id": "contoso", "start": "2018-09-15T09:00:00Z", "duration_seconds": 900,
            "call_type": "conf_out", "destination": "+33142685300", "organizer_usage_location": "US",
            "organizer_licenses": "MCOMEETADD;MCOPSTNC"}
    db = str(tmp_path / "p.db")
    args = ["--db", db, "rate", "--call", json.dumps(call), "--tenants", str(write(tmp_path, "t.csv", TENANTS)),
            "--licenses", str(write(tmp_path, "l.csv", LICENSES)), "--json"]
    then = json.loads(CliRunner().invoke(cli, [*args, "--known-at", "2018-06-01"]).output)
    now = json.loads(CliRunner().invoke(cli, args).output)
    assert ("communications_credits", 15, 0) == (then["outcome"], then["credit_minutes"], then["pool_minutes"])
    assert ("complimentary", 15, 99000) == (now["outcome"], now["pool_minutes"], now["pool_capacity"])
    assert "complimentary-dial-out-through-november-2019" in now["policy_versions"]


def test_tenant_facts_cli_rate_bad_call(tmp_path):
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "rate", "--call", '{"call_id": "x"}'])
    # A call that cannot be read is a usage error of --call (exit 2), as a --call that is not JSON is.
    assert 2 == result.exit_code
    assert ("Error: Invalid value for --call: field 'tenant_id': expected a value (the field is required), got "
            "nothing") == result.output.strip().splitlines()[-1]


def test_tenant_facts_cli_rate_call_from_a_file(tmp_path):
    call = tmp_path / "call.json"
    call.write_text(json.dumps({"call_id": "c1", "tenant_id": "contoso", "start": "2021-03-01T09:00:00Z",
                                "duration_seconds": 61, "call_type": "user_out", "destination": "+263242700000",
                                "usage_location": "US", "licenses": ["communications_credits"]}), encoding="utf-8")
    db = str(tmp_path / "p.db")
    for spelling in (f"@{call}", str(call)):
        result = CliRunner().invoke(cli, ["--db", db, "rate", "--call", spelling, "--tenants",
                                          str(write(tmp_path, "t.csv", TENANTS)), "--json"])
        assert 0 == result.exit_code, result.output
        assert ("communications_credits", 2, "ZW") == tuple(json.loads(result.output)[k] for k in (
            "outcome", "credit_minutes", "destination_country"))


def test_tenant_facts_unreadable_rows_are_problems_with_their_lines(fresh_store, tmp_path):
    """A quote left open would take the later rows into one field; a bad JSON line is not a missing column."""
    csv_file = write(tmp_path, "t.csv", 'tenant_id,valid_from,country,communications_credits\n'
                                        '"contoso,2018-01-01,US,true\nfabrikam,2018-01-01,FR,true\n')
    jsonl = write(tmp_path, "t.jsonl", '{"tenant_id": "contoso", "valid_from": "2018-01-01", "country": "US", '
                                       '"communications_credits": true}\n{"tenant_id": \n')
    for path, expected in [
        (csv_file, (2, "row", "the record runs from line 2 to line 3: a field holds a line break, or a quote left "
                              "open takes in the lines after it")),
        (jsonl, (2, "row", "not valid JSON: Expecting value")),
    ]:
        with pytest.raises(InvalidRecordsError) as caught:
            fresh_store.load_tenant_facts(path)
        assert [expected] == [(p.line, p.field, p.message) for p in caught.value.problems]
    assert 0 == fresh_store.db["tenant_facts"].count


def test_tenant_facts_file_not_in_utf8_is_a_problem_with_its_line(fresh_store, tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes((TENANTS + "soci\u00e9t\u00e9,2018-01-01,FR,true\n").encode("latin-1"))
    with pytest.raises(InvalidRecordsError) as caught:
        fresh_store.load_tenant_facts(path)
    assert [(3, "not UTF-8 text (byte 0xe9): save it as UTF-8 (in Excel: CSV UTF-8)")] == [
        (p.line, p.message) for p in caught.value.problems]
    assert 0 == fresh_store.db["tenant_facts"].count


def test_tenant_facts_json_record_that_is_not_an_object_is_a_problem(fresh_store, tmp_path):
    path = write(tmp_path, "t.jsonl", '{"tenant_id": "t", "valid_from": "2018-01-01", "country": "FR", '
                                      '"communications_credits": true}\n[1]\nnull\n')
    with pytest.raises(InvalidRecordsError) as caught:
        fresh_store.load_tenant_facts(path)
    assert [(2, "row", "expected a JSON object of the tenants fields, got [1]"),
            (3, "row", "expected a JSON object of the tenants fields, got null")] == [
        (p.line, p.field, p.message) for p in caught.value.problems]


def test_tenant_facts_a_misspelt_column_is_named_once_with_its_spelling(fresh_store, tmp_path):
    """A newcomer's trial: a misspelt header (contry) was "required column is missing" on every row, never
    naming the column the file has."""
    path = write(tmp_path, "t.csv", "tenant_id,valid_from,contry,communications_credits\n"
                 "x,2018-01-01,US,true\ny,2018-01-01,FR,false\nz,2018-01-01,GB,true\n")
    with pytest.raises(InvalidRecordsError) as caught:
        fresh_store.load_tenant_facts(path)
    assert [(2, "country")] == [(p.line, p.field) for p in caught.value.problems]
    assert "required column is missing: 'country' (the file has 'contry')" in caught.value.problems[0].message
    assert 0 == fresh_store.db["tenant_facts"].count
