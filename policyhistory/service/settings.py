"""What a running service is told: its store, its token and its limits. Read from the environment, so that
every uvicorn worker process (started by import string) reads the same settings the `serve` command set."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import attrs

ENV_DB = "POLICYHISTORY_DB"
ENV_TOKEN = "POLICYHISTORY_TOKEN"
ENV_MAX_BATCH = "POLICYHISTORY_MAX_BATCH"
ENV_MAX_UPLOAD = "POLICYHISTORY_MAX_UPLOAD_BYTES"
ENV_JOBS_DIR = "POLICYHISTORY_JOBS_DIR"
DEFAULT_MAX_BATCH = 10_000
DEFAULT_MAX_UPLOAD = 1 << 30
"""Bytes of one job upload (every call file and facts file together): 1 GiB, about 4 million calls as CSV."""
MAX_JSON_BODY = 10_000_000
"""Bytes of a JSON body (a rate, a batch, an explanation, a catalog): a batch of 10,000 calls is about 3 MB."""


@attrs.frozen
class Settings:
    """`token` None: the write routes are refused (serve does not listen beyond loopback without one)."""

    db: Path
    token: str | None = None
    max_batch: int = DEFAULT_MAX_BATCH
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    jobs_dir: Path | None = None

    @property
    def job_root(self) -> Path:
        """Where job uploads and outputs live: beside the store, `<db>.jobs/`, unless told otherwise."""
        return self.jobs_dir if self.jobs_dir is not None else self.db.with_name(self.db.name + ".jobs")

    def environment(self) -> dict[str, str]:
        values = {ENV_DB: str(self.db), ENV_MAX_BATCH: str(self.max_batch),
                  ENV_MAX_UPLOAD: str(self.max_upload_bytes)}
        if self.token:
            values[ENV_TOKEN] = self.token
        if self.jobs_dir is not None:
            values[ENV_JOBS_DIR] = str(self.jobs_dir)
        return values

    @classmethod
    def from_environment(cls) -> Settings:
        jobs_dir = os.environ.get(ENV_JOBS_DIR)
        return cls(db=Path(os.environ.get(ENV_DB, "policyhistory.db")).resolve(),
                   token=os.environ.get(ENV_TOKEN) or None,
                   max_batch=int(os.environ.get(ENV_MAX_BATCH, DEFAULT_MAX_BATCH)),
                   max_upload_bytes=int(os.environ.get(ENV_MAX_UPLOAD, DEFAULT_MAX_UPLOAD)),
                   jobs_dir=Path(jobs_dir) if jobs_dir else None)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and "localhost" are loopback; any other name or address is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
