"""Reading a re-rating's input into tenant shards: every row read and checked, a rejected row's record to the
run of rejected rows, a good row to its tenant's shard (Parquet parts in the run's scratch folder).

A CSV or JSON Lines file of our layout is read by the columnar fast path where it can be (see _columnar,
_columnar_json), row by row elsewhere (the csv module, JSON); both give the same rows and errors.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from ._calls import _carrier, _duration, _identifier, _optional_country, _skus, call_type
from ._columnar import RowPiece, own_csv_pieces
from ._columnar_json import own_json_pieces
from ._errors import InvalidFieldError, PolicyHistoryError
from ._instant import format_instant, to_instant
from ._layouts import LayoutReader, OwnLayout
from ._merge import RunWriter
from ._money import Audit
from ._records import encode, rejected_record
from ._rows import printable_text, read_table, refuse_lone_surrogates
from ._scratch_url import join, write_parquet
from ._shards import REJECTED, RUN_BATCH, SHARD_SCHEMA
from ._timeline import micros

if TYPE_CHECKING:
    from ._rerate import Rerate, RerateSummary

Progress = Callable[[str, int, int | None], None]
"""Told (stage, done, in all or None while not known) as a run goes: reading rows, classifying numbers,
writing records."""
_BATCH = 10_000
"""Rows read between two progress reports."""
FLUSH_ROWS = 20_000
"""Good rows buffered (over all shards) before they are written to the shards' Parquet parts."""

def _raw_call_id(raw: object, reader: LayoutReader | None) -> object:
    if isinstance(raw, dict):
        if reader is not None:
            return raw.get(reader.call_id_column)
        return raw.get("call_id") or raw.get("Call ID") or raw.get("callId") or raw.get("correlationId")
    if reader is not None and isinstance(raw, list) and reader.call_id_index < len(raw):
        return raw[reader.call_id_index] or None
    return None


_Kind = tuple[str, str | None, tuple[str, ...], str | None]
"""A call's type, usage location, licenses and carrier, checked once per distinct input."""


class ShardReading:
    """One run's reading: its rows into tenant shards (`parts`: each shard's Parquet files) and `rows`, the
    number of input rows, once `read` is done."""

    def __init__(self, rerate: Rerate, scratch: Path | str, shard_count: int, rejected_writer: RunWriter,
                 read_audit: Audit | None, summary: RerateSummary, progress: Progress | None) -> None:
        self.rerate = rerate
        self.scratch = scratch
        self.shard_count = shard_count
        self.rejected_writer = rejected_writer
        self.read_audit = read_audit
        """The audit of the rows rejected while reading (the shards audit theirs)."""
        self.summary = summary
        self.progress = progress
        self.kinds: dict[tuple[object, ...], _Kind] = {}
        self.parts: list[list[str]] = [[] for _ in range(shard_count)]
        self.rows = 0

    def read(self) -> None:
        """Read and check every row: a rejected row's record goes to the run of rejected rows, a good row to its
        tenant's shard (buffered, written as Parquet parts). A CSV or JSON Lines file of our layout is read by the
        columnar fast path where it can be (see _columnar, _columnar_json), row by row elsewhere; both give the
        same rows and errors."""
        self.buffers: list[list[tuple[Any, ...]]] = [[] for _ in range(self.shard_count)]
        self.buffered = 0
        self.rejected: list[tuple[int, str, int]] = []
        self.shard_of: dict[str, int] = {}
        seq = 0
        for file_index, path in enumerate(self.rerate.paths):
            fast = own_csv_pieces(path, self._kind_of) or own_json_pieces(path, self._kind_of)
            if fast is None:
                columns, rows = read_table(path)
                seq = self._rows(file_index, path, columns, rows, seq)
                continue
            columns, pieces = fast
            reader = OwnLayout() if columns is None else None  # JSON Lines: the first row's layout, ours
            for piece in pieces:
                if isinstance(piece, RowPiece):
                    seq = self._rows(file_index, path, columns, piece.rows, seq)
                    continue
                if piece.frame.height:
                    self._frame(file_index, piece.frame, seq)
                for at, line, values in piece.others:
                    self._rows(file_index, path, columns, [(line, values)], seq + at, reader)
                seq += piece.count
        self._flush(self.buffers)
        self.rejected_writer.write(self.rejected)
        self.rows = self.summary.rows = seq

    def _frame(self, file_index: int, frame: pl.DataFrame, seq_offset: int) -> None:
        """Rows the columnar path read and checked: to their shards, as Parquet parts of their own."""
        shard_of = self.shard_of
        for tenant in frame["tenant_id"].unique().to_list():
            if tenant not in shard_of:
                shard_of[tenant] = self._shard(tenant)
        frame = frame.with_columns(
            (pl.col("at") + seq_offset).alias("seq"), pl.lit(file_index, dtype=pl.Int32).alias("file"),
            # Our layout: its billed names no Capability, and its licenses are given, not inferred.
            pl.lit(None, dtype=pl.String).alias("capability"), pl.lit(False).alias("infer"),
            pl.lit(None, dtype=pl.String).alias("billed_capability"), pl.lit(False).alias("billed_has_capability"),
            pl.col("tenant_id").replace_strict(shard_of, return_dtype=pl.Int64).alias("shard"))
        for (shard,), part in frame.partition_by("shard", as_dict=True).items():
            index = int(shard)  # type: ignore[call-overload]
            path = join(self.scratch, f"shard-{index}-part-{len(self.parts[index])}.parquet")
            write_parquet(part.select(list(SHARD_SCHEMA)).cast(SHARD_SCHEMA), path)  # type: ignore[arg-type]
            self.parts[index].append(path)

    def _shard(self, tenant_id: str) -> int:
        return zlib.crc32(tenant_id.encode("utf-8", "surrogatepass")) % self.shard_count

    def _kind_of(self, kind_given: str | None, location_given: str | None, licenses_given: str | None,
                 carrier: str | None) -> tuple[str, str | None, str, str | None] | None:
        key = (kind_given, location_given, licenses_given, carrier)
        try:
            kind = self.kinds.get(key) or self._kind(kind_given, location_given, licenses_given, carrier)
        except PolicyHistoryError:
            return None
        return kind[0], kind[1], "\n".join(kind[2]), kind[3]

    def _rows(self, file_index: int, path: Path, columns: list[str] | None, rows: Iterable[tuple[int, Any]],
              seq: int, reader: LayoutReader | None = None) -> int:
        """Rows read one by one (the csv module, JSON): checked here; returns the next row number."""
        name = str(path)
        tenant: str | None = None
        width = -1
        kinds = self.kinds
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
                kind = kinds.get(kind_key) if type(licenses_given) is not list else None
                if kind is None:
                    kind = self._kind(kind_given, location_given, licenses_given, carrier)
            except PolicyHistoryError as error:
                head = {"file": name, "line": line, "call_id": printable_text(_raw_call_id(raw, reader))}
                record = rejected_record(head, error)
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
                shard = shard_of[tenant_id] = self._shard(tenant_id)
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

    def _kind(self, kind_given: object, location_given: object, licenses_given: object,
              carrier: object = None) -> _Kind:
        """The call type, usage location, licenses and carrier of a call, checked once per distinct input."""
        kind = (call_type(str(kind_given) if kind_given is not None else ""), _optional_country(location_given),
                _skus(licenses_given), _carrier(carrier))
        if type(licenses_given) is not list:
            self.kinds[(kind_given, location_given, licenses_given, carrier)] = kind
        return kind


def _start(value: object) -> tuple[int, str]:
    """A call's start as (integer microseconds, ISO text in UTC)."""
    if type(value) is str and len(value) == 20 and value[19] == "Z" and value[10] == "T" and value[13] == ":" \
            and value[16] == ":" and value[:4] >= "1900":  # earlier: to_instant refuses it (the supported range)
        # The common form, read without building a pendulum instant: 2018-06-30T23:59:59Z. Only that form, whose
        # text is already ours: 2018-06-30T090345.1Z is as long, and must come out as 2018-06-30T09:03:45.100000Z.
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            # Whole seconds in UTC: the float timestamp is exact (below 2 ** 53), and twice as fast as micros().
            return int(parsed.timestamp()) * 1_000_000, value
    instant = to_instant(value, "start")
    return micros(instant), format_instant(instant)
