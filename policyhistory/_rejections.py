"""Rejected rows grouped by reason, each group with its count, its first rows and the fix, for the report.

A reason is the error's text with the row's own values taken out (quoted values, instants, numbers), so
that 10,000 rows refused for one cause make one group, not 10,000 lines.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from typing import Any

import attrs

FIRST_ROWS = 5
"""Rows a group keeps as examples (the first, in input order)."""
_QUOTED = re.compile(r"(?<!\w)(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")(?!\w)")
"""A quoted value: not an apostrophe inside a word (the user's), which opens no quote."""
_NAMES = ("field ", "column ", "key ", "policy in force for ")
"""Quoted text after these words is a name (field 'duration_seconds'), which the reason keeps."""
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}(?:T[0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?")
_NUMBER = re.compile(r"(?<![\w.])(?<!ISO )(?<!alpha-)\d+(?:\.\d+)?(?![\w.])")  # not "ISO 3166 alpha-2"

FIXES = (
    ("no tenant facts", "Load the tenant's facts (policyhistory load --tenants T --licenses L) with a valid_from "
                        "at or before the call, or correct the row's tenant_id."),
    ("no policy in force", "Nothing the catalog knew at known_at rules this call: re-rate with a later --known-at, "
                           "or load the catalog version that covers it."),
    ("expected an aware instant", "Give the start a UTC offset (2020-06-15T02:00:00Z); we never guess a zone."),
    ("expected an ISO 8601 instant", "Write the start in ISO 8601 with a UTC offset (2020-06-15T02:00:00Z)."),
    ("already drawn", "The call id appears twice in the tenant: remove the duplicate row (it was rated once, for "
                      "its earlier start)."),
    ("unreadable row", "Fix the file at that line: a quote left open or a field with a line break; save as CSV "
                       "UTF-8."),
    ("whole number of seconds", "Give duration_seconds as a whole number of seconds, 0 to 31 days."),
    ("billed_outcome", "Use one of our outcomes in billed_outcome, or leave it empty."),
    ("destination", "Give the destination as an E.164 number (+33142685300) or an ISO country code."),
    ("call_type", "Use one of the call types the README lists (conf_out, user_out, conf_in, ...)."),
    ("field ", "Correct the field named in the reason to the form it expects."),
    ("column ", "Correct the column named in the reason to the form it expects."),
)


def reason_of(error: str) -> str:
    """The error with the row's values replaced by ..., so that rows refused for one cause share a reason."""
    text = _QUOTED.sub(lambda found: found[0] if error.endswith(_NAMES, 0, found.start()) else "'...'", error)
    text = _INSTANT.sub("<instant>", text)
    return _NUMBER.sub("<n>", text)


def fix_for(reason: str) -> str:
    return next((fix for needle, fix in FIXES if needle in reason), "See the reason; correct the row and re-rate.")


@attrs.define
class RejectionGroup:
    reason: str
    fix: str
    count: int = 0
    first: list[dict[str, Any]] = attrs.Factory(list)
    orders: list[int] = attrs.Factory(list)
    """Where each row of `first` stands in the run's output (the first rows are the earliest ones)."""

    def record(self) -> dict[str, Any]:
        return {"reason": self.reason, "count": self.count, "fix": self.fix, "first": list(self.first)}


class Rejections:
    """Rejected records counted by reason, keeping the first few of each: by their place in the output when
    it is given (a re-rating's shards count their own rows, in any order, and are merged), else as they come."""

    def __init__(self) -> None:
        self._groups: dict[str, RejectionGroup] = {}
        self._seen = 0

    def add(self, record: dict[str, Any], order: int | None = None) -> None:
        """Count a rejected record; `order`: its place in the run's output (default: after every one so far)."""
        if order is None:
            order = self._seen
        self._seen += 1
        error = str(record.get("error") or "rejected")
        reason = reason_of(error)
        group = self._groups.get(reason)
        if group is None:
            group = self._groups[reason] = RejectionGroup(reason, fix_for(reason))
        group.count += 1
        orders = group.orders
        if len(orders) < FIRST_ROWS or order < orders[-1]:
            at = bisect.bisect(orders, order)
            orders.insert(at, order)
            group.first.insert(at, {"file": record.get("file"), "line": record.get("line"),
                                    "call_id": record.get("call_id"), "error": error})
            del orders[FIRST_ROWS:], group.first[FIRST_ROWS:]

    def merge(self, parts: Iterable[Rejections]) -> None:
        """Add other counts (a re-rating's shards) to these, as if every row had been added here: the first rows
        of a reason the earliest of all, the reasons in the order of their first row."""
        for part in parts:
            self._seen += part._seen
            for reason, theirs in part._groups.items():
                group = self._groups.get(reason)
                if group is None:
                    self._groups[reason] = theirs
                    continue
                group.count += theirs.count
                kept = sorted(zip([*group.orders, *theirs.orders], [*group.first, *theirs.first], strict=True),
                              key=lambda pair: pair[0])[:FIRST_ROWS]
                group.orders, group.first = [order for order, _ in kept], [row for _, row in kept]
        self._groups = dict(sorted(self._groups.items(), key=lambda item: item[1].orders[0]))

    def groups(self) -> list[RejectionGroup]:
        """Most rows first; ties in the order first met."""
        return sorted(self._groups.values(), key=lambda group: -group.count)

    def __len__(self) -> int:
        return sum(group.count for group in self._groups.values())
