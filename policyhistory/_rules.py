"""The rule evaluator: call + policy set + tenant facts + pool use -> Rating with a trace. Pure: it reads no
clock, no file and no database, and the same inputs give the same Rating on any machine.

It works in two steps, so that a bulk re-rating decides once per kind of call and does only the pool
arithmetic per call:
- `plan_call` decides everything a pool's use does not: which benefit reaches the call, which pool it draws
  on, whether Communications Credits can pay, the warnings. It sees only what every call of its kind shares
  (policy set, the tenant's country and credits set-up, call type, destination, licenses, usage location).
- `settle` draws one call's minutes on the plan's pool and splits them into pool, credit and uncovered minutes.
`rate_call` is both together, with the trace; bulk re-rating calls `RatingPlan.settle` itself, without one.

Each rule cites its source beside the check that enforces it; the numbers come from the policy versions.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from typing import Literal

import attrs
import pendulum

from ._calls import Call, Destination, classify_destination
from ._errors import (
    CallingPlanNotSoldError,
    InvalidFieldError,
    NoPolicyInForceError,
    NothingKnownYetError,
    PolicyHistoryError,
)
from ._exempt import exempt_plan
from ._instant import format_instant, month_of
from ._ledger import PoolLedger, Settled, user_key
from ._ledger import alert_text as alert_text
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
FREE_CALL = "free_call"

PoolReader = Callable[[PoolKey], int]
Text = str | Callable[[Call, int], str]
"""A trace text, or one that needs the call and its billable minutes (a plan serves many calls)."""
Bucket = Literal["none", "credit", "uncovered"]
Settlement = tuple[Outcome, int, int, int, int, tuple[int, ...], bool]
"""(outcome, pool minutes, credit minutes, uncovered minutes, pool used after, alert percents, credits consulted)."""


def billable_minutes(duration_seconds: int, rounding: MinuteRoundingParams) -> int:
    """A call's duration in whole billable units (our reading: each call rounded up; see the version)."""
    unit = rounding.unit_seconds
    if rounding.mode == "up":
        return -(-duration_seconds // unit)
    if rounding.mode == "down":
        return duration_seconds // unit
    return math.floor(duration_seconds / unit + 0.5)


@attrs.frozen
class Refusal:
    """Why no call of a plan's kind can be rated: a policy not in force, or a field the rules need."""

    policy_key: str | None = None
    field: str | None = None
    expected: str = ""
    first_recorded: str | None = None
    """When `policy_key` was first recorded, if ever: a knowledge date before it knew nothing of the key."""
    plan: str | None = None
    country: str | None = None
    sold_from: str | None = None
    sold_in: tuple[str, ...] = ()
    value: str | None = None
    """A Calling Plan license in a country where the plan was not sold: plan key, usage location, the date
    its plans were first sold there (None: never, as known) and where they were sold."""

    def error(self, as_of: dt.datetime, known_at: dt.datetime | None) -> PolicyHistoryError:
        return self.error_at(format_instant(as_of), format_instant(known_at) if known_at else "the given policy set")

    def error_at(self, as_of: str, known_at: str) -> PolicyHistoryError:
        """The error, with both instants given as text already."""
        if self.plan is not None and self.country is not None:
            return CallingPlanNotSoldError(self.plan, self.country, as_of, known_at, self.sold_from, self.sold_in)
        if self.policy_key is not None:
            if self.first_recorded is not None and _before(known_at, self.first_recorded):
                return NothingKnownYetError(self.policy_key, as_of, known_at, self.first_recorded)
            return NoPolicyInForceError(self.policy_key, as_of, known_at)
        return InvalidFieldError(self.field or "call", self.value, self.expected)


def _before(known_at: str, first_recorded: str) -> bool:
    """Whether the knowledge instant (text from format_instant, or a phrase) is before the first record."""
    try:
        return dt.datetime.fromisoformat(known_at) < dt.datetime.fromisoformat(first_recorded)
    except ValueError:
        return False


class _Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal


@attrs.frozen
class PlannedStep:
    """A trace step decided by a plan; texts that name the call's own numbers are filled per call."""

    rule: str
    policy_version: str | None
    fact: Text
    decision: Text

    def render(self, call: Call, minutes: int) -> TraceStep:
        fact = self.fact if isinstance(self.fact, str) else self.fact(call, minutes)
        decision = self.decision if isinstance(self.decision, str) else self.decision(call, minutes)
        return TraceStep(self.rule, self.policy_version, fact, decision)


@attrs.frozen
class CreditsCheck:
    """Whether Communications Credits can pay for a call's minutes; `version` None: no policy in force."""

    version: str | None
    available: bool
    fact: str


@attrs.frozen
class PoolPlan:
    """The pool a plan draws on: whose minutes count (the pool basis rule) and what the pool is called."""

    version: str
    outcome: Outcome
    pool: str
    counter: str
    skus: tuple[str, ...]
    basis: str
    minutes_per_user: int
    locations: tuple[str, ...] | None
    exhausted_after: str | None
    """Calling Plans: the other counter; once it is used up, so is this pool ("whichever is reached first")."""
    other_minutes_per_user: int
    alerts_version: str | None
    alert_percents: tuple[int, ...]
    per_user: bool = False
    """The minutes are the calling user's own, not pooled (MCOPSTN8): the ledger keeps one pool per user, of
    `minutes_per_user`, whatever the tenant's license counts."""

    def ledger_pool(self, user_id: str) -> str:
        """The pool's name in the ledger: a per-user plan's pool is the user's own (see user_key)."""
        return f"{self.pool}:{user_key(user_id)}" if self.per_user else self.pool

    def capacity(self, tenant: TenantSnapshot) -> tuple[int, int, int]:
        """(licensed users, pool capacity, capacity of the other counter or 0) in the tenant's snapshot."""
        if self.per_user:
            return 1, self.minutes_per_user, 0
        users, capacity = pool_capacity(tenant, self.skus, self.basis, self.minutes_per_user, self.locations)
        other = pool_capacity(tenant, self.skus, self.basis, self.other_minutes_per_user, self.locations)[1] \
            if self.exhausted_after else 0
        return users, capacity, other


@attrs.frozen
class RatingPlan:
    """What the rules decide for every call of one kind before its pool is consulted."""

    destination: Destination
    rounding: MinuteRoundingParams | None
    outcome: Outcome
    """Without a pool, the call's outcome; with one, the outcome when the pool pays for some minutes."""
    bucket: Bucket
    """Without a pool, where the minutes go: nowhere (free or covered), to credits, or uncovered (blocked)."""
    pool: PoolPlan | None
    credits: CreditsCheck
    steps: tuple[PlannedStep, ...]
    versions: tuple[str, ...]
    warnings: tuple[str, ...]
    refusal: Refusal | None = None

    def after_draw(self, alerted: bool, consulted: bool, pool_minutes: int,
                   uncovered: int) -> tuple[list[str], list[str]]:
        """(policy versions, warnings) of a call once drawn: the plan's, then the pool alerts' version if an
        alert was raised, the Communications Credits' if they were consulted, and the warning of a call cut
        short when it ran past its pool with nothing to pay for the rest."""
        versions = list(self.versions)
        alerts_version = self.pool.alerts_version if self.pool else None
        for used, version in ((alerted, alerts_version), (consulted, self.credits.version)):
            if used and version is not None and version not in versions:
                versions.append(version)
        warnings = list(self.warnings)
        if pool_minutes and uncovered:
            warnings.append(cut_warning(uncovered, pool_minutes))
        return versions, warnings

    def minutes(self, duration_seconds: int) -> int:
        assert self.rounding is not None
        return billable_minutes(duration_seconds, self.rounding)

    def unpooled_minutes(self, minutes: int) -> tuple[int, int, int]:
        """(pool, credit, uncovered) minutes of a call the plan gives no pool: where its bucket sends them."""
        bucket = self.bucket
        return (0, 0, 0) if bucket == "none" else (0, minutes, 0) if bucket == "credit" else (0, 0, minutes)

    def settle(self, minutes: int, capacity: int, before: int, exhausted: bool) -> Settlement | None:
        """Draw `minutes` on the plan's pool (capacity and use before the call given); None when credits
        would have to pay and no Communications Credits policy is in force (a refusal)."""
        pool = self.pool
        assert pool is not None
        if minutes == 0:
            # A call of 0 seconds has 0 minutes: nothing to draw, the outcome its kind decides (issue 14).
            return pool.outcome, 0, 0, 0, before, (), False
        taken = 0 if exhausted else max(0, min(minutes, capacity - before))
        credits = self.credits
        if taken == 0:
            # Seed 002: minutes past the pool go to Communications Credits; without them, the call is blocked.
            if credits.version is None:
                return None
            if credits.available:
                return "communications_credits", 0, minutes, 0, before, (), True
            return "blocked", 0, 0, minutes, before, (), True
        after = before + taken
        alerts: tuple[int, ...] = ()
        percents = pool.alert_percents
        if capacity > 0 and percents and capacity * percents[0] <= after * 100:
            # Seed 002: administrators are notified at 80 % and 100 % of pool use (percents ascending).
            alerts = tuple(p for p in percents if before * 100 < capacity * p <= after * 100)
        rest = minutes - taken
        if rest == 0:
            return pool.outcome, taken, 0, 0, after, alerts, False
        if credits.version is None:
            return None
        if credits.available:
            return pool.outcome, taken, rest, 0, after, alerts, True
        return pool.outcome, taken, 0, rest, after, alerts, True


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


def pool_capacity(tenant: TenantSnapshot, skus: Sequence[str], basis: str, minutes_per_user: int,
                  locations: Sequence[str] | None = None) -> tuple[int, int]:
    """The pool basis rule: users counted on `basis` (assigned or purchased licenses) x minutes per user."""
    users = tenant.licensed(skus, basis, locations)
    return users, users * minutes_per_user


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


def cut_warning(uncovered: int, pool_minutes: int) -> str:
    """The warning of a call that ran past its pool with nothing to pay for the rest."""
    return (f"{uncovered} minute(s) past the pool with no Communications Credits: the call would have been cut "
            f"after {pool_minutes} minute(s)")


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
