"""The plan being written for one kind of call (`Planner`: every step names its rule, version and the fact
that decided it), and the decisions every kind's planner shares: a refusal for a policy not in force
(`Refused`), the pool a benefit draws on (`pool_plan`), and Communications Credits or nothing
(`credits_or_blocked`). `_rules.plan_call` writes the plan with the planners of _dial_out and _calling_plans.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._calls import Destination
from ._instant import format_instant
from ._plans import (
    COMMUNICATIONS_CREDITS,
    POOL_ALERTS,
    Bucket,
    CreditsCheck,
    PlannedStep,
    PoolPlan,
    Refusal,
    Text,
)
from ._policy import CommunicationsCreditsParams, CountryListParams, PolicyVersion, PoolAlertsParams
from ._rating import Outcome
from ._tenants import TenantFact
from ._timeline import PolicySet


class Refused(Exception):
    """How a planner stops: `plan_call` makes the refusal the plan (a call no rule in force can rate)."""

    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal


class Planner:
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
            raise Refused(Refusal(policy_key=key, first_recorded=format_instant(first) if first else None))
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


Decided = tuple[Outcome, Bucket, PoolPlan | None]


def pool_plan(planner: Planner, version: PolicyVersion, outcome: Outcome, skus: Sequence[str], basis: str,
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


def credits_or_blocked(planner: Planner, why: str) -> Decided:
    credits = planner.credits()
    if credits.version is None:
        raise Refused(Refusal(policy_key=COMMUNICATIONS_CREDITS))
    planner.step("communications_credits", planner.policies.get(COMMUNICATIONS_CREDITS), credits.fact,
                 credits_decision(credits.available))
    if credits.available:
        return "communications_credits", "credit", None
    planner.step("blocked", None, why + "; no Communications Credits", "the call could not be made under the rules")
    return "blocked", "uncovered", None


def credits_decision(available: bool) -> Text:
    if available:
        return lambda call, minutes: f"{minutes} minute(s) billed per minute to Communications Credits"
    return "Communications Credits are not available"

