"""Records without their trace (POST /v1/rate/batch with "trace": false) are rating_record(..., trace=False)
of the ratings rate_all gives: the same fields, values and order, the same refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import policyhistory
from policyhistory import PolicyHistoryError
from policyhistory._records import rating_record

from .test_rerate_agreement import KNOWN_AT, _store, call_rows, calls


def both(store: policyhistory.Store, rows: list[dict[str, Any]], **options: Any) -> tuple[object, object]:
    def traced() -> object:
        try:
            return [rating_record(r, trace=False) for r in store.rater(**options).rate_all(rows)]
        except PolicyHistoryError as error:
            return (type(error).__name__, str(error))

    def untraced() -> object:
        try:
            return store.rater(**options).records(rows, trace=False)
        except PolicyHistoryError as error:
            return (type(error).__name__, str(error))

    return traced(), untraced()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=calls)
def test_records_without_trace_are_the_ratings_records(tmp_path: Path, drawn: list[tuple[Any, ...]]) -> None:
    store = _store(tmp_path)
    rows = call_rows(drawn)
    # One call at a time too, so that refusals (a call of 2018 known before anything was) are compared as well
    # as whole batches; with usage ids, and under a what-if as_of.
    for batch in [rows, *([row] for row in rows[:5]),
                  [{**row, "usage_id": f"u{index}"} for index, row in enumerate(rows)]]:
        for options in ({"known_at": KNOWN_AT}, {"known_at": "2018-06-01"}, {"known_at": KNOWN_AT,
                                                                              "as_of": "2019-06-01"}):
            expected, found = both(store, batch, **options)
            assert expected == found
            assert json.dumps(expected) == json.dumps(found)  # key order too


def test_records_with_trace_are_rating_records(tmp_path: Path) -> None:
    store = _store(tmp_path)
    rows = call_rows([("acme", 3600 * index, "2019-11-20T00:00:00Z", 600, "conf_out", "+33142685300", "FR",
                       "audio_conferencing;communications_credits") for index in range(30)])
    expected = [rating_record(r) for r in store.rater(known_at=KNOWN_AT).rate_all(rows)]
    assert expected == store.rater(known_at=KNOWN_AT).records(rows)
    assert all(record["trace"] for record in expected)
    assert [r["pool_used_before"] for r in expected][:3] == [0, 10, 20]  # pools carried from call to call


@pytest.mark.parametrize("trace", [True, False])
def test_a_call_charged_twice_is_refused_either_way(tmp_path: Path, trace: bool) -> None:
    store = _store(tmp_path)
    row = call_rows([("acme", 0, "2019-11-20T00:00:00Z", 600, "conf_out", "+33142685300", "FR",
                      "audio_conferencing")])[0]
    with pytest.raises(policyhistory.DuplicateCallError):
        store.rater(known_at=KNOWN_AT).records([row, row], trace=trace)
