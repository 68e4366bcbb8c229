"""The pool ledger: the one place where a planned call's minutes are settled against its tenant's pools.

`plan_call` (in _rules) decides everything a pool's use does not; `PoolLedger.settle` takes a plan and one
call's duration and says its outcome and minutes (pool, credits, uncovered), its pool use before and after,
the alerts it raises, and the versions and warnings that follow from its draw. `PoolLedger.apply` then
charges the pool. `store.rate`, `Rater`, `explain` and `rerate` (every shard, every worker, Dask) all go through
these two methods: nothing else computes an outcome or minutes.

Pure: no clock, no file, no database. A ledger holds pools of any number of tenants; a re-rating shard holds
one ledger for its tenants.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs

from ._errors import DuplicateCallError
from ._plans import COMMUNICATIONS_CREDITS, PoolPlan, RatingPlan, Refusal, user_key
from ._rating import Outcome, PoolKey, PoolUse, Rating

if TYPE_CHECKING:
    from ._tenants import TenantSnapshot


def alert_text(percent: int, pool: str, month: str, used_after: int, capacity: int) -> str:
    """The notice administrators get when a call takes a pool past one of its alert thresholds."""
    return f"{percent}% of pool {pool} for {month} ({used_after}/{capacity} minutes)"


@attrs.frozen
class Settled:
    """One call settled against its plan and its tenant's pools (not yet charged: see PoolLedger.apply)."""

    outcome: Outcome
    billable_minutes: int
    pool_minutes: int
    credit_minutes: int
    uncovered_minutes: int
    use: PoolUse | None
    alerts: tuple[str, ...]
    versions: tuple[str, ...]
    warnings: tuple[str, ...]
    consulted: bool = False
    """Communications Credits were asked (the pool did not pay for every minute)."""
    exhausted: bool = False
    """Calling Plans: the other counter was used up first, so this pool is too."""
    other_capacity: int = 0


@attrs.define
class PoolMonth:
    """One pool of one tenant in one month, as a run saw it: the capacity that applied, minutes used, alerts."""

    capacity: int = 0
    used: int = 0
    alerts: list[str] = attrs.Factory(list)
    capacities: list[int] = attrs.Factory(list)
    """Every capacity the month's calls met, in start order (licenses can change mid-month)."""

    def __reduce__(self) -> tuple[object, ...]:
        # Pickled as its values, every field in order: a shard sends back one per pool-month (attrs' pickling of
        # slotted classes is slow).
        return PoolMonth, _pool_month_values(self)

    def text(self) -> str:
        """'used / capacity': the capacity the month's last draw met; the others when it changed."""
        changed = f" (capacity {' -> '.join(map(str, self.capacities))} in the month)" \
            if len(self.capacities) > 1 else ""
        return f"{self.used} / {self.capacity}{changed}"


_pool_month_values = operator.attrgetter(*(field.name for field in attrs.fields(PoolMonth)))
_Capacity = tuple[int, int, int]


class PoolLedger:
    """Minutes used per pool, tenant and month, the alerts each pool-month has raised, and the calls charged.

    A call id can be charged once per tenant: offering the same call twice would charge its pool twice, and
    is refused (DuplicateCallError). Each alert threshold fires once per pool-month, when a call's draw takes
    the pool's use past it (a mid-month license change moves the capacity, not the alerts already sent).
    """

    def __init__(self, used: Mapping[PoolKey, int] | None = None) -> None:
        """`used`: minutes already used before the first call rated here (for a month begun elsewhere)."""
        self._used: dict[PoolKey, int] = dict(used or {})
        self._alerted: set[tuple[PoolKey, int]] = set()
        self._applied: set[tuple[str, str]] = set()
        self._capacities: dict[tuple[object, ...], tuple[TenantSnapshot, _Capacity]] = {}
        self.months: dict[PoolKey, PoolMonth] = {}
        """Every pool-month a call was charged to, with the capacity that applied and its alerts."""

    def used(self, key: PoolKey) -> int:
        return self._used.get(key, 0)

    __call__ = used  # a ledger is also a PoolReader

    def capacity(self, pool: PoolPlan, tenant: TenantSnapshot) -> _Capacity:
        """(licensed users, capacity, the other counter's capacity) of a pool in a tenant snapshot, remembered
        for every plan whose pool counts the same licenses (the snapshot by identity, kept alive here)."""
        key = (id(tenant), pool.skus, pool.basis, pool.locations, pool.minutes_per_user, pool.exhausted_after,
               pool.other_minutes_per_user)
        found = self._capacities.get(key)
        if found is None or found[0] is not tenant:
            found = self._capacities[key] = (tenant, pool.capacity(tenant))
        return found[1]

    def settle(self, plan: RatingPlan, tenant_id: str, month: str, duration_seconds: int,
               tenant: TenantSnapshot, user: str = "") -> Settled | Refusal:
        """The call's outcome and minutes under `plan`, its pool (of `month`, YYYY-MM) read from this ledger;
        a Refusal when no call of the plan's kind can be rated, when Communications Credits would have to
        pay and no policy of theirs is in force, or when a plan counted per user (MCOPSTN8) meets a call
        naming no user. `user`: the calling user's id, which keys a per-user plan's pool. Charges nothing."""
        if plan.refusal is not None:
            return plan.refusal
        minutes = plan.minutes(duration_seconds)
        pool = plan.pool
        if pool is None:
            pool_minutes, credit_minutes, uncovered = plan.unpooled_minutes(minutes)
            return Settled(plan.outcome, minutes, pool_minutes, credit_minutes, uncovered, None, (), plan.versions,
                           plan.warnings)
        if pool.per_user and not user_key(user):
            return Refusal(field="user_id", value=user, expected=(
                f"the calling user's id (our layout's organizer_id or user_id column, the Teams export's UPN): "
                f"{pool.pool.partition(':')[0]} minutes are counted per user and not pooled "
                f"({pool.version})"))
        key = PoolKey(tenant_id, pool.ledger_pool(user), month, pool.counter)
        users, capacity, other_capacity = self.capacity(pool, tenant)
        before = self._used.get(key, 0)
        exhausted = bool(pool.exhausted_after and other_capacity and self._used.get(
            PoolKey(tenant_id, key.pool, month, pool.exhausted_after), 0) >= other_capacity)
        settled = plan.settle(minutes, capacity, before, exhausted)
        if settled is None:
            return Refusal(policy_key=COMMUNICATIONS_CREDITS)
        outcome, pool_minutes, credit_minutes, uncovered, after, percents, consulted = settled
        if percents:
            percents = tuple(percent for percent in percents if (key, percent) not in self._alerted)
        alerts = tuple(alert_text(percent, key.pool, month, after, capacity) for percent in percents)
        use = PoolUse(key, capacity, before, after, pool.basis, users, pool.minutes_per_user, percents)
        if alerts or consulted or (pool_minutes and uncovered):
            versions, warnings = plan.after_draw(bool(alerts), consulted, pool_minutes, uncovered)
            return Settled(outcome, minutes, pool_minutes, credit_minutes, uncovered, use, alerts, tuple(versions),
                           tuple(warnings), consulted, exhausted, other_capacity)
        return Settled(outcome, minutes, pool_minutes, credit_minutes, uncovered, use, alerts, plan.versions,
                       plan.warnings, consulted, exhausted, other_capacity)

    def apply(self, tenant_id: str, rating: Rating | Settled, call_id: str | None = None) -> None:
        """Charge a settled call (or a Rating) to its pool; refuse a call already charged for the tenant.
        `call_id`: the call's identity (Call.key: its UsageId where the layout has one), else the Rating's id."""
        marker = (tenant_id, str(call_id) if call_id is not None else
                  rating.call_id if isinstance(rating, Rating) else "None")
        if marker in self._applied:
            raise DuplicateCallError(marker[1])
        self._applied.add(marker)
        use = rating.pool if isinstance(rating, Rating) else rating.use
        if use is None:
            return
        key = use.key
        month = self.months.get(key)
        if month is None:
            month = self.months[key] = PoolMonth()
        if not month.capacities or month.capacities[-1] != use.capacity:
            month.capacities.append(use.capacity)
        if rating.pool_minutes or not month.used:
            # The capacity that applies: the one the month's last paying draw met (use never exceeds it).
            month.capacity = use.capacity
        if rating.pool_minutes:
            self._used[key] = use.used_after
            month.used = use.used_after
        for percent, text in zip(use.alerted, rating.alerts, strict=True):
            self._alerted.add((key, percent))
            month.alerts.append(text)


PoolState = PoolLedger
"""The name the public API has always used for the pool state carried from call to call."""
