"""Rating calls one after another against a store's timeline and tenant facts, pools carried from call to
call: the Rater that `Store.rater()` gives, `store.rate`, explain and the service's batch route use (a
re-rating's shards carry their own loop around the same plan cache and pool ledger)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pendulum

from ._calls import Call, call_from_mapping, classify_destination
from ._errors import PolicyHistoryError
from ._instant import format_instant, month_of
from ._ledger import PoolState, Settled
from ._rated import settled_rating_record
from ._rating import Rating
from ._records import rating_record
from ._rules import PlanCache, RatingPlan, Refusal, rate_call
from ._tenants import TenantIndex, TenantSnapshot
from ._timeline import PolicySet, Timeline, micros


class BoundedPlanCache(PlanCache):
    """A PlanCache that starts afresh past `limit` plans: a long-running service meets whatever licenses and
    numbers its clients send, and its memory stays bounded (a re-rating's few hundred kinds never reach it)."""

    limit = 20_000

    def plan(self, *args: Any, **kwargs: Any) -> Any:
        plans = getattr(self, "_plans", None)
        if plans is not None and len(plans) >= self.limit:
            plans.clear()
        return super().plan(*args, **kwargs)


class Rater:
    """Rates calls one after another, carrying pool state between them; `rate_all` takes them in start order.

    The policy set for each call is resolved at `as_of` (default: the call's own start) as known at
    `known_at`; tenant facts and pool months are always those of the call's start.
    """

    def __init__(self, timeline: Timeline, tenants: TenantIndex, *, known_at: pendulum.DateTime,
                 as_of: pendulum.DateTime | None = None, pool_state: PoolState | None = None,
                 plans: PlanCache | None = None) -> None:
        self.timeline = timeline
        self.tenants = tenants
        self.known_at = known_at
        self.as_of = as_of
        self.pool_state = PoolState() if pool_state is None else pool_state
        self._known_at_us = micros(known_at)
        self._as_of_us = None if as_of is None else micros(as_of)
        self._policies_at = timeline.as_known_at(self._known_at_us)
        self.plans = PlanCache() if plans is None else plans

    def _plan(self, call: Call) -> tuple[pendulum.DateTime, PolicySet, TenantSnapshot, RatingPlan]:
        """What rating `call` starts from: the instant its rules are taken at, its policy set, its tenant's
        facts at its start and the plan of its kind (PlanCache)."""
        at = call.start if self.as_of is None else self.as_of  # not `or`: the epoch is a valid as_of
        start_us = micros(call.start)
        policies = self._policies_at(start_us if self._as_of_us is None else self._as_of_us)
        tenant = self.tenants.snapshot_us(call.tenant_id, start_us)
        plan = self.plans.plan(policies, tenant.tenant, call.call_type, classify_destination(call.destination),
                               call.licenses, call.usage_location, call.carrier)
        return at, policies, tenant, plan

    def rate(self, call: Call | dict[str, Any]) -> Rating:
        if not isinstance(call, Call):
            call = call_from_mapping(call)
        at, policies, tenant, plan = self._plan(call)
        rating = rate_call(call, policies, tenant, self.pool_state, as_of=at, known_at=self.known_at, plan=plan)
        self.pool_state.apply(call.tenant_id, rating, call.key)
        return rating

    def settle(self, call: Call) -> tuple[RatingPlan, Settled]:
        """`rate` without its trace: the call's plan, settled by the pool ledger and charged, as `rate_call`
        settles it (the same plan, the same `PoolLedger.settle`, the same refusal), as re-rating does."""
        at, _, tenant, plan = self._plan(call)
        settled = self.pool_state.settle(plan, call.tenant_id, month_of(call.start), call.duration_seconds, tenant,
                                         user=call.user_id)
        if isinstance(settled, Refusal):
            raise settled.error(at, self.known_at)
        self.pool_state.apply(call.tenant_id, settled, call.key)
        return plan, settled

    def _start_order(self, calls: Sequence[Call | dict[str, Any]]) -> tuple[list[Call], list[int]]:
        built = [call if isinstance(call, Call) else call_from_mapping(call) for call in calls]
        return built, sorted(range(len(built)), key=lambda i: (built[i].start, built[i].key))

    def rate_all(self, calls: Sequence[Call | dict[str, Any]]) -> list[Rating]:
        """Rate calls (Calls, or dicts as `rate` takes them) in start order (ties by call key: the UsageId
        where the layout has one, else the call id), whatever their order here; ratings come back in the
        order the calls were given."""
        built, order = self._start_order(calls)
        ratings: list[Rating | None] = [None] * len(built)
        for index in order:
            try:
                ratings[index] = self.rate(built[index])
            except PolicyHistoryError as error:
                raise _in_batch(error, index, built[index]) from None
        return [rating for rating in ratings if rating is not None]

    def records(self, calls: Sequence[Call | dict[str, Any]], *, trace: bool = True) -> list[dict[str, Any]]:
        """`rating_record` of each rating `rate_all` gives, in the order given. Without `trace`, the records
        without their trace (`rating_record(..., trace=False)`), built from what the ledger settled: no
        trace is rendered, and no Rating built (see _rated)."""
        if trace:
            return [rating_record(rating) for rating in self.rate_all(calls)]
        built, order = self._start_order(calls)
        known_at = format_instant(self.known_at)
        as_of = None if self.as_of is None else format_instant(self.as_of)
        records: list[dict[str, Any] | None] = [None] * len(built)
        for index in order:
            call = built[index]
            try:
                plan, settled = self.settle(call)
            except PolicyHistoryError as error:
                raise _in_batch(error, index, call) from None
            records[index] = settled_rating_record(call, plan.destination, settled, as_of, known_at)
        return [record for record in records if record is not None]


def _in_batch(error: PolicyHistoryError, index: int, call: Call) -> PolicyHistoryError:
    """A refusal of one call of a batch says which call it was (PolicyHistoryError.batch_index and
    batch_call_id): its error alone would name a field, not the call among thousands."""
    error.batch_index, error.batch_call_id = index, call.call_id
    return error
