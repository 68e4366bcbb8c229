"""Input layouts for call records: the Teams PSTN usage report export, our own layout, and (in _graph)
Microsoft Graph's call records and the Direct Routing export.

Each maps one input row to the fields of a Call (still as text) plus what was billed. The layout is
detected from the header: the Teams export says "Call ID", ours says "call_id", Graph's rows "callId" (or
"correlationId" for Direct Routing), the Direct Routing export "Correlation ID".
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any, ClassVar

import attrs

from ._capability import capability_billed
from ._countries import MASK, country_from_text, masked_destination
from ._errors import InvalidFieldError
from ._rating import OUTCOMES
from ._rows import spelt_like
from ._tenants import SKU_ALIASES

__all__ = ["country_from_text"]  # re-exported: the exact name table lives in _countries

OWN_COLUMNS = ("call_id", "tenant_id", "start", "duration_seconds", "call_type", "organizer_id",
               "organizer_usage_location", "organizer_licenses", "destination", "billed_outcome", "billed_minutes",
               "billed_charge", "currency")


@attrs.frozen
class CallRow:
    """One input row read by its layout: Call fields as given, what was billed, and where it came from."""

    fields: dict[str, Any]
    billed: dict[str, Any] | None
    capability: str | None = None
    infer_licenses: bool = False


EXPECTED_COLUMNS = ("the Teams PSTN usage report's (UsageId, Call ID, Start Time, Duration Seconds, Call Type, "
                    "Destination Number, ...), Microsoft Graph's getPstnCalls rows (id, callId, startDateTime, "
                    "duration, callType, calleeNumber, ...), getDirectRoutingCalls rows (id, correlationId, "
                    "startDateTime, ...), the Direct Routing export's (Correlation ID, Start time, Callee Number, "
                    "...) or ours (call_id, tenant_id, start, duration_seconds, call_type, destination, ...)")


class UnknownLayoutError(InvalidFieldError):
    """A header (or first JSON record) of no layout we read: every row would be rejected alike."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        super().__init__("header", columns[:8], EXPECTED_COLUMNS)

    @property
    def reason(self) -> str:
        shown = ", ".join(self.columns[:8]) + (", ..." if len(self.columns) > 8 else "")
        return f"no layout we read has these columns ({shown or 'none'}); expected {EXPECTED_COLUMNS}"


REQUIRED_COLUMNS = {
    "own": ("call_id", "tenant_id", "start", "duration_seconds", "call_type", "destination"),
    "teams": ("Call ID", "Start Time", "Duration Seconds", "Call Type"),
}
"""The columns without which no row of a CSV file of the layout can be rated (a Teams export without its
Destination Number still has External Country and Destination Dialed, as for a masked number)."""


class MissingColumnsError(UnknownLayoutError):
    """A CSV header of a layout we read without some of the columns every row needs (a misspelt one, say):
    every row would be rejected alike."""

    def __init__(self, layout: str, columns: list[str], missing: list[str]) -> None:
        self.layout = layout
        self.missing = missing
        super().__init__(columns)

    @property
    def reason(self) -> str:
        named = ", ".join(spelt_like(name, self.columns, "the header") for name in self.missing)
        layout = "our layout" if self.layout == "own" else f"the {self.layout} layout"
        return f"the header of {layout} lacks the column(s) every row needs: {named}"


def require_columns(layout: str, columns: list[str]) -> None:
    """Refuse a CSV header of `layout` that lacks a column every row needs (MissingColumnsError)."""
    present = set(columns)
    missing = [name for name in REQUIRED_COLUMNS.get(layout, ()) if name not in present]
    if missing:
        raise MissingColumnsError(layout, columns, missing)


def lookalike_columns(layout: str, columns: list[str]) -> list[tuple[str, str]]:
    """(column, the column of the layout it is spelt like) for each column of a CSV header the layout does not
    read that is close to one it reads and the header lacks: a misspelt optional column (organizer_licensesx,
    billed_outcom) is not read, and changes every rating it would have decided."""
    names = layout_class(layout).names
    absent = [name for name in names if name not in columns]
    found = []
    for column in columns:
        if column not in names:
            close = difflib.get_close_matches(column, absent, n=1, cutoff=0.85)
            if close:
                found.append((column, close[0]))
    return found


def detect_layout(columns: Mapping[str, Any] | list[str]) -> str:
    """"teams", "graph", "graph_direct_routing", "direct_routing" or "own", from a header or a JSON record's
    names; UnknownLayoutError for anything else."""
    from ._graph import is_direct_routing_header

    names = {column if isinstance(column, str) else json.dumps(column, default=str)[:40] for column in columns}
    if "Call ID" in names:
        return "teams"
    if "callId" in names:
        return "graph"
    if "correlationId" in names and "startDateTime" in names:
        return "graph_direct_routing"
    if is_direct_routing_header(names):
        return "direct_routing"
    if "call_id" in names:
        return "own"
    raise UnknownLayoutError([str(name) for name in columns])


@lru_cache(maxsize=1024)
def carrier_of(operator: object, duration_source: object = None) -> str | None:
    """"operator_connect" when the row names an operator other than Microsoft (the 25-column export's
    Operator, Graph's operator) or says the operator gave the duration (callDurationSource "operator");
    None for Microsoft's own calls."""
    name = _text(operator).lower()
    if name and name not in ("microsoft", "microsoft corporation"):
        return "operator_connect"
    if _text(duration_source).lower() == "operator":
        return "operator_connect"
    return None


MAX_BILLED_MINUTES = 10 ** 12
"""Billed minutes are below this (two million years): a larger number is no bill's, and beyond 2 ** 63 it
would not even fit the run's 64-bit columns. The columnar readers take at most 12 digits alike."""


MAX_BILLED_CHARGE = 10 ** 12
"""A call's charge (or connection fee) is below this in any currency: a larger one is no bill's (a typo, an
export's overflow), and the run's sums of exact decimals are kept to 28 digits. The columnar readers take
at most 12 digits before the point alike."""


def _number(value: object, field: str, below: float = math.inf) -> float | None:
    """A billed amount: a number (in any script's digits, as Python reads them, but without the underscores
    Python's float also takes: "1_0" is a typo, not 10), finite, below `below`; None when empty."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        number = float(text) if "_" not in text else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number):  # "inf" and "nan" parse as floats, but no bill says them
        raise InvalidFieldError(field, value, "a number")
    if abs(number) >= below:
        raise InvalidFieldError(field, value, f"a number below {below:,}")
    return number + 0.0  # -0 is 0: a record says 0.0, not -0.0


BLANK = " \t"
"""What a cell holds that a spreadsheet shows as empty: spaces and tabs (the columnar readers strip the same)."""


def first_given(value: Any, synonym: Any) -> Any:
    """The value of a column or, where the row does not give it, of its synonym (organizer_licenses or
    licenses, organizer_usage_location or usage_location, organizer_id or user_id): an empty cell, or one of
    spaces beside a synonym that is given, does not hide the synonym; a cell of spaces alone is read (and
    refused, where its field needs a value) as the row has it."""
    return synonym if _takes_synonym(value, synonym) else value


def _takes_synonym(value: Any, synonym: Any) -> bool:
    """first_given takes the synonym: the value is empty, or spaces beside a synonym that is given."""
    return not value or (not _given(value) and _given(synonym))


def _given(value: Any) -> bool:
    return bool(value.strip(BLANK)) if type(value) is str else bool(value)


def currency_code(value: object) -> str | None:
    """A bill's currency as its code is written, ISO 4217's capitals ("usd", " USD " are USD: else the same
    currency's money would be totalled apart and left uncompared with the rate card's); None when empty."""
    return _text(value).upper() or None


def _billed_minutes(value: object) -> int | None:
    """The minutes a bill counted: a whole number, 0 or more ("15.0", as a spreadsheet writes 15, is 15); "1.9"
    and "-5" are refused rather than read as 1 and -5 minutes, which would mark the call changed for a
    difference the bill does not have."""
    number = _number(value, "billed_minutes", MAX_BILLED_MINUTES)
    if number is None:
        return None
    # Decided on the decimals written, not on the float they round to ("14.9999999999999999" is 15.0).
    exact = Decimal(str(value).strip())
    if number < 0 or exact != exact.to_integral_value():
        raise InvalidFieldError("billed_minutes", value, "a whole number of minutes, not negative")
    return int(exact)


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
CallFields = tuple[Any, Any, Any, Any, Any, Any, Any, Any, Any, "dict[str, Any] | None", "str | None", bool,
                   "str | None", "str | None"]
"""A row read by its layout: the values of CALL_ROW_FIELDS as given, then billed, capability, infer_licenses,
usage_id (the key where the layout has one) and carrier (None: Microsoft)."""


class LayoutReader:
    """Reads one file's rows by column index; built once per file from its header (or, for JSON records,
    from the names the layout knows). `read` takes the row's values as a list and returns a plain tuple
    (CallFields), which a large re-rating reads without building objects; `call_row` is the same as a CallRow.
    """

    names: tuple[str, ...] = ()
    call_id_column = "call_id"
    needs_tenant = False
    field_columns: ClassVar[dict[str, str]] = {}
    """The file's column of each call field the layout names otherwise (the Teams export's "Start Time" is our
    start): a rejected row's reason names the column the file has (see in_file_terms)."""

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

    def column_of(self, field: str, raw: object = None) -> str | None:
        """The file's column that gave `field` in the row `raw` (its values or JSON record), where it is not
        named `field`: a rejected row's reason names it (in_file_terms)."""
        return self.field_columns.get(field)

    def call_row(self, values: list[Any], tenant_id: str | None) -> CallRow:
        read = self.read(values, tenant_id)
        fields = dict(zip(CALL_ROW_FIELDS, read, strict=False))
        fields["usage_id"], fields["carrier"] = read[12], read[13]
        return CallRow(fields, read[9], read[10], read[11])


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


_SYNONYMS = {"licenses": ("organizer_licenses", "licenses"),
             "usage_location": ("organizer_usage_location", "usage_location")}
"""A call field our layout reads from the organizer's column or its synonym: (the column, the synonym)."""


class OwnLayout(LayoutReader):
    """Our layout (OWN_COLUMNS); `user_id`, `usage_location` and `licenses` are read as synonyms."""

    names = (*OWN_COLUMNS, "user_id", "usage_location", "licenses", "usage_id", "carrier")

    def __init__(self, columns: list[str] | None = None) -> None:
        super().__init__(columns)
        at = self.at
        self._fields = tuple(at(name) for name in ("call_id", "tenant_id", "start", "duration_seconds", "call_type",
                                                   "destination"))
        self._user = (at("organizer_id"), at("user_id"))
        self._location = (at("organizer_usage_location"), at("usage_location"))
        self._licenses = (at("organizer_licenses"), at("licenses"))
        self._billed = (at("billed_outcome"), at("billed_minutes"), at("billed_charge"), at("currency"))
        self._key = (at("usage_id"), at("carrier"))

    def column_of(self, field: str, raw: object = None) -> str | None:
        """organizer_licenses and organizer_usage_location give the fields licenses and usage_location, unless
        the row gives them by those names (first_given: the organizer's column first)."""
        pair = _SYNONYMS.get(field)
        if pair is None:
            return None
        if isinstance(raw, Mapping):
            value, synonym = raw.get(pair[0]), raw.get(pair[1])
        elif isinstance(raw, list):
            at = self.at
            value, synonym = (raw[at(name)] if at(name) < len(raw) else None for name in pair)
        else:
            return pair[0] if pair[0] in self._index else None
        column = pair[1] if synonym is not None and _takes_synonym(value, synonym) else pair[0]
        return column if column != field and column in self._index else None

    def read(self, values: list[Any], tenant_id: str | None = None) -> CallFields:
        outcome_at, minutes_at, charge_at, currency_at = self._billed
        outcome, minutes_text, charge = values[outcome_at], values[minutes_at], values[charge_at]
        billed = None
        if outcome not in (None, "") or minutes_text not in (None, "") or charge not in (None, ""):
            billed = {
                "outcome": _billed_outcome(outcome),
                "minutes": _billed_minutes(minutes_text),
                "charge": _number(charge, "billed_charge", MAX_BILLED_CHARGE),
                "currency": currency_code(values[currency_at]),
            }
        licenses = first_given(values[self._licenses[0]], values[self._licenses[1]])
        call_id, tenant, start, duration, call_type, destination = self._fields
        user, user_synonym = self._user
        location, location_synonym = self._location
        return (values[call_id], values[tenant], values[start], values[duration], values[call_type],
                values[destination], first_given(values[user], values[user_synonym]) or "",
                first_given(values[location], values[location_synonym]) or None, licenses or (), billed, None, False,
                values[self._key[0]] or None, values[self._key[1]] or None)


class UsageLayout(LayoutReader):
    """A layout of the PSTN usage report's fields (the Teams export, Graph's getPstnCalls rows): `roles`
    names the column of each field the readers share, `names` every column read."""

    roles: ClassVar[dict[str, str]] = {}
    needs_tenant = True

    def __init__(self, columns: list[str] | None = None) -> None:
        super().__init__(columns)
        self._at = {name: self.at(name) for name in self.names}

    def usage(self, values: list[Any]) -> tuple[str, str | None, dict[str, Any] | None, str | None]:
        """(destination, capability, billed, carrier) of a row: a masked or empty number by its calling code,
        External Country or exact name (_countries.masked_destination); the charge with its connection fee
        (what was charged); the carrier (Operator Connect, see carrier_of); what was billed, from the
        Capability (none for a call another operator carried)."""
        at, role = self._at, self.roles
        destination = _text(values[at[role["number"]]])
        if not destination or MASK.search(destination):
            destination = masked_destination(destination, values[at[role["external_country"]]],
                                             values[at[role["dialed"]]], values[at[role["number_type"]]])
        capability = _text(values[at[role["capability"]]]).upper() or None
        charge = _number(values[at[role["charge"]]], role["charge"], MAX_BILLED_CHARGE)
        fee_text = values[at[role["connection_fee"]]]
        fee = _number(fee_text, role["connection_fee"], MAX_BILLED_CHARGE) if fee_text not in (None, "", "0") else None
        if fee and charge is None:
            charge = fee  # a connection fee with no Charge given: the fee was what was charged
        elif fee:
            # Added as the decimals the file writes (0.1 and 0.2 make 0.3, not 0.30000000000000004); each is
            # below MAX_BILLED_CHARGE, so their sum is a number.
            charge = float(Decimal(repr(charge)) + Decimal(repr(fee)))
        carrier = carrier_of(values[at[role["operator"]]], values[at[role["duration_source"]]])
        billed = None if carrier else capability_billed(capability, charge, currency_code(values[at[role["currency"]]]))
        return destination, capability, billed, carrier


class TeamsLayout(UsageLayout):
    """The Teams PSTN usage report export (20 and 25 columns, comma or tab); it has no tenant column."""

    roles: ClassVar[dict[str, str]] = {
        "number": "Destination Number", "external_country": "External Country", "dialed": "Destination Dialed",
        "number_type": "Number Type", "capability": "Capability", "charge": "Charge",
        "connection_fee": "Connection Fee", "currency": "Currency", "operator": "Operator",
        "duration_source": "Source of Call Duration"}
    names = ("UsageId", "Call ID", "Start Time", "Duration Seconds", "Call Type", "User Location", "UPN",
             *roles.values())
    call_id_column = "Call ID"
    field_columns: ClassVar[dict[str, str]] = {
        "call_id": "Call ID", "usage_id": "UsageId", "start": "Start Time", "duration_seconds": "Duration Seconds",
        "call_type": "Call Type", "destination": "Destination Number", "usage_location": "User Location",
        "user_id": "UPN"}

    def read(self, values: list[Any], tenant_id: str | None) -> CallFields:
        at = self._at
        destination, capability, billed, carrier = self.usage(values)
        location = _text(values[at["User Location"]])
        call_type_text = values[at["Call Type"]]
        if type(call_type_text) is str and call_type_text.lower().startswith("dr_"):
            from ._graph import direct_routing_call_type

            carrier, call_type_text, billed = "direct_routing", direct_routing_call_type(call_type_text), None
        usage_id = _text(values[at["UsageId"]]) or None
        return (values[at["Call ID"]] or usage_id, tenant_id, teams_start(values[at["Start Time"]]),
                values[at["Duration Seconds"]], call_type_text, destination, values[at["UPN"]] or "",
                country_from_text(location) if location else None,
                (SKU_ALIASES[capability],) if capability in SKU_ALIASES else (), billed, capability, True,
                usage_id, carrier)


def in_file_terms(error: Exception, reader: LayoutReader | None, raw: object = None) -> str:
    """The error of a row (`raw`: its values or JSON record), naming the file's own column where its layout
    calls our field otherwise: "column 'Duration Seconds' (duration_seconds): expected a whole number of
    seconds, got 'abc'", not "field 'duration_seconds': ..." of a column the file does not have."""
    text = str(error)
    field = getattr(error, "field", None)
    column = reader.column_of(field, raw) if reader is not None and type(field) is str else None
    if column is None:
        return text
    for prefix in (f"field {field!r}: ", f"{field}: "):
        if text.startswith(prefix):
            return f"column {column!r} ({field}): {text[len(prefix):]}"
    return text


def layout_class(name: str) -> type[LayoutReader]:
    """The reader class of a layout detect_layout named."""
    from ._graph import DirectRoutingLayout, GraphDirectRoutingLayout, GraphLayout

    layouts: dict[str, type[LayoutReader]] = {"teams": TeamsLayout, "own": OwnLayout, "graph": GraphLayout,
                                              "graph_direct_routing": GraphDirectRoutingLayout,
                                              "direct_routing": DirectRoutingLayout}
    return layouts[name]


def layout_reader(columns: list[str] | Mapping[str, Any]) -> LayoutReader:
    """The reader for a file whose header (a CSV file) or first record (JSON) names `columns`."""
    layout = layout_class(detect_layout(columns))
    return layout() if isinstance(columns, Mapping) else layout(columns)


def own_row(row: Mapping[str, Any]) -> CallRow:
    reader = OwnLayout()
    return reader.call_row(reader.values(row), None)


_ISO_DAY = re.compile(r"\d{4}-?\d\d-?\d\d[T ]")
_ISO_DAY_SPACE = re.compile(r"(\d{4}-?\d\d-?\d\d) (?=\d)")
_OFFSET = re.compile(r"(Z|[+-]\d\d(:?\d\d)?)$")


def teams_start(value: object) -> str:
    """The report's Start Time is UTC; an ISO time without offset is read as UTC for this layout only. Any
    other form (Excel's 5/28/2018 2:00:00 PM, say) is left as given, so that its refusal quotes it."""
    text = str(value or "").strip()
    if not _ISO_DAY.match(text):
        return text
    # 2018-05-28 14:00:00 is 2018-05-28T14:00:00Z; a text that is not this form (two spaces, say) stays as it
    # is, so that its refusal quotes the file; an offset given (+02:00, +0200, +02) is kept.
    iso = _ISO_DAY_SPACE.sub(r"\1T", text, count=1) if "T" not in text else text
    if "T" in iso and not _OFFSET.search(iso):
        iso += "Z"
    return iso


def teams_row(row: Mapping[str, Any], tenant_id: str) -> CallRow:
    reader = TeamsLayout()
    return reader.call_row(reader.values(row), tenant_id)
