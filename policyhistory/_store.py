"""The store: SQLite through sqlite-utils, append-only, bitemporal, hash-chained. Part of the shell: it is
the one place (with the CLI) that reads the clock, and only when `known_at` is left to default to now."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import pendulum
import sqlite_utils

from ._catalog import LocatedVersion, bundled_catalog_path, check_versions, read_catalog
from ._chain import GENESIS, row_hash
from ._convert import converter
from ._errors import AppendOnlyError, InvalidRecordsError, UnknownPolicyKeyError
from ._instant import format_instant, to_instant
from ._policy import PARAMS_BY_KIND, PolicyVersion, Source
from ._timeline import PolicySet, Timeline

Clock = Callable[[], pendulum.DateTime]

POLICY_TABLE = "policy_versions"
POLICY_CONTENT = ("id", "key", "kind", "valid_from", "valid_to", "recorded_at", "params", "source", "notes",
                  "in_force")
"""The columns whose values make a version what it is: equal values, same version (idempotent load)."""


def utc_now() -> pendulum.DateTime:
    return pendulum.now("UTC")


@attrs.frozen
class LoadReport:
    """What a load did: the ids it appended and the ids it found already stored with the same content."""

    added: tuple[str, ...]
    unchanged: tuple[str, ...]


@attrs.frozen
class Override:
    """A later-recorded version that replaced (part of) an earlier belief, over `valid_from..valid_to`."""

    by: str
    from_recorded_at: pendulum.DateTime
    valid_from: pendulum.DateTime
    valid_to: pendulum.DateTime | None


@attrs.frozen
class HistoryEntry:
    """One version of a key with every later-recorded version that overrides part of it."""

    version: PolicyVersion
    overridden_by: tuple[Override, ...]


@attrs.frozen
class ChainBreak:
    table: str
    seq: int
    record_id: str
    reason: str


@attrs.frozen
class VerifyReport:
    """The result of recomputing every hash chain: rows checked per table and the first row that fails."""

    rows_checked: dict[str, int]
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


@attrs.define
class ChainedTable:
    """An append-only table whose rows carry `prev_hash` and `row_hash` over the listed content columns."""

    name: str
    columns: dict[str, type]
    content: tuple[str, ...]
    label: str


CHAINED_TABLES: list[ChainedTable] = [
    ChainedTable(
        POLICY_TABLE,
        {"seq": int, "id": str, "key": str, "kind": str, "valid_from": str, "valid_to": str, "recorded_at": str,
         "params": str, "source": str, "notes": str, "in_force": int, "loaded_at": str, "prev_hash": str,
         "row_hash": str},
        (*POLICY_CONTENT, "loaded_at"),
        "id",
    ),
]


def _ensure_schema(db: sqlite_utils.Database) -> None:
    for spec in CHAINED_TABLES:
        if not db[spec.name].exists():
            db.table(spec.name).create(spec.columns, pk="seq", not_null={"row_hash", "prev_hash"})
        for action in ("UPDATE", "DELETE"):
            db.execute(
                f"CREATE TRIGGER IF NOT EXISTS {spec.name}_no_{action.lower()} BEFORE {action} ON {spec.name} "
                f"BEGIN SELECT RAISE(ABORT, '{spec.name} is append-only: {action} refused; "
                "history is never rewritten, add a new version instead'); END"
            )
    db.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {POLICY_TABLE}_id ON {POLICY_TABLE}(id)")
    db.execute(f"CREATE INDEX IF NOT EXISTS {POLICY_TABLE}_key ON {POLICY_TABLE}(key, recorded_at)")


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


def _version_from_row(row: dict[str, Any]) -> PolicyVersion:
    params = json.loads(row["params"])
    return PolicyVersion(
        id=row["id"],
        key=row["key"],
        kind=row["kind"],
        valid_from=row["valid_from"],
        valid_to=row["valid_to"],
        recorded_at=row["recorded_at"],
        params=None if params is None else converter.structure(params, PARAMS_BY_KIND[row["kind"]]),
        source=converter.structure(json.loads(row["source"]), Source),
        notes=row["notes"],
        in_force=bool(row["in_force"]),
    )


class Store:
    """Policy versions (and, later, tenant facts) in one SQLite file, with an in-memory timeline over them."""

    def __init__(self, db: sqlite_utils.Database, clock: Clock = utc_now) -> None:
        self.db = db
        self._clock = clock
        db.execute("PRAGMA foreign_keys = ON")
        if db.conn.execute("PRAGMA database_list").fetchone()[2]:  # a file, not :memory:
            db.enable_wal()
        with db.atomic():
            _ensure_schema(db)
        self._timeline: Timeline | None = None

    @classmethod
    def open(cls, path: str | Path | None = None, *, clock: Clock = utc_now, bundled: bool = True) -> Store:
        """Open (or create) a store; a new store gets the bundled catalog unless `bundled` is false.

        `path=None` is an in-memory store: nothing touches the disk.
        """
        db = sqlite_utils.Database(memory=True) if path is None else sqlite_utils.Database(Path(path))
        store = cls(db, clock=clock)
        if bundled and store.db[POLICY_TABLE].count == 0:
            store.load([bundled_catalog_path()])
        return store

    def close(self) -> None:
        self.db.close()

    def now(self) -> pendulum.DateTime:
        return self._clock()

    # ---- loading ---------------------------------------------------------------------------------------

    def load(self, paths: Iterable[str | Path] = ()) -> LoadReport:
        """Load catalog files or folders (the bundled catalog when none is named). All or nothing."""
        chosen = [Path(path) for path in paths] or [bundled_catalog_path()]
        return self.load_versions(read_catalog(chosen))

    def load_versions(self, located: Sequence[LocatedVersion]) -> LoadReport:
        stored = {version.id: version for version in self.versions()}
        problems = check_versions(located, stored.values())
        if problems:
            raise InvalidRecordsError(problems)
        added: list[str] = []
        unchanged: list[str] = []
        new_rows: list[dict[str, Any]] = []
        for item in located:
            version = item.version
            if version.id in stored:
                if _policy_row(stored[version.id]) != _policy_row(version):
                    raise AppendOnlyError(version.id, item.file)
                if version.id not in unchanged:
                    unchanged.append(version.id)
                continue
            if version.id in added:
                continue
            added.append(version.id)
            new_rows.append(_policy_row(version))
        loaded_at = format_instant(self.now())
        with self.db.atomic():
            self._append(CHAINED_TABLES[0], [{**row, "loaded_at": loaded_at} for row in new_rows])
        self._timeline = None
        return LoadReport(tuple(added), tuple(unchanged))

    def _append(self, spec: ChainedTable, rows: Sequence[dict[str, Any]]) -> None:
        last = self.db.execute(f"SELECT row_hash FROM {spec.name} ORDER BY seq DESC LIMIT 1").fetchone()
        previous = last[0] if last else GENESIS
        for row in rows:
            digest = row_hash(previous, [row.get(column) for column in spec.content])
            self.db.table(spec.name).insert({**row, "prev_hash": previous, "row_hash": digest})
            previous = digest

    # ---- reading ---------------------------------------------------------------------------------------

    def versions(self) -> tuple[PolicyVersion, ...]:
        rows = self.db.query(f"SELECT * FROM {POLICY_TABLE} ORDER BY seq")
        return tuple(_version_from_row(row) for row in rows)

    @property
    def timeline(self) -> Timeline:
        if self._timeline is None:
            self._timeline = Timeline(self.versions())
        return self._timeline

    def policies(self, as_of: object, known_at: object = None) -> PolicySet:
        """The PolicySet in force at `as_of`, as known at `known_at` (default: now)."""
        at = to_instant(as_of, "as_of")
        known = self.now() if known_at is None else to_instant(known_at, "known_at")
        return self.timeline.policy_set(at, known)

    def history(self, key: str) -> tuple[HistoryEntry, ...]:
        """Every version of `key`, oldest belief first, each with the later versions that override it."""
        versions = [version for version in self.timeline.versions if version.key == key]
        if not versions:
            raise UnknownPolicyKeyError(key, self.timeline.keys())
        entries = []
        for version in versions:
            overrides = []
            for later in versions:
                if later.recorded_at <= version.recorded_at:
                    continue
                start = max(version.valid_from, later.valid_from)
                ends = [end for end in (version.valid_to, later.valid_to) if end is not None]
                end = min(ends) if ends else None
                if end is None or start < end:
                    overrides.append(Override(later.id, later.recorded_at, start, end))
            entries.append(HistoryEntry(version, tuple(overrides)))
        return tuple(entries)

    def verify(self) -> VerifyReport:
        """Recompute every chain from its first row; report the first row whose hash does not match."""
        checked: dict[str, int] = {}
        for spec in CHAINED_TABLES:
            previous = GENESIS
            count = 0
            for row in self.db.query(f"SELECT * FROM {spec.name} ORDER BY seq"):
                count += 1
                label = str(row.get(spec.label))
                if row["prev_hash"] != previous:
                    checked[spec.name] = count
                    reason = "prev_hash does not match the previous row's hash (a row was removed or reordered)"
                    return VerifyReport(checked, ChainBreak(spec.name, row["seq"], label, reason))
                expected = row_hash(previous, [row.get(column) for column in spec.content])
                if row["row_hash"] != expected:
                    checked[spec.name] = count
                    reason = "content does not match its row_hash (the row was edited after it was written)"
                    return VerifyReport(checked, ChainBreak(spec.name, row["seq"], label, reason))
                previous = row["row_hash"]
            checked[spec.name] = count
        return VerifyReport(checked, None)


def open(path: str | Path | None = None, *, clock: Clock = utc_now, bundled: bool = True) -> Store:
    """A store with the bundled catalog: in memory when `path` is None, else the SQLite file at `path`."""
    return Store.open(path, clock=clock, bundled=bundled)
