"""Loading into the store: the files one load reads (every file's problems listed together, before anything
is written), and the rows each kind of record appends to its chain, each first compared with what is stored
under its identity: the same content is skipped, other content refused (history is append-only: a correction
is recorded later). The writers run inside the store's write transaction, which Store takes, and read what
is stored under its lock; Store also forgets what it kept in memory of what they wrote."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import pendulum
import sqlite_utils

from ._catalog import LocatedVersion, check_versions, read_catalog
from ._chains import CHAINS, LICENSE_TABLE, POLICY_TABLE, RATE_TABLE, TENANT_TABLE, TENANTS_TABLE, append
from ._convert import converter
from ._errors import AppendOnlyError, InvalidRecordsError, Problem
from ._instant import format_instant
from ._policy import PolicyVersion
from ._ratecards import RATE_IDENTITY, RateCardEntry, ambiguities, read_rate_card
from ._tenants import LicenseFact, TenantFact, read_facts_located

Now = Callable[[], pendulum.DateTime]
"""The store's clock, read for `loaded_at` only once a load is known to be written."""

TENANT_IDENTITY = ("tenant_id", "valid_from")
LICENSE_IDENTITY = ("tenant_id", "sku", "usage_location", "valid_from")
Place = tuple[str | None, int | None]
"""Where a fact was read (file, line), so that a refusal can name it."""


@attrs.frozen
class LoadReport:
    """What a load did: the ids it appended and the ids it found already stored with the same content."""

    added: tuple[str, ...]
    unchanged: tuple[str, ...]


@attrs.frozen
class LoadFiles:
    """What the files of one load hold: catalog versions, tenant facts and licenses (each with where it was
    read) and rate card entries."""

    versions: list[LocatedVersion]
    tenants: list[tuple[Any, Place]]
    licenses: list[tuple[Any, Place]]
    rates: list[RateCardEntry]


def read_load(paths: Iterable[str | Path], tenants: str | Path | None, licenses: str | Path | None,
              rates: str | Path | None) -> LoadFiles:
    """Read catalog files (none: no catalog), a tenants file, a licenses file and a rate card; the problems of
    every file are raised together (InvalidRecordsError)."""
    problems: list[Problem] = []
    located: list[LocatedVersion] = []
    chosen = [Path(path) for path in paths]
    if chosen:
        try:
            located = read_catalog(chosen)
        except InvalidRecordsError as error:
            problems.extend(error.problems)
    facts: dict[str, list[tuple[Any, Place]]] = {"tenants": [], "licenses": []}
    for kind, given in (("tenants", tenants), ("licenses", licenses)):
        if given:
            try:
                facts[kind] = read_facts_located(Path(given), kind)
            except InvalidRecordsError as error:
                problems.extend(error.problems)
    entries: list[RateCardEntry] = []
    if rates:
        try:
            entries = list(read_rate_card(Path(rates)))
        except InvalidRecordsError as error:
            problems.extend(error.problems)
    if problems:
        raise InvalidRecordsError(problems)
    return LoadFiles(located, facts["tenants"], facts["licenses"], entries)


def _policy_row(version: PolicyVersion) -> dict[str, Any]:
    return {
        "id": version.id,
        "key": version.key,
        "kind": version.kind,
        "valid_from": format_instant(version.valid_from),
        "valid_to": format_instant(version.valid_to) if version.valid_to else None,
        "recorded_at": format_instant(version.recorded_at),
        "params": json.dumps(converter.unstructure(version.params), sort_keys=True, ensure_ascii=False),
        "source": json.dumps(converter.unstructure(version.source), sort_keys=True, ensure_ascii=False),
        "notes": version.notes,
        "in_force": int(version.in_force),
    }


def write_versions(db: sqlite_utils.Database, located: Sequence[LocatedVersion], stored: Iterable[PolicyVersion],
                   now: Now) -> LoadReport:
    """Append catalog versions; `stored`, what the store holds, is read under the write lock, so that two
    processes loading the same catalog at once append it once."""
    by_id = {version.id: version for version in stored}
    problems = check_versions(located, by_id.values())
    if problems:
        raise InvalidRecordsError(problems)
    added: list[str] = []
    unchanged: list[str] = []
    new_rows: list[dict[str, Any]] = []
    for item in located:
        version = item.version
        if version.id in by_id:
            if _policy_row(by_id[version.id]) != _policy_row(version):
                raise AppendOnlyError(version.id, item.file, item.line)
            if version.id not in unchanged:
                unchanged.append(version.id)
            continue
        if version.id in added:
            continue
        added.append(version.id)
        new_rows.append(_policy_row(version))
    loaded_at = format_instant(now())
    append(db.conn, CHAINS[POLICY_TABLE], [{**row, "loaded_at": loaded_at} for row in new_rows])
    return LoadReport(tuple(added), tuple(unchanged))


def write_facts(db: sqlite_utils.Database, tenants: Sequence[tuple[TenantFact, Place]],
                licenses: Sequence[tuple[LicenseFact, Place]], now: Now) -> LoadReport:
    """Append tenant facts and licenses, and the tenants first seen in them."""
    tenant_rows = [({"tenant_id": f.tenant_id, "valid_from": format_instant(f.valid_from), "country": f.country,
                     "communications_credits": int(f.communications_credits)}, place) for f, place in tenants]
    license_rows = [({"tenant_id": f.tenant_id, "valid_from": format_instant(f.valid_from), "sku": f.sku,
                      "usage_location": f.usage_location, "purchased": f.purchased, "assigned": f.assigned},
                     place) for f, place in licenses]
    added: list[str] = []
    unchanged: list[str] = []
    fresh: dict[str, list[dict[str, Any]]] = {}
    for spec, rows, identity in ((CHAINS[TENANT_TABLE], tenant_rows, TENANT_IDENTITY),
                                 (CHAINS[LICENSE_TABLE], license_rows, LICENSE_IDENTITY)):
        content = [column for column in spec.content if column != "loaded_at"]
        stored = {tuple(row[c] for c in identity): {c: row[c] for c in content}
                  for row in db.query(f"SELECT * FROM {spec.name}")}
        for row, (file, line) in rows:
            label = f"{spec.name} " + "/".join(str(row[c]) for c in identity)
            existing = stored.get(tuple(row[c] for c in identity))
            if existing is not None:
                if existing != row:
                    raise AppendOnlyError(label, file, line, _differences(existing, row))
                unchanged.append(label)
                continue
            stored[tuple(row[c] for c in identity)] = row
            fresh.setdefault(spec.name, []).append(row)
            added.append(label)
    loaded_at = format_instant(now())
    known = {row[0] for row in db.conn.execute(f"SELECT tenant_id FROM {TENANTS_TABLE}")}
    new_tenants = sorted({row["tenant_id"] for rows in fresh.values() for row in rows} - known)
    append(db.conn, CHAINS[TENANTS_TABLE], [{"tenant_id": t, "loaded_at": loaded_at} for t in new_tenants])
    for name in (TENANT_TABLE, LICENSE_TABLE):
        append(db.conn, CHAINS[name], [{**row, "loaded_at": loaded_at} for row in fresh.get(name, [])])
    return LoadReport(tuple(added), tuple(unchanged))


def write_rates(db: sqlite_utils.Database, entries: Sequence[RateCardEntry], stored_entries: Sequence[RateCardEntry],
                file: str | None, now: Now) -> LoadReport:
    """Append rate card entries; `stored_entries`, the store's, are read under the write lock. An entry that
    would make a destination's price ambiguous with another is refused."""
    stored = {tuple(entry.row()[c] for c in RATE_IDENTITY): entry.row() for entry in stored_entries}
    added: list[str] = []
    unchanged: list[str] = []
    fresh: list[dict[str, Any]] = []
    kept: list[RateCardEntry] = list(stored_entries)
    for entry in entries:
        row = entry.row()
        identity = tuple(row[c] for c in RATE_IDENTITY)
        label = f"{RATE_TABLE} {entry.label}"
        existing = stored.get(identity)
        if existing is not None:
            if existing != row:
                raise AppendOnlyError(label, file)
            unchanged.append(label)
            continue
        stored[identity] = row
        fresh.append(row)
        kept.append(entry)
        added.append(label)
    problems = ambiguities(kept, {index: file or "" for index in range(len(kept) - len(fresh), len(kept))})
    if problems:
        raise InvalidRecordsError(problems)
    loaded_at = format_instant(now())
    append(db.conn, CHAINS[RATE_TABLE], [{**row, "loaded_at": loaded_at} for row in fresh])
    return LoadReport(tuple(added), tuple(unchanged))


def _differences(stored: dict[str, Any], given: dict[str, Any]) -> str:
    return ", ".join(f"{name} {stored.get(name)!r} stored, {value!r} given" for name, value in given.items()
                     if stored.get(name) != value)
