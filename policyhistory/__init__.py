"""policyhistory: the effective-dated, bitemporal history of Teams / Skype for Business PSTN billing policies."""

from ._catalog import LocatedVersion, bundled_catalog_path, read_catalog
from ._errors import (
    AppendOnlyError,
    InstantParseError,
    InvalidFieldError,
    InvalidRecordsError,
    NaiveDatetimeError,
    NoPolicyInForceError,
    PolicyHistoryError,
    Problem,
    TamperedRowError,
    UnknownPolicyKeyError,
    UnknownTenantError,
)
from ._instant import format_instant, to_instant
from ._policy import PARAMS_BY_KIND, PolicyVersion, Source
from ._store import HistoryEntry, LoadReport, Override, Store, VerifyReport, open
from ._timeline import PolicySet, Timeline, resolve_by_scan

__all__ = [
    "PARAMS_BY_KIND",
    "AppendOnlyError",
    "HistoryEntry",
    "InstantParseError",
    "InvalidFieldError",
    "InvalidRecordsError",
    "LoadReport",
    "LocatedVersion",
    "NaiveDatetimeError",
    "NoPolicyInForceError",
    "Override",
    "PolicyHistoryError",
    "PolicySet",
    "PolicyVersion",
    "Problem",
    "Source",
    "Store",
    "TamperedRowError",
    "Timeline",
    "UnknownPolicyKeyError",
    "UnknownTenantError",
    "VerifyReport",
    "bundled_catalog_path",
    "format_instant",
    "open",
    "read_catalog",
    "resolve_by_scan",
    "to_instant",
]
