"""What `policyhistory serve` runs: uvicorn over the app factory, the settings handed to each worker through
the environment.

uvicorn parses HTTP with httptools where it is installed (a dependency: about a third less CPU a request
than h11, see benchmarks/README.md), with h11 otherwise, on asyncio's own event loop: uvloop saved a little
more CPU but, busy, accepted about one waiting connection per turn of its loop (64 connections opened at
once to a server rating batches waited up to 3 s to be accepted; asyncio accepts every waiting connection
at each turn). With `--workers N` each worker listens on a socket of its own, bound to the one
port with SO_REUSEPORT, so that the kernel spreads the connections over the workers: on the one socket
uvicorn shares between them, the worker that woke first accepted every waiting connection, and a client's
16 keep-alive connections all went to one worker while the other idled.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from .settings import Settings, is_loopback

__all__ = ["Settings", "check", "run"]

APP = "policyhistory.service.app:from_environment"


def check(settings: Settings, host: str) -> None:
    """Refuse to listen beyond loopback without a token: the write routes would be open to the network."""
    if not is_loopback(host) and not settings.token:
        raise ValueError(f"--host {host} is not a loopback address: give a token (POLICYHISTORY_TOKEN or "
                         "--token-file) before serving beyond this machine")


class NoDelay:
    """Nagle's algorithm off on every connection. A socket bound outside asyncio (uvicorn's, ours) may say
    protocol 0, and asyncio's own loop turns TCP_NODELAY on only for sockets whose protocol says TCP: each
    response then waited for the client's delayed ACK, about 44 ms a request."""

    def connection_made(self, transport: Any) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)  # type: ignore[misc]


class NoDelayH11Protocol(NoDelay, H11Protocol):
    """uvicorn's pure-Python HTTP/1.1 protocol (h11), where httptools is not installed."""


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover  (httptools is a dependency; a platform without a wheel falls back)
    PROTOCOL: type[Any] = NoDelayH11Protocol
else:
    class NoDelayHttpToolsProtocol(NoDelay, HttpToolsProtocol):
        """uvicorn's HTTP/1.1 protocol over httptools (llhttp, the parser of Node.js)."""

    PROTOCOL = NoDelayHttpToolsProtocol


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) with SO_REUSEPORT (not yet listening: the worker's loop listens)."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host.strip("[]"), port))
    sock.set_inheritable(True)
    return sock


def run(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    os.environ.update(settings.environment())
    options: dict[str, Any] = {"factory": True, "host": host, "port": port, "http": PROTOCOL, "loop": "asyncio",
                               "log_level": "warning", "access_log": False, "proxy_headers": False,
                               "server_header": False}
    if workers <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        uvicorn.run(APP, workers=workers, **options)
        return
    config = uvicorn.Config(APP, workers=workers, **options)
    from .workers import ReusePortWorkers

    ReusePortWorkers(config).run()
