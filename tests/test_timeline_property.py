"""The timeline's two binary searches must agree with the rule applied by a plain scan, on any history."""

from __future__ import annotations

import pendulum
from hypothesis import given, settings
from hypothesis import strategies as st

from policyhistory import PolicyVersion, Source, Timeline, resolve_by_scan
from policyhistory._policy import MinuteRoundingParams

BASE = pendulum.datetime(2020, 1, 1, tz="UTC")
SOURCE = Source(document="d", section="s", quote="q")


@st.composite
def histories(draw):
    count = draw(st.integers(min_value=0, max_value=14))
    versions = []
    for index in range(count):
        start = draw(st.integers(0, 20))
        length = draw(st.one_of(st.none(), st.integers(1, 10)))
        versions.append(PolicyVersion(
            id=f"v{index}",
            key=draw(st.sampled_from(["a", "b", "c"])),
            kind="minute_rounding",
            valid_from=BASE.add(days=start),
            valid_to=None if length is None else BASE.add(days=start + length),
            recorded_at=BASE.add(days=draw(st.integers(0, 20))),
            params=MinuteRoundingParams(unit_seconds=draw(st.sampled_from([1, 60]))),
            source=SOURCE,
            in_force=draw(st.booleans()),
        ))
    return versions


@settings(max_examples=300)
@given(histories(), st.lists(st.tuples(st.integers(-2, 34), st.integers(-2, 24)), min_size=1, max_size=20))
def test_timeline_equals_scan(versions, probes):
    timeline = Timeline(versions)
    for as_of_day, known_day in probes:
        as_of, known_at = BASE.add(days=as_of_day), BASE.add(days=known_day)
        assert resolve_by_scan(versions, as_of, known_at).ids == timeline.policy_set(as_of, known_at).ids
