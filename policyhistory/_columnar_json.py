"""A columnar fast path for reading JSON Lines files (.jsonl, .ndjson) of our own layout: polars decodes the
lines, and the checks every row needs are made on whole columns (see _column_checks).

Correctness first: polars decodes a line only where its record cannot differ from what json.loads and the
layout reader make of it: one flat object on the line, keys of letters, digits and underscores, none given
twice and none "__error__" (a row the reader says it could not read); values texts (no escaped surrogate,
which json.loads keeps alone and polars does not), integers of up to 18 digits (whose text is the same in
both), true, false or null, and plain decimals only for billed_minutes and billed_charge (json.loads'
float gives its value, not its text: 1.50 is "1.5"). Any other line (a blank line, a nested value, a
record that is not an object, an exponent, text that is not JSON) is read by json.loads as the row-by-row
reading does, and handed back with its line, as is any row a vectorised check does not pass: the fast path
never rejects. A piece of the file holding a lone carriage return (which ends a line for Python's reading,
not for a split at line feeds) is read by Python's line reading as a whole.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from ._column_checks import NAMED, KindOf, checked, synonym_or
from ._columnar import CHUNK_BYTES, FramePiece, line_chunks
from ._layouts import OwnLayout, UnknownLayoutError, detect_layout
from ._rows import JSON_LINES_SUFFIXES, ZIP_MAGIC, _not_text, json_line_rows, text_encoding

_WS = r"[ \t]*"
_TEXT = (r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u(?:[0-9a-cA-CeEfF][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2}))*"')
_KEY = r'"[A-Za-z0-9_]*"'
_INTEGER = r"(?:0|-?[1-9][0-9]{0,17})"  # not -0, which json.loads reads as 0
_DECIMAL = r"-?(?:0|[1-9][0-9]{0,11})\.[0-9]{1,12}"
_PAIR = (rf'(?:"(?:billed_minutes|billed_charge)"{_WS}:{_WS}{_DECIMAL}'
         rf"|{_KEY}{_WS}:{_WS}(?:{_TEXT}|{_INTEGER}|true|false|null))")
PLAIN_LINE = rf"^{_WS}\{{{_WS}(?:{_PAIR}{_WS}(?:,{_WS}{_PAIR}{_WS})*)?\}}{_WS}\r?$"
# A plain line with its values taken out (each value is matched from its pair's colon, whole: a colon in a
# text is part of its value): what is left names the keys, which a few distinct such texts share.
_VALUE = rf":{_WS}(?:{_TEXT}|{_DECIMAL}|{_INTEGER}|true|false|null)"
_FIELDS = pl.Schema(dict.fromkeys(OwnLayout.names, pl.String))


def own_json_pieces(path: Path, kind_of: KindOf) -> tuple[None, Iterator[FramePiece]] | None:
    """(None: no header, pieces of the file in order), or None when the file is not a UTF-8 JSON Lines file
    whose first row is a record of our layout (the row-by-row reading takes the file's layout from it)."""
    if path.suffix.lower() not in JSON_LINES_SUFFIXES or text_encoding(path) != "utf-8-sig":
        return None
    with path.open("rb") as handle:
        if handle.read(4) == ZIP_MAGIC:
            return None
    first: list[Any] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as text:
            for line in text:
                first = json_line_rows(line)
                if first or line.strip():
                    break
    except UnicodeDecodeError:
        return None
    if not first or type(first[0]) is not dict or "__error__" in first[0]:
        return None
    try:
        if detect_layout(first[0]) != "own":
            return None
    except UnknownLayoutError:
        return None
    return None, _pieces(path, kind_of)


def _pieces(path: Path, kind_of: KindOf) -> Iterator[FramePiece]:
    line = 1
    with path.open("rb") as handle:
        if handle.read(3) != b"\xef\xbb\xbf":  # utf-8-sig: the byte order mark is not text
            handle.seek(0)
        for data in line_chunks(handle, CHUNK_BYTES):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as error:
                raise _not_text(str(path), line + data[:error.start].count(b"\n")) from None
            if "\r" in text and "\r" in text.replace("\r\n", ""):
                piece, lines = _python_piece(text, line)
            else:
                piece, lines = _frame_piece(data, text, line, kind_of)
            yield piece
            line += lines


def _python_piece(text: str, line: int) -> tuple[FramePiece, int]:
    """A piece read as the row-by-row reading reads the file: its lines as Python's text reading splits them."""
    others: list[tuple[int, int, Any]] = []
    lines = 0
    for lines, line_text in enumerate(io.StringIO(text, newline=""), start=1):
        for row in json_line_rows(line_text):
            others.append((len(others), line + lines - 1, row))
    return FramePiece(pl.DataFrame(), others, len(others)), lines


def _unique_keys(keys: str) -> bool:
    """Whether a plain line's keys (the line without its values) are each given once, none "__error__" (what
    the row-by-row reading takes for a row it could not read)."""
    names = re.findall(r'"([A-Za-z0-9_]*)"[ \t]*:', keys)
    return len(set(names)) == len(names) and "__error__" not in names


def _frame_piece(data: bytes, text: str, line: int, kind_of: KindOf) -> tuple[FramePiece, int]:
    lines = text.split("\n")
    ended = lines[-1] == ""  # the piece ends with a line break (all but, perhaps, the file's last piece)
    if ended:
        lines.pop()
    frame = pl.DataFrame({"text": lines}, schema={"text": pl.String}).with_row_index("index")
    frame = frame.with_columns(pl.col("text").str.contains(PLAIN_LINE).alias("plain"),
                               pl.col("text").str.replace_all(_VALUE, ":").alias("keys"))
    distinct = frame.filter(pl.col("plain"))["keys"].unique().to_list()
    refused = [keys for keys in distinct if not _unique_keys(keys)]
    if refused:
        frame = frame.with_columns(pl.col("plain") & ~pl.col("keys").is_in(refused))
    plain = frame.filter(pl.col("plain"))
    fields = pl.DataFrame(schema={"index": pl.UInt32, **_FIELDS})
    if plain.height:
        # json.loads and polars' reader agree on a plain line: they are read together, by polars' reader.
        given = data if plain.height == len(lines) else "\n".join(plain["text"]).encode("utf-8")
        try:
            fields = pl.read_ndjson(io.BytesIO(given), schema=_FIELDS).with_columns(plain["index"])
        except pl.exceptions.PolarsError:  # not expected of plain lines: then json.loads reads them all
            frame = frame.with_columns(pl.lit(False).alias("plain"))
    # A line gives one row, none (blank) or several (a Graph response page): each row's place in the piece.
    read = {index: json_line_rows(lines[index] + ("\n" if ended or index < len(lines) - 1 else ""))
            for index in frame.filter(~pl.col("plain"))["index"]}
    counts = [1] * len(lines)
    for index, rows in read.items():
        counts[index] = len(rows)
    starts = pl.Series("at", counts, dtype=pl.Int64).cum_sum() - pl.Series(counts, dtype=pl.Int64)
    fields = fields.with_columns(starts.gather(fields["index"]).alias("at"))

    def first_given(first: str, second: str) -> pl.Expr:
        return synonym_or(pl.col(first), pl.col(second))

    named = fields.select(
        (pl.col("index").cast(pl.Int64) + line).alias("line"), "at",
        "call_id", "tenant_id", "start", pl.col("duration_seconds").alias("duration_text"), "call_type",
        first_given("organizer_usage_location", "usage_location").alias("location"),
        first_given("organizer_licenses", "licenses").alias("licenses"), "destination",
        pl.col("billed_outcome").alias("outcome"), pl.col("billed_minutes").alias("minutes"),
        pl.col("billed_charge").alias("charge"), "currency", first_given("organizer_id", "user_id").alias("user_id"),
        "usage_id", "carrier")
    good, passed = checked(named.select(NAMED), kind_of)
    others: list[tuple[int, int, Any]] = []
    for index in fields.filter(~passed)["index"]:
        read[index] = json_line_rows(lines[index] + ("\n" if ended or index < len(lines) - 1 else ""))
    at = starts.to_list()
    for index in sorted(read):
        others += [(at[index] + offset, line + index, row) for offset, row in enumerate(read[index])]
    return FramePiece(good, others, sum(counts)), len(lines)
