"""The store's tables as hash chains: the schema, its hash chains, transactions and the checks on opening
(`_verify` recomputes the chains and makes digests; `_upgrade` upgrades a store of policyhistory 0.1).

Every table that holds history is a chain: each row's `row_hash` is sha256 over its predecessor's hash, its
`seq` and its content, so that no row can be edited, removed, reordered or renumbered without breaking the
chain. A chain cannot prove that it was not rewritten from its first row on; a digest kept outside the store
(`digest()`, compared by `verify(digest=...)`) can, as Amazon QLDB's digests and Certificate Transparency's
signed tree heads do.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from ._chain import GENESIS, row_hash
from ._errors import StoreBusyError, StoreDamagedError, StoreUnusableError

SCHEMA_VERSION = 2
"""1: policyhistory 0.1 (tenants not chained, seq not hashed, no meta table). 2: this layout."""
META_TABLE = "store_meta"
POLICY_TABLE = "policy_versions"
TENANTS_TABLE = "tenants"
TENANT_TABLE = "tenant_facts"
RATE_TABLE = "rate_cards"
RATE_FIELDS = ("valid_from", "valid_to", "recorded_at", "destination_country", "number_type", "per_minute",
               "connection_fee", "currency", "source")
"""A rate card entry's columns (see _ratecards), stored as text: prices are exact decimals."""
LICENSE_TABLE = "licenses"
POLICY_CONTENT = ("id", "key", "kind", "valid_from", "valid_to", "recorded_at", "params", "source", "notes",
                  "in_force")
"""The columns whose values make a version what it is: equal values, same version (idempotent load)."""


@attrs.frozen
class ChainedTable:
    """An append-only table whose rows carry `prev_hash` and `row_hash` over `seq` and the content columns."""

    name: str
    columns: tuple[tuple[str, str], ...]
    content: tuple[str, ...]
    label: str

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


CHAIN_COLUMNS = (("loaded_at", "TEXT"), ("prev_hash", "TEXT NOT NULL"), ("row_hash", "TEXT NOT NULL"))

CHAINED_TABLES: tuple[ChainedTable, ...] = (
    ChainedTable(
        POLICY_TABLE,
        (("seq", "INTEGER PRIMARY KEY"), ("id", "TEXT"), ("key", "TEXT"), ("kind", "TEXT"), ("valid_from", "TEXT"),
         ("valid_to", "TEXT"), ("recorded_at", "TEXT"), ("params", "TEXT"), ("source", "TEXT"), ("notes", "TEXT"),
         ("in_force", "INTEGER"), *CHAIN_COLUMNS),
        (*POLICY_CONTENT, "loaded_at"),
        "id",
    ),
    ChainedTable(
        TENANTS_TABLE,
        (("tenant_id", "TEXT PRIMARY KEY"), ("seq", "INTEGER"), *CHAIN_COLUMNS),
        ("tenant_id", "loaded_at"),
        "tenant_id",
    ),
    ChainedTable(
        TENANT_TABLE,
        (("seq", "INTEGER PRIMARY KEY"), ("tenant_id", "TEXT REFERENCES tenants(tenant_id)"), ("valid_from", "TEXT"),
         ("country", "TEXT"), ("communications_credits", "INTEGER"), *CHAIN_COLUMNS),
        ("tenant_id", "valid_from", "country", "communications_credits", "loaded_at"),
        "tenant_id",
    ),
    ChainedTable(
        LICENSE_TABLE,
        (("seq", "INTEGER PRIMARY KEY"), ("tenant_id", "TEXT REFERENCES tenants(tenant_id)"), ("valid_from", "TEXT"),
         ("sku", "TEXT"), ("usage_location", "TEXT"), ("purchased", "INTEGER"), ("assigned", "INTEGER"),
         *CHAIN_COLUMNS),
        ("tenant_id", "valid_from", "sku", "usage_location", "purchased", "assigned", "loaded_at"),
        "tenant_id",
    ),
    ChainedTable(  # the user's rate cards (see _ratecards): one more history, chained alike
        RATE_TABLE,
        (("seq", "INTEGER PRIMARY KEY"), *((name, "TEXT") for name in RATE_FIELDS), *CHAIN_COLUMNS),
        (*RATE_FIELDS, "loaded_at"),
        "destination_country",
    ),
)
CHAINS = {spec.name: spec for spec in CHAINED_TABLES}
STORE_TABLES = (META_TABLE, *CHAINS)


def chain_hash(previous: str, seq: int, spec: ChainedTable, row: dict[str, Any]) -> str:
    return row_hash(previous, [seq, *(row.get(column) for column in spec.content)])


# ---- transactions ----------------------------------------------------------------------------------------

_BUSY = ("database is locked", "database table is locked", "database is busy")


def is_busy(error: sqlite3.OperationalError) -> bool:
    return any(text in str(error) for text in _BUSY)


@contextlib.contextmanager
def sqlite_errors(path: object) -> Iterator[None]:
    """SQLite's errors about the file itself as our errors: busy after the timeout, or a damaged file."""
    try:
        yield
    except sqlite3.OperationalError as error:
        if is_busy(error):
            raise StoreBusyError(path) from None
        raise StoreUnusableError(path, f"SQLite says: {error}") from None
    except sqlite3.DatabaseError as error:
        if isinstance(error, sqlite3.IntegrityError):
            raise
        raise StoreDamagedError(path, f"SQLite says: {error}") from None


@contextlib.contextmanager
def writing(conn: sqlite3.Connection, path: object) -> Iterator[None]:
    """One write transaction, taken at its start (BEGIN IMMEDIATE): a second writer waits up to the busy
    timeout for the first to finish, instead of failing half-way when it upgrades a read to a write."""
    with sqlite_errors(path):  # the body's SQLite errors too: a full disk, a damaged page
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            raise


@contextlib.contextmanager
def reading(conn: sqlite3.Connection, path: object) -> Iterator[None]:
    """One snapshot for several queries (in WAL mode a reader never waits for a writer)."""
    if conn.in_transaction:  # inside a write: its snapshot is the one to read
        yield
        return
    with sqlite_errors(path):
        conn.execute("BEGIN")
    try:
        yield
    finally:
        # A read transaction has nothing to commit: ending it cannot lose a write, so a damaged file's error
        # here adds nothing to the one its queries raised (or to the verdict verify gave).
        with contextlib.suppress(sqlite3.DatabaseError):
            if conn.in_transaction:
                conn.execute("ROLLBACK")


# ---- schema ----------------------------------------------------------------------------------------------


def triggers(conn: sqlite3.Connection, spec: ChainedTable) -> None:
    for action in ("UPDATE", "DELETE"):
        conn.execute(
            f"CREATE TRIGGER IF NOT EXISTS {spec.name}_no_{action.lower()} BEFORE {action} ON {spec.name} "
            f"BEGIN SELECT RAISE(ABORT, '{spec.name} is append-only: {action} refused; "
            "history is never rewritten, add a new version instead'); END"
        )


def _indexes(conn: sqlite3.Connection) -> None:
    conn.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {POLICY_TABLE}_id ON {POLICY_TABLE}(id)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {POLICY_TABLE}_key ON {POLICY_TABLE}(key, recorded_at)")
    conn.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {TENANTS_TABLE}_seq ON {TENANTS_TABLE}(seq)")


def create_schema(conn: sqlite3.Connection, created_at: str) -> None:
    """Every table, trigger and index of a new store, and its meta rows; inside the caller's transaction."""
    conn.execute(f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for spec in CHAINED_TABLES:
        columns = ", ".join(f"[{name}] {kind}" for name, kind in spec.columns)
        conn.execute(f"CREATE TABLE IF NOT EXISTS [{spec.name}] ({columns})")
        triggers(conn, spec)
    _indexes(conn)
    conn.execute(f"INSERT OR IGNORE INTO {META_TABLE} VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    conn.execute(f"INSERT OR IGNORE INTO {META_TABLE} VALUES ('created_at', ?)", (created_at,))
    for spec in CHAINED_TABLES:
        conn.execute(f"INSERT OR IGNORE INTO {META_TABLE} VALUES (?, ?)", (f"head:{spec.name}", head_text(0, GENESIS)))
    conn.execute(f"INSERT OR REPLACE INTO {META_TABLE} VALUES ('chains', ?)", (json.dumps(sorted(CHAINS)),))


def head_text(rows: int, head: str) -> str:
    return json.dumps({"rows": rows, "head": head}, sort_keys=True)


def table_names(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]


def meta(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute(f"SELECT key, value FROM {META_TABLE}").fetchall())


def rows(conn: sqlite3.Connection, spec: ChainedTable, order: str = "seq") -> Iterator[dict[str, Any]]:
    cursor = conn.execute(f"SELECT * FROM [{spec.name}] ORDER BY {order}")
    names = [description[0] for description in cursor.description]
    for values in cursor:
        yield dict(zip(names, values, strict=True))


def head(conn: sqlite3.Connection, spec: ChainedTable) -> tuple[int, int, str]:
    """(rows, last seq, last row_hash) of a chain."""
    count = conn.execute(f"SELECT count(*) FROM [{spec.name}]").fetchone()[0]
    last = conn.execute(f"SELECT seq, row_hash FROM [{spec.name}] ORDER BY seq DESC LIMIT 1").fetchone()
    return (count, last[0], last[1]) if last else (0, 0, GENESIS)


def append(conn: sqlite3.Connection, spec: ChainedTable, rows: Sequence[dict[str, Any]]) -> None:
    """Append rows to a chain and record its new head; inside the caller's write transaction."""
    count, seq, previous = head(conn, spec)
    if not rows:
        return
    columns = ["seq", *(c for c in spec.column_names if c not in ("seq", "prev_hash", "row_hash")),
               "prev_hash", "row_hash"]
    values = []
    for row in rows:
        seq += 1
        digest = chain_hash(previous, seq, spec, row)
        values.append([seq, *(row.get(c) for c in columns[1:-2]), previous, digest])
        previous = digest
    marks = ", ".join("?" for _ in columns)
    conn.executemany(f"INSERT INTO [{spec.name}] ({', '.join(columns)}) VALUES ({marks})", values)
    conn.execute(f"UPDATE {META_TABLE} SET value = ? WHERE key = ?",
                 (head_text(count + len(rows), previous), f"head:{spec.name}"))


# ---- opening: a store as it should be, an old one upgraded, a damaged one refused --------------------------


FIRST_CHAINS = (POLICY_TABLE, TENANTS_TABLE, TENANT_TABLE, LICENSE_TABLE)
"""The chains of every schema-2 store; a chain added to CHAINED_TABLES later is created when a store made
before it is opened (store_meta's `chains` lists those a store has)."""


def check_open(conn: sqlite3.Connection, path: object) -> list[str]:
    """Refuse a store of schema 2 that lost a table or every row of a table that had rows; return the chains
    this version has and the store does not have yet (to be created)."""
    found = set(table_names(conn))
    if META_TABLE not in found:
        raise StoreDamagedError(path, f"the table {META_TABLE} is missing; a store never loses a table (restore it "
                                "from a backup)")
    recorded = meta(conn)
    try:
        chains = json.loads(recorded.get("chains", "null")) or list(FIRST_CHAINS)
    except ValueError:
        chains = list(FIRST_CHAINS)
    missing = [name for name in chains if name not in found]
    if missing:
        raise StoreDamagedError(path, f"the table(s) {', '.join(missing)} are missing; a store never loses a "
                                "table (restore it from a backup)")
    version = recorded.get("schema_version")
    if version != str(SCHEMA_VERSION):
        raise StoreDamagedError(path, f"it has schema version {version!r}, this policyhistory reads "
                                f"{SCHEMA_VERSION} (made by a newer release?)")
    for spec in CHAINED_TABLES:
        if spec.name not in found:
            continue
        try:
            rows = json.loads(recorded.get(f"head:{spec.name}", "{}")).get("rows", 0)
        except (ValueError, AttributeError):
            rows = 0  # verify names an unreadable head
        if rows and not conn.execute(f"SELECT 1 FROM [{spec.name}] LIMIT 1").fetchone():
            raise StoreDamagedError(path, f"{spec.name} held {rows} row(s) and now holds none; history is never "
                                    "deleted (restore it from a backup)")
    return [spec.name for spec in CHAINED_TABLES if spec.name not in found]


