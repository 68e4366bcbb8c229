"""What `policyhistory serve` runs: uvicorn over the app factory, the settings handed to each worker through
the environment."""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from .settings import Settings, is_loopback

__all__ = ["Settings", "check", "run"]


def check(settings: Settings, host: str) -> None:
    """Refuse to listen beyond loopback without a token: the write routes would be open to the network."""
    if not is_loopback(host) and not settings.token:
        raise ValueError(f"--host {host} is not a loopback address: give a token (POLICYHISTORY_TOKEN or "
                         "--token-file) before serving beyond this machine")


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with Nagle's algorithm off on every connection. With --workers, uvicorn
    binds the listening socket itself as socket.socket(AF_INET), protocol 0, and asyncio turns TCP_NODELAY on
    only for sockets whose protocol says TCP: each response then waited for the client's delayed ACK, about
    44 ms a request at concurrency 1 (21 requests/s against 480 with one worker, see benchmarks/README.md)."""

    def connection_made(self, transport: Any) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def run(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    os.environ.update(settings.environment())
    uvicorn.run("policyhistory.service.app:from_environment", factory=True, host=host, port=port, workers=workers,
                http=NoDelayH11Protocol, log_level="warning", access_log=False, proxy_headers=False,
                server_header=False)
