"""The rule evaluator: call + policy set + tenant facts + pool use -> Rating with a trace. Pure: it reads no
clock, no file and no database, and the same inputs give the same Rating on any machine.

It works in two steps, so that a bulk re-rating decides once per kind of call and does only the pool
arithmetic per call:
- `plan_call` decides everything a pool's use does not: which benefit reaches the call, which pool it draws
  on, whether Communications Credits can pay, the warnings. It sees only what every call of its kind shares
  (policy set, the tenant's country and credits set-up, call type, destination, licenses, usage location).
- `RatingPlan.settle` (the plans as data live in _plans) draws one call's minutes on the plan's pool and
  splits them into pool, credit and uncovered minutes; the pool ledger (_ledger) calls it.
`rate_call` is both together, with the trace; bulk re-rating calls `RatingPlan.settle` itself, without one.

Each rule cites its source beside the check that enforces it; the numbers come from the policy versions.
"""

from __future__ import annotations

from collections.abc import Sequence

import pendulum

from ._calls import Call, Destination, classify_destination
from ._exempt import exempt_plan
from ._instant import format_instant, month_of
from ._ledger import PoolLedger, Settled
from ._ledger import alert_text as alert_text
from ._plans import COMMUNICATIONS_CREDITS as COMMUNICATIONS_CREDITS  # the key's name, where rules name it
from ._plans import (
    COMPLIMENTARY,
    DIAL_IN,
    DIAL_OUT_POOL,
    FREE_CALL,
    MINUTE_ROUNDING,
    POOL_ALERTS,
    PREMIUM,
    RATING_BASIS,
    SELL_TO,
    US_CA_DIAL_OUT,
    Bucket,
    CreditsCheck,
    PlannedStep,
    PoolReader,
    Text,
)
from ._plans import PoolPlan as PoolPlan
from ._plans import RatingPlan as RatingPlan
from ._plans import Refusal as Refusal
from ._plans import pool_capacity as pool_capacity
from ._policy import (
    CallingPlanAvailabilityParams,
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
from ._rating import Outcome, PoolKey, Rating, TraceStep
from ._tenants import TenantFact, TenantSnapshot
from ._timeline import PolicySet


class _Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal


class _Planner:
    """The plan being written: every step names its rule, version and the fact that decided it."""

    def __init__(self, policies: PolicySet, tenant: TenantFact, call_type: str, dest: Destination,
                 licenses: tuple[str, ...], usage_location: str | None) -> None:
        self.policies = policies
        self.tenant = tenant
        self.call_type = call_type
        self.dest = dest
        self.licenses = licenses
        self.usage_location = usage_location
        self.steps: list[PlannedStep] = []
        self.versions: list[str] = []
        self.warnings: list[str] = []

    def require(self, key: str) -> PolicyVersion:
        version = self.policies.get(key)
        if version is None:
            first = self.policies.first_recorded.get(key)
            raise _Refused(Refusal(policy_key=key, first_recorded=format_instant(first) if first else None))
        return version

    def step(self, rule: str, version: PolicyVersion | None, fact: Text, decision: Text) -> None:
        self.steps.append(PlannedStep(rule, version.id if version else None, fact, decision))
        if version is not None and version.id not in self.versions:
            self.versions.append(version.id)

    def countries(self, key: str) -> tuple[PolicyVersion, tuple[str, ...]]:
        version = self.require(key)
        assert isinstance(version.params, CountryListParams)
        return version, version.params.countries

    def credits(self) -> CreditsCheck:
        # Seed 003: without credits set up and licensed, "they won't be able to make calls or dial out from meetings".
        version = self.policies.get(COMMUNICATIONS_CREDITS)
        if version is None:
            return CreditsCheck(None, False, "")
        params = version.params
        assert isinstance(params, CommunicationsCreditsParams)
        set_up = self.tenant.communications_credits or not params.tenant_setup_required
        licensed = params.license in self.licenses
        fact = (f"tenant credits set up: {'yes' if set_up else 'no'}; "
                f"user holds {params.license}: {'yes' if licensed else 'no'}")
        return CreditsCheck(version.id, set_up and licensed, fact)


def plan_call(policies: PolicySet, tenant: TenantFact, call_type: str, destination: Destination,
              licenses: tuple[str, ...], usage_location: str | None, carrier: str | None = None) -> RatingPlan:
    """Decide what the rules say of every call with these inputs, up to the use of its pool. An emergency call
    or one carried by another operator (`carrier`) is decided by _exempt.exempt_plan."""
    exempt = exempt_plan(policies, call_type, destination, carrier, usage_location)
    if exempt is not None:
        return exempt
    planner = _Planner(policies, tenant, call_type, destination, licenses, usage_location)
    try:
        rounding = planner.require(MINUTE_ROUNDING)
        params = rounding.params
        assert isinstance(params, MinuteRoundingParams)
        planner.step("minute_rounding", rounding, _duration_text,
                     lambda call, minutes: f"{minutes} billable minute(s), rounded {params.mode} to "
                                           f"{params.unit_seconds} s")
        dest = destination
        planner.step("rating_basis", policies.get(RATING_BASIS),
                     lambda call, minutes: f"destination {call.destination} is in {dest.country}, a "
                                           f"{dest.number_type} number",
                     "rated by destination, not by where the organizer or caller is")
        _number_type_warnings(planner)
        if FREE_CALL in licenses:
            # The PSTN usage report: Capability FREECALL is a call a technical problem kept from being priced,
            # hence free (pstn-usage-report.md, reference file).
            planner.step("free_call", None, "Capability FREECALL", "the call was not priced: free")
            return RatingPlan(destination, params, "free", "none", None, CreditsCheck(None, False, ""),
                              tuple(planner.steps), tuple(planner.versions), tuple(planner.warnings))
        rate = {
            "conference_dial_out": _conference_dial_out,
            "pstn_outbound": _pstn_outbound,
            "conference_dial_in": _inbound,
            "pstn_inbound": _inbound,
        }[call_type]
        outcome, bucket, pool = rate(planner)
        credits = planner.credits()
    except _Refused as refused:
        return RatingPlan(destination, None, "blocked", "uncovered", None, CreditsCheck(None, False, ""), (), (), (),
                          refused.refusal)
    return RatingPlan(destination, params, outcome, bucket, pool, credits, tuple(planner.steps),
                      tuple(planner.versions), tuple(planner.warnings))


def _duration_text(call: Call, minutes: int) -> str:
    return f"duration {call.duration_seconds} s"


_Decided = tuple[Outcome, Bucket, PoolPlan | None]


def _number_type_warnings(planner: _Planner) -> None:
    # Seed 003: "Dialing out to toll-free or free phone numbers may not be possible".
    dest = planner.dest
    for version in planner.policies.of_kind("number_type_warning"):
        params = version.params
        assert isinstance(params, NumberTypeWarningParams)
        if dest.number_type in params.number_types and planner.call_type in params.call_types:
            planner.warnings.append(params.warning)
            planner.step("number_type_warning", version, f"{dest.number_type} number on {planner.call_type}",
                         "warning only; the rating is unchanged")


def _conference_dial_out(planner: _Planner) -> _Decided:
    _sell_to_warning(planner)
    premium = planner.dest.number_type == PREMIUM
    us_ca = planner.policies.get(US_CA_DIAL_OUT)
    if us_ca is not None and _us_ca_unlimited(planner, us_ca, premium):
        return "us_ca_unlimited", "none", None
    complimentary = planner.policies.get(COMPLIMENTARY)
    if complimentary is not None and _complimentary_applies(planner, complimentary, premium):
        params = complimentary.params
        assert isinstance(params, ComplimentaryDialOutParams)
        if params.minutes_per_user is None:
            planner.step("complimentary_dial_out", complimentary, "the period has no minute cap",
                         lambda call, minutes: f"all {minutes} minute(s) complimentary")
            return "complimentary", "none", None
        assert params.pool_basis is not None
        return "complimentary", "none", _pool_plan(planner, complimentary, "complimentary", params.licenses,
                                                   params.pool_basis, params.minutes_per_user)
    pool = planner.policies.get(DIAL_OUT_POOL)
    if pool is not None:
        params_pool = pool.params
        assert isinstance(params_pool, DialOutPoolParams)
        if _benefit_reaches(planner, pool, "dial_out_pool", params_pool.licenses, params_pool.destinations,
                            params_pool.premium_numbers, premium):
            return "dial_out_pool", "none", _pool_plan(planner, pool, "dial_out_pool", params_pool.licenses,
                                                       params_pool.pool_basis, params_pool.minutes_per_user)
    return _credits_or_blocked(planner, "no pool or benefit covers this dial-out")


def _sell_to_warning(planner: _Planner) -> None:
    version = planner.policies.get(SELL_TO)
    location = planner.usage_location
    if version is None or location is None:
        return
    assert isinstance(version.params, CountryListParams)
    if location not in version.params.countries:
        planner.warnings.append(f"the organizer's usage location {location} is not an Audio Conferencing market")
        planner.step("sell_to", version, f"usage location {location}",
                     "not where Audio Conferencing is sold; warning only (rating is by destination)")


def _us_ca_unlimited(planner: _Planner, version: PolicyVersion, premium: bool) -> bool:
    # Seed 001: the organizer's add-on, unlimited to US and Canada, "regardless of where the call takes place".
    params = version.params
    assert isinstance(params, UsCaDialOutParams)
    licenses, dest = planner.licenses, planner.dest
    if params.license not in licenses:
        return False
    if dest.country not in params.countries:
        planner.step("us_ca_dial_out", version, f"destination {dest.country}",
                     f"outside {', '.join(params.countries)}; the add-on does not apply")
        return False
    if premium and not params.premium_numbers:
        planner.step("us_ca_dial_out", version, "premium-rate number", "premium numbers are outside the add-on")
        return False
    if not set(params.prerequisite_licenses) & set(licenses):
        planner.step("us_ca_dial_out", version, f"organizer licenses {', '.join(licenses) or 'none'}",
                     f"the add-on needs one of {', '.join(params.prerequisite_licenses)}")
        return False
    planner.step("us_ca_dial_out", version, f"organizer holds {params.license}; destination {dest.country}",
                 "unlimited (fair use): no pool and no credits drawn")
    return True


def _complimentary_applies(planner: _Planner, version: PolicyVersion, premium: bool) -> bool:
    params = version.params
    assert isinstance(params, ComplimentaryDialOutParams)
    # Seed 002: the period continues for tenants in RU, KR and TW; the exception keys on the tenant's country.
    if params.tenant_countries is not None and planner.tenant.country not in params.tenant_countries:
        planner.step("complimentary_dial_out", version, f"tenant country {planner.tenant.country}",
                     f"the period continues only for tenants in {', '.join(params.tenant_countries)}")
        return False
    return _benefit_reaches(planner, version, "complimentary_dial_out", params.licenses, params.destinations,
                            params.premium_numbers, premium)


def _benefit_reaches(planner: _Planner, version: PolicyVersion, rule: str, licenses: Sequence[str],
                     destinations: str, premium_numbers: bool, premium: bool) -> bool:
    """License, destination and number type: the three conditions every dial-out benefit states."""
    held = planner.licenses
    if not set(licenses) & set(held):
        # Seed 002: subscription licenses only, "ne s'applique pas aux licences de paiement à la minute".
        planner.step(rule, version, f"organizer licenses {', '.join(held) or 'none'}",
                     f"needs one of {', '.join(licenses)}; does not apply")
        return False
    zone_version, zone = planner.countries(destinations)
    country = planner.dest.country
    if country not in zone:
        # Seed 002's table: the destination decides ("Zimbabwe ... Oui sur TOUS les appels").
        planner.step(rule, zone_version, f"destination {country} is not in {destinations}", "does not apply")
        return False
    if premium and not premium_numbers:
        planner.step(rule, version, "premium-rate number", "premium numbers never use a pool")
        return False
    planner.step("destination", zone_version, f"destination {country} is in {destinations}",
                 "a destination the benefit covers")
    planner.step(rule, version, f"organizer holds {', '.join(sorted(set(licenses) & set(held)))}",
                 "the benefit applies")
    return True


def _pool_plan(planner: _Planner, version: PolicyVersion, outcome: Outcome, skus: Sequence[str], basis: str,
               minutes_per_user: int, locations: Sequence[str] | None = None, pool_name: str | None = None,
               counter: str = "minutes", other: str | None = None, other_minutes_per_user: int = 0,
               per_user: bool = False) -> PoolPlan:
    """Seed 002: a call draws what the pool has left; minutes past the pool go to Communications Credits."""
    alerts = planner.policies.get(POOL_ALERTS)
    percents: tuple[int, ...] = ()
    if alerts is not None:
        assert isinstance(alerts.params, PoolAlertsParams)
        percents = tuple(sorted(alerts.params.thresholds_percent))
    return PoolPlan(version.id, outcome, pool_name or version.key, counter, tuple(skus), basis, minutes_per_user,
                    None if locations is None else tuple(locations), other, other_minutes_per_user,
                    alerts.id if alerts else None, percents, per_user)


def _credits_or_blocked(planner: _Planner, why: str) -> _Decided:
    credits = planner.credits()
    if credits.version is None:
        raise _Refused(Refusal(policy_key=COMMUNICATIONS_CREDITS))
    planner.step("communications_credits", planner.policies.get(COMMUNICATIONS_CREDITS), credits.fact,
                 _credits_decision(credits.available))
    if credits.available:
        return "communications_credits", "credit", None
    planner.step("blocked", None, why + "; no Communications Credits", "the call could not be made under the rules")
    return "blocked", "uncovered", None


def _credits_decision(available: bool) -> Text:
    if available:
        return lambda call, minutes: f"{minutes} minute(s) billed per minute to Communications Credits"
    return "Communications Credits are not available"


def _pstn_outbound(planner: _Planner) -> _Decided:
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
        return _credits_or_blocked(planner, "no Calling Plan")
    # A user holding two plans calls on the wider one.
    plans.sort(key=lambda v: (v.params.scope != "domestic_and_international", v.key))  # type: ignore[union-attr]
    version = plans[0]
    plan = version.params
    assert isinstance(plan, CallingPlanParams)
    if location is None:
        raise _Refused(Refusal(field="usage_location",
                               expected="the user's license usage location (it picks the pool)"))
    if plan.availability is not None:
        _check_sold(planner, version, plan.availability, location)
    # Seed 004: the country is the license usage location, not the billing address.
    group = plan.pool_group(location)
    allowance = plan.allowance_for(location)
    if allowance is None:
        planner.step("calling_plan", version, f"usage location {location}", "the plan has no minutes there")
        return _credits_or_blocked(planner, "no Calling Plan minutes")
    domestic_to = plan.domestic_to(location)
    domestic = dest.country in domestic_to
    if dest.number_type in plan.special_number_types:
        treatment = _special_number(planner, version, plan, domestic)
        if treatment == "blocked":
            return "blocked", "uncovered", None
        if treatment == "communications_credits":
            return _credits_or_blocked(planner, f"{dest.number_type} number")
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
        return _credits_or_blocked(planner, "international call on a Domestic plan")
    across = f" (domestic across the border: {'/'.join(domestic_to)})" if domestic and dest.country not in group \
        else ""
    # The usage report: MCOPSTN8 is "a 120-minute plan counted per user and not pooled": the user's own minutes.
    pooled = f"pooled with identical plans in {'/'.join(group)}" if plan.pooled else \
        f"counted per user, not pooled ({per_user} minutes of the user's own)"
    planner.step("calling_plan", version, f"user in {location} calls {dest.country}{across}",
                 f"{counter} minutes of {version.key}, {pooled}")
    # "whichever is reached first": once either counter is used up, so is the pool (our reading).
    whichever_first = plan.scope == "domestic_and_international" and bool(other_per_user)
    return "calling_plan", "none", _pool_plan(planner, version, "calling_plan", [plan.license], plan.pool_basis,
                                              per_user, group, pool_name, counter,
                                              other if whichever_first else None, other_per_user,
                                              per_user=not plan.pooled)


def _check_sold(planner: _Planner, version: PolicyVersion, key: str, location: str) -> None:
    """The availability pages: a Calling Plan license where (or before) Microsoft sells no plan carries no
    call; the row is refused, naming the country, the plan and the earliest date known, never given a pool."""
    availability = planner.require(key)
    params = availability.params
    assert isinstance(params, CallingPlanAvailabilityParams)
    since = params.since(location)
    if since is None or since > availability.valid_from.date():
        planner.step("calling_plan_availability", availability, f"usage location {location}",
                     "no Calling Plan sold there at this date")
        raise _Refused(Refusal(plan=version.key, country=location,
                               sold_from=since.isoformat() if since else None, sold_in=params.countries()))
    planner.step("calling_plan_availability", availability, f"usage location {location}",
                 f"Calling Plans sold there since {since.isoformat()}")


def _special_number(planner: _Planner, version: PolicyVersion, plan: CallingPlanParams, domestic: bool) -> str:
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


def _inbound(planner: _Planner) -> _Decided:
    version = planner.require(DIAL_IN)
    params = version.params
    assert isinstance(params, DialInParams)
    number_type = planner.dest.number_type
    if number_type in params.credit_number_types:
        planner.step("dial_in", version, f"call into a {number_type} number", "billed per minute to credits")
        return _credits_or_blocked(planner, f"{number_type} number")
    planner.step("dial_in", version, f"call into a {number_type} number", "no charge to the tenant")
    return "free", "none", None


def rate_call(
    call: Call,
    policies: PolicySet,
    tenant: TenantSnapshot,
    used: PoolReader | PoolLedger,
    *,
    as_of: pendulum.DateTime | None = None,
    known_at: pendulum.DateTime | None = None,
    destination: Destination | None = None,
    plan: RatingPlan | None = None,
) -> Rating:
    """Rate one call. `policies` must be the set resolved for `as_of` (default: the call's start) and
    `known_at`; those two only label the result. Pools are read through `used` (a PoolLedger, or a function
    of a PoolKey), never written. `plan`, when given, must be `plan_call`'s answer for this call (a cache of
    plans passes it). The outcome and minutes come from the pool ledger, as for every other way of rating."""
    if plan is None:
        dest = destination or classify_destination(call.destination)
        plan = plan_call(policies, tenant.tenant, call.call_type, dest, call.licenses, call.usage_location,
                         call.carrier)
    at = call.start if as_of is None else as_of
    ledger = used if isinstance(used, PoolLedger) else _ReadingLedger(used)
    settled = ledger.settle(plan, call.tenant_id, month_of(call.start), call.duration_seconds, tenant,
                            user=call.user_id)
    if isinstance(settled, Refusal):
        raise settled.error(at, known_at)
    minutes = settled.billable_minutes
    trace = [step.render(call, minutes) for step in plan.steps]
    if settled.use is not None:
        assert plan.pool is not None
        _draw_trace(plan, plan.pool, call, settled, trace)
    return Rating(
        call_id=call.call_id,
        outcome=settled.outcome,
        billable_minutes=minutes,
        pool_minutes=settled.pool_minutes,
        credit_minutes=settled.credit_minutes,
        uncovered_minutes=settled.uncovered_minutes,
        destination_country=plan.destination.country,
        number_type=plan.destination.number_type,
        pool=settled.use,
        policy_versions=settled.versions,
        alerts=settled.alerts,
        warnings=settled.warnings,
        trace=tuple(trace),
        as_of=at,
        known_at=known_at,
        tenant_id=call.tenant_id,
        start=call.start,
        call_type=call.call_type,
        usage_id=call.usage_id,
    )


class _ReadingLedger(PoolLedger):
    """A ledger that reads pool use through a caller's function (rate_call's `used`), without state."""

    def __init__(self, used: PoolReader) -> None:
        super().__init__()
        self._reader = used

    def used(self, key: PoolKey) -> int:
        return self._reader(key)

    def settle(self, plan: RatingPlan, tenant_id: str, month: str, duration_seconds: int,
               tenant: TenantSnapshot, user: str = "") -> Settled | Refusal:
        if plan.pool is not None:
            pool = plan.pool.ledger_pool(user)
            keys = [PoolKey(tenant_id, pool, month, plan.pool.counter)]
            if plan.pool.exhausted_after:
                keys.append(PoolKey(tenant_id, pool, month, plan.pool.exhausted_after))
            self._used = {key: self._reader(key) for key in keys}
        return super().settle(plan, tenant_id, month, duration_seconds, tenant, user)


def _draw_trace(plan: RatingPlan, pool: PoolPlan, call: Call, settled: Settled, trace: list[TraceStep]) -> None:
    """The trace of a call's draw on its pool, as the ledger settled it."""
    use = settled.use
    assert use is not None
    month, capacity, before, after = use.key.month, use.capacity, use.used_before, use.used_after
    where = f" in {'/'.join(pool.locations)}" if pool.locations else ""
    skus = "/".join(pool.skus)
    if pool.per_user:
        trace.append(TraceStep("pool_basis", pool.version, f"{call.user_id}'s own {skus} license: "
                               f"{pool.minutes_per_user} min, not pooled",
                               f"pool {use.key.pool} holds {capacity} minutes in {month}"))
    else:
        trace.append(TraceStep("pool_basis", pool.version, f"{use.licensed_users} {pool.basis} {skus} "
                               f"license(s){where} x {pool.minutes_per_user} min",
                               f"pool {pool.pool} holds {capacity} minutes in {month}"))
    if settled.exhausted:
        trace.append(TraceStep("pool_draw", pool.version, f"the {pool.exhausted_after} minutes "
                               f"({settled.other_capacity}) were reached first this month",
                               "the pool is used up for this call"))
    else:
        trace.append(TraceStep("pool_draw", pool.version, f"{before} of {capacity} minutes used before this call",
                               f"{after - before} minute(s) from the pool, {after} used after"))
    for percent in use.alerted:
        trace.append(TraceStep("pool_alerts", pool.alerts_version, f"use went from {before} to {after} of "
                               f"{capacity}", f"{percent} % alert"))
    if settled.consulted:
        credits = plan.credits
        pool_minutes, minutes = settled.pool_minutes, settled.billable_minutes
        paid = settled.credit_minutes + settled.uncovered_minutes if pool_minutes == 0 else minutes - pool_minutes
        decision = _credits_decision(credits.available)
        trace.append(TraceStep("communications_credits", credits.version, credits.fact,
                               decision if isinstance(decision, str) else decision(call, paid)))
        if pool_minutes == 0 and not credits.available:
            trace.append(TraceStep("blocked", None, f"pool {pool.pool} has no minutes left; no Communications "
                                   "Credits", "the call could not be made under the rules"))


class PlanCache:
    """`plan_call` with a memory: calls of one kind share a plan (a large re-rating meets a few hundred kinds).

    Keyed by what a plan reads: the policy set, the tenant's country and credits set-up, the call type, the
    destination's country and number type, the licenses and the usage location.
    """

    def __init__(self) -> None:
        self._plans: dict[tuple[object, ...], RatingPlan] = {}

    def plan(self, policies: PolicySet, tenant: TenantFact, call_type: str, destination: Destination,
             licenses: tuple[str, ...], usage_location: str | None, carrier: str | None = None) -> RatingPlan:
        key = (policies, tenant.country, tenant.communications_credits, call_type, destination.country,
               destination.number_type, licenses, usage_location, carrier)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = plan_call(policies, tenant, call_type, destination, licenses, usage_location,
                                                carrier)
        return plan
