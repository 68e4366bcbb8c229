"""Calling Plan pools, inbound calls, and order independence of a tenant-month."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyhistory import Call, LicenseFact, PoolKey, PoolState, TenantFact

from .conftest import fixed_clock
from .test_rating import NUMBER, dial_out, seed_002_tenant

START = "2022-03-10T10:00:00Z"


@pytest.fixture
def plans(fresh_store):
    """Fabrikam: 10 US and 2 PR users on the Domestic plan, 5 UK users on Domestic and International."""
    fresh_store.add_tenant_facts(
        [TenantFact("fabrikam", "2016-01-01", "US", True)],
        [LicenseFact("fabrikam", "2016-01-01", "MCOPSTN1", "US", 10, 10),
         LicenseFact("fabrikam", "2016-01-01", "MCOPSTN1", "PR", 2, 2),
         LicenseFact("fabrikam", "2016-01-01", "MCOPSTN2", "GB", 5, 5)],
    )
    return fresh_store


def user_call(call_id="u1", to="US", location="US", licenses=("calling_plan_domestic", "communications_credits"),
              minutes=5, start=START, call_type="user_out"):
    return Call(call_id=call_id, tenant_id="fabrikam", start=start, duration_seconds=minutes * 60,
                call_type=call_type, destination=NUMBER.get(to, to), user_id="u@fabrikam", usage_location=location,
                licenses=licenses)


def test_rating_calling_plan_us_and_puerto_rico_share_one_pool(plans):
    state = PoolState()
    us = plans.rate(user_call("a", to="PR"), pool_state=state)
    pr = plans.rate(user_call("b", to="US", location="PR", start="2022-03-10T11:00:00Z"), pool_state=state)
    assert ("calling_plan", "calling_plan.domestic:US+PR", "domestic", 36000) == (
        us.outcome, us.pool.key.pool, us.pool.key.counter, us.pool.capacity)  # 12 users x 3000
    assert (5, 10) == (pr.pool.used_before, pr.pool.used_after)


@pytest.mark.parametrize(("licenses", "outcome", "credit_minutes"), [
    (("calling_plan_domestic", "communications_credits"), "communications_credits", 5),
    (("calling_plan_domestic",), "blocked", 0),
])
def test_rating_domestic_plan_calling_abroad_needs_credits(plans, licenses, outcome, credit_minutes):
    rating = plans.rate(user_call(to="FR", licenses=licenses))
    assert (outcome, credit_minutes, 0) == (rating.outcome, rating.credit_minutes, rating.pool_minutes)


def test_rating_international_plan_uses_its_international_minutes(plans):
    rating = plans.rate(user_call(to="FR", location="GB", licenses=("calling_plan_international",)))
    assert ("calling_plan", "international", 3000) == (rating.outcome, rating.pool.key.counter, rating.pool.capacity)


def test_rating_international_plan_whichever_is_reached_first(plans):
    international = PoolKey("fabrikam", "calling_plan.international:GB", "2022-03", "international")
    state = PoolState({international: 3000})  # 5 users x 600: used up
    rating = plans.rate(user_call(to="GB", location="GB", licenses=("calling_plan_international",
                                                                    "communications_credits")), pool_state=state)
    assert ("communications_credits", 0, 5) == (rating.outcome, rating.pool_minutes, rating.credit_minutes)
    assert "the international minutes (3000) were reached first this month" in [s.fact for s in rating.trace]


def test_rating_calling_plan_pool_past_capacity_goes_to_credits(plans):
    domestic = PoolKey("fabrikam", "calling_plan.domestic:US+PR", "2022-03", "domestic")
    rating = plans.rate(user_call(minutes=10), pool_state=PoolState({domestic: 35996}))
    assert ("calling_plan", 4, 6) == (rating.outcome, rating.pool_minutes, rating.credit_minutes)


def test_rating_user_without_a_plan_pays_per_minute(plans):
    rating = plans.rate(user_call(licenses=("communications_credits",)))
    assert ("communications_credits", 5) == (rating.outcome, rating.credit_minutes)


@pytest.mark.parametrize(("number", "outcome"), [("GB", "free"), ("US-toll-free", "communications_credits")])
def test_rating_dial_in(plans, number, outcome):
    rating = plans.rate(user_call(to=number, call_type="conf_in"))
    assert outcome == rating.outcome


calls_strategy = st.lists(
    st.tuples(st.integers(0, 20), st.integers(1, 40), st.sampled_from(["FR", "GB", "ZW", "US", "GB-premium"])),
    min_size=1, max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(calls_strategy, st.randoms())
def test_rating_a_tenant_month_in_any_input_order_gives_the_same_ratings(specs, random):
    import policyhistory

    store = policyhistory.open(clock=fixed_clock)
    seed_002_tenant(store, purchased=1, us_assigned=1)  # a small pool: 106 users x 60
    calls = [dial_out(f"c{index:02d}", start=f"2020-03-{1 + day:02d}T10:00:00Z", minutes=minutes, to=to)
             for index, (day, minutes, to) in enumerate(specs)]
    shuffled = list(calls)
    random.shuffle(shuffled)
    first = dict(zip([c.call_id for c in calls], store.rater().rate_all(calls), strict=True))
    second = dict(zip([c.call_id for c in shuffled], store.rater().rate_all(shuffled), strict=True))
    assert first == second


def test_rating_calling_plan_before_its_policy_was_known_is_refused(plans):
    from policyhistory import NoPolicyInForceError, NothingKnownYetError

    # Calling Plans were stated from the pages' first upload (2017-11-28); before it, nothing was known.
    with pytest.raises(NothingKnownYetError, match=r"nothing was known yet about 'minute_rounding' as of "
                       r"2017-06-01T00:00:00Z; its first record was published 2017-11-28T22:11:00Z") as refused:
        plans.rate(user_call(start="2021-03-10T10:00:00Z"), known_at="2017-06-01")
    assert isinstance(refused.value, NoPolicyInForceError)
    assert "calling_plan" == plans.rate(user_call(start="2021-03-10T10:00:00Z"), known_at="2018-01-01").outcome
