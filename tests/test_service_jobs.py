"""Jobs that do not end well: a server killed mid-job, a job cancelled while it runs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .service_server import AUTH, ROOT, running, wait_for_job


@pytest.fixture(scope="module")
def big_calls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200,000 calls of 200 tenants (benchmarks/generate.py): a job of a few seconds."""
    folder = tmp_path_factory.mktemp("generated")
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"), str(folder), "--calls", "200000",
                    "--tenants", "200"], check=True, capture_output=True)
    return folder


def start_big_job(client: httpx.Client, folder: Path) -> str:
    files = [("calls", ("calls.csv", (folder / "calls.csv").open("rb"), "text/csv")),
             ("tenants", ("tenants.csv", (folder / "tenants.csv").read_bytes(), "text/csv")),
             ("licenses", ("licenses.csv", (folder / "licenses.csv").read_bytes(), "text/csv"))]
    response = client.post("/v1/jobs", files=files, headers=AUTH)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def wait_until_running(client: httpx.Client, job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job: dict[str, object] = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] == "running" and job["stage"] in ("reading", "rating", "writing"):
            return job
        assert job["state"] in ("queued", "running"), job
        time.sleep(0.02)
    raise AssertionError("the job did not start")


def test_a_server_killed_mid_job_marks_it_failed_at_restart(tmp_path: Path, big_calls: Path) -> None:
    db = tmp_path / "store.db"
    with running(db) as server, server.client() as client:
        job_id = start_big_job(client, big_calls)
        wait_until_running(client, job_id)
        folder = db.with_name(db.name + ".jobs") / job_id
        assert folder.is_dir()
        server.kill()
    assert folder.is_dir()  # nothing tidied up: the process had no chance
    with running(db) as server, server.client() as client:
        job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["state"] == "failed"
        assert "stopped while the job was running" in str(job["error"])
        assert job["counts"] is None
        assert not folder.exists()  # its partial files were removed
        records = client.get(f"/v1/jobs/{job_id}/records")
        assert records.status_code == 409 and records.json()["state"] == "failed"
        assert client.get("/v1/verify").json()["ok"] is True
    verified = subprocess.run([sys.executable, "-m", "policyhistory.cli", "--db", str(db), "verify"],
                              capture_output=True, text=True)
    assert verified.returncode == 0 and verified.stdout.startswith("ok:")


def test_reads_answer_while_a_job_runs_and_a_cancelled_job_leaves_no_files(tmp_path: Path, big_calls: Path) -> None:
    db = tmp_path / "store.db"
    with running(db) as server, server.client() as client:
        job_id = start_big_job(client, big_calls)
        wait_until_running(client, job_id)
        answers = [client.get("/v1/policies", params={"as_of": "2019-01-01"}).status_code for _ in range(10)]
        assert answers == [200] * 10
        assert client.get(f"/v1/jobs/{job_id}").json()["state"] == "running"
        cancelled = client.delete(f"/v1/jobs/{job_id}", headers=AUTH)
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        job = wait_for_job(client, job_id)
        assert job["state"] == "cancelled"
        folder = db.with_name(db.name + ".jobs") / job_id
        deadline = time.monotonic() + 30
        while folder.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not folder.exists()
        assert client.get(f"/v1/jobs/{job_id}").json()["state"] == "cancelled"  # never turned done



def test_two_workers_take_concurrent_writes_in_turn_and_see_each_others(tmp_path: Path) -> None:
    """Writers wait for each other (never "database is locked" to a client), and a version one worker loads
    is answered by the other at once (each drops its caches when another connection wrote)."""
    from concurrent.futures import ThreadPoolExecutor

    db = tmp_path / "store.db"
    with running(db, "--workers", "2") as server:

        def write(index: int) -> list[int]:
            with server.client() as client:
                facts = {"tenants": [{"tenant_id": f"t{index}", "valid_from": "2018-01-22", "country": "US",
                                      "communications_credits": "true"}],
                         "licenses": [{"tenant_id": f"t{index}", "valid_from": "2018-01-22", "sku": "MCOMEETADV",
                                       "usage_location": "US", "purchased": "3", "assigned": "3"}]}
                answers = [client.post("/v1/tenants", json=facts, headers=AUTH).status_code]
                record = {"id": f"concurrent-{index}", "key": f"test.concurrent{index}", "kind": "minute_rounding",
                          "valid_from": "2020-01-01T00:00:00Z", "recorded_at": "2020-01-01T00:00:00Z",
                          "params": {"unit_seconds": 60, "mode": "up"},
                          "source": {"document": "t.md", "section": "s", "quote": "q"}}
                answers.append(client.post("/v1/versions", json=[record], headers=AUTH).status_code)
                for _ in range(6):  # whichever worker answers knows the version just loaded
                    answers.append(client.get(f"/v1/policies/test.concurrent{index}/history").status_code)
                call = {"call_id": "c", "tenant_id": f"t{index}", "start": "2018-09-15T09:00:00Z",
                        "duration_seconds": 60, "call_type": "conf_out", "destination": "+33142685300",
                        "organizer_usage_location": "US", "organizer_licenses": "MCOMEETADD"}
                for _ in range(4):
                    answers.append(client.post("/v1/rate", json={"call": call}).status_code)
                return answers

        with ThreadPoolExecutor(8) as pool:
            answers = [code for codes in pool.map(write, range(16)) for code in codes]
        assert answers == [200] * len(answers)
        with server.client() as client:
            verified = client.get("/v1/verify").json()
        assert verified["ok"] is True
        assert verified["rows_checked"]["tenant_facts"] == 16 and verified["rows_checked"]["licenses"] == 16
