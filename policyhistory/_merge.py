"""The merge of a re-rating: the records of every run file (the shards', the rows rejected while reading) put
back in input order, a range of row numbers at a time.

A run file is a sequence of batches, each sorted by row number and the batches in order (written by
`RunWriter`); its index (`RunFile`) says where each batch begins and its first row number, so that a
range of rows is read from every run without reading the rest. In one process the merge is a window over the
runs read from start to end (`Windows`); with workers, each range is a task (`write_block`) that writes its
records as a finished JSON Lines file, which the client copies into the output in order (`OutputBlock`)
while the workers merge the next ranges.
"""

from __future__ import annotations

import bisect
import contextlib
import marshal
import os
import shutil
from collections.abc import Iterator, Sequence
from typing import IO, Any

import attrs

from ._scratch_url import is_url, open_file, remove_file

BLOCK_ROWS = 50_000
"""Rows of a merge task's block: about 40 MB of records, held once by the task that writes them."""
COPY_BYTES = 1 << 20
WRITE_LINES = 10_000
"""Lines joined at once when a block is written (the joined text is a second copy of them)."""


@attrs.frozen
class RunFile:
    """A run file and its index: the first row number of each batch and where the batch begins."""

    path: str
    firsts: tuple[int, ...] = ()
    offsets: tuple[int, ...] = ()


class RunWriter:
    """Writes (row number, line, flags) entries, sorted by row number, to a run file as batches of `batch`
    entries (each as its row numbers, its lines and its flags: the merge reads them as they are) and keeps
    the file's index."""

    def __init__(self, out: IO[bytes], path: str, batch: int) -> None:
        self.out, self.path, self.batch = out, path, batch
        self.firsts: list[int] = []
        self.offsets: list[int] = []
        self.at = 0

    def write(self, entries: Sequence[tuple[int, str, int]]) -> None:
        for start in range(0, len(entries), self.batch):
            seqs, texts, flags = zip(*entries[start:start + self.batch], strict=True)
            data = marshal.dumps((seqs, texts, bytes(flags)))  # type: ignore[arg-type]
            self.firsts.append(seqs[0])
            self.offsets.append(self.at)
            self.out.write(len(data).to_bytes(8, "big"))
            self.out.write(data)
            self.at += 8 + len(data)

    def run(self) -> RunFile:
        return RunFile(self.path, tuple(self.firsts), tuple(self.offsets))


def _batches(source: IO[bytes]) -> Iterator[tuple[tuple[int, ...], tuple[str, ...], bytes]]:
    while size := source.read(8):
        yield marshal.loads(source.read(int.from_bytes(size, "big")))


def _place(texts: list[Any], flags: bytearray, low: int, high: int, seqs: tuple[int, ...],
           lines: tuple[str, ...], marks: bytes, at: int) -> int:
    """Put the batch's entries from `at` with row numbers below `high` in their places; returns where it
    stopped (len(seqs) when the batch is used up)."""
    end = bisect.bisect_left(seqs, high, at)
    for index in range(at, end):
        place = seqs[index] - low
        texts[place] = lines[index]
        flags[place] = marks[index]
    return end


def _checked(texts: list[Any], low: int) -> None:
    if None in texts:  # every input row comes out once: never a hole
        raise AssertionError(f"row {low + texts.index(None)} has no record")


class Windows:
    """The runs read once from start to end, a window of rows at a time (the merge in one process)."""

    def __init__(self, runs: Sequence[RunFile]) -> None:
        self._readers = [_Reader(run.path) for run in runs]

    def window(self, low: int, high: int) -> tuple[list[str], bytes]:
        """The lines and flags of rows low to high - 1 (each window after the one before): a merge without a
        heap, since every row number below the run's rows comes once."""
        texts: list[Any] = [None] * (high - low)
        flags = bytearray(high - low)
        for reader in self._readers:
            while reader.seqs:
                reader.at = _place(texts, flags, low, high, reader.seqs, reader.texts, reader.flags, reader.at)
                if reader.at < len(reader.seqs):
                    break
                reader.next_batch()
        _checked(texts, low)
        return texts, bytes(flags)

    def close(self) -> None:
        for reader in self._readers:
            reader.close()


class _Reader:
    def __init__(self, path: str) -> None:
        self._files = contextlib.ExitStack()  # held across windows, closed by Windows.close
        self._batches = _batches(self._files.enter_context(open_file(path, "rb")))
        self.seqs: tuple[int, ...] = ()
        self.texts: tuple[str, ...] = ()
        self.flags = b""
        self.at = 0
        self.next_batch()

    def next_batch(self) -> None:
        self.seqs, self.texts, self.flags = next(self._batches, ((), (), b""))
        self.at = 0

    def close(self) -> None:
        self._files.close()


def merged_range(runs: Sequence[RunFile], low: int, high: int) -> tuple[list[str], bytes]:
    """The lines and flags of rows low to high - 1, read from each run from the batch that holds row `low`."""
    texts: list[Any] = [None] * (high - low)
    flags = bytearray(high - low)
    for run in runs:
        first = max(0, bisect.bisect_right(run.firsts, low) - 1)
        if first >= len(run.firsts) or run.firsts[first] >= high:
            continue
        with open_file(run.path, "rb") as source:
            source.seek(run.offsets[first])
            for seqs, lines, marks in _batches(source):
                if seqs[0] >= high:
                    break
                at = bisect.bisect_left(seqs, low)
                if _place(texts, flags, low, high, seqs, lines, marks, at) < len(seqs):
                    break
    _checked(texts, low)
    return texts, bytes(flags)


@attrs.frozen
class MergeTask:
    """One range of rows to merge from the runs into a block file."""

    runs: tuple[RunFile, ...]
    low: int
    high: int
    out: str


@attrs.frozen
class OutputBlock:
    """Consecutive output records in input order: their lines in memory, or a finished JSON Lines file of them
    (a merge task's, in the run's scratch folder); their flags (CHANGED, REJECTED) in either case."""

    flags: bytes
    texts: list[str] | None = None
    path: str | None = None

    @property
    def rows(self) -> int:
        return len(self.flags)

    def lines(self) -> list[str]:
        if self.texts is not None:
            return self.texts
        with open_file(self.path, "rb") as source:  # type: ignore[arg-type]
            text = source.read().decode("utf-8")
        return text.split("\n")[:-1] if text else []

    def write_to(self, out: IO[str]) -> None:
        """Write the block's lines to `out` (a text file): a local block file is copied by the kernel where it
        can be (copy_file_range), else through Python."""
        if self.texts is not None:
            if self.texts:
                out.write("\n".join(self.texts))
                out.write("\n")  # apart: appending it would copy the joined text once more
            return
        out.flush()
        with open_file(self.path, "rb") as source:  # type: ignore[arg-type]
            if not is_url(self.path) and _copied_by_kernel(source, out):  # type: ignore[arg-type]
                return
            binary = getattr(out, "buffer", None)
            if binary is None:  # a text buffer (a test's StringIO)
                out.write(source.read().decode("utf-8"))
                return
            shutil.copyfileobj(source, binary, COPY_BYTES)
            binary.flush()

    def discard(self) -> None:
        if self.path is not None:
            remove_file(self.path)


def _copied_by_kernel(source: IO[bytes], out: IO[str]) -> bool:
    """Copy the rest of `source` into `out` by copy_file_range (Linux, one file system or a kernel that copies
    across): True when all of it was; else `source` is left where the kernel stopped."""
    copy_range = getattr(os, "copy_file_range", None)
    try:
        target = out.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    if copy_range is None:
        return False
    size = os.fstat(source.fileno()).st_size
    copied = source.tell()
    try:
        while copied < size:
            step = copy_range(source.fileno(), target, size - copied, copied)
            if step == 0:
                break
            copied += step
    except OSError:  # a pipe, a terminal, a file system that cannot
        pass
    source.seek(copied)
    return copied >= size


def write_block(task: MergeTask) -> OutputBlock:
    """Merge one range of rows and write its lines to the task's block file (the work of a merge task)."""
    texts, flags = merged_range(task.runs, task.low, task.high)
    with open_file(task.out, "wb") as out:
        for start in range(0, len(texts), WRITE_LINES):
            out.write("\n".join(texts[start:start + WRITE_LINES]).encode("utf-8"))
            out.write(b"\n")
    return OutputBlock(flags, path=task.out)
