"""The time edge: every instant entering policyhistory becomes a UTC pendulum DateTime here, or is refused."""

from __future__ import annotations

import datetime as dt
import re

import pendulum

from ._errors import InstantParseError, InstantRangeError, NaiveDatetimeError, PolicyHistoryError

Instant = pendulum.DateTime

UTC = pendulum.UTC


def _utc(value: dt.datetime) -> Instant:
    """An aware datetime as a UTC pendulum instant, built field by field (pendulum.instance is 10x slower)."""
    if value.utcoffset():
        value = value.astimezone(dt.UTC)
    return pendulum.DateTime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                             value.microsecond, tzinfo=UTC)


EARLIEST = pendulum.DateTime(1900, 1, 1, tzinfo=UTC)
LATEST = pendulum.DateTime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
"""The supported range of instants, in UTC: 1900-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z. Outside
it an instant is refused (InstantRangeError): near year 1 and year 9999 an offset or a day's arithmetic
overflows the standard library's datetime, and no telephone call or billing policy lies there."""


def to_instant(value: object, field: str = "instant") -> Instant:
    """Read an aware datetime, an ISO 8601 string with offset, or a date (midnight UTC) as a UTC instant.

    A naive datetime, or a string with a time but no offset, is refused: we cannot guess its zone. So is an
    instant outside 1900-01-01 to 9999-12-31 UTC (InstantRangeError), and anything that is not an instant.
    """
    if type(value) is pendulum.DateTime and value.tzinfo is UTC:
        if value.year < 1900:
            raise InstantRangeError(field, value)
        return value
    try:
        instant = _read(value, field)
    except OverflowError:  # an offset that moves the instant past year 1 or 9999
        raise InstantRangeError(field, value) from None
    except PolicyHistoryError:
        raise
    except (ValueError, TypeError, AttributeError, RecursionError):
        raise InstantParseError(field, value) from None
    if instant.year < 1900:
        raise InstantRangeError(field, value)
    return instant


def _read(value: object, field: str) -> Instant:
    if isinstance(value, str) and len(value) > 10:
        # Fast path for the common ISO 8601 forms; pendulum.parse below reads every other form.
        try:
            parsed_fast = dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed_fast.tzinfo is None:
                raise NaiveDatetimeError(field, value)
            return _utc(parsed_fast)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise NaiveDatetimeError(field, value)
        # By the datetime's own offset, as Python (and format_instant) read it: pendulum.instance would read a
        # wall time a zone skips (02:00 in Paris on a spring-forward night) at the later offset, an hour off.
        return _utc(value)
    if isinstance(value, dt.date):
        return pendulum.datetime(value.year, value.month, value.day, tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = pendulum.parse(text, tz=None, exact=True)
        except (ValueError, TypeError) as error:
            raise InstantParseError(field, value, _no_such_instant(text)) from error
        if isinstance(parsed, dt.datetime):
            if parsed.tzinfo is None:
                raise NaiveDatetimeError(field, value)
            return pendulum.instance(parsed).in_timezone(UTC)
        if isinstance(parsed, dt.date):
            return pendulum.datetime(parsed.year, parsed.month, parsed.day, tz=UTC)
        raise InstantParseError(field, value)
    raise InstantParseError(field, value)


_ISO_SHAPE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?")


def _no_such_instant(text: str) -> str | None:
    """Why text of ISO 8601's shape names no instant (pendulum only says it cannot parse it): the calendar's
    reason for 2018-02-30 ("day is out of range for month"), 2022-13-01 or a 25th hour."""
    shape = _ISO_SHAPE.match(text)
    if shape is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(part or 0) for part in shape.groups())
        dt.datetime(year, month, day, hour, minute, second)
    except ValueError as error:
        return str(error)
    return None


def format_instant(value: dt.datetime) -> str:
    """ISO 8601 in UTC with a Z, the one form instants take in SQLite, JSON and the CLI."""
    tzinfo = value.tzinfo
    if tzinfo is UTC or tzinfo is dt.UTC:
        # Every instant of ours: the date and the time of day as they are, without asking the zone for an
        # offset or building a naive copy (both slow on pendulum's DateTime; a record formats three).
        return f"{dt.date.isoformat(value)}T{dt.time.isoformat(dt.datetime.time(value))}Z"
    if value.utcoffset():
        value = value.astimezone(dt.UTC)
    return dt.datetime.isoformat(value.replace(tzinfo=None)) + "Z"


def month_of(value: Instant) -> str:
    """The UTC calendar month of an instant, as YYYY-MM: the period minute pools reset on."""
    return f"{value.year:04d}-{value.month:02d}"


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def from_micros(value: int) -> Instant:
    """The UTC instant `value` microseconds after the epoch (the inverse of the timeline's micros)."""
    return _utc(_EPOCH + dt.timedelta(microseconds=value))
