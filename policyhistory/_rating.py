"""What rating a call produces: the Rating with its trace, and the pool state carried between calls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import attrs
import pendulum

from ._errors import DuplicateCallError

Outcome = Literal[
    "complimentary", "dial_out_pool", "us_ca_unlimited", "calling_plan", "communications_credits", "free", "blocked",
    "not_microsoft_billed", "emergency",
]
OUTCOMES: tuple[Outcome, ...] = (
    "complimentary", "dial_out_pool", "us_ca_unlimited", "calling_plan", "communications_credits", "free", "blocked",
    "not_microsoft_billed", "emergency",
)


@attrs.frozen
class TraceStep:
    """One decision: the rule that made it, the policy version it applied, the fact that decided it."""

    rule: str
    policy_version: str | None
    fact: str
    decision: str


@attrs.frozen
class PoolKey:
    """One pool of one tenant in one UTC calendar month; `counter` separates domestic and international use."""

    tenant_id: str
    pool: str
    month: str
    counter: str = "minutes"


@attrs.frozen
class PoolUse:
    """The pool a call drew on: its capacity at the call's start, and its use before and after the call."""

    key: PoolKey
    capacity: int
    used_before: int
    used_after: int
    basis: str
    licensed_users: int
    minutes_per_user: int


@attrs.frozen
class Rating:
    """How one call is billed under one policy set: outcome, minutes per bucket, and why (the trace)."""

    call_id: str
    outcome: Outcome
    billable_minutes: int
    pool_minutes: int
    credit_minutes: int
    uncovered_minutes: int
    destination_country: str
    number_type: str
    pool: PoolUse | None
    policy_versions: tuple[str, ...]
    alerts: tuple[str, ...]
    warnings: tuple[str, ...]
    trace: tuple[TraceStep, ...]
    as_of: pendulum.DateTime | None = None
    known_at: pendulum.DateTime | None = None


class PoolState:
    """Minutes used per pool, tenant and month, carried from call to call by the shell.

    The evaluator only reads it; `apply` records a rating's draw. A call id can draw once: offering the
    same call twice would charge its pool twice, and is refused.
    """

    def __init__(self, used: Mapping[PoolKey, int] | None = None) -> None:
        """`used`: minutes already used before the first call rated here (for a month begun elsewhere)."""
        self._used: dict[PoolKey, int] = dict(used or {})
        self._applied: set[tuple[str, str]] = set()

    def used(self, key: PoolKey) -> int:
        return self._used.get(key, 0)

    def apply(self, tenant_id: str, rating: Rating, key: str | None = None) -> None:
        """`key`: the call's identity when it is not its call id (a UsageId: see Call.key)."""
        marker = (tenant_id, key or rating.call_id)
        if marker in self._applied:
            raise DuplicateCallError(key or rating.call_id)
        self._applied.add(marker)
        if rating.pool is not None and rating.pool_minutes:
            self._used[rating.pool.key] = rating.pool.used_after
