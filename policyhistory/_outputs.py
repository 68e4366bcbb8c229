"""Files a command writes: never one of its inputs or the store, and never half written.

An output is refused (before any work) when it is, by resolved path or by inode, one of the files the command
reads, the store or the store's -wal / -shm files, or another output of the same command. It is written to a
temporary file in its own folder and renamed into place when complete: a run that fails or is killed leaves
the file as it was (a killed run may leave its hidden `.NAME.*.tmp` beside it, never a half NAME)."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from ._errors import OutputIsInputError
from ._scratch import removed_on_signal


def _identity(path: Path) -> tuple[str, tuple[int, int] | None]:
    real = os.path.realpath(path)
    try:
        info = os.stat(real)
    except OSError:
        return real, None
    return real, (info.st_dev, info.st_ino)


def store_files(store: Path | None) -> list[tuple[Path, str]]:
    if store is None:
        return []
    return [(store, "the store"), (Path(f"{store}-wal"), "the store's write-ahead log"),
            (Path(f"{store}-shm"), "the store's shared-memory file"),
            (Path(f"{store}-journal"), "the store's journal")]


def refuse_clobbering(outputs: Iterable[tuple[str, Path | None]], inputs: Iterable[Path],
                      store: Path | None = None) -> None:
    """Raise OutputIsInputError when an output is an input, the store (or its -wal/-shm), or another output."""
    protected: list[tuple[Path, str]] = [(path, "one of the command's input files") for path in inputs]
    protected += store_files(store)
    known = [(path, what, *_identity(path)) for path, what in protected]
    for option, output in outputs:
        if output is None:
            continue
        real, inode = _identity(output)
        for _, what, other_real, other_inode in known:
            if real == other_real or (inode is not None and inode == other_inode):
                raise OutputIsInputError(option, output, what)
        known.append((output, f"also the {option} output", real, inode))


@contextlib.contextmanager
def atomic_output(path: Path, encoding: str = "utf-8", newline: str | None = None) -> Iterator[IO[str]]:
    """A text file to write that appears at `path` only once the block ends without an error. A path that is
    not a regular file (/dev/stdout, a named pipe) is written directly: there is nothing there to protect,
    and renaming over it would replace the device."""
    target = Path(os.path.realpath(path))
    try:
        special = not stat.S_ISREG(target.stat().st_mode)
    except OSError:
        special = False
    if special:
        with target.open("w", encoding=encoding, newline=newline) as direct:
            yield direct
        return
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with removed_on_signal(Path(temporary)), os.fdopen(handle, "w", encoding=encoding, newline=newline) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        umask = os.umask(0)
        os.umask(umask)
        try:
            mode = stat.S_IMODE(target.stat().st_mode)
        except OSError:
            mode = 0o666 & ~umask
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_text(path: Path, text: str) -> None:
    """Write the whole text atomically (see atomic_output)."""
    with atomic_output(path) as out:
        out.write(text)


def write_json(path: Path, value: object) -> None:
    """Write a JSON value, indented, and a line break, atomically (see atomic_output): written as it is encoded,
    since a large run's summary is a text of a hundred megabytes, which json.dumps would hold at once."""
    with atomic_output(path) as out:
        for chunk in json_chunks(value):
            out.write(chunk)
        out.write("\n")


_INDENTED = json.JSONEncoder(indent=2, ensure_ascii=False)


def json_chunks(value: object, depth: int = 0) -> Iterator[str]:
    """The text of `value` as json.dumps(value, indent=2, ensure_ascii=False) writes it, in pieces, where an
    array in a dictionary may also be given as an iterator (a generator), encoded item by item as it gives
    them: a large run's summary has hundreds of thousands of pool-months and money totals, which as lists of
    dictionaries would all be held at once (see benchmarks/README.md; json's own encoder takes only lists and
    tuples). An iterator's items, and lists, are plain JSON values, each encoded as json.dumps would."""
    if isinstance(value, dict):
        items: Iterator[tuple[object, object]] = iter(value.items())
        opening, closing = "{", "}"
    elif isinstance(value, Iterator):
        items = ((None, item) for item in value)
        opening, closing = "[", "]"
    else:  # a JSON text holds no line break but between its parts: each is indented as deep as the value
        yield _INDENTED.encode(value).replace("\n", "\n" + "  " * depth)
        return
    inner = "\n" + "  " * (depth + 1)
    separator = opening + inner
    for key, item in items:
        yield separator
        if opening == "{":
            if not isinstance(key, str):  # as json writes a number, true, false or null as a key
                key = next(iter(json.loads(json.dumps({key: None}))))
            yield json.dumps(key, ensure_ascii=False) + ": "
            yield from json_chunks(item, depth + 1)
        else:
            yield _INDENTED.encode(item).replace("\n", inner)
        separator = "," + inner
    yield opening + closing if separator.startswith(opening) else "\n" + "  " * depth + closing
