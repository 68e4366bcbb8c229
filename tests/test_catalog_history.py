"""Issue 14: the catalog as the documentation really evolved (knowledge dates from the pages' history), Calling
Plans per country, premium numbers on Calling Plans, the usage report's call types, 0-second calls."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import policyhistory
from policyhistory import Call, CallingPlanNotSoldError, LicenseFact, NothingKnownYetError, TenantFact
from policyhistory.cli import cli

from .conftest import fixed_clock

POLICIES = Path(__file__).resolve().parent.parent / "policies"
NEW_FILES = ("page_history.toml", "calling_plans_by_country.toml")


@pytest.fixture
def store():
    """Contoso (US, credits set up): Audio Conferencing in the US and GB; Northwind (CA): Calling Plans."""
    store = policyhistory.open(clock=fixed_clock)
    store.add_tenant_facts(
        [TenantFact("contoso", "2017-11-28", "US", True), TenantFact("northwind", "2017-11-28", "CA", True)],
        [LicenseFact("contoso", "2017-11-28", "audio_conferencing", "US", 20, 10),
         LicenseFact("contoso", "2017-11-28", "audio_conferencing", "GB", 30, 5),
         LicenseFact("contoso", "2017-11-28", "communications_credits", "US", 20, 20),
         LicenseFact("northwind", "2017-11-28", "MCOPSTN1", "CA", 4, 4),
         LicenseFact("northwind", "2017-11-28", "MCOPSTN1", "ZW", 1, 1),
         LicenseFact("northwind", "2017-11-28", "MCOPSTN1", "GB", 3, 3),
         LicenseFact("northwind", "2017-11-28", "MCOPSTN1", "FR", 3, 3)])
    return store


def dial_out(start, destination="+33142685300", location="US", seconds=900):
    return Call(call_id="d", tenant_id="contoso", start=start, duration_seconds=seconds, call_type="conf_out",
                destination=destination, usage_location=location, licenses="MCOMEETADD;MCOPSTNC")


def user_call(start="2022-03-10T10:00:00Z", destination="+12065550100", location="CA", call_type="user_out",
              licenses="MCOPSTN1;MCOPSTNC"):
    return Call(call_id="u", tenant_id="northwind", start=start, duration_seconds=300, call_type=call_type,
                destination=destination, usage_location=location, licenses=licenses)


@pytest.mark.parametrize(("known_at", "outcome", "capacity"), [
    ("2018-10-01", "communications_credits", None),  # only "through June 2018" was public
    ("2019-01-01", "complimentary", 15 * 900),        # "through June 2019", 900 minutes, from 2018-11-12
])
def test_september_2018_france_as_known_in_october_2018_and_in_january_2019(store, known_at, outcome, capacity):
    rating = store.rate(dial_out("2018-09-15T09:00:00Z"), known_at=known_at)
    assert (outcome, capacity) == (rating.outcome, rating.pool and rating.pool.capacity)


def test_february_2019_france_in_the_900_minute_pool_as_known_in_march_2019(store):
    rating = store.rate(dial_out("2019-02-10T09:00:00Z"), known_at="2019-03-01")
    assert ("complimentary", 900, "assigned", 15 * 900) == (
        rating.outcome, rating.pool.minutes_per_user, rating.pool.basis, rating.pool.capacity)
    assert "complimentary-dial-out-through-june-2019-900-published-2018-11-12" in rating.policy_versions


@pytest.mark.parametrize(("known_at", "basis", "capacity"), [
    ("2020-12-01", "assigned", 15 * 60),   # the purchased basis was published only on 2021-01-21
    ("2021-06-01", "purchased", 50 * 60),  # a tenant pool: US and GB licenses together
])
def test_november_2020_uk_call_sized_on_assigned_then_purchased(store, known_at, basis, capacity):
    rating = store.rate(dial_out("2020-11-10T09:00:00Z", "+442071234567", "GB", 600), known_at=known_at)
    assert ("dial_out_pool", basis, capacity) == (rating.outcome, rating.pool.basis, rating.pool.capacity)


def test_us_canada_add_on_published_withdrawn_republished(store):
    add_on = "audio_conferencing.us_ca_dial_out"
    assert add_on in store.policies("2020-09-05", known_at="2020-09-01T18:00:00Z")  # as first published
    assert add_on not in store.policies("2020-09-05", known_at="2020-09-02")          # withdrawn that day
    assert add_on not in store.policies("2020-09-05")                                  # and never republished then
    assert "us-ca-extended-dial-out-republished-2020-09-16" == store.policies("2020-10-01").get(add_on).id


def test_canadian_domestic_plan_has_3000_minutes_and_calls_to_the_us_are_domestic(store):
    rating = store.rate(user_call())
    assert ("calling_plan", "calling_plan.domestic:CA", "domestic", 4 * 3000) == (
        rating.outcome, rating.pool.key.pool, rating.pool.key.counter, rating.pool.capacity)


def test_calling_plan_in_zimbabwe_is_rejected_with_its_reason(store):
    with pytest.raises(CallingPlanNotSoldError, match=r"'calling_plan\.domestic' with usage location ZW at "
                       r"2022-03-10T10:00:00Z: no Calling Plan is sold in ZW") as refused:
        store.rate(user_call(destination="+263242700000", location="ZW"))
    assert ("ZW", None) == (refused.value.country, refused.value.sold_from)


def test_calling_plan_before_the_country_had_plans_names_the_earliest_date(store):
    with pytest.raises(CallingPlanNotSoldError, match=r"Calling Plans are sold in CA only from 2018-02-01"):
        store.rate(user_call(start="2018-01-10T10:00:00Z", destination="+14165550123"))


def test_the_published_template_mistakes_are_beliefs_with_their_corrections(store):
    def minutes(known_at, location):
        plan = store.policies("2018-05-15", known_at=known_at).get("calling_plan.domestic").params
        return plan.allowance_for(location).domestic_minutes

    assert (3000, 1200) == (minutes("2018-05-15", "FR"), minutes("2018-05-15", "US"))  # as the pages said
    assert (1200, 1200) == (minutes("2018-05-25", "FR"), minutes("2018-05-25", "US"))
    assert (1200, 3000) == (minutes("2018-06-01", "FR"), minutes("2018-06-01", "US"))
    august_2022 = store.policies("2022-08-15", known_at="2022-08-20").get("calling_plan.domestic").params
    assert 1200 == august_2022.allowance_for("US").domestic_minutes
    assert 3000 == store.policies("2022-08-15").get("calling_plan.domestic").params.allowance_for("US").domestic_minutes


def test_user_out_conf_draws_the_calling_plan_pool(store):
    rating = store.rate(user_call(call_type="user_out_conf"))
    assert ("calling_plan", "calling_plan.domestic:CA") == (rating.outcome, rating.pool.key.pool)


@pytest.mark.parametrize(("number", "number_type", "outcome"), [
    ("+448431234567", "shared_cost", "calling_plan"),  # UK shared-cost 084x: allowed
    ("+448451234567", "shared_cost", "calling_plan"),
    ("+448701234567", "shared_cost", "calling_plan"),  # UK 087x: allowed
    ("+448721234567", "shared_cost", "calling_plan"),
    ("+448731234567", "premium_rate", "blocked"),      # not one of the page's six prefixes
    ("+449012345678", "premium_rate", "blocked"),      # UK 09 premium: not supported
])
def test_uk_premium_and_shared_cost_numbers_on_a_calling_plan(store, number, number_type, outcome):
    rating = store.rate(user_call(destination=number, location="GB"))
    assert (number_type, outcome) == (rating.number_type, rating.outcome)
    assert f"{number_type} number in GB (phonenumbers' number type" in " ".join(step.fact for step in rating.trace)


def test_uk_shared_cost_and_premium_numbers_in_one_rerate_are_told_apart(tmp_path):
    # A bulk re-rating plans once per destination country and number type: the UK page's distinction must be
    # in the number type, not in the digits a plan never sees.
    calls = tmp_path / "calls.csv"
    with calls.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["call_id", "tenant_id", "start", "duration_seconds", "call_type", "organizer_id",
                         "organizer_usage_location", "organizer_licenses", "destination"])
        for index, number in enumerate(["+448441234567", "+449012345678", "+448711234567", "+449098765432"]):
            writer.writerow([f"c{index}", "uk", "2022-03-10T10:00:00Z", "60", "user_out", "u", "GB",
                             "MCOPSTN1;MCOPSTNC", number])
    tenants, licenses = tmp_path / "tenants.csv", tmp_path / "licenses.csv"
    tenants.write_text("tenant_id,valid_from,country,communications_credits\nuk,2018-01-01,GB,true\n", encoding="utf-8")
    licenses.write_text("tenant_id,valid_from,sku,usage_location,purchased,assigned\n"
                        "uk,2018-01-01,MCOPSTN1,GB,3,3\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "rerate", str(calls), "--tenants",
                                      str(tenants), "--licenses", str(licenses)])
    assert 0 == result.exit_code, result.output
    outcomes = [json.loads(line)["outcome"] for line in result.stdout.splitlines() if line.startswith("{")]
    assert ["calling_plan", "blocked", "calling_plan", "blocked"] == outcomes


@pytest.mark.parametrize("number", ["+33810123456", "+33820123456", "+33891234567"])
def test_french_special_numbers_on_a_calling_plan_are_paid_with_credits(store, number):
    rating = store.rate(user_call(destination=number, location="FR"))
    assert ("communications_credits", 5) == (rating.outcome, rating.credit_minutes)
    # Before France's page said so (2018-12-20), premium and special numbers were not supported.
    assert "blocked" == store.rate(user_call(destination=number, location="FR"), known_at="2018-12-01").outcome


def test_premium_number_elsewhere_on_a_calling_plan_is_blocked_not_credits(store):
    rating = store.rate(user_call(destination="+19005551234", location="CA"))
    assert ("blocked", 0, 5) == (rating.outcome, rating.credit_minutes, rating.uncovered_minutes)


def test_freecall_capability_is_free(store):
    assert "free" == store.rate(user_call(licenses="FREECALL")).outcome


@pytest.mark.parametrize(("seconds", "minutes"), [(0, 0), (1, 1)])
def test_a_0_second_call_has_0_minutes_and_the_outcome_its_kind_decides(store, seconds, minutes):
    rating = store.rate(dial_out("2019-02-10T09:00:00Z", seconds=seconds))
    assert ("complimentary", minutes, minutes, 0) == (rating.outcome, rating.billable_minutes,
                                                       rating.pool_minutes, rating.credit_minutes)


def test_a_0_second_calling_plan_call_is_not_changed_against_its_bill(tmp_path):
    calls = tmp_path / "calls.csv"
    with calls.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["call_id", "tenant_id", "start", "duration_seconds", "call_type", "organizer_id",
                         "organizer_usage_location", "organizer_licenses", "destination", "billed_outcome",
                         "billed_minutes"])
        writer.writerow(["z", "contoso", "2022-03-10T17:00:00Z", "0", "user_out", "u", "US", "MCOPSTN1",
                         "+17875551234", "calling_plan", "0"])
    examples = Path(__file__).resolve().parent.parent / "examples"
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "rerate", str(calls), "--tenants",
                                      str(examples / "tenants.csv"), "--licenses", str(examples / "licenses.csv")])
    assert 0 == result.exit_code, result.output
    [record] = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert ("calling_plan", 0, False) == (record["outcome"], record["billable_minutes"], record["changed"])


def test_nothing_known_yet_names_the_first_record(store):
    with pytest.raises(NothingKnownYetError, match=r"nothing was known yet about 'minute_rounding' as of "
                       r"2017-01-01T00:00:00Z; its first record was published 2017-11-28T22:11:00Z"):
        store.rate(dial_out("2018-09-15T09:00:00Z"), known_at="2017-01-01")


def test_cli_history_shows_the_four_beliefs_and_the_pool_basis_chain(tmp_path):
    def history(key):
        result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "history", key, "--json"])
        assert 0 == result.exit_code, result.output
        return [(r["id"], r["recorded_at"][:10]) for r in json.loads(result.output)]

    complimentary = history("audio_conferencing.complimentary_dial_out")
    for belief in ("through-june-2018-published-2017-11-28", "through-june-2019-900-published-2018-11-12",
                   "through-november-2019-published-2019-04-10", "ended-published-2021-01-21"):
        assert f"complimentary-dial-out-{belief}" in [id for id, _ in complimentary]
    basis = history("audio_conferencing.dial_out_pool")
    assert [("dial-out-pool-60-assigned-published-2019-04-10", "2019-04-10"),
            ("dial-out-pool-60-non-premium-published-2019-04-26", "2019-04-26")] == basis[:2]
    assert ("dial-out-pool-60-purchased-from-2020-10-22-published-2021-01-21", "2021-01-21") in basis


def test_a_store_loaded_before_the_upgrade_loads_the_new_bundled_catalog(tmp_path):
    # The catalog before issue 14 is today's files without the two new ones: their versions are unchanged.
    old = [path for path in sorted(POLICIES.glob("*.toml")) if path.name not in NEW_FILES]
    db = str(tmp_path / "old.db")
    before = policyhistory.open(db, clock=fixed_clock, bundled=False)
    before.load(old)
    before.close()
    result = CliRunner().invoke(cli, ["--db", db, "load"])
    assert 0 == result.exit_code, result.output
    assert result.output.startswith("added 60 record(s), 20 already stored")
    upgraded, fresh = policyhistory.open(db, clock=fixed_clock), policyhistory.open(clock=fixed_clock)
    for as_of, known_at in [("2018-09-15", "2019-01-01"), ("2022-03-10", None), ("2020-11-10", "2020-12-01")]:
        assert fresh.policies(as_of, known_at=known_at).ids == upgraded.policies(as_of, known_at=known_at).ids


def mcopstn8_call(call_id, user, start, seconds=3000, destination="+14165550123"):
    return Call(call_id=call_id, tenant_id="northwind", start=start, duration_seconds=seconds, call_type="user_out",
                destination=destination, usage_location="CA", licenses="MCOPSTN8;MCOPSTNC", user_id=user)


def test_mcopstn8_minutes_are_each_users_own_120_not_a_pool(store):
    calls = [mcopstn8_call("a1", "ann@northwind", "2021-06-10T10:00:00Z"),     # 50 of Ann's 120 minutes
             mcopstn8_call("b1", "bob@northwind", "2021-06-10T11:00:00Z"),     # Bob's own 120: untouched by Ann
             mcopstn8_call("a2", "ann@northwind", "2021-06-11T10:00:00Z"),     # 100 of 120
             mcopstn8_call("a3", "ann@northwind", "2021-06-12T10:00:00Z"),     # 20 left: 30 to Credits
             mcopstn8_call("a4", "ann@northwind", "2021-07-01T10:00:00Z")]     # a new month: 120 again
    ratings = store.rater().rate_all(calls)
    assert [("calling_plan", "calling_plan.domestic_120_user:CA:ann@northwind", 120, 0, 50),
            ("calling_plan", "calling_plan.domestic_120_user:CA:bob@northwind", 120, 0, 50),
            ("calling_plan", "calling_plan.domestic_120_user:CA:ann@northwind", 120, 50, 100),
            ("calling_plan", "calling_plan.domestic_120_user:CA:ann@northwind", 120, 100, 120),
            ("calling_plan", "calling_plan.domestic_120_user:CA:ann@northwind", 120, 0, 50)] == [
        (r.outcome, r.pool.key.pool, r.pool.capacity, r.pool.used_before, r.pool.used_after) for r in ratings]
    assert (20, 30) == (ratings[3].pool_minutes, ratings[3].credit_minutes)
    # Not the tenant's license count: one user, 120 minutes.
    assert (1, 120) == (ratings[1].pool.licensed_users, ratings[1].pool.minutes_per_user)
    assert any("counted per user, not pooled" in step.decision for step in ratings[0].trace)


@pytest.mark.parametrize("user", ["", "   "])
def test_mcopstn8_call_naming_no_user_is_refused_with_its_reason(store, user):
    with pytest.raises(policyhistory.InvalidFieldError, match=r"user_id.*counted per user and not pooled"):
        store.rate(mcopstn8_call("x", user, "2021-06-10T10:00:00Z"))


def test_mcopstn8_one_user_is_one_pool_whatever_the_case_and_spaces_of_the_upn(store):
    """A UPN is compared as Entra ID compares it: Ann@Northwind.com and ' ann@northwind.com ' are Ann."""
    ratings = store.rater().rate_all([
        mcopstn8_call("a1", "ann@northwind.com", "2021-06-10T10:00:00Z"),
        mcopstn8_call("a2", "Ann@Northwind.com", "2021-06-11T10:00:00Z"),
        mcopstn8_call("a3", " ann@northwind.com ", "2021-06-12T10:00:00Z")])
    assert [(50, 0), (50, 0), (20, 30)] == [(r.pool_minutes, r.credit_minutes) for r in ratings]
    assert {"calling_plan.domestic_120_user:CA:ann@northwind.com"} == {r.pool.key.pool for r in ratings}


def rerate_rows(tmp_path, rows):
    """`policyhistory rerate` of rows of our layout (call id, start, duration, user, usage location, licenses,
    destination; tenant contoso, calls user_out) with the example tenants: (result, its records)."""
    calls = tmp_path / "calls.csv"
    with calls.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["call_id", "tenant_id", "start", "duration_seconds", "call_type", "organizer_id",
                         "organizer_usage_location", "organizer_licenses", "destination"])
        for call_id, start, seconds, user, location, licenses, destination in rows:
            writer.writerow([call_id, "contoso", start, seconds, "user_out", user, location, licenses, destination])
    examples = Path(__file__).resolve().parent.parent / "examples"
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "rerate", str(calls), "--tenants",
                                      str(examples / "tenants.csv"), "--licenses", str(examples / "licenses.csv")])
    return result, [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_a_rerate_counts_mcopstn8_minutes_per_user(tmp_path):
    plan = "MCOPSTN8;MCOPSTNC"
    result, records = rerate_rows(tmp_path, [
        ("a1", "2022-03-10T10:00:00Z", "6000", "ann", "US", plan, "+14165550123"),
        ("b1", "2022-03-10T11:00:00Z", "600", "bob", "US", plan, "+14165550123"),
        ("a2", "2022-03-10T12:00:00Z", "1800", "ann", "US", plan, "+14165550123"),
        ("n1", "2022-03-10T13:00:00Z", "60", "", "US", plan, "+14165550123")])
    assert 3 == result.exit_code, result.output
    a1, b1, a2, n1 = records
    assert ("calling_plan", "calling_plan.domestic_120_user:US:ann", 100, 0) == (
        a1["outcome"], a1["pool"], a1["pool_minutes"], a1["credit_minutes"])
    assert ("calling_plan.domestic_120_user:US:bob", 10) == (b1["pool"], b1["pool_minutes"])
    assert (20, 10) == (a2["pool_minutes"], a2["credit_minutes"])
    assert "rejected" == n1["outcome"] and "user_id" in n1["error"] and "counted per user" in n1["error"]


def test_mcopstn9_is_the_international_plan(store):
    assert ("calling_plan_international",) == user_call(licenses="MCOPSTN9").licenses


def test_a_rerate_rejects_a_calling_plan_row_in_zimbabwe_naming_country_plan_and_reason(tmp_path):
    result, records = rerate_rows(tmp_path, [
        ("zw", "2022-03-10T10:00:00Z", "60", "u", "ZW", "MCOPSTN1", "+263242700000"),
        ("us", "2022-03-10T11:00:00Z", "60", "u", "US", "MCOPSTN1", "+14165550123")])
    assert 3 == result.exit_code
    zimbabwe, us = records
    assert "rejected" == zimbabwe["outcome"]
    assert zimbabwe["error"].startswith("Calling Plan 'calling_plan.domestic' with usage location ZW at "
                                        "2022-03-10T10:00:00Z: no Calling Plan is sold in ZW")
    # US -> Canada: domestic on the US plan, drawn from the US+PR pool (a Domestic plan has no international).
    assert ("calling_plan", "calling_plan.domestic:US+PR", 1) == (us["outcome"], us["pool"], us["pool_minutes"])
