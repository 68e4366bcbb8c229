"""Bulk re-rating agrees with rating calls one by one: same outcomes, minutes, pools, alerts and warnings,
whatever the input order and however the sort is split into spilled runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pendulum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policyhistory
from policyhistory import Call, PolicyHistoryError, Rerate

from .conftest import fixed_clock

KNOWN_AT = pendulum.datetime(2026, 11, 23, tz="UTC")
TENANTS = "tenant_id,valid_from,country,communications_credits\nacme,2017-01-01,FR,true\nseoul,2017-01-01,KR,false\n"
LICENSES = """tenant_id,valid_from,sku,usage_location,purchased,assigned
acme,2017-01-01,audio_conferencing,FR,3,2
acme,2020-11-01,audio_conferencing,FR,4,1
acme,2017-01-01,communications_credits,FR,5,5
acme,2017-01-01,calling_plan_international,US,2,1
seoul,2017-01-01,audio_conferencing,KR,1,1
"""
COLUMNS = ["call_id", "tenant_id", "start", "duration_seconds", "call_type", "organizer_id",
           "organizer_usage_location", "organizer_licenses", "destination"]
DESTINATIONS = ["+33142685300", "+14155552671", "+263242700000", "+819012345678", "+18005551234", "+449012345678"]
LICENSE_SETS = ["audio_conferencing;communications_credits", "audio_conferencing", "communications_credits",
                "calling_plan_international;communications_credits", "audio_conferencing;us_ca_dial_out"]

calls = st.lists(
    st.tuples(
        st.sampled_from(["acme", "seoul"]),
        st.integers(min_value=0, max_value=24 * 3600 * 40 - 1),  # 40 days around a boundary
        st.sampled_from(["2018-06-15T00:00:00Z", "2019-11-20T00:00:00Z", "2020-10-10T00:00:00Z"]),
        st.integers(min_value=0, max_value=4 * 3600),
        st.sampled_from(["conf_out", "user_out", "conf_in"]),
        st.sampled_from(DESTINATIONS),
        st.sampled_from(["FR", "US", "KR", ""]),
        st.sampled_from(LICENSE_SETS),
    ),
    min_size=1, max_size=40)


def call_rows(calls: list[tuple[Any, ...]]) -> list[dict[str, str]]:
    """The rows of our layout for calls drawn from `calls` (each 20 days before to 20 days after its boundary)."""
    rows = []
    for index, (tenant, offset, around, duration, kind, destination, location, licenses) in enumerate(calls):
        start = pendulum.parse(around).subtract(days=20).add(seconds=offset)
        rows.append({"call_id": f"c{index}", "tenant_id": tenant, "start": policyhistory.format_instant(start),
                     "duration_seconds": str(duration), "call_type": kind, "organizer_id": "o",
                     "organizer_usage_location": location, "organizer_licenses": licenses,
                     "destination": destination})
    return rows


def _store(tmp: Path, tenants: str = TENANTS, licenses: str = LICENSES) -> policyhistory.Store:
    (tmp / "tenants.csv").write_text(tenants, encoding="utf-8")
    (tmp / "licenses.csv").write_text(licenses, encoding="utf-8")
    store = policyhistory.open(clock=fixed_clock)
    store.load_tenant_facts(tmp / "tenants.csv", tmp / "licenses.csv")
    return store


def _one_by_one(store: policyhistory.Store, rows: list[dict[str, str]]) -> dict[str, tuple[object, ...]]:
    """The reference: each call rated alone, in (tenant, start, call id) order, pools carried by a Rater."""
    rater = store.rater(known_at=KNOWN_AT)
    found: dict[str, tuple[object, ...]] = {}
    built = [Call(row["call_id"], row["tenant_id"], row["start"], row["duration_seconds"], row["call_type"],
                  row["destination"], usage_location=row["organizer_usage_location"] or None,
                  licenses=row["organizer_licenses"]) for row in rows]
    for call in sorted(built, key=lambda c: (c.tenant_id, c.start, c.call_id)):
        try:
            rating = rater.rate(call)
        except PolicyHistoryError as error:
            found[call.call_id] = ("rejected", str(error))
            continue
        pool = rating.pool
        found[call.call_id] = (rating.outcome, rating.billable_minutes, rating.pool_minutes, rating.credit_minutes,
                               rating.uncovered_minutes, pool.key.pool if pool else None,
                               pool.used_before if pool else None, pool.used_after if pool else None,
                               list(rating.policy_versions), list(rating.alerts), list(rating.warnings))
    return found


def _bulk(store: policyhistory.Store, path: Path, sort_chunk: int, shards: int) -> dict[str, tuple[object, ...]]:
    run = Rerate(store, [path], known_at=KNOWN_AT, sort_chunk=sort_chunk, shards=shards)
    found: dict[str, tuple[object, ...]] = {}
    for record in run.records():
        if record["outcome"] == "rejected":
            found[record["call_id"]] = ("rejected", record["error"])
        else:
            found[record["call_id"]] = tuple(record[key] for key in (
                "outcome", "billable_minutes", "pool_minutes", "credit_minutes", "uncovered_minutes", "pool",
                "pool_used_before", "pool_used_after", "policy_versions", "alerts", "warnings"))
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=calls, sort_chunk=st.sampled_from([1, 3, 1_000_000]), shards=st.sampled_from([1, 2, 3, 7]))
def test_rerate_agreement_with_one_by_one_rating(tmp_path, calls, sort_chunk, shards):
    # sort_chunk: rows of a shard rated at once; shards: tenant shards. Neither edge may matter.
    rows = call_rows(calls)
    path = tmp_path / f"calls-{len(rows)}-{sort_chunk}.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    store = _store(tmp_path)
    assert _one_by_one(store, rows) == _bulk(store, path, sort_chunk, shards)


def test_rerate_agreement_spilled_runs_give_the_same_records(tmp_path):
    examples = Path(__file__).resolve().parent.parent / "examples"
    store = policyhistory.open(clock=fixed_clock)
    store.load_tenant_facts(examples / "tenants.csv", examples / "licenses.csv")
    paths = [examples / "PSTN.calls.2022-06-30.csv", examples / "calls.csv"]
    whole = list(Rerate(store, paths, known_at=KNOWN_AT, default_tenant="contoso").records_json())
    spilled = list(Rerate(store, paths, known_at=KNOWN_AT, default_tenant="contoso", sort_chunk=2).records_json())
    assert 21 == len(whole)
    assert whole == spilled


def test_rerate_agreement_duplicate_call_is_refused_once_in_start_order(tmp_path):
    store = _store(tmp_path)
    path = tmp_path / "calls.csv"
    # The later call (by start) comes first in the file: it is the one refused, and the pool is drawn once.
    path.write_text(",".join(COLUMNS) + "\n"
                    "dup,acme,2020-03-10T10:00:00Z,600,conf_out,o,FR,audio_conferencing,+33142685300\n"
                    "dup,acme,2020-03-02T10:00:00Z,300,conf_out,o,FR,audio_conferencing,+33142685300\n"
                    "dup,seoul,2020-03-02T10:00:00Z,300,conf_out,o,KR,audio_conferencing,+33142685300\n"
                    "next,acme,2020-03-20T10:00:00Z,60,conf_out,o,FR,audio_conferencing,+33142685300\n",
                    encoding="utf-8")
    run = Rerate(store, [path], known_at=KNOWN_AT)
    records = [json.loads(text) for text in run.records_json()]
    assert [("rejected", None), ("dial_out_pool", 0), ("complimentary", 0), ("dial_out_pool", 5)] == [
        (r["outcome"], r.get("pool_used_before")) for r in records]
    assert "call 'dup' has already drawn on this pool state" in records[0]["error"]
    assert (4, 3, 1) == (run.summary.rows, run.summary.rated, run.summary.rejected)


def _field(valid: list[str]) -> st.SearchStrategy[str]:
    """Mostly a valid value, sometimes arbitrary text (commas, quotes, line breaks, any script)."""
    return st.one_of(st.sampled_from(valid), st.text(max_size=6))


malformed_calls = st.lists(
    st.tuples(_field(["acme", "seoul"]), _field(["2018-06-20T10:00:00Z", "2020-10-21T23:30:00Z"]),
              _field(["0", "61", "3600"]), _field(["conf_out", "user_out", "conf_in"]), _field(DESTINATIONS),
              _field(["FR", "US", "KR", ""]), _field(LICENSE_SETS)),
    min_size=1, max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=malformed_calls, shards=st.sampled_from([1, 2, 5]))
def test_rerate_agreement_with_malformed_fields(tmp_path, calls, shards):
    """Whatever the fields hold, every row comes out once, in order, rated or rejected, and bulk re-rating
    rejects exactly the rows that building and rating the call one by one refuses, with the same outcome
    for the others."""
    rows = [{"call_id": f"c{index}", "tenant_id": tenant, "start": start, "duration_seconds": duration,
             "call_type": kind, "organizer_id": "o", "organizer_usage_location": location,
             "organizer_licenses": licenses, "destination": destination}
            for index, (tenant, start, duration, kind, destination, location, licenses) in enumerate(calls)]
    path = tmp_path / "malformed.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    store = _store(tmp_path)
    records = list(Rerate(store, [path], known_at=KNOWN_AT, shards=shards).records())
    assert [row["call_id"] for row in rows] == [record["call_id"] for record in records]
    assert sorted(record["line"] for record in records) == [record["line"] for record in records]
    built = []
    expected: dict[str, str] = {}
    for row in rows:
        if any("\n" in value or "\r" in value for value in row.values()):
            expected[row["call_id"]] = "rejected"  # a record over several lines is unreadable (see _rows)
            continue
        try:
            built.append(Call(row["call_id"], row["tenant_id"], row["start"], row["duration_seconds"],
                              row["call_type"], row["destination"],
                              usage_location=row["organizer_usage_location"] or None,
                              licenses=row["organizer_licenses"]))
        except PolicyHistoryError:
            expected[row["call_id"]] = "rejected"
    rater = store.rater(known_at=KNOWN_AT)
    for call in sorted(built, key=lambda c: (c.tenant_id, c.start, c.call_id)):
        try:
            expected[call.call_id] = rater.rate(call).outcome
        except PolicyHistoryError:
            expected[call.call_id] = "rejected"
    assert expected == {record["call_id"]: record["outcome"] for record in records}
    assert all(record["error"] for record in records if record["outcome"] == "rejected")


def _plain_field(valid: list[str]) -> st.SearchStrategy[str]:
    """A valid value, or text without quotes or line breaks (what the columnar reader takes): spaces, signs,
    digits, letters of other scripts, NUL. Mostly a listed value, so that many rows pass every check."""
    return st.one_of(*[st.sampled_from(valid)] * 7, st.text(st.sampled_from(" +-.0123456789aZé٣\x00:TZ"), max_size=8))


plain_calls = st.lists(
    st.tuples(_field(["c1", "c2", ""]), _plain_field(["acme", "seoul", ""]),
              _plain_field(["2018-06-20T10:00:00Z", "2020-10-21T23:30:00Z", "2020-10-21T23:30:00+02:00",
                            "2020-02-30T10:00:00Z"]),
              _plain_field(["0", "61", "3600", "9999999", " 60"]), _plain_field(["conf_out", "user_out", " CONF_IN"]),
              _plain_field(DESTINATIONS), _plain_field(["FR", "US", "KR", ""]), _plain_field(LICENSE_SETS),
              _plain_field(["", "complimentary", " Blocked ", "nope"]), _plain_field(["", "3", "2.5", "1e3", "nan"]),
              _plain_field(["", "0.36", "0,36", "-1"]), _plain_field(["", "USD"])),
    min_size=1, max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=plain_calls, delimiter=st.sampled_from([",", ";", "\t"]), crlf=st.booleans(),
       last=st.sampled_from(["\n", "\r\n", ""]), stray=st.one_of(st.none(), st.integers(0, 2000)))
def test_rerate_agreement_columnar_reader_reads_as_the_csv_module_does(tmp_path, monkeypatch, calls, delimiter,
                                                                       crlf, last, stray):
    """A CSV file of our layout read by polars where it can be (and by the csv module in the pieces it cannot)
    gives the same records, errors and lines as the csv module row by row, whatever the fields hold: LF or
    CRLF line ends, the last line's own (or none), a carriage return anywhere (`stray`)."""
    columns = [*COLUMNS, "billed_outcome", "billed_minutes", "billed_charge", "currency"]
    lines = [delimiter.join(columns)]
    for index, (call_id, tenant, start, duration, kind, destination, location, licenses, outcome, minutes, charge,
                currency) in enumerate(calls):
        lines.append(delimiter.join([f"{call_id}{index}", tenant, start, duration, kind, "o", location, licenses,
                                     destination, outcome, minutes, charge, currency]))
    path = tmp_path / "plain.csv"
    text = ("\r\n" if crlf else "\n").join(lines) + last
    if stray is not None:
        at = len(lines[0]) + 1 + stray % max(1, len(text) - len(lines[0]))
        text = text[:at] + "\r" + text[at:]
    path.write_bytes(text.encode("utf-8"))
    store = _store(tmp_path)
    columnar = list(Rerate(store, [path], known_at=KNOWN_AT).records_json())
    with monkeypatch.context() as patched:  # undone after each example
        patched.setattr("policyhistory._reading.own_csv_pieces", lambda path: None)
        row_by_row = list(Rerate(store, [path], known_at=KNOWN_AT).records_json())
    assert row_by_row == columnar


def test_rerate_agreement_a_quote_left_open_in_a_crlf_file_keeps_its_crlf(tmp_path, monkeypatch):
    """Found by the test above: a piece the columnar path hands to the csv module was read with its CRLF
    already made LF, so a quote left open took in the next lines with LF where the csv module reads CRLF."""
    columns = [*COLUMNS, "billed_outcome", "billed_minutes", "billed_charge", "currency"]

    def row(call_id: str) -> str:
        return ",".join([call_id, "acme", "2018-06-20T10:00:00Z", "0", "conf_out", "o", "FR",
                         "audio_conferencing;communications_credits", "+33142685300", "", "", "", ""])

    path = tmp_path / "plain.csv"
    path.write_bytes(("\r\n".join([",".join(columns), row("c1"), row('"7'), row("c8")]) + "\n").encode("utf-8"))
    store = _store(tmp_path)
    columnar = list(Rerate(store, [path], known_at=KNOWN_AT).records_json())
    with monkeypatch.context() as patched:
        patched.setattr("policyhistory._reading.own_csv_pieces", lambda path: None)
        row_by_row = list(Rerate(store, [path], known_at=KNOWN_AT).records_json())
    assert row_by_row == columnar
    assert "\\r\\n" in columnar[1] and "unreadable row" in columnar[1]
