from __future__ import annotations

from click.testing import CliRunner

import policyhistory
from policyhistory.cli import cli


def tamper(path, sql):
    store = policyhistory.open(path)
    store.db.execute("DROP TRIGGER policy_versions_no_update")
    store.db.execute("DROP TRIGGER policy_versions_no_delete")
    store.db.execute(sql)
    store.db.conn.commit()
    store.close()


def test_verify_passes_on_untouched_store(fresh_store):
    report = fresh_store.verify()
    assert report.ok
    assert {"policy_versions": 80, "tenants": 0, "tenant_facts": 0, "licenses": 0, "rate_cards": 0} == \
        report.rows_checked


def test_verify_names_the_edited_row(tmp_path):
    path = tmp_path / "ph.db"
    tamper(path, "UPDATE policy_versions SET params = replace(params, '900', '9000') "
                 "WHERE id = 'complimentary-dial-out-through-november-2019'")
    store = policyhistory.open(path)
    broken = store.verify().first_break
    expected_seq = store.db.execute(
        "SELECT seq FROM policy_versions WHERE id = 'complimentary-dial-out-through-november-2019'").fetchone()[0]
    assert ("policy_versions", expected_seq, "complimentary-dial-out-through-november-2019") == (
        broken.table, broken.seq, broken.record_id)
    assert "edited" in broken.reason
    result = CliRunner().invoke(cli, ["--db", str(path), "verify"])
    assert 1 == result.exit_code
    assert "complimentary-dial-out-through-november-2019" in result.output


def test_verify_finds_a_deleted_row(tmp_path):
    path = tmp_path / "ph.db"
    tamper(path, "DELETE FROM policy_versions WHERE seq = 3")
    broken = policyhistory.open(path).verify().first_break
    assert 4 == broken.seq
    assert "removed" in broken.reason


def test_verify_covers_tenant_facts(tmp_path):
    path = tmp_path / "ph.db"
    store = policyhistory.open(path)
    store.add_tenant_facts([policyhistory.TenantFact("t", "2018-01-01", "US", True)],
                           [policyhistory.LicenseFact("t", "2018-01-01", "audio_conferencing", "US", 10, 10),
                            policyhistory.LicenseFact("t", "2018-01-01", "audio_conferencing", "GB", 0, 5)])
    store.db.execute("DROP TRIGGER licenses_no_update")
    store.db.execute("UPDATE licenses SET assigned = 50 WHERE usage_location = 'GB'")
    store.db.conn.commit()
    broken = policyhistory.open(path).verify().first_break
    assert ("licenses", 2, "t") == (broken.table, broken.seq, broken.record_id)
