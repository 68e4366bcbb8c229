"""Bulk re-rating through the CLI: layouts, rejects, order, knowledge dates, exit statuses, memory."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import policyhistory
from policyhistory.cli import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TEAMS = EXAMPLES / "PSTN.calls.2022-06-30.csv"
OWN = EXAMPLES / "calls.csv"
FACTS = ["--tenants", str(EXAMPLES / "tenants.csv"), "--licenses", str(EXAMPLES / "licenses.csv")]


def rerate(tmp_path, *args, db="p.db"):
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / db), "rerate", *args, *FACTS])
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result, records


def by_id(records):
    return {record["call_id"]: record for record in records}


def test_rerate_example_both_layouts(tmp_path):
    result, records = rerate(tmp_path, str(TEAMS), str(OWN), "--tenant", "contoso")
    assert 0 == result.exit_code, result.output
    assert 21 == len(records)
    assert [2, 3, 4] == [r["line"] for r in records if r["file"] == str(OWN)]
    calls = by_id(records)
    september = calls["00000000-0000-0000-0000-000000000004"]
    assert ("complimentary", 15, 0, True) == (september["outcome"], september["pool_minutes"],
                                              september["credit_minutes"], september["changed"])
    assert {"outcome": None, "minutes": None, "charge": 0.36, "currency": "USD",
            "capability": "MCOMEETADD"} == september["billed"]
    basis = calls["00000000-0000-0000-0000-00000000000a"]
    assert (720, 480, 660, True) == (basis["pool_capacity"], basis["pool_used_before"], basis["pool_used_after"],
                                     basis["changed"])
    assert ("us_ca_unlimited", "CA") == (calls["00000000-0000-0000-0000-00000000000b"]["outcome"],
                                         calls["00000000-0000-0000-0000-00000000000b"]["destination_country"])
    assert ("complimentary", True) == (calls["seoul-2"]["outcome"], calls["seoul-2"]["changed"])
    assert "rows 21: rated 21, rejected 0, changed 7" in result.stderr


def test_rerate_summary_is_whole_when_written_in_pieces(tmp_path, monkeypatch):
    """The summary goes to stderr a few thousand lines at a time; here 3, so that every edge is crossed."""
    args = [str(TEAMS), str(OWN), "--tenant", "contoso", "--known-at", "2026-11-23T00:00:00Z"]
    whole, _ = rerate(tmp_path, *args, db="whole.db")
    monkeypatch.setattr("policyhistory._cli_rerate._SUMMARY_LINES_AT_ONCE", 3)
    pieces, _ = rerate(tmp_path, *args, db="pieces.db")
    lines = pieces.stderr.splitlines()
    assert lines.pop().startswith("store digest: {")  # the store's digest: its time and hashes differ by run
    assert whole.stderr.splitlines()[:-1] == lines
    # Short (issue 16): counts, minutes, changes by kind, money per currency, the 10 pool-months nearest their
    # capacity of the 13, and where the full summary goes.
    assert 27 == len(lines)
    assert "rows 21: rated 21, rejected 0, changed 7" == lines[0]
    assert ["changed calls (what was billed -> what is now: calls):", "  billed charged -> now complimentary: 3",
            "  billed blocked -> now complimentary: 2", "  billed charged -> now dial_out_pool: 2"] == lines[8:12]
    assert "  USD: billed 3.936 on 21 call(s), recomputed 0 on 17, difference 2.64 on 17" == lines[13]
    assert lines[15].startswith("pool-months nearest their capacity (10 of 13;")
    # One alert per threshold per pool-month (the engine's ledger), and the month's capacities shown.
    assert ("  contoso audio_conferencing.dial_out_pool 2020-10 minutes: 660 / 720 (capacity 600 -> 720 in the "
            "month) (92 %), alerts: 80% (480/600 minutes)") == lines[16]
    assert "full summary (every pool-month, money per tenant and month): give --summary-json FILE" == lines[-1]


def test_rerate_masked_destination_uses_destination_dialed(tmp_path):
    _, records = rerate(tmp_path, str(TEAMS), "--tenant", "contoso")
    masked = by_id(records)["00000000-0000-0000-0000-00000000000f"]
    # "+33 1 ** ** ** **": the calling code and the leading 1 say a French fixed line (was "unknown", from the
    # name France in Destination Dialed).
    assert ("FR", "fixed_line", "dial_out_pool") == (masked["destination_country"], masked["number_type"],
                                                     masked["outcome"])


def test_rerate_known_at_the_invoice_date_reproduces_the_2018_bill(tmp_path):
    _, then = rerate(tmp_path, str(TEAMS), "--tenant", "contoso", "--known-at", "2018-10-01")
    september = by_id(then)["00000000-0000-0000-0000-000000000004"]
    assert ("communications_credits", 15, False) == (september["outcome"], september["credit_minutes"],
                                                     september["changed"])
    # Every 2018 bill is reproduced as it was made.
    assert [False] * 4 == [r["changed"] for r in then if r["start"].startswith("2018")]
    # Calling Plans and dial-in were stated from the pages' first upload (2017-11-28): as known in October 2018,
    # a 2022 Calling Plan call and a dial-in call are rated, not refused.
    plan = by_id(then)["00000000-0000-0000-0000-000000000011"]
    assert ("calling_plan", 25, "calling_plan.domestic:US+PR") == (plan["outcome"], plan["pool_minutes"],
                                                                     plan["pool"])
    assert "free" == by_id(then)["00000000-0000-0000-0000-00000000000e"]["outcome"]
    assert [] == [r for r in then if r["outcome"] == "rejected"]


def test_rerate_known_before_anything_names_the_first_record(tmp_path):
    result, records = rerate(tmp_path, str(OWN), "--known-at", "2017-06-01")
    assert 3 == result.exit_code
    assert ("nothing was known yet about 'minute_rounding' as of 2017-06-01T00:00:00Z; its first record was "
            "published 2017-11-28T22:11:00Z (no policy in force at 2019-03-05T01:00:00Z as known then)"
            ) == records[0]["error"]


def test_rerate_tab_delimited_skype_for_business_export(tmp_path):
    tabbed = tmp_path / "PSTN.calls.sfb.csv"  # named .csv, tab-delimited, as the SfB export is
    with TEAMS.open(encoding="utf-8") as source, tabbed.open("w", encoding="utf-8", newline="") as target:
        csv.writer(target, delimiter="\t").writerows(csv.reader(source))
    _, comma = rerate(tmp_path, str(TEAMS), "--tenant", "contoso")
    _, tab = rerate(tmp_path, str(tabbed), "--tenant", "contoso", db="q.db")
    assert [r["outcome"] for r in comma] == [r["outcome"] for r in tab]


def test_rerate_25_column_export(tmp_path):
    newer = tmp_path / "PSTN.calls.2025.csv"
    with TEAMS.open(encoding="utf-8") as source, newer.open("w", encoding="utf-8", newline="") as target:
        rows = list(csv.DictReader(source))
        columns = ["UsageId", "Call ID", "Conference ID", "User Location", "Microsoft Entra ObjectId", "UPN",
                   "User Display Name", "Caller ID", "Call Type", "Call Direction", "Number Type",
                   "Domestic/International", "Destination Dialed", "Destination Number", "External Country",
                   "Start Time", "End Time", "Duration Seconds", "Connection Fee", "Charge", "Currency",
                   "Capability", "Operator", "Source of Call Duration", "Administrative Units"]
        writer = csv.DictWriter(target, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    _, records = rerate(tmp_path, str(newer), "--tenant", "contoso")
    _, older = rerate(tmp_path, str(TEAMS), "--tenant", "contoso", db="q.db")
    assert [r["outcome"] for r in older] == [r["outcome"] for r in records]


def test_rerate_rejected_rows_beside_good_ones_exit_3(tmp_path):
    bad = tmp_path / "calls.csv"
    lines = OWN.read_text(encoding="utf-8").splitlines()
    lines.insert(2, "broken-1,seoul,2020-06-15T02:00:00,60,conference_dial_out,o,KR,audio_conferencing,+4420,,,,")
    lines.append("broken-2,nobody,2020-06-15T02:00:00Z,60,conference_dial_out,o,KR,audio_conferencing,FR,,,,")
    lines.append("broken-3,seoul,2020-06-15T02:00:00Z,sixty,conference_dial_out,o,KR,audio_conferencing,FR,,,,")
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result, records = rerate(tmp_path, str(bad))
    assert 3 == result.exit_code
    assert [("seoul-1", 2, "complimentary"), ("broken-1", 3, "rejected"), ("seoul-2", 4, "complimentary"),
            ("seoul-3", 5, "complimentary"), ("broken-2", 6, "rejected"), ("broken-3", 7, "rejected")] == [
        (r["call_id"], r["line"], r["outcome"]) for r in records]
    errors = {r["call_id"]: r["error"] for r in records if r["outcome"] == "rejected"}
    assert "start: expected an aware instant" in errors["broken-1"]
    assert "no tenant facts for 'nobody'" in errors["broken-2"]
    assert "field 'duration_seconds': expected a whole number of seconds, got 'sixty'" == errors["broken-3"]
    assert "rows 6: rated 3, rejected 3" in result.stderr


def test_rerate_unusable_arguments_exit_2(tmp_path):
    result, _ = rerate(tmp_path, str(TEAMS), str(tmp_path / "missing.csv"))
    assert 2 == result.exit_code
    two_tenants, _ = rerate(tmp_path, str(TEAMS))  # Teams layout, two tenants known, no --tenant
    assert 2 == two_tenants.exit_code
    assert "--tenant" in two_tenants.output


def test_rerate_input_order_does_not_change_ratings(tmp_path):
    shuffled = tmp_path / "shuffled.csv"
    with TEAMS.open(encoding="utf-8") as source:
        rows = list(csv.reader(source))
    body = rows[1:]
    random.Random(7).shuffle(body)
    with shuffled.open("w", encoding="utf-8", newline="") as target:
        csv.writer(target).writerows([rows[0], *body])
    _, ordered = rerate(tmp_path, str(TEAMS), "--tenant", "contoso")
    _, mixed = rerate(tmp_path, str(shuffled), "--tenant", "contoso", db="q.db")
    drop = ("line", "file", "run_id", "known_at")  # each run has its own id, and its own "now"
    assert {r["call_id"]: {k: v for k, v in r.items() if k not in drop} for r in ordered} == {
        r["call_id"]: {k: v for k, v in r.items() if k not in drop} for r in mixed}
    assert [r["call_id"] for r in mixed] == [row[1] for row in body]  # output keeps input order


def test_rerate_csv_output(tmp_path):
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "rerate", str(OWN), *FACTS,
                                      "--format", "csv", "--output", str(out)])
    assert 0 == result.exit_code
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [("seoul-1", "complimentary", "blocked", "True")] == [
        (r["call_id"], r["outcome"], r["billed_outcome"], r["changed"]) for r in rows[:1]]


def write_synthetic(path: Path, count: int, distinct_numbers: bool = False) -> None:
    """`distinct_numbers`: every row dials a number of its own (its last five digits vary)."""
    destinations = ["+33142685300", "+442071234567", "+263242700000", "+14155552671", "+4930901820"]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["call_id", "tenant_id", "start", "duration_seconds", "call_type", "organizer_id",
                         "organizer_usage_location", "organizer_licenses", "destination"])
        for index in range(count):
            day = 1 + index % 28
            writer.writerow([f"c{index}", "contoso", f"2021-0{1 + index % 9}-{day:02d}T{index % 24:02d}:00:00Z",
                             60 + index % 900, "conf_out", "o", "US", "MCOMEETADD;MCOPSTNC",
                             destinations[index % len(destinations)][:-5] + f"{index:05d}" if distinct_numbers
                             else destinations[index % len(destinations)]])


def _peak_mb(tmp_path: Path, count: int) -> tuple[float, int]:
    """(peak resident MB, records written) of `policyhistory rerate --workers 1` over `count` generated calls
    of one tenant (one shard, rated in chunks), each dialing a number of its own, in a process of its own."""
    calls = tmp_path / f"big-{count}.csv"
    write_synthetic(calls, count, distinct_numbers=True)
    out = tmp_path / f"out-{count}.jsonl"
    # The process's own high-water mark (VmHWM, in kB), not ru_maxrss: Linux carries ru_maxrss over an exec, so
    # a child forked from a grown pytest process reported pytest's size (up to 857 MB inside the whole suite).
    script = ("import sys\n"
              "from policyhistory.cli import cli\n"
              "try:\n    cli(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
              "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:')))\n")
    done = subprocess.run([sys.executable, "-c", script, "--db", str(tmp_path / f"p-{count}.db"), "rerate",
                           str(calls), *FACTS, "--output", str(out), "--workdir", str(tmp_path), "--workers", "1"],
                          capture_output=True, text=True, check=True)
    with out.open(encoding="utf-8") as handle:
        records = sum(1 for line in handle if line.startswith('{"file"'))
    return int(done.stdout.split()[-1]) / 1024, records


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/status")
def test_rerate_memory_is_bounded_by_the_chunk_not_the_input(tmp_path):
    """Not timed: four times the calls (all of one tenant: one shard, rated in chunks of 20,000) must not take
    four times the memory. What grows with the input is the shard's columnar frame (about 300 bytes a call)
    and the run's memory of the distinct numbers and of the call ids charged: about 830 bytes a call here, where
    holding the rows and their records as Python objects would add 2,000 more."""
    small, small_records = _peak_mb(tmp_path, 30_000)
    large, large_records = _peak_mb(tmp_path, 120_000)
    assert (30_000, 120_000) == (small_records, large_records)
    assert large - small < 130, f"{small:.0f} MB for 30,000 calls, {large:.0f} MB for 120,000"
    assert large < 500  # the bound


def test_rerate_json_lines_input(tmp_path):
    jsonl = tmp_path / "calls.jsonl"
    with OWN.open(encoding="utf-8") as source:
        jsonl.write_text("".join(json.dumps(row) + "\n" for row in csv.DictReader(source)), encoding="utf-8")
    _, from_csv = rerate(tmp_path, str(OWN))
    _, from_jsonl = rerate(tmp_path, str(jsonl), db="q.db")
    assert [(r["call_id"], r["outcome"], r["changed"]) for r in from_csv] == [
        (r["call_id"], r["outcome"], r["changed"]) for r in from_jsonl]
    assert [2, 3, 4] == [r["line"] for r in from_csv]
    assert [1, 2, 3] == [r["line"] for r in from_jsonl]  # JSON Lines count lines from the first record


def test_rerate_json_lines_with_values_of_any_type(tmp_path):
    """A JSON record's numbers are read as their text, as in CSV; an object, a list where no list belongs, or a
    line that is not an object is a rejected row: every line comes out, and the run goes on."""
    good = {"call_id": "c1", "tenant_id": "contoso", "start": "2021-03-04T09:03:45Z", "duration_seconds": 60,
            "call_type": "conf_out", "organizer_usage_location": "US", "organizer_licenses": ["MCOMEETADD"],
            "destination": 33142685300, "billed_outcome": "dial_out_pool", "billed_minutes": 0, "billed_charge": 0}
    lines = ["null", json.dumps(good), json.dumps({**good, "call_id": "c2", "call_type": {"a": 1}}),
             json.dumps({**good, "call_id": "c3", "organizer_licenses": ["MCOMEETADD", 3]}), "5",
             json.dumps({**good, "call_id": "c4", "billed_minutes": "nan"})]
    jsonl = tmp_path / "calls.jsonl"
    jsonl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result, records = rerate(tmp_path, str(jsonl))
    assert 3 == result.exit_code, result.output
    assert [(1, None, "rejected", "row"), (2, "c1", "dial_out_pool", None), (3, "c2", "rejected", "call_type"),
            (4, "c3", "rejected", "organizer_licenses"), (5, None, "rejected", "row"),  # c3: the license "3", as in CSV
            (6, "c4", "rejected", "billed_minutes")] == [
        (r["line"], r["call_id"], r["outcome"], r["error"].split("'")[1] if "error" in r else None) for r in records]
    assert ("FR", False) == (records[1]["destination_country"], records[1]["changed"])


def test_rerate_what_if_as_of(tmp_path):
    result, records = rerate(tmp_path, str(TEAMS), "--tenant", "contoso", "--as-of", "2018-06-15",
                             "--known-at", "2026-11-23")
    basis = by_id(records)["00000000-0000-0000-0000-00000000000a"]  # 22 October 2020, under June 2018's rules
    assert ("complimentary", "audio_conferencing.complimentary_dial_out", 9000) == (
        basis["outcome"], basis["pool"], basis["pool_capacity"])
    assert "rated under the rules of 2018-06-15T00:00:00Z, as known at 2026-11-23T00:00:00Z" in result.stderr


@pytest.mark.parametrize(("given", "expected"), [
    ("2021-03-04T09:03:45Z", "2021-03-04T09:03:45Z"),
    ("2021-03-04T090345.1Z", "2021-03-04T09:03:45.100000Z"),  # as long as the common form, not it
    ("2021-03-04T10:03:45+01:00", "2021-03-04T09:03:45Z"),
])
def test_rerate_start_comes_out_in_utc_iso_form(tmp_path, given, expected):
    calls = tmp_path / "calls.csv"
    calls.write_text("call_id,tenant_id,start,duration_seconds,call_type,organizer_usage_location,"
                     f"organizer_licenses,destination\nc1,contoso,{given},60,conf_out,US,MCOMEETADD,+33142685300\n",
                     encoding="utf-8")
    result, records = rerate(tmp_path, str(calls))
    assert 0 == result.exit_code, result.output
    assert [expected] == [record["start"] for record in records]


def test_rerate_duration_that_only_looks_like_digits_is_rejected(tmp_path):
    calls = tmp_path / "calls.csv"
    calls.write_text("call_id,tenant_id,start,duration_seconds,call_type,organizer_usage_location,"
                     "organizer_licenses,destination\n"
                     "c1,contoso,2021-03-04T09:03:45Z,\u00b2,conf_out,US,MCOMEETADD,+33142685300\n"  # superscript two
                     "c2,contoso,2021-03-04T09:05:00Z,60,conf_out,US,MCOMEETADD,+33142685300\n", encoding="utf-8")
    result, records = rerate(tmp_path, str(calls))
    assert 3 == result.exit_code, result.output
    assert [("c1", "rejected"), ("c2", "dial_out_pool")] == [(r["call_id"], r["outcome"]) for r in records]
    assert "duration_seconds" in records[0]["error"]


@pytest.mark.parametrize(("field", "value"), [
    ("duration_seconds", "INF"),
    ("duration_seconds", "99999999999"),
    ("duration_seconds", "-5"),
    ("billed_minutes", "nan"),
    ("billed_minutes", "inf"),
    ("billed_charge", "NaN"),
])
def test_rerate_out_of_range_number_is_a_rejected_row(tmp_path, field, value):
    row = {"call_id": "c1", "tenant_id": "contoso", "start": "2021-03-04T09:03:45Z", "duration_seconds": "60",
           "call_type": "conf_out", "organizer_usage_location": "US", "organizer_licenses": "MCOMEETADD",
           "destination": "+33142685300", "billed_outcome": "dial_out_pool", "billed_minutes": "0",
           "billed_charge": "0", "currency": "USD", field: value}
    good = {**row, "call_id": "c2", field: "60" if field == "duration_seconds" else "0"}
    calls = tmp_path / "calls.csv"
    with calls.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        writer.writeheader()
        writer.writerows([row, good])
    result, records = rerate(tmp_path, str(calls))
    assert 3 == result.exit_code, result.output
    assert [("c1", "rejected"), ("c2", "dial_out_pool")] == [(r["call_id"], r["outcome"]) for r in records]
    assert field in records[0]["error"]


@pytest.mark.parametrize(("given", "read", "error"), [
    ("credits", None, "field 'billed_outcome': expected one of complimentary, dial_out_pool, us_ca_unlimited, "
                      "calling_plan, communications_credits, free, blocked, not_microsoft_billed, emergency, or "
                      "nothing, got 'credits'"),
    (" Dial_Out_Pool ", "dial_out_pool", None),
    ("", None, None),
])
def test_rerate_billed_outcome_in_our_outcomes_names(tmp_path, given, read, error):
    """A billed outcome we do not use would mark the call changed whatever its rating: the row is refused,
    naming the field; case and spaces aside, ours are read."""
    calls = tmp_path / "calls.csv"
    with calls.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["call_id", "tenant_id", "start", "duration_seconds", "call_type",
                         "organizer_usage_location", "organizer_licenses", "destination", "billed_outcome",
                         "billed_minutes", "billed_charge", "currency"])
        writer.writerow(["c1", "contoso", "2021-03-04T09:03:45Z", "60", "conf_out", "US", "MCOMEETADD",
                         "+33142685300", given, "0", "0", "USD"])
        writer.writerow(["c2", "contoso", "2021-03-04T09:05:00Z", "60", "conf_out", "US", "MCOMEETADD",
                         "+33142685300", "dial_out_pool", "0", "0", "USD"])
    result, records = rerate(tmp_path, str(calls))
    assert ("dial_out_pool", False) == (records[1]["outcome"], records[1]["changed"])
    if error is None:
        assert 0 == result.exit_code, result.output
        assert (read, False) == (records[0]["billed"]["outcome"], records[0]["changed"])
    else:
        assert 3 == result.exit_code, result.output
        assert ("rejected", error) == (records[0]["outcome"], records[0]["error"])


def test_rerate_summary_counts_changed_calls_by_kind(tmp_path):
    calls = tmp_path / "calls.csv"
    rows = ["call_id,tenant_id,start,duration_seconds,call_type,organizer_usage_location,organizer_licenses,"
            "destination,billed_outcome,billed_minutes,billed_charge,currency"]
    # 2021: the dial-out pool covers France; one call billed as credits, one as blocked, one right, and one
    # with the right outcome but other minutes.
    for index, (outcome, minutes) in enumerate([("communications_credits", "1"), ("blocked", "0"),
                                                ("dial_out_pool", "0"), ("dial_out_pool", "3")]):
        rows.append(f"c{index},contoso,2021-03-04T09:0{index}:00Z,60,conf_out,US,MCOMEETADD,+33142685300,"
                    f"{outcome},{minutes},,USD")
    calls.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result, records = rerate(tmp_path, str(calls))
    assert [True, True, False, True] == [r["changed"] for r in records]
    lines = result.stderr.splitlines()
    start = lines.index("changed calls (what was billed -> what is now: calls):")
    assert ["  billed blocked -> now dial_out_pool: 1",
            "  billed communications_credits -> now dial_out_pool: 1",
            "  billed dial_out_pool -> now dial_out_pool, other minutes or charge: 1"] == lines[start + 1:start + 4]


def test_rerate_library_takes_knowledge_dates_as_store_rate_does(fresh_store):
    fresh_store.load_tenant_facts(EXAMPLES / "tenants.csv", EXAMPLES / "licenses.csv")
    run = policyhistory.Rerate(fresh_store, [OWN], known_at="2018-10-01")
    records = list(run.records())
    assert [("seoul-1", "blocked", False)] == [(r["call_id"], r["outcome"], r["changed"]) for r in records[:1]]
    assert (3, 1, {"billed complimentary -> now blocked": 1}) == (run.summary.rated, run.summary.changed,
                                                                  run.summary.changes)
    now = policyhistory.Rerate(fresh_store, [OWN], known_at=dt.date(2026, 11, 23))
    assert ["complimentary"] * 3 == [r["outcome"] for r in now.records()]
    assert {"billed blocked -> now complimentary": 2} == now.summary.changes
    with pytest.raises(policyhistory.NaiveDatetimeError):
        policyhistory.Rerate(fresh_store, [OWN], known_at="2026-11-23T10:00:00")


def test_rerate_csv_record_the_csv_module_refuses_or_over_several_lines_is_a_rejected_row(tmp_path):
    """An unclosed quote would take every later line into one field, and a field over the csv module's size
    limit stopped the run: each is now one rejected row, at the line where its record starts."""
    lines = OWN.read_text(encoding="utf-8").splitlines()
    too_big = lines[1].replace("+33142685300", "9" * 200_000).replace("seoul-1", "big-1")
    unclosed = lines[2].replace("seoul-2", '"seoul-2')
    calls = tmp_path / "calls.csv"
    calls.write_text("\n".join([lines[0], too_big, lines[1], unclosed, lines[3]]) + "\n", encoding="utf-8")
    result, records = rerate(tmp_path, str(calls))
    assert 3 == result.exit_code, result.output
    assert [(2, "rejected"), (3, "complimentary"), (4, "rejected")] == [(r["line"], r["outcome"]) for r in records]
    assert "unreadable row: the csv module refuses it: field larger than field limit (131072)" == records[0]["error"]
    assert ("unreadable row: the record runs from line 4 to line 5: a field holds a line break, or a quote left "
            "open takes in the lines after it") == records[2]["error"]
    assert "rows 3: rated 1, rejected 2" in result.stderr


def test_rerate_utf16_file_reads_as_utf8_does(tmp_path):
    """Excel's "Unicode Text" is UTF-16 with a byte order mark."""
    utf16 = tmp_path / "calls-utf16.csv"
    utf16.write_text(OWN.read_text(encoding="utf-8"), encoding="utf-16")
    _, expected = rerate(tmp_path, str(OWN), "--known-at", "2026-11-23", db="a.db")
    result, records = rerate(tmp_path, str(utf16), "--known-at", "2026-11-23", db="b.db")
    assert 0 == result.exit_code, result.output
    assert [(r["line"], r["outcome"], r["changed"]) for r in expected] == [
        (r["line"], r["outcome"], r["changed"]) for r in records]


def test_rerate_file_not_in_utf8_is_refused_before_any_row(tmp_path):
    """A Windows-1252 export (Excel's plain "CSV") would stop the run midway: refused up front, naming the
    line of the first byte that does not decode, and no output file is made."""
    text = OWN.read_text(encoding="utf-8").replace("organizer@seoul.example,KR,audio_conferencing,+14155552671",
                                                   "organisateur@séoul.example,KR,audio_conferencing,+14155552671")
    calls = tmp_path / "calls.csv"
    calls.write_bytes(text.encode("cp1252"))
    out = tmp_path / "out.jsonl"
    result, _ = rerate(tmp_path, str(calls), "--output", str(out))
    assert 2 == result.exit_code, result.output
    assert f"{calls}:4: not UTF-8 text (byte 0xe9): save it as UTF-8 (in Excel: CSV UTF-8)" in result.output
    assert not out.exists()


def test_rerate_semicolon_file_with_decimal_commas_reads_as_the_export(tmp_path):
    """Excel writes "CSV" with semicolons and decimal commas where the decimal mark is a comma (France)."""
    rows = list(csv.reader(TEAMS.read_text(encoding="utf-8").splitlines()))
    charge = rows[0].index("Charge")
    semicolons = tmp_path / "export-fr.csv"
    with semicolons.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(rows[0])
        writer.writerows([*row[:charge], row[charge].replace(".", ","), *row[charge + 1:]] for row in rows[1:])
    assert "0,36" in semicolons.read_text(encoding="utf-8")
    _, expected = rerate(tmp_path, str(TEAMS), "--tenant", "contoso", "--known-at", "2026-11-23", db="a.db")
    result, records = rerate(tmp_path, str(semicolons), "--tenant", "contoso", "--known-at", "2026-11-23", db="b.db")
    assert 0 == result.exit_code, result.output
    assert 18 == len(records)
    assert [(r["line"], r["outcome"], r["billed"], r["changed"]) for r in expected] == [
        (r["line"], r["outcome"], r["billed"], r["changed"]) for r in records]


@pytest.mark.parametrize(("given", "outcome", "error"), [
    ("2018-05-28 14:00:00", "complimentary", None),  # UTC, as the report writes it
    ("20180528T140000", "complimentary", None),
    ("5/28/2018 2:00:00 PM", "rejected", "column 'Start Time' (start): expected an ISO 8601 instant with offset, "
                                         "a date, or an aware datetime, got '5/28/2018 2:00:00 PM'"),  # by Excel
])
def test_rerate_teams_start_time_forms(tmp_path, given, outcome, error):
    rows = list(csv.reader(TEAMS.read_text(encoding="utf-8").splitlines()))
    rows[1][rows[0].index("Start Time")] = given
    export = tmp_path / "PSTN.calls.csv"
    with export.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows[:2])
    _, records = rerate(tmp_path, str(export), "--tenant", "contoso", "--known-at", "2026-11-23")
    assert (outcome, error) == (records[0]["outcome"], records[0].get("error"))


def test_rerate_rows_of_one_tenant_or_one_call(fresh_store, tmp_path):
    """explain reads a large file twice this way: the call, then its tenant's calls; only those are built."""
    fresh_store.load_tenant_facts(EXAMPLES / "tenants.csv", EXAMPLES / "licenses.csv")
    broken = tmp_path / "calls.csv"
    broken.write_text(OWN.read_text(encoding="utf-8") + "bad-1,seoul,yesterday,60,conf_out,o,KR,,FR,,,,\n",
                      encoding="utf-8")
    run = policyhistory.Rerate(fresh_store, [TEAMS, broken], known_at="2026-11-23", default_tenant="contoso")
    every = list(run.rows())
    assert (18 + 3 + 1, 1) == (len(every), sum(row.error is not None for row in every))
    assert [("seoul-1", 2), ("seoul-2", 3), ("seoul-3", 4)] == [
        (row.call.call_id, row.line) for row in run.rows(tenant_id="seoul") if row.call is not None]
    [found] = run.rows(call_id="seoul-2")
    assert ("seoul", "2020-06-15T02:00:00Z") == (found.call.tenant_id, policyhistory.format_instant(found.call.start))
    assert [] == list(run.rows(call_id="bad-1"))  # a row that cannot be read is never a match


def test_numbers_classified_are_remembered_in_transactions(tmp_path):
    """A run stores each number's classification for the next run, a chunk of numbers to a transaction: the
    store's connection commits a statement alone otherwise, and a first run of 200,000 numbers spent 30 s
    syncing the database once a number."""
    store = policyhistory.Store.open(tmp_path / "p.db")
    store.load_tenant_facts(EXAMPLES / "tenants.csv", EXAMPLES / "licenses.csv")
    statements: list[tuple[str, bool]] = []
    conn = store.db.conn
    conn.set_trace_callback(lambda sql: statements.append((sql, conn.in_transaction)))
    first = list(policyhistory.Rerate(store, [OWN], known_at="2026-11-23T00:00:00Z").records_json())
    conn.set_trace_callback(None)
    inserts = [inside for sql, inside in statements if sql.startswith("INSERT OR REPLACE INTO destination_classes")]
    dialed = {row["destination"] for row in csv.DictReader(OWN.open(encoding="utf-8"))}
    assert len(dialed) == len(inserts) and all(inserts)
    remembered = {row["number"]: (row["country"], row["number_type"]) for row in store.db["destination_classes"].rows}
    assert dialed == set(remembered)
    assert ("FR", "fixed_line") == remembered["+33142685300"]
    statements.clear()
    conn.set_trace_callback(lambda sql: statements.append((sql, conn.in_transaction)))
    second = list(policyhistory.Rerate(store, [OWN], known_at="2026-11-23T00:00:00Z").records_json())
    conn.set_trace_callback(None)
    assert not [sql for sql, _ in statements if "INTO destination_classes" in sql]  # all remembered
    strip = [json.dumps({k: v for k, v in json.loads(line).items() if k != "run_id"}) for line in first]
    assert strip == [json.dumps({k: v for k, v in json.loads(line).items() if k != "run_id"}) for line in second]
