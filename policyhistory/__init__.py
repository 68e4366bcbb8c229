"""policyhistory: the effective-dated, bitemporal history of Teams / Skype for Business PSTN billing policies."""

from ._calls import Call, Destination, call_from_mapping, classify_destination
from ._catalog import LocatedVersion, bundled_catalog_path, read_catalog
from ._errors import (
    AppendOnlyError,
    CallingPlanNotSoldError,
    DuplicateCallError,
    InstantParseError,
    InstantRangeError,
    InvalidDigestError,
    InvalidFieldError,
    InvalidRecordsError,
    NaiveDatetimeError,
    NoPolicyInForceError,
    NotAStoreError,
    NothingKnownError,
    NothingKnownYetError,
    OutputIsInputError,
    PolicyHistoryError,
    Problem,
    StoreBusyError,
    StoreDamagedError,
    StoreUnusableError,
    UnknownPolicyKeyError,
    UnknownTenantError,
    UnreadableCallError,
    UnreadableRowError,
)
from ._explain import Comparison, Explanation
from ._inspect import Inspection, inspect_file
from ._instant import format_instant, to_instant
from ._layouts import UnknownLayoutError
from ._ledger import PoolLedger, PoolMonth, PoolState, Settled
from ._money import AUDIT_FIELDS, Audit
from ._policy import PARAMS_BY_KIND, PolicyVersion, Source
from ._ratecards import RateCard, RateCardEntry, read_rate_card
from ._rater import Rater
from ._rating import OUTCOMES, PoolKey, PoolUse, Rating, TraceStep
from ._rerate import InputRow, Rerate, RerateSummary, invoice_date
from ._rules import PlanCache, PoolPlan, RatingPlan, Refusal, plan_call, pool_capacity, rate_call
from ._store import Store, open
from ._store_load import LoadReport
from ._tenants import SKU_ALIASES, SKUS, LicenseFact, TenantFact, TenantIndex, TenantSnapshot
from ._timeline import HistoryEntry, Override, PolicyChange, PolicySet, Timeline, resolve_by_scan
from ._verify import VerifyReport

__all__ = [
    "AUDIT_FIELDS",
    "OUTCOMES",
    "PARAMS_BY_KIND",
    "SKUS",
    "SKU_ALIASES",
    "AppendOnlyError",
    "Audit",
    "Call",
    "CallingPlanNotSoldError",
    "Comparison",
    "Destination",
    "DuplicateCallError",
    "Explanation",
    "HistoryEntry",
    "InputRow",
    "Inspection",
    "InstantParseError",
    "InstantRangeError",
    "InvalidDigestError",
    "InvalidFieldError",
    "InvalidRecordsError",
    "LicenseFact",
    "LoadReport",
    "LocatedVersion",
    "NaiveDatetimeError",
    "NoPolicyInForceError",
    "NotAStoreError",
    "NothingKnownError",
    "NothingKnownYetError",
    "OutputIsInputError",
    "Override",
    "PlanCache",
    "PolicyChange",
    "PolicyHistoryError",
    "PolicySet",
    "PolicyVersion",
    "PoolKey",
    "PoolLedger",
    "PoolMonth",
    "PoolPlan",
    "PoolState",
    "PoolUse",
    "Problem",
    "RateCard",
    "RateCardEntry",
    "Rater",
    "Rating",
    "RatingPlan",
    "Refusal",
    "Rerate",
    "RerateSummary",
    "Settled",
    "Source",
    "Store",
    "StoreBusyError",
    "StoreDamagedError",
    "StoreUnusableError",
    "TenantFact",
    "TenantIndex",
    "TenantSnapshot",
    "Timeline",
    "TraceStep",
    "UnknownLayoutError",
    "UnknownPolicyKeyError",
    "UnknownTenantError",
    "UnreadableCallError",
    "UnreadableRowError",
    "VerifyReport",
    "bundled_catalog_path",
    "call_from_mapping",
    "classify_destination",
    "format_instant",
    "inspect_file",
    "invoice_date",
    "open",
    "plan_call",
    "pool_capacity",
    "rate_call",
    "read_catalog",
    "read_rate_card",
    "resolve_by_scan",
    "to_instant",
]
