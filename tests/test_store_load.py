from __future__ import annotations

import sqlite3

import pytest

import policyhistory
from policyhistory import AppendOnlyError, InvalidRecordsError

from .conftest import version_toml


def row_count(store: policyhistory.Store) -> int:
    return store.db["policy_versions"].count


def test_load_is_idempotent(empty_store, write_catalog):
    path = write_catalog("a.toml", version_toml("v1"), version_toml("v2", key="other"))
    first = empty_store.load([path])
    second = empty_store.load([path])
    assert ("v1", "v2") == first.added
    assert () == second.added
    assert ("v1", "v2") == second.unchanged
    assert 2 == row_count(empty_store)


def test_load_refuses_changed_content_for_existing_id(empty_store, write_catalog):
    empty_store.load([write_catalog("a.toml", version_toml("v1", minutes=60))])
    with pytest.raises(AppendOnlyError, match="history is append-only: add a new version"):
        empty_store.load([write_catalog("b.toml", version_toml("v1", minutes=30))])
    assert 1 == row_count(empty_store)


def test_load_refused_bad_file_leaves_store_unchanged(empty_store, write_catalog):
    empty_store.load([write_catalog("good.toml", version_toml("v1"))])
    before = list(empty_store.db.query("select * from policy_versions"))
    bad = write_catalog(
        "bad.toml",
        version_toml("v2", key="other"),  # fine on its own
        version_toml("v3", key="third", valid_from="2022-01-01T00:00:00Z", valid_to="2021-01-01T00:00:00Z"),
    )
    with pytest.raises(InvalidRecordsError):
        empty_store.load([bad])
    assert before == list(empty_store.db.query("select * from policy_versions"))


def test_load_errors_name_file_line_record_and_field_and_collect_all(empty_store, write_catalog):
    bad = write_catalog(
        "bad.toml",
        version_toml("ok"),
        version_toml("naive", key="k2", valid_from="2020-02-01T00:00:00"),
        version_toml("backwards", key="k3", valid_from="2022-01-01T00:00:00Z", valid_to="2021-01-01T00:00:00Z"),
        version_toml("dateonly", key="k4", recorded_at="2020-01-01"),
        version_toml("kind", key="k5", extra='kind_typo = "x"'),
    )
    with pytest.raises(InvalidRecordsError) as caught:
        empty_store.load([bad])
    found = {(p.record, p.field, p.line) for p in caught.value.problems}
    assert {
        ("naive", "valid_from", 22),  # the field's own line, not its [[version]] line (issue 15)
        ("backwards", "valid_to", 40),
        ("dateonly", "recorded_at", 58),
        ("kind", "kind_typo", 76),
    } == found
    assert all(p.file == str(bad) for p in caught.value.problems)
    assert "naive datetime 2020-02-01T00:00:00: a UTC offset is required" in str(caught.value)


@pytest.mark.parametrize(
    ("replace", "field", "message"),
    [
        ('kind = "minute_rounding"', "kind", "unknown policy kind 'nonsense'"),
        ('key = "test.key"\n', "key", "required field is missing"),
        ('unit_seconds = 60', "params.unit_seconds", "expected int"),
        ('mode = "up"', "params.colour", "unknown field"),
    ],
)
def test_load_refuses_bad_fields(empty_store, write_catalog, replace, field, message):
    substitutes = {
        "kind": 'kind = "nonsense"',
        "key": "",
        "params.unit_seconds": 'unit_seconds = "sixty"',
        "params.colour": 'mode = "up"\ncolour = "blue"',
    }
    text = version_toml("v1").replace(replace, substitutes[field])
    with pytest.raises(InvalidRecordsError) as caught:
        empty_store.load([write_catalog("bad.toml", text)])
    problems = caught.value.problems
    assert [field] == [p.field for p in problems]
    assert message in problems[0].message
    assert 0 == row_count(empty_store)


def test_load_refuses_same_key_same_recorded_at_overlapping(empty_store, write_catalog):
    path = write_catalog(
        "clash.toml",
        version_toml("a", valid_from="2020-01-01T00:00:00Z", valid_to="2020-07-01T00:00:00Z"),
        version_toml("b", valid_from="2020-06-01T00:00:00Z"),
    )
    with pytest.raises(InvalidRecordsError, match="which one holds is ambiguous"):
        empty_store.load([path])
    assert 0 == row_count(empty_store)


def test_load_refuses_overlap_with_an_already_stored_version(empty_store, write_catalog):
    empty_store.load([write_catalog("a.toml", version_toml("a", valid_to="2020-07-01T00:00:00Z"))])
    with pytest.raises(InvalidRecordsError, match="overlaps 'a'"):
        empty_store.load([write_catalog("b.toml", version_toml("b", valid_from="2020-03-01T00:00:00Z"))])


def test_load_accepts_adjacent_intervals_recorded_together(empty_store, write_catalog):
    path = write_catalog(
        "adjacent.toml",
        version_toml("a", valid_to="2020-07-01T00:00:00Z"),
        version_toml("b", valid_from="2020-07-01T00:00:00Z", minutes=30),
    )
    assert ("a", "b") == empty_store.load([path]).added


def test_load_reports_toml_syntax_error_with_line(empty_store, write_catalog):
    path = write_catalog("broken.toml", version_toml("a") + "\nthis is not toml\n")
    with pytest.raises(InvalidRecordsError) as caught:
        empty_store.load([path])
    assert [(str(path), 19)] == [(p.file, p.line) for p in caught.value.problems]


def test_load_reports_a_file_not_in_utf8_with_line_and_keeps_reading_the_others(empty_store, write_catalog):
    good = write_catalog("good.toml", version_toml("a"))
    latin1 = good.parent / "latin1.toml"
    latin1.write_bytes((version_toml("b") + "\n# caf\u00e9\n").encode("latin-1"))
    broken = write_catalog("broken.toml", version_toml("c") + "\nthis is not toml\n")
    with pytest.raises(InvalidRecordsError) as caught:
        empty_store.load([good, latin1, broken])
    assert [(str(latin1), 19), (str(broken), 19)] == [(p.file, p.line) for p in caught.value.problems]
    assert "not UTF-8 text (byte 0xe9); TOML files are UTF-8" == caught.value.problems[0].message
    assert 0 == empty_store.db["policy_versions"].count


@pytest.mark.parametrize("statement", [
    "UPDATE policy_versions SET notes = 'x'",
    "DELETE FROM policy_versions",
])
def test_store_policy_versions_are_append_only(fresh_store, statement):
    with pytest.raises(sqlite3.IntegrityError, match="policy_versions is append-only"):
        fresh_store.db.execute(statement)


def test_store_file_uses_wal_and_foreign_keys(tmp_path):
    store = policyhistory.open(tmp_path / "ph.db")
    assert "wal" == store.db.execute("PRAGMA journal_mode").fetchone()[0]
    assert 1 == store.db.execute("PRAGMA foreign_keys").fetchone()[0]
    assert 80 == store.db["policy_versions"].count
    store.close()
    reopened = policyhistory.open(tmp_path / "ph.db")
    assert 80 == reopened.db["policy_versions"].count  # not loaded twice
