"""What `policyhistory serve` runs: uvicorn over the app factory, the settings handed to each worker through
the environment."""

from __future__ import annotations

import os

from .settings import Settings, is_loopback

__all__ = ["Settings", "check", "run"]


def check(settings: Settings, host: str) -> None:
    """Refuse to listen beyond loopback without a token: the write routes would be open to the network."""
    if not is_loopback(host) and not settings.token:
        raise ValueError(f"--host {host} is not a loopback address: give a token (POLICYHISTORY_TOKEN or "
                         "--token-file) before serving beyond this machine")


def run(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    os.environ.update(settings.environment())
    uvicorn.run("policyhistory.service.app:from_environment", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False, proxy_headers=False, server_header=False)
