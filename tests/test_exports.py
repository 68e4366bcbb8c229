"""Exports as administrators have them (issue 18): the Teams export keyed on UsageId, the Capability mapped
to our outcomes, masked numbers, Operator Connect and Direct Routing, emergency calls, wrong files, and
Microsoft Graph's call records."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

from click.testing import CliRunner

from policyhistory.cli import cli

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
EXAMPLES = ROOT / "examples"
FACTS = ["--tenants", str(EXAMPLES / "tenants.csv"), "--licenses", str(EXAMPLES / "licenses.csv")]
EXPORT = DATA / "PSTN.calls.2022-03-31.csv"
MASKED = DATA / "PSTN.calls.masked.csv"
DIRECT_ROUTING = DATA / "DirectRouting.calls.2022-03-31.csv"
GRAPH = DATA / "graph.getPstnCalls.json"
GRAPH_DIRECT_ROUTING = DATA / "graph.getDirectRoutingCalls.json"


def rerate(tmp_path, *paths, db="p.db"):
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / db), "rerate", *map(str, paths), "--tenant", "contoso",
                                      *FACTS])
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result, records


def by_usage(records):
    return {record.get("usage_id"): record for record in records}


# UsageId, not Call ID --------------------------------------------------------------------------------------

def test_forwarded_leg_sharing_its_call_id_is_rated_not_rejected(tmp_path):
    result, records = rerate(tmp_path, EXPORT)
    first, forwarded = records[0], records[1]
    assert first["call_id"] == forwarded["call_id"] == "c0000000-0000-0000-0000-00000000000a"
    assert ("a1000000-0000-0000-0000-000000000001", "calling_plan", 10) == (
        first["usage_id"], first["outcome"], first["pool_minutes"])
    assert ("a1000000-0000-0000-0000-000000000002", "calling_plan", 5, 10) == (
        forwarded["usage_id"], forwarded["outcome"], forwarded["pool_minutes"], forwarded["pool_used_before"])
    assert 0 == result.exit_code, result.output


def test_a_usage_id_seen_twice_is_the_duplicate(tmp_path):
    doubled = tmp_path / "PSTN.calls.doubled.csv"
    lines = EXPORT.read_text(encoding="utf-8").splitlines()
    doubled.write_text("\n".join([*lines, lines[1]]) + "\n", encoding="utf-8")
    result, records = rerate(tmp_path, doubled)
    assert 3 == result.exit_code
    assert ["rejected"] == [r["outcome"] for r in records if r["line"] == len(lines) + 1]
    assert "a1000000-0000-0000-0000-000000000001" in records[-1]["error"]
    assert [] == [r for r in records[:-1] if r["outcome"] == "rejected"]


def test_csv_output_has_usage_id_and_the_capability(tmp_path):
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "rerate", str(EXPORT), "--tenant", "contoso",
                                      "--format", "csv", *FACTS])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert ("a1000000-0000-0000-0000-000000000003", "MCOPSTN1") == (rows[2]["usage_id"], rows[2]["billed_capability"])


def test_explain_finds_a_leg_by_its_usage_id(tmp_path):
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "explain", "a1000000-0000-0000-0000-000000000002",
                                      "--calls", str(EXPORT), "--tenant", "contoso", "--json", *FACTS])
    assert 0 == result.exit_code, result.output
    record = json.loads(result.stdout)
    assert (10, 15) == (record["now"]["rating"]["pool_used_before"], record["now"]["rating"]["pool_used_after"])


# The Capability mapped to our outcomes ---------------------------------------------------------------------

def test_inbound_calling_plan_call_is_not_a_difference(tmp_path):
    result, records = rerate(tmp_path, EXPORT)
    inbound = by_usage(records)["a1000000-0000-0000-0000-000000000003"]
    assert ("free", "calling_plan", "MCOPSTN1", False, "") == (
        inbound["outcome"], inbound["billed"]["outcome"], inbound["billed"]["capability"], inbound["changed"],
        inbound["change"])
    assert "changed 0" in result.stderr


def test_charged_call_on_a_plan_we_find_free_is_still_a_difference(tmp_path):
    charged = tmp_path / "PSTN.calls.charged.csv"
    rows = list(csv.DictReader(EXPORT.open(encoding="utf-8")))
    rows[2]["Charge"] = "0.50"
    with charged.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    _, records = rerate(tmp_path, charged)
    inbound = by_usage(records)["a1000000-0000-0000-0000-000000000003"]
    assert (True, "billed charge 0.5 USD; now free, 0 pool min, 0 credit min") == (inbound["changed"],
                                                                                   inbound["change"])


# Masked numbers ----------------------------------------------------------------------------------------------

def test_masked_numbers_by_calling_code_and_exact_names(tmp_path):
    result, records = rerate(tmp_path, MASKED)
    found = [(r["destination_country"], r["number_type"]) for r in records]
    assert [("KR", "unknown"), ("HK", "unknown"), ("MO", "unknown"), ("XK", "unknown"), ("TR", "unknown"),
            ("DE", "mobile"), ("DE", "toll_free"), ("DE", "premium_rate"), ("CH", "fixed_line")] == found
    assert 0 == result.exit_code, result.output


def test_masked_premium_number_never_draws_the_dial_out_pool(tmp_path):
    _, records = rerate(tmp_path, MASKED)
    premium = by_usage(records)["b8000000-0000-0000-0000-000000000000"]
    assert ("communications_credits", 0, 10) == (premium["outcome"], premium["pool_minutes"],
                                                 premium["credit_minutes"])


def test_external_country_then_number_type_column(tmp_path):
    export = tmp_path / "PSTN.calls.external.csv"
    rows = list(csv.DictReader(EXPORT.open(encoding="utf-8")))[:1]
    rows[0].update({"Destination Number": "", "Destination Dialed": "Korea, North?", "External Country": "KR",
                    "Number Type": "Mobile", "Call Type": "user_out", "Charge": "0"})
    with export.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    _, records = rerate(tmp_path, export)
    assert ("KR", "mobile") == (records[0]["destination_country"], records[0]["number_type"])


def test_a_country_name_not_in_the_table_is_refused_not_guessed(tmp_path):
    export = tmp_path / "PSTN.calls.guess.csv"
    text = MASKED.read_text(encoding="utf-8").replace(",Korea,", ",Korea Republik,")
    export.write_text(text, encoding="utf-8")
    result, records = rerate(tmp_path, export)
    assert 3 == result.exit_code
    assert "rejected" == records[0]["outcome"]
    assert "'Korea Republik'" in records[0]["error"]


# Operator Connect, Direct Routing, emergency calls ----------------------------------------------------------

def test_operator_connect_row_is_not_billed_by_microsoft(tmp_path):
    result, records = rerate(tmp_path, EXPORT)
    operator = by_usage(records)["a1000000-0000-0000-0000-000000000004"]
    assert ("not_microsoft_billed", 0, 0, None) == (operator["outcome"], operator["credit_minutes"],
                                                     operator["pool_minutes"], operator.get("billed"))
    assert "carried by the customer's own operator (Operator Connect, Direct Routing) 1" in result.stderr


def test_direct_routing_export_is_recognised(tmp_path):
    result, records = rerate(tmp_path, DIRECT_ROUTING)
    assert 0 == result.exit_code, result.output
    assert [("not_microsoft_billed", "GB", 12), ("not_microsoft_billed", "US", 5), ("emergency", "ZZ", 1)] == [
        (r["outcome"], r["destination_country"], r["billable_minutes"]) for r in records]
    assert "e1000000-0000-0000-0000-000000000001" == records[0]["usage_id"] == records[0]["call_id"]
    assert "not_microsoft_billed: 17 min" in result.stderr
    assert "emergency 1, carried by the customer's own operator (Operator Connect, Direct Routing) 2" in result.stderr


def test_emergency_calls_are_free_with_their_own_outcome(tmp_path):
    _, records = rerate(tmp_path, EXPORT)
    calls = by_usage(records)
    us, de = calls["a1000000-0000-0000-0000-000000000005"], calls["a1000000-0000-0000-0000-000000000006"]
    assert ("emergency", "US", "emergency", 0, 0, False) == (us["outcome"], us["destination_country"],
                                                             us["number_type"], us["pool_minutes"],
                                                             us["credit_minutes"], us["changed"])
    assert ("emergency", "DE", False) == (de["outcome"], de["destination_country"], de["changed"])


def test_rate_one_emergency_call_and_one_direct_routing_call(tmp_path):
    runner = CliRunner()
    base = ["--db", str(tmp_path / "p.db"), "rate", "--json", *FACTS, "--call"]
    call = {"call_id": "x", "tenant_id": "contoso", "start": "2022-03-18T12:00:00Z", "duration_seconds": 61,
            "call_type": "emergency_out", "destination": "911", "usage_location": "US"}
    emergency = json.loads(runner.invoke(cli, [*base, json.dumps(call)]).stdout)
    assert ("emergency", "US", 2) == (emergency["outcome"], emergency["destination_country"],
                                      emergency["billable_minutes"])
    carried = {**call, "call_type": "pstn_outbound", "destination": "+33142685300", "carrier": "direct_routing"}
    rating = json.loads(runner.invoke(cli, [*base, json.dumps(carried)]).stdout)
    assert ("not_microsoft_billed", 0, 0) == (rating["outcome"], rating["credit_minutes"], rating["pool_minutes"])


# Wrong files -------------------------------------------------------------------------------------------------

def test_pretty_printed_json_object_is_one_record(tmp_path):
    one = json.loads(GRAPH.read_text(encoding="utf-8"))["value"][1]
    path = tmp_path / "one.json"
    path.write_text(json.dumps(one, indent=4), encoding="utf-8")  # ConvertTo-Json of one record
    result, records = rerate(tmp_path, path)
    assert 0 == result.exit_code, result.output
    assert [("calling_plan", "9c4984c7-6c3c-427d-a30c-bd0b2eacee91")] == [(r["outcome"], r["usage_id"])
                                                                          for r in records]
    assert "rows 1:" in result.stderr


def test_unknown_layout_is_exit_2_naming_the_columns_expected(tmp_path):
    path = tmp_path / "calls.csv"
    path.write_text("Date,Number,Minutes\n2022-03-01,+33142685300,5\n2022-03-02,+33142685300,7\n", encoding="utf-8")
    result, records = rerate(tmp_path, path)
    assert 2 == result.exit_code
    assert [] == records
    assert "Date, Number, Minutes" in result.output
    assert "UsageId, Call ID, Start Time" in result.output and "callId" in result.output


def test_calls_export_zip_is_read_from_the_csv_inside(tmp_path):
    archive = tmp_path / "Calls.Export.2022-03-31.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.write(EXPORT, "PSTN.calls.2022-03-31.csv")
    result, records = rerate(tmp_path, archive)
    _, plain = rerate(tmp_path, EXPORT, db="q.db")
    assert 0 == result.exit_code, result.output
    assert [r["outcome"] for r in plain] == [r["outcome"] for r in records]
    assert [2, 3, 4, 5, 6, 7] == [r["line"] for r in records]


def test_zip_without_one_csv_says_what_to_do(tmp_path):
    archive = tmp_path / "Calls.Export.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("a.csv", "x\n")
        out.writestr("b.csv", "y\n")
    result, _ = rerate(tmp_path, archive)
    assert 2 == result.exit_code
    assert "a zip archive holding 2 CSV files (a.csv, b.csv): extract the call records" in result.output


# Microsoft Graph ---------------------------------------------------------------------------------------------

def test_graph_response_with_next_link(tmp_path):
    result, records = rerate(tmp_path, GRAPH)
    assert 0 == result.exit_code, result.output
    inbound, forwarded, operator = records
    assert ("free", "1835317186_112562680@61.221.3.176", "9c4984c7-6c3c-427d-a30c-bd0b2eacee90") == (
        inbound["outcome"], inbound["call_id"], inbound["usage_id"])
    assert ("2022-03-01T00:00:08.258993Z", "calling_plan", 2, False) == (
        forwarded["start"], forwarded["outcome"], forwarded["pool_minutes"], forwarded["changed"])
    assert ("not_microsoft_billed", "FR") == (operator["outcome"], operator["destination_country"])


def test_graph_rows_as_array_json_lines_and_csv_agree(tmp_path):
    rows = json.loads(GRAPH.read_text(encoding="utf-8"))["value"]
    array = tmp_path / "rows.json"
    array.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    lines = tmp_path / "rows.jsonl"
    lines.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    exported = tmp_path / "pstncalls.csv"  # Windows PowerShell 5.1: Export-Csv -NoTypeInformation not given
    with exported.open("w", encoding="utf-8-sig", newline="") as out:
        out.write("#TYPE System.Management.Automation.PSCustomObject\r\n")
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), quoting=csv.QUOTE_ALL)
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    _, expected = rerate(tmp_path, GRAPH, db="g.db")
    for path, db in ((array, "a.db"), (lines, "l.db"), (exported, "c.db")):
        result, records = rerate(tmp_path, path, db=db)
        assert 0 == result.exit_code, (path, result.output)
        assert [(r["usage_id"], r["outcome"], r["billable_minutes"]) for r in expected] == [
            (r["usage_id"], r["outcome"], r["billable_minutes"]) for r in records], path
    _, from_csv = rerate(tmp_path, exported, db="d.db")
    assert [3, 4, 5] == [r["line"] for r in from_csv]  # the #TYPE line is line 1, the header line 2


def test_graph_direct_routing_rows(tmp_path):
    result, records = rerate(tmp_path, GRAPH_DIRECT_ROUTING)
    assert 0 == result.exit_code, result.output
    assert [("not_microsoft_billed", "c98e1515-a937-4b81-b8a8-3992afde64e0", "9e8bba57-dc14-533a-a7dd-f0da6575eed1",
             6)] == [(r["outcome"], r["call_id"], r["usage_id"], r["billable_minutes"]) for r in records]


# inspect -----------------------------------------------------------------------------------------------------

def test_inspect_says_what_a_file_holds_before_rating(tmp_path):
    bad = tmp_path / "PSTN.calls.bad.csv"
    lines = EXPORT.read_text(encoding="utf-8").splitlines()
    broken = lines[3].replace(",1200,", ",twenty,")
    bad.write_text("\n".join([*lines, broken, lines[1]]) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["inspect", str(bad), "--json"])
    assert 0 == result.exit_code, result.output
    found = json.loads(result.stdout)
    assert ("teams", "UsageId", 8, 7, 1) == (found["layout"], found["key"], found["rows"], found["readable"],
                                              found["duplicate_keys"])
    assert ("2022-03-15T09:00:00Z", "2022-03-18T13:00:00Z") == (found["first_start"], found["last_start"])
    assert {"user_out": 4, "user_out_forwarding": 1, "user_in": 1, "emergency_out": 1} == found["call_types"]
    assert {"MCOPSTN1": 5, "MCOEV": 1, "MCOPSTNPP": 1} == found["capabilities"]
    assert {"microsoft": 6, "operator_connect": 1} == found["carriers"]
    # The Teams export's own column is named, as rerate's reasons name it.
    assert {"column 'Duration Seconds' (duration_seconds): expected a whole number of seconds": 1} == found["rejected"]
    assert [[8, "column 'Duration Seconds' (duration_seconds): expected a whole number of seconds, got 'twenty'"]] \
        == found["examples"]
    assert "Operator" in found["columns_used"] and "Administrative Units" in found["columns_ignored"]


def test_inspect_graph_response_notes_the_next_page(tmp_path):
    result = CliRunner().invoke(cli, ["inspect", str(GRAPH)])
    assert 0 == result.exit_code, result.output
    assert "layout: Microsoft Graph call records (getPstnCalls rows) [graph]" in result.stdout
    assert "key: id" in result.stdout
    assert "the Graph response has @odata.nextLink" in result.stdout
    assert "columns ignored: callerNumber, endDateTime, tenantCountryCode, userDisplayName, userId" in result.stdout


def test_inspect_unknown_layout_is_exit_2(tmp_path):
    path = tmp_path / "calls.csv"
    path.write_text("Date,Number\n2022-03-01,+33142685300\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert 2 == result.exit_code
    assert "no layout we read has these columns (Date, Number)" in result.output


def test_json_lines_with_a_broken_first_record_stay_json_lines(tmp_path):
    rows = json.loads(GRAPH.read_text(encoding="utf-8"))["value"]
    path = tmp_path / "rows.json"
    path.write_text('{"id": "broken",, }\n' + "".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    result, records = rerate(tmp_path, path)
    assert 3 == result.exit_code
    assert ["rejected", "free", "calling_plan", "not_microsoft_billed"] == [r["outcome"] for r in records]
    assert [1, 2, 3, 4] == [r["line"] for r in records]


def test_rejected_graph_row_keeps_its_call_id(tmp_path):
    document = json.loads(GRAPH.read_text(encoding="utf-8"))
    document["value"][2]["duration"] = "sixty"
    path = tmp_path / "page.json"
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    result, records = rerate(tmp_path, path)
    assert 3 == result.exit_code
    assert ("rejected", "2035317186_112562680@61.221.3.176", 3) == (records[2]["outcome"], records[2]["call_id"],
                                                                    records[2]["line"])


def test_readme_inspect_example_is_what_inspect_prints(monkeypatch):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("$ policyhistory inspect examples/PSTN.calls.2022-06-30.csv\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(cli, ["inspect", "examples/PSTN.calls.2022-06-30.csv"])
    assert block == result.stdout


def test_own_layout_with_usage_id_and_carrier_columns(tmp_path):
    path = tmp_path / "calls.csv"
    path.write_text(
        "call_id,usage_id,carrier,tenant_id,start,duration_seconds,call_type,organizer_usage_location,"
        "organizer_licenses,destination\n"
        "leg,u1,,contoso,2022-03-15T09:00:00Z,600,pstn_outbound,US,MCOPSTN1,+12065550123\n"
        "leg,u2,,contoso,2022-03-15T09:00:00Z,300,pstn_outbound,US,MCOPSTN1,+12065550199\n"
        "oc,u3,Operator Connect,contoso,2022-03-15T10:00:00Z,300,pstn_outbound,US,MCOPSTN1,+12065550199\n"
        "dr,u4,satellite,contoso,2022-03-15T11:00:00Z,300,pstn_outbound,US,MCOPSTN1,+12065550199\n",
        encoding="utf-8")
    result, records = rerate(tmp_path, path)
    assert [("calling_plan", "u1", 0), ("calling_plan", "u2", 10), ("not_microsoft_billed", "u3", None)] == [
        (r["outcome"], r["usage_id"], r["pool_used_before"]) for r in records[:3]]
    assert "field 'carrier': expected one of operator_connect, direct_routing" in records[3]["error"]
    assert 3 == result.exit_code
