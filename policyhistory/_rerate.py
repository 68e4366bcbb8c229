"""Bulk re-rating: every input row comes out, rated or rejected with its reason, in input order.

Three passes, with memory bounded whatever the input's size:
1. read: each row is read, checked and planned (a RatingPlan is shared by every call of its kind, so the rules
   run once per kind, not once per call), a chunk of rows at a time: the chunk's new dialed numbers are
   classified together between its checks and its plans. What the output needs is written in batches to a
   scratch file; a compact sort key (tenant, start, call id, row number) is kept per rated row, sorted, and
   spilled to sorted runs past `sort_chunk` keys.
2. draw: the keys, merged in (tenant, start, call id) order, carry one tenant's pools at a time through its
   calls: pools see calls in start order whatever the input order. Each call's pool use before it (or that it
   is a duplicate) is written at its row number in a scratch array.
3. write: the scratch file is read back in input order, and each row's record is written from its plan, its
   minutes and its pool use, with the same arithmetic (`RatingPlan.settle`) as in pass 2.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import json
import marshal
import mmap
import struct
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import IO, Any

import attrs
import pendulum

from ._calls import Call, Destination, _duration, _optional_country, _skus, call_type, classify_destination
from ._errors import DuplicateCallError, InvalidFieldError, PolicyHistoryError, UnreadableRowError
from ._instant import format_instant, to_instant
from ._layouts import CallRow, LayoutReader, detect_layout, layout_reader
from ._rows import check_text, read_table
from ._rules import COMMUNICATIONS_CREDITS, RatingPlan, Refusal, alert_text
from ._scratch import scratch_folder
from ._store import Store
from ._tenants import TenantIndex, TenantSnapshot
from ._timeline import PolicySet, micros

_ENCODE = json.JSONEncoder(check_circular=False).encode  # records are flat values we build: no cycles
Progress = Callable[[str, int, int | None], None]
"""Told (stage, rows done, rows in all or None while reading) every 10,000 rows."""
TENANT_WIDE = ("audio_conferencing", "audio_conferencing_ppm", "communications_credits")
OUTPUT_COLUMNS = ("file", "line", "call_id", "tenant_id", "start", "call_type", "outcome", "billable_minutes",
                  "pool_minutes", "credit_minutes", "uncovered_minutes", "destination_country", "number_type", "pool",
                  "pool_capacity", "pool_used_before", "pool_used_after", "policy_versions", "alerts", "warnings",
                  "billed_outcome", "billed_minutes", "billed_charge", "billed_currency", "changed", "change", "error")
SORT_CHUNK = 1_000_000
"""Sort keys held in memory before a sorted run is spilled (about 80 bytes each)."""
_BATCH = 10_000
_CHUNK = 4096
"""Rows read and checked before their new numbers are classified together (see _Run._classify)."""
_NUMBERS_CACHED = 500_000
"""Dialed numbers a run remembers the classification of (about 50 MB; classifying a number costs about 12 us,
phonenumbers' region and number type most of it). Past it the memory starts again empty, so that a file of millions of
distinct numbers does not hold them all."""
_classify_number = classify_destination.__wrapped__
"""Without its cache: a run keeps its own memory of numbers, and a file of distinct numbers would only churn it
(about 1 us a number)."""
_TAIL = struct.Struct(">IiiI")  # row number, billable minutes, draw (-1: no pool), month index
_POOL, _EXHAUSTED, _DUPLICATE, _REFUSED = 1, 2, 4, 8
_START_OFFSET = 1 << 62  # instants before 1970 are negative microseconds
_FLAGS = 16  # a row's draw result is (pool use before) * _FLAGS + flags


def infer_licenses(snapshot: TenantSnapshot, usage_location: str | None, given: tuple[str, ...],
                   capability: str | None) -> tuple[str, ...]:
    """The Teams export names only the license that carried the call (Capability), not the user's licenses.

    Our reading: a user holds the tenant-wide kinds of license (Audio Conferencing, Communications Credits)
    the tenant has assigned in the user's usage location at the call's start; per-user add-ons (the US/CA
    dial-out minutes, a Calling Plan) only when the Capability names them, since a call placed under one
    would have been carried by it. A pay-per-minute Capability means no subscription.
    """
    skus = {fact.sku for fact in snapshot.licenses
            if fact.assigned > 0 and fact.sku in TENANT_WIDE
            and (usage_location is None or fact.usage_location == usage_location)}
    skus |= set(given)
    if capability == "MCOMEETACPEA":
        skus.discard("audio_conferencing")
    return tuple(sorted(skus))


def with_licenses(row: CallRow, call: Call, tenants: TenantIndex) -> Call:
    """The call with the licenses its layout implies (inferred for the Teams export, see infer_licenses)."""
    if not row.infer_licenses:
        return call
    snapshot = tenants.snapshot(call.tenant_id, call.start)
    return attrs.evolve(call, licenses=infer_licenses(snapshot, call.usage_location, call.licenses, row.capability))


@attrs.frozen
class InputRow:
    """One row of an input file: read into a call (with what was billed), or the error that stopped it."""

    file: str
    line: int
    row: CallRow | None
    call: Call | None
    error: PolicyHistoryError | None
    raw_call_id: object = None

    @property
    def call_id(self) -> object:
        return self.call.call_id if self.call is not None else self.raw_call_id


@attrs.define
class PoolMonth:
    capacity: int = 0
    used: int = 0
    alerts: list[str] = attrs.Factory(list)


@attrs.define
class RerateSummary:
    """What a run did: rows in, rated, rejected, changed; minutes per outcome; changed calls by kind; pools per
    tenant and month."""

    known_at: pendulum.DateTime | None = None
    as_of: pendulum.DateTime | None = None
    rows: int = 0
    rated: int = 0
    rejected: int = 0
    changed: int = 0
    minutes: dict[str, int] = attrs.Factory(dict)
    pools: dict[tuple[str, str, str, str], PoolMonth] = attrs.Factory(dict)
    changes: dict[str, int] = attrs.Factory(dict)
    """Changed calls counted by what was billed and what is now, most frequent first: "billed
    communications_credits -> now dial_out_pool" (see change_kind)."""

    def lines(self) -> list[str]:
        lines = [f"rows {self.rows}: rated {self.rated}, rejected {self.rejected}, changed {self.changed}"]
        if self.known_at is not None:
            rules = f"the rules of {format_instant(self.as_of)}" if self.as_of else "the rules of each call's start"
            lines.append(f"rated under {rules}, as known at {format_instant(self.known_at)}")
        lines += [f"  {outcome}: {minutes} min" for outcome, minutes in sorted(self.minutes.items())]
        if self.changes:
            lines.append("changed calls (what was billed -> what is now: calls):")
            lines += [f"  {kind}: {calls}" for kind, calls in self.changes.items()]
        if self.pools:
            lines.append("pools (tenant, pool, month, counter: used / capacity, alerts):")
        for (tenant, pool, month, counter), use in sorted(self.pools.items()):
            alerts = ", alerts: " + ", ".join(a.split(" of pool")[0] + " (" + a.rsplit("(", 1)[1] for a in use.alerts) \
                if use.alerts else ""
            lines.append(f"  {tenant} {pool} {month} {counter}: {use.used} / {use.capacity}{alerts}")
        return lines


def invoice_date(start: pendulum.DateTime) -> pendulum.DateTime:
    """The usual billing date of a call: the first day (UTC) of the calendar month after it."""
    return start.start_of("month").add(months=1)


def billed_text(billed: dict[str, Any]) -> str:
    parts = [billed["outcome"]] if billed["outcome"] else []
    if billed.get("minutes") is not None:
        parts.append(f"{billed['minutes']} credit min")
    if billed.get("charge") is not None:
        parts.append(f"charge {billed['charge']:g} {billed.get('currency') or ''}".rstrip())
    return ", ".join(parts)


def rating_text(outcome: str, pool_minutes: int, credit_minutes: int, uncovered_minutes: int) -> str:
    return (f"{outcome}, {pool_minutes} pool min, {credit_minutes} credit min"
            + (f", {uncovered_minutes} uncovered" if uncovered_minutes else ""))


def billed_change(billed: dict[str, Any], outcome: str, pool_minutes: int, credit_minutes: int,
                  uncovered_minutes: int) -> str:
    """'' when the rating agrees with what was billed (outcome, credit minutes, whether anything was
    charged, as far as the input says), else a line saying what was billed and what is now."""
    charge = billed.get("charge")
    changed = ((billed["outcome"] is not None and billed["outcome"] != outcome)
               or (billed["minutes"] is not None and billed["minutes"] != credit_minutes)
               or (charge is not None and (charge > 0) != (credit_minutes > 0)))
    if not changed:
        return ""
    return f"billed {billed_text(billed)}; now {rating_text(outcome, pool_minutes, credit_minutes, uncovered_minutes)}"


def change_kind(billed: dict[str, Any], outcome: str) -> str:
    """A changed call's kind, for counting: the billed outcome, or where the input gives none (the Teams
    export) whether anything was charged or drawn on credits; then our outcome, and whether only the minutes
    or the charge differ."""
    was = billed["outcome"]
    if not was:
        charged = (billed.get("charge") or 0) > 0 or (billed.get("minutes") or 0) > 0
        was = "charged" if charged else "nothing charged"
    return f"billed {was} -> now {outcome}" + (", other minutes or charge" if was == outcome else "")


def _json(value: object) -> str:
    return encode_basestring_ascii(value) if type(value) is str else _ENCODE(value)


@attrs.frozen
class _PlanOutput:
    """The parts of a record every call of one plan shares, encoded once."""

    plan: RatingPlan
    call_type: str
    destination: str
    """'"destination_country": ..., "number_type": ...' """
    tail: str
    """'"policy_versions": ..., "alerts": [], "warnings": ...' for a call without alerts or credits drawn."""
    unpooled: tuple[str, str, str | None]
    """The record from "call_type" to its end for a call without a pool, cut where its minutes go."""
    minute_unit: int
    """Seconds per billable minute when the plan rounds each call up, else 0 (ask the plan)."""

    @classmethod
    def of(cls, plan: RatingPlan, call_type: str) -> _PlanOutput:
        dest = plan.destination
        destination = f'"destination_country": {_json(dest.country)}, "number_type": {_json(dest.number_type)}'
        tail = _versions_tail(list(plan.versions), [], plan.warnings)
        head = f'"call_type": {_json(call_type)}, "outcome": {_json(plan.outcome)}, "billable_minutes": '
        rest = (f', {destination}, "pool": null, "pool_capacity": null, "pool_used_before": null, '
                '"pool_used_after": null, ' + tail)
        unpooled: tuple[str, str, str | None] = {
            "none": (head, ', "pool_minutes": 0, "credit_minutes": 0, "uncovered_minutes": 0' + rest, None),
            "credit": (head, ', "pool_minutes": 0, "credit_minutes": ', ', "uncovered_minutes": 0' + rest),
            "uncovered": (head, ', "pool_minutes": 0, "credit_minutes": 0, "uncovered_minutes": ', rest),
        }[plan.bucket]
        unit = plan.rounding.unit_seconds if plan.rounding and plan.rounding.mode == "up" else 0
        return cls(plan, _json(call_type), destination, tail, unpooled, unit)

    def unpooled_record(self, minutes: int) -> str:
        head, middle, rest = self.unpooled
        return f"{head}{minutes}{middle}" if rest is None else f"{head}{minutes}{middle}{minutes}{rest}"


def _versions_tail(versions: list[str], alerts: list[str], warnings: Iterable[str]) -> str:
    return f'"policy_versions": {_ENCODE(versions)}, "alerts": {_ENCODE(alerts)}, "warnings": {_ENCODE(list(warnings))}'


class Rerate:
    """One re-rating run over call files, with the store's policies as known at `known_at`."""

    def __init__(self, store: Store, paths: Iterable[str | Path], *, known_at: object, as_of: object = None,
                 default_tenant: str | None = None, workdir: str | Path | None = None,
                 sort_chunk: int = SORT_CHUNK) -> None:
        """`known_at` is required (a run says what it knew; store.now() for now); it and `as_of` take what
        store.rate takes: an aware datetime, an ISO 8601 text with offset, or a date."""
        self.store = store
        self.paths = [Path(path) for path in paths]
        self.known_at = to_instant(known_at, "known_at")
        self.as_of = None if as_of is None else to_instant(as_of, "as_of")
        self.default_tenant = default_tenant
        self.workdir = workdir
        self.sort_chunk = sort_chunk
        self._file_tenants: dict[Path, str] = {}
        self._checked: dict[Path, tuple[int, int]] = {}
        """Files whose text was checked: (size, modification time) then."""
        self.summary = RerateSummary(known_at=self.known_at, as_of=self.as_of)

    def records(self, progress: Progress | None = None) -> Iterator[dict[str, Any]]:
        """Output records in input order; the summary is complete once they are all read."""
        for text in self.records_json(progress):
            yield json.loads(text)

    def check(self) -> None:
        """Refuse unusable files before any row is read: text that does not decode, a Teams export without
        a tenant to belong to. A file checked before and unchanged since is not read again."""
        for path in self.paths:
            try:
                stat = path.stat()
            except OSError:
                stat = None
            if stat is None or self._checked.get(path) != (stat.st_size, stat.st_mtime_ns):
                check_text(path)
                if stat is not None:
                    self._checked[path] = (stat.st_size, stat.st_mtime_ns)
            columns, rows = read_table(path)
            first = columns if columns is not None else next((row for _, row in rows), None)
            rows.close()
            if isinstance(first, (list, dict)) and "__error__" not in first:
                try:
                    teams = detect_layout(first) == "teams"
                except InvalidFieldError:
                    continue  # every row will be rejected with this error, in the output
                if teams:
                    self._tenant_for(path)

    def records_json(self, progress: Progress | None = None) -> Iterator[str]:
        """Output records in input order, as JSON text (one line each)."""
        self.check()
        self.summary = RerateSummary(known_at=self.known_at, as_of=self.as_of)
        with scratch_folder(self.workdir) as scratch:
            run = _Run(self, Path(scratch), progress)
            yield from run.records()

    def rows(self, *, tenant_id: str | None = None, call_id: str | None = None) -> Iterator[InputRow]:
        """Every input row, read by its file's layout: a Call with what was billed, or the reason it is not.

        With `tenant_id` or `call_id`, only the rows whose fields say so, and no row that cannot be read: the
        others are skipped before their Call is built (most of reading a row), so that one tenant's calls
        are found in a large file in a fraction of the time and memory."""
        for path in self.paths:
            columns, rows = read_table(path)
            reader: LayoutReader | None = None
            for line, raw in rows:
                try:
                    reader, values, tenant = self._reader(path, columns, raw, reader)
                    row = reader.call_row(values, tenant)
                    if (tenant_id is not None and row.fields["tenant_id"] != tenant_id) or \
                            (call_id is not None and row.fields["call_id"] != call_id):
                        continue
                    yield InputRow(str(path), line, row, Call(**row.fields), None)
                except PolicyHistoryError as error:
                    if tenant_id is None and call_id is None:
                        yield InputRow(str(path), line, None, None, error, _raw_call_id(raw, reader))

    def _reader(self, path: Path, columns: list[str] | None, raw: list[Any] | dict[str, Any],
                reader: LayoutReader | None) -> tuple[LayoutReader, list[Any], str | None]:
        if isinstance(raw, dict) and "__error__" in raw:
            raise UnreadableRowError(raw["__error__"])
        if columns is None and type(raw) is not dict:
            raise InvalidFieldError("row", raw, "a JSON object of the layout's fields")
        if reader is None:
            reader = layout_reader(columns if columns is not None else raw)
        tenant = None
        if reader.needs_tenant:
            tenant = self._file_tenants.get(path)
            if tenant is None:
                tenant = self._file_tenants[path] = self._tenant_for(path)
        return reader, reader.values(raw), tenant

    def _tenant_for(self, path: Path) -> str:
        if self.default_tenant:
            return self.default_tenant
        tenants = self.store.tenant_index.tenant_ids()
        if len(tenants) == 1:
            return tenants[0]
        raise InvalidFieldError("tenant", None, f"--tenant: {path} (Teams layout) has no tenant column and the "
                                f"store knows {len(tenants)} tenants")


def _raw_call_id(raw: object, reader: LayoutReader | None) -> object:
    if isinstance(raw, dict):
        return raw.get("call_id") or raw.get("Call ID")
    if reader is not None and isinstance(raw, list) and reader.call_id_index < len(raw):
        return raw[reader.call_id_index] or None
    return None


def _rejected(path_json: str, line: int, call_id: object, error: Exception, tenant_id: object = None,
              rating: bool = False) -> str:
    tenant = f', "tenant_id": {_json(tenant_id)}' if rating else ""
    return (f'{{"file": {path_json}, "line": {line}, "call_id": {_json(call_id)}{tenant}, "outcome": "rejected", '
            f'"error": {_json(str(error))}}}')


@attrs.frozen
class _Kind:
    """What a run checked once for every call with the same call type, usage location and licenses given."""

    index: int
    call_type: str
    location: str | None
    licenses: tuple[str, ...]


@attrs.frozen
class _Segment:
    """A stretch of one tenant's time with one tenant snapshot and one policy set (`profile` numbers the
    set with the tenant's country and credits set-up: what a plan reads of the tenant)."""

    index: int
    snapshot: TenantSnapshot
    policies: PolicySet
    profile: int


class _Run:
    """The scratch files and caches of one re-rating run."""

    def __init__(self, rerate: Rerate, scratch: Path, progress: Progress | None) -> None:
        self.rerate = rerate
        self.scratch = scratch
        self.progress = progress
        self.summary = rerate.summary
        store = rerate.store
        rater = store.rater(rerate.as_of, rerate.known_at)
        known_us = micros(rerate.known_at)
        self.tenants = store.tenant_index
        self.plans = rater.plans
        self.policies_at = rater.timeline.as_known_at(known_us)
        self.as_of_us = None if rerate.as_of is None else micros(rerate.as_of)
        self.as_of_text = "" if rerate.as_of is None else format_instant(rerate.as_of)
        self.known_text = format_instant(rerate.known_at)
        self.plan_ids: dict[tuple[object, ...], int] = {}
        self.outputs: list[_PlanOutput] = []
        self.draw_ids: dict[tuple[int, int], int] = {}
        self.capacities: dict[tuple[object, ...], tuple[int, int, int]] = {}
        self.draws: list[tuple[RatingPlan, str, str, str | None, int, int]] = []
        self.inferred: dict[tuple[object, ...], tuple[str, ...]] = {}
        self.destinations: dict[str, int] = {}
        """Dialed number -> the index of its (country, number type) in destination_kinds."""
        self.destination_ids: dict[tuple[str, str], int] = {}
        self.destination_kinds: list[Destination] = []
        self.kinds: dict[tuple[object, ...], _Kind] = {}
        self.policy_points = rater.timeline.change_points(known_us)
        self.tenant_segments: dict[str, tuple[list[int], list[_Segment | None]]] = {}
        """A tenant's segment starts (sorted), and its segments as met (one more than starts: before the first)."""
        self.segment_count = 0
        self.profiles: dict[tuple[object, ...], int] = {}
        self.runs: list[Path] = []
        self.rows = 0

    def records(self) -> Iterator[str]:
        spill = self.scratch / "rows.marshal"
        with spill.open("wb") as out:
            keys = self._read(out)
        draws = self._draw(keys)
        try:
            with spill.open("rb") as rows:
                yield from self._write(rows, draws)
        finally:
            draws.release()

    # Pass 1 ---------------------------------------------------------------------------------------------

    def _read(self, out: IO[bytes]) -> list[bytes]:
        keys: list[bytes] = []
        batch: list[tuple[Any, ...]] = []
        rejected = 0
        seq = 0
        pack = _TAIL.pack
        chunk_size = self.rerate.sort_chunk
        kinds = self.kinds
        tenant_segments = self.tenant_segments
        destinations = self.destinations
        for file_index, path in enumerate(self.rerate.paths):
            path_json = _json(str(path))
            columns, rows = read_table(path)
            reader: LayoutReader | None = None
            tenant: str | None = None
            width = -1
            while True:
                # A chunk of rows is read and checked, then its new numbers are classified one after another,
                # then its rows are planned: see _classify.
                chunk: list[tuple[Any, ...]] = []
                new_numbers: dict[str, None] = {}
                for line, raw in islice(rows, _CHUNK):
                    try:
                        if reader is None or type(raw) is not list or len(raw) != width:
                            reader, values, tenant = self.rerate._reader(path, columns, raw, reader)
                            width = len(reader.columns) if columns is not None else -1  # JSON: each record checked
                        else:
                            raw.append(None)  # what reader.values does for a row as wide as its header
                            values = raw
                        call_id, tenant_id, start, duration, kind_given, destination, _, location_given, \
                            licenses_given, billed, capability, infer = reader.read(values, tenant)
                        if type(call_id) is not str or not call_id or "\0" in call_id:
                            call_id = _identifier(call_id, "call_id")
                        if type(tenant_id) is not str or not tenant_id or "\0" in tenant_id:
                            tenant_id = _identifier(tenant_id, "tenant_id")
                        start_us, start_text, month = _start(start)
                        duration = int(duration) if type(duration) is str and duration.isdecimal() \
                            and len(duration) < 7 else _duration(duration)
                        kind_key = (kind_given, location_given, licenses_given)
                        kind = kinds.get(kind_key) if type(licenses_given) is not list else None
                        if kind is None:
                            kind = self._kind(kind_given, location_given, licenses_given)
                    except PolicyHistoryError as error:
                        chunk.append((_rejected(path_json, line, _raw_call_id(raw, reader), error),))
                    else:
                        found = destinations.get(destination) if type(destination) is str else None
                        if found is None and type(destination) is str:
                            new_numbers[destination] = None
                        chunk.append((line, call_id, tenant_id, start_us, start_text, month, duration, kind,
                                      destination, found, capability, infer, billed))
                if not chunk:
                    break
                if new_numbers:
                    self._classify(sorted(new_numbers))
                for item in chunk:
                    if len(item) == 1:
                        rejected += 1
                        batch.append(item)
                    else:
                        line, call_id, tenant_id, start_us, start_text, month, duration, kind, destination, found, \
                            capability, infer, billed = item
                        try:
                            points_segments = tenant_segments.get(tenant_id)
                            if points_segments is None:
                                points_segments = self._segments_of(tenant_id)
                            index = bisect_right(points_segments[0], start_us)
                            segment = points_segments[1][index]
                            if segment is None:
                                segment = self._segment(tenant_id, start_us, index)
                            plan_id, minutes, draw_id = self._plan(segment, kind, destination, found, duration,
                                                                   capability, infer)
                        except PolicyHistoryError as error:
                            rejected += 1
                            batch.append((_rejected(path_json, line, call_id, error, tenant_id, rating=True),))
                            minutes = -2
                        if minutes == -1:  # refused: every call of its kind is (most often: no policy in force)
                            refusal = self.outputs[plan_id].plan.refusal
                            assert refusal is not None
                            as_of = start_text if self.rerate.as_of is None else self.as_of_text
                            rejected += 1
                            batch.append((_rejected(path_json, line, call_id,
                                                    refusal.error_at(as_of, self.known_text), tenant_id,
                                                    rating=True),))
                        elif minutes >= 0:
                            # Sorts as (tenant, start, call id, row): ids end at a NUL; the start is
                            # fixed-width hex.
                            keys.append(f"{tenant_id}\0{start_us + _START_OFFSET:016x}{call_id}\0".encode()
                                        + pack(seq, minutes, draw_id, month))
                            batch.append((file_index, line, call_id, tenant_id, start_text, plan_id, minutes,
                                          draw_id, billed))
                            if len(keys) >= chunk_size:
                                self._spill_run(keys)
                    seq += 1
                    if len(batch) >= _BATCH:
                        _dump(batch, out)
                        batch.clear()
                        if self.progress:
                            self.progress("reading", seq, None)
        _dump(batch, out)
        self.rows = self.summary.rows = seq
        self.summary.rejected += rejected
        keys.sort()
        return keys

    def _kind(self, kind_given: object, location_given: object, licenses_given: object) -> _Kind:
        """The call type, usage location and licenses of a call, checked once per distinct input."""
        kind = _Kind(len(self.kinds), call_type(str(kind_given) if kind_given is not None else ""),
                     _optional_country(location_given), _skus(licenses_given))
        if type(licenses_given) is not list:
            self.kinds[(kind_given, location_given, licenses_given)] = kind
        return kind

    def _segments_of(self, tenant_id: str) -> tuple[list[int], list[_Segment | None]]:
        """Where a tenant's segments begin: its own changes, and the policy set's unless --as-of fixes it; and
        room for its segments."""
        points = set(self.tenants.change_points(tenant_id))
        if self.as_of_us is None:
            points.update(self.policy_points)
        found = self.tenant_segments[tenant_id] = (sorted(points), [None] * (len(points) + 1))
        return found

    def _segment(self, tenant_id: str, start_us: int, index: int) -> _Segment:
        """A stretch of a tenant's time in which neither its facts nor the policy set change."""
        snapshot = self.tenants.snapshot_us(tenant_id, start_us)
        policies = self.policies_at(self.as_of_us or start_us)
        tenant = snapshot.tenant
        profile_key = (id(policies), tenant.country, tenant.communications_credits)
        profile = self.profiles.setdefault(profile_key, len(self.profiles))
        segment = self.tenant_segments[tenant_id][1][index] = _Segment(self.segment_count, snapshot, policies,
                                                                         profile)
        self.segment_count += 1
        return segment

    def _plan(self, segment: _Segment, kind: _Kind, destination: Any, found: int | None, duration: int,
              capability: str | None, infer: bool) -> tuple[int, int, int]:
        """(plan, billable minutes, draw) of one call, minutes -1 when its plan is a refusal; a draw is a pool
        plan with the tenant's capacity. `found`: the destination's index when the row was read, if known."""
        if found is None:
            found = self.destinations.get(destination) if type(destination) is str else None
            if found is None:
                found = self._destination(destination)
        licenses = kind.licenses
        if infer:
            inferred = (segment.index, kind.location, licenses, capability)
            licenses = self.inferred.get(inferred)  # type: ignore[assignment]
            if licenses is None:
                licenses = self.inferred[inferred] = infer_licenses(segment.snapshot, kind.location, kind.licenses,
                                                                    capability)
        key = (segment.profile, kind.index, found, licenses)
        plan_id = self.plan_ids.get(key)
        if plan_id is None:
            plan = self.plans.plan(segment.policies, segment.snapshot.tenant, kind.call_type,
                                   self.destination_kinds[found], licenses, kind.location)
            plan_id = self.plan_ids[key] = len(self.outputs)
            self.outputs.append(_PlanOutput.of(plan, kind.call_type))
        output = self.outputs[plan_id]
        if output.minute_unit:
            minutes = -(-duration // output.minute_unit)
        elif output.plan.refusal is not None:
            return plan_id, -1, -1
        else:
            minutes = output.plan.minutes(duration)
        if output.plan.pool is None:
            return plan_id, minutes, -1
        draw_key = (plan_id, segment.index)
        draw_id = self.draw_ids.get(draw_key)
        if draw_id is None:
            draw_id = self.draw_ids[draw_key] = self._new_draw(output.plan, segment.snapshot)
        return plan_id, minutes, draw_id

    def _destination(self, destination: object) -> int:
        """The index of a dialed number's (country, number type); a plan reads nothing else of it."""
        dest = _classify_number(destination if type(destination) is str else str(destination))
        found = self.destination_ids.setdefault((dest.country, dest.number_type), len(self.destination_ids))
        if found == len(self.destination_kinds):
            self.destination_kinds.append(dest)
        if type(destination) is str:
            if len(self.destinations) >= _NUMBERS_CACHED:
                self.destinations.clear()
            self.destinations[destination] = found
        return found

    def _classify(self, numbers: Iterable[str]) -> None:
        """Classify numbers no earlier row dialed (each absent from the run's memory, each once), one after
        another: phonenumbers' code and metadata then stay in the processor's caches, and a number costs about
        a fifth less than when classified between the rows' other work (measured on the benchmark's file of
        198,334 distinct numbers: 23.7 against 28.7 us, before the parse shortcut of _calls._parse).
        The caller sorts them, so that numbers of one country come together: 20 against 21.7 us (the same).
        A number that cannot be classified is left alone: its rows are rejected when they are planned."""
        for number in numbers:
            with contextlib.suppress(PolicyHistoryError):
                self._destination(number)

    def _new_draw(self, plan: RatingPlan, snapshot: TenantSnapshot) -> int:
        pool = plan.pool
        assert pool is not None
        capacity_key = (id(snapshot), pool.skus, pool.basis, pool.locations, pool.minutes_per_user,
                        pool.exhausted_after, pool.other_minutes_per_user)
        capacities = self.capacities.get(capacity_key)
        if capacities is None:
            capacities = self.capacities[capacity_key] = pool.capacity(snapshot)
        self.draws.append((plan, pool.pool, pool.counter, pool.exhausted_after, capacities[1], capacities[2]))
        return len(self.draws) - 1

    def _spill_run(self, keys: list[bytes]) -> None:
        keys.sort()
        path = self.scratch / f"run-{len(self.runs)}.marshal"
        with path.open("wb") as out:
            for start in range(0, len(keys), _BATCH):
                _dump(keys[start:start + _BATCH], out)
        self.runs.append(path)
        keys.clear()

    # Pass 2 ---------------------------------------------------------------------------------------------

    def _sorted_keys(self, keys: list[bytes]) -> Iterator[bytes]:
        if not self.runs:
            return iter(keys)
        return heapq.merge(keys, *(_marshalled(path) for path in self.runs))

    def _draw(self, keys: list[bytes]) -> _DrawResults:
        results = _DrawResults(self.scratch / "draws.bin", self.rows)
        view = results.view
        draws = self.draws
        prefix = b"\1"  # no tenant's key starts with it
        tenant = b""
        pools: dict[tuple[str, str, int], int] = {}
        capacities: dict[tuple[str, str, int], int] = {}
        alerts: list[tuple[tuple[str, str, int], int, int, int]] = []
        seen: set[bytes] = set()
        unpack = _TAIL.unpack_from
        for key in self._sorted_keys(keys):
            if not key.startswith(prefix):  # a tenant's pools never meet another's: drop the finished state
                self._pool_months(tenant, pools, capacities, alerts)
                end = key.index(0)
                prefix = key[:end + 1]
                tenant = key[:end]
                pools, capacities, alerts, seen = {}, {}, [], set()
            end = len(key) - _TAIL.size
            call = key[len(prefix) + 16:end - 1]
            seq, minutes, draw_id, month = unpack(key, end)
            if draw_id < 0:
                if call in seen:
                    view[seq] = _DUPLICATE
                else:
                    seen.add(call)
                continue
            plan, pool, counter, other, capacity, other_capacity = draws[draw_id]
            slot = (pool, counter, month)
            before = pools.get(slot, 0)
            exhausted = other is not None and 0 < other_capacity <= pools.get((pool, other, month), 0)
            settled = plan.settle(minutes, capacity, before, exhausted)
            if settled is None:
                view[seq] = _REFUSED
            elif call in seen:
                view[seq] = _DUPLICATE
            else:
                seen.add(call)
                pools[slot] = settled[4]
                capacities[slot] = capacity  # in start order: a month's capacity is the one at its last call
                view[seq] = before * _FLAGS + (_POOL | _EXHAUSTED if exhausted else _POOL)
                if settled[5]:
                    alerts.extend((slot, percent, settled[4], capacity) for percent in settled[5])
        self._pool_months(tenant, pools, capacities, alerts)
        keys.clear()
        return results

    def _pool_months(self, tenant_key: bytes, used: dict[tuple[str, str, int], int],
                     capacities: dict[tuple[str, str, int], int],
                     alerts: list[tuple[tuple[str, str, int], int, int, int]]) -> None:
        """Add one tenant's pool months to the summary: capacity, minutes used, alerts in the order raised."""
        tenant = tenant_key.decode()
        pools = self.summary.pools
        for (pool, counter, month), capacity in capacities.items():
            key = (tenant, pool, _month_text(month), counter)
            pools[key] = PoolMonth(capacity, used[(pool, counter, month)])  # a tenant's keys come together
        for (pool, counter, month), percent, after, capacity in alerts:
            month_text = _month_text(month)
            pools[(tenant, pool, month_text, counter)].alerts.append(alert_text(percent, pool, month_text, after,
                                                                               capacity))

    # Pass 3 ---------------------------------------------------------------------------------------------

    def _write(self, rows: IO[bytes], draws: _DrawResults) -> Iterator[str]:
        view = draws.view
        paths = [_json(str(path)) for path in self.rerate.paths]
        outputs = self.outputs
        summary = self.summary
        progress = self.progress
        quote = encode_basestring_ascii
        rejected = changed = 0
        unpooled_minutes = [0] * len(outputs)
        unpooled_calls = [0] * len(outputs)
        pooled_minutes: dict[str, int] = {}
        changes: dict[str, int] = {}
        seq = -1
        for batch in _batches(rows):
            for item in batch:
                seq += 1
                if len(item) == 1:
                    yield item[0]
                    continue
                file_index, line, call_id, tenant_id, start_text, plan_id, minutes, draw_id, billed = item
                result = view[seq]
                head = (f'{{"file": {paths[file_index]}, "line": {line}, "call_id": {quote(call_id)}, '
                        f'"tenant_id": {quote(tenant_id)}')
                if result & (_DUPLICATE | _REFUSED):
                    rejected += 1
                    yield self._refused(head, result, call_id, start_text)
                    continue
                output = outputs[plan_id]
                if draw_id < 0 and billed is None:
                    unpooled_minutes[plan_id] += minutes
                    unpooled_calls[plan_id] += 1
                    yield f'{head}, "start": {quote(start_text)}, {output.unpooled_record(minutes)}}}'
                    continue
                outcome, pool_minutes, credit_minutes, uncovered, record = self._rated(
                    output, minutes, draw_id, result, start_text)
                pooled_minutes[outcome] = pooled_minutes.get(outcome, 0) + minutes
                if billed is None:
                    yield f'{head}, "start": {quote(start_text)}, {record}}}'
                    continue
                change = billed_change(billed, outcome, pool_minutes, credit_minutes, uncovered)
                if change:
                    changed += 1
                    kind = change_kind(billed, outcome)
                    changes[kind] = changes.get(kind, 0) + 1
                yield (f'{head}, "start": {quote(start_text)}, {record}, "billed": {_ENCODE(billed)}, '
                       f'"changed": {"true" if change else "false"}, "change": {quote(change)}}}')
            if progress:
                progress("rating", seq + 1, self.rows)
        for output, minutes, calls in zip(outputs, unpooled_minutes, unpooled_calls, strict=True):
            if calls:
                pooled_minutes[output.plan.outcome] = pooled_minutes.get(output.plan.outcome, 0) + minutes
        summary.rejected += rejected
        summary.changed += changed
        summary.rated = summary.rows - summary.rejected
        summary.minutes = dict(sorted(pooled_minutes.items()))
        summary.changes = dict(sorted(changes.items(), key=lambda item: (-item[1], item[0])))

    def _rated(self, output: _PlanOutput, minutes: int, draw_id: int, result: int,
               start_text: str) -> tuple[str, int, int, int, str]:
        """(outcome, pool, credit and uncovered minutes, the record from "call_type" on) of a rated call."""
        plan = output.plan
        if draw_id < 0:
            pool_minutes, credit_minutes, uncovered = plan.unpooled_minutes(minutes)
            return plan.outcome, pool_minutes, credit_minutes, uncovered, output.unpooled_record(minutes)
        _, pool, _, _, capacity, _ = self.draws[draw_id]
        before = result // _FLAGS
        settled = plan.settle(minutes, capacity, before, bool(result & _EXHAUSTED))
        assert settled is not None
        outcome, pool_minutes, credit_minutes, uncovered, after, percents, consulted = settled
        tail = output.tail
        if percents or consulted:
            month = start_text[:7]
            alerts = [alert_text(percent, pool, month, after, capacity) for percent in percents]
            versions, warnings = plan.after_draw(bool(alerts), consulted, pool_minutes, uncovered)
            tail = _versions_tail(versions, alerts, warnings)
        record = (f'"call_type": {output.call_type}, "outcome": "{outcome}", "billable_minutes": {minutes}, '
                  f'"pool_minutes": {pool_minutes}, "credit_minutes": {credit_minutes}, "uncovered_minutes": '
                  f'{uncovered}, {output.destination}, "pool": {_json(pool)}, "pool_capacity": {capacity}, '
                  f'"pool_used_before": {before}, "pool_used_after": {after}, {tail}')
        return outcome, pool_minutes, credit_minutes, uncovered, record

    def _refused(self, head: str, result: int, call_id: str, start_text: str) -> str:
        if result & _DUPLICATE:
            error: PolicyHistoryError = DuplicateCallError(call_id)
        else:
            start = to_instant(start_text, "start")
            error = Refusal(policy_key=COMMUNICATIONS_CREDITS).error(self.rerate.as_of or start, self.rerate.known_at)
        return f'{head}, "outcome": "rejected", "error": {_json(str(error))}}}'


class _DrawResults:
    """A scratch array of one int64 per input row, in a file mapped into memory: pages the run no longer
    touches can leave memory, so a very large input does not need its size in RAM."""

    def __init__(self, path: Path, rows: int) -> None:
        self._file = path.open("w+b")
        self._file.truncate(max(rows, 1) * 8)
        self._map = mmap.mmap(self._file.fileno(), max(rows, 1) * 8)
        self.view = memoryview(self._map).cast("q")

    def release(self) -> None:
        self.view.release()
        self._map.close()
        self._file.close()


def _dump(batch: list[Any], out: IO[bytes]) -> None:
    """Append one batch to a scratch file: its length, then its marshal bytes (marshal.load on a file
    reads in small pieces, 15 times slower than marshal.loads on the whole batch)."""
    data = marshal.dumps(batch)
    out.write(len(data).to_bytes(8, "big"))
    out.write(data)


def _batches(source: IO[bytes]) -> Iterator[list[Any]]:
    while size := source.read(8):
        yield marshal.loads(source.read(int.from_bytes(size, "big")))


def _marshalled(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        for batch in _batches(source):
            yield from batch


def _month_text(month: int) -> str:
    """YYYY-MM of a month index (year * 12 + month - 1)."""
    return f"{month // 12:04d}-{month % 12 + 1:02d}"


def _identifier(value: object, field: str) -> str:
    text = value if type(value) is str else ("" if value is None else str(value))
    if not text or "\0" in text:
        raise InvalidFieldError(field, value, "a value (the field is required) without NUL characters")
    return text


def _start(value: object) -> tuple[int, str, int]:
    """A call's start as (integer microseconds, ISO text in UTC, year * 12 + month - 1)."""
    if type(value) is str and len(value) == 20 and value[19] == "Z" and value[10] == "T" and value[13] == ":" \
            and value[16] == ":":
        # The common form, read without building a pendulum instant: 2018-06-30T23:59:59Z. Only that form, whose
        # text is already ours: 2018-06-30T090345.1Z is as long, and must come out as 2018-06-30T09:03:45.100000Z.
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            # Whole seconds in UTC: the float timestamp is exact (below 2 ** 53), and twice as fast as micros().
            return int(parsed.timestamp()) * 1_000_000, value, parsed.year * 12 + parsed.month - 1
    instant = to_instant(value, "start")
    text = format_instant(instant)
    return micros(instant), text, instant.year * 12 + instant.month - 1

