"""Tenant facts: a tenant's country and Communications Credits set-up, and its licenses, effective-dated.

A row holds from its valid_from until the next row for the same tenant (tenant facts) or the same
(tenant, sku, usage_location) (licenses). Resolution is by valid time: tenant facts describe the customer,
not Microsoft's documentation, so they have no second, knowledge time.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import pendulum
import phonenumbers

from ._errors import InvalidFieldError, InvalidRecordsError, PolicyHistoryError, Problem, UnknownTenantError
from ._instant import format_instant, from_micros, to_instant
from ._rows import check_text, missing_fields_problem, read_rows
from ._timeline import micros

SKUS = (
    "audio_conferencing",
    "audio_conferencing_ppm",
    "us_ca_dial_out",
    "communications_credits",
    "calling_plan_domestic",
    "calling_plan_domestic_120",
    "calling_plan_domestic_240",
    "calling_plan_international",
    "calling_plan_domestic_120_user",
    "free_call",
)

SKU_ALIASES = {
    # Microsoft's service plan and capability names (the usage report's Capability column).
    "MCOMEETADV": "audio_conferencing",
    "MCOMEETADD": "audio_conferencing",
    "MCOMEETACPEA": "audio_conferencing_ppm",
    "MCOMEETADD_DIALOUT_US": "us_ca_dial_out",
    "MCOPSTNC": "communications_credits",
    "MCOPSTNPP": "communications_credits",
    "MCOPSTN1": "calling_plan_domestic",
    "MCOPSTN2": "calling_plan_international",
    "MCOPSTN5": "calling_plan_domestic_120",
    "MCOPSTN6": "calling_plan_domestic_240",
    "MCOPSTN8": "calling_plan_domestic_120_user",  # 120 minutes counted per user, not pooled (March 2021)
    "MCOPSTN9": "calling_plan_international",  # Domestic and International, listed from March 2021
    "FREECALL": "free_call",  # not a license: the usage report's mark of a call that was not priced
}

COUNTRIES = frozenset(phonenumbers.SUPPORTED_REGIONS)
_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n", ""}


def normalise_sku(value: object) -> str:
    """Our SKU name for one of ours or one of Microsoft's aliases, or an error listing both."""
    text = str(value).strip()
    if text.lower() in SKUS:
        return text.lower()
    if text.upper() in SKU_ALIASES:
        return SKU_ALIASES[text.upper()]
    raise InvalidFieldError("sku", value, f"one of {', '.join(SKUS)} or {', '.join(sorted(SKU_ALIASES))}")


def country_code(value: object, field: str = "country") -> str:
    text = str(value or "").strip().upper()
    if text not in COUNTRIES:
        raise InvalidFieldError(field, value, "an ISO 3166 alpha-2 country code such as US, GB or ZW")
    return text


def boolean(value: object, field: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidFieldError(field, value, "true or false")


MAX_COUNT = 2**63 - 1
"""SQLite's largest integer: a larger count could not be stored."""


def count(value: object, field: str) -> int:
    """A number of licenses in ASCII digits ("1_000", "٣٠" and "1.5" are refused), 0 to SQLite's largest."""
    if type(value) is int:
        number = value
    else:
        text = str(value).strip()
        if text.startswith("-") and text[1:].isascii() and text[1:].isdigit():
            raise InvalidFieldError(field, value, "a number of licenses, 0 or more")
        if not (text.isascii() and text.isdigit()) or len(text) > 19:
            raise InvalidFieldError(field, value, f"a whole number of licenses, 0 to {MAX_COUNT}")
        number = int(text)
    if number < 0:
        raise InvalidFieldError(field, value, "a number of licenses, 0 or more")
    if number > MAX_COUNT:
        raise InvalidFieldError(field, value, f"a whole number of licenses, 0 to {MAX_COUNT}")
    return number


def _instant(value: object) -> pendulum.DateTime:
    return to_instant(value, "valid_from")


def _credits(value: object) -> bool:
    return boolean(value, "communications_credits")


def _usage_location(value: object) -> str:
    return country_code(value, "usage_location")


def _purchased(value: object) -> int:
    return count(value, "purchased")


def _assigned(value: object) -> int:
    return count(value, "assigned")


@attrs.frozen
class TenantFact:
    """A tenant's country (where it was set up) and whether Communications Credits are set up and funded."""

    tenant_id: str
    valid_from: pendulum.DateTime = attrs.field(converter=_instant)
    country: str = attrs.field(converter=country_code)
    communications_credits: bool = attrs.field(converter=_credits)


@attrs.frozen
class LicenseFact:
    """How many licenses of one SKU a tenant purchased and assigned in one usage location, from valid_from."""

    tenant_id: str
    valid_from: pendulum.DateTime = attrs.field(converter=_instant)
    sku: str = attrs.field(converter=normalise_sku)
    usage_location: str = attrs.field(converter=_usage_location)
    purchased: int = attrs.field(converter=_purchased)
    assigned: int = attrs.field(converter=_assigned)


@attrs.frozen
class TenantSnapshot:
    """A tenant's facts in force at one instant: what the evaluator sees."""

    tenant: TenantFact
    licenses: tuple[LicenseFact, ...]

    def licensed(self, skus: Sequence[str], basis: str, locations: Sequence[str] | None = None) -> int:
        """Licenses of `skus` counted on `basis` ("assigned" or "purchased"), optionally in some locations."""
        return sum(
            getattr(fact, basis)
            for fact in self.licenses
            if fact.sku in skus and (locations is None or fact.usage_location in locations)
        )


TENANT_FIELDS = ("tenant_id", "valid_from", "country", "communications_credits")
LICENSE_FIELDS = ("tenant_id", "valid_from", "sku", "usage_location", "purchased", "assigned")


def _field(row: dict[str, Any], name: str) -> Any:
    value = row.get(name)
    if value is None or (isinstance(value, str) and not value.strip() and name != "communications_credits"):
        raise InvalidFieldError(name, value, "a value (the column is required)")
    return value


def tenant_from_row(row: dict[str, Any]) -> TenantFact:
    return TenantFact(
        tenant_id=str(_field(row, "tenant_id")).strip(),
        valid_from=_field(row, "valid_from"),
        country=_field(row, "country"),
        communications_credits=row.get("communications_credits", ""),
    )


def license_from_row(row: dict[str, Any]) -> LicenseFact:
    return LicenseFact(
        tenant_id=str(_field(row, "tenant_id")).strip(),
        valid_from=_field(row, "valid_from"),
        sku=str(_field(row, "sku")),
        usage_location=_field(row, "usage_location"),
        purchased=_field(row, "purchased"),
        assigned=_field(row, "assigned"),
    )


def read_facts(path: Path, kind: str) -> list[TenantFact] | list[LicenseFact]:
    """Read a tenants or licenses file (CSV or JSON); every bad row is reported before anything is kept."""
    return [fact for fact, _ in read_facts_located(path, kind)]


def read_facts_located(path: Path, kind: str) -> list[tuple[Any, tuple[str | None, int | None]]]:
    """read_facts, each fact with the (file, line) it was read from."""
    build = tenant_from_row if kind == "tenants" else license_from_row
    expected = TENANT_FIELDS if kind == "tenants" else LICENSE_FIELDS
    facts: list[Any] = []
    problems: list[Problem] = []
    missing_seen: set[tuple[str, ...]] = set()
    check_text(path)
    for line, row in read_rows(path):
        if not isinstance(row, dict):  # a JSON record that is not an object
            problems.append(Problem(str(path), line, None, "row", f"expected a JSON object of the {kind} "
                                    f"fields, got {json.dumps(row)[:40]}"))
            continue
        if "__error__" in row:
            problems.append(Problem(str(path), line, row.get("tenant_id"), "row", row["__error__"]))
            continue
        if any(name not in row for name in expected):
            problem = missing_fields_problem(path, line, row, expected, missing_seen)
            if problem is not None:
                problems.append(problem)
            continue
        row_problems = [Problem(str(path), line, _record(row), field, why) for field, why in _field_problems(row, kind)]
        if row_problems:  # every problem of the row at once, not only its first
            problems.extend(row_problems)
            continue
        try:
            facts.append((build(row), (str(path), line)))
        except PolicyHistoryError as error:
            field = getattr(error, "field", None)
            problems.append(Problem(str(path), line, _record(row), field, str(error).removeprefix(f"{field}: ")))
    if problems:
        raise InvalidRecordsError(problems)
    return facts


def _record(row: dict[str, Any]) -> str | None:
    tenant = row.get("tenant_id")
    return None if tenant is None else str(tenant)[:100]


_FIELD_CHECKS: dict[str, tuple[tuple[str, Any], ...]] = {
    "tenants": (("valid_from", _instant), ("country", country_code), ("communications_credits", _credits)),
    "licenses": (("valid_from", _instant), ("sku", normalise_sku), ("usage_location", _usage_location),
                 ("purchased", _purchased), ("assigned", _assigned)),
}


def _field_problems(row: dict[str, Any], kind: str) -> list[tuple[str | None, str]]:
    """(field, why) for every field of a row that cannot be read."""
    found: list[tuple[str | None, str]] = []
    names = ["tenant_id", *(name for name, _ in _FIELD_CHECKS[kind])]
    for name in names:
        try:
            value = _field(row, name) if name != "communications_credits" else row.get(name, "")
            if name == "tenant_id":
                if not isinstance(value, str | int):
                    raise InvalidFieldError(name, value, "a text")
                continue
            dict(_FIELD_CHECKS[kind])[name](value)
        except InvalidFieldError as error:
            found.append((error.field, error.reason))
        except PolicyHistoryError as error:  # an instant: its message starts with the field's name
            field = getattr(error, "field", name)
            found.append((field, str(error).removeprefix(f"{field}: ")))
    return found


class TenantIndex:
    """Tenant facts in memory, each series sorted by valid_from, so a snapshot is a few binary searches."""

    def __init__(self, tenants: Iterable[TenantFact], licenses: Iterable[LicenseFact]) -> None:
        self._tenants: dict[str, tuple[list[int], list[TenantFact]]] = {}
        for fact in sorted(tenants, key=lambda f: (f.tenant_id, f.valid_from)):
            points, facts = self._tenants.setdefault(fact.tenant_id, ([], []))
            points.append(micros(fact.valid_from))
            facts.append(fact)
        self._licenses: dict[str, dict[tuple[str, str], tuple[list[int], list[LicenseFact]]]] = {}
        for lic in sorted(licenses, key=lambda f: (f.tenant_id, f.sku, f.usage_location, f.valid_from)):
            series = self._licenses.setdefault(lic.tenant_id, {}).setdefault((lic.sku, lic.usage_location), ([], []))
            series[0].append(micros(lic.valid_from))
            series[1].append(lic)
        self._snapshots: dict[tuple[str, int], TenantSnapshot] = {}
        self._changes: dict[str, list[int]] = {
            tenant: sorted(set(points) | {p for series in self._licenses.get(tenant, {}).values() for p in series[0]})
            for tenant, (points, _) in self._tenants.items()
        }

    def change_points(self, tenant_id: str) -> list[int]:
        """The instants (microseconds) at which the tenant's facts or licenses change; [] for an unknown tenant."""
        return list(self._changes.get(tenant_id, ()))

    def tenant_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self._tenants))

    def snapshot(self, tenant_id: str, at: pendulum.DateTime) -> TenantSnapshot:
        return self.snapshot_us(tenant_id, micros(at))

    def snapshot_us(self, tenant_id: str, at_us: int) -> TenantSnapshot:
        changes = self._changes.get(tenant_id)
        if changes is None:
            raise UnknownTenantError(tenant_id, format_instant(from_micros(at_us)))
        segment = bisect.bisect_right(changes, at_us)
        cached = self._snapshots.get((tenant_id, segment))
        if cached is not None:
            return cached
        points, facts = self._tenants[tenant_id]
        index = bisect.bisect_right(points, at_us) - 1
        if index < 0:
            raise UnknownTenantError(tenant_id, format_instant(from_micros(at_us)))
        licenses = []
        for lic_points, lic_facts in self._licenses.get(tenant_id, {}).values():
            lic_index = bisect.bisect_right(lic_points, at_us) - 1
            if lic_index >= 0:
                licenses.append(lic_facts[lic_index])
        snapshot = TenantSnapshot(facts[index], tuple(licenses))
        self._snapshots[(tenant_id, segment)] = snapshot
        return snapshot
