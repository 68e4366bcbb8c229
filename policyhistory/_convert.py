"""Our own cattrs converter: pendulum instants and dates travel as ISO 8601 strings, both ways."""

from __future__ import annotations

import datetime as dt

import cattrs
import pendulum

from ._instant import format_instant, to_instant


def _structure_instant(value: object, _: type) -> pendulum.DateTime:
    return to_instant(value)


def _structure_date(value: object, _: type) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value)
    raise ValueError(f"expected a date (YYYY-MM-DD), got {value!r}")


def make_converter() -> cattrs.Converter:
    """A converter that refuses unknown keys, so that a misspelt field in a catalog file is an error."""
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(pendulum.DateTime, _structure_instant)
    converter.register_unstructure_hook(pendulum.DateTime, format_instant)
    converter.register_structure_hook(dt.date, _structure_date)
    converter.register_unstructure_hook(dt.date, lambda value: value.isoformat())
    return converter


converter = make_converter()
