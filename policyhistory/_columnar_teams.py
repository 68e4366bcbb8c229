"""A columnar fast path for reading the Teams PSTN usage report export (CSV: comma, tab or semicolon): polars
reads the text (see _columnar.csv_pieces: a piece whose every line is one record, fields wholly quoted or
without quotes), and only the simple checks are made on whole columns: the key and Call ID, a UTC start of
the common form (2018-06-30T23:59:59Z), a duration of ASCII digits.

What a row's other columns mean is found by the row-by-row code itself, once per distinct value: the
layout reader (TeamsLayout.read) and the call's kind check (ShardReading._kind_of) read a row of each
distinct tuple of the columns that decide the destination (Destination Number, External Country, Destination
Dialed, Number Type) and of those that decide the rest (Call Type, User Location, Capability, Charge,
Connection Fee, Currency, Operator, Source of Call Duration), every other column standing in with a value
that reads without error. Each group's outputs depend on its own columns alone, so a row passes where every
check and both of its tuples pass; any other row is handed back with its values and line, to be read (and
rejected with its error) row by row: the fast path never rejects.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl

from ._column_checks import DURATION, START
from ._columnar import FramePiece, PlainPiece, RowPiece, csv_header, csv_pieces
from ._layouts import TeamsLayout

KindOf = Callable[[Any, Any, Any, Any], tuple[str, str | None, str, str | None] | None]
"""(call type, usage location, licenses, carrier) as the layout reader gives them -> normalised (licenses
joined by line breaks), or None when the row-by-row check refuses them (ShardReading._kind_of)."""

DESTINATION_COLUMNS = ("Destination Number", "External Country", "Destination Dialed", "Number Type")
MEANING_COLUMNS = ("Call Type", "User Location", "Capability", "Charge", "Connection Fee", "Currency", "Operator",
                   "Source of Call Duration")
_STAND_IN_NUMBER = "+33142685300"
"""The Destination Number of the row that reads a tuple of MEANING_COLUMNS: any number read as given."""
_ENDS_PLAIN = r"^(?:[!-~](?:.*[!-~])?)?$"
"""A UsageId that stripping (TeamsLayout.read) leaves as it is: empty, or printable ASCII at both ends."""
_MEANING_SCHEMA = {"call_type": pl.String, "location": pl.String, "licenses": pl.String, "carrier": pl.String,
                   "capability": pl.String, "infer": pl.Boolean, "billed": pl.Boolean, "billed_outcome": pl.String,
                   "billed_minutes": pl.Int64, "billed_charge": pl.Float64, "billed_currency": pl.String,
                   "billed_capability": pl.String, "billed_has_capability": pl.Boolean}


def teams_csv_pieces(path: Path, kind_of: KindOf, tenant_of: Callable[[Path], str | None]
                     ) -> tuple[list[str], Iterator[PlainPiece | FramePiece | RowPiece]] | None:
    """(header columns, pieces of the file in order), or None when the file is not a UTF-8 CSV Teams export
    or its tenant (`tenant_of`: None when the run has none for it) is not known: the caller reads it row by
    row."""
    header = csv_header(path, "teams")
    if header is None:
        return None
    tenant = tenant_of(path)
    if type(tenant) is not str or not tenant or "\0" in tenant:
        return None
    meanings = _Meanings(TeamsLayout(header.columns), tenant, kind_of)
    delimiter, decimal = header.delimiter, header.decimal()

    def frame_piece(data: bytes, line: int, count: int) -> FramePiece:
        return _frame_piece(data, header.columns, delimiter, line, decimal, tenant, meanings)

    return header.columns, csv_pieces(path, header, frame_piece, quoted=True)


class _Meanings:
    """The row-by-row reading of each distinct tuple of a group of columns, remembered over the file."""

    def __init__(self, reader: TeamsLayout, tenant: str, kind_of: KindOf) -> None:
        self.reader, self.tenant, self.kind_of = reader, tenant, kind_of
        width = len(reader.columns)
        self.destination_at = [reader.at(name) for name in DESTINATION_COLUMNS if reader.at(name) < width]
        self.meaning_at = [reader.at(name) for name in MEANING_COLUMNS if reader.at(name) < width]
        # The row as the reader takes it (its values and the None an absent column reads): every field empty,
        # which reads without error but for the destination.
        self.blank: list[Any] = [""] * width + [None]
        if reader.at("Destination Number") < width:  # else every tuple of MEANING_COLUMNS is left to the rows
            self.blank[reader.at("Destination Number")] = _STAND_IN_NUMBER
        self.destinations: dict[tuple[str, ...], str | None] = {}
        self.meanings: dict[tuple[str, ...], tuple[Any, ...] | None] = {}

    def _read(self, at: list[int], given: tuple[str, ...]) -> tuple[Any, ...] | None:
        values = list(self.blank)
        for index, value in zip(at, given, strict=True):
            values[index] = value
        try:
            return self.reader.read(values, self.tenant)
        except Exception:  # whatever the row-by-row reading makes of it, it does so itself
            return None

    def destination(self, given: tuple[str, ...]) -> str | None:
        if given not in self.destinations:
            read = self._read(self.destination_at, given)
            self.destinations[given] = None if read is None or type(read[5]) is not str else read[5]
        return self.destinations[given]

    def meaning(self, given: tuple[str, ...]) -> tuple[Any, ...] | None:
        """(call type, location, licenses, carrier, capability, infer, billed, and what was billed) of a tuple
        of MEANING_COLUMNS, as _reading.ShardReading._rows makes them, or None where it rejects the row."""
        if given in self.meanings:
            return self.meanings[given]
        read = self._read(self.meaning_at, given)
        found: tuple[Any, ...] | None = None
        if read is not None and type(read[8]) is not list:
            kind = self.kind_of(read[4], read[7], read[8], read[13])
            billed = read[9]
            if kind is not None:
                found = (*kind, read[10], read[11], billed is not None,
                         *((billed["outcome"], billed["minutes"], billed["charge"], billed["currency"],
                            billed.get("capability"), "capability" in billed)
                           if billed is not None else (None, None, None, None, None, False)))
        self.meanings[given] = found
        return found

    def frame(self, raw: pl.DataFrame, names: list[str]) -> pl.DataFrame:
        """`raw` with `destination` and the columns of _MEANING_SCHEMA (all None where a group's reading
        refuses its tuple, `call_type` None too)."""
        destination_names = [names[index] for index in self.destination_at]
        meaning_names = [names[index] for index in self.meaning_at]
        if destination_names:
            found = raw.select(destination_names).unique()
            destinations = [*found.iter_rows()]
            found = found.with_columns(pl.Series("destination", [self.destination(key) for key in destinations],
                                                 dtype=pl.String))
            raw = raw.join(found, on=destination_names, how="left", nulls_equal=True, maintain_order="left")
        else:
            raw = raw.with_columns(pl.lit(self.destination(())).alias("destination"))
        empty = (None,) * len(_MEANING_SCHEMA)
        if meaning_names:
            found = raw.select(meaning_names).unique()
            rows = [self.meaning(key) or empty for key in found.iter_rows()]
        else:
            found, rows = pl.DataFrame(), [self.meaning(()) or empty]
        meanings = pl.DataFrame(rows, schema=_MEANING_SCHEMA, orient="row")
        if not meaning_names:
            return raw.join(meanings, how="cross")
        return raw.join(pl.concat([found, meanings], how="horizontal"), on=meaning_names, how="left",
                        nulls_equal=True, maintain_order="left")


def _frame_piece(data: bytes, columns: list[str], delimiter: str, line: int, decimal: list[int], tenant: str,
                 meanings: _Meanings) -> FramePiece:
    names = [f"c{index}" for index in range(len(columns))]
    raw = pl.read_csv(io.BytesIO(data), has_header=False, new_columns=names, separator=delimiter, quote_char='"',
                      schema=dict.fromkeys(names, pl.String), empty_string_is_null=False)
    raw = raw.with_columns(pl.int_range(line, line + raw.height, dtype=pl.Int64).alias("line"),
                           pl.int_range(0, raw.height, dtype=pl.Int64).alias("at"))
    for index in decimal:  # what read_table does to the Charge of a semicolon-separated file
        raw = raw.with_columns(pl.col(names[index]).str.replace_all(",", ".", literal=True))
    reader = meanings.reader

    def column(name: str) -> pl.Expr:
        at = reader.at(name)
        return pl.col(names[at]) if at < len(names) else pl.lit(None, dtype=pl.String)

    usage_given = column("UsageId")
    # TeamsLayout.read: `_text(UsageId) or None`, then `Call ID or usage_id`; ShardReading._rows: the key is
    # the usage_id where there is one.
    usage_id = pl.when(usage_given == "").then(None).otherwise(usage_given)
    frame = meanings.frame(raw, names).with_columns(
        usage_id.alias("usage_id"),
        pl.when(column("Call ID") == "").then(usage_id).otherwise(column("Call ID")).alias("call_id"),
        column("Start Time").alias("start"),
        column("Duration Seconds").alias("duration_text"),
        column("UPN").fill_null("").alias("user_id"),
    )
    frame = frame.with_columns(
        pl.col("start").str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%SZ", strict=False)
        .dt.epoch("us").alias("start_us"),
        pl.col("duration_text").str.to_integer(strict=False).alias("duration"),
    )
    passed = (
        (usage_given.is_null() | (usage_given.str.contains(_ENDS_PLAIN)
                                  & ~usage_given.str.contains("\x00", literal=True)))
        & (pl.col("call_id") != "") & ~pl.col("call_id").str.contains("\x00", literal=True)
        & pl.col("start").str.contains(START) & (pl.col("start") >= "1900") & pl.col("start_us").is_not_null()
        & pl.col("duration_text").str.contains(DURATION) & pl.col("duration").is_not_null()
        & pl.col("destination").is_not_null() & pl.col("call_type").is_not_null()
    ).fill_null(False)
    frame = frame.with_columns(passed.alias("passed"))
    good = frame.filter(pl.col("passed")).select(
        "line", "at", "call_id", "usage_id", pl.coalesce("usage_id", "call_id").alias("key"),
        pl.lit(tenant, dtype=pl.String).alias("tenant_id"), "start_us", "start", "duration",
        "call_type", "location", "licenses", "carrier", "destination", "capability", "infer", "billed",
        "billed_outcome", "billed_minutes", "billed_charge", "billed_currency", "billed_capability",
        "billed_has_capability", "user_id")
    others = [(row[0] - line, row[0], list(row[1:]))
              for row in frame.filter(~pl.col("passed")).select(["line", *names]).iter_rows()]
    return FramePiece(good, others, raw.height)
