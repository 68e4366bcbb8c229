"""A columnar fast path for reading CSV files of our own layout (with or without its optional usage_id and
carrier columns): polars reads the text, and the checks every row needs are made on whole columns (see
_column_checks; _columnar_json reads JSON Lines files alike).

Correctness first: polars reads a piece of the file only where a record cannot differ from what the csv
module makes of it: UTF-8 text, no quote character, no carriage return but before a line feed, no blank
line, every line as wide as the header, so that each line is one record and its line number is known.
Any other piece is read by the csv module, row by row, as before. A row that any vectorised check does not
pass is handed back as its values, to be checked (and rejected with its error) by the row-by-row code: the
fast path never rejects.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import attrs
import polars as pl

from ._column_checks import KindOf, checked
from ._layouts import OwnLayout, detect_layout
from ._rows import DECIMAL_COMMA_COLUMNS, sniff_delimiter, text_encoding

CHUNK_BYTES = 8 << 20
_SAMPLE_LINES = 20


@attrs.frozen
class FramePiece:
    """Rows that passed the vectorised checks (a frame of the columns a shard needs but seq and file), and the
    rows that did not, as (at, line, values) to be read row by row, `at` the row's place in the piece (its
    row number is the piece's first plus `at`); both in order within the piece."""

    frame: pl.DataFrame
    """Columns: line, at, call_id, usage_id, key, tenant_id, start_us, start, duration, call_type, location,
    licenses, carrier, destination, billed, billed_outcome, billed_minutes, billed_charge, billed_currency,
    user_id."""
    others: list[tuple[int, int, Any]]
    count: int
    """Rows in the piece."""


@attrs.frozen
class PlainPiece:
    """A piece of the file polars reads (see _pieces): its bytes and where it stands, read by read_plain here
    or in a worker (see _read_pieces)."""

    data: bytes
    columns: tuple[str, ...]
    delimiter: str
    line: int
    """The file's line number of the piece's first row."""
    decimal: tuple[int, ...]
    """The columns whose decimal commas are read as points (a semicolon-separated file)."""
    count: int
    """Rows in the piece: one a line."""


def read_plain(piece: PlainPiece, kind_of: KindOf) -> FramePiece:
    """A plain piece read by polars, with the vectorised checks."""
    columns = list(piece.columns)
    return _frame_piece(piece.data, columns, piece.delimiter, piece.line, OwnLayout(columns), list(piece.decimal),
                        kind_of)


@attrs.frozen
class RowPiece:
    """A piece of the file the csv module read: (line, values), or a row that could not be read (a dict)."""

    rows: list[tuple[int, Any]]


def own_csv_pieces(path: Path) -> tuple[list[str], Iterator[PlainPiece | RowPiece]] | None:
    """(header columns, pieces of the file in order), or None when the file is not a UTF-8 CSV file of our
    own layout (the caller reads it row by row). A PlainPiece is read by read_plain."""
    if text_encoding(path) != "utf-8-sig" or path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return None
    with path.open("rb") as handle:
        first_bytes = handle.readline()
        sample = b"".join(handle.readline() for _ in range(_SAMPLE_LINES))
    try:
        first = codecs.decode(first_bytes, "utf-8-sig")
        sample_text = sample.decode("utf-8", "replace")
    except UnicodeDecodeError:
        return None
    if first.lstrip().startswith(("[", "{")) or not first.endswith("\n"):
        return None
    delimiter = sniff_delimiter(first, sample_text)
    columns = [column.strip() for column in next(csv.reader([first], delimiter=delimiter), [])]
    try:
        if detect_layout(columns) != "own":
            return None
    except Exception:
        return None
    return columns, _pieces(path, len(first_bytes), columns, delimiter)


def _pieces(path: Path, offset: int, columns: list[str], delimiter: str) -> Iterator[PlainPiece | RowPiece]:
    width = len(columns)
    decimal = [index for index, column in enumerate(columns) if column in DECIMAL_COMMA_COLUMNS] \
        if delimiter == ";" else []
    line = 2
    separator = delimiter.encode()
    with path.open("rb") as handle:
        handle.seek(offset)
        for data in line_chunks(handle, CHUNK_BYTES):
            given = data  # the csv module reads a piece as the file has it: a quoted field keeps its CRLF
            if b"\r" in data:
                crlf = data.replace(b"\r\n", b"\n")  # the csv module's line ends; a lone CR is not plain
                if b"\r" not in crlf:
                    data = crlf
            text_lines = data.split(b"\n")
            if text_lines[-1] == b"":
                text_lines.pop()
            plain = (b'"' not in data and b"\r" not in data and all(text_lines)
                     and all(piece.count(separator) == width - 1 for piece in text_lines))
            if plain:
                yield PlainPiece(data, tuple(columns), delimiter, line, tuple(decimal), len(text_lines))
            else:
                yield RowPiece(_csv_rows(given, delimiter, line, decimal, columns))
            line += len(text_lines)


def line_chunks(handle: IO[bytes], size: int) -> Iterator[bytes]:
    """The rest of a file in pieces of about `size` bytes, each ending at a line break (the last where the
    file ends), so that no line is cut."""
    rest = b""
    while True:
        data = handle.read(size)
        if not data and not rest:
            return
        if data:
            data = rest + data
            end = data.rfind(b"\n")
            if end < 0:
                rest = data
                continue
            data, rest = data[:end + 1], data[end + 1:]
        else:
            data, rest = rest, b""
        yield data


def _csv_rows(data: bytes, delimiter: str, line: int, decimal: list[int],
              columns: list[str]) -> list[tuple[int, Any]]:
    """A piece read by the csv module, with the same line numbers and multi-line rule as _rows._csv_rows."""
    from ._rows import _csv_rows as rows_of

    text = data.decode("utf-8")
    # The lines before the piece (but the header, which the reader counts as read) are stood in for by empty
    # lines, which it skips, so that its line numbers are the file's.
    handle = io.StringIO("\n" * (line - 2) + text, newline="")
    found: list[tuple[int, Any]] = []
    for row_line, values in rows_of("", handle, delimiter, columns):
        if type(values) is list:
            for index in decimal:
                if index < len(values):
                    values[index] = values[index].replace(",", ".")
        found.append((row_line, values))
    return found


def _frame_piece(data: bytes, columns: list[str], delimiter: str, line: int, layout: OwnLayout,
                 decimal: list[int], kind_of: KindOf) -> FramePiece:
    names = [f"c{index}" for index in range(len(columns))]
    raw = pl.read_csv(io.BytesIO(data), has_header=False, new_columns=names, separator=delimiter, quote_char=None,
                      schema=dict.fromkeys(names, pl.String), empty_string_is_null=False)
    raw = raw.with_columns(pl.int_range(line, line + raw.height, dtype=pl.Int64).alias("line"),
                           pl.int_range(0, raw.height, dtype=pl.Int64).alias("at"))
    for index in decimal:
        raw = raw.with_columns(pl.col(names[index]).str.replace_all(",", ".", literal=True))

    def column(name: str) -> pl.Expr:
        at = layout.at(name)
        return pl.col(names[at]) if at < len(names) else pl.lit(None, dtype=pl.String)

    def first_given(first: str, second: str) -> pl.Expr:
        one, other = layout.at(first), layout.at(second)
        if one < len(names) and other < len(names):
            return pl.when(pl.col(names[one]) != "").then(pl.col(names[one])).otherwise(pl.col(names[other]))
        return column(first if one < len(names) else second)

    licenses_at = layout.at("organizer_licenses")
    named = raw.select(
        "line", "at", column("call_id").alias("call_id"), column("tenant_id").alias("tenant_id"),
        column("start").alias("start"), column("duration_seconds").alias("duration_text"),
        column("call_type").alias("call_type"),
        first_given("organizer_usage_location", "usage_location").alias("location"),
        (column("organizer_licenses") if licenses_at < len(names) else column("licenses")).alias("licenses"),
        column("destination").alias("destination"), column("billed_outcome").alias("outcome"),
        column("billed_minutes").alias("minutes"), column("billed_charge").alias("charge"),
        column("currency").alias("currency"), first_given("organizer_id", "user_id").alias("user_id"),
        column("usage_id").alias("usage_id"), column("carrier").alias("carrier"))
    good, passed = checked(named, kind_of)
    others = [(row[0] - line, row[0], list(row[1:]))
              for row in raw.filter(~passed).select(["line", *names]).iter_rows()]
    return FramePiece(good, others, raw.height)
