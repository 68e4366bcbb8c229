"""What rating a call produces: the Rating with its trace, and the pool state carried between calls."""

from __future__ import annotations

from typing import Literal

import attrs
import pendulum

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
    alerted: tuple[int, ...] = ()
    """The alert thresholds (percent) the call's draw raised, once each per pool-month."""


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
    tenant_id: str = ""
    start: pendulum.DateTime | None = None
    call_type: str = ""
    usage_id: str | None = None
    """The usage report's UsageId where the call has one (its identity for pools: Call.key)."""


def __getattr__(name: str) -> object:
    """PoolState lives in _ledger now (the pool ledger); kept importable from here for older code."""
    if name == "PoolState":
        from ._ledger import PoolLedger

        return PoolLedger
    raise AttributeError(name)
