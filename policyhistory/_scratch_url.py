"""Where a re-rating's scratch files live: a local folder (plain paths, as always) or an fsspec URL (file://,
s3://, memory://, ...) that every worker reaches.

A location is a text: a local path, or a URL when it holds "://". Only a URL imports fsspec, so that a local
run reads and writes exactly as it did before URLs were taken (same calls, same speed). The run's files are
named by `join`, opened by `open_file`, and its Parquet files read and written by the functions below, which
give polars an open file for a URL: fsspec's own settings (credentials, endpoints) then apply, not polars'.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, cast

import polars as pl

from ._errors import PolicyHistoryError

FSSPEC_EXTRA = "pip install 'policyhistory[dask]'"
LOCAL_PROTOCOLS = ("file", "local")
"""Protocols whose folders are folders: the base must exist. An object store's prefix (s3://bucket/prefix) is
not a folder until a file is written under it, so it is not checked before the run."""
PER_PROCESS_PROTOCOLS = ("memory",)
"""Protocols whose files live in one process: a run there must rate its shards in that process."""


class WorkdirError(PolicyHistoryError, ValueError):
    """A workdir URL that cannot be used: fsspec missing, a protocol it does not know, a missing base folder,
    a per-process filesystem with more than one process."""

    def __init__(self, workdir: str, message: str) -> None:
        self.workdir = workdir
        super().__init__(f"workdir {workdir}: {message}")


def is_url(location: str | Path) -> bool:
    """A URL (file:///tmp/x, s3://bucket/prefix), not a local path. A Path is always local."""
    return isinstance(location, str) and "://" in location


def protocol(url: str) -> str:
    return url.split("://", 1)[0].lower()


def _fsspec(url: str) -> Any:
    try:
        return importlib.import_module("fsspec")
    except ImportError:
        raise WorkdirError(url, f"a URL needs fsspec, which is not installed: {FSSPEC_EXTRA}") from None


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem of `url` and the path within it; WorkdirError for an unknown protocol or one whose
    package is missing (s3:// without s3fs)."""
    fsspec = _fsspec(url)
    name = protocol(url)
    try:
        fsspec.get_filesystem_class(name)
    except ValueError:
        raise WorkdirError(url, f"fsspec knows no protocol {name!r} (known: file, memory, and those of "
                           "installed packages, such as s3 with s3fs)") from None
    except ImportError as error:  # a known protocol whose package is not installed: fsspec says which
        raise WorkdirError(url, f"protocol {name!r} needs a package that is not installed ({error})") from None
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ValueError, TypeError, OSError) as error:
        raise WorkdirError(url, f"fsspec cannot open it ({error})") from None
    return fs, cast(str, path)


def check_base(url: str) -> None:
    """Refuse a URL the run could not use, before any row is read: see filesystem, and a local base (file://)
    that is not an existing, writable folder."""
    fs, path = filesystem(url)
    if protocol(url) not in LOCAL_PROTOCOLS:
        return
    if not fs.exists(path):
        raise WorkdirError(url, f"the folder {path!r} does not exist")
    if not fs.isdir(path):
        raise WorkdirError(url, f"{path!r} is not a folder")
    if not os.access(path, os.W_OK):
        raise WorkdirError(url, f"the folder {path!r} is not writable")


def per_process(url: str) -> bool:
    return protocol(url) in PER_PROCESS_PROTOCOLS


def check_processes(url: str, *, workers: int | None, dask: str | None) -> None:
    """A per-process filesystem (memory://) with workers or a cluster: they would not see this process's files."""
    if per_process(url) and (dask or (workers is not None and workers > 1)):
        raise WorkdirError(url, f"{protocol(url)}:// lives in one process: rate with --workers 1 and no --dask, "
                           "or give a folder or URL every worker reaches")


def make_folder(base: str, prefix: str) -> str:
    """A new folder `<base>/<prefix><random>`, its URL returned."""
    fs, path = filesystem(base)
    check_base(base)
    name = f"{prefix}{secrets.token_hex(4)}"
    folder = f"{path.rstrip('/')}/{name}"
    try:
        fs.makedirs(folder, exist_ok=False)
    except OSError as error:
        raise WorkdirError(base, f"cannot make the run's scratch folder there ({error})") from None
    return join(base, name)


def remove_folder(url: str) -> None:
    """Remove the folder at `url` with everything in it; a folder already gone is no error."""
    with contextlib.suppress(Exception):  # a cleanup: the run's own outcome (or error) is what matters
        fs, path = filesystem(url)
        if fs.exists(path):
            fs.rm(path, recursive=True)


def remove_file(location: str) -> None:
    """Remove one scratch file (a merged block once copied); one already gone is no error."""
    with contextlib.suppress(OSError):
        if not is_url(location):
            os.unlink(location)
            return
        fs, path = filesystem(location)
        fs.rm(path)


def join(folder: str | Path, name: str) -> str:
    """The location of the file `name` in the run's scratch folder."""
    if is_url(folder):
        return f"{str(folder).rstrip('/')}/{name}"
    return os.path.join(folder, name)


def open_file(location: str, mode: str) -> contextlib.AbstractContextManager[IO[bytes]]:
    """A scratch file opened in binary `mode`, as a context manager."""
    if not is_url(location):
        return open(location, mode)  # the caller's with-block closes it
    return cast(contextlib.AbstractContextManager[IO[bytes]], _fsspec(location).open(location, mode))


def write_parquet(frame: pl.DataFrame, location: str) -> None:
    if not is_url(location):
        frame.write_parquet(location)
        return
    with open_file(location, "wb") as handle:
        frame.write_parquet(handle)


def read_parquet(locations: Sequence[str], columns: list[str] | None = None) -> pl.DataFrame:
    """The Parquet files at `locations` (one scratch folder: all local paths or all URLs), as one frame."""
    if not locations or not is_url(locations[0]):
        return pl.read_parquet(list(locations), columns=columns)
    frames = []
    for location in locations:
        with open_file(location, "rb") as handle:
            frames.append(pl.read_parquet(handle, columns=columns))
    return pl.concat(frames, how="vertical")


def scan_parquet(locations: Sequence[str], columns: list[str]) -> pl.LazyFrame:
    """The `columns` of the Parquet files at `locations`, lazily for local paths (read at once for URLs)."""
    if not is_url(locations[0]):
        return pl.scan_parquet(list(locations)).select(columns)
    return read_parquet(locations, columns).lazy()
