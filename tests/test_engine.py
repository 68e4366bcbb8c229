"""One engine: store.rate, Rater, explain and rerate give the same record for the same call, and the bugs of
the two engines that came before are gone (issue 13)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policyhistory
from policyhistory import Call, InvalidFieldError, NoPolicyInForceError, PoolState, Rerate
from policyhistory._records import rating_record
from policyhistory._rerate import with_licenses
from policyhistory.cli import cli

from .conftest import fixed_clock

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TEAMS = EXAMPLES / "PSTN.calls.2022-06-30.csv"
OWN = EXAMPLES / "calls.csv"
FACTS = ["--tenants", str(EXAMPLES / "tenants.csv"), "--licenses", str(EXAMPLES / "licenses.csv")]
KNOWN_AT = "2026-11-23T00:00:00Z"
CALL = {"call_id": "c1", "tenant_id": "seoul", "start": "2021-06-10T09:00:00Z", "duration_seconds": 600,
        "call_type": "conf_out", "destination": "+33142685300", "usage_location": "KR",
        "licenses": "audio_conferencing"}


@pytest.fixture
def store() -> policyhistory.Store:
    store = policyhistory.open(clock=fixed_clock)
    store.load_tenant_facts(EXAMPLES / "tenants.csv", EXAMPLES / "licenses.csv")
    return store


def _own_file(tmp_path: Path, *rows: dict[str, str]) -> Path:
    columns = ["call_id", "tenant_id", "start", "duration_seconds", "call_type", "organizer_id",
               "organizer_usage_location", "organizer_licenses", "destination"]
    path = tmp_path / "calls.jsonl"
    path.write_text("".join(json.dumps({name: row.get(name, "") for name in columns}) + "\n" for row in rows),
                    encoding="utf-8")
    return path


def _as_row(call: dict[str, object]) -> dict[str, str]:
    return {"call_id": str(call["call_id"]), "tenant_id": str(call["tenant_id"]), "start": str(call["start"]),
            "duration_seconds": str(call["duration_seconds"]), "call_type": str(call["call_type"]),
            "organizer_id": "o", "organizer_usage_location": str(call["usage_location"]),
            "organizer_licenses": str(call["licenses"]), "destination": str(call["destination"])}


def test_engine_epoch_as_of_is_not_ignored(store, tmp_path):
    """as_of 1970-01-01T00:00:00Z is 0 microseconds: it used to read as "no as_of" (0 is false) and the call
    was rated under the rules of its own start. Nothing was in force in 1970."""
    with pytest.raises(NoPolicyInForceError) as raised:
        store.rate(CALL, as_of="1970-01-01T00:00:00Z", known_at=KNOWN_AT)
    assert "1970-01-01T00:00:00Z" in str(raised.value)
    assert "complimentary" == store.rate(CALL, known_at=KNOWN_AT).outcome
    run = Rerate(store, [_own_file(tmp_path, _as_row(CALL))], known_at=KNOWN_AT, as_of="1970-01-01T00:00:00Z")
    [record] = run.records()
    assert "rejected" == record["outcome"]
    assert "no policy in force" in record["error"] and "1970-01-01T00:00:00Z" in record["error"]
    assert "rated under the rules of 1970-01-01T00:00:00Z, as known at 2026-11-23T00:00:00Z" == run.summary.lines()[1]


def test_engine_nul_in_a_call_id_is_refused_by_every_path(store, tmp_path):
    call = {**CALL, "call_id": "c\x001"}
    with pytest.raises(InvalidFieldError) as raised:
        store.rate(call, known_at=KNOWN_AT)
    with pytest.raises(InvalidFieldError):
        Call("c\x001", "seoul", CALL["start"], 600, "conf_out", "+33142685300")
    [record] = Rerate(store, [_own_file(tmp_path, _as_row(call))], known_at=KNOWN_AT).records()
    assert ("rejected", str(raised.value)) == (record["outcome"], record["error"])
    assert "without NUL characters" in record["error"]


def test_engine_rate_all_takes_dicts_as_rate_does(store):
    later = {**CALL, "call_id": "c2", "start": "2021-06-11T09:00:00Z"}
    ratings = store.rater(known_at=KNOWN_AT).rate_all([later, CALL])
    assert [("c2", 10, 20), ("c1", 0, 10)] == [(r.call_id, r.pool.used_before, r.pool.used_after)
                                                  for r in ratings]


def test_engine_explain_and_rerate_agree_on_changed(tmp_path):
    """explain used to compare two beliefs and say "No difference" for a call that rerate marks changed
    (against the bill). When the input says what was billed, both compare with the bill."""
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "rerate", str(TEAMS), str(OWN), "--tenant",
                                      "contoso", "--known-at", KNOWN_AT, *FACTS])
    records = [json.loads(line) for line in result.stdout.splitlines()]
    billed = [record for record in records if "billed" in record]
    assert 21 == len(records) and len(billed) >= 10
    for record in billed:
        explained = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "explain", record["call_id"], "--calls",
                                             str(TEAMS), "--calls", str(OWN), "--tenant", "contoso", "--known-at",
                                             KNOWN_AT, "--json"])
        assert 0 == explained.exit_code, explained.output
        answer = json.loads(explained.stdout)
        assert (record["call_id"], record["changed"], record["change"]) == (
            record["call_id"], answer["changed"], answer["change"])
        now = answer["now"]["rating"]
        assert {key: record[key] for key in now if key in record} == {key: now[key] for key in now if key in record}


def test_engine_rate_explain_and_rerate_give_the_same_record(store):
    """The one record: what store.rate (rate --json) says of a call is what rerate writes for it, field for
    field (rerate adds file and line, and what was billed)."""
    run = Rerate(store, [TEAMS, OWN], known_at=KNOWN_AT, default_tenant="contoso")
    bulk = {record["call_id"]: record for record in run.records()}
    rows = [row for row in run.rows() if row.call is not None and row.row is not None]
    calls = [with_licenses(row.row, row.call, store.tenant_index) for row in rows]  # type: ignore[arg-type]
    ratings = store.rater(known_at=KNOWN_AT).rate_all(calls)
    assert 21 == len(ratings)
    for rating in ratings:
        one = rating_record(rating)
        record = bulk[rating.call_id]
        assert set(record) - set(one) <= {"file", "line", "billed", "changed", "change"}
        assert {key: one[key] for key in record if key in one} == {key: record[key] for key in record if key in one}


def test_engine_one_alert_per_threshold_per_pool_month(tmp_path, store):
    """contoso's dial-out pool in 2020-10 grows from 600 to 720 minutes mid-month (licenses bought): the 80 %
    alert fired at 480/600 and then again at 660/720. It fires once; the summary says the capacity changed."""
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "rerate", str(TEAMS), str(OWN), "--tenant",
                                      "contoso", "--known-at", KNOWN_AT, *FACTS])
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert ["80% of pool audio_conferencing.dial_out_pool for 2020-10 (480/600 minutes)"] == [
        alert for record in records for alert in record.get("alerts", []) if "2020-10" in alert]
    assert ("  contoso audio_conferencing.dial_out_pool 2020-10 minutes: 660 / 720 (capacity 600 -> 720 in the "
            "month) (92 %), alerts: 80% (480/600 minutes)") in result.stderr.splitlines()
    # The same through store.rate with one pool state, call after call:
    state = PoolState()
    rows = sorted((row for row in Rerate(store, [TEAMS], known_at=KNOWN_AT, default_tenant="contoso").rows()
                   if row.call is not None and row.call.start.format("YYYY-MM") == "2020-10"),
                  key=lambda row: row.call.start)  # type: ignore[union-attr]
    alerts = [alert for row in rows for alert in store.rate(
        with_licenses(row.row, row.call, store.tenant_index), known_at=KNOWN_AT,  # type: ignore[arg-type]
        pool_state=state).alerts]
    assert ["80% of pool audio_conferencing.dial_out_pool for 2020-10 (480/600 minutes)"] == alerts


def test_engine_summary_shows_use_against_the_capacity_that_applied(tmp_path):
    """Licenses cut mid-month: 160 minutes were drawn on a 240-minute pool, then the pool fell to 60. The
    summary said "160 / 60"; it says the capacity the draws met, and that it changed."""
    tenants = tmp_path / "tenants.csv"
    tenants.write_text("tenant_id,valid_from,country,communications_credits\nacme,2020-01-01,FR,true\n",
                       encoding="utf-8")
    licenses = tmp_path / "licenses.csv"
    licenses.write_text("tenant_id,valid_from,sku,usage_location,purchased,assigned\n"
                        "acme,2021-01-01,audio_conferencing,FR,4,4\nacme,2021-03-15,audio_conferencing,FR,1,1\n"
                        "acme,2021-01-01,communications_credits,FR,5,5\n", encoding="utf-8")
    call = {"tenant_id": "acme", "call_type": "conf_out", "usage_location": "FR",
            "licenses": "audio_conferencing;communications_credits", "destination": "+33142685300"}
    path = _own_file(tmp_path, *(_as_row({**call, "call_id": call_id, "start": start, "duration_seconds": seconds})
                                 for call_id, start, seconds in (("a", "2021-03-02T10:00:00Z", 9000),
                                                                 ("b", "2021-03-05T10:00:00Z", 600),
                                                                 ("c", "2021-03-20T10:00:00Z", 600))))
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "rerate", str(path), "--tenants", str(tenants),
                                      "--licenses", str(licenses), "--known-at", KNOWN_AT])
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [("dial_out_pool", 150, 240), ("dial_out_pool", 160, 240), ("communications_credits", 160, 60)] == [
        (r["outcome"], r["pool_used_after"], r["pool_capacity"]) for r in records]
    assert ("  acme audio_conferencing.dial_out_pool 2021-03 minutes: 160 / 240 (capacity 240 -> 60 in the month) "
            "(67 %)") in result.stderr.splitlines()


def test_engine_rate_json_is_the_record(tmp_path):
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "rate", "--call", json.dumps(CALL), *FACTS,
                                      "--known-at", KNOWN_AT, "--json"])
    record = json.loads(result.stdout)
    assert ["call_id", "tenant_id", "start", "call_type", "outcome", "billable_minutes", "pool_minutes",
            "credit_minutes", "uncovered_minutes", "destination_country", "number_type", "pool", "pool_capacity",
            "pool_used_before", "pool_used_after", "policy_versions", "alerts", "warnings", "as_of", "known_at",
            "trace"] == list(record)
    assert ("audio_conferencing.complimentary_dial_out", 18000, 0, 10) == (
        record["pool"], record["pool_capacity"], record["pool_used_before"], record["pool_used_after"])


def test_engine_uses_no_private_attribute_of_another_package():
    package = ROOT / "policyhistory"
    found = [f"{path.name}:{number}: {line.strip()}" for path in sorted(package.glob("*.py"))
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
             if re.search(r"phonenumbers\._|phonenumberutil\._|\.__wrapped__|encode_basestring", line)]
    assert [] == found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call_ids=st.lists(st.text(min_size=1, max_size=6).filter(lambda text: "\x00" not in text), min_size=1,
                         max_size=6, unique=True),
       billed=st.sampled_from([None, {"billed_outcome": "blocked", "billed_minutes": "3", "billed_charge": "0.1",
                                      "currency": "€\"\\"}]))
def test_engine_records_are_json_dumps_text_whatever_the_ids_hold(tmp_path, call_ids, billed):
    """Rerate writes its JSON Lines without building each record's dict: every line must be the text
    json.dumps gives the record (quotes, backslashes, control characters, any script)."""
    tenant = 't "é\\'
    tenants, licenses = tmp_path / "tenants.jsonl", tmp_path / "licenses.jsonl"
    tenants.write_text(json.dumps({"tenant_id": tenant, "valid_from": "2018-01-01", "country": "KR",
                                   "communications_credits": "true"}) + "\n", encoding="utf-8")
    licenses.write_text(json.dumps({"tenant_id": tenant, "valid_from": "2018-01-01", "sku": "audio_conferencing",
                                    "usage_location": "KR", "purchased": "1", "assigned": "1"}) + "\n",
                        encoding="utf-8")
    store = policyhistory.open(clock=fixed_clock)
    store.load_tenant_facts(tenants, licenses)
    path = tmp_path / "calls.jsonl"
    path.write_text("".join(json.dumps({**CALL, "call_id": call_id, "tenant_id": tenant, **(billed or {}),
                                        "start": f"2021-06-1{index % 10}T09:00:00Z"}) + "\n"
                            for index, call_id in enumerate(call_ids)), encoding="utf-8")
    lines = list(Rerate(store, [path], known_at=KNOWN_AT).records_json())
    assert len(call_ids) == len(lines)
    assert [json.dumps(json.loads(line)) for line in lines] == lines
    assert all(json.loads(line)["outcome"] == "complimentary" for line in lines)
