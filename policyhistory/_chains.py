"""The store's tables as hash chains: the schema, its hash chains, transactions, checks, digests and the upgrade
of a store made by policyhistory 0.1.

Every table that holds history is a chain: each row's `row_hash` is sha256 over its predecessor's hash, its
`seq` and its content, so that no row can be edited, removed, reordered or renumbered without breaking the
chain. A chain cannot prove that it was not rewritten from its first row on; a digest kept outside the store
(`digest()`, compared by `verify(digest=...)`) can, as Amazon QLDB's digests and Certificate Transparency's
signed tree heads do.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from ._chain import GENESIS, canonical, row_hash
from ._errors import InvalidDigestError, StoreBusyError, StoreDamagedError, StoreUnusableError

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


_CHAIN_COLUMNS = (("loaded_at", "TEXT"), ("prev_hash", "TEXT NOT NULL"), ("row_hash", "TEXT NOT NULL"))

CHAINED_TABLES: tuple[ChainedTable, ...] = (
    ChainedTable(
        POLICY_TABLE,
        (("seq", "INTEGER PRIMARY KEY"), ("id", "TEXT"), ("key", "TEXT"), ("kind", "TEXT"), ("valid_from", "TEXT"),
         ("valid_to", "TEXT"), ("recorded_at", "TEXT"), ("params", "TEXT"), ("source", "TEXT"), ("notes", "TEXT"),
         ("in_force", "INTEGER"), *_CHAIN_COLUMNS),
        (*POLICY_CONTENT, "loaded_at"),
        "id",
    ),
    ChainedTable(
        TENANTS_TABLE,
        (("tenant_id", "TEXT PRIMARY KEY"), ("seq", "INTEGER"), *_CHAIN_COLUMNS),
        ("tenant_id", "loaded_at"),
        "tenant_id",
    ),
    ChainedTable(
        TENANT_TABLE,
        (("seq", "INTEGER PRIMARY KEY"), ("tenant_id", "TEXT REFERENCES tenants(tenant_id)"), ("valid_from", "TEXT"),
         ("country", "TEXT"), ("communications_credits", "INTEGER"), *_CHAIN_COLUMNS),
        ("tenant_id", "valid_from", "country", "communications_credits", "loaded_at"),
        "tenant_id",
    ),
    ChainedTable(
        LICENSE_TABLE,
        (("seq", "INTEGER PRIMARY KEY"), ("tenant_id", "TEXT REFERENCES tenants(tenant_id)"), ("valid_from", "TEXT"),
         ("sku", "TEXT"), ("usage_location", "TEXT"), ("purchased", "INTEGER"), ("assigned", "INTEGER"),
         *_CHAIN_COLUMNS),
        ("tenant_id", "valid_from", "sku", "usage_location", "purchased", "assigned", "loaded_at"),
        "tenant_id",
    ),
    ChainedTable(  # the user's rate cards (see _ratecards): one more history, chained alike
        RATE_TABLE,
        (("seq", "INTEGER PRIMARY KEY"), *((name, "TEXT") for name in RATE_FIELDS), *_CHAIN_COLUMNS),
        (*RATE_FIELDS, "loaded_at"),
        "destination_country",
    ),
)
CHAINS = {spec.name: spec for spec in CHAINED_TABLES}
STORE_TABLES = (META_TABLE, *CHAINS)


def chain_hash(previous: str, seq: int, spec: ChainedTable, row: dict[str, Any]) -> str:
    return row_hash(previous, [seq, *(row.get(column) for column in spec.content)])


def _legacy_hash(previous: str, spec: ChainedTable, row: dict[str, Any]) -> str:
    """policyhistory 0.1: the content only, `seq` not hashed."""
    return row_hash(previous, [row.get(column) for column in spec.content])


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


def _triggers(conn: sqlite3.Connection, spec: ChainedTable) -> None:
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
        _triggers(conn, spec)
    _indexes(conn)
    conn.execute(f"INSERT OR IGNORE INTO {META_TABLE} VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    conn.execute(f"INSERT OR IGNORE INTO {META_TABLE} VALUES ('created_at', ?)", (created_at,))
    for spec in CHAINED_TABLES:
        conn.execute(f"INSERT OR IGNORE INTO {META_TABLE} VALUES (?, ?)", (f"head:{spec.name}", _head_text(0, GENESIS)))
    conn.execute(f"INSERT OR REPLACE INTO {META_TABLE} VALUES ('chains', ?)", (json.dumps(sorted(CHAINS)),))


def _head_text(rows: int, head: str) -> str:
    return json.dumps({"rows": rows, "head": head}, sort_keys=True)


def table_names(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]


def meta(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute(f"SELECT key, value FROM {META_TABLE}").fetchall())


def _rows(conn: sqlite3.Connection, spec: ChainedTable, order: str = "seq") -> Iterator[dict[str, Any]]:
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
                 (_head_text(count + len(rows), previous), f"head:{spec.name}"))


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


def is_legacy(conn: sqlite3.Connection) -> bool:
    """A store of policyhistory 0.1: our tables, no meta table."""
    found = set(table_names(conn))
    return POLICY_TABLE in found and META_TABLE not in found


LEGACY_CHAINS = (POLICY_TABLE, TENANT_TABLE, LICENSE_TABLE)
"""The chains of a policyhistory 0.1 store (its tenants table was not one)."""


def _legacy_break(conn: sqlite3.Connection) -> str | None:
    found = set(table_names(conn))
    for spec in CHAINED_TABLES:
        if spec.name not in LEGACY_CHAINS:
            continue
        if spec.name not in found:
            return f"{spec.name} is missing"
        previous = GENESIS
        for row in _rows(conn, spec):
            if row["prev_hash"] != previous or row["row_hash"] != _legacy_hash(previous, spec, row):
                return f"{spec.name} row {row['seq']} does not match its hash"
            previous = row["row_hash"]
    return None


def upgrade_legacy(conn: sqlite3.Connection, path: object, now: str) -> None:
    """Bring a policyhistory 0.1 store to schema 2, keeping every row: its chains are checked under the old
    scheme first (a store that fails is refused, not upgraded), then rehashed with `seq`; `tenants` becomes a
    chain (each tenant's loaded_at: its first fact's); the old heads are kept in the meta table."""
    with writing(conn, path):
        if not is_legacy(conn):
            return  # another process upgraded it while we waited
        broken = _legacy_break(conn)
        if broken is not None:
            if _chains_verify_v2(conn):
                raise StoreDamagedError(path, f"its {META_TABLE} table is missing; a store never loses a table")
            raise StoreDamagedError(path, f"it is a policyhistory 0.1 store whose chain does not verify ({broken}); "
                                    "it is not upgraded: check it with policyhistory 0.1's verify")
        legacy_heads = {name: head(conn, CHAINS[name])[2] for name in LEGACY_CHAINS}
        for name in LEGACY_CHAINS:
            for action in ("update", "delete"):
                conn.execute(f"DROP TRIGGER IF EXISTS {name}_no_{action}")
        tenant_columns = {row[1] for row in conn.execute(f"PRAGMA table_info({TENANTS_TABLE})")}
        for name, kind in (("seq", "INTEGER"), *_CHAIN_COLUMNS):
            if name not in tenant_columns:
                conn.execute(f"ALTER TABLE {TENANTS_TABLE} ADD COLUMN {name} {kind.replace(' NOT NULL', '')}")
        first_loaded = dict(conn.execute(
            f"SELECT tenant_id, min(loaded_at) FROM (SELECT tenant_id, loaded_at FROM {TENANT_TABLE} "
            f"UNION ALL SELECT tenant_id, loaded_at FROM {LICENSE_TABLE}) GROUP BY tenant_id").fetchall())
        tenants = [row[0] for row in conn.execute(f"SELECT tenant_id FROM {TENANTS_TABLE} ORDER BY rowid")]
        for seq, tenant in enumerate(tenants, start=1):
            conn.execute(f"UPDATE {TENANTS_TABLE} SET seq = ?, loaded_at = ? WHERE tenant_id = ?",
                         (seq, first_loaded.get(tenant, now), tenant))
        create_schema(conn, now)
        conn.execute(f"INSERT OR REPLACE INTO {META_TABLE} VALUES ('upgraded_from', '1')")
        conn.execute(f"INSERT OR REPLACE INTO {META_TABLE} VALUES ('upgraded_at', ?)", (now,))
        conn.execute(f"INSERT OR REPLACE INTO {META_TABLE} VALUES ('legacy_heads', ?)",
                     (json.dumps(legacy_heads, sort_keys=True),))
        for spec in CHAINED_TABLES:
            for action in ("update", "delete"):
                conn.execute(f"DROP TRIGGER IF EXISTS {spec.name}_no_{action}")
            previous = GENESIS
            count = 0
            for row in list(_rows(conn, spec)):
                digest = chain_hash(previous, row["seq"], spec, row)
                conn.execute(f"UPDATE [{spec.name}] SET prev_hash = ?, row_hash = ? WHERE seq = ?",
                             (previous, digest, row["seq"]))
                previous = digest
                count += 1
            conn.execute(f"UPDATE {META_TABLE} SET value = ? WHERE key = ?",
                         (_head_text(count, previous), f"head:{spec.name}"))
            _triggers(conn, spec)


def _chains_verify_v2(conn: sqlite3.Connection) -> bool:
    try:
        return all(_chain_break(conn, spec) is None for spec in CHAINED_TABLES if spec.name in table_names(conn))
    except sqlite3.DatabaseError:
        return False


# ---- verifying -------------------------------------------------------------------------------------------


@attrs.frozen
class ChainBreak:
    """What is wrong, and where: a table, the seq of the first row that fails (0: the table as a whole)."""

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


def _chain_break(conn: sqlite3.Connection, spec: ChainedTable, counted: dict[str, int] | None = None
                 ) -> ChainBreak | None:
    previous = GENESIS
    count = 0
    last_seq = 0
    for row in _rows(conn, spec):
        count += 1
        if counted is not None:
            counted[spec.name] = count
        label = str(row.get(spec.label))
        if row["prev_hash"] != previous:
            return ChainBreak(spec.name, row["seq"], label,
                              "prev_hash does not match the previous row's hash (a row was removed or reordered)")
        if not isinstance(row["seq"], int) or row["seq"] <= last_seq:
            return ChainBreak(spec.name, row["seq"], label, "seq is not after the previous row's (renumbered)")
        if row["row_hash"] != chain_hash(previous, row["seq"], spec, row):
            return ChainBreak(spec.name, row["seq"], label,
                              "content or seq does not match its row_hash (the row was edited after it was written)")
        previous = row["row_hash"]
        last_seq = row["seq"]
    if counted is not None:
        counted[spec.name] = count
    return None


def verify(conn: sqlite3.Connection, digest: dict[str, Any] | None = None) -> VerifyReport:
    """Check the file, every chain, the heads the store recorded, the ids, and (given) a digest's prefix."""
    counted: dict[str, int] = {}

    def report(table: str, reason: str, seq: int = 0, record: str = "") -> VerifyReport:
        return VerifyReport(counted, ChainBreak(table, seq, record, reason))

    try:
        problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            return report("*", f"the file is damaged (SQLite quick_check: {'; '.join(problems[:3])})")
        found = set(table_names(conn))
        for name in STORE_TABLES:
            if name not in found:
                return report(name, "the table is missing (dropped)")
        recorded = meta(conn)
        for spec in CHAINED_TABLES:
            broken = _chain_break(conn, spec, counted)
            if broken is not None:
                return VerifyReport(counted, broken)
        for spec in CHAINED_TABLES:
            count, seq, last = head(conn, spec)
            try:
                expected = json.loads(recorded.get(f"head:{spec.name}", ""))
            except ValueError:
                return report(META_TABLE, f"the recorded head of {spec.name} is not readable")
            if (expected.get("rows"), expected.get("head")) != (count, last):
                return report(spec.name, f"the store's own record of this chain's head says {expected.get('rows')} "
                              f"row(s) ending in {str(expected.get('head'))[:16]}, the table has {count} ending in "
                              f"{last[:16]} (rows were removed, or added outside policyhistory)", seq)
        duplicate = conn.execute(f"SELECT id, count(*) FROM {POLICY_TABLE} GROUP BY id HAVING count(*) > 1").fetchone()
        if duplicate:
            return report(POLICY_TABLE, f"the id {duplicate[0]!r} is stored {duplicate[1]} times", 0, duplicate[0])
        orphan = conn.execute(
            f"SELECT tenant_id FROM (SELECT tenant_id FROM {TENANT_TABLE} UNION SELECT tenant_id FROM {LICENSE_TABLE}) "
            f"WHERE tenant_id NOT IN (SELECT tenant_id FROM {TENANTS_TABLE})").fetchone()
        if orphan:
            return report(TENANTS_TABLE, f"tenant {orphan[0]!r} has facts but no row in tenants (removed)", 0,
                          orphan[0])
        if digest is not None:
            problem = prefix_problem(conn, digest)
            if problem is not None:
                return VerifyReport(counted, problem)
    except sqlite3.DatabaseError as error:
        return report("*", f"the file cannot be read (SQLite: {error})")
    return VerifyReport(counted, None)


# ---- digests ---------------------------------------------------------------------------------------------

DIGEST_FORMAT = "policyhistory-digest/1"


def combined(chains: dict[str, Any]) -> str:
    return hashlib.sha256(canonical([[name, chains[name]["rows"], chains[name]["head"]]
                                     for name in sorted(chains)]).encode("utf-8")).hexdigest()


def digest(conn: sqlite3.Connection, path: object, at: str) -> dict[str, Any]:
    """The head of every chain (rows, last hash) and one sha256 over them all, read in one snapshot."""
    with reading(conn, path), sqlite_errors(path):
        chains = {spec.name: dict(zip(("rows", "head"), head(conn, spec)[::2], strict=True))
                  for spec in CHAINED_TABLES}
    return {"format": DIGEST_FORMAT, "at": at, "chains": chains, "digest": combined(chains)}


def parse_digest(text: str) -> dict[str, Any]:
    """A digest as `digest()` printed it; refused with what is wrong otherwise."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise InvalidDigestError(f"not a digest: not valid JSON ({error})") from None
    chains = value.get("chains") if isinstance(value, dict) else None
    if (not isinstance(value, dict) or value.get("format") != DIGEST_FORMAT or not isinstance(chains, dict)
            or not all(isinstance(c, dict) and type(c.get("rows")) is int and c["rows"] >= 0
                       and isinstance(c.get("head"), str) for c in chains.values())):
        raise InvalidDigestError(f"not a digest: expected the JSON object `policyhistory digest` prints "
                                 f"(format {DIGEST_FORMAT!r}, chains, digest)")
    if value.get("digest") != combined(chains):
        raise InvalidDigestError("the digest's own sha256 does not match its chains: the digest text was altered")
    return value


def prefix_problem(conn: sqlite3.Connection, anchored: dict[str, Any]) -> ChainBreak | None:
    """None when every chain still holds exactly the rows the digest anchors, as its first rows."""
    found = set(table_names(conn))
    for name, chain in anchored["chains"].items():
        rows, expected = chain["rows"], chain["head"]
        if name not in found:
            return ChainBreak(name, 0, "", "the table the digest anchors is missing")
        if rows == 0:
            continue
        row = conn.execute(f"SELECT seq, row_hash FROM [{name}] ORDER BY seq LIMIT 1 OFFSET ?", (rows - 1,)).fetchone()
        if row is None:
            count = conn.execute(f"SELECT count(*) FROM [{name}]").fetchone()[0]
            return ChainBreak(name, 0, "", f"the digest anchors {rows} row(s), the table has {count}: rows were "
                              "removed")
        if row[1] != expected:
            return ChainBreak(name, row[0], "", f"row {rows} has hash {row[1][:16]}, the digest says {expected[:16]}: "
                              "the history the digest anchors was rewritten")
    return None
