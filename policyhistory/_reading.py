"""Reading a re-rating's input into tenant shards: every row read and checked, a rejected row's record to the
run of rejected rows, a good row to its tenant's shard (Parquet parts in the run's scratch folder).

A CSV or JSON Lines file of our layout, or a CSV Teams export, is read by the columnar fast path where it can
be (see _columnar, _columnar_json, _columnar_teams), row by row elsewhere (the csv module, JSON); both give the
same rows and errors.
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from ._calls import _duration, _identifier
from ._columnar import PlainPiece, RowPiece, own_csv_pieces, read_plain
from ._columnar_json import own_json_pieces
from ._columnar_teams import teams_csv_pieces
from ._errors import InvalidFieldError, PolicyHistoryError
from ._instant import format_instant, to_instant
from ._layouts import LayoutReader, OwnLayout, in_file_terms, layout_reader
from ._merge import RunWriter
from ._money import Audit
from ._read_pieces import CallKinds, PieceJob, PieceParts, piece_parts, read_piece
from ._read_pieces import shard_of as shard_for
from ._records import encode, rejected_record
from ._rows import printable_text, read_table, refuse_lone_surrogates
from ._scratch_url import join, write_parquet
from ._shards import REJECTED, RUN_BATCH, SHARD_SCHEMA
from ._timeline import micros

if TYPE_CHECKING:
    from ._executors import Executor
    from ._rerate import Rerate, RerateSummary

Progress = Callable[[str, int, int | None], None]
"""Told (stage, done, in all or None while not known) as a run goes: reading rows, classifying numbers,
writing records."""
_BATCH = 10_000
"""Rows read between two progress reports."""
FLUSH_ROWS = 20_000
"""Good rows buffered (over all shards) before they are written to the shards' Parquet parts."""
_PIECES_IN_FLIGHT = 4
"""Plain pieces given to the workers and not yet taken back (each holds its 8 MB of text)."""


_Pending = tuple["Future[PieceParts] | PieceParts", int, Path, "list[str] | None", int, int, "LayoutReader | None"]
"""A piece read or being read: what was found (or a worker's future of it), its file's index and path and
columns, its first row number and its rows, the layout reader of its left rows."""


def _raw_call_id(raw: object, reader: LayoutReader | None, columns: list[str] | None) -> object:
    """The call id a row that could not be read gives, if any: a JSON record's field, a CSV row's column
    (`columns`: the CSV file's header; None for JSON, where a list is a row that is no record at all)."""
    if isinstance(raw, dict):
        if reader is not None:
            return raw.get(reader.call_id_column)
        return raw.get("call_id") or raw.get("Call ID") or raw.get("callId") or raw.get("correlationId")
    if columns is not None and reader is not None and isinstance(raw, list) and reader.call_id_index < len(raw):
        return raw[reader.call_id_index] or None
    return None


class ShardReading:
    """One run's reading: its rows into tenant shards (`parts`: each shard's Parquet files) and `rows`, the
    number of input rows, once `read` is done."""

    def __init__(self, rerate: Rerate, scratch: Path | str, shard_count: int, rejected_writer: RunWriter,
                 read_audit: Audit | None, summary: RerateSummary, progress: Progress | None,
                 executor: Executor | None = None) -> None:
        self.rerate = rerate
        self.scratch = scratch
        self.shard_count = shard_count
        self.rejected_writer = rejected_writer
        self.read_audit = read_audit
        """The audit of the rows rejected while reading (the shards audit theirs)."""
        self.summary = summary
        self.progress = progress
        self.kinds = CallKinds()
        self.executor = executor
        """Workers to read plain pieces, if the run has them (see Executor.offload)."""
        self.parts: list[list[str]] = [[] for _ in range(shard_count)]
        self.rows = 0

    def read(self) -> None:
        """Read and check every row: a rejected row's record goes to the run of rejected rows, a good row to its
        tenant's shard (buffered, written as Parquet parts). A CSV or JSON Lines file of our layout, or a CSV Teams
        export, is read by the columnar fast path where it can be (see _columnar, _columnar_json,
        _columnar_teams), row by row elsewhere; both give the same rows and errors. With workers, they read the
        plain pieces of a CSV file of our layout (see _read_pieces); what they give back is taken in the file's
        order, so the rejected rows' run stays in row order."""
        self.buffers: list[list[tuple[Any, ...]]] = [[] for _ in range(self.shard_count)]
        self.buffered = 0
        self.rejected: list[tuple[int, str, int]] = []
        self.shard_of: dict[str, int] = {}
        self.pending: collections.deque[_Pending] = collections.deque()
        seq = 0
        for file_index, path in enumerate(self.rerate.paths):
            fast = own_csv_pieces(path) or own_json_pieces(path, self.kinds.joined) \
                or teams_csv_pieces(path, self.kinds.joined, self._tenant_of)
            if fast is None:
                self._take(everything=True)
                columns, rows = read_table(path)
                seq = self._rows(file_index, path, columns, rows, seq)
                continue
            columns, pieces = fast
            reader = OwnLayout() if columns is None else None  # JSON Lines: the first row's layout, ours
            # Reading the whole file, the row-by-row code has the file's reader from its first row the csv
            # module could read on, which names the call id of a row it could not read: a piece after one such
            # row starts with that reader too.
            read_one = False
            for number, piece in enumerate(pieces):
                name = f"piece-{file_index}-{number}"
                if isinstance(piece, RowPiece):
                    self._take(everything=True)
                    given = layout_reader(columns) if read_one and columns is not None else None
                    seq = self._rows(file_index, path, columns, piece.rows, seq, given)
                    read_one = read_one or any(type(values) is list for _, values in piece.rows)
                    continue
                read_one = read_one or piece.count > 0
                # A plain piece goes to a worker while fewer than _PIECES_IN_FLIGHT are out; else (or without
                # workers) it is read here, its parts written now and its left rows taken in their turn.
                found: Future[PieceParts] | PieceParts | None = None
                if isinstance(piece, PlainPiece) and self.executor is not None and sum(
                        isinstance(item[0], Future) for item in self.pending) < _PIECES_IN_FLIGHT:
                    found = self.executor.offload(read_piece, PieceJob(piece, file_index, seq, self.shard_count,
                                                                       str(self.scratch), name))
                if found is None:
                    read = read_plain(piece, self.kinds.joined) if isinstance(piece, PlainPiece) else piece
                    found = piece_parts(read, file_index, seq, self.shard_count, str(self.scratch), name)
                self.pending.append((found, file_index, path, columns, seq, piece.count, reader))
                self._take(everything=False)
                seq += piece.count
        self._take(everything=True)
        self._flush(self.buffers)
        self.rejected_writer.write(self.rejected)
        self.rows = self.summary.rows = seq

    def _take(self, *, everything: bool) -> None:
        """Take the pieces read (here or by workers) in the file's order: the ones done at the head of the queue,
        or, with `everything`, all of them, waiting for the workers."""
        while self.pending:
            found, file_index, path, columns, seq, count, reader = self.pending[0]
            if isinstance(found, Future):
                if not (everything or found.done()):
                    return
                found = found.result()
            self.pending.popleft()
            for shard, part in found.parts:
                self.parts[shard].append(part)
            for at, line, values in found.others:  # the rows the vectorised checks left to the row-by-row code
                self._rows(file_index, path, columns, [(line, values)], seq + at, reader)
            if self.progress:
                self.progress("reading", seq + count, None)

    def _tenant_of(self, path: Path) -> str | None:
        """The tenant of a file of a layout without a tenant column, or None where the run has none for it."""
        try:
            return self.rerate._tenant_for(path)
        except PolicyHistoryError:
            return None

    def _rows(self, file_index: int, path: Path, columns: list[str] | None, rows: Iterable[tuple[int, Any]],
              seq: int, reader: LayoutReader | None = None) -> int:
        """Rows read one by one (the csv module, JSON): checked here; returns the next row number."""
        name = str(path)
        tenant: str | None = None
        width = -1
        known_kinds = self.kinds.known
        buffers, rejected, shard_of = self.buffers, self.rejected, self.shard_of
        for line, raw in rows:
            try:
                if reader is None or type(raw) is not list or len(raw) != width:
                    reader, values, tenant = self.rerate._reader(path, columns, raw, reader)
                    width = len(reader.columns) if columns is not None else -1  # JSON: each record checked
                    if type(raw) is dict:
                        refuse_lone_surrogates(raw)
                else:
                    raw.append(None)  # what reader.values does for a row as wide as its header
                    values = raw
                call_id, tenant_id, start, duration, kind_given, destination, user_id, location_given, \
                    licenses_given, billed, capability, infer, usage_id, carrier = reader.read(values, tenant)
                if type(call_id) is not str or not call_id or "\0" in call_id:
                    call_id = _identifier(call_id, "call_id")
                if usage_id is not None and (type(usage_id) is not str or "\0" in usage_id):
                    usage_id = _identifier(usage_id, "usage_id")
                if type(tenant_id) is not str or not tenant_id or "\0" in tenant_id:
                    tenant_id = _identifier(tenant_id, "tenant_id")
                start_us, start_text = _start(start)
                # The common form read at once: ASCII digits (isdecimal alone takes other scripts' digits).
                duration = int(duration) if type(duration) is str and duration.isascii() and duration.isdecimal() \
                    and len(duration) < 7 else _duration(duration)
                if destination is None:  # a CSV row that ends before the column, a JSON record without it
                    raise InvalidFieldError("destination", None, "an E.164 number such as +33142685300, or a "
                                            "country code; the row has none (it ends before that column)")
                kind_key = (kind_given, location_given, licenses_given, carrier)
                kind = known_kinds.get(kind_key) if type(licenses_given) is not list else None
                if kind is None:
                    kind = self.kinds.of(kind_given, location_given, licenses_given, carrier)
            except PolicyHistoryError as error:
                head = {"file": name, "line": line, "call_id": printable_text(_raw_call_id(raw, reader, columns))}
                record = rejected_record(head, in_file_terms(error, reader, raw))
                text = encode(record)
                if self.read_audit is not None:
                    text = text[:-1] + self.read_audit.rejected_suffix(seq, record)
                rejected.append((seq, text, REJECTED))
                self.summary.rejected += 1
                seq += 1
                if len(rejected) >= RUN_BATCH:
                    self.rejected_writer.write(rejected)
                    rejected.clear()
                continue
            shard = shard_of.get(tenant_id)
            if shard is None:
                shard = shard_of[tenant_id] = shard_for(tenant_id, self.shard_count)
            number = destination if type(destination) is str else str(destination)
            # The key of a row is its UsageId where the layout has one (Call ID is not unique). A usage layout's
            # billed names the Capability that carried the call; our layout's does not.
            buffers[shard].append((
                seq, file_index, line, call_id, usage_id, usage_id or call_id, tenant_id, start_us, start_text,
                duration, kind[0], kind[1], "\n".join(kind[2]), kind[3], number, capability, infer,
                billed is not None,
                *((billed["outcome"], billed["minutes"], billed["charge"], billed["currency"],
                   billed.get("capability"), "capability" in billed)
                  if billed is not None else (None, None, None, None, None, False)),
                user_id if type(user_id) is str else str(user_id)))
            seq += 1
            self.buffered += 1
            if self.buffered >= FLUSH_ROWS:
                self._flush(buffers)
                self.buffered = 0
            if self.progress and seq % _BATCH == 0:
                self.progress("reading", seq, None)
        return seq

    def _flush(self, buffers: list[list[tuple[Any, ...]]]) -> None:
        for index, rows in enumerate(buffers):
            if not rows:
                continue
            path = join(self.scratch, f"shard-{index}-part-{len(self.parts[index])}.parquet")
            write_parquet(pl.DataFrame(rows, schema=SHARD_SCHEMA, orient="row"), path)
            self.parts[index].append(path)
            rows.clear()

def _start(value: object) -> tuple[int, str]:
    """A call's start as (integer microseconds, ISO text in UTC)."""
    # Before 1900: to_instant refuses it (the supported range).
    if type(value) is str and len(value) == 20 and value[19] == "Z" and value[10] == "T" and value[13] == ":" \
            and value[16] == ":" and value[7] == "-" and value[:4] >= "1900":
        # The common form, read without building a pendulum instant: 2018-06-30T23:59:59Z. Only that form, whose
        # text is already ours: 2018-06-30T090345.1Z is as long, and must come out as 2018-06-30T09:03:45.100000Z,
        # and a week date (2020-W10-1T10:00:00Z, which fromisoformat reads) as 2020-03-02T10:00:00Z.
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            # Whole seconds in UTC: the float timestamp is exact (below 2 ** 53), and twice as fast as micros().
            return int(parsed.timestamp()) * 1_000_000, value
    instant = to_instant(value, "start")
    return micros(instant), format_instant(instant)
