"""Rating calls through the public API: seed 002's cases, pools, credits, the add-on, the switches."""

from __future__ import annotations

import pytest

import policyhistory
from policyhistory import (
    Call,
    DuplicateCallError,
    LicenseFact,
    NoPolicyInForceError,
    PoolKey,
    PoolState,
    TenantFact,
    UnknownTenantError,
)

NUMBER = {
    "US": "+14155552671",
    "CA": "+14165550123",
    "GB": "+442071234567",
    "FR": "+33142685300",
    "ZW": "+263242700000",
    "CK": "+68221234",
    "PR": "+17875551234",
    "GB-premium": "+449012345678",
    "US-toll-free": "+18005551234",
}
DIAL_OUT_POOL = "audio_conferencing.dial_out_pool"
COMPLIMENTARY = "audio_conferencing.complimentary_dial_out"
SUBSCRIPTION_AND_CREDITS = ("audio_conferencing", "communications_credits")


def seed_002_tenant(store, tenant_id="contoso", country="US", credits=True, purchased=115, us_assigned=10):
    """Seed 002's example: 115 purchased, assigned to 10 users in the US, 100 in the UK, 5 in Zimbabwe."""
    store.add_tenant_facts(
        [TenantFact(tenant_id, "2016-01-01", country, credits)],
        [LicenseFact(tenant_id, "2016-01-01", "audio_conferencing", "US", purchased, us_assigned),
         LicenseFact(tenant_id, "2016-01-01", "audio_conferencing", "GB", 0, 100),
         LicenseFact(tenant_id, "2016-01-01", "audio_conferencing", "ZW", 0, 5)],
    )


@pytest.fixture
def store(fresh_store):
    seed_002_tenant(fresh_store)
    return fresh_store


def dial_out(call_id="c1", start="2020-03-10T10:00:00Z", minutes=5, to="FR", location="US",
             licenses=SUBSCRIPTION_AND_CREDITS, tenant="contoso", call_type="conference_dial_out"):
    return Call(call_id=call_id, tenant_id=tenant, start=start, duration_seconds=minutes * 60, call_type=call_type,
                destination=NUMBER.get(to, to), user_id="organizer@contoso", usage_location=location,
                licenses=licenses)


def used_up(pool=DIAL_OUT_POOL, month="2020-03", minutes=6900, counter="minutes", tenant="contoso"):
    return PoolState({PoolKey(tenant, pool, month, counter): minutes})


SEED_002_TABLE = [
    # organizer's usage location, destination, may use the pool?
    ("US", "US", True), ("US", "GB", True), ("US", "ZW", False),
    ("GB", "GB", True), ("GB", "US", True), ("GB", "ZW", False),
    ("ZW", "ZW", False), ("ZW", "US", True), ("ZW", "GB", True),
    ("CK", "CK", False), ("CK", "US", True), ("CK", "GB", True),
]


@pytest.mark.parametrize(("location", "destination", "pool"), SEED_002_TABLE)
def test_rating_seed_002_table_fresh_pool(store, location, destination, pool):
    rating = store.rate(dial_out(to=destination, location=location), known_at="2026-01-01")
    expected = ("dial_out_pool", 5, 0) if pool else ("communications_credits", 0, 5)
    assert expected == (rating.outcome, rating.pool_minutes, rating.credit_minutes)
    assert destination == rating.destination_country


@pytest.mark.parametrize(("location", "destination", "pool"), SEED_002_TABLE)
def test_rating_seed_002_table_credits_after_the_pool(store, location, destination, pool):
    rating = store.rate(dial_out(to=destination, location=location), pool_state=used_up())
    assert ("communications_credits", 0, 5) == (rating.outcome, rating.pool_minutes, rating.credit_minutes)


@pytest.mark.parametrize(("start", "known_at", "capacity", "pool"), [
    ("2020-01-15T00:00:00Z", None, 6900, DIAL_OUT_POOL),        # 115 x 60
    ("2019-06-15T00:00:00Z", None, 103500, COMPLIMENTARY),      # 115 x 900
])
def test_rating_seed_002_pool_of_115_licenses(store, start, known_at, capacity, pool):
    rating = store.rate(dial_out(start=start), known_at=known_at)
    assert (pool, capacity, 115) == (rating.pool.key.pool, rating.pool.capacity, rating.pool.licensed_users)


def test_rating_splits_between_pool_and_credits(store):
    rating = store.rate(dial_out(minutes=5), pool_state=used_up(minutes=6898))
    assert ("dial_out_pool", 5, 2, 3, 0) == (rating.outcome, rating.billable_minutes, rating.pool_minutes,
                                             rating.credit_minutes, rating.uncovered_minutes)
    assert (6898, 6900) == (rating.pool.used_before, rating.pool.used_after)
    assert ("100% of pool audio_conferencing.dial_out_pool for 2020-03 (6900/6900 minutes)",) == rating.alerts


def test_rating_split_without_credits_leaves_minutes_uncovered(store):
    rating = store.rate(dial_out(minutes=5, licenses=("audio_conferencing",)), pool_state=used_up(minutes=6898))
    assert ("dial_out_pool", 2, 0, 3) == (rating.outcome, rating.pool_minutes, rating.credit_minutes,
                                          rating.uncovered_minutes)
    assert any("would have been cut after 2 minute(s)" in warning for warning in rating.warnings)


def test_rating_empty_pool_and_no_credits_is_blocked(store):
    rating = store.rate(dial_out(licenses=("audio_conferencing",)), pool_state=used_up())
    assert ("blocked", 0, 0, 5) == (rating.outcome, rating.pool_minutes, rating.credit_minutes,
                                    rating.uncovered_minutes)
    assert "blocked" == rating.trace[-1].rule


def test_rating_blocked_when_the_tenant_has_no_credits(fresh_store):
    seed_002_tenant(fresh_store, credits=False)
    rating = fresh_store.rate(dial_out(to="ZW"))
    assert "blocked" == rating.outcome
    assert "tenant credits set up: no; user holds communications_credits: yes" == rating.trace[-2].fact


@pytest.mark.parametrize("start", ["2019-06-15T00:00:00Z", "2020-06-15T00:00:00Z"])
def test_rating_pay_per_minute_organizers_get_no_pool(store, start):
    rating = store.rate(dial_out(start=start, licenses=("audio_conferencing_ppm", "communications_credits")))
    assert ("communications_credits", None, 5) == (rating.outcome, rating.pool, rating.credit_minutes)


@pytest.mark.parametrize("start", ["2018-06-15T00:00:00Z", "2019-06-15T00:00:00Z", "2020-06-15T00:00:00Z"])
def test_rating_premium_numbers_never_use_a_pool(store, start):
    rating = store.rate(dial_out(start=start, to="GB-premium"))
    assert ("communications_credits", "premium_rate", 0) == (rating.outcome, rating.number_type, rating.pool_minutes)


@pytest.mark.parametrize(("start", "known_at"), [
    ("2018-06-15T00:00:00Z", "2018-06-01"),  # complimentary period, first belief
    ("2018-06-15T00:00:00Z", None),          # complimentary period, as known now
    ("2019-06-15T00:00:00Z", None),
    ("2020-06-15T00:00:00Z", None),          # 60-minute pool
])
def test_rating_zimbabwe_is_never_in_a_pool(store, start, known_at):
    rating = store.rate(dial_out(start=start, to="ZW", location="ZW"), known_at=known_at)
    assert ("communications_credits", 0) == (rating.outcome, rating.pool_minutes)


@pytest.mark.parametrize(("location", "destination"), [("US", "US"), ("ZW", "CA"), ("GB", "US"), ("CK", "CA")])
def test_rating_us_ca_add_on_from_anywhere_leaves_the_pool_untouched(store, location, destination):
    state = PoolState()
    licenses = ("audio_conferencing", "us_ca_dial_out")
    add_on = store.rate(dial_out("a", start="2021-03-10T10:00:00Z", to=destination, location=location,
                                 licenses=licenses), pool_state=state)
    after = store.rate(dial_out("b", start="2021-03-10T11:00:00Z", to="FR", licenses=licenses), pool_state=state)
    assert ("us_ca_unlimited", 0, 0, None) == (add_on.outcome, add_on.pool_minutes, add_on.credit_minutes, add_on.pool)
    assert (0, 5) == (after.pool.used_before, after.pool.used_after)


def test_rating_us_ca_add_on_with_pay_per_minute_audio_conferencing(store):
    rating = store.rate(dial_out(start="2021-03-10T10:00:00Z", to="US",
                                 licenses=("audio_conferencing_ppm", "us_ca_dial_out")))
    assert "us_ca_unlimited" == rating.outcome


def test_rating_us_ca_add_on_does_not_reach_other_countries(store):
    licenses = ("audio_conferencing", "us_ca_dial_out")
    rating = store.rate(dial_out(start="2021-03-10T10:00:00Z", to="GB", licenses=licenses))
    assert ("dial_out_pool", 5) == (rating.outcome, rating.pool_minutes)


def test_rating_basis_switch_on_22_october_2020_mid_month(fresh_store):
    seed_002_tenant(fresh_store, purchased=130)  # 130 purchased, 115 assigned
    rater = fresh_store.rater()
    before = rater.rate(dial_out("a", start="2020-10-21T23:59:59Z", minutes=7))
    after = rater.rate(dial_out("b", start="2020-10-22T00:00:00Z", minutes=4))
    assert ("assigned", 6900, 0, 7) == (before.pool.basis, before.pool.capacity, before.pool.used_before,
                                        before.pool.used_after)
    assert ("purchased", 7800, 7, 11) == (after.pool.basis, after.pool.capacity, after.pool.used_before,
                                          after.pool.used_after)
    assert "dial-out-pool-60-purchased-from-2020-10-22" in after.policy_versions


@pytest.mark.parametrize(("start", "outcome"), [
    ("2018-06-30T23:59:59Z", "complimentary"),
    ("2018-07-01T00:00:00Z", "communications_credits"),
])
def test_rating_end_of_june_2018_under_the_first_belief(store, start, outcome):
    rating = store.rate(dial_out(start=start, minutes=1), known_at="2018-06-01")
    assert outcome == rating.outcome


@pytest.mark.parametrize(("known_at", "outcome", "pool_minutes", "credit_minutes"), [
    ("2018-06-01", "communications_credits", 0, 15),
    (None, "complimentary", 15, 0),
])
def test_rating_september_2018_france_both_beliefs(store, known_at, outcome, pool_minutes, credit_minutes):
    rating = store.rate(dial_out(start="2018-09-15T09:00:00Z", minutes=15), known_at=known_at)
    assert (outcome, pool_minutes, credit_minutes) == (rating.outcome, rating.pool_minutes, rating.credit_minutes)


def test_rating_korean_tenant_in_2021_is_still_complimentary(fresh_store):
    seed_002_tenant(fresh_store, tenant_id="seoul", country="KR", credits=False)
    rating = fresh_store.rate(dial_out(tenant="seoul", start="2021-06-15T00:00:00Z", to="GB"))
    assert ("complimentary", 103500, 5) == (rating.outcome, rating.pool.capacity, rating.pool_minutes)


def test_rating_us_tenant_after_november_2019_is_not_complimentary(store):
    rating = store.rate(dial_out(start="2019-12-01T00:00:00Z"))
    assert ("dial_out_pool", 6900) == (rating.outcome, rating.pool.capacity)


def test_rating_alert_at_80_percent(store):
    rating = store.rate(dial_out(minutes=10), pool_state=used_up(minutes=5515))
    assert ("80% of pool audio_conferencing.dial_out_pool for 2020-03 (5525/6900 minutes)",) == rating.alerts


def test_rating_toll_free_dial_out_warns(store):
    rating = store.rate(dial_out(to="US-toll-free"))
    assert "toll_free" == rating.number_type
    assert any("toll-free dial-out may not connect" in warning for warning in rating.warnings)


def test_rating_trace_names_rule_version_and_fact(store):
    rating = store.rate(dial_out(minutes=3))
    assert [
        ("minute_rounding", "minute-rounding-up-per-call", "duration 180 s"),
        ("rating_basis", "rating-by-destination", "destination +33142685300 is in FR, a fixed_line number"),
        ("complimentary_dial_out", "complimentary-dial-out-ru-kr-tw-exception", "tenant country US"),
        ("destination", "zone-a-2018", "destination FR is in zone_a"),
        ("dial_out_pool", "dial-out-pool-60-assigned-until-2020-10-22", "organizer holds audio_conferencing"),
        ("pool_basis", "dial-out-pool-60-assigned-until-2020-10-22",
         "115 assigned audio_conferencing license(s) x 60 min"),
        ("pool_draw", "dial-out-pool-60-assigned-until-2020-10-22", "0 of 6900 minutes used before this call"),
    ] == [(step.rule, step.policy_version, step.fact) for step in rating.trace]
    assert ("minute-rounding-up-per-call", "rating-by-destination", "complimentary-dial-out-ru-kr-tw-exception",
            "zone-a-2018", "dial-out-pool-60-assigned-until-2020-10-22") == rating.policy_versions


def test_rating_before_any_policy_is_in_force(store):
    with pytest.raises(NoPolicyInForceError, match="no policy in force for 'minute_rounding' at 2017-06-01"):
        store.rate(dial_out(start="2017-06-01T00:00:00Z"))


def test_rating_unknown_tenant(store):
    with pytest.raises(UnknownTenantError, match="'nobody'"):
        store.rate(dial_out(tenant="nobody"))


def test_rating_the_same_call_twice_on_one_pool_state_is_refused(store):
    state = PoolState()
    store.rate(dial_out(), pool_state=state)
    with pytest.raises(DuplicateCallError, match="charge its pool twice"):
        store.rate(dial_out(), pool_state=state)


def test_rating_what_if_as_of(store):
    # The same 2020 call under the rules of 15 June 2018 as known now: the complimentary pool.
    rating = store.rate(dial_out(start="2020-03-10T10:00:00Z"), as_of="2018-06-15")
    assert ("complimentary", "2018-06-15T00:00:00Z") == (rating.outcome, policyhistory.format_instant(rating.as_of))
    assert "2020-03" == rating.pool.key.month


def test_rating_accepts_a_mapping_with_teams_aliases(store):
    rating = store.rate({"call_id": "x", "tenant_id": "contoso", "start": "2020-03-10T10:00:00+01:00",
                         "duration_seconds": "61", "call_type": "conf_out", "destination": "442071234567",
                         "organizer_usage_location": "gb", "organizer_licenses": "MCOMEETADD;MCOPSTNC"})
    assert ("dial_out_pool", 2, "GB") == (rating.outcome, rating.billable_minutes, rating.destination_country)


@pytest.mark.parametrize(
    ("minutes", "capacity", "before", "expected"),
    [
        (30, 120, 0, ("dial_out_pool", 30, 0, 0, 30, (), False)),
        (40, 120, 90, ("dial_out_pool", 30, 10, 0, 120, (80, 100), True)),
        (30, 120, 100, ("dial_out_pool", 20, 10, 0, 120, (100,), True)),
        (30, 120, 120, ("communications_credits", 0, 30, 0, 120, (), True)),
        (0, 120, 0, ("dial_out_pool", 0, 0, 0, 0, (), False)),  # 0 minutes: the pool's outcome, nothing drawn
    ],
)
def test_rating_plan_once_then_settle_each_call(fresh_store, minutes, capacity, before, expected):
    """plan_call decides once for every call of a kind; settle splits one call's minutes on its pool."""
    policies = fresh_store.policies("2021-03-10T10:00:00Z", known_at="2026-11-23T00:00:00Z")
    tenant = policyhistory.TenantFact("acme", "2017-01-01", "FR", True)
    plan = policyhistory.plan_call(policies, tenant, "conference_dial_out",
                                   policyhistory.classify_destination("+33142685300"),
                                   ("audio_conferencing", "communications_credits"), "FR")
    assert (None, "audio_conferencing.dial_out_pool", "purchased", 60) == (
        plan.refusal, plan.pool.pool, plan.pool.basis, plan.pool.minutes_per_user)
    assert expected == plan.settle(minutes, capacity, before, exhausted=False)


def test_rating_plan_refusal_before_any_policy_was_in_force(fresh_store):
    policies = fresh_store.policies("2017-03-10T10:00:00Z", known_at="2026-11-23T00:00:00Z")
    tenant = policyhistory.TenantFact("acme", "2017-01-01", "FR", True)
    plan = policyhistory.plan_call(policies, tenant, "conference_dial_out",
                                   policyhistory.classify_destination("+33142685300"), ("audio_conferencing",), "FR")
    assert policyhistory.Refusal(policy_key="minute_rounding", first_recorded="2017-11-28T22:11:00Z") == plan.refusal
    assert "no policy in force for 'minute_rounding' at 2017-03-10T10:00:00Z as known at 2026-11-23T00:00:00Z" == \
        str(plan.refusal.error(policyhistory.to_instant("2017-03-10T10:00:00Z"),
                               policyhistory.to_instant("2026-11-23T00:00:00Z")))


def test_raters_share_the_store_plans_until_a_load_changes_the_timeline(store, write_catalog):
    """A plan is kept across `rate` calls (the service rates one call a request) and forgotten once a load
    gives the store a new timeline: the next rating follows the version just loaded."""
    from .conftest import version_toml

    assert store.rater().plans is store.rater().plans
    assert 5 == store.rate(dial_out(minutes=5)).billable_minutes
    kept = store.rater().plans
    store.load([write_catalog("round.toml", version_toml("rounding-by-ten-minutes", key="minute_rounding",
                                                         recorded_at="2020-02-01T00:00:00Z", minutes=600))])
    assert store.rater().plans is not kept
    assert 1 == store.rate(dial_out(minutes=5)).billable_minutes  # rounded up to one 10-minute unit
    assert 5 == store.rate(dial_out(minutes=5), known_at="2020-01-15").billable_minutes
