"""Rating one tenant shard of a re-rating: the function every executor runs (in-process, a process pool, a
Dask worker), on a shard's Parquet files, with the same rules and the same pool ledger as `store.rate`.

A shard holds whole tenants (pools never cross tenants), so shards are independent. Its rows are sorted by
(tenant, start, call id, row number) and settled in that order, a chunk of rows at a time, so that Python
objects stay bounded by the chunk; each chunk's records are written, sorted by row number, to a run file the
client merges back into input order.
"""

from __future__ import annotations

import bisect
import gc
import math
import pickle
from typing import Any

import attrs
import polars as pl

from ._calls import Destination
from ._errors import PolicyHistoryError
from ._exempt import EXEMPT_OUTCOMES
from ._ledger import PoolLedger, PoolMonth
from ._merge import RunFile, RunWriter
from ._money import Audit
from ._records import _text, billed_change, change_kind, encode, rejected_record, settled_text
from ._rules import PlanCache, RatingPlan, Refusal
from ._scratch_url import open_file, read_parquet
from ._tenants import TenantIndex, TenantSnapshot
from ._timeline import PolicySet, Timeline

SHARD_SCHEMA: dict[str, Any] = {
    "seq": pl.Int64, "file": pl.Int32, "line": pl.Int64, "call_id": pl.String, "usage_id": pl.String,
    "key": pl.String, "tenant_id": pl.String, "start_us": pl.Int64, "start": pl.String, "duration": pl.Int64,
    "call_type": pl.String, "location": pl.String, "licenses": pl.String, "carrier": pl.String,
    "destination": pl.String, "capability": pl.String, "infer": pl.Boolean, "billed": pl.Boolean,
    "billed_outcome": pl.String, "billed_minutes": pl.Int64, "billed_charge": pl.Float64,
    "billed_currency": pl.String, "billed_capability": pl.String, "billed_has_capability": pl.Boolean,
    "user_id": pl.String,
}
"""One input row, read and checked by the client: what a shard needs to rate it. `key`: the call's identity
(its UsageId where the layout has one, else its call id); `billed_*`: what the input says was billed (a usage
layout's bill also names the Capability that carried the call); `user_id`: the calling user (or meeting
organizer), which keys a plan counted per user."""
CHUNK_ROWS = 20_000
"""Rows of a shard made into Python objects at once (the rest stay in the shard's columnar frame)."""
RUN_BATCH = 100
"""Records per batch of a run file: the merge holds one batch of every run (a 1,000,000-call file makes about
60 runs, a 5,000,000-call file about 300), so a batch of 10,000 records of 600 bytes held 360 MB, and of 500
records of 800 bytes 120 MB at 5,000,000 calls."""
TENANT_WIDE = ("audio_conferencing", "audio_conferencing_ppm", "communications_credits")


@attrs.frozen
class RunContext:
    """What every shard of a run shares: the policies and tenant facts as the store holds them, the run's
    instants, and its file names. Sent once to each worker."""

    timeline: Timeline
    tenants: TenantIndex
    known_at_us: int
    known_text: str
    as_of_us: int | None
    as_of_text: str
    paths: tuple[str, ...]
    audit: Audit | None = None
    """The run's audit, empty (Audit.fresh): each shard gives its records their audit fields as it rates them,
    and returns its tallies (ShardResult.audit) for the run to add up. None: records without them."""


@attrs.frozen
class ShardJob:
    """One shard: its row files, the classification of the numbers its rows dial, where its runs go."""

    index: int
    parts: tuple[str, ...]
    numbers: str
    """A Parquet file of the run's dialed numbers: number, country, number_type, or the error of a number that
    cannot be classified (each shard takes its own rows' numbers)."""
    out: str
    chunk_rows: int = CHUNK_ROWS


@attrs.define
class ShardResult:
    """What a shard did: its run files (each sorted by row number) and its part of the summary."""

    runs: list[RunFile] = attrs.Factory(list)
    rejected: int = 0
    changed: int = 0
    minutes: dict[str, int] = attrs.Factory(dict)
    changes: dict[str, int] = attrs.Factory(dict)
    exempt: dict[str, int] = attrs.Factory(dict)
    pools: dict[tuple[str, str, str, str], PoolMonth] = attrs.Factory(dict)
    worker: str = ""
    audit: Audit | None = None
    """The shard's records' money and rejections, when the run's context holds an audit (see tallies)."""
    tallies: str = ""
    """Where rate_shard left the shard's pools and audit (pickled): one per tenant-month each, they wait in a
    file while the other shards are rated; read_tallies() puts them back."""

    def read_tallies(self) -> None:
        if self.tallies:
            with open_file(self.tallies, "rb") as handle:  # written by rate_shard in the run's own scratch folder
                self.pools, self.audit = pickle.load(handle)
            self.tallies = ""


CHANGED = 1
REJECTED = 2
"""The flags of a run file's entries (seq, line, flags): the record is changed, rejected."""


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


class _Rater:
    """A shard's rating state: plans by kind of call, the pool ledger, the summary part."""

    def __init__(self, context: RunContext) -> None:
        self.context = context
        self.policies_at = context.timeline.as_known_at(context.known_at_us)
        self.policy_points = context.timeline.change_points(context.known_at_us)
        self.policies: PolicySet = None  # type: ignore[assignment]  # set by the first row (from = until)
        self.policies_from = self.policies_until = 0
        shared = _SHARED.get(id(context))
        if shared is None or shared[0] is not context:
            # The shards of one run in one process share what depends only on the run: plans above all.
            _SHARED.clear()
            shared = _SHARED[id(context)] = (context, PlanCache(), {}, {}, {}, {}, {})
        _, self.plans, self.memo, self.inferred, self.destinations, self.licenses, self.known_plans = shared
        self.ledger = PoolLedger()
        self.audit = None if context.audit is None else context.audit.fresh()
        self.result = ShardResult(audit=self.audit)
        self.file_texts = [f'{{"file": {_text(path)}' for path in context.paths]
        self.tenant_texts: dict[str, str] = {}
        self.tenant_points: dict[str, list[int]] = {}
        self.last_snapshot: tuple[str, int, int, Any] = ("", 0, 0, None)

    def destination(self, found: tuple[str, str]) -> Destination:
        """The one Destination of a (country, number type) in this process."""
        dest = self.destinations.get(found)
        if dest is None:
            dest = self.destinations[found] = Destination(*found)
        return dest

    def rate(self, row: tuple[Any, ...], numbers: dict[str, Destination | str]) -> tuple[int, str, int]:
        """(row number, the record's JSON line, flags CHANGED and REJECTED) of one row."""
        (seq, file, line, call_id, usage_id, key, tenant_id, start_us, start, duration, call_type, location, licenses,
         carrier, destination, capability, infer, has_billed, billed_outcome, billed_minutes, billed_charge,
         billed_currency, billed_capability, has_capability, user_id) = row
        context = self.context
        try:
            # The rows come by tenant and start: the snapshot of the row before holds until the tenant's next
            # change of facts or licenses (the segments TenantIndex.snapshot_us keeps one snapshot for).
            last = self.last_snapshot
            if last[0] == tenant_id and last[1] <= start_us < last[2]:
                tenant = last[3]
            else:
                tenant = context.tenants.snapshot_us(tenant_id, start_us)
                points = self.tenant_points.get(tenant_id)
                if points is None:
                    points = self.tenant_points[tenant_id] = context.tenants.change_points(tenant_id)
                segment = bisect.bisect_right(points, start_us)
                self.last_snapshot = (tenant_id, points[segment - 1] if segment else -1 << 63,
                                      points[segment] if segment < len(points) else 1 << 63, tenant)
            dest = numbers[destination]
            if isinstance(dest, str):
                raise _Rejected(dest)
            # Likewise the policy set: the same until the next instant the catalog changes (as known at known_at).
            at_us = start_us if context.as_of_us is None else context.as_of_us
            if self.policies_from <= at_us < self.policies_until:
                policies = self.policies
            else:
                policies = self.policies = self.policies_at(at_us)
                segment = bisect.bisect_right(self.policy_points, at_us)
                self.policies_from = self.policy_points[segment - 1] if segment else -1 << 63
                self.policies_until = self.policy_points[segment] if segment < len(self.policy_points) else 1 << 63
            given = self.licenses.get(licenses)
            if given is None:
                given = self.licenses[licenses] = tuple(licenses.split("\n")) if licenses else ()
            if infer:
                inferred_key = (id(tenant), location, given, capability)
                given = self.inferred.get(inferred_key)  # type: ignore[assignment]
                if given is None:
                    given = self.inferred[inferred_key] = infer_licenses(tenant, location,
                                                                         self.licenses[licenses], capability)
            # The objects of the key (policy set, destination, licenses) live as long as the run's context (the
            # timeline's, this process's caches above): their ids name them. The tenant's facts a plan reads:
            # its country and whether Communications Credits are set up (as in _plan and PlanCache).
            facts = tenant.tenant
            known = (id(policies), facts.country, facts.communications_credits, call_type, id(dest), id(given),
                     location, carrier)
            plan = self.known_plans.get(known)
            if plan is None:
                plan = self.known_plans[known] = self._plan(policies, tenant, call_type, dest, given, location,
                                                            carrier)
            settled = self.ledger.settle(plan, tenant_id, start[:7], duration, tenant, user_id)
            if isinstance(settled, Refusal):
                as_of = start if context.as_of_us is None else context.as_of_text
                raise _Rejected(str(settled.error_at(as_of, context.known_text)))
            self.ledger.apply(tenant_id, settled, key)
        except (PolicyHistoryError, _Rejected) as error:
            self.result.rejected += 1
            head = {"file": context.paths[file], "line": line, "call_id": call_id}
            if usage_id is not None:
                head["usage_id"] = usage_id
            head["tenant_id"] = tenant_id
            record = rejected_record(head, error)
            text = encode(record)
            if self.audit is not None:
                text = text[:-1] + self.audit.rejected_suffix(seq, record)
            return seq, text, REJECTED
        tenant_text = self.tenant_texts.get(tenant_id)
        if tenant_text is None:
            tenant_text = self.tenant_texts[tenant_id] = _text(tenant_id)
        head_text = (f'{self.file_texts[file]}, "line": {line}, "call_id": {_text(call_id)}, '
                     f'"usage_id": {_text(usage_id)}, "tenant_id": {tenant_text}, "start": {_text(start)}'
                     if usage_id is not None else
                     f'{self.file_texts[file]}, "line": {line}, "call_id": {_text(call_id)}, '
                     f'"tenant_id": {tenant_text}, "start": {_text(start)}')
        billed = billed_text = None
        change = ""
        if has_billed:
            billed = {"outcome": billed_outcome, "minutes": billed_minutes, "charge": billed_charge,
                      "currency": billed_currency}
            if has_capability:
                billed["capability"] = billed_capability
            billed_text = _billed_text(billed)
            change = billed_change(billed, settled.outcome, settled.pool_minutes, settled.credit_minutes,
                                   settled.uncovered_minutes)
        outcome = settled.outcome
        minutes = self.result.minutes
        minutes[outcome] = minutes.get(outcome, 0) + settled.billable_minutes
        if outcome in EXEMPT_OUTCOMES:
            self.result.exempt[outcome] = self.result.exempt.get(outcome, 0) + 1
        if change:
            self._changed(billed, outcome)  # type: ignore[arg-type]
        # The plan's destination: the exempt rule gives an emergency call its user's usage location (rate_call too).
        country, number_type = plan.destination.country, plan.destination.number_type
        flags = CHANGED if change else 0
        if self.audit is None:
            return seq, settled_text(head_text, call_type, country, number_type, settled, billed_text, change) + "}", \
                flags
        suffix, warning = self.audit.rated_suffix(seq, tenant_id, start, start_us, context.paths[file], line, call_id,
                                                  settled.outcome, country, number_type, settled.billable_minutes,
                                                  settled.credit_minutes, billed, change)
        text = settled_text(head_text, call_type, country, number_type, settled, billed_text, change,
                            None if warning is None else (*settled.warnings, warning))
        return seq, text + suffix, flags

    def _plan(self, policies: PolicySet, tenant: TenantSnapshot, call_type: str, dest: Destination,
              licenses: tuple[str, ...], location: str | None, carrier: str | None) -> RatingPlan:
        facts = tenant.tenant
        key = (id(policies), facts.country, facts.communications_credits, call_type, dest.country, dest.number_type,
               licenses, location, carrier)
        plan = self.memo.get(key)
        if plan is None:
            plan = self.memo[key] = self.plans.plan(policies, facts, call_type, dest, licenses, location, carrier)
        return plan

    def _changed(self, billed: dict[str, Any], outcome: str) -> None:
        self.result.changed += 1
        kind = change_kind(billed, outcome)
        self.result.changes[kind] = self.result.changes.get(kind, 0) + 1


_Shared = tuple[RunContext, PlanCache, dict[tuple[object, ...], RatingPlan], dict[tuple[object, ...], tuple[str, ...]],
                dict[tuple[str, str], Destination], dict[str, tuple[str, ...]], dict[tuple[object, ...], RatingPlan]]
"""A run's context; its plans by kind of call; the licenses inferred for the Teams export by tenant snapshot;
destinations by (country, number type); a row's licenses as stored (SKUs joined by line breaks) -> the tuple;
plans by the identities of what decides them (policy set, tenant facts, destination, licenses) and the call
type, usage location and carrier."""
_SHARED: dict[int, _Shared] = {}


def _value_text(value: object) -> str:
    """A billed value (text, whole number, float, None) as the record's encoder writes it."""
    kind = type(value)
    if kind is str:
        return _text(value)  # type: ignore[arg-type]
    if value is None:
        return "null"
    if kind is int or (kind is float and math.isfinite(value)):  # type: ignore[arg-type]
        return repr(value)
    return encode(value)  # type: ignore[arg-type]


def _billed_text(billed: dict[str, Any]) -> str:
    return "{" + ", ".join(f'"{name}": {_value_text(value)}' for name, value in billed.items()) + "}"


class _Rejected(Exception):
    """A row refused with a message already made (a number that cannot be classified, a refusal)."""


def rate_shard(job: ShardJob, context: RunContext) -> ShardResult:
    """Rate one shard: its rows in (tenant, start, call id) order, chunk by chunk; records to run files."""
    # A shard makes a few short-lived containers per row and no cycles: while it is rated, young objects
    # are collected less often (each collection also walked the run's plans and caches); restored after.
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], 100_000), *threshold[1:])
    try:
        return _rate_shard(job, context)
    finally:
        gc.set_threshold(*threshold)


def _rate_shard(job: ShardJob, context: RunContext) -> ShardResult:
    rater = _Rater(context)
    frame = read_parquet(job.parts) if job.parts else pl.DataFrame(schema=SHARD_SCHEMA)
    frame = frame.sort(["tenant_id", "start_us", "key", "seq"])
    dialed = frame.select(pl.col("destination").unique().alias("number")).join(
        read_parquet([job.numbers]), on="number", how="left")
    numbers: dict[str, Destination | str] = {
        number: error if error is not None else rater.destination((country, number_type))
        for number, country, number_type, error in dialed.iter_rows()}
    for chunk_index, offset in enumerate(range(0, frame.height, job.chunk_rows)):
        rate = rater.rate
        out = [rate(row, numbers) for row in frame.slice(offset, job.chunk_rows).iter_rows()]
        out.sort()
        path = f"{job.out}-{chunk_index}.marshal"
        with open_file(path, "wb") as handle:
            writer = RunWriter(handle, path, RUN_BATCH)
            writer.write(out)
        rater.result.runs.append(writer.run())
    del frame
    pools = {(key.tenant_id, key.pool, key.month, key.counter): month for key, month in rater.ledger.months.items()}
    # The shard's pool-months and money (one entry per tenant-month each) wait in a file, not in memory, while
    # the other shards are rated: the run reads each back once they are all done (ShardResult.read_tallies).
    path = f"{job.out}-tallies.pickle"
    with open_file(path, "wb") as handle:
        pickle.dump((pools, rater.audit), handle, protocol=pickle.HIGHEST_PROTOCOL)
    rater.result.pools, rater.result.audit, rater.result.tallies = {}, None, path
    return rater.result
