"""Tamper evidence: chains over every history table (tenants too, seq hashed), the heads the store records,
digests kept outside the store, and a verdict (never a traceback) on a damaged file."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import policyhistory
from policyhistory import StoreDamagedError
from policyhistory._chains import CHAINS, chain_hash
from policyhistory.cli import cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LEGACY = Path(__file__).resolve().parent / "data" / "store-0.1.0.db"


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "s.db"
    store = policyhistory.open(path)
    store.load_tenant_facts(EXAMPLES / "tenants.csv", EXAMPLES / "licenses.csv")
    store.close()
    return path


def digest_of(path: Path) -> str:
    result = CliRunner().invoke(cli, ["--db", str(path), "digest"])
    assert 0 == result.exit_code, result.output
    assert 1 == len(result.output.splitlines())
    return result.output.strip()


def verify(path: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--db", str(path), "verify", *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output  # stdout and stderr


def sql(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    for name in CHAINS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}_no_update")
        conn.execute(f"DROP TRIGGER IF EXISTS {name}_no_delete")
    for statement in statements:
        conn.execute(statement)
    conn.close()


def rechain(path: Path, table: str, *, update_meta: bool = True) -> None:
    """What a careful attacker does after an edit: recompute every hash of the chain (and its recorded head)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    for name in CHAINS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}_no_update")
    previous = "0" * 64
    rows = [dict(row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY seq")]
    for row in rows:
        digest = chain_hash(previous, row["seq"], CHAINS[table], row)
        conn.execute(f"UPDATE {table} SET prev_hash = ?, row_hash = ? WHERE seq = ?", (previous, digest, row["seq"]))
        previous = digest
    if update_meta:
        conn.execute("UPDATE store_meta SET value = ? WHERE key = ?",
                     (json.dumps({"head": previous, "rows": len(rows)}), f"head:{table}"))
    conn.close()


def test_an_untouched_store_verifies_against_its_digest_and_after_appends(db, tmp_path):
    anchor = digest_of(db)
    record = json.loads(anchor)
    assert {"policy_versions": 80, "tenants": 2, "tenant_facts": 2, "licenses": 12, "rate_cards": 0} == {
        name: chain["rows"] for name, chain in record["chains"].items()}
    assert 64 == len(record["digest"])
    store = policyhistory.open(db)
    assert record["chains"] == store.digest()["chains"]
    store.add_tenant_facts([policyhistory.TenantFact("new", "2020-01-01", "FR", True)])
    store.close()
    (tmp_path / "d.json").write_text(anchor + "\n", encoding="utf-8")
    for given in (anchor, str(tmp_path / "d.json")):
        status, output = verify(db, "--digest", given)
        assert (0, True) == (status, "digest's history is intact" in output), output
    reopened = policyhistory.open(db)
    assert reopened.verify(anchor).ok
    assert reopened.verify(json.loads(anchor)).ok


@pytest.mark.parametrize(("statements", "table", "words"), [
    (["DELETE FROM policy_versions WHERE seq = (SELECT max(seq) FROM policy_versions)"], "policy_versions",
     "own record of this chain's head"),
    (["DELETE FROM licenses WHERE seq = (SELECT max(seq) FROM licenses)"], "licenses", "rows were removed"),
    (["UPDATE tenants SET loaded_at = '2017-01-01T00:00:00Z' WHERE tenant_id = 'seoul'"], "tenants", "edited"),
    (["UPDATE policy_versions SET seq = seq + 100 WHERE seq = (SELECT max(seq) FROM policy_versions)"],
     "policy_versions", "content or seq does not match"),
    (["UPDATE tenant_facts SET seq = 7 WHERE seq = 2"], "tenant_facts", "does not match"),
])
def test_verify_finds_edits_removals_and_renumbering(db, statements, table, words):
    sql(db, *statements)
    status, output = verify(db)
    assert 1 == status
    assert f"TAMPERED: {table}" in output and words in output, output


def test_an_appended_row_with_a_correct_hash_is_found_by_the_recorded_head(db):
    conn = sqlite3.connect(db, isolation_level=None)
    conn.row_factory = sqlite3.Row
    last = dict(conn.execute("SELECT * FROM licenses ORDER BY seq DESC LIMIT 1").fetchone())
    row = {**last, "seq": last["seq"] + 1, "assigned": 999, "valid_from": "2030-01-01T00:00:00Z"}
    row["prev_hash"], row["row_hash"] = last["row_hash"], chain_hash(last["row_hash"], row["seq"],
                                                                     CHAINS["licenses"], row)
    conn.execute(f"INSERT INTO licenses ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))
    conn.close()
    status, output = verify(db)
    assert 1 == status and "licenses" in output and "added outside policyhistory" in output


def test_a_chain_rewritten_from_its_first_row_is_found_by_the_digest(db):
    anchor = digest_of(db)
    sql(db, "UPDATE licenses SET assigned = 400 WHERE seq = 1")
    rechain(db, "licenses")
    assert (0, ) == verify(db)[:1]  # self-consistent: only an anchor kept elsewhere can tell
    status, output = verify(db, "--digest", anchor)
    assert 1 == status
    assert "TAMPERED: licenses" in output and "was rewritten" in output


def test_rows_removed_and_meta_edited_to_match_are_found_by_the_digest(db):
    anchor = digest_of(db)
    sql(db, "DELETE FROM licenses WHERE seq > 10")
    rechain(db, "licenses")
    status, output = verify(db, "--digest", anchor)
    assert 1 == status and "the digest anchors 12 row(s), the table has 10" in output


@pytest.mark.parametrize(("statement", "why"), [
    ("DELETE FROM licenses", "licenses held 12 row(s) and now holds none"),
    ("DELETE FROM policy_versions", "policy_versions held 80 row(s) and now holds none"),
    ("DROP TABLE licenses", "licenses are missing"),
    ("DROP TABLE tenant_facts", "tenant_facts are missing"),
    ("DROP TABLE store_meta", "store_meta table is missing"),
])
def test_a_store_that_lost_its_rows_or_a_table_is_refused_not_recreated(db, statement, why):
    sql(db, statement)
    with pytest.raises(StoreDamagedError, match=re.escape(why)):
        policyhistory.open(db)
    status, output = verify(db)
    assert 1 == status and "DAMAGED" in output and why in output
    result = CliRunner().invoke(cli, ["--db", str(db), "policies", "--as-of", "2020-01-01"])
    assert 1 == result.exit_code and "is damaged" in result.output
    conn = sqlite3.connect(db)
    assert "licenses" not in statement or 0 == conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE name = 'licenses'").fetchone()[0] or "DELETE" in statement


def test_a_file_truncated_to_nothing_is_refused(db):
    db.write_bytes(b"")
    for name in ("-wal", "-shm"):
        Path(str(db) + name).unlink(missing_ok=True)
    with pytest.raises(StoreDamagedError, match="empty"):
        policyhistory.open(db)
    status, output = verify(db)
    assert 1 == status and "truncated" in output
    assert 0 == db.stat().st_size


def test_a_duplicate_id_is_a_verdict(db):
    sql(db, "DROP INDEX policy_versions_id",
        "INSERT INTO policy_versions (seq, id, key, kind, valid_from, valid_to, recorded_at, params, source, notes,"
        " in_force, loaded_at, prev_hash, row_hash) SELECT 100, id, key, kind, valid_from, valid_to, recorded_at,"
        " params, source, notes, in_force, loaded_at, prev_hash, row_hash FROM policy_versions WHERE seq = 1")
    status, output = verify(db)
    assert 1 == status and "TAMPERED: policy_versions" in output


def test_a_corrupted_page_is_a_verdict(db):
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(db.read_bytes())
    page = 4096
    for offset in range(page * 2, min(len(data), page * 5)):
        data[offset] = 0xA5
    db.write_bytes(bytes(data))
    status, output = verify(db)
    assert 1 == status
    assert "DAMAGED" in output or "TAMPERED" in output
    assert "Traceback" not in output


def test_an_altered_digest_text_is_refused(db):
    record = json.loads(digest_of(db))
    record["chains"]["licenses"]["rows"] = 11
    result = CliRunner().invoke(cli, ["--db", str(db), "verify", "--digest", json.dumps(record)])
    assert 2 == result.exit_code and "digest text was altered" in result.output


def test_a_store_of_policyhistory_0_1_is_upgraded_keeping_its_history(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(LEGACY, path)
    before = sqlite3.connect(path)
    rows = {name: before.execute(f"SELECT * FROM {name} ORDER BY seq").fetchall()
            for name in ("policy_versions", "tenant_facts", "licenses")}
    before.close()
    store = policyhistory.open(path)
    assert store.verify().ok
    assert {"policy_versions": 20, "tenants": 2, "tenant_facts": 2, "licenses": 12, "rate_cards": 0} == \
        store.verify().rows_checked
    for name, old in rows.items():  # the content kept, only the hashes recomputed
        new = store.db.execute(f"SELECT * FROM {name} ORDER BY seq").fetchall()
        assert [row[:-2] for row in old] == [row[:-2] for row in new]
    meta = dict(store.db.execute("SELECT key, value FROM store_meta").fetchall())
    assert "1" == meta["upgraded_from"]
    assert rows["licenses"][-1][-1] == json.loads(meta["legacy_heads"])["licenses"]
    assert "calling_plan_domestic" not in str(store.tenant_index.tenant_ids())
    assert ("contoso", "seoul") == store.tenant_index.tenant_ids()


def test_a_tampered_store_of_policyhistory_0_1_is_not_upgraded(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(LEGACY, path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER licenses_no_update")
    conn.execute("UPDATE licenses SET assigned = 99 WHERE seq = 3")
    conn.close()
    with pytest.raises(StoreDamagedError, match=r"policyhistory 0\.1 store whose chain does not verify"):
        policyhistory.open(path)


def test_a_chain_added_by_a_later_release_is_created_in_a_store_made_before_it(tmp_path):
    """A store whose store_meta lists the chains it was made with: one not listed is new, not lost."""
    path = tmp_path / "s.db"
    policyhistory.open(path).close()
    sql(path, "DROP TABLE licenses", "DELETE FROM store_meta WHERE key = 'head:licenses'",
        """UPDATE store_meta SET value = '["policy_versions", "tenant_facts", "tenants"]' WHERE key = 'chains'""")
    store = policyhistory.open(path)
    assert 0 == store.db["licenses"].count
    assert store.verify().ok
    assert "licenses" in json.loads(dict(store.db.execute("SELECT key, value FROM store_meta").fetchall())["chains"])


def _forge_append(path: Path, table: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    last = dict(conn.execute(f"SELECT * FROM {table} ORDER BY seq DESC LIMIT 1").fetchone())
    row = {**last, "seq": last["seq"] + 1, "loaded_at": "2030-01-01T00:00:00Z"}
    if table == "policy_versions":
        row["id"] = "forged"
    if table == "tenants":
        row["tenant_id"] = "forged"
    row["prev_hash"], row["row_hash"] = last["row_hash"], chain_hash(last["row_hash"], row["seq"], CHAINS[table], row)
    conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))
    conn.close()


TAMPERING = {
    "delete the last row": lambda path, table: sql(path, f"DELETE FROM {table} WHERE seq = (SELECT max(seq) FROM "
                                                         f"{table})"),
    "delete every row": lambda path, table: sql(path, f"DELETE FROM {table}"),
    "edit the first row": lambda path, table: sql(path, f"UPDATE {table} SET loaded_at = '2001-01-01T00:00:00Z' "
                                                        "WHERE seq = 1"),
    "renumber the last row": lambda path, table: sql(path, f"UPDATE {table} SET seq = seq + 100 WHERE seq = "
                                                           f"(SELECT max(seq) FROM {table})"),
    "swap two rows": lambda path, table: sql(path, f"UPDATE {table} SET seq = -1 WHERE seq = 1",
                                             f"UPDATE {table} SET seq = 1 WHERE seq = 2",
                                             f"UPDATE {table} SET seq = 2 WHERE seq = -1"),
    "append a row with a correct hash": _forge_append,
    "drop the table": lambda path, table: sql(path, f"DROP TABLE {table}"),
    "edit and rechain it all": lambda path, table: (
        sql(path, f"UPDATE {table} SET loaded_at = '2001-01-01T00:00:00Z' WHERE seq = 1"), rechain(path, table)),
    "delete the last row and rechain": lambda path, table: (
        sql(path, f"DELETE FROM {table} WHERE seq = (SELECT max(seq) FROM {table})"), rechain(path, table)),
}
ONLY_THE_DIGEST_CATCHES = {"edit and rechain it all", "delete the last row and rechain"}


@pytest.mark.parametrize("table", ["policy_versions", "tenants", "tenant_facts", "licenses"])
@pytest.mark.parametrize("how", sorted(TAMPERING))
def test_every_kind_of_tampering_with_every_chain_is_found(db, table, how):
    """The issue's 72 cases in spirit: nine ways of tampering with each of the four chains. Each is found by
    verify alone, or (a rewrite of the chain and its recorded head) by verify --digest."""
    anchor = digest_of(db)
    TAMPERING[how](db, table)
    status, output = verify(db, "--digest", anchor)
    assert 1 == status, output
    assert table in output
    if how not in ONLY_THE_DIGEST_CATCHES:  # (a rechained tenants chain lacking a tenant: its facts tell)
        assert 1 == verify(db)[0]
