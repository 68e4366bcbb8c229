"""Bodies that the CLI would read from files: catalog records (TOML or JSON) and tenant facts. They are
written to a private scratch folder under generated names (a client's name is never a path) and read by the
same library functions as `load`; problems name the body, not the scratch file."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from .._catalog import INSTANT_FIELDS, LocatedVersion, read_catalog, structure_version
from .._errors import InvalidRecordsError, Problem

BODY = "request body"


@contextmanager
def private_folder(parent: Path | None = None, prefix: str = "policyhistory-upload-") -> Iterator[Path]:
    """A folder only this user can read (mkdtemp makes it 0700), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix, dir=parent) as folder:
        yield Path(folder)


def generated_name(suffix: str = "") -> str:
    return secrets.token_hex(8) + suffix


def write_private(folder: Path, data: bytes, suffix: str) -> Path:
    path = folder / generated_name(suffix)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return path


def _renamed(problems: tuple[Problem, ...], scratch: str, name: str) -> list[Problem]:
    return [attrs.evolve(p, file=name) if p.file == scratch else p for p in problems]


def _instant(value: Any) -> Any:
    """JSON has no datetimes: an ISO 8601 text is read as one (a naive one stays naive and is refused)."""
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def catalog_from_json(data: Any, name: str = BODY) -> list[LocatedVersion]:
    """`{"version": [records]}` (a catalog file's shape) or a list of records, checked as a TOML file is."""
    records = data.get("version") if isinstance(data, dict) else data
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InvalidRecordsError([Problem(name, None, None, "version",
                                           'expected {"version": [records]} or a list of record objects')])
    located: list[LocatedVersion] = []
    problems: list[Problem] = []
    for index, raw in enumerate(records, start=1):
        raw = {k: _instant(v) if k in INSTANT_FIELDS else v for k, v in raw.items()}
        version, found = structure_version(raw, name, None)
        problems += [attrs.evolve(p, record=p.record or f"#{index}") for p in found]
        if version is not None:
            located.append(LocatedVersion(version, name, None))
    if problems:
        raise InvalidRecordsError(problems)
    return located


def catalog_from_body(body: bytes, content_type: str, name: str = BODY) -> list[LocatedVersion]:
    """Catalog records from a request body: JSON when its type says so, else TOML (as `load` reads)."""
    if "json" in content_type:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            raise InvalidRecordsError([Problem(name, None, None, None, f"not valid JSON: {error}")]) from None
        return catalog_from_json(data, name)
    with private_folder() as folder:
        path = write_private(folder, body, ".toml")
        try:
            located = read_catalog([path])
        except InvalidRecordsError as error:
            raise InvalidRecordsError(_renamed(error.problems, str(path), name)) from None
    return [attrs.evolve(item, file=name) if item.file == str(path) else item for item in located]


@contextmanager
def facts_files(tenants: list[Any] | None, licenses: list[Any] | None) -> Iterator[tuple[Path | None, Path | None]]:
    """Tenant and license rows (JSON objects) as the JSON files `load --tenants/--licenses` reads."""
    with private_folder() as folder:
        yield tuple(write_private(folder, json.dumps(rows).encode(), ".json") if rows is not None else None
                    for rows in (tenants, licenses))  # type: ignore[misc]
