"""`serve --workers N`: every worker gets connections (a socket per worker, SO_REUSEPORT), and a port already
taken is refused, as with one worker."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .service_server import FRANCE_CALL, free_port, load_example_tenants, running

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def sockets_on(port: int, state: str) -> set[str]:
    """Socket inodes of the TCP sockets whose local port is `port`, in `state` (01 established, 0A listening)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
            inodes.add(fields[9])
    return inodes


def sockets_of(pid: int) -> set[str]:
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            held.add(target[8:-1])
    return held


def test_two_workers_share_the_connections_of_one_client(tmp_path: Path) -> None:
    """16 keep-alive connections opened at once (as a load generator or a proxy's pool opens them) land on
    both workers; on uvicorn's one shared socket they all went to the worker that woke first."""
    with running(tmp_path / "store.db", "--workers", "2") as server:
        with server.client() as client:
            load_example_tenants(client)
        deadline = time.monotonic() + 60  # the server answers once one worker is up; wait for the second
        while len(sockets_on(server.port, "0A")) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        # Connected in a burst, before any request: the kernel completes them all at once.
        clients = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(16)]
        try:
            body = json.dumps({"call": FRANCE_CALL}).encode()
            request = (b"POST /v1/rate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                       b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            for client in clients:
                client.sendall(request)
            for client in clients:
                assert client.recv(65536).startswith(b"HTTP/1.1 200 ")
            assert server.process is not None
            workers = children(server.process.pid)
            assert len(workers) >= 2
            connections = sockets_on(server.port, "01")
            per_worker = [len(sockets_of(pid) & connections) for pid in workers]
            assert sum(per_worker) == 16
            assert sorted(per_worker)[-2] >= 1, per_worker  # no worker holds them all
        finally:
            for client in clients:
                client.close()


def test_workers_refuse_a_port_in_use(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = subprocess.run([sys.executable, "-m", "policyhistory.cli", "--db", str(tmp_path / "s.db"), "serve",
                               "--port", str(port), "--workers", "2"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "in use" in done.stderr
    with pytest.raises(httpx.TransportError):  # and nothing listens there now
        httpx.get(f"http://127.0.0.1:{port}/v1/verify", timeout=2)
