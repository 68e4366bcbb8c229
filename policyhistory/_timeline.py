"""Bitemporal resolution: which versions are in force at `as_of`, as known at `known_at`.

Rule (the only one): for each key, among the versions recorded at or before `known_at` whose valid interval
[valid_from, valid_to) holds `as_of`, the one recorded last answers; if it is a retraction (in_force false),
the key is not in force. A later-recorded version thus overrides earlier beliefs over the valid time it
covers, from its recording on, and the earlier belief still answers for any `known_at` before that.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping

import attrs
import pendulum

from ._errors import UnknownPolicyKeyError
from ._policy import PolicyVersion

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def micros(instant: dt.datetime) -> int:
    """An aware instant as integer microseconds since the epoch: exact, and cheap to bisect.

    Field arithmetic rather than subtraction: pendulum's subtraction builds an Interval, 20x slower.
    """
    zone = instant.tzinfo
    offset = None if zone is pendulum.UTC or zone is dt.UTC else instant.utcoffset()  # ours are in UTC: no need
    seconds = (instant.toordinal() - _EPOCH_ORDINAL) * 86_400 + instant.hour * 3600 + instant.minute * 60 \
        + instant.second
    if offset:
        seconds -= int(offset.total_seconds())
    return seconds * 1_000_000 + instant.microsecond


@attrs.frozen(eq=True, hash=True)
class PolicySet:
    """The immutable set of policy versions in force at one instant as known at one instant, one per key."""

    versions: tuple[PolicyVersion, ...] = attrs.field(eq=False, hash=False)
    first_recorded: Mapping[str, pendulum.DateTime] = attrs.field(factory=dict, eq=False, hash=False, repr=False)
    """When each key of the timeline this set came from was first recorded (the same for every set of one
    timeline), so that a rule refused for a key nobody knew of yet can say when it became known."""
    ids: tuple[str, ...] = attrs.field(init=False, eq=True)
    _by_key: Mapping[str, PolicyVersion] = attrs.field(init=False, eq=False, hash=False, repr=False)

    def __attrs_post_init__(self) -> None:
        ordered = tuple(sorted(self.versions, key=lambda version: version.key))
        object.__setattr__(self, "versions", ordered)
        object.__setattr__(self, "ids", tuple(version.id for version in ordered))
        object.__setattr__(self, "_by_key", {version.key: version for version in ordered})

    def get(self, key: str) -> PolicyVersion | None:
        return self._by_key.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __iter__(self) -> Iterator[PolicyVersion]:
        return iter(self.versions)

    def __len__(self) -> int:
        return len(self.versions)

    def keys(self) -> tuple[str, ...]:
        return tuple(self._by_key)

    def of_kind(self, kind: str) -> tuple[PolicyVersion, ...]:
        return tuple(version for version in self.versions if version.kind == kind)


def resolve_by_scan(versions: Iterable[PolicyVersion], as_of: pendulum.DateTime,
                    known_at: pendulum.DateTime) -> PolicySet:
    """The rule applied directly over every version; the timeline must always agree with it."""
    winners: dict[str, PolicyVersion] = {}
    for version in versions:
        if version.recorded_at > known_at or not version.covers(as_of):
            continue
        current = winners.get(version.key)
        if current is None or (version.recorded_at, version.id) > (current.recorded_at, current.id):
            winners[version.key] = version
    return PolicySet(tuple(version for version in winners.values() if version.in_force))


class _Epoch:
    """What was known during one stretch of knowledge time: valid-time change points and a set per segment."""

    def __init__(self, versions: tuple[PolicyVersion, ...], intern: dict[tuple[str, ...], PolicySet],
                 first_recorded: Mapping[str, pendulum.DateTime]) -> None:
        self._versions = versions
        self._intern = intern
        self._first_recorded = first_recorded
        points = {micros(v.valid_from) for v in versions} | {micros(v.valid_to) for v in versions if v.valid_to}
        self.points = sorted(points)
        self._segments: list[PolicySet | None] = [None] * (len(self.points) + 1)

    def at(self, as_of_us: int) -> PolicySet:
        index = bisect.bisect_right(self.points, as_of_us)
        found = self._segments[index]
        if found is None:
            found = self._resolve_segment(index)
            self._segments[index] = found
        return found

    def _resolve_segment(self, index: int) -> PolicySet:
        if index == 0:
            return self._interned(PolicySet((), self._first_recorded))
        start = self.points[index - 1]
        winners: dict[str, PolicyVersion] = {}
        for version in self._versions:  # ordered by (recorded_at, id): the last one standing wins
            if micros(version.valid_from) <= start and (version.valid_to is None or start < micros(version.valid_to)):
                winners[version.key] = version
        return self._interned(PolicySet(tuple(v for v in winners.values() if v.in_force), self._first_recorded))

    def _interned(self, policy_set: PolicySet) -> PolicySet:
        return self._intern.setdefault(policy_set.ids, policy_set)


class Timeline:
    """An in-memory index of every version: a lookup is two binary searches, never a query.

    Knowledge time is cut at each distinct recorded_at; within each cut, valid time is cut at every
    valid_from and valid_to. Each resulting cell resolves once, and equal sets are one object.
    """

    def __init__(self, versions: Iterable[PolicyVersion]) -> None:
        self.versions = tuple(sorted(versions, key=lambda v: (v.recorded_at, v.id)))
        self._recorded_us = [micros(v.recorded_at) for v in self.versions]
        self._recorded_points = sorted(set(self._recorded_us))
        self._epochs: dict[int, _Epoch] = {}
        self._intern: dict[tuple[str, ...], PolicySet] = {}
        self.first_recorded: dict[str, pendulum.DateTime] = {}
        for version in self.versions:  # in recording order: the first seen of a key is its first record
            self.first_recorded.setdefault(version.key, version.recorded_at)

    def policy_set(self, as_of: pendulum.DateTime, known_at: pendulum.DateTime) -> PolicySet:
        return self.policy_set_us(micros(as_of), micros(known_at))

    def policy_set_us(self, as_of_us: int, known_at_us: int) -> PolicySet:
        return self.as_known_at(known_at_us)(as_of_us)

    def as_known_at(self, known_at_us: int) -> Callable[[int], PolicySet]:
        """The policy set in force at a valid instant (integer microseconds), as known at `known_at_us`:
        one binary search a call, for a run that rates many calls with one knowledge date."""
        return self._epoch(known_at_us).at

    def change_points(self, known_at_us: int) -> list[int]:
        """The valid instants (microseconds) at which the policy set changes, as known at `known_at_us`."""
        return list(self._epoch(known_at_us).points)

    def known_versions(self, known_at_us: int) -> tuple[PolicyVersion, ...]:
        """Every version recorded at or before `known_at_us`, in the order they were recorded."""
        return self.versions[:bisect.bisect_right(self._recorded_us, known_at_us)]

    def _epoch(self, known_at_us: int) -> _Epoch:
        epoch_index = bisect.bisect_right(self._recorded_points, known_at_us)
        epoch = self._epochs.get(epoch_index)
        if epoch is None:
            epoch = self._epochs[epoch_index] = _Epoch(self.known_versions(known_at_us), self._intern,
                                                            self.first_recorded)
        return epoch

    def keys(self, known_at_us: int | None = None) -> tuple[str, ...]:
        """The policy keys, of every version or of those known at `known_at_us`."""
        versions = self.versions if known_at_us is None else self.known_versions(known_at_us)
        return tuple(sorted({version.key for version in versions}))


@attrs.frozen
class PolicyChange:
    """One key that differs between two policy sets: it appears, ends, or changes version (and params).

    For a comparison of two knowledge dates over all valid time, `valid_from`/`valid_to` say where.
    """

    key: str
    change: str
    before: PolicyVersion | None
    after: PolicyVersion | None
    valid_from: pendulum.DateTime | None = None
    valid_to: pendulum.DateTime | None = None


def diff_policy_sets(first: PolicySet, second: PolicySet) -> tuple[PolicyChange, ...]:
    changes = []
    for key in sorted(set(first.keys()) | set(second.keys())):
        before, after = first.get(key), second.get(key)
        if before is None:
            changes.append(PolicyChange(key, "appears", None, after))
        elif after is None:
            changes.append(PolicyChange(key, "ends", before, None))
        elif before.id != after.id:
            kind = "changes" if before.params != after.params else "restated"
            changes.append(PolicyChange(key, kind, before, after))
    return tuple(changes)


def diff_beliefs(timeline: Timeline, first: pendulum.DateTime, second: pendulum.DateTime) -> tuple[PolicyChange, ...]:
    """Every stretch of valid time over which what was believed at `first` differs from `second`."""
    points = sorted({micros(v.valid_from) for v in timeline.versions}
                    | {micros(v.valid_to) for v in timeline.versions if v.valid_to})
    instants = {micros(v.valid_from): v.valid_from for v in timeline.versions}
    instants.update({micros(v.valid_to): v.valid_to for v in timeline.versions if v.valid_to})
    first_us, second_us = micros(first), micros(second)
    open_changes: dict[str, PolicyChange] = {}
    changes: list[PolicyChange] = []
    for index, point in enumerate(points):
        end = instants[points[index + 1]] if index + 1 < len(points) else None
        found = {c.key: c for c in diff_policy_sets(timeline.policy_set_us(point, first_us),
                                                    timeline.policy_set_us(point, second_us))}
        for key in sorted(set(found) | set(open_changes)):
            current, running = found.get(key), open_changes.get(key)
            if running is not None and current is not None and (running.before, running.after, running.change) == (
                    current.before, current.after, current.change):
                open_changes[key] = attrs.evolve(running, valid_to=end)
                continue
            if running is not None:
                changes.append(running)
                del open_changes[key]
            if current is not None:
                open_changes[key] = attrs.evolve(current, valid_from=instants[point], valid_to=end)
    changes.extend(open_changes.values())
    return tuple(sorted(changes, key=lambda c: (c.key, c.valid_from or instants[points[0]])))


@attrs.frozen
class Override:
    """A later-recorded version that replaced (part of) an earlier belief, over `valid_from..valid_to`."""

    by: str
    from_recorded_at: pendulum.DateTime
    valid_from: pendulum.DateTime
    valid_to: pendulum.DateTime | None


@attrs.frozen
class HistoryEntry:
    """One version of a key with every later-recorded version that overrides it."""

    version: PolicyVersion
    overridden_by: tuple[Override, ...]


def key_history(timeline: Timeline, key: str) -> tuple[HistoryEntry, ...]:
    """Every version of `key`, oldest belief first, each with the later versions that override it."""
    versions = [version for version in timeline.versions if version.key == key]
    if not versions:
        raise UnknownPolicyKeyError(key, timeline.keys())
    entries = []
    for version in versions:
        overrides = []
        for later in versions:
            if later.recorded_at <= version.recorded_at:
                continue
            start = max(version.valid_from, later.valid_from)
            ends = [end for end in (version.valid_to, later.valid_to) if end is not None]
            end = min(ends) if ends else None
            if end is None or start < end:
                overrides.append(Override(later.id, later.recorded_at, start, end))
        entries.append(HistoryEntry(version, tuple(overrides)))
    return tuple(entries)
