"""Money: recomputed charges, charge differences, implied rates and anomalies, totals per tenant-month-currency,
and the short stderr summary with the whole one in --summary-json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policyhistory.cli import cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TEAMS = str(EXAMPLES / "PSTN.calls.2022-06-30.csv")
OWN = str(EXAMPLES / "calls.csv")
CARD = str(EXAMPLES / "ratecard.csv")
FACTS = ["--tenants", str(EXAMPLES / "tenants.csv"), "--licenses", str(EXAMPLES / "licenses.csv")]
OWN_HEADER = ("call_id,tenant_id,start,duration_seconds,call_type,organizer_usage_location,organizer_licenses,"
              "destination,billed_outcome,billed_minutes,billed_charge,currency")


def invoke(tmp_path, *args, db="p.db"):
    return CliRunner().invoke(cli, ["--db", str(tmp_path / db), *args])


def rerate(tmp_path, *args, card=True, db="p.db"):
    if card:
        loaded = invoke(tmp_path, "load", "--rates", CARD, db=db)
        assert 0 == loaded.exit_code, loaded.output
    result = invoke(tmp_path, "rerate", *args, *FACTS, db=db)
    records = {json.loads(line)["call_id"]: json.loads(line) for line in result.stdout.splitlines()
               if line.startswith("{")}
    return result, records


def money(record):
    return record["charge"], record["charge_currency"], record["charge_difference"]


def test_money_charges_with_the_example_rate_card(tmp_path):
    result, records = rerate(tmp_path, TEAMS, OWN, "--tenant", "contoso", "--known-at", "2026-11-23")
    assert 0 == result.exit_code, result.output
    # Billed 0.48 for 20 minutes to France in April 2021; the card's revision (0.020 from 2021, recorded
    # 2021-06-01) prices them at 0.40: over-charged by 0.08.
    assert (0.4, "USD", 0.08) == money(records["00000000-0000-0000-0000-00000000000d"])
    # Billed 1.44, now covered by the pool: no credit minute, nothing to charge, 1.44 to refund.
    assert (0.0, "USD", 1.44) == money(records["00000000-0000-0000-0000-00000000000a"])
    # GB premium-rate number, 4 credit minutes at the GB "*" price: as billed.
    assert (0.096, "USD", 0.0) == money(records["00000000-0000-0000-0000-000000000008"])
    # Zimbabwe is not on the card: no charge (never 0), no difference, and a warning that says why.
    zimbabwe = records["00000000-0000-0000-0000-000000000005"]
    assert (20, None, None, None) == (zimbabwe["credit_minutes"], *money(zimbabwe))
    assert ("no rate card entry prices ZW fixed_line numbers at 2019-06-12T16:00:00Z as known at "
            "2026-11-23T00:00:00Z: charge not computed") == zimbabwe["warnings"][-1]
    assert {"2026-11-23T00:00:00Z"} == {record["known_at"] for record in records.values()}
    assert 1 == len({record["run_id"] for record in records.values()})


def test_money_the_rate_card_is_read_as_known_at_the_run(tmp_path):
    """Known at 2021-06-01 the French revision is known; a day before it is not, and the bill was right."""
    _, before = rerate(tmp_path, TEAMS, "--tenant", "contoso", "--known-at", "2021-05-31")
    _, after = rerate(tmp_path, TEAMS, "--tenant", "contoso", "--known-at", "2021-06-01", db="q.db")
    call = "00000000-0000-0000-0000-00000000000d"
    assert ((0.48, "USD", 0.0), (0.4, "USD", 0.08)) == (money(before[call]), money(after[call]))


def test_money_without_a_rate_card_credit_minutes_have_no_charge(tmp_path):
    result, records = rerate(tmp_path, TEAMS, "--tenant", "contoso", "--known-at", "2026-11-23", card=False)
    priced = {call: money(r) for call, r in records.items() if r["credit_minutes"]}
    assert {"00000000-0000-0000-0000-000000000005": (None, None, None),
            "00000000-0000-0000-0000-000000000008": (None, None, None),
            "00000000-0000-0000-0000-00000000000d": (None, None, None),
            "00000000-0000-0000-0000-000000000012": (None, None, None)} == priced
    # No warning without a card: every credit call would carry it.
    assert [] == records["00000000-0000-0000-0000-000000000005"]["warnings"]
    # A call that takes no credit minute costs nothing, card or not: its refund is still known.
    assert (0.0, "USD", 0.36) == money(records["00000000-0000-0000-0000-000000000004"])
    assert "  4 call(s) take credit minutes no rate card entry prices (no rate card loaded)" in result.stderr


def write_calls(tmp_path, rows, name="calls.csv"):
    path = tmp_path / name
    path.write_text("\n".join([OWN_HEADER, *rows]) + "\n", encoding="utf-8")
    return str(path)


def test_money_implied_rates_and_anomalies(tmp_path):
    """Without a card the bill still says something: calls to one destination in one month and currency
    billed at two implied rates are an anomaly; a bill of 0 for 185 minutes implies no rate."""
    calls = write_calls(tmp_path, [
        # Seoul's tenant cannot use credits: these calls are rated blocked; only their bills matter here.
        "a1,seoul,2020-06-01T09:00:00Z,600,conf_out,KR,audio_conferencing,+33142685300,communications_credits,10,0.24,USD",
        "a2,seoul,2020-06-02T09:00:00Z,600,conf_out,KR,audio_conferencing,+33142685300,communications_credits,10,0.24,USD",
        "a3,seoul,2020-06-03T09:00:00Z,300,conf_out,KR,audio_conferencing,+33142685300,communications_credits,5,0.15,USD",
        "a4,seoul,2020-06-04T09:00:00Z,11100,conf_out,KR,audio_conferencing,+33142685300,communications_credits,185,0,USD",
        "b1,seoul,2020-07-01T09:00:00Z,600,conf_out,KR,audio_conferencing,+33142685300,communications_credits,10,0.30,USD",
        "c1,seoul,2020-06-01T09:00:00Z,600,conf_out,KR,audio_conferencing,+33612345678,communications_credits,10,0.30,USD",
    ])
    summary = tmp_path / "summary.json"
    result, _ = rerate(tmp_path, calls, "--summary-json", str(summary), "--known-at", "2026-11-23", card=False)
    assert 0 == result.exit_code, result.output
    found = json.loads(summary.read_text(encoding="utf-8"))["money"]
    assert [{"destination_country": "FR", "number_type": "fixed_line", "month": "2020-06", "currency": "USD",
             "rates": [{"per_minute": 0.024, "calls": 2, "examples": ["a1", "a2"]},
                       {"per_minute": 0.03, "calls": 1, "examples": ["a3"]}]}] == found["anomalies"]
    # July's one rate and the mobile number's own rate are no anomaly; a4 (0 for 185 min) implies nothing.
    assert [("FR", "fixed_line", "2020-06", 0.024, 2), ("FR", "fixed_line", "2020-06", 0.03, 1),
            ("FR", "fixed_line", "2020-07", 0.03, 1), ("FR", "mobile", "2020-06", 0.03, 1)] == [
        (r["destination_country"], r["number_type"], r["month"], r["per_minute"], r["calls"])
        for r in found["implied_rates"]]
    assert "  1 destination-month(s) billed at different implied rates (anomalies)" in result.stderr


def test_money_totals_per_tenant_month_and_currency(tmp_path):
    summary = tmp_path / "summary.json"
    result, _ = rerate(tmp_path, TEAMS, OWN, "--tenant", "contoso", "--known-at", "2026-11-23",
                       "--summary-json", str(summary))
    text = summary.read_text(encoding="utf-8")
    whole = json.loads(text)
    # Written as it is encoded (a large run's is 100 MB): the text json.dumps gives, indented, and a line break.
    assert json.dumps(whole, indent=2, ensure_ascii=False) + "\n" == text
    assert text.startswith('{\n  "manifest": {\n')
    totals = {(t["tenant_id"], t["month"], t["currency"]): t for t in whole["money"]["totals"]}
    october = totals[("contoso", "2020-10", "USD")]
    assert (2, 1.44, 0.0, 1.44, 2, 1) == (october["calls"], october["billed"], october["recomputed"],
                                          october["difference"], october["compared_calls"], october["changed"])
    april = totals[("contoso", "2021-04", "USD")]
    assert (0.48, 0.4, 0.08) == (april["billed"], april["recomputed"], april["difference"])
    zimbabwe = totals[("contoso", "2019-06", "USD")]  # no charge: counted in its bill's currency
    assert (1, 0.48, 0, 1) == (zimbabwe["calls"], zimbabwe["billed"], zimbabwe["compared_calls"],
                               zimbabwe["without_rate"])
    usd = whole["money"]["by_currency"]["USD"]
    assert (3.936, 0.696, 2.76, 20) == (usd["billed"], usd["recomputed"], usd["difference"], usd["compared_calls"])
    top = whole["money"]["top_changed_by_money"]
    assert ["00000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-000000000003",
            "00000000-0000-0000-0000-000000000004"] == [call["call_id"] for call in top[:3]]
    assert (1.44, True) == (top[0]["charge_difference"], top[0]["changed"])
    # The summary JSON has every pool-month; stderr the 10 nearest their capacity, and says where the rest went.
    assert 13 == len(whole["pools"])
    assert 10 == sum(1 for line in result.stderr.splitlines() if line.startswith("  ") and " / " in line
                     and "(" in line and "%" in line)
    assert f"full summary: {summary}" == result.stderr.splitlines()[-2]  # the last: the store digest
    assert (21, 21, 0, 7) == (whole["rows"], whole["rated"], whole["rejected"], whole["changed"])


def test_money_summary_without_bills_or_card_says_so_in_one_line(tmp_path):
    calls = write_calls(tmp_path, ["n1,seoul,2020-06-01T09:00:00Z,600,conf_out,KR,audio_conferencing,+33142685300,,,,"])
    result, records = rerate(tmp_path, calls, "--known-at", "2026-11-23", card=False)
    assert ("money: the input carries no charges and no rate card is loaded (policyhistory load --rates): nothing "
            "to compare") in result.stderr.splitlines()
    assert (0.0, None, None) == money(records["n1"])  # complimentary: nothing to charge, no currency known


def test_rejection_reasons_keep_the_words_of_the_message():
    """Rows refused for one cause share a reason: their values go, the message's own words stay ("ISO 8601")."""
    from policyhistory._rejections import reason_of

    assert ("start: expected an ISO 8601 instant with offset, got '...'" ==
            reason_of("start: expected an ISO 8601 instant with offset, got '2019-02-30T01:00:00Z'"))
    assert "duration_seconds: <n> is too long" == reason_of("duration_seconds: 99999999 is too long")
    # A field's or a policy's name is no value of the row's; an apostrophe inside a word opens no quote.
    assert ("line <n>: field 'duration_seconds': expected a whole number of seconds, got '...'" ==
            reason_of("line 4: field 'duration_seconds': expected a whole number of seconds, got '1.5'"))
    assert ("field 'user_id': expected the calling user's id (counted per user), got '...'" ==
            reason_of("field 'user_id': expected the calling user's id (counted per user), got ' '"))
    assert ("no policy in force for 'dial_in' at <instant> as known at <instant>" ==
            reason_of("no policy in force for 'dial_in' at 2020-01-01T00:00:00Z as known at 2019-01-01T00:00:00Z"))


@pytest.mark.parametrize("rates", [False, True])
def test_audited_lines_are_the_audited_records_encoded(rates):
    """Audit.audited_lines appends the audit fields to the engine's text instead of encoding each record again:
    the same bytes as encoding the audited record, with a rate card (its "no price" warning changes a field)
    and without."""
    import policyhistory
    from policyhistory import Audit, Rerate
    from policyhistory._records import encode

    examples = Path(__file__).resolve().parent.parent / "examples"
    store = policyhistory.open()
    store.load_tenant_facts(examples / "tenants.csv", examples / "licenses.csv")
    if rates:
        store.load_rates(examples / "ratecard.csv")
    paths = [examples / "PSTN.calls.2022-06-30.csv", examples / "calls.csv"]
    known = "2026-11-23T00:00:00Z"
    texts = list(Rerate(store, paths, known_at=known, default_tenant="contoso").records_json())
    lines = list(Audit(store.rate_cards(), known_at=known, run_id="r1").audited_lines(texts))
    expected = Audit(store.rate_cards(), known_at=known, run_id="r1").records(json.loads(text) for text in texts)
    assert 21 == len(lines)
    assert [encode(record) for record in expected] == [line for line, _ in lines]
    assert all(json.loads(line) == record for line, record in lines)
    assert rates == any("no rate card entry prices" in line for line, _ in lines)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_shards_audit_gives_the_lines_and_money_of_the_records_audit(tmp_path, workers):
    """Rerate.audited_lines gives each record its audit fields in the shard that rated it and adds up the
    shards' tallies: the same lines, money (totals, implied rates and their first examples, the top changed
    calls) and rejected rows by reason (their first rows) as auditing every record in output order."""
    import policyhistory
    from policyhistory import Audit, Rerate
    from policyhistory._outputs import json_chunks
    from policyhistory._run_summary import run_summary_record

    store = policyhistory.open()
    store.load_tenant_facts(EXAMPLES / "tenants.csv", EXAMPLES / "licenses.csv")
    store.load_rates(EXAMPLES / "ratecard.csv")
    numbers = ["+33142685300", "+33612345678", "+442071234567", "+263242123456", "+14155552671"]
    rows = []
    for index in range(400):
        tenant = ("contoso", "seoul")[index % 2]
        year = 2017 + index % 6  # 2017: no policy in force yet, rejected in the shard
        start = f"{year}-{1 + index * 7 % 12:02d}-{1 + index * 11 % 28:02d}T{index % 24:02d}:00:00Z"
        duration = "bad" if index % 37 == 0 else str(60 + index * 53 % 900)  # rejected while reading
        charge = ("0.24", "0.30", "0", "0.15", "1.2", "")[index % 6]
        rows.append(f"x{index},{tenant},{start},{duration},conf_out,US,audio_conferencing;communications_credits,"
                    f"{numbers[index % 5]},communications_credits,{index % 13},{charge},USD")
    calls = write_calls(tmp_path, rows)
    paths = [calls, EXAMPLES / "PSTN.calls.2022-06-30.csv", EXAMPLES / "calls.csv"]
    known = "2026-11-23T00:00:00Z"

    def run() -> Rerate:
        return Rerate(store, paths, known_at=known, default_tenant="contoso", shards=3, workers=workers)

    serial, texts = Audit(store.rate_cards(), known_at=known, run_id="r1"), run()
    expected = [line for line, _ in serial.audited_lines(texts.records_json())]
    sharded, lines = Audit(store.rate_cards(), known_at=known, run_id="r1"), run()
    found = list(lines.audited_lines(sharded))
    assert expected == [line for line, _ in found]
    assert [(json.loads(line).get("changed") is True) + 2 * (json.loads(line)["outcome"] == "rejected")
            for line in expected] == [flags for _, flags in found]
    def whole(summary: Any, audit: Audit) -> Any:  # its pools and totals iterators, as written
        return json.loads("".join(json_chunks(run_summary_record(summary, audit))))

    assert whole(texts.summary, serial) == whole(lines.summary, sharded)
    money = whole(lines.summary, sharded)["money"]
    assert money["anomalies"] and money["top_changed_by_money"] and money["without_rate"]
    assert len(run_summary_record(lines.summary, sharded)["rejected_by_reason"]) >= 2


def test_the_summary_is_written_as_json_dumps_writes_it_its_arrays_given_as_iterators_too():
    """--summary-json is written piece by piece (its pool-months and money totals made as they are written):
    the text is json.dumps(value, indent=2, ensure_ascii=False)'s, for any JSON value, an array in a dictionary
    given as a list or as an iterator alike."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from policyhistory._outputs import json_chunks

    leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    values = st.recursive(leaves, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=25)

    def as_iterators(value: Any) -> Any:  # every list in a dictionary an iterator
        if isinstance(value, dict):
            return {key: iter(item) if isinstance(item, list) else as_iterators(item) for key, item in value.items()}
        return value

    @settings(max_examples=300, deadline=None)
    @given(values)
    def check(value: Any) -> None:
        expected = json.dumps(value, indent=2, ensure_ascii=False)
        assert expected == "".join(json_chunks(value)) == "".join(json_chunks(as_iterators(value)))

    check()
