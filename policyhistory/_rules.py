"""The rule evaluator: call + policy set + tenant facts + pool use -> Rating with a trace. Pure: it reads no
clock, no file and no database, and the same inputs give the same Rating on any machine.

It works in two steps, so that a bulk re-rating decides once per kind of call and does only the pool
arithmetic per call:
- `plan_call` decides everything a pool's use does not: which benefit reaches the call, which pool it draws
  on, whether Communications Credits can pay, the warnings. It sees only what every call of its kind shares
  (policy set, the tenant's country and credits set-up, call type, destination, licenses, usage location).
  The plan is written by a Planner (_planner) with the planner of the call's kind: a conference dial-out's
  in _dial_out, a PSTN outbound call's in _calling_plans, a call in (here).
- `RatingPlan.settle` (the plans as data live in _plans) draws one call's minutes on the plan's pool and
  splits them into pool, credit and uncovered minutes; the pool ledger (_ledger) calls it.
`rate_call` is both together, with the trace; bulk re-rating calls `RatingPlan.settle` itself, without one.
`PlanCache` is `plan_call` with a memory.

Each rule cites its source beside the check that enforces it; the numbers come from the policy versions.
"""

from __future__ import annotations

import pendulum

from ._calling_plans import pstn_outbound
from ._calls import Call, Destination, classify_destination
from ._dial_out import conference_dial_out
from ._exempt import exempt_plan
from ._instant import month_of
from ._ledger import PoolLedger, Settled
from ._planner import Decided, Planner, Refused, credits_decision, credits_or_blocked
from ._plans import DIAL_IN, FREE_CALL, MINUTE_ROUNDING, RATING_BASIS, CreditsCheck, PoolReader
from ._plans import PoolPlan as PoolPlan
from ._plans import RatingPlan as RatingPlan
from ._plans import Refusal as Refusal
from ._plans import pool_capacity as pool_capacity
from ._policy import DialInParams, MinuteRoundingParams, NumberTypeWarningParams
from ._rating import PoolKey, Rating, TraceStep
from ._tenants import TenantFact, TenantSnapshot
from ._timeline import PolicySet


def plan_call(policies: PolicySet, tenant: TenantFact, call_type: str, destination: Destination,
              licenses: tuple[str, ...], usage_location: str | None, carrier: str | None = None) -> RatingPlan:
    """Decide what the rules say of every call with these inputs, up to the use of its pool. An emergency call
    or one carried by another operator (`carrier`) is decided by _exempt.exempt_plan."""
    exempt = exempt_plan(policies, call_type, destination, carrier, usage_location)
    if exempt is not None:
        return exempt
    planner = Planner(policies, tenant, call_type, destination, licenses, usage_location)
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
            "conference_dial_out": conference_dial_out,
            "pstn_outbound": pstn_outbound,
            "conference_dial_in": _inbound,
            "pstn_inbound": _inbound,
        }[call_type]
        outcome, bucket, pool = rate(planner)
        credits = planner.credits()
    except Refused as refused:
        return RatingPlan(destination, None, "blocked", "uncovered", None, CreditsCheck(None, False, ""), (), (), (),
                          refused.refusal)
    return RatingPlan(destination, params, outcome, bucket, pool, credits, tuple(planner.steps),
                      tuple(planner.versions), tuple(planner.warnings))


def _duration_text(call: Call, minutes: int) -> str:
    return f"duration {call.duration_seconds} s"


def _number_type_warnings(planner: Planner) -> None:
    # Seed 003: "Dialing out to toll-free or free phone numbers may not be possible".
    dest = planner.dest
    for version in planner.policies.of_kind("number_type_warning"):
        params = version.params
        assert isinstance(params, NumberTypeWarningParams)
        if dest.number_type in params.number_types and planner.call_type in params.call_types:
            planner.warnings.append(params.warning)
            planner.step("number_type_warning", version, f"{dest.number_type} number on {planner.call_type}",
                         "warning only; the rating is unchanged")


def _inbound(planner: Planner) -> Decided:
    version = planner.require(DIAL_IN)
    params = version.params
    assert isinstance(params, DialInParams)
    number_type = planner.dest.number_type
    if number_type in params.credit_number_types:
        planner.step("dial_in", version, f"call into a {number_type} number", "billed per minute to credits")
        return credits_or_blocked(planner, f"{number_type} number")
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
        decision = credits_decision(credits.available)
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
