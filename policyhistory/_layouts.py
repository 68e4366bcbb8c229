"""Input layouts for call records: the Teams PSTN usage report export, and our own layout.

Each maps one input row to the fields of a Call (still as text) plus what was billed. The layout is
detected from the header: the Teams export says "Call ID", ours says "call_id".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import attrs
import pycountry

from ._errors import InvalidFieldError
from ._rating import OUTCOMES
from ._tenants import SKU_ALIASES

OWN_COLUMNS = ("call_id", "tenant_id", "start", "duration_seconds", "call_type", "organizer_id",
               "organizer_usage_location", "organizer_licenses", "destination", "billed_outcome", "billed_minutes",
               "billed_charge", "currency")
_MASKED = re.compile(r"[*xX#]")

# Capability (the license that carried the call, reference file) -> what it says was billed.
_BILLED_BY_CAPABILITY = {
    "MCOPSTNPP": "communications_credits",
    "MCOPSTNC": "communications_credits",
    "MCOMEETACPEA": "communications_credits",
    "MCOMEETADD_DIALOUT_US": "us_ca_unlimited",
    "FREECALL": "free",
}


@attrs.frozen
class CallRow:
    """One input row read by its layout: Call fields as given, what was billed, and where it came from."""

    fields: dict[str, Any]
    billed: dict[str, Any] | None
    capability: str | None = None
    infer_licenses: bool = False


def detect_layout(columns: Mapping[str, Any] | list[str]) -> str:
    names = {column if isinstance(column, str) else json.dumps(column, default=str)[:40] for column in columns}
    if "Call ID" in names:
        return "teams"
    if "call_id" in names:
        return "own"
    raise InvalidFieldError("header", sorted(names)[:6], "the Teams PSTN usage report's columns (Call ID, Start Time, "
                            "...) or ours (call_id, tenant_id, start, ...)")


@lru_cache(maxsize=1024)
def country_from_text(text: str) -> str:
    """An ISO alpha-2 code from a code or a country name, as the usage report writes either."""
    value = text.strip()
    try:
        return str(pycountry.countries.lookup(value).alpha_2)
    except LookupError:
        try:
            return str(pycountry.countries.search_fuzzy(value)[0].alpha_2)
        except LookupError:
            raise InvalidFieldError("country", text, "a country name or ISO code") from None


def _number(value: object, field: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        number = math.nan
    if not math.isfinite(number):  # "inf" and "nan" parse as floats, but no bill says them
        raise InvalidFieldError(field, value, "a number")
    return number


def _billed_outcome(value: object) -> str | None:
    """What the bill said, in our outcomes' names: `changed` compares it with ours, and a name we do not
    use (a typo, another system's word) would mark every call changed."""
    if value in (None, ""):
        return None
    text = str(value).strip().lower()
    if text not in OUTCOMES:
        raise InvalidFieldError("billed_outcome", value, f"one of {', '.join(OUTCOMES)}, or nothing")
    return text


CALL_ROW_FIELDS = ("call_id", "tenant_id", "start", "duration_seconds", "call_type", "destination", "user_id",
                   "usage_location", "licenses")
CallFields = tuple[Any, Any, Any, Any, Any, Any, Any, Any, Any, "dict[str, Any] | None", "str | None", bool]
"""A row read by its layout: the values of CALL_ROW_FIELDS as given, then billed, capability, infer_licenses."""


class LayoutReader:
    """Reads one file's rows by column index; built once per file from its header (or, for JSON records,
    from the names the layout knows). `read` takes the row's values as a list and returns a plain tuple
    (CallFields), which a large re-rating reads without building objects; `call_row` is the same as a CallRow.
    """

    names: tuple[str, ...] = ()
    call_id_column = "call_id"
    needs_tenant = False

    def __init__(self, columns: list[str] | None = None) -> None:
        self.columns = list(columns) if columns is not None else list(self.names)
        self._width = len(self.columns)
        self._index = {name: self.columns.index(name) for name in reversed(self.columns)}
        self.call_id_index = self.at(self.call_id_column)

    def at(self, name: str) -> int:
        """The index of column `name`, or the index of the None appended past the last column."""
        return self._index.get(name, self._width)

    def values(self, row: list[Any] | Mapping[str, Any]) -> list[Any]:
        """The row's values as wide as the header, plus the None an absent column reads (a CSV row's list
        is reused)."""
        if type(row) is not list:  # not isinstance(row, Mapping): an ABC check costs a fifth of this method
            mapping: Mapping[str, Any] = row  # type: ignore[assignment]
            return [_json_field(name, mapping.get(name)) for name in self.columns] + [None]
        width = len(row)
        if width > self._width:
            del row[self._width:]
        elif width < self._width:
            row.extend([None] * (self._width - width))
        row.append(None)
        return row

    def read(self, values: list[Any], tenant_id: str | None) -> CallFields:
        raise NotImplementedError

    def call_row(self, values: list[Any], tenant_id: str | None) -> CallRow:
        read = self.read(values, tenant_id)
        return CallRow(dict(zip(CALL_ROW_FIELDS, read, strict=False)), read[9], read[10], read[11])


LIST_COLUMNS = frozenset({"organizer_licenses", "licenses"})


def _json_field(name: str, value: Any) -> Any:
    """A JSON record's field as a CSV row would give it: text, or None when absent (and a list of texts for
    the licenses). A number becomes its text, which the field's own check then reads."""
    if value is None or type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) in (int, float):
        return str(value)
    if type(value) is list and name in LIST_COLUMNS and all(type(item) is str for item in value):
        return value
    expected = "a list of texts" if name in LIST_COLUMNS else "a text or a number"
    raise InvalidFieldError(name, value, expected)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ("" if value is None else str(value).strip())


class OwnLayout(LayoutReader):
    """Our layout (OWN_COLUMNS); `user_id`, `usage_location` and `licenses` are read as synonyms."""

    names = (*OWN_COLUMNS, "user_id", "usage_location", "licenses")

    def __init__(self, columns: list[str] | None = None) -> None:
        super().__init__(columns)
        at = self.at
        self._fields = tuple(at(name) for name in ("call_id", "tenant_id", "start", "duration_seconds", "call_type",
                                                   "destination"))
        self._user = (at("organizer_id"), at("user_id"))
        self._location = (at("organizer_usage_location"), at("usage_location"))
        self._licenses = (at("organizer_licenses"), at("licenses"))
        self._billed = (at("billed_outcome"), at("billed_minutes"), at("billed_charge"), at("currency"))

    def read(self, values: list[Any], tenant_id: str | None = None) -> CallFields:
        outcome_at, minutes_at, charge_at, currency_at = self._billed
        outcome, minutes_text, charge = values[outcome_at], values[minutes_at], values[charge_at]
        billed = None
        if outcome not in (None, "") or minutes_text not in (None, "") or charge not in (None, ""):
            minutes = _number(minutes_text, "billed_minutes")
            billed = {
                "outcome": _billed_outcome(outcome),
                "minutes": None if minutes is None else int(minutes),
                "charge": _number(charge, "billed_charge"),
                "currency": values[currency_at] or None,
            }
        licenses = values[self._licenses[0]]
        if licenses is None:
            licenses = values[self._licenses[1]]
        call_id, tenant, start, duration, call_type, destination = self._fields
        user, user_synonym = self._user
        location, location_synonym = self._location
        return (values[call_id], values[tenant], values[start], values[duration], values[call_type],
                values[destination], values[user] or values[user_synonym] or "",
                values[location] or values[location_synonym] or None, licenses or (), billed, None, False)


class TeamsLayout(LayoutReader):
    """The Teams PSTN usage report export (20 and 25 columns, comma or tab); it has no tenant column."""

    names = ("Call ID", "Start Time", "Duration Seconds", "Call Type", "Destination Number", "Destination Dialed",
             "User Location", "UPN", "Capability", "Charge", "Currency")
    call_id_column = "Call ID"
    needs_tenant = True

    def __init__(self, columns: list[str] | None = None) -> None:
        super().__init__(columns)
        self._at = {name: self.at(name) for name in self.names}

    def read(self, values: list[Any], tenant_id: str | None) -> CallFields:
        at = self._at
        destination = _text(values[at["Destination Number"]])
        if not destination or _MASKED.search(destination):
            dialed = _text(values[at["Destination Dialed"]])
            if not dialed:
                raise InvalidFieldError("Destination Number", destination or None,
                                        "a number, or a country in Destination Dialed when the number is masked")
            destination = country_from_text(dialed)
        location = _text(values[at["User Location"]])
        capability = _text(values[at["Capability"]]).upper() or None
        charge = _number(values[at["Charge"]], "Charge")
        billed = None
        if charge is not None:
            charged = charge > 0
            outcome = "communications_credits" if charged else _BILLED_BY_CAPABILITY.get(capability or "")
            if capability in ("MCOPSTN1", "MCOPSTN2", "MCOPSTN5", "MCOPSTN6") and not charged:
                outcome = "calling_plan"
            billed = {
                # The export gives the charge, not the minutes charged: unknown when anything was charged.
                "outcome": outcome if not charged or capability in _BILLED_BY_CAPABILITY else None,
                "minutes": None if charged else 0,
                "charge": charge,
                "currency": _text(values[at["Currency"]]) or None,
            }
        return (values[at["Call ID"]], tenant_id, teams_start(values[at["Start Time"]]),
                values[at["Duration Seconds"]], values[at["Call Type"]], destination, values[at["UPN"]] or "",
                country_from_text(location) if location else None,
                (SKU_ALIASES[capability],) if capability in SKU_ALIASES else (), billed, capability, True)


def layout_reader(columns: list[str] | Mapping[str, Any]) -> LayoutReader:
    """The reader for a file whose header (a CSV file) or first record (JSON) names `columns`."""
    layout = TeamsLayout if detect_layout(columns) == "teams" else OwnLayout
    return layout() if isinstance(columns, Mapping) else layout(columns)


def own_row(row: Mapping[str, Any]) -> CallRow:
    reader = OwnLayout()
    return reader.call_row(reader.values(row), None)


_ISO_DAY = re.compile(r"\d{4}-?\d\d-?\d\d[T ]")


def teams_start(value: object) -> str:
    """The report's Start Time is UTC; an ISO time without offset is read as UTC for this layout only. Any
    other form (Excel's 5/28/2018 2:00:00 PM, say) is left as given, so that its refusal quotes it."""
    text = str(value or "").strip()
    if not _ISO_DAY.match(text):
        return text
    if "T" not in text and " " in text:
        text = text.replace(" ", "T", 1)
    if not re.search(r"(Z|[+-]\d\d:?\d\d)$", text) and "T" in text:
        text += "Z"
    return text


def teams_row(row: Mapping[str, Any], tenant_id: str) -> CallRow:
    reader = TeamsLayout()
    return reader.call_row(reader.values(row), tenant_id)
