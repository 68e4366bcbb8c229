"""The plan of a PSTN outbound call on a Calling Plan: the plan the user holds, where it is sold, the pool of
its usage location, domestic or international minutes, premium and special numbers, else Communications
Credits.

Each rule cites its source beside the check that enforces it; the numbers come from the policy versions.
"""

from __future__ import annotations

from ._planner import Decided, Planner, Refused, credits_or_blocked, pool_plan
from ._plans import Refusal
from ._policy import CallingPlanAvailabilityParams, CallingPlanParams, PolicyVersion


def pstn_outbound(planner: Planner) -> Decided:
    licenses, dest, location = planner.licenses, planner.dest, planner.usage_location
    plans = [v for v in planner.policies.of_kind("calling_plan")
             if isinstance(v.params, CallingPlanParams) and v.params.license in licenses]
    held = [sku for sku in licenses if sku.startswith("calling_plan")]
    if held and not plans:
        # The user holds a plan no version describes at this instant: refuse rather than guess.
        planner.require(f"calling_plan.{held[0].removeprefix('calling_plan_')}")
    if not plans:
        planner.step("calling_plan", None, f"user licenses {', '.join(licenses) or 'none'}",
                     "no Calling Plan in force for this user: every minute per-minute")
        return credits_or_blocked(planner, "no Calling Plan")
    # A user holding two plans calls on the wider one.
    plans.sort(key=lambda v: (v.params.scope != "domestic_and_international", v.key))  # type: ignore[union-attr]
    version = plans[0]
    plan = version.params
    assert isinstance(plan, CallingPlanParams)
    if location is None:
        raise Refused(Refusal(field="usage_location",
                               expected="the user's license usage location (it picks the pool)"))
    if plan.availability is not None:
        _check_sold(planner, version, plan.availability, location)
    # Seed 004: the country is the license usage location, not the billing address.
    group = plan.pool_group(location)
    allowance = plan.allowance_for(location)
    if allowance is None:
        planner.step("calling_plan", version, f"usage location {location}", "the plan has no minutes there")
        return credits_or_blocked(planner, "no Calling Plan minutes")
    domestic_to = plan.domestic_to(location)
    domestic = dest.country in domestic_to
    if dest.number_type in plan.special_number_types:
        treatment = _special_number(planner, version, plan, domestic)
        if treatment == "blocked":
            return "blocked", "uncovered", None
        if treatment == "communications_credits":
            return credits_or_blocked(planner, f"{dest.number_type} number")
    pool_name = f"{version.key}:{'+'.join(group)}"
    if domestic:
        counter, per_user, other, other_per_user = "domestic", allowance.domestic_minutes, "international", \
            allowance.international_minutes
    elif plan.scope == "domestic_and_international" and allowance.international_minutes:
        counter, per_user, other, other_per_user = "international", allowance.international_minutes, "domestic", \
            allowance.domestic_minutes
    else:
        # The reference: Communications Credits pay for "international calls on Domestic plans".
        planner.step("calling_plan", version, f"{dest.country} is outside {'/'.join(domestic_to)}",
                     "a Domestic plan does not include international calls")
        return credits_or_blocked(planner, "international call on a Domestic plan")
    across = f" (domestic across the border: {'/'.join(domestic_to)})" if domestic and dest.country not in group \
        else ""
    # The usage report: MCOPSTN8 is "a 120-minute plan counted per user and not pooled": the user's own minutes.
    pooled = f"pooled with identical plans in {'/'.join(group)}" if plan.pooled else \
        f"counted per user, not pooled ({per_user} minutes of the user's own)"
    planner.step("calling_plan", version, f"user in {location} calls {dest.country}{across}",
                 f"{counter} minutes of {version.key}, {pooled}")
    # "whichever is reached first": once either counter is used up, so is the pool (our reading).
    whichever_first = plan.scope == "domestic_and_international" and bool(other_per_user)
    return "calling_plan", "none", pool_plan(planner, version, "calling_plan", [plan.license], plan.pool_basis,
                                             per_user, group, pool_name, counter,
                                             other if whichever_first else None, other_per_user,
                                             per_user=not plan.pooled)


def _check_sold(planner: Planner, version: PolicyVersion, key: str, location: str) -> None:
    """The availability pages: a Calling Plan license where (or before) Microsoft sells no plan carries no
    call; the row is refused, naming the country, the plan and the earliest date known, never given a pool."""
    availability = planner.require(key)
    params = availability.params
    assert isinstance(params, CallingPlanAvailabilityParams)
    since = params.since(location)
    if since is None or since > availability.valid_from.date():
        planner.step("calling_plan_availability", availability, f"usage location {location}",
                     "no Calling Plan sold there at this date")
        raise Refused(Refusal(plan=version.key, country=location,
                               sold_from=since.isoformat() if since else None, sold_in=params.countries()))
    planner.step("calling_plan_availability", availability, f"usage location {location}",
                 f"Calling Plans sold there since {since.isoformat()}")


def _special_number(planner: Planner, version: PolicyVersion, plan: CallingPlanParams, domestic: bool) -> str:
    """A premium or special number (phonenumbers' number type of the dialed number: premium_rate, shared_cost;
    the UK's 084x/087x typed shared_cost as the UK page names them, see _calls.UK_SHARED_COST) on a Calling
    Plan: the availability pages say "not supported", the call cannot be made, except where a page says
    otherwise (France: Communications Credits; Austria; the UK's shared-cost numbers). The exceptions are each
    page's own country's numbers, called from a plan there."""
    dest = planner.dest
    rule = plan.special_number_rule(dest.country, dest.number_type) if domestic else None
    treatment = rule.treatment if rule is not None else plan.special_numbers_default
    fact = f"{dest.number_type} number in {dest.country} (phonenumbers' number type of the number dialed)"
    if treatment == "blocked":
        planner.step("calling_plan", version, fact,
                     "premium and special numbers are not supported on a Calling Plan: the call cannot be made")
        planner.step("blocked", None, "premium or special number on a Calling Plan",
                     "the call could not be made under the rules")
    elif treatment == "communications_credits":
        planner.step("calling_plan", version, fact, "paid per minute with Communications Credits")
    else:
        planner.step("calling_plan", version, fact, "allowed: counted like any domestic call of the plan")
    return treatment

