"""The same records however the calls are rated: one by one (store.rate with a pool state), in a batch
(Rater.rate_all), by rerate in tenant shards in this process, in 2 and 3 processes, and on a 2-worker Dask
LocalCluster (processes)."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import policyhistory
from policyhistory import PolicyHistoryError, PoolState, Rerate
from policyhistory._records import rating_record
from policyhistory.cli import cli

from . import test_rerate_agreement as agreement

distributed = pytest.importorskip("distributed")

KNOWN_AT = pendulum.datetime(2026, 11, 23, tz="UTC")
TENANT_IDS = ["acme", "seoul", "umbrella", "globex"]
# The agreement test's tenants and licenses, and two tenants more (one whose pool grows mid-month).
TENANTS = agreement.TENANTS + "umbrella,2017-01-01,US,true\nglobex,2017-01-01,GB,false\n"
LICENSES = agreement.LICENSES + """umbrella,2017-01-01,audio_conferencing,US,1,1
umbrella,2020-10-15,audio_conferencing,US,3,3
umbrella,2017-01-01,communications_credits,US,2,2
globex,2017-01-01,audio_conferencing,GB,2,2
"""
COLUMNS = agreement.COLUMNS
DESTINATIONS = [*agreement.DESTINATIONS, "+442071234567"]
LICENSE_SETS = agreement.LICENSE_SETS[:4]
COMPARED = ("call_id", "tenant_id", "start", "outcome", "billable_minutes", "pool_minutes", "credit_minutes",
            "uncovered_minutes", "destination_country", "number_type", "pool", "pool_capacity", "pool_used_before",
            "pool_used_after", "policy_versions", "alerts", "warnings")


@pytest.fixture(scope="module")
def dask_address() -> Iterator[str]:
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def _store(tmp: Path) -> policyhistory.Store:
    return agreement._store(tmp, TENANTS, LICENSES)


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _conference_calls(tmp_path: Path, count: int, month: str, seconds: int, licenses: str) -> Path:
    """calls.csv of `count` conference dial-outs over the four tenants in `month` (YYYY-MM), the n-th lasting
    n * `seconds`, the organizers holding `licenses`."""
    path = tmp_path / "calls.csv"
    _write(path, [{"call_id": f"c{index}", "tenant_id": TENANT_IDS[index % 4],
                   "start": f"{month}-{1 + index % 28:02d}T{index % 24:02d}:00:00Z",
                   "duration_seconds": str(seconds * index), "call_type": "conf_out", "organizer_id": "o",
                   "organizer_usage_location": "", "organizer_licenses": licenses,
                   "destination": DESTINATIONS[index % len(DESTINATIONS)]} for index in range(count)])
    return path


def _call(row: dict[str, str]) -> dict[str, Any]:
    return {"call_id": row["call_id"], "tenant_id": row["tenant_id"], "start": row["start"],
            "duration_seconds": row["duration_seconds"], "call_type": row["call_type"],
            "destination": row["destination"], "usage_location": row["organizer_usage_location"] or None,
            "licenses": row["organizer_licenses"]}


def _kept(record: dict[str, Any]) -> tuple[Any, ...]:
    if record["outcome"] == "rejected":
        return (record["call_id"], "rejected", record["error"])
    return tuple(record[key] for key in COMPARED)


def _one_by_one(store: policyhistory.Store, rows: list[dict[str, str]]) -> dict[str, tuple[Any, ...]]:
    """store.rate, one call after another in (start, call id) order, with one pool state."""
    state = PoolState()
    found: dict[str, tuple[Any, ...]] = {}
    calls = sorted((_call(row) for row in rows), key=lambda c: (pendulum.parse(c["start"]), c["call_id"]))
    for call in calls:
        try:
            found[call["call_id"]] = _kept(rating_record(store.rate(call, known_at=KNOWN_AT, pool_state=state)))
        except PolicyHistoryError as error:
            found[call["call_id"]] = (call["call_id"], "rejected", str(error))
    return found


def _batch(store: policyhistory.Store, rows: list[dict[str, str]]) -> dict[str, tuple[Any, ...]]:
    ratings = store.rater(known_at=KNOWN_AT).rate_all([_call(row) for row in rows])
    return {rating.call_id: _kept(rating_record(rating)) for rating in ratings}


def _rerate(store: policyhistory.Store, path: Path, **options: Any) -> tuple[list[str], Rerate]:
    run = Rerate(store, [path], known_at=KNOWN_AT, **options)
    return list(run.records_json()), run


calls = st.lists(
    st.tuples(
        st.sampled_from(TENANT_IDS),
        st.integers(min_value=0, max_value=24 * 3600 * 40 - 1),  # 40 days around a boundary
        st.sampled_from(["2019-11-20T00:00:00Z", "2020-10-10T00:00:00Z", "2020-11-05T00:00:00Z"]),
        st.integers(min_value=0, max_value=5 * 3600),
        st.sampled_from(["conf_out", "user_out", "conf_in"]),
        st.sampled_from(DESTINATIONS),
        st.sampled_from(["FR", "US", "KR", "GB", ""]),
        st.sampled_from(LICENSE_SETS),
    ),
    min_size=1, max_size=30)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # no shrinking: each example starts processes
@given(calls=calls)
def test_scale_same_records_one_by_one_batched_sharded_processes_and_dask(tmp_path, dask_address, calls):
    rows = agreement.call_rows(calls)
    path = tmp_path / f"calls-{len(rows)}.csv"
    _write(path, rows)
    store = _store(tmp_path)
    expected = _one_by_one(store, rows)
    if any(kept[1] == "rejected" for kept in expected.values()):
        with pytest.raises(PolicyHistoryError):  # rate_all stops at the first call it cannot rate
            _batch(store, rows)
    else:
        assert expected == _batch(store, rows)
    reference, _ = _rerate(store, path, workers=1, shards=1)
    assert expected == {record["call_id"]: _kept(record) for record in map(json.loads, reference)}
    for options in ({"workers": 1, "shards": 2}, {"workers": 1, "shards": 3}, {"workers": 2}, {"workers": 3},
                    {"dask": dask_address, "shards": 3}):
        texts, _ = _rerate(store, path, **options)
        assert reference == texts, options  # byte for byte


def test_scale_dask_spreads_shards_over_its_workers(tmp_path, dask_address):
    path = _conference_calls(tmp_path, 200, "2020-10", 60, "audio_conferencing;communications_credits")
    store = _store(tmp_path)
    here, _ = _rerate(store, path, workers=1)
    there, run = _rerate(store, path, dask=dask_address, shards=8)
    assert here == there
    assert 2 == len(run.workers_used), run.workers_used
    assert all(worker.startswith("tcp://") for worker in run.workers_used)


def test_scale_dask_with_a_file_url_workdir_gives_the_local_workdirs_records(tmp_path, dask_address):
    path = _conference_calls(tmp_path, 120, "2020-11", 45, "audio_conferencing")
    store = _store(tmp_path)
    (tmp_path / "local").mkdir()
    (tmp_path / "shared").mkdir()
    here, _ = _rerate(store, path, workers=1, workdir=tmp_path / "local")
    there, run = _rerate(store, path, dask=dask_address, shards=8, workdir=f"file://{tmp_path / 'shared'}")
    assert here == there  # byte for byte
    assert 2 == len(run.workers_used), run.workers_used
    assert [] == list((tmp_path / "shared").iterdir())


def test_scale_dask_workers_take_each_runs_own_context(tmp_path, dask_address):
    """A Dask worker serves run after run, each with its own context (policies as known then, tenant facts),
    which it reads from the run's scratch folder once: a run under another known_at, on the same workers, gets
    its own answers, not the context the workers read for the run before."""
    path = _conference_calls(tmp_path, 60, "2018-09", 60, "audio_conferencing;communications_credits")
    store = _store(tmp_path)
    found = {}
    for known_at in ("2018-07-01T00:00:00Z", KNOWN_AT, "2018-07-01T00:00:00Z"):
        here = list(Rerate(store, [path], known_at=known_at, workers=1).records_json())
        there = list(Rerate(store, [path], known_at=known_at, dask=dask_address, shards=4).records_json())
        strip = [json.loads(line) | {"run_id": None} for line in here]
        assert strip == [json.loads(line) | {"run_id": None} for line in there]
        found[known_at] = [record["outcome"] for record in strip]
    assert found["2018-07-01T00:00:00Z"] != found[KNOWN_AT]  # the two beliefs differ for September 2018


def test_scale_cli_workers_and_dask_give_the_same_output(tmp_path, dask_address):
    examples = Path(__file__).resolve().parent.parent / "examples"
    args = ["--db", str(tmp_path / "p.db"), "rerate", str(examples / "PSTN.calls.2022-06-30.csv"),
            str(examples / "calls.csv"), "--tenants", str(examples / "tenants.csv"), "--licenses",
            str(examples / "licenses.csv"), "--tenant", "contoso", "--known-at", "2026-11-23"]
    outputs = [CliRunner().invoke(cli, [*args, *extra]) for extra in (["--workers", "1"], ["--workers", "2"],
                                                                      ["--dask", dask_address])]
    assert [0, 0, 0] == [result.exit_code for result in outputs], [result.output for result in outputs]
    assert 21 == len(outputs[0].stdout.splitlines())
    # Byte for byte but for what names each run: its run_id, and the instant its store digest was taken.
    assert all(21 == len(RUN_ID.findall(result.stdout)) for result in outputs)
    assert RUN_ID.sub("", outputs[0].stdout) == RUN_ID.sub("", outputs[1].stdout) == RUN_ID.sub("", outputs[2].stdout)
    assert all(result.stderr.splitlines()[-1].startswith("store digest: {") for result in outputs)
    assert outputs[0].stderr.splitlines()[:-1] == outputs[1].stderr.splitlines()[:-1] == \
        outputs[2].stderr.splitlines()[:-1]


RUN_ID = re.compile(r'"run_id": "[^"]+"')


def test_scale_dask_unreachable_or_missing_is_a_clear_error(tmp_path, monkeypatch):
    examples = Path(__file__).resolve().parent.parent / "examples"
    args = ["--db", str(tmp_path / "p.db"), "rerate", str(examples / "calls.csv"), "--tenants",
            str(examples / "tenants.csv"), "--licenses", str(examples / "licenses.csv")]
    unreachable = CliRunner().invoke(cli, [*args, "--dask", "tcp://127.0.0.1:9"])
    assert 2 == unreachable.exit_code
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in unreachable.output
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were not installed
    missing = CliRunner().invoke(cli, [*args, "--dask", "tcp://127.0.0.1:9"])
    assert 2 == missing.exit_code
    assert "pip install 'policyhistory[dask]'" in missing.output
