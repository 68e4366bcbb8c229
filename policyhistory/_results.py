"""Results you can query: a run's records in SQLite (sqlite-utils: a `ratings` table, a `runs` table of
manifests, `money_totals` per tenant, month and currency; several runs per file, told apart by run id) or in
Parquet (polars), and reading a recorded run back for `rerate --replay`.

Columns are the records' fields with `billed` flattened into `billed_outcome`, `billed_minutes`,
`billed_charge`, `billed_currency` (as in CSV); `policy_versions`, `alerts` and `warnings` are JSON text in
SQLite (Datasette and SQLite's json functions read them) and lists of text in Parquet; `changed` is 0/1 in
SQLite and a boolean in Parquet. A field a record carries beyond these gets a column of its own.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlite_utils

from ._errors import PolicyHistoryError
from ._money import AUDITED_COLUMNS

RESULT_COLUMNS = ("seq", *AUDITED_COLUMNS)
"""A results row: its place in the run's output (seq, from 0), the record's fields, the audit fields."""
LIST_COLUMNS = frozenset({"policy_versions", "alerts", "warnings"})
INTEGER_COLUMNS = frozenset({"seq", "line", "billable_minutes", "pool_minutes", "credit_minutes", "uncovered_minutes",
                             "pool_capacity", "pool_used_before", "pool_used_after", "billed_minutes"})
FLOAT_COLUMNS = frozenset({"billed_charge", "charge", "charge_difference"})
BOOLEAN_COLUMNS = frozenset({"changed"})
INDEXED = ("call_id", "tenant_id", "start", "changed")
RESULT_TABLES = frozenset({"ratings", "runs", "money_totals"})
_BATCH = 10_000
_PARQUET_PART = 20_000


class NotAResultsDatabaseError(PolicyHistoryError, ValueError):
    """A results file that is not SQLite, or holds tables of something else (a store, say)."""

    def __init__(self, path: object, why: str, hint: str = "give another --output") -> None:
        self.path = path
        self.why = why
        super().__init__(f"{path} is not a results database: {why}; {hint}")


class UnknownRunError(PolicyHistoryError, LookupError):
    def __init__(self, path: object, run_id: str, known: Sequence[str]) -> None:
        self.run_id = run_id
        runs = ", ".join(known[-5:]) or "none"
        super().__init__(f"{path} has no run {run_id!r} (its latest runs: {runs})")


def flat(record: Mapping[str, Any], seq: int) -> dict[str, Any]:
    """A record as one results row: billed flattened, the fields in RESULT_COLUMNS order, then any others."""
    billed = record.get("billed") or {}
    row: dict[str, Any] = {"seq": seq}
    for column in RESULT_COLUMNS[1:]:
        row[column] = billed.get(column[7:]) if column.startswith("billed_") else record.get(column)
    for name, value in record.items():
        if name not in row and name != "billed":
            row[name] = value
    return row


def _column_type(name: str) -> type:
    if name in INTEGER_COLUMNS or name in BOOLEAN_COLUMNS:
        return int
    if name in FLOAT_COLUMNS:
        return float
    return str


def open_results(path: Path) -> sqlite_utils.Database:
    """A results database, created if absent; refused if it is not SQLite or holds other tables."""
    db = sqlite_utils.Database(path)
    try:
        tables = set(db.table_names())
    except sqlite3.DatabaseError as error:
        db.close()
        raise NotAResultsDatabaseError(path, str(error)) from None
    other = tables - RESULT_TABLES
    if other:
        db.close()
        raise NotAResultsDatabaseError(path, f"it holds other tables ({', '.join(sorted(other)[:5])})")
    if "ratings" not in tables:
        db.table("ratings").create({column: _column_type(column) for column in ("run_id", *RESULT_COLUMNS)},
                             pk=("run_id", "seq"))
        for column in INDEXED:
            db.table("ratings").create_index([column], if_not_exists=True)
    if "runs" not in tables:
        db.table("runs").create({"run_id": str, "started_at": str, "ended_at": str, "known_at": str, "as_of": str,
                           "tool_version": str, "store_digest": str, "rows": int, "rated": int, "rejected": int,
                           "changed": int, "written": int, "manifest": str}, pk="run_id")
    if "money_totals" not in tables:
        db.table("money_totals").create({"run_id": str, "tenant_id": str, "month": str, "currency": str, "calls": int,
                                   "billed": float, "billed_calls": int, "recomputed": float,
                                   "recomputed_calls": int, "difference": float, "compared_calls": int,
                                   "without_rate": int, "changed": int},
                                  pk=("run_id", "tenant_id", "month", "currency"))
    return db


class SqliteResults:
    """Writes one run into a results database: its ratings as they stream, then its manifest and totals, all in
    one transaction (committed by finish, rolled back by abort or by the process's end): a reader never sees a
    run's ratings without its manifest, and the database is synced once, not once per batch."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        self.db = open_results(path)
        if self.db["runs"].count_where("run_id = ?", [run_id]):
            self.db.close()
            raise NotAResultsDatabaseError(path, f"run {run_id!r} is already in it")
        self.written = 0

    def write(self, records: Iterable[Mapping[str, Any]]) -> None:
        batch: list[dict[str, Any]] = []
        table = self.db.table("ratings")
        if not self.db.conn.in_transaction:
            self.db.begin()  # each insert_all below is a savepoint of it
        for record in records:
            row = flat(record, self.written)
            row["run_id"] = self.run_id
            if row.get("changed") is not None:
                row["changed"] = int(bool(row["changed"]))
            batch.append(row)
            self.written += 1
            if len(batch) >= _BATCH:
                table.insert_all(batch, alter=True, batch_size=_BATCH)
                batch.clear()
        if batch:
            table.insert_all(batch, alter=True, batch_size=_BATCH)

    def finish(self, manifest: Mapping[str, Any], totals: Iterable[Mapping[str, Any]]) -> None:
        counts = manifest.get("counts", {})
        with self.db.conn:
            self.db.table("runs").insert({"run_id": self.run_id, "started_at": manifest["started_at"],
                                    "ended_at": manifest["ended_at"], "known_at": manifest["known_at"],
                                    "as_of": manifest["as_of"], "tool_version": manifest["tool_version"],
                                    "store_digest": manifest["store_digest"], **counts,
                                    "manifest": json.dumps(manifest, sort_keys=True)})
            self.db.table("money_totals").insert_all({"run_id": self.run_id, **row} for row in totals)
        self.db.close()

    def abort(self) -> None:
        """Undo what a failed run wrote: a ratings row is never left without its run."""
        if self.db.conn.in_transaction:
            self.db.rollback()
        self.db.close()


def _polars_schema(columns: Sequence[str]) -> dict[str, Any]:
    import polars as pl

    types: dict[str, Any] = {}
    for column in columns:
        if column in LIST_COLUMNS:
            types[column] = pl.List(pl.String)
        elif column in BOOLEAN_COLUMNS:
            types[column] = pl.Boolean
        elif column in INTEGER_COLUMNS:
            types[column] = pl.Int64
        elif column in FLOAT_COLUMNS:
            types[column] = pl.Float64
        else:
            types[column] = pl.String
    return types


def write_parquet(path: Path, records: Iterable[Mapping[str, Any]],
                  metadata: Callable[[], Mapping[str, str]] | None = None, workdir: Path | None = None) -> int:
    """Write records to one Parquet file through polars, a part of 20,000 rows at a time (memory stays
    bounded), the parts then streamed into the file; `metadata()`, asked once every record is written (a
    run's manifest has its counts then), goes into the file's key-value metadata."""
    import polars as pl

    schema = _polars_schema(RESULT_COLUMNS)
    written = 0
    with tempfile.TemporaryDirectory(prefix="policyhistory-parquet-", dir=workdir) as scratch:
        parts: list[Path] = []
        # A part's rows by column: a list per column holds no dictionary per row (see benchmarks/README.md).
        columns: dict[str, list[Any]] = {column: [] for column in schema}

        def spill() -> None:
            # A field beyond RESULT_COLUMNS (a later engine's, say) gets a text column of its own: kept, not lost.
            types = {**schema, **{name: pl.String for name in sorted(columns) if name not in schema}}
            frame = pl.DataFrame({name: columns[name] for name in types}, schema=types)
            part = Path(scratch) / f"part-{len(parts):05d}.parquet"
            frame.write_parquet(part)
            parts.append(part)
            for name in list(columns):
                if name in schema:
                    columns[name] = []
                else:
                    del columns[name]

        for record in records:
            row = flat(record, written)
            for column in LIST_COLUMNS:
                if row.get(column) is not None:
                    row[column] = [str(item) for item in row[column]]
            for name in row.keys() - columns.keys():
                columns[name] = [None] * len(columns["seq"])  # earlier rows of the part had no such field
            for name, values in columns.items():
                values.append(row.get(name) if name in schema else _text(row.get(name)))
            written += 1
            if len(columns["seq"]) >= _PARQUET_PART:
                spill()
        if columns["seq"] or not parts:
            spill()
        target = Path(scratch) / "all.parquet"
        frames = [pl.scan_parquet(part) for part in parts]
        whole = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
        whole.sink_parquet(target, metadata=dict(metadata() if metadata else {}))
        shutil.move(str(target), path)
    return written


def _text(value: Any) -> str | None:
    """A field beyond the known columns, as text (JSON for a number, a list or an object)."""
    return value if value is None or isinstance(value, str) else json.dumps(value)


def read_run(path: Path, run_id: str) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """A recorded run's manifest and its ratings rows in output order (as results rows: flat, JSON text)."""
    hint = "give the file a run wrote with --output results.db (or --format sqlite)"
    if not path.exists():
        raise NotAResultsDatabaseError(path, "the file does not exist", hint)
    try:
        db = open_results(path)
    except NotAResultsDatabaseError as error:
        raise NotAResultsDatabaseError(path, error.why, hint) from None
    found = list(db.query("SELECT manifest FROM runs WHERE run_id = ?", [run_id]))
    if not found:
        known = [row["run_id"] for row in db.query("SELECT run_id FROM runs ORDER BY run_id")]
        db.close()
        raise UnknownRunError(path, run_id, known)
    manifest = json.loads(found[0]["manifest"])

    def rows() -> Iterator[dict[str, Any]]:
        try:
            yield from db.query("SELECT * FROM ratings WHERE run_id = ? ORDER BY seq", [run_id])
        finally:
            db.close()

    return manifest, rows()


def as_stored(record: Mapping[str, Any], seq: int, run_id: str) -> dict[str, Any]:
    """A record as SQLite gives its row back: flat, lists as JSON text, changed as 0/1."""
    row = flat(record, seq)
    row["run_id"] = run_id
    for name, value in list(row.items()):
        if isinstance(value, bool):
            row[name] = int(value)
        elif isinstance(value, (list, dict)):
            row[name] = json.dumps(value)
    return row


def compare_run(records: Iterable[Mapping[str, Any]], stored: Iterable[Mapping[str, Any]],
                run_id: str, examples: int = 5) -> tuple[int, int, list[str]]:
    """(records compared, records that differ, the first differences described) between a re-run's records
    and a recorded run's rows; a row present on one side only differs."""
    compared = differing = 0
    described: list[str] = []
    new_iter, old_iter = iter(records), iter(stored)
    seq = 0
    while True:
        new = next(new_iter, None)
        old = next(old_iter, None)
        if new is None and old is None:
            break
        compared += 1
        new_row = as_stored(new, seq, run_id) if new is not None else None
        old_row = {k: v for k, v in old.items() if v is not None or k in (new_row or {})} if old is not None else None
        if new_row is not None and old_row is not None:
            keys = set(new_row) | set(old_row)
            fields = sorted(k for k in keys if new_row.get(k) != old_row.get(k))
        else:
            fields = ["(missing row)"]
        if fields:
            differing += 1
            if len(described) < examples:
                where = new_row or old_row or {}
                detail = ", ".join(f"{k}: {(old_row or {}).get(k)!r} -> {(new_row or {}).get(k)!r}"
                                   for k in fields[:4])
                described.append(f"row {seq} ({where.get('file')}:{where.get('line')}, call {where.get('call_id')}):"
                                 f" {detail}")
        seq += 1
    return compared, differing, described
