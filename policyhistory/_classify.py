"""Dialed numbers classified once per run, and remembered in the store for the next run.

A run gathers its distinct numbers, reads the classifications the store already holds (table
`destination_classes`, keyed by the number and phonenumbers' version: a new release may classify a number
otherwise), classifies the rest with `destination_of` (phonenumbers' public API), spread over the run's
workers, and stores them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import phonenumbers

from ._calls import destination_of
from ._chains import writing
from ._errors import PolicyHistoryError
from ._store import Store

TABLE = "destination_classes"
Classified = tuple[str, str] | str
"""(country, number type), or the error text of a number that cannot be classified."""
_CHUNK = 20_000
_LOOKUP = 500
VERSION = str(getattr(phonenumbers, "__version__", "unknown"))


def classify_chunk(numbers: Sequence[str]) -> list[Classified]:
    found: list[Classified] = []
    for number in numbers:
        try:
            destination = destination_of(number)
        except PolicyHistoryError as error:
            found.append(str(error))
        else:
            found.append((destination.country, destination.number_type))
    return found


def _interned(kinds: dict[tuple[str, str], tuple[str, str]], country: str, number_type: str) -> tuple[str, str]:
    """One tuple per (country, number type): a run holds hundreds of thousands of numbers and a few hundred kinds."""
    key = (country, number_type)
    return kinds.setdefault(key, key)


Mapper = Callable[[Callable[[Sequence[str]], list[Classified]], Sequence[Sequence[str]]], list[list[Classified]]]


def classify_numbers(store: Store, numbers: Sequence[str], mapper: Mapper) -> dict[str, Classified]:
    """Every number's classification: from the store's memory, else classified now (by `mapper`, over
    chunks) and remembered."""
    db = store.db
    if not db[TABLE].exists():
        with writing(db.conn, store.path):  # another run may be creating it too
            db.table(TABLE).create({"number": str, "phonenumbers": str, "country": str, "number_type": str,
                                    "error": str}, pk=("number", "phonenumbers"), if_not_exists=True)
    found: dict[str, Classified] = {}
    kinds: dict[tuple[str, str], tuple[str, str]] = {}
    for start in range(0, len(numbers), _LOOKUP):
        batch = numbers[start:start + _LOOKUP]
        marks = ", ".join("?" for _ in batch)
        for number, country, number_type, error in db.execute(
                f"SELECT number, country, number_type, error FROM {TABLE} WHERE phonenumbers = ? AND number IN "
                f"({marks})", [VERSION, *batch]).fetchall():
            found[number] = error if error is not None else _interned(kinds, country, number_type)
    new = [number for number in numbers if number not in found]
    chunks = [new[start:start + _CHUNK] for start in range(0, len(new), _CHUNK)]
    for chunk, classes in zip(chunks, mapper(classify_chunk, chunks), strict=True):
        rows: list[tuple[object, ...]] = []
        for number, classified in zip(chunk, classes, strict=True):
            if isinstance(classified, str):
                found[number] = classified
                rows.append((number, VERSION, None, None, classified))
            else:
                found[number] = _interned(kinds, *classified)
                rows.append((number, VERSION, classified[0], classified[1], None))
        # One transaction a chunk: the store's connection commits each statement by itself otherwise (it has
        # no implicit transactions), which synced the database once a number (see benchmarks/README.md).
        with writing(db.conn, store.path):
            db.conn.executemany(f"INSERT OR REPLACE INTO {TABLE} (number, phonenumbers, country, number_type, error) "
                                "VALUES (?, ?, ?, ?, ?)", rows)
    return found
