"""The rule evaluator: call + policy set + tenant facts + pool use -> Rating with a trace. Pure: it reads no
clock, no file and no database, and the same inputs give the same Rating on any machine.

Each rule cites its source beside the check that enforces it; the numbers come from the policy versions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pendulum

from ._calls import Call, Destination, classify_destination
from ._errors import InvalidFieldError, NoPolicyInForceError
from ._instant import format_instant, month_of
from ._policy import (
    CallingPlanParams,
    CommunicationsCreditsParams,
    ComplimentaryDialOutParams,
    CountryListParams,
    DialInParams,
    DialOutPoolParams,
    MinuteRoundingParams,
    NumberTypeWarningParams,
    PolicyVersion,
    PoolAlertsParams,
    UsCaDialOutParams,
)
from ._rating import Outcome, PoolKey, PoolUse, Rating, TraceStep
from ._tenants import TenantSnapshot
from ._timeline import PolicySet

COMPLIMENTARY = "audio_conferencing.complimentary_dial_out"
DIAL_OUT_POOL = "audio_conferencing.dial_out_pool"
US_CA_DIAL_OUT = "audio_conferencing.us_ca_dial_out"
SELL_TO = "audio_conferencing.sell_to"
COMMUNICATIONS_CREDITS = "communications_credits"
MINUTE_ROUNDING = "minute_rounding"
POOL_ALERTS = "pool_alerts"
RATING_BASIS = "rating_basis"
DIAL_IN = "dial_in"
PREMIUM = "premium_rate"

PoolReader = Callable[[PoolKey], int]


def billable_minutes(duration_seconds: int, rounding: MinuteRoundingParams) -> int:
    """A call's duration in whole billable units (our reading: each call rounded up; see the version)."""
    units = duration_seconds / rounding.unit_seconds
    if rounding.mode == "up":
        return math.ceil(units)
    if rounding.mode == "down":
        return math.floor(units)
    return math.floor(units + 0.5)


class _Decision:
    """The trace being written: every step names its rule, version and the fact that decided it."""

    def __init__(self, call: Call, policies: PolicySet, as_of: pendulum.DateTime,
                 known_at: pendulum.DateTime | None) -> None:
        self.call = call
        self.policies = policies
        self.as_of = as_of
        self.known_at = known_at
        self.trace: list[TraceStep] = []
        self.versions: list[str] = []
        self.warnings: list[str] = []
        self.alerts: list[str] = []

    def require(self, key: str) -> PolicyVersion:
        version = self.policies.get(key)
        if version is None:
            known = format_instant(self.known_at) if self.known_at else "the given policy set"
            raise NoPolicyInForceError(key, format_instant(self.as_of), known)
        return version

    def step(self, rule: str, version: PolicyVersion | None, fact: str, decision: str) -> None:
        self.trace.append(TraceStep(rule, version.id if version else None, fact, decision))
        if version is not None and version.id not in self.versions:
            self.versions.append(version.id)

    def countries(self, key: str) -> tuple[PolicyVersion, tuple[str, ...]]:
        version = self.require(key)
        assert isinstance(version.params, CountryListParams)
        return version, version.params.countries


def rate_call(
    call: Call,
    policies: PolicySet,
    tenant: TenantSnapshot,
    used: PoolReader,
    *,
    as_of: pendulum.DateTime | None = None,
    known_at: pendulum.DateTime | None = None,
    destination: Destination | None = None,
) -> Rating:
    """Rate one call. `policies` must be the set resolved for `as_of` (default: the call's start) and
    `known_at`; those two only label the result. Pools are read through `used`, never written."""
    decision = _Decision(call, policies, as_of or call.start, known_at)
    rounding = decision.require(MINUTE_ROUNDING)
    assert isinstance(rounding.params, MinuteRoundingParams)
    minutes = billable_minutes(call.duration_seconds, rounding.params)
    decision.step("minute_rounding", rounding, f"duration {call.duration_seconds} s",
                  f"{minutes} billable minute(s), rounded {rounding.params.mode} to {rounding.params.unit_seconds} s")
    dest = destination or classify_destination(call.destination)
    basis = policies.get(RATING_BASIS)
    decision.step("rating_basis", basis, f"destination {call.destination} is in {dest.country}, a {dest.number_type} "
                  "number", "rated by destination, not by where the organizer or caller is")
    _number_type_warnings(decision, dest)
    rate = {
        "conference_dial_out": _conference_dial_out,
        "pstn_outbound": _pstn_outbound,
        "conference_dial_in": _inbound,
        "pstn_inbound": _inbound,
    }[call.call_type]
    outcome, pool_use, pool_minutes, credit_minutes, uncovered = rate(decision, call, dest, minutes, tenant, used)
    return Rating(
        call_id=call.call_id,
        outcome=outcome,
        billable_minutes=minutes,
        pool_minutes=pool_minutes,
        credit_minutes=credit_minutes,
        uncovered_minutes=uncovered,
        destination_country=dest.country,
        number_type=dest.number_type,
        pool=pool_use,
        policy_versions=tuple(decision.versions),
        alerts=tuple(decision.alerts),
        warnings=tuple(decision.warnings),
        trace=tuple(decision.trace),
        as_of=decision.as_of,
        known_at=known_at,
    )


_Result = tuple[Outcome, PoolUse | None, int, int, int]


def _number_type_warnings(decision: _Decision, dest: Destination) -> None:
    # Seed 003: "Dialing out to toll-free or free phone numbers may not be possible".
    for version in decision.policies.of_kind("number_type_warning"):
        params = version.params
        assert isinstance(params, NumberTypeWarningParams)
        if dest.number_type in params.number_types and decision.call.call_type in params.call_types:
            decision.warnings.append(params.warning)
            decision.step("number_type_warning", version, f"{dest.number_type} number on {decision.call.call_type}",
                          "warning only; the rating is unchanged")


def _conference_dial_out(decision: _Decision, call: Call, dest: Destination, minutes: int,
                         tenant: TenantSnapshot, used: PoolReader) -> _Result:
    _sell_to_warning(decision, call)
    premium = dest.number_type == PREMIUM
    us_ca = decision.policies.get(US_CA_DIAL_OUT)
    if us_ca is not None and _us_ca_unlimited(decision, us_ca, call, dest, premium):
        return "us_ca_unlimited", None, 0, 0, 0
    complimentary = decision.policies.get(COMPLIMENTARY)
    if complimentary is not None and _complimentary_applies(decision, complimentary, call, dest, premium, tenant):
        params = complimentary.params
        assert isinstance(params, ComplimentaryDialOutParams)
        if params.minutes_per_user is None:
            decision.step("complimentary_dial_out", complimentary, "the period has no minute cap",
                          f"all {minutes} minute(s) complimentary")
            return "complimentary", None, 0, 0, 0
        assert params.pool_basis is not None
        return _draw_then_credits(decision, call, minutes, tenant, used, complimentary, "complimentary",
                                  params.licenses, params.pool_basis, params.minutes_per_user)
    pool = decision.policies.get(DIAL_OUT_POOL)
    if pool is not None:
        params_pool = pool.params
        assert isinstance(params_pool, DialOutPoolParams)
        if _benefit_reaches(decision, pool, "dial_out_pool", params_pool.licenses, params_pool.destinations,
                            params_pool.premium_numbers, call, dest, premium):
            return _draw_then_credits(decision, call, minutes, tenant, used, pool, "dial_out_pool",
                                      params_pool.licenses, params_pool.pool_basis, params_pool.minutes_per_user)
    return _credits_or_blocked(decision, call, minutes, tenant, "no pool or benefit covers this dial-out")


def _sell_to_warning(decision: _Decision, call: Call) -> None:
    version = decision.policies.get(SELL_TO)
    if version is None or call.usage_location is None:
        return
    assert isinstance(version.params, CountryListParams)
    if call.usage_location not in version.params.countries:
        decision.warnings.append(f"the organizer's usage location {call.usage_location} is not an Audio "
                                 "Conferencing market")
        decision.step("sell_to", version, f"usage location {call.usage_location}",
                      "not where Audio Conferencing is sold; warning only (rating is by destination)")


def _us_ca_unlimited(decision: _Decision, version: PolicyVersion, call: Call, dest: Destination,
                     premium: bool) -> bool:
    # Seed 001: the organizer's add-on, unlimited to US and Canada, "regardless of where the call takes place".
    params = version.params
    assert isinstance(params, UsCaDialOutParams)
    if params.license not in call.licenses:
        return False
    if dest.country not in params.countries:
        decision.step("us_ca_dial_out", version, f"destination {dest.country}",
                      f"outside {', '.join(params.countries)}; the add-on does not apply")
        return False
    if premium and not params.premium_numbers:
        decision.step("us_ca_dial_out", version, "premium-rate number", "premium numbers are outside the add-on")
        return False
    if not set(params.prerequisite_licenses) & set(call.licenses):
        decision.step("us_ca_dial_out", version, f"organizer licenses {', '.join(call.licenses) or 'none'}",
                      f"the add-on needs one of {', '.join(params.prerequisite_licenses)}")
        return False
    decision.step("us_ca_dial_out", version, f"organizer holds {params.license}; destination {dest.country}",
                  "unlimited (fair use): no pool and no credits drawn")
    return True


def _complimentary_applies(decision: _Decision, version: PolicyVersion, call: Call, dest: Destination,
                           premium: bool, tenant: TenantSnapshot) -> bool:
    params = version.params
    assert isinstance(params, ComplimentaryDialOutParams)
    # Seed 002: the period continues for tenants in RU, KR and TW; the exception keys on the tenant's country.
    if params.tenant_countries is not None and tenant.tenant.country not in params.tenant_countries:
        decision.step("complimentary_dial_out", version, f"tenant country {tenant.tenant.country}",
                      f"the period continues only for tenants in {', '.join(params.tenant_countries)}")
        return False
    return _benefit_reaches(decision, version, "complimentary_dial_out", params.licenses, params.destinations,
                            params.premium_numbers, call, dest, premium)


def _benefit_reaches(decision: _Decision, version: PolicyVersion, rule: str, licenses: Sequence[str],
                     destinations: str, premium_numbers: bool, call: Call, dest: Destination, premium: bool) -> bool:
    """License, destination and number type: the three conditions every dial-out benefit states."""
    if not set(licenses) & set(call.licenses):
        # Seed 002: subscription licenses only, "ne s'applique pas aux licences de paiement à la minute".
        decision.step(rule, version, f"organizer licenses {', '.join(call.licenses) or 'none'}",
                      f"needs one of {', '.join(licenses)}; does not apply")
        return False
    zone_version, zone = decision.countries(destinations)
    if dest.country not in zone:
        # Seed 002's table: the destination decides ("Zimbabwe ... Oui sur TOUS les appels").
        decision.step(rule, zone_version, f"destination {dest.country} is not in {destinations}", "does not apply")
        return False
    if premium and not premium_numbers:
        decision.step(rule, version, "premium-rate number", "premium numbers never use a pool")
        return False
    decision.step("destination", zone_version, f"destination {dest.country} is in {destinations}",
                  "a destination the benefit covers")
    decision.step(rule, version, f"organizer holds {', '.join(sorted(set(licenses) & set(call.licenses)))}",
                  "the benefit applies")
    return True


def pool_capacity(tenant: TenantSnapshot, skus: Sequence[str], basis: str, minutes_per_user: int,
                  locations: Sequence[str] | None = None) -> tuple[int, int]:
    """The pool basis rule: users counted on `basis` (assigned or purchased licenses) x minutes per user."""
    users = tenant.licensed(skus, basis, locations)
    return users, users * minutes_per_user


def _draw(decision: _Decision, tenant: TenantSnapshot, used: PoolReader, version: PolicyVersion, key: PoolKey,
          skus: Sequence[str], basis: str, minutes_per_user: int, minutes: int,
          locations: Sequence[str] | None = None, exhausted_by: str | None = None) -> PoolUse:
    users, capacity = pool_capacity(tenant, skus, basis, minutes_per_user, locations)
    where = f" in {'/'.join(locations)}" if locations else ""
    decision.step("pool_basis", version, f"{users} {basis} {'/'.join(skus)} license(s){where} x {minutes_per_user} min",
                  f"pool {key.pool} holds {capacity} minutes in {key.month}")
    before = used(key)
    take = 0 if exhausted_by else max(0, min(minutes, capacity - before))
    use = PoolUse(key, capacity, before, before + take, basis, users, minutes_per_user)
    if exhausted_by:
        decision.step("pool_draw", version, exhausted_by, "the pool is used up for this call")
    else:
        decision.step("pool_draw", version, f"{before} of {capacity} minutes used before this call",
                      f"{take} minute(s) from the pool, {use.used_after} used after")
    _alerts(decision, use)
    return use


def _alerts(decision: _Decision, use: PoolUse) -> None:
    # Seed 002: administrators are notified at 80 % and 100 % of pool use.
    version = decision.policies.get(POOL_ALERTS)
    if version is None or use.capacity <= 0 or use.used_after == use.used_before:
        return
    assert isinstance(version.params, PoolAlertsParams)
    for percent in version.params.thresholds_percent:
        mark = use.capacity * percent / 100
        if use.used_before < mark <= use.used_after:
            decision.alerts.append(f"{percent}% of pool {use.key.pool} for {use.key.month} "
                                   f"({use.used_after}/{use.capacity} minutes)")
            decision.step("pool_alerts", version, f"use went from {use.used_before} to {use.used_after} of "
                          f"{use.capacity}", f"{percent} % alert")


def _draw_then_credits(decision: _Decision, call: Call, minutes: int, tenant: TenantSnapshot, used: PoolReader,
                       version: PolicyVersion, outcome: Outcome, skus: Sequence[str], basis: str,
                       minutes_per_user: int, locations: Sequence[str] | None = None,
                       pool_name: str | None = None, counter: str = "minutes",
                       exhausted_by: str | None = None) -> _Result:
    """Seed 002: a call draws what the pool has left; minutes past the pool go to Communications Credits."""
    key = PoolKey(call.tenant_id, pool_name or version.key, month_of(call.start), counter)
    use = _draw(decision, tenant, used, version, key, skus, basis, minutes_per_user, minutes, locations, exhausted_by)
    taken = use.used_after - use.used_before
    rest = minutes - taken
    if taken == 0:
        result = _credits_or_blocked(decision, call, minutes, tenant, f"pool {key.pool} has no minutes left")
        return result[0], use, 0, result[3], result[4]
    if rest == 0:
        return outcome, use, taken, 0, 0
    if _credits_available(decision, call, tenant, rest):
        return outcome, use, taken, rest, 0
    decision.warnings.append(f"{rest} minute(s) past the pool with no Communications Credits: the call would have "
                             f"been cut after {taken} minute(s)")
    return outcome, use, taken, 0, rest


def _credits_available(decision: _Decision, call: Call, tenant: TenantSnapshot, minutes: int) -> bool:
    # Seed 003: without credits set up and licensed, "they won't be able to make calls or dial out from meetings".
    version = decision.require(COMMUNICATIONS_CREDITS)
    params = version.params
    assert isinstance(params, CommunicationsCreditsParams)
    set_up = tenant.tenant.communications_credits or not params.tenant_setup_required
    licensed = params.license in call.licenses
    fact = (f"tenant credits set up: {'yes' if set_up else 'no'}; "
            f"user holds {params.license}: {'yes' if licensed else 'no'}")
    available = set_up and licensed
    decision.step("communications_credits", version, fact,
                  f"{minutes} minute(s) billed per minute to Communications Credits" if available
                  else "Communications Credits are not available")
    return available


def _credits_or_blocked(decision: _Decision, call: Call, minutes: int, tenant: TenantSnapshot,
                        why: str) -> _Result:
    if _credits_available(decision, call, tenant, minutes):
        return "communications_credits", None, 0, minutes, 0
    decision.step("blocked", None, why + "; no Communications Credits", "the call could not be made under the rules")
    return "blocked", None, 0, 0, minutes


def _pstn_outbound(decision: _Decision, call: Call, dest: Destination, minutes: int,
                   tenant: TenantSnapshot, used: PoolReader) -> _Result:
    plans = [v for v in decision.policies.of_kind("calling_plan")
             if isinstance(v.params, CallingPlanParams) and v.params.license in call.licenses]
    held = [sku for sku in call.licenses if sku.startswith("calling_plan")]
    if held and not plans:
        # The user holds a plan no version describes at this instant: refuse rather than guess.
        decision.require(f"calling_plan.{held[0].removeprefix('calling_plan_')}")
    if not plans:
        decision.step("calling_plan", None, f"user licenses {', '.join(call.licenses) or 'none'}",
                      "no Calling Plan in force for this user: every minute per-minute")
        return _credits_or_blocked(decision, call, minutes, tenant, "no Calling Plan")
    # A user holding two plans calls on the wider one.
    plans.sort(key=lambda v: (v.params.scope != "domestic_and_international", v.key))  # type: ignore[union-attr]
    version = plans[0]
    plan = version.params
    assert isinstance(plan, CallingPlanParams)
    if call.usage_location is None:
        raise InvalidFieldError("usage_location", None, "the user's license usage location (it picks the pool)")
    # Seed 004: the country is the license usage location, not the billing address.
    group = plan.pool_group(call.usage_location)
    allowance = plan.allowance_for(call.usage_location)
    if allowance is None:
        decision.step("calling_plan", version, f"usage location {call.usage_location}", "the plan has no minutes there")
        return _credits_or_blocked(decision, call, minutes, tenant, "no Calling Plan minutes")
    if dest.number_type == PREMIUM:
        decision.step("calling_plan", version, "premium-rate number", "premium numbers are never in a plan's minutes")
        return _credits_or_blocked(decision, call, minutes, tenant, "premium number")
    domestic = dest.country in group
    pool_name = f"{version.key}:{'+'.join(group)}"
    if domestic:
        counter, per_user, other, other_per_user = "domestic", allowance.domestic_minutes, "international", \
            allowance.international_minutes
    elif plan.scope == "domestic_and_international" and allowance.international_minutes:
        counter, per_user, other, other_per_user = "international", allowance.international_minutes, "domestic", \
            allowance.domestic_minutes
    else:
        # The reference: Communications Credits pay for "international calls on Domestic plans".
        decision.step("calling_plan", version, f"{dest.country} is outside {'/'.join(group)}",
                      "a Domestic plan does not include international calls")
        return _credits_or_blocked(decision, call, minutes, tenant, "international call on a Domestic plan")
    decision.step("calling_plan", version, f"user in {call.usage_location} calls {dest.country}",
                  f"{counter} minutes of {version.key}, pooled with identical plans in {'/'.join(group)}")
    exhausted_by = None
    if plan.scope == "domestic_and_international" and other_per_user:
        # "whichever is reached first": once either counter is used up, so is the pool (our reading).
        other_key = PoolKey(call.tenant_id, pool_name, month_of(call.start), other)
        _, other_capacity = pool_capacity(tenant, [plan.license], plan.pool_basis, other_per_user, group)
        if other_capacity and used(other_key) >= other_capacity:
            exhausted_by = f"the {other} minutes ({other_capacity}) were reached first this month"
    return _draw_then_credits(decision, call, minutes, tenant, used, version, "calling_plan", [plan.license],
                              plan.pool_basis, per_user, group, pool_name, counter, exhausted_by)


def _inbound(decision: _Decision, call: Call, dest: Destination, minutes: int,
             tenant: TenantSnapshot, used: PoolReader) -> _Result:
    version = decision.require(DIAL_IN)
    params = version.params
    assert isinstance(params, DialInParams)
    if dest.number_type in params.credit_number_types:
        decision.step("dial_in", version, f"call into a {dest.number_type} number", "billed per minute to credits")
        return _credits_or_blocked(decision, call, minutes, tenant, f"{dest.number_type} number")
    decision.step("dial_in", version, f"call into a {dest.number_type} number", "no charge to the tenant")
    return "free", None, 0, 0, 0
