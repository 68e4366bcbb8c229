"""What the rules decide for a kind of call before its pool is consulted, as data: the plan (`RatingPlan`), its
pool (`PoolPlan`), its trace steps, whether Communications Credits can pay, and why no call of the kind can be
rated (`Refusal`); and the arithmetic a plan does with one call's minutes (`RatingPlan.settle`). `_rules`
makes plans; `_ledger` settles calls with them. Pure, like both.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from typing import Literal

import attrs

from ._calls import Call, Destination
from ._errors import (
    CallingPlanNotSoldError,
    InvalidFieldError,
    NoPolicyInForceError,
    NothingKnownYetError,
    PolicyHistoryError,
)
from ._instant import format_instant
from ._policy import MinuteRoundingParams
from ._rating import Outcome, PoolKey, TraceStep
from ._tenants import TenantSnapshot

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


def pool_capacity(tenant: TenantSnapshot, skus: Sequence[str], basis: str, minutes_per_user: int,
                  locations: Sequence[str] | None = None) -> tuple[int, int]:
    """The pool basis rule: users counted on `basis` (assigned or purchased licenses) x minutes per user."""
    users = tenant.licensed(skus, basis, locations)
    return users, users * minutes_per_user


def cut_warning(uncovered: int, pool_minutes: int) -> str:
    """The warning of a call that ran past its pool with nothing to pay for the rest."""
    return (f"{uncovered} minute(s) past the pool with no Communications Credits: the call would have been cut "
            f"after {pool_minutes} minute(s)")


def user_key(user_id: str) -> str:
    """A user as a per-user pool knows them: a UPN is an e-mail address, which Entra ID compares without case,
    and spaces around it are no part of it (Ann@Contoso.com and ' ann@contoso.com ' are one user); '' is none."""
    return user_id.strip().casefold()
