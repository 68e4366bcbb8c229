"""Bulk re-rating: every input row comes out, rated or rejected with its reason, in input order.

The run, with memory bounded by the largest shard rather than the input:
1. read: each row is read and checked (call id, tenant, start, duration, call type, usage location, licenses);
   a row that fails gets its record with its error, in a run file of rejected rows. A good row goes to its
   tenant's shard: tenants are hashed to shards, and each shard's rows are written as Parquet parts in the
   run's scratch folder (in `workdir`). With worker processes, they read plain pieces of a CSV file of our
   layout too (see _reading, _read_pieces).
2. classify: each distinct dialed number is classified once per run, remembered in the store (keyed by the
   number and phonenumbers' version) so that the next run skips it; new numbers are spread over the workers.
3. rate: each shard is rated on its own (pools never cross tenants) by `_shards.rate_shard`: sorted by
   (tenant, start, call id), settled against the tenant's pools by the one pool ledger, chunk by chunk. In
   this process, in a process pool (`workers`), or on a Dask cluster (`dask`): see _executors.
4. merge: the shards' records, each run sorted by row number, are merged back into input order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pendulum
import polars as pl

from ._calls import Call
from ._classify import classify_numbers
from ._errors import InvalidFieldError, InvalidRecordsError, PolicyHistoryError, Problem, UnreadableRowError
from ._executors import PARALLEL_MIN_ROWS, Executor, _workers, make_executor
from ._instant import format_instant, to_instant
from ._layouts import CallRow, LayoutReader, UnknownLayoutError, detect_layout, layout_class, layout_reader
from ._ledger import PoolMonth
from ._merge import BLOCK_ROWS, MergeTask, OutputBlock, RunFile, RunWriter, Windows
from ._money import Audit
from ._reading import Progress, ShardReading, _raw_call_id
from ._records import RECORD_FIELDS
from ._records import billed_change as billed_change
from ._records import billed_text as billed_text
from ._records import change_kind as change_kind
from ._records import rating_text as rating_text
from ._rows import check_text, read_table
from ._scratch import scratch_folder
from ._scratch_url import check_processes, is_url, join, open_file, per_process, scan_parquet, write_parquet
from ._shards import (
    CHUNK_ROWS,
    RUN_BATCH,
    RunContext,
    ShardJob,
    ShardResult,
    infer_licenses,
)
from ._store import Store
from ._tenants import TenantIndex
from ._timeline import micros

OUTPUT_COLUMNS = RECORD_FIELDS
SORT_CHUNK = CHUNK_ROWS
MERGE_WINDOW = 20_000
"""Rows put back in input order at once by the merge (their lines are written together)."""
SHARD_BYTES = 8 << 20
"""Input bytes per shard (about 80,000 calls): a shard's frame and records stay well under 100 MB."""
MAX_SHARDS = 256
EXEMPT_LABELS = {"not_microsoft_billed": "carried by the customer's own operator (Operator Connect, Direct Routing)",
                 "emergency": "emergency"}
LAYOUT_NAMES = {"teams": "Teams", "graph": "Microsoft Graph", "graph_direct_routing": "Graph Direct Routing",
                "direct_routing": "Direct Routing", "own": "our"}
__all__ = ["OUTPUT_COLUMNS", "InputRow", "PoolMonth", "Rerate", "RerateSummary", "infer_licenses", "invoice_date",
           "with_licenses"]


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
    exempt: dict[str, int] = attrs.Factory(dict)
    """Calls Microsoft's rules do not price, by outcome: not_microsoft_billed (Operator Connect, Direct
    Routing) and emergency (see _exempt)."""

    def lines(self, *, pools: bool = True) -> list[str]:
        """The summary's lines; with `pools`, every pool-month's (thousands in a large run)."""
        lines = [f"rows {self.rows}: rated {self.rated}, rejected {self.rejected}, changed {self.changed}"]
        if self.known_at is not None:
            rules = f"the rules of {format_instant(self.as_of)}" if self.as_of is not None \
                else "the rules of each call's start"
            lines.append(f"rated under {rules}, as known at {format_instant(self.known_at)}")
        lines += [f"  {outcome}: {minutes} min" for outcome, minutes in sorted(self.minutes.items())]
        if self.exempt:
            lines.append("calls Microsoft does not bill: " + ", ".join(
                f"{EXEMPT_LABELS.get(outcome, outcome)} {calls}" for outcome, calls in self.exempt.items()))
        if self.changes:
            lines.append("changed calls (what was billed -> what is now: calls):")
            lines += [f"  {kind}: {calls}" for kind, calls in self.changes.items()]
        if self.pools and pools:
            lines.append("pools (tenant, pool, month, counter: used / capacity, alerts):")
        for (tenant, pool, month, counter), use in sorted(self.pools.items()) if pools else ():
            alerts = ", alerts: " + ", ".join(a.split(" of pool")[0] + " (" + a.rsplit("(", 1)[1] for a in use.alerts) \
                if use.alerts else ""
            lines.append(f"  {tenant} {pool} {month} {counter}: {use.text()}{alerts}")
        return lines


def invoice_date(start: pendulum.DateTime) -> pendulum.DateTime:
    """The usual billing date of a call: the first day (UTC) of the calendar month after it."""
    return start.start_of("month").add(months=1)


class Rerate:
    """One re-rating run over call files, with the store's policies as known at `known_at`.

    The run reads and checks every row, classifies each distinct dialed number once (remembered in the store
    for the next run), partitions the rows into tenant shards (Parquet files in `workdir`), rates each shard
    with the same rules and pool ledger as `store.rate` (in this process, in `workers` processes, or on the
    Dask cluster at `dask`), and merges the shards' records back into input order. The records are the same,
    byte for byte, whatever the number of workers and whichever executor.
    """

    def __init__(self, store: Store, paths: Iterable[str | Path], *, known_at: object, as_of: object = None,
                 default_tenant: str | None = None, workdir: str | Path | None = None,
                 sort_chunk: int = CHUNK_ROWS, workers: int | None = 1, dask: str | None = None,
                 shards: int | None = None) -> None:
        """`known_at` is required (a run says what it knew; store.now() for now); it and `as_of` take what
        store.rate takes: an aware datetime, an ISO 8601 text with offset, or a date. `workers`: processes
        that rate shards (None: the machine's cores; 1: this process). `dask`: a Dask scheduler's address
        (tcp://host:8786), which then rates the shards instead. `sort_chunk`: rows of a shard rated at once
        (the rest wait in its columnar frame). `shards`: how many tenant shards (default: from the input's
        size and the workers). `workdir`: the folder of the run's scratch files (default: the system's temp),
        or an fsspec URL every worker reaches (file:///x, s3://bucket/prefix; memory:// in one process only)."""
        self.store = store
        self.paths = [Path(path) for path in paths]
        self.known_at = to_instant(known_at, "known_at")
        self.as_of = None if as_of is None else to_instant(as_of, "as_of")
        self.default_tenant = default_tenant
        self.workdir = workdir
        if workdir is not None and is_url(workdir):
            check_processes(str(workdir), workers=workers, dask=dask)
            if workers is None and per_process(str(workdir)):
                workers = 1  # memory:// lives in this process: the default (every core) would not see it
        self.sort_chunk = max(1, sort_chunk)
        self.workers = workers
        self.dask = dask
        self.shards = shards
        self._file_tenants: dict[Path, str] = {}
        self._checked: dict[Path, tuple[int, int]] = {}
        """Files whose text was checked: (size, modification time) then."""
        self.summary = RerateSummary(known_at=self.known_at, as_of=self.as_of)
        self.workers_used: set[str] = set()
        """Where the shards were rated (process ids, or Dask worker addresses)."""

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
                    layout = detect_layout(first)
                except UnknownLayoutError as error:
                    # Every row would be rejected alike: the file is unusable, not its rows.
                    raise InvalidRecordsError([Problem(str(path), 1, "header", None, error.reason)]) from None
                if layout_class(layout).needs_tenant:
                    self._tenant_for(path, layout)

    def records_json(self, progress: Progress | None = None) -> Iterator[str]:
        """Output records in input order, as JSON text (one line each)."""
        for texts, _ in self._batches(None, progress):
            yield from texts

    def audited_lines(self, audit: Audit, progress: Progress | None = None) -> Iterator[tuple[str, int]]:
        """Output records in input order with their audit fields, as (JSON text, flags): the lines
        `audit.audited_lines(self.records_json())` gives, byte for byte, but each record's audit fields made
        where its shard rated it (in the workers), so that this process only writes finished lines; `audit`
        holds the run's money and rejections once every line is read. Flags: CHANGED (1), REJECTED (2)."""
        for texts, flags in self._batches(audit, progress):
            yield from zip(texts, flags, strict=True)

    def audited_batches(self, audit: Audit, progress: Progress | None = None) -> Iterator[tuple[list[str], bytes]]:
        """audited_lines, many lines at a time: (lines, their flags), in input order."""
        return self._batches(audit, progress)

    def audited_blocks(self, audit: Audit, progress: Progress | None = None) -> Iterator[OutputBlock]:
        """audited_batches as blocks of records: each block's lines in memory, or (with workers) a finished JSON
        Lines file that `OutputBlock.write_to` copies into an output without reading it. A block is good until
        the next one is asked for."""
        return self._blocks(audit, progress)

    def _batches(self, audit: Audit | None, progress: Progress | None) -> Iterator[tuple[list[str], bytes]]:
        for block in self._blocks(audit, progress):
            yield block.lines(), block.flags

    def _blocks(self, audit: Audit | None, progress: Progress | None) -> Iterator[OutputBlock]:
        self.check()
        self.summary = RerateSummary(known_at=self.known_at, as_of=self.as_of)
        with scratch_folder(self.workdir) as scratch:
            yield from _Run(self, scratch, progress, audit).records()

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
                            (call_id is not None and call_id not in (row.fields["call_id"], row.fields["usage_id"])):
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

    def _tenant_for(self, path: Path, layout: str = "teams") -> str:
        if self.default_tenant:
            return self.default_tenant
        tenants = self.store.tenant_index.tenant_ids()
        if len(tenants) == 1:
            return tenants[0]
        name = LAYOUT_NAMES.get(layout, layout)
        raise InvalidFieldError("tenant", None, f"--tenant: {path} ({name} layout) has no tenant column and the "
                                f"store knows {len(tenants)} tenants")


class _Run:
    """One run's scratch folder: the reading into tenant shards, the executor, the merge."""

    def __init__(self, rerate: Rerate, scratch: Path | str, progress: Progress | None, audit: Audit | None) -> None:
        self.rerate = rerate
        self.audit = audit
        self.read_audit = None if audit is None else audit.fresh()
        """The audit of the rows rejected while reading (the shards audit theirs)."""
        self.scratch = scratch
        self.progress = progress
        self.summary = rerate.summary
        self.rows = 0
        size = sum(path.stat().st_size for path in rerate.paths if path.exists())
        workers = _workers(rerate.workers)
        wanted = rerate.shards or max(4 * workers, -(-size // SHARD_BYTES))
        self.shard_count = max(1, min(MAX_SHARDS, wanted))
        self.parts: list[list[str]] = [[] for _ in range(self.shard_count)]

    def records(self) -> Iterator[OutputBlock]:
        """The run's records in input order, a block of rows at a time (each block's file, if it has one, is
        removed once the next is asked for)."""
        rerate = self.rerate
        store = rerate.store
        context = RunContext(store.timeline, store.tenant_index, micros(rerate.known_at),
                             format_instant(rerate.known_at), None if rerate.as_of is None else micros(rerate.as_of),
                             "" if rerate.as_of is None else format_instant(rerate.as_of),
                             tuple(str(path) for path in rerate.paths),
                             None if self.audit is None else self.audit.fresh())
        # Workers asked for (or a cluster) are started before the reading, so that their start (a process
        # imports policyhistory and polars, gets the context) is spent while this process reads.
        executor = make_executor(context, rerate.workers, rerate.dask, PARALLEL_MIN_ROWS, str(self.scratch)) \
            if rerate.dask or (rerate.workers is not None and rerate.workers > 1) else None
        try:
            rejected_path = join(self.scratch, "rejected.marshal")
            with open_file(rejected_path, "wb") as out:
                rejected_writer = RunWriter(out, rejected_path, RUN_BATCH)
                reading = ShardReading(rerate, self.scratch, self.shard_count, rejected_writer, self.read_audit,
                                       self.summary, self.progress, executor)
                reading.read()
            self.parts, self.rows = reading.parts, reading.rows
            if executor is None:
                executor = make_executor(context, rerate.workers, rerate.dask, self.rows, str(self.scratch))
            # One file of the run's classified numbers, which each shard joins with its own rows' numbers.
            numbers = join(self.scratch, "numbers.parquet")
            write_parquet(self._classify(executor), numbers)
            jobs = [ShardJob(index, tuple(parts), numbers, join(self.scratch, f"shard-{index}-out"), rerate.sort_chunk)
                    for index, parts in enumerate(self.parts) if parts]
            # With workers, each shard's tallies are added up as it comes back, while the others are rated.
            results = self._summarise(executor.rate(jobs))
            runs = (rejected_writer.run(), *(run for result in results for run in result.runs))
            # With workers, each range of the output is merged by one of them (while this process copies the
            # ranges before it into the output); in one process, here, window by window.
            merged = executor.merge([MergeTask(runs, low, min(self.rows, low + BLOCK_ROWS),
                                               join(self.scratch, f"block-{number}.jsonl"))
                                     for number, low in enumerate(range(0, self.rows, BLOCK_ROWS))])
            blocks = self._windows(runs) if merged is None else merged
            done = 0
            for block in blocks:
                done += block.rows
                if self.progress:
                    self.progress("writing", done, self.rows)
                yield block
                block.discard()
        finally:
            if executor is not None:
                executor.close()
        if self.progress:
            self.progress("writing", self.rows, self.rows)

    def _windows(self, runs: Sequence[RunFile]) -> Iterator[OutputBlock]:
        windows = Windows(runs)
        try:
            for low in range(0, self.rows, MERGE_WINDOW):
                texts, flags = windows.window(low, min(self.rows, low + MERGE_WINDOW))
                yield OutputBlock(flags, texts=texts)
        finally:
            windows.close()

    def _classify(self, executor: Executor) -> pl.DataFrame:
        """Every distinct number the shards' rows dial, classified once for the run (see _classify), as a frame
        of number, country, number_type and error (a number that cannot be classified)."""
        parts = [part for shard in self.parts for part in shard]
        distinct = sorted(scan_parquet(parts, ["destination"]).select(pl.col("destination").unique()).collect()
                          ["destination"].to_list()) if parts else []
        if self.progress:
            self.progress("classifying", 0, len(distinct))
        classified = classify_numbers(self.rerate.store, distinct, executor.map_chunks)
        found = [classified[number] for number in distinct]
        del classified
        return pl.DataFrame({
            "number": distinct,
            "country": [None if isinstance(kind, str) else kind[0] for kind in found],
            "number_type": [None if isinstance(kind, str) else kind[1] for kind in found],
            "error": [kind if isinstance(kind, str) else None for kind in found],
        }, schema={"number": pl.String, "country": pl.String, "number_type": pl.String, "error": pl.String})

    def _summarise(self, rated: Iterable[ShardResult]) -> list[ShardResult]:
        """Add up the shards' results, in job order, into the run's summary and audit; returns them."""
        results: list[ShardResult] = []
        summary = self.summary
        minutes: dict[str, int] = {}
        changes: dict[str, int] = {}
        exempt: dict[str, int] = {}

        def audits() -> Iterator[Audit | None]:
            """Each shard's pools and money read back and added up, one shard at a time (then let go)."""
            yield self.read_audit
            for result in rated:
                results.append(result)
                result.read_tallies()
                summary.rejected += result.rejected
                summary.changed += result.changed
                for outcome, value in result.minutes.items():
                    minutes[outcome] = minutes.get(outcome, 0) + value
                for kind, value in result.changes.items():
                    changes[kind] = changes.get(kind, 0) + value
                for outcome, value in result.exempt.items():
                    exempt[outcome] = exempt.get(outcome, 0) + value
                summary.pools.update(result.pools)
                result.pools = {}
                if result.worker:
                    self.rerate.workers_used.add(result.worker)
                audit, result.audit = result.audit, None
                yield audit

        if self.audit is not None:
            self.audit.merge(audits())  # type: ignore[arg-type]
        else:
            for _ in audits():
                pass
        summary.rated = summary.rows - summary.rejected
        summary.minutes = dict(sorted(minutes.items()))
        summary.changes = dict(sorted(changes.items(), key=lambda item: (-item[1], item[0])))
        summary.exempt = dict(sorted(exempt.items()))
        return results
