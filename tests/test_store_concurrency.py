"""Loads are one transaction each; writers wait for each other; first use is safe under a race."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import policyhistory
from policyhistory.cli import cli

from .conftest import version_toml

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def facts(folder: Path, tenant: str) -> tuple[Path, Path]:
    tenants = folder / f"{tenant}.tenants.csv"
    tenants.write_text(f"tenant_id,valid_from,country,communications_credits\n{tenant},2018-01-22,US,true\n",
                       encoding="utf-8")
    licenses = folder / f"{tenant}.licenses.csv"
    licenses.write_text("tenant_id,valid_from,sku,usage_location,purchased,assigned\n"
                        f"{tenant},2018-01-22,MCOMEETADV,US,10,4\n{tenant},2019-01-01,MCOMEETADV,US,12,6\n",
                        encoding="utf-8")
    return tenants, licenses


def test_a_combined_load_with_a_bad_catalog_writes_no_tenant_facts(tmp_path, write_catalog):
    db = tmp_path / "s.db"
    bad = write_catalog("bad.toml", version_toml("v1", valid_from="2020-02-01T00:00:00"))  # naive: refused
    tenants, licenses = facts(tmp_path, "fabrikam")
    result = CliRunner().invoke(cli, ["--db", str(db), "load", str(bad), "--tenants", str(tenants),
                                      "--licenses", str(licenses)])
    assert 1 == result.exit_code
    assert "nothing was written" in result.output
    store = policyhistory.open(db)
    assert (0, 0, 0) == tuple(store.db[name].count for name in ("tenants", "tenant_facts", "licenses"))


def test_a_combined_load_writes_catalog_and_facts_together(tmp_path, write_catalog):
    db = tmp_path / "s.db"
    good = write_catalog("good.toml", version_toml("v1"))
    tenants, licenses = facts(tmp_path, "fabrikam")
    result = CliRunner().invoke(cli, ["--db", str(db), "load", str(good), "--tenants", str(tenants),
                                      "--licenses", str(licenses)])
    assert 0 == result.exit_code, result.output
    assert "added 4 record(s)" in result.output  # v1, one tenant fact, two licenses
    store = policyhistory.open(db)
    assert 1 == store.db.execute("SELECT count(*) FROM policy_versions WHERE id = 'v1'").fetchone()[0]
    assert (1, 1, 2) == tuple(store.db[name].count for name in ("tenants", "tenant_facts", "licenses"))


def test_a_writer_that_cannot_get_the_lock_says_the_store_is_busy(tmp_path, monkeypatch):
    db = tmp_path / "s.db"
    policyhistory.open(db).close()
    tenants, _ = facts(tmp_path, "fabrikam")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        monkeypatch.setenv("POLICYHISTORY_BUSY_TIMEOUT", "0.2")
        result = CliRunner().invoke(cli, ["--db", str(db), "load", "--tenants", str(tenants)])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert 1 == result.exit_code
    assert isinstance(result.exception, SystemExit)
    assert "is busy: another process is writing to it" in result.output
    assert 0 == policyhistory.open(db).db["tenant_facts"].count


def run_all(commands: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    processes = [subprocess.Popen([sys.executable, "-m", "policyhistory.cli", *command], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for command in commands]
    results = []
    for process, command in zip(processes, commands, strict=True):
        out, err = process.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(command, process.returncode, out, err))
    return results


def test_concurrent_loaders_and_readers_on_a_new_store(tmp_path):
    """Eight loaders (each its own tenant, and the bundled catalog again) and four readers, started together
    on a store that does not exist yet: every command succeeds, every load lands exactly once, verify passes."""
    db = str(tmp_path / "s.db")
    commands: list[list[str]] = []
    tenants = [f"tenant{index}" for index in range(8)]
    for tenant in tenants:
        tenant_file, license_file = facts(tmp_path, tenant)
        commands.append(["--db", db, "load", str(EXAMPLES.parent / "policies"), "--tenants", str(tenant_file),
                         "--licenses", str(license_file)])
    for index in range(4):
        commands.insert(index * 3, ["--db", db, "verify"] if index % 2 else
                        ["--db", db, "policies", "--as-of", "2020-01-01", "--json"])
    results = run_all(commands)
    for result in results:
        assert 0 == result.returncode, (result.args, result.stderr)
        assert "Traceback" not in result.stderr
    store = policyhistory.open(db)
    assert 80 == store.db["policy_versions"].count
    assert sorted(tenants) == [row[0] for row in store.db.execute("SELECT tenant_id FROM tenants ORDER BY 1")]
    per_tenant = dict(store.db.execute("SELECT tenant_id, count(*) FROM licenses GROUP BY tenant_id").fetchall())
    assert dict.fromkeys(tenants, 2) == per_tenant
    assert 8 == store.db["tenant_facts"].count
    assert store.verify().ok


def test_first_use_races_make_one_store(tmp_path):
    db = str(tmp_path / "new.db")
    results = run_all([["--db", db, "policies", "--as-of", "2020-01-01", "--json"] for _ in range(6)])
    assert [0] * 6 == [result.returncode for result in results], [r.stderr for r in results]
    store = policyhistory.open(db)
    assert 80 == store.db["policy_versions"].count
    assert store.verify().ok
    assert [] == [p.name for p in tmp_path.iterdir() if p.name.endswith(".new")]


def test_a_full_disk_is_an_error_and_leaves_the_store_as_it_was(tmp_path):
    store = policyhistory.open(tmp_path / "s.db")
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's "database or disk is full", as on a full disk
    licenses = tmp_path / "l.csv"
    licenses.write_text("tenant_id,valid_from,sku,usage_location,purchased,assigned\n" + "".join(
        f"t{index},2018-01-22,MCOMEETADV,US,10,4\n" for index in range(3000)), encoding="utf-8")
    tenants = tmp_path / "t.csv"
    tenants.write_text("tenant_id,valid_from,country,communications_credits\n" + "".join(
        f"t{index},2018-01-22,US,true\n" for index in range(3000)), encoding="utf-8")
    with pytest.raises(policyhistory.StoreUnusableError, match="full"):
        store.load_tenant_facts(tenants, licenses)
    assert (0, 0) == (store.db["tenant_facts"].count, store.db["licenses"].count)
    assert store.verify().ok
