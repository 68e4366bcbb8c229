"""format_instant and micros: the one text and the one integer of an instant, whatever zone object it carries."""

from __future__ import annotations

import datetime as dt

import pendulum
from hypothesis import given
from hypothesis import strategies as st

from policyhistory import format_instant, to_instant


def reference(value: dt.datetime) -> str:
    """The definition: the instant in UTC, ISO 8601 without an offset, then Z."""
    return dt.datetime.isoformat(value.astimezone(dt.UTC).replace(tzinfo=None)) + "Z"


@given(st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(9999, 12, 30)),
       st.sampled_from([dt.UTC, pendulum.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)),
                        pendulum.timezone("Europe/Paris")]))
def test_format_instant_is_the_utc_text_of_any_aware_instant(naive: dt.datetime, zone: dt.tzinfo) -> None:
    value = naive.replace(tzinfo=zone)
    assert reference(value) == format_instant(value)
    assert reference(value) == format_instant(to_instant(value))  # our instants: pendulum, in UTC


def test_format_instant_examples() -> None:
    assert "2018-09-15T09:00:00Z" == format_instant(to_instant("2018-09-15T11:00:00+02:00"))
    assert "2018-09-15T09:00:00.000250Z" == format_instant(to_instant("2018-09-15T09:00:00.00025Z"))


@given(st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(9999, 12, 30)),
       st.sampled_from([dt.UTC, pendulum.UTC, dt.timezone(dt.timedelta(hours=-3, minutes=-30)),
                        pendulum.timezone("Europe/Paris")]))
def test_micros_counts_from_the_epoch_in_any_zone(naive: dt.datetime, zone: dt.tzinfo) -> None:
    from policyhistory._timeline import micros

    value = naive.replace(tzinfo=zone)
    assert (value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) == micros(value)
    assert micros(value) == micros(to_instant(value))


def test_a_wall_time_its_zone_skips_is_read_at_the_datetimes_own_offset() -> None:
    """Found by the property above in a fresh clone's CI: 02:00 on a spring-forward night in Paris, as a
    datetime with pendulum's zone, has the offset +01:00 in Python, which pendulum.instance read at +02:00
    (an hour off, 00:00Z). The instant is the datetime's own: 01:00Z, as format_instant writes it."""
    for naive in (dt.datetime(2526, 3, 31, 2, 0), dt.datetime(2020, 3, 29, 2, 30)):
        value = naive.replace(tzinfo=pendulum.timezone("Europe/Paris"))
        assert reference(value) == format_instant(to_instant(value)) == format_instant(value)
    assert "2020-03-29T01:30:00Z" == format_instant(to_instant(dt.datetime(2020, 3, 29, 2, 30).replace(
        tzinfo=pendulum.timezone("Europe/Paris"))))
