"""Rate cards: the price of a Communications Credits minute per destination, effective-dated and bitemporal.

Microsoft's per-minute prices are not in our sources, so users bring theirs. An entry holds over its valid
time `[valid_from, valid_to)` and is known from `recorded_at` (the date of the price list it comes from); it
is resolved exactly like a policy version: among the entries for the destination recorded at or before
`known_at` whose valid interval holds the instant asked, the one recorded last answers. A correction is a new
entry recorded later; the old price stays readable with an earlier `known_at`.

`number_type` names one of our number types (fixed_line, mobile, toll_free, ...) or `*` for any: an entry
for the call's own number type answers before a `*` entry of the same country.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from pathlib import Path
from typing import Any

import attrs
import pendulum

from ._calls import NUMBER_TYPES
from ._chains import RATE_FIELDS
from ._errors import InvalidFieldError, InvalidRecordsError, PolicyHistoryError, Problem
from ._instant import format_instant, to_instant
from ._rows import check_text, missing_fields_problem, read_rows
from ._tenants import country_code
from ._timeline import micros

ANY_NUMBER_TYPE = "*"
NUMBER_TYPE_NAMES = frozenset(NUMBER_TYPES.values())


def _valid_from(value: object) -> pendulum.DateTime:
    return to_instant(value, "valid_from")


def _recorded_at(value: object) -> pendulum.DateTime:
    return to_instant(value, "recorded_at")


def _optional_valid_to(value: object) -> pendulum.DateTime | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return to_instant(value, "valid_to")


MAX_RATE = 10 ** 6
"""A price per minute or connection fee is below this in any currency: a larger one is no price list's (a
typo), and a run's totals of what it recomputes stay within the exact decimals' 28 digits."""


def money_amount(value: object, field: str) -> Decimal:
    """A non-negative decimal amount, read exactly (0.024, not 0.0240000000000000004996)."""
    text = str(value).strip() if value is not None else ""
    try:
        amount = Decimal(text or "0") if field == "connection_fee" else Decimal(text)
    except InvalidOperation:
        raise InvalidFieldError(field, value, "a decimal amount such as 0.024") from None
    if not amount.is_finite() or amount < 0:
        raise InvalidFieldError(field, value, "a decimal amount, 0 or more")
    if amount >= MAX_RATE:
        raise InvalidFieldError(field, value, f"a decimal amount below {MAX_RATE:,}")
    return amount.normalize() if amount else Decimal(0)


def _per_minute(value: object) -> Decimal:
    return money_amount(value, "per_minute")


def _connection_fee(value: object) -> Decimal:
    return money_amount(value, "connection_fee")


def _destination(value: object) -> str:
    return country_code(value, "destination_country")


def _number_type(value: object) -> str:
    text = str(value or "").strip().lower() or ANY_NUMBER_TYPE
    if text != ANY_NUMBER_TYPE and text not in NUMBER_TYPE_NAMES:
        raise InvalidFieldError("number_type", value, f"* (any) or one of {', '.join(sorted(NUMBER_TYPE_NAMES))}")
    return text


def _currency(value: object) -> str:
    text = str(value or "").strip().upper()
    if len(text) != 3 or not text.isalpha():
        raise InvalidFieldError("currency", value, "an ISO 4217 currency code such as USD, EUR or GBP")
    return text


def _source(value: object) -> str:
    text = str(value or "").strip()
    if not text:
        raise InvalidFieldError("source", value, "where the price comes from (a price list, a contract)")
    return text


@attrs.frozen
class RateCardEntry:
    """One price: per credit minute and per call (connection fee) to one destination, over valid time, known
    from `recorded_at`."""

    valid_from: pendulum.DateTime = attrs.field(converter=_valid_from)
    valid_to: pendulum.DateTime | None = attrs.field(converter=_optional_valid_to)
    recorded_at: pendulum.DateTime = attrs.field(converter=_recorded_at)
    destination_country: str = attrs.field(converter=_destination)
    number_type: str = attrs.field(converter=_number_type)
    per_minute: Decimal = attrs.field(converter=_per_minute)
    connection_fee: Decimal = attrs.field(converter=_connection_fee)
    currency: str = attrs.field(converter=_currency)
    source: str = attrs.field(converter=_source)

    def __attrs_post_init__(self) -> None:
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise InvalidFieldError("valid_to", format_instant(self.valid_to),
                                    f"an instant after valid_from ({format_instant(self.valid_from)})")

    @property
    def label(self) -> str:
        return (f"{self.destination_country}/{self.number_type} from {format_instant(self.valid_from)} recorded "
                f"{format_instant(self.recorded_at)}")

    def holds(self, at_us: int) -> bool:
        return micros(self.valid_from) <= at_us and (self.valid_to is None or at_us < micros(self.valid_to))

    def charge(self, credit_minutes: int) -> Decimal:
        """What the credit minutes of one call cost: minutes x per_minute, plus the connection fee when any
        minute is charged (a call the pool covers whole is not charged)."""
        if credit_minutes <= 0:
            return Decimal(0)
        return credit_minutes * self.per_minute + self.connection_fee

    def row(self) -> dict[str, Any]:
        """The entry as the store keeps it: instants as text, amounts as exact decimal text."""
        return {"valid_from": format_instant(self.valid_from),
                "valid_to": format_instant(self.valid_to) if self.valid_to else None,
                "recorded_at": format_instant(self.recorded_at), "destination_country": self.destination_country,
                "number_type": self.number_type, "per_minute": str(self.per_minute),
                "connection_fee": str(self.connection_fee), "currency": self.currency, "source": self.source}

    def record(self) -> dict[str, Any]:
        return self.row()


RATE_IDENTITY = ("destination_country", "number_type", "valid_from", "recorded_at")
"""An entry's identity: the same identity with other content is a rewrite of history, and refused."""


def entry_from_row(row: dict[str, Any]) -> RateCardEntry:
    return RateCardEntry(**{name: row.get(name) for name in RATE_FIELDS})


def read_rate_card(path: Path) -> list[RateCardEntry]:
    """Read a rate card (CSV or JSON); every bad row is reported, with file, line, field and value, before
    anything is kept."""
    entries: list[RateCardEntry] = []
    problems: list[Problem] = []
    missing_seen: set[tuple[str, ...]] = set()
    check_text(path)
    for line, row in read_rows(path):
        if not isinstance(row, dict):
            problems.append(Problem(str(path), line, None, "row", "expected a JSON object of the rate card's fields, "
                                    f"got {json.dumps(row)[:40]}"))
            continue
        if "__error__" in row:
            problems.append(Problem(str(path), line, None, "row", row["__error__"]))
            continue
        if any(name not in row for name in RATE_FIELDS):
            problem = missing_fields_problem(path, line, row, RATE_FIELDS, missing_seen)
            if problem is not None:
                problems.append(problem)
            continue
        record = f"{row.get('destination_country')}/{row.get('number_type') or ANY_NUMBER_TYPE}"
        try:
            entries.append(entry_from_row(row))
        except InvalidFieldError as error:
            problems.append(Problem(str(path), line, record, error.field, error.reason))
        except PolicyHistoryError as error:  # an instant: its message starts with the field's name
            field = getattr(error, "field", None)
            problems.append(Problem(str(path), line, record, field, str(error).removeprefix(f"{field}: ")))
    if problems:
        raise InvalidRecordsError(problems)
    return entries


def ambiguities(entries: Sequence[RateCardEntry], where: dict[int, str] | None = None) -> list[Problem]:
    """Two entries for one destination recorded at the same instant whose valid intervals overlap: which
    price holds is ambiguous, so the load is refused (never one silently dropped)."""
    problems = []
    by_key: dict[tuple[str, str, pendulum.DateTime], list[tuple[int, RateCardEntry]]] = {}
    for index, entry in enumerate(entries):
        by_key.setdefault((entry.destination_country, entry.number_type, entry.recorded_at), []).append(
            (index, entry))
    for group in by_key.values():
        ordered = sorted(group, key=lambda item: item[1].valid_from)
        for (_, first), (index, second) in pairwise(ordered):
            if first.valid_to is None or second.valid_from < first.valid_to:
                location = (where or {}).get(index, "")
                problems.append(Problem(location or None, None, second.label, "valid_from",
                                        f"overlaps {first.label} (valid {format_instant(first.valid_from)} to "
                                        f"{format_instant(first.valid_to) if first.valid_to else 'open'}), recorded "
                                        "at the same instant: which price holds is ambiguous"))
    return problems


class RateCard:
    """Every rate card entry in memory, grouped by destination, so that a lookup is a scan of a few entries."""

    def __init__(self, entries: Iterable[RateCardEntry]) -> None:
        self.entries = tuple(entries)
        self._by_destination: dict[tuple[str, str], list[RateCardEntry]] = {}
        for entry in sorted(self.entries, key=lambda e: (e.recorded_at, e.valid_from)):
            self._by_destination.setdefault((entry.destination_country, entry.number_type), []).append(entry)
        self._recorded = {key: [micros(e.recorded_at) for e in found] for key, found in self._by_destination.items()}
        self._valid = {key: [(micros(e.valid_from), micros(e.valid_to) if e.valid_to else None, e) for e in found]
                       for key, found in self._by_destination.items()}

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def resolve(self, country: str | None, number_type: str | None, at: object,
                known_at: object) -> RateCardEntry | None:
        """The entry that prices a call to (country, number type) at `at` as known at `known_at`, or None.
        `at` and `known_at` take what store.rate takes, or integer microseconds."""
        at_us = at if type(at) is int else micros(to_instant(at, "as_of"))
        known_us = known_at if type(known_at) is int else micros(to_instant(known_at, "known_at"))
        for key in ((country or "", number_type or ""), (country or "", ANY_NUMBER_TYPE)):
            found = self._valid.get(key)
            if not found:
                continue
            known = bisect_right(self._recorded[key], known_us)  # recorded at or before known_at
            for index in range(known - 1, -1, -1):  # recorded last first
                valid_from, valid_to, entry = found[index]
                if valid_from <= at_us and (valid_to is None or at_us < valid_to):
                    return entry
        return None
