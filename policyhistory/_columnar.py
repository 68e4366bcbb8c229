"""A columnar fast path for reading call files of our own layout: polars reads the text, and the checks every
row needs are made on whole columns (start instants to UTC microseconds, durations, call types, usage
locations and licenses once per distinct value, billed values).

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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import polars as pl

from ._layouts import OwnLayout, detect_layout
from ._rating import OUTCOMES
from ._rows import DECIMAL_COMMA_COLUMNS, sniff_delimiter, text_encoding

CHUNK_BYTES = 8 << 20
_SAMPLE_LINES = 20
_START = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"
_DURATION = r"^[0-9]{1,6}$"  # ASCII digits: \d would take other scripts' digits
_NUMBER = r"^-?\d{1,12}(\.\d{1,12})?$"


KindOf = Callable[[str | None, str | None, str | None], tuple[str, str | None, str] | None]
"""(call type, usage location, licenses) as given -> normalised (licenses joined by line breaks), or None
when the row-by-row check refuses them."""


@attrs.frozen
class FramePiece:
    """Rows that passed the vectorised checks (a frame of the columns a shard needs, without kinds), and the
    rows that did not, as (line, values) to be read row by row; both in line order within the piece."""

    frame: pl.DataFrame
    """Columns: line, call_id, tenant_id, start_us, start, duration, call_type, location, licenses, destination,
    billed, billed_outcome, billed_minutes, billed_charge, billed_currency."""
    others: list[tuple[int, list[str]]]
    first_line: int
    count: int
    """Lines (each one row) in the piece, from first_line."""


@attrs.frozen
class RowPiece:
    """A piece of the file the csv module read: (line, values), or a row that could not be read (a dict)."""

    rows: list[tuple[int, Any]]


def own_csv_pieces(path: Path, kind_of: KindOf) -> tuple[list[str], Iterator[FramePiece | RowPiece]] | None:
    """(header columns, pieces of the file in order), or None when the file is not a UTF-8 CSV file of our
    own layout (the caller reads it row by row)."""
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
    if {"usage_id", "carrier"} & set(columns):
        return None  # our layout's optional key and carrier columns: read row by row
    return columns, _pieces(path, len(first_bytes), columns, delimiter, kind_of)


def _pieces(path: Path, offset: int, columns: list[str], delimiter: str,
            kind_of: KindOf) -> Iterator[FramePiece | RowPiece]:
    width = len(columns)
    layout = OwnLayout(columns)
    decimal = [index for index, column in enumerate(columns) if column in DECIMAL_COMMA_COLUMNS] \
        if delimiter == ";" else []
    line = 2
    separator = delimiter.encode()
    with path.open("rb") as handle:
        handle.seek(offset)
        rest = b""
        while True:
            data = handle.read(CHUNK_BYTES)
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
                yield _frame_piece(data, columns, delimiter, line, layout, decimal, kind_of)
            else:
                yield RowPiece(_csv_rows(given, delimiter, line, decimal, columns))
            line += len(text_lines)


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
    raw = raw.with_columns(pl.int_range(line, line + raw.height, dtype=pl.Int64).alias("line"))
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
    licenses = column("organizer_licenses") if licenses_at < len(names) else column("licenses")
    outcome, minutes, charge = column("billed_outcome"), column("billed_minutes"), column("billed_charge")
    given = (outcome.fill_null("") != "") | (minutes.fill_null("") != "") | (charge.fill_null("") != "")
    outcome_raw = outcome.fill_null("")
    outcome_text = outcome_raw.str.strip_chars().str.to_lowercase()
    frame = raw.select(
        "line",
        column("call_id").alias("call_id"),
        column("tenant_id").alias("tenant_id"),
        column("start").alias("start"),
        column("duration_seconds").alias("duration_text"),
        column("call_type").alias("call_type"),
        first_given("organizer_usage_location", "usage_location").alias("location"),
        licenses.alias("licenses"),
        column("destination").alias("destination"),
        given.alias("billed"),
        pl.when(outcome_raw == "").then(None).otherwise(outcome_text).alias("billed_outcome"),
        minutes.fill_null("").alias("minutes_text"),
        charge.fill_null("").alias("charge_text"),
        column("currency").alias("billed_currency"),
        first_given("organizer_id", "user_id").fill_null("").alias("user_id"),
    )
    frame = frame.with_columns(
        pl.col("start").str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%SZ", strict=False)
        .dt.epoch("us").alias("start_us"),
        pl.col("duration_text").str.to_integer(strict=False).alias("duration"),
        pl.col("minutes_text").str.strip_chars().cast(pl.Float64, strict=False).alias("minutes_number"),
        pl.col("charge_text").str.strip_chars().cast(pl.Float64, strict=False).alias("billed_charge"),
    )
    ok = (
        (pl.col("call_id") != "") & ~pl.col("call_id").str.contains("\x00", literal=True)
        & (pl.col("tenant_id") != "") & ~pl.col("tenant_id").str.contains("\x00", literal=True)
        & pl.col("start").str.contains(_START) & pl.col("start_us").is_not_null() & (pl.col("start") >= "1900")
        & pl.col("duration_text").str.contains(_DURATION) & pl.col("duration").is_not_null()
        & (~pl.col("billed") | (
            (pl.col("billed_outcome").is_null() | pl.col("billed_outcome").is_in(list(OUTCOMES)))
            & ((pl.col("minutes_text") == "") | pl.col("minutes_text").str.strip_chars().str.contains(_NUMBER))
            & ((pl.col("charge_text") == "") | pl.col("charge_text").str.strip_chars().str.contains(_NUMBER))))
    )
    frame = frame.with_columns(ok.fill_null(False).alias("ok"))
    # Call type, usage location and licenses: checked once per distinct combination, by the row-by-row code.
    kinds = frame.filter(pl.col("ok")).select("call_type", "location", "licenses").unique()
    checked = [(*key, *(kind_of(*key) or (None, None, None))) for key in kinds.iter_rows()]
    kind_frame = pl.DataFrame(checked, schema={"call_type": pl.String, "location": pl.String,
                                                "licenses": pl.String, "kind_type": pl.String,
                                                "kind_location": pl.String, "kind_licenses": pl.String},
                              orient="row")
    frame = frame.join(kind_frame, on=["call_type", "location", "licenses"], how="left", nulls_equal=True,
                       maintain_order="left")
    frame = frame.with_columns((pl.col("ok") & pl.col("kind_type").is_not_null()).alias("ok"))
    others = [(row[0], list(row[1:])) for row in raw.filter(~frame["ok"]).select(["line", *names]).iter_rows()]
    good = frame.filter(pl.col("ok")).select(
        "line", "call_id", "tenant_id", "start_us", "start", "duration", pl.col("kind_type").alias("call_type"),
        pl.col("kind_location").alias("location"), pl.col("kind_licenses").alias("licenses"),
        "destination", "billed", "billed_outcome",
        pl.when(pl.col("minutes_text") == "").then(None).otherwise(pl.col("minutes_number").cast(pl.Int64))
        .alias("billed_minutes"),
        pl.when(pl.col("charge_text") == "").then(None).otherwise(pl.col("billed_charge")).alias("billed_charge"),
        pl.when(pl.col("billed_currency") == "").then(None).otherwise(pl.col("billed_currency"))
        .alias("billed_currency"),
        "user_id",
    )
    return FramePiece(good, others, line, raw.height)
