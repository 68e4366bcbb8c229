"""Dispute resolution: explanations, then versus now, and diffs, through the CLI and the library."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from policyhistory.cli import cli

from .test_rating import dial_out, seed_002_tenant

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TEAMS = str(EXAMPLES / "PSTN.calls.2022-06-30.csv")
FACTS = ["--tenants", str(EXAMPLES / "tenants.csv"), "--licenses", str(EXAMPLES / "licenses.csv")]
SEPTEMBER = "00000000-0000-0000-0000-000000000004"


def run(tmp_path, *args):
    return CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), *args])


def test_explain_september_2018_france_then_versus_now(tmp_path):
    result = run(tmp_path, "explain", SEPTEMBER, "--calls", TEAMS, *FACTS, "--tenant", "contoso",
                 "--billed-at", "2018-10-01", "--known-at", "2026-11-23")
    assert 0 == result.exit_code, result.output
    text = result.output
    assert "outcome: communications_credits -> complimentary" in text
    assert "credit_minutes: 15 -> 0 (-15)" in text
    assert "money: 0.36 USD billed for 15 credit minute(s) (0.024 USD/min); now 0 credit minute(s): -0.36 USD" in text
    assert ("+ complimentary-dial-out-through-november-2019 (audio_conferencing.complimentary_dial_out), "
            "recorded 2021-04-07T00:00:00Z") in text
    assert "+ rating-by-destination" not in text  # recorded later, but it did not change the answer
    assert ("first changed by complimentary-dial-out-through-june-2019-900-published-2018-11-12 "
            "(audio_conferencing.complimentary_dial_out), recorded 2018-11-12T22:48:00Z") in text
    assert 'source: complimentary-dial-out-period.md (fr-FR), published 2018-05-24, seed 000' in text
    assert "as known at 2018-10-01T00:00:00Z" in text and "as known at 2026-11-23T00:00:00Z" in text


def test_explain_json_is_deterministic_for_the_same_known_at(tmp_path):
    args = ["explain", SEPTEMBER, "--calls", TEAMS, *FACTS, "--tenant", "contoso", "--billed-at", "2018-10-01",
            "--known-at", "2026-01-01", "--json"]
    first, second = run(tmp_path, *args).output, run(tmp_path, *args).output
    assert first == second
    record = json.loads(first)
    assert (True, ["complimentary-dial-out-through-november-2019"]) == (record["changed"], record["changed_by"])
    assert ["complimentary-dial-out-through-june-2019-900-published-2018-11-12"] == record["first_changed_by"]
    assert ("communications_credits", "complimentary") == (record["then"]["rating"]["outcome"],
                                                          record["now"]["rating"]["outcome"])


def test_explain_pool_use_counts_earlier_calls_of_the_month(tmp_path):
    result = run(tmp_path, "explain", "00000000-0000-0000-0000-00000000000a", "--calls", TEAMS, *FACTS,
                 "--tenant", "contoso", "--known-at", "2026-11-23")
    assert 0 == result.exit_code, result.output
    assert ("Pool audio_conferencing.dial_out_pool (minutes), 2020-10: 12 purchased license(s) x 60 min = 720 min; "
            "480 min used before this call by 1 earlier call(s) this month, 660 after") in result.output
    # The export carries the charge: without --billed-at, billed on the first day of the next month.
    assert "(billing date taken as 2020-11-01T00:00:00Z" in result.output
    assert "What was billed: charge 1.44, currency USD" in result.output
    assert "credit_minutes: 60 -> 0 (-60)" in result.output
    assert "money: 1.44 USD billed for 60 credit minute(s) (0.024 USD/min); now 0 credit minute(s): -1.44 USD" in (
        result.output)
    assert ("+ dial-out-pool-60-purchased-from-2020-10-22 (audio_conferencing.dial_out_pool), recorded "
            "2021-04-07T00:00:00Z") in result.output
    # First changed when the purchased basis was published (2021-01-21); only the version covering the call's
    # start is named, not the one that ends the assigned basis on 22 October 2020.
    assert ("first changed by dial-out-pool-60-purchased-from-2020-10-22-published-2021-01-21 "
            "(audio_conferencing.dial_out_pool), recorded 2021-01-21") in result.output
    assert "first changed by dial-out-pool-60-assigned-until" not in result.output


def test_explain_unknown_call(tmp_path):
    result = run(tmp_path, "explain", "nope", "--calls", TEAMS, *FACTS, "--tenant", "contoso")
    assert 1 == result.exit_code
    assert "call 'nope' is not in" in result.output


def test_explain_library_names_versions_and_sources(fresh_store):
    seed_002_tenant(fresh_store)
    earlier = [dial_out("a", start="2020-03-01T10:00:00Z", minutes=30), dial_out("b", start="2020-04-01T10:00:00Z")]
    found = fresh_store.explain(dial_out("c", start="2020-03-10T10:00:00Z", minutes=5), earlier=earlier)
    assert (30, 35, 1) == (found.rating.pool.used_before, found.rating.pool.used_after, found.earlier_in_pool)
    assert ["minute_rounding", "rating_basis", "audio_conferencing.complimentary_dial_out", "zone_a",
            "audio_conferencing.dial_out_pool"] == [version.key for version in found.versions]


def test_diff_across_22_october_2020_names_the_basis_change(tmp_path):
    result = run(tmp_path, "diff", "--as-of", "2020-10-21", "--as-of", "2020-10-22", "--json")
    assert 0 == result.exit_code, result.output
    [change] = json.loads(result.output)
    assert ("audio_conferencing.dial_out_pool", "changes") == (change["key"], change["change"])
    assert ("assigned", "purchased") == (change["before"]["params"]["pool_basis"],
                                         change["after"]["params"]["pool_basis"])
    assert "2021-04-07" == change["after"]["source"]["published"]


def test_diff_two_knowledge_dates_over_valid_time(tmp_path):
    result = run(tmp_path, "diff", "--known-at", "2018-06-01", "--known-at", "2021-05-01", "--json")
    changes = [(c["key"], c["change"], c["valid_from"], c["valid_to"]) for c in json.loads(result.output)
               if c["key"] == "audio_conferencing.complimentary_dial_out"]
    assert [
        # The first belief as the English page stated it (2017-11-28), then as the French copy (2018-01-22 on).
        ("audio_conferencing.complimentary_dial_out", "changes", "2017-11-28T00:00:00Z", "2018-01-22T00:00:00Z"),
        ("audio_conferencing.complimentary_dial_out", "changes", "2018-01-22T00:00:00Z", "2018-07-01T00:00:00Z"),
        ("audio_conferencing.complimentary_dial_out", "appears", "2018-07-01T00:00:00Z", "2019-12-01T00:00:00Z"),
        ("audio_conferencing.complimentary_dial_out", "appears", "2019-12-01T00:00:00Z", None),
    ] == changes


def test_diff_needs_two_dates_of_one_kind(tmp_path):
    result = run(tmp_path, "diff", "--as-of", "2020-10-21")
    assert 2 == result.exit_code


def test_explain_a_rejected_row_says_why_and_where(tmp_path):
    """A call whose row cannot be read is not 'not in the file': explain names the row's line and error."""
    from click.testing import CliRunner

    from policyhistory.cli import cli

    examples = Path(__file__).resolve().parent.parent / "examples"
    lines = (examples / "calls.csv").read_text(encoding="utf-8").splitlines()
    bad = lines[0] + "\n" + lines[1].replace(lines[1].split(",")[2], "2019-02-30T01:00:00Z", 1) + "\n"
    calls = tmp_path / "bad.csv"
    calls.write_text(bad, encoding="utf-8")
    call_id = lines[1].split(",")[0]
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "explain", call_id, "--calls", str(calls),
                                      "--tenants", str(examples / "tenants.csv"), "--licenses",
                                      str(examples / "licenses.csv")])
    assert 2 == result.exit_code, result.output
    assert (f"call {call_id!r} is at {calls} line 2, but its row cannot be read: start: expected an ISO 8601 "
            "instant") in result.output
    assert "2019-02-30T01:00:00Z" in result.output and "day is out of range for month" in result.output
    assert result.output.count("got ") == 1  # the row's own error, not wrapped in another "expected ..., got"
