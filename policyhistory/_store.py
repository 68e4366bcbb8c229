"""The store: SQLite through sqlite-utils, append-only, bitemporal, hash-chained. Part of the shell: it is
the one place (with the CLI) that reads the clock, and only when `known_at` is left to default to now."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import pendulum
import sqlite_utils

from ._calls import Call, call_from_mapping
from ._catalog import LocatedVersion, bundled_catalog_path, check_versions, read_catalog
from ._chains import CHAINED_TABLES as CHAINED_TABLES  # re-exported: the chains' specs live in _chains
from ._chains import (
    CHAINS,
    LICENSE_TABLE,
    POLICY_TABLE,
    RATE_TABLE,
    STORE_TABLES,
    TENANT_TABLE,
    TENANTS_TABLE,
    append,
    check_open,
    create_schema,
    reading,
    sqlite_errors,
    table_names,
    writing,
)
from ._chains import POLICY_CONTENT as POLICY_CONTENT
from ._chains import ChainedTable as ChainedTable
from ._convert import converter
from ._errors import (
    AppendOnlyError,
    InvalidRecordsError,
    NotAStoreError,
    PolicyHistoryError,
    Problem,
    StoreDamagedError,
    UnknownPolicyKeyError,
)
from ._explain import BUCKETS, Comparison, Explanation, compare, explanation
from ._instant import format_instant, month_of, to_instant
from ._ledger import PoolState
from ._policy import PARAMS_BY_KIND, PolicyVersion, Source
from ._ratecards import (
    RATE_IDENTITY,
    RateCard,
    RateCardEntry,
    ambiguities,
    entry_from_row,
    read_rate_card,
)
from ._rater import BoundedPlanCache, Rater
from ._rating import Rating
from ._rules import PlanCache
from ._tenants import LicenseFact, TenantFact, TenantIndex, read_facts_located
from ._timeline import PolicyChange, PolicySet, Timeline, diff_beliefs, diff_policy_sets
from ._upgrade import is_legacy, upgrade_legacy
from ._verify import VerifyReport, parse_digest
from ._verify import digest as chain_digest
from ._verify import verify as verify_chains

Clock = Callable[[], pendulum.DateTime]


def utc_now() -> pendulum.DateTime:
    return pendulum.now("UTC")


DEFAULT_BUSY_TIMEOUT = 30.0
"""Seconds a writer waits for another process's write to finish before it says the store is busy."""


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
    """One version of a key with every later-recorded version that overrides it."""

    version: PolicyVersion
    overridden_by: tuple[Override, ...]


TENANT_IDENTITY = ("tenant_id", "valid_from")
LICENSE_IDENTITY = ("tenant_id", "sku", "usage_location", "valid_from")
Place = tuple[str | None, int | None]
"""Where a fact was read (file, line), so that a refusal can name it."""


def _connect(path: Path | None, timeout: float) -> sqlite3.Connection:
    """A connection in autocommit mode: every transaction is ours, begun and ended explicitly."""
    conn = sqlite3.connect(":memory:" if path is None else str(path), timeout=timeout, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _check_file(path: Path) -> None:
    """Refuse what SQLite would misread: a device (/dev/null), a folder, an empty file (a truncated store)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    except OSError as error:
        raise NotAStoreError(path, f"it cannot be read ({error.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise NotAStoreError(path, "it is not a regular file")
    if info.st_size == 0:
        raise StoreDamagedError(path, "the file is empty (0 bytes): a store is never empty, so it was truncated; "
                                "restore it from a backup, or remove it to start a new store")


def _create(path: Path, clock: Clock, bundled: bool, timeout: float) -> None:
    """Build a new store beside `path` and link it into place: a second process creating the same store at
    the same moment finds either no file or a complete store, never a half-made one (os.link never replaces
    a file; the loser of the race opens the winner's store)."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    os.close(handle)
    try:
        conn = _connect(Path(temporary), timeout)
        try:
            conn.execute("PRAGMA journal_mode = DELETE")
            store = Store(sqlite_utils.Database(conn), clock=clock, path=path)
            store._initialise()
            if bundled:
                store.load([bundled_catalog_path()])
        finally:
            conn.close()
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


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
    """Policy versions and tenant facts in one SQLite file, with an in-memory timeline over them.

    Every write is one transaction taken at its start (BEGIN IMMEDIATE): concurrent writers wait for each
    other (up to the busy timeout, then StoreBusyError) and readers never wait (WAL).
    """

    def __init__(self, db: sqlite_utils.Database, clock: Clock = utc_now, *, path: Path | None = None) -> None:
        self.db = db
        self.path = path
        self._clock = clock
        self._timeline: Timeline | None = None
        self._tenant_index: TenantIndex | None = None
        self._rate_card: RateCard | None = None
        self._plans: tuple[Timeline, PlanCache] | None = None

    def _initialise(self) -> None:
        with writing(self.db.conn, self.path):
            create_schema(self.db.conn, format_instant(self.now()))

    @classmethod
    def open(cls, path: str | Path | None = None, *, clock: Clock = utc_now, bundled: bool = True,
             busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Store:
        """Open (or create) a store; a new store gets the bundled catalog unless `bundled` is false.

        `path=None` is an in-memory store: nothing touches the disk. A store made by policyhistory 0.1 is
        upgraded in place, keeping every row (see the README). A store that lost a table or every row of a
        table, or a file truncated to nothing, is refused (StoreDamagedError), never silently recreated.
        """
        if path is None:
            store = cls(sqlite_utils.Database(_connect(None, busy_timeout)), clock=clock)
            store._initialise()
            if bundled:
                store.load([bundled_catalog_path()])
            return store
        path = Path(path)
        _check_file(path)
        if not path.exists() and path.parent.is_dir():
            _create(path, clock, bundled, busy_timeout)
        conn = _connect(path, busy_timeout)
        try:
            store = cls._open_file(conn, path, clock, bundled)
        except BaseException:
            conn.close()
            raise
        return store

    @classmethod
    def _open_file(cls, conn: sqlite3.Connection, path: Path, clock: Clock, bundled: bool) -> Store:
        try:
            tables = table_names(conn)
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                with sqlite_errors(path):
                    raise
            raise NotAStoreError(path, str(error)) from None
        except sqlite3.DatabaseError as error:
            raise NotAStoreError(path, str(error)) from None
        # Refused before our tables are added: tables of another program's, none of ours.
        if tables and not set(tables) & set(STORE_TABLES):
            raise NotAStoreError(path, f"it holds other tables ({', '.join(sorted(tables)[:5])})")
        store = cls(sqlite_utils.Database(conn), clock=clock, path=path)
        with sqlite_errors(path):
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            if not tables:  # an SQLite file without tables: made a store in place
                store._initialise()
            elif is_legacy(conn):
                upgrade_legacy(conn, path, format_instant(store.now()))
            if check_open(conn, path):  # chains this version added since the store was made
                store._initialise()
        if bundled and not store.db.conn.execute(f"SELECT 1 FROM {POLICY_TABLE} LIMIT 1").fetchone():
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

    def load_all(self, paths: Iterable[str | Path] = (), tenants: str | Path | None = None,
                 licenses: str | Path | None = None, rates: str | Path | None = None) -> LoadReport:
        """Load catalog files (none: no catalog), a tenants file, a licenses file and a rate card in ONE
        transaction: all of it is written, or (any problem in any file) nothing. Every file's problems are
        listed together."""
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
        try:
            with writing(self.db.conn, self.path):
                versions = self._write_versions(located)
                tenant_report = self._write_facts(facts["tenants"], facts["licenses"])
                rate_report = self._write_rates(entries, str(rates)) if rates else LoadReport((), ())
        finally:
            self._timeline = None
            self._tenant_index = None
            self._rate_card = None
        return LoadReport(versions.added + tenant_report.added + rate_report.added,
                          versions.unchanged + tenant_report.unchanged + rate_report.unchanged)

    def load_versions(self, located: Sequence[LocatedVersion]) -> LoadReport:
        with writing(self.db.conn, self.path):
            report = self._write_versions(located)
        self._timeline = None
        return report

    def _write_versions(self, located: Sequence[LocatedVersion]) -> LoadReport:
        """Inside a write transaction: what is stored is read under the write lock, so that two processes
        loading the same catalog at once append it once."""
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
                    raise AppendOnlyError(version.id, item.file, item.line)
                if version.id not in unchanged:
                    unchanged.append(version.id)
                continue
            if version.id in added:
                continue
            added.append(version.id)
            new_rows.append(_policy_row(version))
        loaded_at = format_instant(self.now())
        append(self.db.conn, CHAINS[POLICY_TABLE], [{**row, "loaded_at": loaded_at} for row in new_rows])
        return LoadReport(tuple(added), tuple(unchanged))

    def _append(self, spec: ChainedTable, rows: Sequence[dict[str, Any]]) -> None:
        """Append rows to a chain; inside a write transaction (`_chains.writing`)."""
        append(self.db.conn, spec, rows)

    def load_tenant_facts(self, tenants: str | Path | None = None, licenses: str | Path | None = None) -> LoadReport:
        """Load a tenants file and/or a licenses file (CSV or JSON) in one transaction; all or nothing."""
        return self.load_all((), tenants, licenses)

    def add_tenant_facts(self, tenants: Iterable[TenantFact] = (), licenses: Iterable[LicenseFact] = ()) -> LoadReport:
        """Append tenant facts and licenses; identical rows are skipped, a changed row is refused."""
        with writing(self.db.conn, self.path):
            report = self._write_facts([(fact, (None, None)) for fact in tenants],
                                       [(fact, (None, None)) for fact in licenses])
        self._tenant_index = None
        return report

    def _write_facts(self, tenants: Sequence[tuple[TenantFact, Place]],
                     licenses: Sequence[tuple[LicenseFact, Place]]) -> LoadReport:
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
                      for row in self.db.query(f"SELECT * FROM {spec.name}")}
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
        loaded_at = format_instant(self.now())
        known = {row[0] for row in self.db.conn.execute(f"SELECT tenant_id FROM {TENANTS_TABLE}")}
        new_tenants = sorted({row["tenant_id"] for rows in fresh.values() for row in rows} - known)
        append(self.db.conn, CHAINS[TENANTS_TABLE], [{"tenant_id": t, "loaded_at": loaded_at} for t in new_tenants])
        for name in (TENANT_TABLE, LICENSE_TABLE):
            append(self.db.conn, CHAINS[name], [{**row, "loaded_at": loaded_at} for row in fresh.get(name, [])])
        return LoadReport(tuple(added), tuple(unchanged))

    def load_rates(self, path: str | Path) -> LoadReport:
        """Append a rate card file (CSV or JSON; see _ratecards); all or nothing. An entry already stored with
        the same content is skipped; the same destination, valid_from and recorded_at with another price is
        refused (history is append-only: record a correction later)."""
        return self.add_rates(read_rate_card(Path(path)), str(path))

    def add_rates(self, entries: Iterable[RateCardEntry], file: str | None = None) -> LoadReport:
        with writing(self.db.conn, self.path):
            report = self._write_rates(list(entries), file)
        return report

    def _write_rates(self, entries: Sequence[RateCardEntry], file: str | None) -> LoadReport:
        """Inside a write transaction: the stored entries are read under the write lock."""
        self._rate_card = None
        stored = {tuple(entry.row()[c] for c in RATE_IDENTITY): entry.row() for entry in self.rate_cards().entries}
        added: list[str] = []
        unchanged: list[str] = []
        fresh: list[dict[str, Any]] = []
        kept: list[RateCardEntry] = list(self.rate_cards().entries)
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
        loaded_at = format_instant(self.now())
        append(self.db.conn, CHAINS[RATE_TABLE], [{**row, "loaded_at": loaded_at} for row in fresh])
        self._rate_card = None
        return LoadReport(tuple(added), tuple(unchanged))

    def refresh(self) -> None:
        """Forget what the store keeps in memory (its timeline, tenant index and rate cards), to read them
        afresh: another connection (another process) has written to the file since."""
        self._timeline = None
        self._tenant_index = None
        self._rate_card = None

    def rate_cards(self) -> RateCard:
        """Every rate card entry stored, in memory: `.resolve(country, number_type, at, known_at)`."""
        if self._rate_card is None:
            rows = self.db.query(f"SELECT * FROM {RATE_TABLE} ORDER BY seq")
            self._rate_card = RateCard(entry_from_row(row) for row in rows)
        return self._rate_card

    @property
    def tenant_index(self) -> TenantIndex:
        if self._tenant_index is None:
            with reading(self.db.conn, self.path):
                tenants = [TenantFact(r["tenant_id"], r["valid_from"], r["country"],
                                      bool(r["communications_credits"]))
                           for r in self.db.query(f"SELECT * FROM {TENANT_TABLE} ORDER BY seq")]
                rows = self.db.query(f"SELECT * FROM {LICENSE_TABLE} ORDER BY seq")
                licenses = [LicenseFact(r["tenant_id"], r["valid_from"], r["sku"], r["usage_location"],
                                        r["purchased"], r["assigned"]) for r in rows]
            self._tenant_index = TenantIndex(tenants, licenses)
        return self._tenant_index

    # ---- rating ----------------------------------------------------------------------------------------

    def rater(self, as_of: object = None, known_at: object = None, pool_state: PoolState | None = None, *,
              timeline: Timeline | None = None) -> Rater:
        """A Rater over this store's policies and tenant facts, as known at `known_at` (default: now).

        `timeline` replaces the store's own, for a counterfactual (the catalog less one version, say).
        """
        return Rater(self.timeline if timeline is None else timeline, self.tenant_index,
                     known_at=self.now() if known_at is None else to_instant(known_at, "known_at"),
                     as_of=None if as_of is None else to_instant(as_of, "as_of"), pool_state=pool_state,
                     plans=self.plan_cache() if timeline is None else None)

    def plan_cache(self) -> PlanCache:
        """The plans of this store's timeline, shared by every Rater over it (a service rates one call a
        request: each would plan its kind again). A plan depends on the policy set, the tenant's country and
        credits and the call's kind, all in PlanCache's key, and on the timeline (a refusal says when a key
        was first recorded): a new timeline (a load, another process's write) starts a new cache."""
        timeline = self.timeline
        if self._plans is None or self._plans[0] is not timeline:
            self._plans = (timeline, BoundedPlanCache())
        return self._plans[1]

    def rate(self, call: Call | dict[str, Any], as_of: object = None, known_at: object = None,
             pool_state: PoolState | None = None) -> Rating:
        """Rate one call: by default under the rules in force at its start, as known now. A given `pool_state`
        is read and then charged with this call's draw (a call can be charged once)."""
        return self.rater(as_of, known_at, pool_state).rate(call)

    # ---- explaining ------------------------------------------------------------------------------------

    def explain(self, call: Call | dict[str, Any], as_of: object = None, known_at: object = None,
                earlier: Iterable[Call] = ()) -> Explanation:
        """Rate `call` after every call of `earlier` that precedes it in its tenant's month (so that its pool
        use is right) and explain the rating: facts, steps, pool, versions and their sources."""
        target = call if isinstance(call, Call) else call_from_mapping(call)
        return self._explain_with(self.timeline, target, as_of, known_at, earlier)

    def _explain_with(self, timeline: Timeline, target: Call, as_of: object, known_at: object,
                      earlier: Iterable[Call]) -> Explanation:
        rater = self.rater(as_of, known_at, timeline=timeline)
        month = month_of(target.start)
        before = sorted((c for c in earlier if c.tenant_id == target.tenant_id and month_of(c.start) == month
                         and (c.start, c.key) < (target.start, target.key)),
                        key=lambda c: (c.start, c.key))
        earlier_ratings = []
        for other in before:
            try:
                earlier_ratings.append(rater.rate(other))
            except PolicyHistoryError:
                continue  # a call that cannot be rated draws on no pool; rerate reports it
        return explanation(target, rater.rate(target), rater.known_at, timeline, earlier_ratings)

    def compare(self, call: Call | dict[str, Any], billed_at: object, known_at: object = None,
                earlier: Iterable[Call] = (), billed: dict[str, Any] | None = None) -> Comparison:
        """The call as known at `billed_at` and as known at `known_at` (default now), and why they differ."""
        earlier = list(earlier)
        target = call if isinstance(call, Call) else call_from_mapping(call)
        then = self.explain(target, known_at=to_instant(billed_at, "billed_at"), earlier=earlier)
        now = self.explain(target, known_at=known_at, earlier=earlier)

        def decisive(version: PolicyVersion) -> bool:
            """Counterfactual: knowing of this version's key only what was known when billed, would today's
            answer move? (Per key, not per version: a belief restated by later records, as the catalog's are
            at each page's date and again from the French copies, is decisive although no single record is.)"""
            without = Timeline(v for v in self.timeline.versions
                               if v.key != version.key or v.recorded_at <= then.known_at)
            other = self._explain_with(without, target, None, now.known_at, earlier).rating
            return any(getattr(other, bucket) != getattr(now.rating, bucket) for bucket in BUCKETS)

        def first_changed(version: PolicyVersion) -> list[PolicyVersion]:
            """Knowing of this version's key what was recorded up to each later recording date in turn (all
            else as known now): the versions of the key recorded on the first date that gives today's answer
            and cover the instant the call is rated at."""
            at = now.rating.as_of or target.start
            recorded = sorted({v.recorded_at for v in self.timeline.versions
                               if v.key == version.key and then.known_at < v.recorded_at <= version.recorded_at})
            for moment in recorded:
                upto = Timeline(v for v in self.timeline.versions if v.key != version.key or v.recorded_at <= moment)
                other = self._explain_with(upto, target, None, now.known_at, earlier).rating
                if all(getattr(other, bucket) == getattr(now.rating, bucket) for bucket in BUCKETS):
                    return [v for v in self.timeline.versions
                            if v.key == version.key and v.recorded_at == moment and v.covers(at)]
            return []

        return compare(then, now, billed, decisive, first_changed)

    def diff(self, first: object, second: object, *, axis: str = "as_of",
             at: object = None) -> tuple[PolicyChange, ...]:
        """What changes between two valid dates (axis "as_of", known at `at`, default now), or between two
        knowledge dates (axis "known_at": over all valid time, or at the instant `at` when given)."""
        a, b = to_instant(first, axis), to_instant(second, axis)
        if axis == "as_of":
            known = self.now() if at is None else to_instant(at, "known_at")
            return diff_policy_sets(self.timeline.policy_set(a, known), self.timeline.policy_set(b, known))
        if at is not None:
            instant = to_instant(at, "as_of")
            return diff_policy_sets(self.timeline.policy_set(instant, a), self.timeline.policy_set(instant, b))
        return diff_beliefs(self.timeline, a, b)

    # ---- reading ---------------------------------------------------------------------------------------

    def versions(self) -> tuple[PolicyVersion, ...]:
        with sqlite_errors(self.path):
            rows = list(self.db.query(f"SELECT * FROM {POLICY_TABLE} ORDER BY seq"))
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

    def verify(self, digest: str | dict[str, Any] | None = None) -> VerifyReport:
        """Check the file, recompute every chain from its first row, compare each chain's head with the one
        the store recorded; with `digest` (what `digest()` returned, or its JSON text), also that the store
        still holds exactly the rows it anchors, as the first rows of each chain. The report names the
        first thing that fails; an unreadable file is a verdict too, never an exception."""
        anchored = None if digest is None else parse_digest(digest if isinstance(digest, str) else
                                                            json.dumps(digest))
        with reading(self.db.conn, self.path):
            return verify_chains(self.db.conn, anchored)

    def digest(self) -> dict[str, Any]:
        """The head of each chain (its rows and last hash), one sha256 over them, and the time: keep it outside
        the store (a ticket, an e-mail, a git repository) and `verify(digest=...)` later proves that the store
        still holds exactly that history, with only appends since."""
        return chain_digest(self.db.conn, self.path, format_instant(self.now()))


def open(path: str | Path | None = None, *, clock: Clock = utc_now, bundled: bool = True,
         busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Store:
    """A store with the bundled catalog: in memory when `path` is None, else the SQLite file at `path`."""
    return Store.open(path, clock=clock, bundled=bundled, busy_timeout=busy_timeout)


def _differences(stored: dict[str, Any], given: dict[str, Any]) -> str:
    return ", ".join(f"{name} {stored.get(name)!r} stored, {value!r} given" for name, value in given.items()
                     if stored.get(name) != value)
