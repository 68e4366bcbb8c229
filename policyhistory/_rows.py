"""Reading tabular input (CSV with comma or tab, JSON array, JSON Lines) as (line, row) pairs."""

from __future__ import annotations

import codecs
import contextlib
import csv
import json
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

from ._errors import InvalidRecordsError, Problem

Row = list[Any] | dict[str, Any]
"""A CSV row as the list of its values (the header names them), or a JSON record as a dict; a dict with
the key "__error__" is a row that could not be read, and says why."""


JSON_LINES_SUFFIXES = frozenset({".jsonl", ".ndjson"})


def sniff_delimiter(header: str, sample: str = "") -> str:
    """Comma, tab (the Skype for Business export) or semicolon (Excel's "CSV" where the decimal mark is a
    comma, as in France), as csv.Sniffer reads the header and the lines after it; comma when it cannot tell
    (a file of one column)."""
    try:
        return csv.Sniffer().sniff(header + sample, delimiters=",\t;").delimiter
    except csv.Error:
        return ","


_SAMPLE_LINES = 20


DECIMAL_COMMA_COLUMNS = frozenset({"billed_minutes", "billed_charge", "Charge"})
"""The layouts' columns that hold numbers with decimals: in a semicolon-separated file they are written with
a decimal comma (0,36), which is read as 0.36."""


# Longest first: UTF-32's little-endian mark begins with UTF-16's.
_BYTE_ORDER_MARKS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                     (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_NOT_TEXT = "save it as UTF-8 (in Excel: CSV UTF-8)"


def _unreadable(name: str, error: OSError) -> InvalidRecordsError:
    return InvalidRecordsError([Problem(name, None, None, None, f"cannot read the file: {error.strerror}")])


def text_encoding(path: Path) -> str:
    """UTF-16 or UTF-32 when the file starts with its byte order mark (Excel's "Unicode Text" is UTF-16),
    else UTF-8, with or without its mark."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as error:
        raise _unreadable(str(path), error) from error
    return next((encoding for mark, encoding in _BYTE_ORDER_MARKS if head.startswith(mark)), "utf-8-sig")


def check_text(path: Path) -> None:
    """Refuse a file that is not text in its encoding (a Latin-1 or Windows-1252 export, say), naming the line
    of the first bad byte, before any row is read; decoding 100 MB takes about a tenth of a second."""
    encoding = text_encoding(path)
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                try:
                    line += decoder.decode(chunk).count("\n")
                except UnicodeDecodeError as error:
                    # error.object: the bytes decoded, with any left from the chunk before. In UTF-8 a 0x0a
                    # byte is always a line break; in UTF-16 and UTF-32 the line is the chunk's first.
                    before = error.object[:error.start]
                    line += before.count(b"\n") if encoding == "utf-8-sig" else 0
                    raise InvalidRecordsError([Problem(str(path), line, None, None,
                                                       f"not {encoding.removesuffix('-sig').upper()} text (byte "
                                                       f"0x{error.object[error.start]:02x}): {_NOT_TEXT}")]) \
                        from None
            decoder.decode(b"", final=True)
    except OSError as error:
        raise _unreadable(str(path), error) from error
    except UnicodeDecodeError:
        raise InvalidRecordsError([Problem(str(path), line, None, None, f"the file ends inside a character: "
                                           f"{_NOT_TEXT}")]) from None


def read_table(path: Path) -> tuple[list[str] | None, Generator[tuple[int, Row], None, None]]:
    """The header of a CSV file (None for JSON) and its rows with the line each starts on (JSON arrays count
    records from 1 instead of lines). CSV rows stay lists: a large re-rating reads them by column index.
    Text that does not decode (check_text finds it up front) stops the rows with an InvalidRecordsError."""
    name = str(path)
    try:
        handle = path.open(encoding=text_encoding(path), newline="")
    except OSError as error:
        raise _unreadable(name, error) from error
    try:
        first = handle.readline()
    except UnicodeDecodeError:
        handle.close()
        raise _not_text(name, 1) from None
    stripped = first.lstrip()
    suffix = path.suffix.lower()
    # JSON Lines by its name even when its first record is not an object (null, a number: a row to reject,
    # not a CSV header); otherwise by its first character.
    if suffix in JSON_LINES_SUFFIXES or stripped.startswith(("[", "{")):
        handle.seek(0)
        return None, _json_rows(name, handle, array=suffix not in JSON_LINES_SUFFIXES and stripped.startswith("["))
    position = handle.tell()
    try:
        sample = "".join(handle.readline() for _ in range(_SAMPLE_LINES))
    except UnicodeDecodeError:
        sample = ""  # the rows will say where the text stops decoding
    handle.seek(position)
    delimiter = sniff_delimiter(first, sample)
    header = next(csv.reader([first], delimiter=delimiter), [])
    columns = [column.strip() for column in header]
    rows = _csv_rows(name, handle, delimiter, columns)
    if delimiter == ";":
        rows = _with_decimal_points(rows, [index for index, column in enumerate(columns)
                                           if column in DECIMAL_COMMA_COLUMNS])
    return columns, rows


def _with_decimal_points(rows: Generator[tuple[int, Row], None, None],
                         indexes: list[int]) -> Generator[tuple[int, Row], None, None]:
    with contextlib.closing(rows):
        for line, values in rows:
            if type(values) is list:
                for index in indexes:
                    if index < len(values):
                        values[index] = values[index].replace(",", ".")
            yield line, values


def _not_text(name: str, line: int) -> InvalidRecordsError:
    return InvalidRecordsError([Problem(name, line, None, None, "not text in its encoding (UTF-8, unless it "
                                        f"starts with a UTF-16 or UTF-32 byte order mark): {_NOT_TEXT}")])


def _csv_rows(name: str, handle: Any, delimiter: str, columns: list[str]) -> Generator[tuple[int, Row], None, None]:
    """Rows with the line each starts on (the header is line 1). A record the csv module refuses (a field over
    its size limit), or one that runs over several lines, is a row that could not be read (its values by
    column beside the error, so that its call id is known): no field of a call record or a tenant fact holds
    a line break, and a quote left open would take in every line after it as one field, and those rows with
    it, silently where it opens in the last column."""
    with handle:
        reader = csv.reader(handle, delimiter=delimiter)
        ended = 0  # the reader's lines so far: the file's line ended + 1
        while True:
            try:
                for values in reader:
                    if reader.line_num == ended + 1:
                        ended += 1
                        if values:
                            yield ended + 1, values
                        continue
                    yield ended + 2, {**dict(zip(columns, values, strict=False)),
                                      "__error__": f"the record runs from line {ended + 2} to line "
                                      f"{reader.line_num + 1}: a field holds a line break, or a quote left open "
                                      "takes in the lines after it"}
                    ended = reader.line_num
                return
            except csv.Error as error:
                yield ended + 2, {"__error__": f"the csv module refuses it: {error}"}
                ended = reader.line_num
            except UnicodeDecodeError:
                raise _not_text(name, ended + 2) from None


def _json_rows(name: str, handle: Any, array: bool) -> Generator[tuple[int, Row], None, None]:
    with handle:
        if array:
            try:
                records = json.load(handle)
            except UnicodeDecodeError:
                raise _not_text(name, 1) from None
            except json.JSONDecodeError as error:
                raise InvalidRecordsError([Problem(name, error.lineno, None, None,
                                                   f"not valid JSON: {error.msg}")]) from None
            yield from enumerate(records, start=1)
            return
        number = 0
        try:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    yield number, json.loads(text)
                except json.JSONDecodeError as error:
                    yield number, {"__error__": f"not valid JSON: {error.msg}"}
        except UnicodeDecodeError:
            raise _not_text(name, number + 1) from None


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows as dicts with the line they start on (a short CSV row's missing columns are None)."""
    columns, rows = read_table(path)
    for line, row in rows:
        if isinstance(row, dict) or columns is None:
            yield line, row  # type: ignore[misc]
        else:
            yield line, {column: (row[index] if index < len(row) else None) for index, column in enumerate(columns)}
