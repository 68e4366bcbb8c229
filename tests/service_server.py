"""A real `policyhistory serve` (uvicorn) in a subprocess on a free port of 127.0.0.1, for the service's tests."""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TOKEN = "test-token-3f6a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FRANCE_CALL = {"call_id": "c1", "tenant_id": "contoso", "start": "2018-09-15T09:00:00Z", "duration_seconds": 900,
               "call_type": "conf_out", "destination": "+33142685300", "organizer_usage_location": "US",
               "organizer_licenses": "MCOMEETADD;MCOPSTNC"}
"""The README's `rate` example: September 2018, a conference dial-out to Paris."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rows(name: str) -> list[dict[str, str]]:
    with (EXAMPLES / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


class Server:
    def __init__(self, db: Path, *extra: str, token: str | None = TOKEN) -> None:
        self.db = db
        self.extra = extra
        self.token = token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = db.with_suffix(".log")

    def start(self) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYHISTORY_")}
        if self.token:
            env["POLICYHISTORY_TOKEN"] = self.token
        command = [sys.executable, "-m", "policyhistory.cli", "--db", str(self.db), "serve", "--port", str(self.port),
                   *self.extra]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}: {self.log.read_text()}")
            try:
                if httpx.get(self.url + "/v1/verify", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not answer within 60 s: {self.log.read_text()}")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)

    def kill(self) -> None:
        """SIGKILL, as a crash: the process gets no chance to tidy up."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@contextmanager
def running(db: Path, *extra: str, token: str | None = TOKEN) -> Iterator[Server]:
    server = Server(db, *extra, token=token).start()
    try:
        yield server
    finally:
        server.stop()


def load_example_tenants(client: httpx.Client) -> None:
    response = client.post("/v1/tenants", json={"tenants": rows("tenants.csv"), "licenses": rows("licenses.csv")},
                           headers=AUTH)
    assert response.status_code == 200, response.text


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, object] = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")
