"""Input layouts for call records: the Teams PSTN usage report export, and our own layout.

Each maps one input row to the fields of a Call (still as text) plus what was billed. The layout is
detected from the header: the Teams export says "Call ID", ours says "call_id".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import attrs
import pycountry

from ._errors import InvalidFieldError
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
    names = set(columns)
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
        return float(str(value).strip())
    except ValueError:
        raise InvalidFieldError(field, value, "a number") from None


def own_row(row: Mapping[str, Any]) -> CallRow:
    billed = None
    if any(row.get(name) not in (None, "") for name in ("billed_outcome", "billed_minutes", "billed_charge")):
        minutes = _number(row.get("billed_minutes"), "billed_minutes")
        billed = {
            "outcome": row.get("billed_outcome") or None,
            "minutes": None if minutes is None else int(minutes),
            "charge": _number(row.get("billed_charge"), "billed_charge"),
            "currency": row.get("currency") or None,
        }
    fields = {name: row.get(name) for name in ("call_id", "tenant_id", "start", "duration_seconds", "call_type",
                                               "destination")}
    fields["user_id"] = row.get("organizer_id") or row.get("user_id") or ""
    fields["usage_location"] = row.get("organizer_usage_location") or row.get("usage_location") or None
    fields["licenses"] = row.get("organizer_licenses", row.get("licenses")) or ()
    return CallRow(fields, billed)


def teams_start(value: object) -> str:
    """The report's Start Time is UTC; an ISO time without offset is read as UTC for this layout only."""
    text = str(value or "").strip()
    if text and "T" not in text and " " in text:
        text = text.replace(" ", "T", 1)
    if text and not re.search(r"(Z|[+-]\d\d:?\d\d)$", text) and "T" in text:
        text += "Z"
    return text


def teams_row(row: Mapping[str, Any], tenant_id: str) -> CallRow:
    destination = (row.get("Destination Number") or "").strip()
    if not destination or _MASKED.search(destination):
        dialed = (row.get("Destination Dialed") or "").strip()
        if not dialed:
            raise InvalidFieldError("Destination Number", destination or None,
                                    "a number, or a country in Destination Dialed when the number is masked")
        destination = country_from_text(dialed)
    location = (row.get("User Location") or "").strip()
    capability = (row.get("Capability") or "").strip().upper() or None
    charge = _number(row.get("Charge"), "Charge")
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
            "currency": (row.get("Currency") or "").strip() or None,
        }
    fields = {
        "call_id": row.get("Call ID"),
        "tenant_id": tenant_id,
        "start": teams_start(row.get("Start Time")),
        "duration_seconds": row.get("Duration Seconds"),
        "call_type": row.get("Call Type"),
        "destination": destination,
        "user_id": row.get("UPN") or "",
        "usage_location": country_from_text(location) if location else None,
        "licenses": (SKU_ALIASES[capability],) if capability in SKU_ALIASES else (),
    }
    return CallRow(fields, billed, capability, infer_licenses=True)
