"""explain's three answers when the input carries the bill: billed, as known when billed, as known now;
billing error or later knowledge; money from the card or an implied rate, omitted where neither prices it;
and explain agreeing with rerate about `changed` for every call."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from policyhistory.cli import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TEAMS = EXAMPLES / "PSTN.calls.2022-06-30.csv"
FACTS = ["--tenants", str(EXAMPLES / "tenants.csv"), "--licenses", str(EXAMPLES / "licenses.csv")]
RATES_HEADER = ("valid_from,valid_to,recorded_at,destination_country,number_type,per_minute,connection_fee,currency,"
                "source")


def invoke(tmp_path, *args, db="p.db"):
    return CliRunner().invoke(cli, ["--db", str(tmp_path / db), *args])


def teams_file(tmp_path, *rows):
    """A Teams export of the example's columns with the given rows (Call ID, user location, destination, start,
    seconds, charge, currency)."""
    header = TEAMS.read_text(encoding="utf-8").splitlines()[0]
    lines = [header]
    for call_id, location, destination, start, seconds, charge, currency in rows:
        lines.append(f"u-{call_id},{call_id},,{location},o-1,user@contoso.example,User,+14255550100,conf_out,,,,"
                     f"{destination},{start},{start},{seconds},0,{charge},{currency},MCOMEETADD")
    path = tmp_path / "PSTN.calls.gbp.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_dispute_teams_call_billed_0_that_now_costs_a_credit_minute(tmp_path):
    """The issue's case: rerate says changed, explain said "No difference" (it compared two beliefs, never the
    bill). Now the bill is one of three answers, and the difference is named a billing error."""
    calls = teams_file(tmp_path, ("zw-1", "US", "+263242700000", "2021-03-09T11:00:00Z", 60, "0.000", "GBP"))
    args = ["explain", "zw-1", "--calls", calls, *FACTS, "--tenant", "contoso", "--known-at", "2026-11-23"]
    result = invoke(tmp_path, *args)
    assert 0 == result.exit_code, result.output
    text = result.output
    assert "Three answers for call zw-1:" in text
    assert "  billed:                              0 credit min, charge 0 GBP" in text
    assert "  rules as known when billed (2021-04-01): communications_credits, 0 pool min, 1 credit min" in text
    assert "  rules as known now (2026-11-23):         communications_credits, 0 pool min, 1 credit min" in text
    assert ("Changed: yes (as rerate says). A billing error: the bill differs even from the rules as known when it "
            "was billed; later knowledge changed nothing.") in text
    # No card, no implied rate (a bill of 0 implies no price): the money of the answers is omitted, not 0.
    assert "  billed: 0 GBP" in text
    assert "  rules as known now: 0" not in text
    assert "  now: not priced (no rate card entry for the destination and no implied rate)" in text
    rerated = invoke(tmp_path, "rerate", calls, "--tenant", "contoso", "--known-at", "2026-11-23")
    assert json.loads(rerated.stdout.splitlines()[0])["changed"] is True
    # With a rate card in GBP, each answer is priced as known at its own date.
    card = tmp_path / "rates.csv"
    card.write_text(RATES_HEADER + "\n2018-01-22,,2018-01-22,ZW,*,0.25,0.05,GBP,contract A\n", encoding="utf-8")
    assert 0 == invoke(tmp_path, "load", "--rates", str(card)).exit_code
    priced = invoke(tmp_path, *args).output
    assert "  rules as known now: 0.3 GBP (rate card ZW/* from 2018-01-22T00:00:00Z" in priced
    assert "  billed minus now: -0.3 GBP (under-charged)" in priced
    record = json.loads(invoke(tmp_path, *args, "--json").output)["dispute"]
    assert (True, True, [], 0.3) == (record["changed"], record["billing_error"], record["later_knowledge"],
                                     record["now"]["charge"])


def test_dispute_later_knowledge_and_money_from_an_implied_rate(tmp_path):
    """September 2018: billed 0.36 USD as known then (credits), complimentary as known now."""
    result = invoke(tmp_path, "explain", "00000000-0000-0000-0000-000000000004", "--calls", str(TEAMS), *FACTS,
                    "--tenant", "contoso", "--billed-at", "2018-10-01", "--known-at", "2026-11-23")
    text = result.output
    assert ("Changed: yes (as rerate says). Later knowledge: the bill followed the rules as known when it was billed;"
            " versions recorded since changed the answer.") in text
    assert "  later knowledge: outcome: communications_credits -> complimentary" in text
    assert "  later versions that changed it: complimentary-dial-out-through-november-2019 (recorded 2021-04-07)" \
        in text
    # The answer changed when "through June 2019" was published (2018-11-12); the 2021 record gives it too.
    assert ("  first changed by: complimentary-dial-out-through-june-2019-900-published-2018-11-12 (recorded "
            "2018-11-12): the first record that gave this answer (the later versions above give it too, and decide "
            "it now)") in text
    assert ("  rules as known when billed: 0.36 USD (implied by this call's bill: 0.36 USD for 15 min)") in text
    assert "  rules as known now: 0 USD" in text
    assert "  billed minus now: +0.36 USD (over-charged: a refund is due)" in text
    # The comparison below it still has its money line (a real price: 0.36 for 15 minutes).
    assert "money: 0.36 USD billed for 15 credit minute(s) (0.024 USD/min)" in text


def test_dispute_a_bill_of_0_for_185_minutes_implies_no_price(tmp_path):
    own = tmp_path / "calls.csv"
    own.write_text("call_id,tenant_id,start,duration_seconds,call_type,organizer_usage_location,organizer_licenses,"
                   "destination,billed_outcome,billed_minutes,billed_charge,currency\n"
                   "big,contoso,2020-10-22T09:00:00Z,11100,conf_out,GB,MCOMEETADD;MCOPSTNC,+442071234567,"
                   "communications_credits,185,0,GBP\n", encoding="utf-8")
    result = invoke(tmp_path, "explain", "big", "--calls", str(own), *FACTS, "--known-at", "2026-11-23")
    assert 0 == result.exit_code, result.output
    assert "GBP/min" not in result.output and "-0.00" not in result.output
    assert "Changed: yes (as rerate says)." in result.output


def changed_by_rerate(tmp_path, files, *extra, db="p.db"):
    result = invoke(tmp_path, "rerate", *map(str, files), *FACTS, *extra, "--known-at", "2026-11-23", db=db)
    return {(r["call_id"]): r["changed"] for r in map(json.loads, result.stdout.splitlines())
            if "changed" in r}


def changed_by_explain(tmp_path, call_id, files, *extra, db="p.db"):
    calls = [arg for path in files for arg in ("--calls", str(path))]
    result = invoke(tmp_path, "explain", call_id, *calls, *FACTS, *extra, "--known-at", "2026-11-23", "--json", db=db)
    assert 0 == result.exit_code, result.output
    return json.loads(result.output)["dispute"]["changed"]


def test_dispute_explain_and_rerate_agree_on_changed_over_the_examples(tmp_path):
    files = [TEAMS, EXAMPLES / "calls.csv"]
    rerated = changed_by_rerate(tmp_path, files, "--tenant", "contoso")
    assert 21 == len(rerated) and 7 == sum(rerated.values())
    explained = {call: changed_by_explain(tmp_path, call, files, "--tenant", "contoso") for call in rerated}
    assert rerated == explained


def test_dispute_explain_and_rerate_agree_on_changed_over_a_generated_file(tmp_path):
    """The benchmark's generator, with bills made the way examples/make_examples.py makes them (the rating as
    known at 2019-06-01, 0.024 USD a credit minute), every 7th bill one credit minute off (a billing error)."""
    gen = tmp_path / "gen"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"), str(gen), "--calls", "300",
                    "--tenants", "3", "--seed", "16"], check=True, capture_output=True)
    facts = ["--tenants", str(gen / "tenants.csv"), "--licenses", str(gen / "licenses.csv")]

    def rerate(path, known_at):
        result = CliRunner().invoke(cli, ["--db", str(tmp_path / "g.db"), "rerate", str(path), *facts,
                                          "--known-at", known_at])
        return [json.loads(line) for line in result.stdout.splitlines()]

    then = rerate(gen / "calls.csv", "2019-06-01")
    rows = (gen / "calls.csv").read_text(encoding="utf-8").splitlines()
    billed = [rows[0] + ",billed_outcome,billed_minutes,billed_charge,currency"]
    for index, (row, record) in enumerate(zip(rows[1:], then, strict=True)):
        if record["outcome"] == "rejected":
            billed.append(row + ",,,,")
            continue
        minutes = record["credit_minutes"] + (1 if index % 7 == 0 else 0)
        billed.append(f"{row},{record['outcome']},{minutes},{minutes * 0.024:.3f},USD")
    calls = tmp_path / "billed.csv"
    calls.write_text("\n".join(billed) + "\n", encoding="utf-8")
    rated = [r for r in rerate(calls, "2026-11-23") if "changed" in r]
    sample = [r for r in rated if r["changed"]][:12] + [r for r in rated if not r["changed"]][:12]
    assert 24 == len(sample)
    for record in sample:
        out = CliRunner().invoke(cli, ["--db", str(tmp_path / "g.db"), "explain", record["call_id"], "--calls",
                                       str(calls), *facts, "--known-at", "2026-11-23", "--json"])
        assert 0 == out.exit_code, out.output
        assert record["changed"] == json.loads(out.output)["dispute"]["changed"], record["call_id"]
