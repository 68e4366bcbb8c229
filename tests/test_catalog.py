"""The bundled catalog answers the questions the sources settle, with the belief of each knowledge date."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import policyhistory
from policyhistory.cli import cli

ROOT = Path(__file__).resolve().parent.parent
COMPLIMENTARY = "audio_conferencing.complimentary_dial_out"
DIAL_OUT_POOL = "audio_conferencing.dial_out_pool"


def params(policy_set, key):
    version = policy_set.get(key)
    return None if version is None else version.params


def test_catalog_2018_06_15_first_belief_complimentary_no_cap(fresh_store):
    found = fresh_store.policies("2018-06-15", known_at="2018-06-01")
    assert "complimentary-dial-out-2018-first-belief" == found.get(COMPLIMENTARY).id
    assert None is params(found, COMPLIMENTARY).minutes_per_user


def test_catalog_2018_09_15_first_belief_credits_only(fresh_store):
    found = fresh_store.policies("2018-09-15", known_at="2018-06-01")
    assert COMPLIMENTARY not in found
    assert DIAL_OUT_POOL not in found
    assert "communications-credits-standard-terms-2018" == found.get("communications_credits").id


def test_catalog_2018_09_15_known_now_complimentary_900_assigned(fresh_store):
    found = fresh_store.policies("2018-09-15")
    complimentary = params(found, COMPLIMENTARY)
    assert (900, "assigned", None) == (complimentary.minutes_per_user, complimentary.pool_basis,
                                       complimentary.tenant_countries)


def test_catalog_december_2019_switch(fresh_store):
    last_day = fresh_store.policies("2019-11-30T23:59:59Z")
    first_day = fresh_store.policies("2019-12-01")
    assert None is params(last_day, COMPLIMENTARY).tenant_countries
    assert DIAL_OUT_POOL not in last_day
    assert ("RU", "KR", "TW") == params(first_day, COMPLIMENTARY).tenant_countries
    assert (60, "assigned") == (params(first_day, DIAL_OUT_POOL).minutes_per_user,
                                params(first_day, DIAL_OUT_POOL).pool_basis)


@pytest.mark.parametrize(("as_of", "basis"), [("2020-10-21T23:59:59Z", "assigned"), ("2020-10-22", "purchased")])
def test_catalog_pool_basis_switch(fresh_store, as_of, basis):
    assert basis == params(fresh_store.policies(as_of), DIAL_OUT_POOL).pool_basis


def test_catalog_pool_basis_before_seed_002_was_known(fresh_store):
    # Between seed 001 (2020-09-16) and seed 002 (2021-04-07) only the assigned basis was known.
    assert "assigned" == params(fresh_store.policies("2020-11-15", known_at="2021-01-01"), DIAL_OUT_POOL).pool_basis


def test_catalog_korean_tenant_in_2021_still_complimentary(fresh_store):
    complimentary = params(fresh_store.policies("2021-06-15"), COMPLIMENTARY)
    assert "KR" in complimentary.tenant_countries
    assert 900 == complimentary.minutes_per_user


def test_catalog_zone_a_has_44_countries(fresh_store):
    countries = params(fresh_store.policies("2019-01-01"), "zone_a").countries
    assert 44 == len(set(countries))
    assert {"FR", "US", "GB", "PR", "RU", "KR", "TW"} <= set(countries)
    assert "ZW" not in countries


def test_catalog_us_ca_add_on_starts_with_seed_001(fresh_store):
    assert "audio_conferencing.us_ca_dial_out" not in fresh_store.policies("2020-09-15T23:59:59Z")
    assert ("US", "CA") == params(fresh_store.policies("2020-09-16"), "audio_conferencing.us_ca_dial_out").countries


@pytest.mark.parametrize(("key", "location", "domestic", "international"), [
    ("calling_plan.domestic", "US", 3000, 0),
    ("calling_plan.domestic", "PR", 3000, 0),
    ("calling_plan.domestic", "GB", 1200, 0),
    ("calling_plan.domestic_120", "GB", 120, 0),
    ("calling_plan.domestic_240", "US", 240, 0),
    ("calling_plan.international", "US", 3000, 600),
    ("calling_plan.international", "GB", 1200, 600),
])
def test_catalog_calling_plan_minutes(fresh_store, key, location, domestic, international):
    allowance = params(fresh_store.policies("2022-06-01"), key).allowance_for(location)
    assert (domestic, international) == (allowance.domestic_minutes, allowance.international_minutes)


def test_catalog_every_version_cites_a_source():
    for version in policyhistory.open().versions():
        assert version.source.document and version.source.quote and version.source.section, version.id
        assert version.source.published is not None or "undated" in version.source.document, version.id


def test_catalog_history_shows_both_beliefs_and_the_override(fresh_store):
    entries = {entry.version.id: entry for entry in fresh_store.history(COMPLIMENTARY)}
    first = entries["complimentary-dial-out-2018-first-belief"]
    assert [("complimentary-dial-out-through-june-2019-900-published-2018-11-12", "2018-11-12"),
            ("complimentary-dial-out-through-november-2019-published-2019-04-10", "2019-04-10"),
            ("complimentary-dial-out-ended-published-2021-01-21", "2021-01-21"),
            ("complimentary-dial-out-through-november-2019", "2021-04-07")] == [
        (o.by, o.from_recorded_at.to_date_string()) for o in first.overridden_by]
    assert () == entries["complimentary-dial-out-through-november-2019"].overridden_by


def test_catalog_history_the_four_beliefs_about_the_complimentary_period(fresh_store):
    # Each belief at the date the live English page first stated it (policy-page-history.md).
    beliefs = [(entry.version.recorded_at.to_date_string(), entry.version.valid_to and
                entry.version.valid_to.to_date_string(), entry.version.params.minutes_per_user)
               for entry in fresh_store.history(COMPLIMENTARY)
               if entry.version.id.endswith(("2017-11-28", "2018-11-12", "2019-04-10", "2021-01-21"))]
    assert [("2017-11-28", "2018-07-01", None), ("2018-11-12", "2019-07-01", 900), ("2019-04-10", "2019-12-01", 900),
            ("2021-01-21", "2019-12-01", 900)] == beliefs


def test_catalog_history_the_pool_basis_chain(fresh_store):
    chain = [(entry.version.recorded_at.to_date_string(), entry.version.valid_from.to_date_string(),
              entry.version.params.pool_basis) for entry in fresh_store.history(DIAL_OUT_POOL)]
    assert ("2019-04-10", "2019-12-01", "assigned") == chain[0]
    assert ("2021-01-21", "2020-10-22", "purchased") in chain
    assert [basis for recorded, _, basis in chain if recorded < "2021-01-21"] == ["assigned"] * 3
    # The 2022 note on assigned licenses is the US/Canada dial-out subscription's own pool.
    assert "purchased" == chain[-1][2]
    other = fresh_store.history("audio_conferencing.us_ca_dial_out_pool")
    assert [("assigned", ("us_ca_dial_out",))] == [(e.version.params.pool_basis, e.version.params.licenses)
                                                   for e in other]


def test_catalog_cli_history(tmp_path):
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "history", COMPLIMENTARY, "--json"])
    assert 0 == result.exit_code, result.output
    records = {record["id"]: record for record in json.loads(result.output)}
    assert "2018-05-24T00:00:00Z" == records["complimentary-dial-out-2018-first-belief"]["recorded_at"]
    assert "2018-11-12T22:48:00Z" == records["complimentary-dial-out-2018-first-belief"]["overridden_by"][0][
        "from_recorded_at"]
    assert "2017-11-28T22:11:00Z" == records[
        "complimentary-dial-out-through-june-2018-published-2017-11-28"]["recorded_at"]


@pytest.mark.parametrize(("as_of", "known_at", "present", "absent"), [
    ("2018-06-15", "2018-06-01", "complimentary-dial-out-2018-first-belief", "dial-out-pool"),
    ("2018-09-15", "2018-06-01", "communications-credits-standard-terms-2018", "complimentary-dial-out-2018"),
    ("2018-09-15", None, "complimentary-dial-out-through-november-2019", "first-belief"),
])
def test_catalog_cli_policies(tmp_path, as_of, known_at, present, absent):
    args = ["--db", str(tmp_path / "p.db"), "policies", "--as-of", as_of]
    result = CliRunner().invoke(cli, args + (["--known-at", known_at] if known_at else []))
    assert 0 == result.exit_code, result.output
    assert present in result.output
    assert absent not in result.output


def test_catalog_readme_is_current():
    expected = CliRunner().invoke(cli, ["catalog"]).output
    assert expected == (ROOT / "policies" / "README.md").read_text(encoding="utf-8"), (
        "policies/README.md is stale: run `policyhistory catalog --output policies/README.md`")
