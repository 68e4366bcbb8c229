"""One hierarchy of errors, rooted in PolicyHistoryError; each carries the data that explains it."""

from __future__ import annotations

from collections.abc import Sequence

import attrs


class PolicyHistoryError(Exception):
    """Base of every error policyhistory raises on purpose."""

    batch_index: int | None = None
    """Rating a batch (Rater.rate_all, Rater.records): the position of the call refused, in the order given."""
    batch_call_id: str | None = None
    """Rating a batch: the call id of the call refused."""


@attrs.frozen
class Problem:
    """One thing wrong with one input: where it is, which field, what was expected and what arrived."""

    file: str | None
    line: int | None
    record: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = ":".join(str(part) for part in (self.file, self.line) if part is not None)
        parts = [where] if where else []
        if self.record:
            parts.append(f"record {self.record!r}")
        if self.field:
            parts.append(f"field {self.field!r}")
        prefix = ", ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class NaiveDatetimeError(PolicyHistoryError, ValueError):
    """An instant arrived without a UTC offset, so it cannot be placed on the time line."""

    def __init__(self, field: str, value: object) -> None:
        self.field = field
        self.value = value
        super().__init__(
            f"{field}: expected an aware instant (with a UTC offset, e.g. 2018-06-15T00:00:00Z) "
            f"or a date, got naive {value!r}"
        )


class InstantParseError(PolicyHistoryError, ValueError):
    """A value could not be read as an instant or a date."""

    def __init__(self, field: str, value: object, why: str | None = None) -> None:
        self.field = field
        self.value = value
        self.why = why
        """The calendar's reason, for text of ISO 8601's shape that names no day or time (2018-02-30)."""
        no_such = f" (no such date or time: {why})" if why else ""
        super().__init__(
            f"{field}: expected an ISO 8601 instant with offset, a date, or an aware datetime, got {value!r}{no_such}"
        )


class InstantRangeError(InstantParseError):
    """An instant outside the supported range, 1900-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z."""

    def __init__(self, field: str, value: object) -> None:
        super().__init__(field, value)
        self.args = (f"{field}: {value!r} is outside the supported range of instants, 1900-01-01T00:00:00Z to "
                     "9999-12-31T23:59:59Z (UTC)",)


class InvalidRecordsError(PolicyHistoryError, ValueError):
    """A load found problems; nothing was written. Every problem found is listed, not only the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} problem(s), nothing was written:\n{lines}")


class AppendOnlyError(PolicyHistoryError, ValueError):
    """A record with an existing id arrived with other content; history is never rewritten."""

    def __init__(self, record_id: str, file: str | None = None, line: int | None = None,
                 differences: str = "") -> None:
        self.record_id = record_id
        self.file = file
        self.line = line
        self.differences = differences
        where = ":".join(str(part) for part in (file, line) if part is not None)
        what = f" ({differences})" if differences else ""
        super().__init__(
            f"{where + ': ' if where else ''}record {record_id!r} already exists with other content{what}: "
            "history is append-only: add a new version"
        )


class NoPolicyInForceError(PolicyHistoryError, LookupError):
    """A rule needed a policy that was not in force at the instant asked, as known at that time."""

    def __init__(self, key: str, as_of: object, known_at: object) -> None:
        self.key = key
        self.as_of = as_of
        self.known_at = known_at
        super().__init__(f"no policy in force for {key!r} at {as_of} as known at {known_at}")


class NothingKnownYetError(NoPolicyInForceError):
    """A rule needed a policy key of which no version had been recorded by the knowledge instant asked."""

    def __init__(self, key: str, as_of: object, known_at: object, first_recorded: object) -> None:
        super().__init__(key, as_of, known_at)
        self.first_recorded = first_recorded
        self.args = (f"nothing was known yet about {key!r} as of {known_at}; its first record was published "
                     f"{first_recorded} (no policy in force at {as_of} as known then)",)


class CallingPlanNotSoldError(PolicyHistoryError, LookupError):
    """A call under a Calling Plan license whose usage location is a country where Microsoft sold no such plan
    at the call's date: the license cannot have carried the call, and no pool is invented for it."""

    def __init__(self, plan: str, country: str, as_of: object, known_at: object, sold_from: object | None,
                 sold_in: Sequence[str]) -> None:
        self.plan = plan
        self.country = country
        self.as_of = as_of
        self.known_at = known_at
        self.sold_from = sold_from
        if sold_from is not None:
            why = f"Calling Plans are sold in {country} only from {sold_from} (earliest known date)"
        else:
            why = (f"no Calling Plan is sold in {country} (as known at {known_at}, plans are sold in "
                   f"{', '.join(sold_in)})")
        super().__init__(f"Calling Plan {plan!r} with usage location {country} at {as_of}: {why}")


class CallNotFoundError(PolicyHistoryError, LookupError):
    """The call asked (by its call id or UsageId) is in none of the files, or could not be read."""

    def __init__(self, call_id: str, files: Sequence[str]) -> None:
        self.call_id = call_id
        self.files = tuple(files)
        super().__init__(f"call {call_id!r} is not in {', '.join(self.files)} (or could not be read)")


class NothingKnownError(PolicyHistoryError, LookupError):
    """No policy version had been recorded by the knowledge instant asked."""

    def __init__(self, known_at: object, first_recorded: object) -> None:
        self.known_at = known_at
        self.first_recorded = first_recorded
        super().__init__(f"no policy version was known at {known_at}; the first was recorded at {first_recorded}")


class UnknownPolicyKeyError(PolicyHistoryError, LookupError):
    """No version of the asked policy key exists in the store."""

    def __init__(self, key: str, known: Sequence[str]) -> None:
        self.key = key
        super().__init__(f"no policy key {key!r}; known keys: {', '.join(sorted(known))}")


class UnknownTenantError(PolicyHistoryError, LookupError):
    """The call's tenant has no facts in force at the call's instant."""

    def __init__(self, tenant_id: str, at: object) -> None:
        self.tenant_id = tenant_id
        self.at = at
        super().__init__(f"no tenant facts for {tenant_id!r} in force at {at}")


class InvalidFieldError(PolicyHistoryError, ValueError):
    """One field of one input row (a call, a tenant fact, a license) could not be read."""

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"field {field!r}: {self.reason}")

    @property
    def reason(self) -> str:
        # None is no value a user gave: a missing column or field, not Python's None.
        return f"expected {self.expected}, got {'nothing' if self.value is None else repr(self.value)}"


class UnreadableRowError(InvalidFieldError):
    """A row its file's format could not read: invalid JSON, or a CSV record refused by the csv module or
    running over several lines. Its field is "row"."""

    def __init__(self, why: str) -> None:
        self.why = why
        super().__init__("row", None, why)
        self.args = (f"unreadable row: {why}",)

    @property
    def reason(self) -> str:
        return self.why


class UnreadableCallError(InvalidFieldError):
    """The call asked for is in a file, but its row cannot be read: where it is and why (the row's own error)."""

    def __init__(self, call_id: str, file: object, line: object, why: object) -> None:
        self.call_id = call_id
        self.file = file
        self.line = line
        self.why = why
        super().__init__("row", call_id, "a readable row")
        self.args = (f"call {call_id!r} is at {file} line {line}, but its row cannot be read: {why}",)


class NotAStoreError(PolicyHistoryError, ValueError):
    """A store path that holds something else: a file that is not SQLite, or another program's database."""

    def __init__(self, path: object, why: str) -> None:
        self.path = path
        self.why = why
        super().__init__(f"{path} is not a policyhistory store: {why}; give a new file or an existing store")


class DuplicateCallError(PolicyHistoryError, ValueError):
    """A call was offered twice to one pool state: drawing its minutes again would charge the pool twice."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        super().__init__(f"call {call_id!r} has already drawn on this pool state; rating it again would charge "
                         "its pool twice (use a fresh PoolState to re-rate)")


class StoreBusyError(PolicyHistoryError, TimeoutError):
    """Another process held the store's write lock for longer than the busy timeout."""

    def __init__(self, path: object, timeout: float | None = None) -> None:
        self.path = path
        self.timeout = timeout
        waited = f" for {timeout:g} s" if timeout is not None else ""
        super().__init__(f"the store {path} is busy: another process is writing to it and did not finish{waited}; "
                         "nothing was written, try again (POLICYHISTORY_BUSY_TIMEOUT sets how long to wait)")


class StoreDamagedError(PolicyHistoryError, ValueError):
    """A store that lost a table or its rows, a truncated or corrupted file: refused, never recreated."""

    def __init__(self, path: object, why: str) -> None:
        self.path = path
        self.why = why
        super().__init__(f"the store {path} is damaged: {why}")


class StoreUnusableError(PolicyHistoryError, OSError):
    """SQLite could not read or write the store file (read-only, a full disk, a folder it cannot lock in)."""

    def __init__(self, path: object, why: str) -> None:
        self.path = path
        self.why = why
        super().__init__(f"the store {path} cannot be used: {why}; nothing was written")


class OutputIsInputError(PolicyHistoryError, ValueError):
    """An output named a file the command reads (an input, the store): writing it would destroy it."""

    def __init__(self, option: str, path: object, what: str) -> None:
        self.option = option
        self.path = path
        self.what = what
        super().__init__(f"{option} {path} is {what}: writing it would destroy it; choose another file")


class InvalidDigestError(PolicyHistoryError, ValueError):
    """A --digest that is not a digest policyhistory printed, or one whose text was altered."""
