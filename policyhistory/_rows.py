"""Reading tabular input (CSV with comma or tab, JSON array, JSON Lines) as (line, row) pairs."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._errors import InvalidRecordsError, Problem


def sniff_delimiter(header: str) -> str:
    """Tab when the header has more tabs than commas (the Skype for Business export), else comma."""
    return "\t" if header.count("\t") > header.count(",") else ","


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows with the line they start on; JSON arrays count records from 1 instead of lines."""
    name = str(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            first = handle.readline()
            handle.seek(0)
            stripped = first.lstrip()
            if stripped.startswith("["):
                try:
                    records = json.load(handle)
                except json.JSONDecodeError as error:
                    problem = Problem(name, error.lineno, None, None, f"not valid JSON: {error.msg}")
                    raise InvalidRecordsError([problem]) from None
                yield from enumerate(records, start=1)
            elif stripped.startswith("{"):
                for number, text in enumerate(handle, start=1):
                    if not text.strip():
                        continue
                    try:
                        yield number, json.loads(text)
                    except json.JSONDecodeError as error:
                        yield number, {"__error__": f"not valid JSON: {error.msg}"}
            else:
                reader = csv.DictReader(handle, delimiter=sniff_delimiter(first))
                for row in reader:
                    yield reader.line_num, {key.strip(): value for key, value in row.items() if key is not None}
    except OSError as error:
        problem = Problem(name, None, None, None, f"cannot read the file: {error.strerror}")
        raise InvalidRecordsError([problem]) from error
