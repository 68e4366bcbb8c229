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

import difflib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pendulum

from ._calls import Call
from ._errors import InvalidFieldError, InvalidRecordsError, PolicyHistoryError, Problem, UnreadableRowError
from ._instant import format_instant, to_instant
from ._layouts import (
    CallRow,
    LayoutReader,
    UnknownLayoutError,
    detect_layout,
    layout_class,
    layout_reader,
    lookalike_columns,
    require_columns,
)
from ._ledger import PoolMonth
from ._merge import OutputBlock
from ._money import Audit
from ._reading import Progress, _raw_call_id
from ._records import RECORD_FIELDS
from ._records import billed_change as billed_change
from ._records import billed_text as billed_text
from ._records import change_kind as change_kind
from ._records import rating_text as rating_text
from ._rows import check_text, read_table
from ._run import Run
from ._scratch import scratch_folder
from ._scratch_url import check_processes, is_url, per_process
from ._shards import (
    CHUNK_ROWS,
    infer_licenses,
)
from ._store import Store
from ._tenants import TenantIndex

OUTPUT_COLUMNS = RECORD_FIELDS
SORT_CHUNK = CHUNK_ROWS
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
        self.warnings: list[str] = []
        """What check() found worth saying but not refusing: a column spelt like one the layout reads."""
        self.summary = RerateSummary(known_at=self.known_at, as_of=self.as_of)
        self.workers_used: set[str] = set()
        """Where the shards were rated (process ids, or Dask worker addresses)."""

    def records(self, progress: Progress | None = None) -> Iterator[dict[str, Any]]:
        """Output records in input order; the summary is complete once they are all read."""
        for text in self.records_json(progress):
            yield json.loads(text)

    def check(self) -> None:
        """Refuse unusable files before any row is read: text that does not decode, a header of no layout or
        without a column every row needs, a Teams export without a tenant to belong to; note in `warnings` a
        column spelt like one the layout reads. A file checked before and unchanged since is not decoded again."""
        warnings: list[str] = []
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
                    if columns is not None:
                        require_columns(layout, columns)
                        warnings += [f"{path}:1: column {column!r} is not read (is it {name!r}?)"
                                     for column, name in lookalike_columns(layout, columns)]
                except UnknownLayoutError as error:
                    # Every row would be rejected alike: the file is unusable, not its rows.
                    raise InvalidRecordsError([Problem(str(path), 1, "header", None, error.reason)]) from None
                if layout_class(layout).needs_tenant:
                    self._tenant_for(path, layout)
        self.warnings = warnings

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
            yield from Run(self, scratch, progress, audit).records()

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
                        yield InputRow(str(path), line, None, None, error, _raw_call_id(raw, reader, columns))

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
        tenants = self.store.tenant_index.tenant_ids()
        if self.default_tenant:
            if self.default_tenant not in tenants:
                # Every row of the file would be rejected alike ("no tenant facts"): the option is wrong.
                known = ", ".join(map(repr, tenants[:5])) + (", ..." if len(tenants) > 5 else "")
                close = difflib.get_close_matches(self.default_tenant, tenants, n=1, cutoff=0.6)
                raise InvalidFieldError("tenant", self.default_tenant, (
                    f"--tenant naming a tenant the store has facts for ({f'is it {close[0]!r}? ' if close else ''}"
                    f"it has {len(tenants)}{f': {known}' if tenants else ''}; load a tenant's facts with "
                    "--tenants FILE --licenses FILE)"))
            return self.default_tenant
        if len(tenants) == 1:
            return tenants[0]
        name = LAYOUT_NAMES.get(layout, layout)
        raise InvalidFieldError("tenant", None, f"--tenant: {path} ({name} layout) has no tenant column and the "
                                f"store knows {len(tenants)} tenants")
