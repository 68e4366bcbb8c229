"""Verifying a store: every hash chain recomputed from its first row, the heads the store recorded, the ids,
and a digest kept outside the store (as Amazon QLDB's digests and Certificate Transparency's signed tree
heads): a chain cannot prove it was not rewritten from its first row on; a digest can."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

import attrs

from ._chain import GENESIS, canonical
from ._chains import (
    CHAINED_TABLES,
    LICENSE_TABLE,
    META_TABLE,
    POLICY_TABLE,
    STORE_TABLES,
    TENANT_TABLE,
    TENANTS_TABLE,
    ChainedTable,
    chain_hash,
    head,
    meta,
    reading,
    rows,
    sqlite_errors,
    table_names,
)
from ._errors import InvalidDigestError


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


def chain_break(conn: sqlite3.Connection, spec: ChainedTable, counted: dict[str, int] | None = None
                 ) -> ChainBreak | None:
    previous = GENESIS
    count = 0
    last_seq = 0
    for row in rows(conn, spec):
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
            broken = chain_break(conn, spec, counted)
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
