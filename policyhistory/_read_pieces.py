"""A plain piece of a CSV file of our layout read into tenant shards, in the reading process or in a worker.

Where a run has workers, `_reading.ShardReading` hands them the plain pieces of the file (those polars reads:
see _columnar), each with its first row number: a worker reads the piece with the vectorised checks, writes
the rows that pass as Parquet parts of their tenants' shards, and gives back the parts and the rows left to
the row-by-row code, which the reading process checks in order. Tenants go to shards by a hash of their id,
so a worker and the reading process put a tenant in the same shard.
"""

from __future__ import annotations

import zlib
from typing import Any

import attrs
import polars as pl

from ._calls import _carrier, _optional_country, _skus, call_type
from ._columnar import FramePiece, PlainPiece, read_plain
from ._errors import PolicyHistoryError
from ._scratch_url import join, write_parquet
from ._shards import SHARD_SCHEMA

CallKind = tuple[str, str | None, tuple[str, ...], str | None]
"""A call's type, usage location, licenses and carrier, as checked."""


class CallKinds:
    """A call's type, usage location, licenses and carrier, checked once per distinct input."""

    def __init__(self) -> None:
        self.known: dict[tuple[object, ...], CallKind] = {}

    def of(self, kind_given: object, location_given: object, licenses_given: object,
           carrier: object = None) -> CallKind:
        """The checked kind; raises the PolicyHistoryError of the first value refused."""
        kind = (call_type(str(kind_given) if kind_given is not None else ""), _optional_country(location_given),
                _skus(licenses_given), _carrier(carrier))
        if type(licenses_given) is not list:  # a JSON list of licenses is not hashable
            self.known[(kind_given, location_given, licenses_given, carrier)] = kind
        return kind

    def joined(self, kind_given: str | None, location_given: str | None,
               licenses_given: str | tuple[str, ...] | None,
               carrier: str | None) -> tuple[str, str | None, str, str | None] | None:
        """The columnar checks' view (see _column_checks.KindOf): licenses joined by line breaks, None if refused."""
        key = (kind_given, location_given, licenses_given, carrier)
        try:
            kind = self.known.get(key) or self.of(kind_given, location_given, licenses_given, carrier)
        except PolicyHistoryError:
            return None
        return kind[0], kind[1], "\n".join(kind[2]), kind[3]


def shard_of(tenant_id: str, shard_count: int) -> int:
    """The shard of a tenant: the same in every process."""
    return zlib.crc32(tenant_id.encode("utf-8", "surrogatepass")) % shard_count


def write_frame_parts(frame: pl.DataFrame, file_index: int, seq_offset: int, shard_count: int, scratch: str,
                      name: str) -> list[tuple[int, str]]:
    """Rows the columnar path read and checked (a FramePiece's frame) to their shards, as Parquet parts named
    after `name`; returns (shard, path) of each part, in shard order."""
    shards = {tenant: shard_of(tenant, shard_count) for tenant in frame["tenant_id"].unique().to_list()}
    # Our layout: its billed names no Capability, and its licenses are given, not inferred (the Teams export's
    # frame has these columns).
    own = {"capability": pl.lit(None, dtype=pl.String), "infer": pl.lit(False),
           "billed_capability": pl.lit(None, dtype=pl.String), "billed_has_capability": pl.lit(False)}
    frame = frame.with_columns(
        (pl.col("at") + seq_offset).alias("seq"), pl.lit(file_index, dtype=pl.Int32).alias("file"),
        *(value.alias(name) for name, value in own.items() if name not in frame.columns),
        pl.col("tenant_id").replace_strict(shards, return_dtype=pl.Int64).alias("shard"))
    parts = []
    for (shard,), part in sorted(frame.partition_by("shard", as_dict=True).items()):
        index = int(shard)  # type: ignore[call-overload]
        path = join(scratch, f"shard-{index}-{name}.parquet")
        write_parquet(part.select(list(SHARD_SCHEMA)).cast(SHARD_SCHEMA), path)  # type: ignore[arg-type]
        parts.append((index, path))
    return parts


@attrs.frozen
class PieceJob:
    """A plain piece for a worker: the file it is of, its first row number, where its parts go."""

    piece: PlainPiece
    file_index: int
    seq: int
    shard_count: int
    scratch: str
    name: str


@attrs.frozen
class PieceParts:
    """What a worker made of a piece: its shards' parts, and the rows left to the row-by-row code as
    (at, line, values)."""

    parts: list[tuple[int, str]]
    others: list[tuple[int, int, Any]]


_KINDS = CallKinds()
"""A worker's own checked kinds (the values are the same in every process)."""


def piece_parts(found: FramePiece, file_index: int, seq: int, shard_count: int, scratch: str,
                name: str) -> PieceParts:
    """A piece the columnar path read: its rows that passed written to their shards' parts, the others kept."""
    parts = write_frame_parts(found.frame, file_index, seq, shard_count, scratch, name) if found.frame.height else []
    return PieceParts(parts, found.others)


def read_piece(job: PieceJob) -> PieceParts:
    """Read one plain piece into its shards' parts (run by a worker)."""
    return piece_parts(read_plain(job.piece, _KINDS.joined), job.file_index, job.seq, job.shard_count, job.scratch,
                       job.name)
