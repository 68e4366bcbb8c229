"""The store: SQLite through sqlite-utils, append-only, bitemporal, hash-chained. Part of the shell: it is
the one place (with the CLI) that reads the clock, and only when `known_at` is left to default to now.

Store opens the file, takes each write's transaction and keeps the timeline, tenant index and rate cards in
memory; what a load appends is _store_load's, explaining _store_explain's, a key's history _timeline's."""

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

import pendulum
import sqlite_utils

from ._calls import Call, call_from_mapping
from ._catalog import LocatedVersion, bundled_catalog_path, read_catalog
from ._chains import (
    LICENSE_TABLE,
    POLICY_TABLE,
    RATE_TABLE,
    STORE_TABLES,
    TENANT_TABLE,
    check_open,
    create_schema,
    reading,
    sqlite_errors,
    table_names,
    writing,
)
from ._convert import converter
from ._errors import NotAStoreError, StoreDamagedError
from ._explain import Comparison, Explanation
from ._instant import format_instant, to_instant
from ._ledger import PoolState
from ._policy import PARAMS_BY_KIND, PolicyVersion, Source
from ._ratecards import RateCard, RateCardEntry, entry_from_row, read_rate_card
from ._rater import BoundedPlanCache, Rater
from ._rating import Rating
from ._rules import PlanCache
from ._store_explain import compare_call, explain_under
from ._store_load import LoadReport, read_load, write_facts, write_rates, write_versions
from ._tenants import LicenseFact, TenantFact, TenantIndex
from ._timeline import HistoryEntry, PolicyChange, PolicySet, Timeline, diff_beliefs, diff_policy_sets, key_history
from ._upgrade import is_legacy, upgrade_legacy
from ._verify import VerifyReport, parse_digest
from ._verify import digest as chain_digest
from ._verify import verify as verify_chains

Clock = Callable[[], pendulum.DateTime]


def utc_now() -> pendulum.DateTime:
    return pendulum.now("UTC")


DEFAULT_BUSY_TIMEOUT = 30.0
"""Seconds a writer waits for another process's write to finish before it says the store is busy."""


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
        files = read_load(paths, tenants, licenses, rates)
        try:
            with writing(self.db.conn, self.path):
                versions = write_versions(self.db, files.versions, self.versions(), self.now)
                tenant_report = write_facts(self.db, files.tenants, files.licenses, self.now)
                rate_report = self._write_rates(files.rates, str(rates)) if rates else LoadReport((), ())
        finally:
            self._timeline = None
            self._tenant_index = None
            self._rate_card = None
        return LoadReport(versions.added + tenant_report.added + rate_report.added,
                          versions.unchanged + tenant_report.unchanged + rate_report.unchanged)

    def load_versions(self, located: Sequence[LocatedVersion]) -> LoadReport:
        with writing(self.db.conn, self.path):
            report = write_versions(self.db, located, self.versions(), self.now)
        self._timeline = None
        return report

    def load_tenant_facts(self, tenants: str | Path | None = None, licenses: str | Path | None = None) -> LoadReport:
        """Load a tenants file and/or a licenses file (CSV or JSON) in one transaction; all or nothing."""
        return self.load_all((), tenants, licenses)

    def add_tenant_facts(self, tenants: Iterable[TenantFact] = (), licenses: Iterable[LicenseFact] = ()) -> LoadReport:
        """Append tenant facts and licenses; identical rows are skipped, a changed row is refused."""
        with writing(self.db.conn, self.path):
            report = write_facts(self.db, [(fact, (None, None)) for fact in tenants],
                                 [(fact, (None, None)) for fact in licenses], self.now)
        self._tenant_index = None
        return report

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
        report = write_rates(self.db, entries, self.rate_cards().entries, file, self.now)
        self._rate_card = None
        return report

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
        return explain_under(self, self.timeline, target, as_of, known_at, earlier)

    def compare(self, call: Call | dict[str, Any], billed_at: object, known_at: object = None,
                earlier: Iterable[Call] = (), billed: dict[str, Any] | None = None) -> Comparison:
        """The call as known at `billed_at` and as known at `known_at` (default now), and why they differ."""
        earlier = list(earlier)
        target = call if isinstance(call, Call) else call_from_mapping(call)
        return compare_call(self, target, billed_at, known_at, earlier, billed)


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
        return key_history(self.timeline, key)


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
