"""The manifest of a re-rating run: what it read, what the store held, what it was asked and what it found,
so that a record split off from its run can be traced, and the run repeated (`rerate --replay`)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import attrs
import pendulum

from ._instant import format_instant

_READ = 1 << 20


def tool_version() -> str:
    try:
        return version("policyhistory")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree without installing
        return "unknown"


def new_run_id(now: pendulum.DateTime) -> str:
    """A run's id: its start (sorts runs in time) and 8 random hex digits (two runs in one second differ)."""
    return f"{now.in_timezone('UTC').format('YYYYMMDDTHHmmss')}Z-{secrets.token_hex(4)}"


def file_record(path: Path, role: str) -> dict[str, Any]:
    """A file a run read: its path as given, absolute path, size and SHA-256."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_READ):
            digest.update(chunk)
    return {"role": role, "path": str(path), "absolute": str(path.resolve()), "size": path.stat().st_size,
            "sha256": digest.hexdigest()}


def chain_heads(store: Any) -> dict[str, dict[str, Any]]:
    """Each hash-chained table's row count and last row hash: the store's state, in a few bytes. Any row
    appended, edited or removed changes a head (verify tells which)."""
    from ._chains import CHAINED_TABLES

    heads = {}
    for spec in CHAINED_TABLES:
        rows = store.db.execute(f"SELECT count(*) FROM {spec.name}").fetchone()[0]
        last = store.db.execute(f"SELECT row_hash FROM {spec.name} ORDER BY seq DESC LIMIT 1").fetchone()
        heads[spec.name] = {"rows": rows, "head": last[0] if last else None}
    return heads


def store_digest(store: Any) -> str:
    """The store's combined digest over its chain heads (Store.digest()["digest"]: `policyhistory digest`
    prints it, with the time it was taken; `verify --digest` checks it)."""
    return str(store.digest()["digest"])


@attrs.define
class Manifest:
    run_id: str
    started_at: pendulum.DateTime
    known_at: pendulum.DateTime
    as_of: pendulum.DateTime | None
    inputs: list[dict[str, Any]]
    options: dict[str, Any]
    store_path: str | None
    chain_heads: dict[str, dict[str, Any]]
    store_digest: str
    tool_version: str = attrs.Factory(tool_version)
    ended_at: pendulum.DateTime | None = None
    counts: dict[str, int] = attrs.Factory(dict)

    @classmethod
    def start(cls, store: Any, *, run_id: str, started_at: pendulum.DateTime, known_at: pendulum.DateTime,
              as_of: pendulum.DateTime | None, calls: Iterable[Path], facts: Iterable[tuple[Path, str]] = (),
              options: Mapping[str, Any] | None = None, store_path: str | None = None) -> Manifest:
        inputs = [file_record(path, "calls") for path in calls] + [file_record(path, role) for path, role in facts]
        heads = chain_heads(store)
        return cls(run_id, started_at, known_at, as_of, inputs, dict(options or {}), store_path, heads,
                   store_digest(store))

    def finish(self, summary: Any, ended_at: pendulum.DateTime, written: int) -> None:
        self.ended_at = ended_at
        self.counts = {"rows": summary.rows, "rated": summary.rated, "rejected": summary.rejected,
                       "changed": summary.changed, "written": written}

    def record(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "tool": "policyhistory", "tool_version": self.tool_version,
                "started_at": format_instant(self.started_at),
                "ended_at": format_instant(self.ended_at) if self.ended_at else None,
                "known_at": format_instant(self.known_at),
                "as_of": format_instant(self.as_of) if self.as_of else None,
                "store": self.store_path, "store_digest": self.store_digest, "chain_heads": self.chain_heads,
                "inputs": self.inputs, "options": self.options, "counts": self.counts}
