"""The upgrade of a store made by policyhistory 0.1 (tenants not chained, seq not hashed, no meta table) to
the chains of this one, in place, keeping every row; a 0.1 store whose own chain is broken is refused."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ._chain import GENESIS, row_hash
from ._chains import (
    CHAIN_COLUMNS,
    CHAINED_TABLES,
    CHAINS,
    LICENSE_TABLE,
    META_TABLE,
    POLICY_TABLE,
    TENANT_TABLE,
    TENANTS_TABLE,
    ChainedTable,
    chain_hash,
    create_schema,
    head,
    head_text,
    rows,
    table_names,
    triggers,
    writing,
)
from ._errors import StoreDamagedError
from ._verify import chain_break


def _legacy_hash(previous: str, spec: ChainedTable, row: dict[str, Any]) -> str:
    """policyhistory 0.1: the content only, `seq` not hashed."""
    return row_hash(previous, [row.get(column) for column in spec.content])



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
        for row in rows(conn, spec):
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
        for name, kind in (("seq", "INTEGER"), *CHAIN_COLUMNS):
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
            for row in list(rows(conn, spec)):
                digest = chain_hash(previous, row["seq"], spec, row)
                conn.execute(f"UPDATE [{spec.name}] SET prev_hash = ?, row_hash = ? WHERE seq = ?",
                             (previous, digest, row["seq"]))
                previous = digest
                count += 1
            conn.execute(f"UPDATE {META_TABLE} SET value = ? WHERE key = ?",
                         (head_text(count, previous), f"head:{spec.name}"))
            triggers(conn, spec)


def _chains_verify_v2(conn: sqlite3.Connection) -> bool:
    try:
        return all(chain_break(conn, spec) is None for spec in CHAINED_TABLES if spec.name in table_names(conn))
    except sqlite3.DatabaseError:
        return False
