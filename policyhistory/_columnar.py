"""A columnar fast path for reading CSV files of our own layout (with or without its optional usage_id and
carrier columns): polars reads the text, and the checks every row needs are made on whole columns (see
_column_checks; _columnar_json reads JSON Lines files alike).

Correctness first: polars reads a piece of the file only where a record cannot differ from what the csv
module makes of it: UTF-8 text, no quote character, no carriage return but before a line feed, no blank
line, no line longer than the csv module's field size limit, every line as wide as the header, so that each
line is one record and its line number is known (csv_pieces; the Teams export's reader, _columnar_teams, also
takes fields wholly quoted). Any other piece is read by the csv module, row by row, as before, on to the end
of its last record. A row that any vectorised check does not pass is handed back as its values, to be
checked (and rejected with its error) by the row-by-row code: the fast path never rejects.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import attrs
import polars as pl

from ._column_checks import KindOf, checked, synonym_or
from ._layouts import OwnLayout, detect_layout
from ._rows import DECIMAL_COMMA_COLUMNS, ZIP_MAGIC, sniff_delimiter, text_encoding

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
    """A piece of the file polars reads (see csv_pieces): its bytes and where it stands, read by read_plain here
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


@attrs.frozen
class CsvHeader:
    """A CSV file's header as the row-by-row reading takes it (read_table): its columns, stripped, and its
    delimiter; `offset`, the bytes of its line."""

    columns: list[str]
    delimiter: str
    offset: int

    def decimal(self) -> list[int]:
        """The columns whose decimal comma the row-by-row reading makes a point (a semicolon-separated file)."""
        return [index for index, column in enumerate(self.columns) if column in DECIMAL_COMMA_COLUMNS] \
            if self.delimiter == ";" else []


def csv_header(path: Path, layout: str) -> CsvHeader | None:
    """The header of a UTF-8 CSV file of `layout` (a name detect_layout gives), or None for any other file
    (the caller reads it row by row): not UTF-8, JSON, a zip archive (the export's Calls.Export zip, whose
    bytes are not the CSV file's), a header of another layout or naming a column twice (which read_table
    refuses)."""
    if text_encoding(path) != "utf-8-sig" or path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return None
    with path.open("rb") as handle:
        if handle.read(4) == ZIP_MAGIC:
            return None
        handle.seek(0)
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
    named = [column for column in columns if column]
    try:
        if detect_layout(columns) != layout or len(set(named)) != len(named):
            return None
    except Exception:
        return None
    return CsvHeader(columns, delimiter, len(first_bytes))


def own_csv_pieces(path: Path) -> tuple[list[str], Iterator[PlainPiece | FramePiece | RowPiece]] | None:
    """(header columns, pieces of the file in order), or None when the file is not a UTF-8 CSV file of our
    own layout (the caller reads it row by row). A PlainPiece is read by read_plain."""
    header = csv_header(path, "own")
    if header is None:
        return None
    columns, delimiter, decimal = tuple(header.columns), header.delimiter, tuple(header.decimal())

    def plain_piece(data: bytes, line: int, count: int) -> PlainPiece:
        return PlainPiece(data, columns, delimiter, line, decimal, count)

    return header.columns, csv_pieces(path, header, plain_piece, quoted=False)


PlainPieceOf = Callable[[bytes, int, int], "PlainPiece | FramePiece"]
"""A plain piece of a CSV file (its bytes, CRLF made LF, the line it starts on and its rows, one a line) kept
for polars to read (PlainPiece) or read by polars now (FramePiece)."""


def csv_pieces(path: Path, header: CsvHeader, plain_piece: PlainPieceOf,
               quoted: bool) -> Iterator[PlainPiece | FramePiece | RowPiece]:
    """The file after its header in pieces: a plain one given to `plain_piece`, any other by the csv module.
    Plain: UTF-8, no carriage return but before a line feed, no blank line, no line longer than the csv
    module's field size limit (it refuses such a field, polars does not), and every line a record as wide as
    the header: no quote character at all, or (`quoted`) every field either without one or wholly quoted,
    with doubled quotes inside and no line break (what the csv module and polars read alike)."""
    columns, delimiter = header.columns, header.delimiter
    width = len(columns)
    decimal = header.decimal()
    line = 2
    separator = delimiter.encode()
    limit = csv.field_size_limit()
    record = _record_pattern(delimiter, width) if quoted else None
    with path.open("rb") as handle:
        handle.seek(header.offset)
        source = _Chunks(line_chunks(handle, CHUNK_BYTES))
        while (data := source.next()) is not None:
            given = data  # the csv module reads a piece as the file has it: a quoted field keeps its CRLF
            if b"\r" in data:
                crlf = data.replace(b"\r\n", b"\n")  # the csv module's line ends; a lone CR is not plain
                if b"\r" not in crlf:
                    data = crlf
            text_lines = data.split(b"\n")
            if text_lines[-1] == b"":
                text_lines.pop()
            plain = b"\r" not in data and all(text_lines) and max(map(len, text_lines), default=0) < limit
            if plain and b'"' not in data:
                plain = all(piece.count(separator) == width - 1 for piece in text_lines)
            elif plain:
                plain = record is not None and _records(text_lines, record)
            if plain:
                try:
                    piece = plain_piece(data, line, len(text_lines))
                except pl.exceptions.PolarsError:  # not expected of a plain piece: then the csv module reads it
                    plain = False
                else:
                    yield piece
                    line += len(text_lines)
            if not plain:
                rows, lines = _csv_rows(given, source, delimiter, line, decimal, columns)
                yield RowPiece(rows)
                line += lines


class _Chunks:
    """The pieces line_chunks gives, and the lines a piece read by the csv module did not take back first."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.back: list[bytes] = []

    def next(self) -> bytes | None:
        return self.back.pop() if self.back else next(self.chunks, None)


class _RecordLines:
    """The lines the csv module reads of a piece: stand-ins for the lines before it, its own, then the next
    pieces' while the record at its end is still open (a quoted field that holds a line break), so that the
    piece ends where a record does, as in the reading of the whole file. Lines as the row-by-row reading
    splits them (a lone carriage return ends one)."""

    def __init__(self, before: int, text: str, source: _Chunks) -> None:
        self.before = before
        self.lines = io.StringIO(text, newline="").readlines()
        self.lines.reverse()
        self.source = source
        self.read = 0
        """Lines of the file read (not the stand-ins)."""
        self.ended = 0
        """`read` when the csv module last gave a record: it has read no line of the next one since."""

    def __enter__(self) -> _RecordLines:
        return self

    def __exit__(self, *_: object) -> None:
        if self.lines:
            self.lines.reverse()
            self.source.back.append("".join(self.lines).encode("utf-8"))
            self.lines = []

    def __iter__(self) -> _RecordLines:
        return self

    def __next__(self) -> str:
        if self.before:
            self.before -= 1
            return "\n"
        if not self.lines:
            more = self.source.next() if self.read != self.ended else None
            if more is None:
                raise StopIteration
            self.lines = io.StringIO(more.decode("utf-8"), newline="").readlines()
            self.lines.reverse()
        self.read += 1
        return self.lines.pop()


def _record_pattern(delimiter: str, width: int) -> str:
    """A line that is one record of `width` fields, each without a quote or wholly quoted."""
    separator = re.escape(delimiter)
    field = rf'(?:[^"{separator}]*|"(?:[^"]|"")*")'
    return rf"^(?:{field}{separator}){{{width - 1}}}{field}$"


def _records(lines: list[bytes], pattern: str) -> bool:
    """Whether every line (UTF-8) matches `pattern` (polars' regex engine, linear in the text)."""
    try:
        texts = pl.Series([line.decode("utf-8") for line in lines], dtype=pl.String)
        return bool(texts.str.contains(pattern).all())
    except (UnicodeDecodeError, pl.exceptions.PolarsError):  # a header so wide the pattern is too large
        return False


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


def _csv_rows(data: bytes, source: _Chunks, delimiter: str, line: int, decimal: list[int],
              columns: list[str]) -> tuple[list[tuple[int, Any]], int]:
    """A piece read by the csv module, with the same line numbers and multi-line rule as _rows._csv_rows, and
    the lines it took (its own, and any of the next pieces' that its last record runs on over)."""
    from ._rows import _csv_rows as rows_of

    # The lines before the piece (but the header, which the reader counts as read) are stood in for by empty
    # lines, which it skips, so that its line numbers are the file's.
    lines = _RecordLines(line - 2, data.decode("utf-8"), source)
    found: list[tuple[int, Any]] = []
    for row_line, values in rows_of("", lines, delimiter, columns):
        lines.ended = lines.read
        if type(values) is list:
            for index in decimal:
                if index < len(values):
                    values[index] = values[index].replace(",", ".")
        found.append((row_line, values))
    return found, lines.read


def _frame_piece(data: bytes, columns: list[str], delimiter: str, line: int, layout: OwnLayout,
                 decimal: list[int], kind_of: KindOf) -> FramePiece:
    names = [f"c{index}" for index in range(len(columns))]
    raw = pl.read_csv(io.BytesIO(data), has_header=False, new_columns=names, separator=delimiter, quote_char=None,
                      schema=dict.fromkeys(names, pl.String), empty_string_is_null=False)
    raw = raw.with_columns(pl.int_range(line, line + raw.height, dtype=pl.Int64).alias("line"),
                           pl.int_range(0, raw.height, dtype=pl.Int64).alias("at"))
    for index in decimal:  # as _rows.decimal_point: one comma and no point
        given = pl.col(names[index])
        raw = raw.with_columns(pl.when((given.str.count_matches(",", literal=True) == 1)
                                       & ~given.str.contains(".", literal=True))
                               .then(given.str.replace(",", ".", literal=True)).otherwise(given).alias(names[index]))

    def column(name: str) -> pl.Expr:
        at = layout.at(name)
        return pl.col(names[at]) if at < len(names) else pl.lit(None, dtype=pl.String)

    def first_given(first: str, second: str) -> pl.Expr:
        one, other = layout.at(first), layout.at(second)
        if one < len(names) and other < len(names):
            return synonym_or(pl.col(names[one]), pl.col(names[other]))
        return column(first if one < len(names) else second)

    named = raw.select(
        "line", "at", column("call_id").alias("call_id"), column("tenant_id").alias("tenant_id"),
        column("start").alias("start"), column("duration_seconds").alias("duration_text"),
        column("call_type").alias("call_type"),
        first_given("organizer_usage_location", "usage_location").alias("location"),
        first_given("organizer_licenses", "licenses").alias("licenses"),
        column("destination").alias("destination"), column("billed_outcome").alias("outcome"),
        column("billed_minutes").alias("minutes"), column("billed_charge").alias("charge"),
        column("currency").alias("currency"), first_given("organizer_id", "user_id").alias("user_id"),
        column("usage_id").alias("usage_id"), column("carrier").alias("carrier"))
    good, passed = checked(named, kind_of)
    others = [(row[0] - line, row[0], list(row[1:]))
              for row in raw.filter(~passed).select(["line", *names]).iter_rows()]
    return FramePiece(good, others, raw.height)
