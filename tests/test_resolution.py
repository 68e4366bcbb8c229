from __future__ import annotations

import datetime as dt

import pendulum
import pytest
from freezegun import freeze_time

import policyhistory
from policyhistory import InstantParseError, NaiveDatetimeError

from .conftest import version_toml


@pytest.fixture
def corrected_store(empty_store, write_catalog):
    """A belief recorded 2020-01-01 (60 s rounding from 2020) corrected on 2021-06-01 for 2020-07 on (30 s)."""
    empty_store.load([write_catalog(
        "history.toml",
        version_toml("belief", valid_from="2020-01-01T00:00:00Z", recorded_at="2020-01-01T00:00:00Z", minutes=60),
        version_toml("correction", valid_from="2020-07-01T00:00:00Z", valid_to="2021-01-01T00:00:00Z",
                     recorded_at="2021-06-01T00:00:00Z", minutes=30),
    )])
    return empty_store


@pytest.mark.parametrize(
    ("as_of", "known_at", "expected"),
    [
        ("2020-08-01", "2021-05-31T23:59:59Z", ("belief",)),      # before the correction was recorded
        ("2020-08-01", "2021-06-01T00:00:00Z", ("correction",)),  # from its recording on
        ("2020-06-30T23:59:59Z", "2022-01-01", ("belief",)),       # outside the corrected valid time
        ("2021-01-01T00:00:00Z", "2022-01-01", ("belief",)),       # valid_to is outside: the belief again
        ("2020-12-31T23:59:59Z", "2022-01-01", ("correction",)),
        ("2019-12-31T23:59:59Z", "2022-01-01", ()),                # before anything is in force
        ("2020-08-01", "2019-12-31", ()),                          # before anything was known
    ],
)
def test_resolution_bitemporal(corrected_store, as_of, known_at, expected):
    assert expected == corrected_store.policies(as_of, known_at=known_at).ids


def test_resolution_half_open_boundary(empty_store, write_catalog):
    empty_store.load([write_catalog("a.toml", version_toml("a", valid_to="2020-07-01T00:00:00Z"))])
    assert ("a",) == empty_store.policies("2020-06-30T23:59:59.999999Z", "2021-01-01").ids
    assert () == empty_store.policies("2020-07-01T00:00:00Z", "2021-01-01").ids


def test_resolution_retraction_ends_a_policy(empty_store, write_catalog):
    empty_store.load([write_catalog(
        "a.toml",
        version_toml("a"),
        version_toml("gone", valid_from="2020-03-01T00:00:00Z", valid_to="2020-04-01T00:00:00Z",
                     recorded_at="2020-02-01T00:00:00Z", extra="in_force = false"),
    )])
    assert () == empty_store.policies("2020-03-15", "2021-01-01").ids
    assert ("a",) == empty_store.policies("2020-04-01", "2021-01-01").ids
    assert ("a",) == empty_store.policies("2020-03-15", "2020-01-15").ids


@pytest.mark.parametrize(
    "as_of",
    [
        "2020-08-01",
        "2020-08-01T00:00:00Z",
        "2020-08-01T02:00:00+02:00",
        dt.date(2020, 8, 1),
        dt.datetime(2020, 8, 1, tzinfo=dt.UTC),
        pendulum.datetime(2020, 7, 31, 20, tz="America/New_York"),
    ],
)
def test_resolution_accepts_every_instant_form(corrected_store, as_of):
    expected = corrected_store.policies("2020-08-01T00:00:00Z", "2022-01-01")
    assert expected is corrected_store.policies(as_of, "2022-01-01")


@pytest.mark.parametrize("naive", ["2020-08-01T00:00:00", dt.datetime(2020, 8, 1)])
def test_resolution_refuses_naive_instants(corrected_store, naive):
    with pytest.raises(NaiveDatetimeError, match="as_of: expected an aware instant"):
        corrected_store.policies(naive)
    with pytest.raises(NaiveDatetimeError, match="known_at"):
        corrected_store.policies("2020-08-01", known_at=naive)


def test_resolution_refuses_unreadable_instant(corrected_store):
    with pytest.raises(InstantParseError, match="as_of"):
        corrected_store.policies("last tuesday")


def test_resolution_same_interval_same_object(corrected_store):
    first = corrected_store.policies("2020-08-01", "2022-01-01")
    assert first is corrected_store.policies("2020-11-30T12:00:00Z", "2023-05-01")


def test_resolution_known_at_defaults_to_now(write_catalog):
    store = policyhistory.open(bundled=False)  # the real clock, frozen by freezegun
    store.load([write_catalog("h.toml",
        version_toml("belief", recorded_at="2020-01-01T00:00:00Z"),
        version_toml("correction", recorded_at="2021-06-01T00:00:00Z", minutes=30))])
    with freeze_time("2021-05-31T12:00:00Z"):
        assert ("belief",) == store.policies("2020-08-01").ids
    with freeze_time("2021-06-02T12:00:00Z"):
        assert ("correction",) == store.policies("2020-08-01").ids


def test_resolution_future_dated_version_is_like_any_other(empty_store, write_catalog):
    empty_store.load([write_catalog("f.toml",
        version_toml("now", valid_to="2030-01-01T00:00:00Z"),
        version_toml("future", valid_from="2030-01-01T00:00:00Z", minutes=30))])
    assert ("future",) == empty_store.policies("2030-01-01", "2026-11-23").ids
