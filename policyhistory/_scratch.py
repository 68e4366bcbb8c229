"""Scratch folders of a re-rating: named after their owning process, removed on exit and on SIGTERM, SIGHUP
and SIGINT, and removed by a later run when the process that made them is gone (kill -9, a power cut).

A workdir given as a URL (see _scratch_url) gets its folder made and removed the same way, but no later run
sweeps stale ones there: whether their owner is alive cannot be told from another machine."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from . import _scratch_url

PREFIX = "policyhistory-rerate-"
_OWNED = re.compile(rf"^{re.escape(PREFIX)}(\d+)-")
LEGACY_AGE_SECONDS = 86_400
"""A folder of policyhistory 0.1 (no owner in its name) is removed once it is a day old."""
SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, name))

_live: dict[Path | str, int] = {}  # folder -> the pid that made it (a forked worker must not remove its parent's)
_previous: dict[int, Any] = {}
_lock = threading.Lock()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def remove_stale(base: Path) -> list[Path]:
    """Remove the scratch folders in `base` whose owning process is gone; return them."""
    removed: list[Path] = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(PREFIX) or not entry.is_dir() or entry.is_symlink():
            continue
        owner = _OWNED.match(entry.name)
        if owner:
            stale = int(owner.group(1)) != os.getpid() and not _alive(int(owner.group(1)))
        else:
            try:
                stale = time.time() - entry.stat().st_mtime > LEGACY_AGE_SECONDS
            except OSError:
                continue
        if stale:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _remove(path: Path | str) -> None:
    if isinstance(path, str):  # a URL
        _scratch_url.remove_folder(path)
    elif path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _remove_live() -> None:
    for path, pid in list(_live.items()):
        if pid == os.getpid():
            _remove(path)
            _live.pop(path, None)


@contextlib.contextmanager
def removed_on_signal(path: Path | str) -> Iterator[Path | str]:
    """Remove `path` (a file or a folder) if SIGTERM, SIGHUP or SIGINT ends the process inside the block
    (the block's own code removes it otherwise)."""
    with _lock:
        _live[path] = os.getpid()
        _install()
    try:
        yield path
    finally:
        with _lock:
            _live.pop(path, None)
            if not _live:
                _uninstall()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _remove_live()
    previous = _previous.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
        return
    if previous == signal.SIG_IGN:
        return
    signal.signal(signum, signal.SIG_DFL)  # die of the signal, as the process would have without us
    os.kill(os.getpid(), signum)


def _install() -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers belong to the main thread; a folder made elsewhere is removed on exit only
    for signum in SIGNALS:
        current = signal.getsignal(signum)
        if current is not _on_signal:
            _previous[signum] = current
            signal.signal(signum, _on_signal)


def _uninstall() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for signum, previous in list(_previous.items()):
        if signal.getsignal(signum) is _on_signal:
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        _previous.pop(signum)


@contextlib.contextmanager
def scratch_folder(workdir: str | Path | None = None) -> Iterator[Path | str]:
    """A new folder `policyhistory-rerate-<pid>-*` in `workdir` (default the system's temp folder), after
    removing the stale ones there; removed when the block ends, or when a signal ends the process. A URL
    workdir (file:///x, s3://bucket/prefix) gives the folder's URL, a local one its Path."""
    if workdir is not None and _scratch_url.is_url(workdir):
        url = _scratch_url.make_folder(str(workdir), f"{PREFIX}{os.getpid()}-")
        try:
            with removed_on_signal(url):
                yield url
        finally:
            _scratch_url.remove_folder(url)
        return
    base = Path(workdir) if workdir is not None else Path(tempfile.gettempdir())
    remove_stale(base)
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base))
    try:
        with removed_on_signal(folder):
            yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
