"""The store: SQLite through sqlite-utils, append-only, bitemporal, hash-chained. Part of the shell: it is
the one place (with the CLI) that reads the clock, and only when `known_at` is left to default to now."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import pendulum
import sqlite_utils

from ._calls import Call, call_from_mapping, classify_destination
from ._catalog import LocatedVersion, bundled_catalog_path, check_versions, read_catalog
from ._chain import GENESIS, row_hash
from ._convert import converter
from ._errors import AppendOnlyError, InvalidRecordsError, NotAStoreError, PolicyHistoryError, UnknownPolicyKeyError
from ._explain import BUCKETS, Comparison, Explanation, compare, explanation
from ._instant import format_instant, month_of, to_instant
from ._ledger import PoolState
from ._policy import PARAMS_BY_KIND, PolicyVersion, Source
from ._ratecards import (
    RATE_FIELDS,
    RATE_IDENTITY,
    RateCard,
    RateCardEntry,
    ambiguities,
    entry_from_row,
    read_rate_card,
)
from ._rating import Rating
from ._rules import PlanCache, rate_call
from ._tenants import LicenseFact, TenantFact, TenantIndex, read_facts
from ._timeline import PolicyChange, PolicySet, Timeline, diff_beliefs, diff_policy_sets, micros

Clock = Callable[[], pendulum.DateTime]

POLICY_TABLE = "policy_versions"
TENANT_TABLE = "tenant_facts"
LICENSE_TABLE = "licenses"
RATE_TABLE = "rate_cards"
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
    ChainedTable(
        TENANT_TABLE,
        {"seq": int, "tenant_id": str, "valid_from": str, "country": str, "communications_credits": int,
         "loaded_at": str, "prev_hash": str, "row_hash": str},
        ("tenant_id", "valid_from", "country", "communications_credits", "loaded_at"),
        "tenant_id",
    ),
    ChainedTable(
        LICENSE_TABLE,
        {"seq": int, "tenant_id": str, "valid_from": str, "sku": str, "usage_location": str, "purchased": int,
         "assigned": int, "loaded_at": str, "prev_hash": str, "row_hash": str},
        ("tenant_id", "valid_from", "sku", "usage_location", "purchased", "assigned", "loaded_at"),
        "tenant_id",
    ),
]
CHAINED_TABLES.append(ChainedTable(  # the user's rate cards (see _ratecards): one more history, chained alike
    RATE_TABLE,
    {"seq": int, **dict.fromkeys(RATE_FIELDS, str), "loaded_at": str, "prev_hash": str, "row_hash": str},
    (*RATE_FIELDS, "loaded_at"),
    "destination_country",
))
TENANT_IDENTITY = ("tenant_id", "valid_from")
LICENSE_IDENTITY = ("tenant_id", "sku", "usage_location", "valid_from")


def _ensure_schema(db: sqlite_utils.Database) -> None:
    if not db["tenants"].exists():
        db.table("tenants").create({"tenant_id": str}, pk="tenant_id")
    for spec in CHAINED_TABLES:
        if not db[spec.name].exists():
            foreign_keys = [("tenant_id", "tenants", "tenant_id")] if "tenant_id" in spec.columns else None
            db.table(spec.name).create(spec.columns, pk="seq", not_null={"row_hash", "prev_hash"},
                                       foreign_keys=foreign_keys)
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
        self._tenant_index: TenantIndex | None = None
        self._rate_card: RateCard | None = None

    @classmethod
    def open(cls, path: str | Path | None = None, *, clock: Clock = utc_now, bundled: bool = True) -> Store:
        """Open (or create) a store; a new store gets the bundled catalog unless `bundled` is false.

        `path=None` is an in-memory store: nothing touches the disk.
        """
        db = sqlite_utils.Database(memory=True) if path is None else sqlite_utils.Database(Path(path))
        # Refused before our tables are added: not SQLite, or tables of another program's, none of ours.
        try:
            tables = db.table_names()
        except sqlite3.DatabaseError as error:
            db.close()
            raise NotAStoreError(path, str(error)) from None
        if tables and POLICY_TABLE not in tables:
            db.close()
            raise NotAStoreError(path, f"it holds other tables ({', '.join(sorted(tables)[:5])})")
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

    def load_tenant_facts(self, tenants: str | Path | None = None, licenses: str | Path | None = None) -> LoadReport:
        """Load a tenants file and/or a licenses file (CSV or JSON) in one transaction; all or nothing."""
        tenant_facts = read_facts(Path(tenants), "tenants") if tenants else []
        license_facts = read_facts(Path(licenses), "licenses") if licenses else []
        return self.add_tenant_facts(tenant_facts, license_facts)  # type: ignore[arg-type]

    def add_tenant_facts(self, tenants: Iterable[TenantFact] = (), licenses: Iterable[LicenseFact] = ()) -> LoadReport:
        """Append tenant facts and licenses; identical rows are skipped, a changed row is refused."""
        tenant_rows = [{"tenant_id": f.tenant_id, "valid_from": format_instant(f.valid_from), "country": f.country,
                        "communications_credits": int(f.communications_credits)} for f in tenants]
        license_rows = [{"tenant_id": f.tenant_id, "valid_from": format_instant(f.valid_from), "sku": f.sku,
                         "usage_location": f.usage_location, "purchased": f.purchased, "assigned": f.assigned}
                        for f in licenses]
        added: list[str] = []
        unchanged: list[str] = []
        fresh: dict[str, list[dict[str, Any]]] = {}
        for spec, rows, identity in ((CHAINED_TABLES[1], tenant_rows, TENANT_IDENTITY),
                                     (CHAINED_TABLES[2], license_rows, LICENSE_IDENTITY)):
            content = [column for column in spec.content if column != "loaded_at"]
            stored = {tuple(row[c] for c in identity): {c: row[c] for c in content}
                      for row in self.db.query(f"SELECT * FROM {spec.name}")}
            for row in rows:
                label = f"{spec.name} " + "/".join(str(row[c]) for c in identity)
                existing = stored.get(tuple(row[c] for c in identity))
                if existing is not None:
                    if existing != row:
                        raise AppendOnlyError(label)
                    unchanged.append(label)
                    continue
                stored[tuple(row[c] for c in identity)] = row
                fresh.setdefault(spec.name, []).append(row)
                added.append(label)
        loaded_at = format_instant(self.now())
        with self.db.atomic():
            new_tenants = {row["tenant_id"] for rows in fresh.values() for row in rows}
            self.db.table("tenants").insert_all(({"tenant_id": t} for t in sorted(new_tenants)), ignore=True)
            for spec in CHAINED_TABLES[1:]:
                self._append(spec, [{**row, "loaded_at": loaded_at} for row in fresh.get(spec.name, [])])
        self._tenant_index = None
        return LoadReport(tuple(added), tuple(unchanged))

    def load_rates(self, path: str | Path) -> LoadReport:
        """Append a rate card file (CSV or JSON; see _ratecards); all or nothing. An entry already stored with
        the same content is skipped; the same destination, valid_from and recorded_at with another price is
        refused (history is append-only: record a correction later)."""
        return self.add_rates(read_rate_card(Path(path)), str(path))

    def add_rates(self, entries: Iterable[RateCardEntry], file: str | None = None) -> LoadReport:
        spec = next(table for table in CHAINED_TABLES if table.name == RATE_TABLE)
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
        with self.db.atomic():
            self._append(spec, [{**row, "loaded_at": loaded_at} for row in fresh])
        self._rate_card = None
        return LoadReport(tuple(added), tuple(unchanged))

    def rate_cards(self) -> RateCard:
        """Every rate card entry stored, in memory: `.resolve(country, number_type, at, known_at)`."""
        if self._rate_card is None:
            rows = self.db.query(f"SELECT * FROM {RATE_TABLE} ORDER BY seq")
            self._rate_card = RateCard(entry_from_row(row) for row in rows)
        return self._rate_card

    @property
    def tenant_index(self) -> TenantIndex:
        if self._tenant_index is None:
            tenants = [TenantFact(r["tenant_id"], r["valid_from"], r["country"], bool(r["communications_credits"]))
                       for r in self.db.query(f"SELECT * FROM {TENANT_TABLE} ORDER BY seq")]
            rows = self.db.query(f"SELECT * FROM {LICENSE_TABLE} ORDER BY seq")
            licenses = [LicenseFact(r["tenant_id"], r["valid_from"], r["sku"], r["usage_location"], r["purchased"],
                                    r["assigned"]) for r in rows]
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
                     as_of=None if as_of is None else to_instant(as_of, "as_of"), pool_state=pool_state)

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

        return compare(then, now, billed, decisive)

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


class Rater:
    """Rates calls one after another, carrying pool state between them; `rate_all` takes them in start order.

    The policy set for each call is resolved at `as_of` (default: the call's own start) as known at
    `known_at`; tenant facts and pool months are always those of the call's start.
    """

    def __init__(self, timeline: Timeline, tenants: TenantIndex, *, known_at: pendulum.DateTime,
                 as_of: pendulum.DateTime | None = None, pool_state: PoolState | None = None) -> None:
        self.timeline = timeline
        self.tenants = tenants
        self.known_at = known_at
        self.as_of = as_of
        self.pool_state = PoolState() if pool_state is None else pool_state
        self._known_at_us = micros(known_at)
        self._as_of_us = None if as_of is None else micros(as_of)
        self.plans = PlanCache()

    def rate(self, call: Call | dict[str, Any]) -> Rating:
        if not isinstance(call, Call):
            call = call_from_mapping(call)
        at = call.start if self.as_of is None else self.as_of  # not `or`: the epoch is a valid as_of
        start_us = micros(call.start)
        policies = self.timeline.policy_set_us(start_us if self._as_of_us is None else self._as_of_us,
                                               self._known_at_us)
        tenant = self.tenants.snapshot_us(call.tenant_id, start_us)
        plan = self.plans.plan(policies, tenant.tenant, call.call_type, classify_destination(call.destination),
                               call.licenses, call.usage_location, call.carrier)
        rating = rate_call(call, policies, tenant, self.pool_state, as_of=at, known_at=self.known_at, plan=plan)
        self.pool_state.apply(call.tenant_id, rating, call.key)
        return rating

    def rate_all(self, calls: Sequence[Call | dict[str, Any]]) -> list[Rating]:
        """Rate calls (Calls, or dicts as `rate` takes them) in start order (ties by call key: the UsageId
        where the layout has one, else the call id), whatever their order here; ratings come back in the
        order the calls were given."""
        built = [call if isinstance(call, Call) else call_from_mapping(call) for call in calls]
        order = sorted(range(len(built)), key=lambda i: (built[i].start, built[i].key))
        ratings: list[Rating | None] = [None] * len(built)
        for index in order:
            ratings[index] = self.rate(built[index])
        return [rating for rating in ratings if rating is not None]


def open(path: str | Path | None = None, *, clock: Clock = utc_now, bundled: bool = True) -> Store:
    """A store with the bundled catalog: in memory when `path` is None, else the SQLite file at `path`."""
    return Store.open(path, clock=clock, bundled=bundled)
