"""Reading tabular input (CSV with comma or tab, JSON array, JSON Lines) as (line, row) pairs."""

from __future__ import annotations

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


def sniff_delimiter(header: str) -> str:
    """Tab when the header has more tabs than commas (the Skype for Business export), else comma."""
    return "\t" if header.count("\t") > header.count(",") else ","


def read_table(path: Path) -> tuple[list[str] | None, Generator[tuple[int, Row], None, None]]:
    """The header of a CSV file (None for JSON) and its rows with the line each starts on (JSON arrays count
    records from 1 instead of lines). CSV rows stay lists: a large re-rating reads them by column index."""
    name = str(path)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as error:
        raise InvalidRecordsError([Problem(name, None, None, None, f"cannot read the file: {error.strerror}")]) \
            from error
    first = handle.readline()
    stripped = first.lstrip()
    suffix = path.suffix.lower()
    # JSON Lines by its name even when its first record is not an object (null, a number: a row to reject,
    # not a CSV header); otherwise by its first character.
    if suffix in JSON_LINES_SUFFIXES or stripped.startswith(("[", "{")):
        handle.seek(0)
        return None, _json_rows(name, handle, array=suffix not in JSON_LINES_SUFFIXES and stripped.startswith("["))
    delimiter = sniff_delimiter(first)
    header = next(csv.reader([first], delimiter=delimiter), [])
    columns = [column.strip() for column in header]
    return columns, _csv_rows(handle, delimiter, columns)


def _csv_rows(handle: Any, delimiter: str, columns: list[str]) -> Generator[tuple[int, Row], None, None]:
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


def _json_rows(name: str, handle: Any, array: bool) -> Generator[tuple[int, Row], None, None]:
    with handle:
        if array:
            try:
                records = json.load(handle)
            except json.JSONDecodeError as error:
                raise InvalidRecordsError([Problem(name, error.lineno, None, None,
                                                   f"not valid JSON: {error.msg}")]) from None
            yield from enumerate(records, start=1)
            return
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                yield number, json.loads(text)
            except json.JSONDecodeError as error:
                yield number, {"__error__": f"not valid JSON: {error.msg}"}


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows as dicts with the line they start on (a short CSV row's missing columns are None)."""
    columns, rows = read_table(path)
    for line, row in rows:
        if isinstance(row, dict) or columns is None:
            yield line, row  # type: ignore[misc]
        else:
            yield line, {column: (row[index] if index < len(row) else None) for index, column in enumerate(columns)}
