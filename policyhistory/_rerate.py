"""Bulk re-rating: every input row comes out, rated or rejected with its reason, in input order.

Rows are spilled to a scratch SQLite file, sorted there by (tenant, start, call id) so that pools see
calls in start order whatever the input order, rated one tenant at a time (pool state is dropped when a
tenant is done, so memory stays bounded), and streamed back out in input order.
"""

from __future__ import annotations

import json
import pickle
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pendulum

from ._calls import Call
from ._errors import InvalidFieldError, PolicyHistoryError
from ._instant import format_instant
from ._layouts import CallRow, detect_layout, own_row, teams_row
from ._rating import PoolState, Rating
from ._rows import read_rows
from ._store import Store
from ._tenants import TenantIndex, TenantSnapshot
from ._timeline import micros

_ENCODE = json.JSONEncoder(check_circular=False).encode  # records are flat dicts we build: no cycles
Progress = Callable[[str, int, int | None], None]
"""Told (stage, rows done, rows in all or None while reading) every 10,000 rows."""
TENANT_WIDE = ("audio_conferencing", "audio_conferencing_ppm", "communications_credits")
OUTPUT_COLUMNS = ("file", "line", "call_id", "tenant_id", "start", "call_type", "outcome", "billable_minutes",
                  "pool_minutes", "credit_minutes", "uncovered_minutes", "destination_country", "number_type", "pool",
                  "pool_capacity", "pool_used_before", "pool_used_after", "policy_versions", "alerts", "warnings",
                  "billed_outcome", "billed_minutes", "billed_charge", "billed_currency", "changed", "change", "error")


def infer_licenses(snapshot: TenantSnapshot, usage_location: str | None, given: tuple[str, ...],
                   capability: str | None) -> tuple[str, ...]:
    """The Teams export names only the license that carried the call (Capability), not the user's licenses.

    Our reading: a user holds the tenant-wide kinds of license (Audio Conferencing, Communications Credits)
    the tenant has assigned in the user's usage location at the call's start; per-user add-ons (the US/CA
    dial-out minutes, a Calling Plan) only when the Capability names them, since a call placed under one
    would have been carried by it. A pay-per-minute Capability means no subscription.
    """
    skus = {fact.sku for fact in snapshot.licenses
            if fact.assigned > 0 and fact.sku in TENANT_WIDE
            and (usage_location is None or fact.usage_location == usage_location)}
    skus |= set(given)
    if capability == "MCOMEETACPEA":
        skus.discard("audio_conferencing")
    return tuple(sorted(skus))


def with_licenses(row: CallRow, call: Call, tenants: TenantIndex) -> Call:
    """The call with the licenses its layout implies (inferred for the Teams export, see infer_licenses)."""
    if not row.infer_licenses:
        return call
    snapshot = tenants.snapshot(call.tenant_id, call.start)
    return attrs.evolve(call, licenses=infer_licenses(snapshot, call.usage_location, call.licenses, row.capability))


@attrs.frozen
class InputRow:
    """One row of an input file: read into a call (with what was billed), or the error that stopped it."""

    file: str
    line: int
    row: CallRow | None
    call: Call | None
    error: PolicyHistoryError | None
    raw_call_id: object = None

    @property
    def call_id(self) -> object:
        return self.call.call_id if self.call is not None else self.raw_call_id


@attrs.define
class PoolMonth:
    capacity: int = 0
    used: int = 0
    alerts: list[str] = attrs.Factory(list)


@attrs.define
class RerateSummary:
    """What a run did: rows in, rated, rejected, changed; minutes per outcome; pools per tenant and month."""

    known_at: pendulum.DateTime | None = None
    as_of: pendulum.DateTime | None = None
    rows: int = 0
    rated: int = 0
    rejected: int = 0
    changed: int = 0
    minutes: dict[str, int] = attrs.Factory(dict)
    pools: dict[tuple[str, str, str, str], PoolMonth] = attrs.Factory(dict)

    def add(self, rating: Rating, tenant_id: str, changed: bool | None) -> None:
        self.rated += 1
        self.changed += bool(changed)
        self.minutes[rating.outcome] = self.minutes.get(rating.outcome, 0) + rating.billable_minutes
        if rating.pool is not None:
            key = rating.pool.key
            month = self.pools.setdefault((tenant_id, key.pool, key.month, key.counter), PoolMonth())
            month.capacity = rating.pool.capacity
            month.used = max(month.used, rating.pool.used_after)
            month.alerts.extend(rating.alerts)

    def lines(self) -> list[str]:
        lines = [f"rows {self.rows}: rated {self.rated}, rejected {self.rejected}, changed {self.changed}"]
        if self.known_at is not None:
            rules = f"the rules of {format_instant(self.as_of)}" if self.as_of else "the rules of each call's start"
            lines.append(f"rated under {rules}, as known at {format_instant(self.known_at)}")
        lines += [f"  {outcome}: {minutes} min" for outcome, minutes in sorted(self.minutes.items())]
        if self.pools:
            lines.append("pools (tenant, pool, month, counter: used / capacity, alerts):")
        for (tenant, pool, month, counter), use in sorted(self.pools.items()):
            alerts = ", alerts: " + ", ".join(a.split(" of pool")[0] + " (" + a.rsplit("(", 1)[1] for a in use.alerts) \
                if use.alerts else ""
            lines.append(f"  {tenant} {pool} {month} {counter}: {use.used} / {use.capacity}{alerts}")
        return lines


def _record_of(row: CallRow, call: Call, rating: Rating) -> dict[str, Any]:
    pool = rating.pool
    record: dict[str, Any] = {
        "call_id": call.call_id, "tenant_id": call.tenant_id, "start": format_instant(call.start),
        "call_type": call.call_type, "outcome": rating.outcome, "billable_minutes": rating.billable_minutes,
        "pool_minutes": rating.pool_minutes, "credit_minutes": rating.credit_minutes,
        "uncovered_minutes": rating.uncovered_minutes, "destination_country": rating.destination_country,
        "number_type": rating.number_type, "pool": pool.key.pool if pool else None,
        "pool_capacity": pool.capacity if pool else None, "pool_used_before": pool.used_before if pool else None,
        "pool_used_after": pool.used_after if pool else None, "policy_versions": list(rating.policy_versions),
        "alerts": list(rating.alerts), "warnings": list(rating.warnings),
    }
    if row.billed is not None:
        billed = row.billed
        charge = billed.get("charge")
        changed = ((billed["outcome"] is not None and billed["outcome"] != rating.outcome)
                   or (billed["minutes"] is not None and billed["minutes"] != rating.credit_minutes)
                   or (charge is not None and (charge > 0) != (rating.credit_minutes > 0)))
        record["billed"] = billed
        record["changed"] = changed
        record["change"] = f"billed {billed_text(billed)}; now {rating_text(rating)}" if changed else ""
    return record


def invoice_date(start: pendulum.DateTime) -> pendulum.DateTime:
    """The usual billing date of a call: the first day (UTC) of the calendar month after it."""
    return start.start_of("month").add(months=1)


def billed_text(billed: dict[str, Any]) -> str:
    parts = [billed["outcome"]] if billed["outcome"] else []
    if billed.get("minutes") is not None:
        parts.append(f"{billed['minutes']} credit min")
    if billed.get("charge") is not None:
        parts.append(f"charge {billed['charge']:g} {billed.get('currency') or ''}".rstrip())
    return ", ".join(parts)


def rating_text(rating: Rating) -> str:
    return (f"{rating.outcome}, {rating.pool_minutes} pool min, {rating.credit_minutes} credit min"
            + (f", {rating.uncovered_minutes} uncovered" if rating.uncovered_minutes else ""))


class Rerate:
    """One re-rating run over call files, with the store's policies as known at `known_at`."""

    def __init__(self, store: Store, paths: Iterable[str | Path], *, known_at: pendulum.DateTime,
                 as_of: pendulum.DateTime | None = None, default_tenant: str | None = None,
                 workdir: str | Path | None = None) -> None:
        self.store = store
        self.paths = [Path(path) for path in paths]
        self.known_at = known_at
        self.as_of = as_of
        self.default_tenant = default_tenant
        self.workdir = workdir
        self.summary = RerateSummary(known_at=known_at, as_of=as_of)

    def records(self, progress: Progress | None = None) -> Iterator[dict[str, Any]]:
        """Output records in input order; the summary is complete once they are all read."""
        for text in self.records_json(progress):
            yield json.loads(text)

    def check(self) -> None:
        """Refuse unusable files before any row is read: a Teams export needs a tenant to belong to."""
        for path in self.paths:
            for _, raw in read_rows(path):
                if "__error__" not in raw and detect_layout(raw) == "teams":
                    self._tenant_for(path)
                break

    def records_json(self, progress: Progress | None = None) -> Iterator[str]:
        self.check()
        with tempfile.TemporaryDirectory(prefix="policyhistory-rerate-", dir=self.workdir) as scratch:
            db = sqlite3.connect(Path(scratch) / "rerate.db", isolation_level=None)
            try:
                db.executescript(
                    "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA temp_store = FILE;"
                    "CREATE TABLE pending (seq INTEGER PRIMARY KEY, tenant_id TEXT, start_us INTEGER, call_id TEXT,"
                    " row BLOB);"
                    "CREATE TABLE results (seq INTEGER PRIMARY KEY, record TEXT);"
                )
                self._spill(db, progress)
                self._rate(db, progress)
                for (text,) in db.execute("SELECT record FROM results ORDER BY seq"):
                    yield text
            finally:
                db.close()

    def rows(self) -> Iterator[InputRow]:
        """Every input row, read by its file's layout: a Call with what was billed, or the reason it is not."""
        for path in self.paths:
            layout: str | None = None
            for line, raw in read_rows(path):
                try:
                    if "__error__" in raw:
                        raise InvalidFieldError("row", None, raw["__error__"])
                    layout = layout or detect_layout(raw)
                    row = own_row(raw) if layout == "own" else teams_row(raw, self._tenant_for(path))
                    yield InputRow(str(path), line, row, Call(**row.fields), None)
                except PolicyHistoryError as error:
                    yield InputRow(str(path), line, None, None, error, raw.get("call_id") or raw.get("Call ID"))

    def _spill(self, db: sqlite3.Connection, progress: Progress | None) -> None:
        pending: list[tuple[int, str, int, str, bytes]] = []
        rejected: list[tuple[int, str]] = []
        db.execute("BEGIN")
        for seq, item in enumerate(self.rows(), start=1):
            self.summary.rows += 1
            path, line, row, call = item.file, item.line, item.row, item.call
            where = {"file": path, "line": line}
            if row is None or call is None:
                rejected.append((seq, json.dumps({**where, "call_id": item.call_id, "outcome": "rejected",
                                                  "error": str(item.error)})))
                self.summary.rejected += 1
            else:
                # Plain values pickle fast and come back as a call without running its converters again.
                spilled = pickle.dumps((path, line, call.normalised(), row.billed, row.capability,
                                        row.infer_licenses), protocol=pickle.HIGHEST_PROTOCOL)
                pending.append((seq, call.tenant_id, micros(call.start), call.call_id, spilled))
            if len(pending) + len(rejected) >= 10_000:
                self._flush(db, pending, rejected)
                if progress:
                    progress("reading", seq, None)
        self._flush(db, pending, rejected)
        db.execute("COMMIT")
        db.execute("CREATE INDEX pending_order ON pending (tenant_id, start_us, call_id)")

    @staticmethod
    def _flush(db: sqlite3.Connection, pending: list[Any], rejected: list[Any]) -> None:
        db.executemany("INSERT INTO pending VALUES (?, ?, ?, ?, ?)", pending)
        db.executemany("INSERT INTO results VALUES (?, ?)", rejected)
        pending.clear()
        rejected.clear()

    def _tenant_for(self, path: Path) -> str:
        if self.default_tenant:
            return self.default_tenant
        tenants = self.store.tenant_index.tenant_ids()
        if len(tenants) == 1:
            return tenants[0]
        raise InvalidFieldError("tenant", None, f"--tenant: {path} (Teams layout) has no tenant column and the "
                                f"store knows {len(tenants)} tenants")

    def _rate(self, db: sqlite3.Connection, progress: Progress | None) -> None:
        rater = self.store.rater(self.as_of, self.known_at)
        tenants = self.store.tenant_index
        current_tenant = None
        results: list[tuple[int, str]] = []
        db.execute("BEGIN")
        cursor = db.execute("SELECT seq, tenant_id, row FROM pending ORDER BY tenant_id, start_us, call_id")
        for done, (seq, tenant_id, text) in enumerate(cursor, start=1):
            if tenant_id != current_tenant:  # a tenant's pools never meet another's: drop the finished state
                rater.pool_state = PoolState()
                current_tenant = tenant_id
            file, line, values, billed, capability, infer = pickle.loads(text)
            call = Call.from_normalised(values)
            row = CallRow({}, billed, capability, infer)
            where = {"file": file, "line": line}
            try:
                call = with_licenses(row, call, tenants)
                rating = rater.rate(call)
            except PolicyHistoryError as error:
                results.append((seq, json.dumps({**where, "call_id": call.call_id,
                                                 "tenant_id": tenant_id, "outcome": "rejected", "error": str(error)})))
                self.summary.rejected += 1
            else:
                record = {**where, **_record_of(row, call, rating)}
                self.summary.add(rating, tenant_id, record.get("changed"))
                results.append((seq, _ENCODE(record)))
            if len(results) >= 10_000:
                db.executemany("INSERT INTO results VALUES (?, ?)", results)
                results.clear()
                if progress:
                    progress("rating", done, self.summary.rows)
        db.executemany("INSERT INTO results VALUES (?, ?)", results)
        db.execute("COMMIT")
