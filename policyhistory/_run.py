"""One re-rating run in its scratch folder: reading the input into tenant shards, classifying the dialed
numbers, rating the shards on an executor, adding up their tallies, and merging their records back into
input order (see _rerate for the steps)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from ._classify import classify_numbers
from ._executors import PARALLEL_MIN_ROWS, Executor, _workers, make_executor
from ._instant import format_instant
from ._merge import BLOCK_ROWS, MergeTask, OutputBlock, RunFile, RunWriter, Windows
from ._money import Audit
from ._reading import Progress, ShardReading
from ._scratch_url import join, open_file, scan_parquet, write_parquet
from ._shards import RUN_BATCH, RunContext, ShardJob, ShardResult
from ._timeline import micros

if TYPE_CHECKING:
    from ._rerate import Rerate

MERGE_WINDOW = 20_000
"""Rows put back in input order at once by the merge (their lines are written together)."""
SHARD_BYTES = 8 << 20
"""Input bytes per shard (about 80,000 calls): a shard's frame and records stay well under 100 MB."""
MAX_SHARDS = 256


class Run:
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
