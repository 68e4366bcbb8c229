"""policyhistory: the effective-dated, bitemporal history of Teams / Skype for Business PSTN billing policies."""

from ._calls import Call, Destination, call_from_mapping, classify_destination
from ._catalog import LocatedVersion, bundled_catalog_path, read_catalog
from ._errors import (
    AppendOnlyError,
    DuplicateCallError,
    InstantParseError,
    InvalidFieldError,
    InvalidRecordsError,
    NaiveDatetimeError,
    NoPolicyInForceError,
    NotAStoreError,
    NothingKnownError,
    PolicyHistoryError,
    Problem,
    StoreBusyError,
    StoreDamagedError,
    UnknownPolicyKeyError,
    UnknownTenantError,
    UnreadableRowError,
)
from ._explain import Comparison, Explanation
from ._instant import format_instant, to_instant
from ._ledger import VerifyReport
from ._policy import PARAMS_BY_KIND, PolicyVersion, Source
from ._rating import OUTCOMES, PoolKey, PoolState, PoolUse, Rating, TraceStep
from ._rerate import InputRow, Rerate, RerateSummary, invoice_date
from ._rules import PlanCache, PoolPlan, RatingPlan, Refusal, plan_call, pool_capacity, rate_call
from ._store import HistoryEntry, LoadReport, Override, Rater, Store, open
from ._tenants import SKU_ALIASES, SKUS, LicenseFact, TenantFact, TenantIndex, TenantSnapshot
from ._timeline import PolicyChange, PolicySet, Timeline, resolve_by_scan

__all__ = [
    "OUTCOMES",
    "PARAMS_BY_KIND",
    "SKUS",
    "SKU_ALIASES",
    "AppendOnlyError",
    "Call",
    "Comparison",
    "Destination",
    "DuplicateCallError",
    "Explanation",
    "HistoryEntry",
    "InputRow",
    "InstantParseError",
    "InvalidFieldError",
    "InvalidRecordsError",
    "LicenseFact",
    "LoadReport",
    "LocatedVersion",
    "NaiveDatetimeError",
    "NoPolicyInForceError",
    "NotAStoreError",
    "NothingKnownError",
    "Override",
    "PlanCache",
    "PolicyChange",
    "PolicyHistoryError",
    "PolicySet",
    "PolicyVersion",
    "PoolKey",
    "PoolPlan",
    "PoolState",
    "PoolUse",
    "Problem",
    "Rater",
    "Rating",
    "RatingPlan",
    "Refusal",
    "Rerate",
    "RerateSummary",
    "Source",
    "Store",
    "StoreBusyError",
    "StoreDamagedError",
    "TenantFact",
    "TenantIndex",
    "TenantSnapshot",
    "Timeline",
    "TraceStep",
    "UnknownPolicyKeyError",
    "UnknownTenantError",
    "UnreadableRowError",
    "VerifyReport",
    "bundled_catalog_path",
    "call_from_mapping",
    "classify_destination",
    "format_instant",
    "invoice_date",
    "open",
    "plan_call",
    "pool_capacity",
    "rate_call",
    "read_catalog",
    "resolve_by_scan",
    "to_instant",
]
