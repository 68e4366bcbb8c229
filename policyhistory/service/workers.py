"""uvicorn's worker supervisor, each worker listening on a socket of its own (SO_REUSEPORT).

uvicorn binds one socket and hands it to every worker; each worker's event loop, woken by a new connection,
accepts every connection waiting (asyncio accepts up to the backlog at a time), so a client that opens its
connections at once (a load balancer's pool, a benchmark's 16) finds them all on the first worker to wake,
and the other workers idle. With a socket per worker, bound to the same port with SO_REUSEPORT, the kernel
hashes each new connection to one of the listening sockets: the workers share the connections.

The supervisor keeps one more socket bound to the port, never listening (the kernel hands connections only
to listening sockets): it holds the port while workers start and restart, and refuses a second server on
it (its bind, without SO_REUSEPORT, fails as for any port in use).
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any

from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess

from .serve import reuse_port_socket


class ReusePortWorkers(Multiprocess):
    def __init__(self, config: Any) -> None:
        host = config.host
        probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host.strip("[]"), config.port))  # the port is free (no other server, reuse-port or not)
            port = probe.getsockname()[1]
            self._holder = reuse_port_socket(host, port)
        except OSError as error:  # as uvicorn says it of the socket it binds
            logging.getLogger("uvicorn.error").error(error)
            sys.exit(STARTUP_FAILURE)
        finally:
            probe.close()
        self._address = (host, port)
        self._handed: list[socket.socket] = []
        super().__init__(config, sockets=[])

    @property  # type: ignore[override]
    def sockets(self) -> list[socket.socket]:
        """A new socket for each worker uvicorn starts (it reads this once per worker)."""
        sock = reuse_port_socket(*self._address)
        self._handed.append(sock)
        return [sock]

    @sockets.setter
    def sockets(self, value: list[socket.socket]) -> None:
        pass  # Multiprocess.__init__ sets the shared list; each worker's is made above

    def _close_handed(self) -> None:
        """The supervisor's copies of the sockets its started workers hold: a copy left open would keep a
        dead worker's socket listening, and the connections hashed to it would wait for nobody."""
        for sock in self._handed:
            sock.close()
        self._handed.clear()

    def init_processes(self) -> None:
        try:
            super().init_processes()
        finally:
            self._close_handed()

    def restart_all(self) -> None:
        try:
            super().restart_all()
        finally:
            self._close_handed()

    def keep_subprocess_alive(self) -> None:
        try:
            super().keep_subprocess_alive()
        finally:
            self._close_handed()

    def run(self) -> None:
        try:
            super().run()
        finally:
            self._holder.close()
