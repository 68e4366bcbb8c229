"""Where a re-rating's shards are rated: in this process, in a pool of processes, or on a Dask cluster.

Each executor runs the same two functions: `classify_chunk` on chunks of new dialed numbers, and
`_shards.rate_shard` on each tenant shard; in a pool or a cluster, `_merge.write_block` on each range of the
merged output too, which the caller copies in order. The run's context (policies,
tenant facts, instants) goes to each worker once.
"""

from __future__ import annotations

import gc
import importlib
import multiprocessing
import os
import pickle
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Protocol, TypeVar

from ._errors import PolicyHistoryError
from ._merge import MergeTask, OutputBlock, write_block
from ._scratch_url import join, open_file
from ._shards import RunContext, ShardJob, ShardResult, rate_shard

T = TypeVar("T")
R = TypeVar("R")
PARALLEL_MIN_ROWS = 20_000
"""With the default worker count (the machine's cores), a run of fewer rows stays in one process: starting
processes would cost more than the rating (the records are the same either way). A count given is obeyed."""
DASK_EXTRA = "pip install 'policyhistory[dask]'"


class DaskNotInstalledError(PolicyHistoryError, ImportError):
    """--dask was asked for, and Dask distributed is not installed."""

    def __init__(self) -> None:
        super().__init__(f"--dask needs Dask distributed, which is not installed: {DASK_EXTRA}")


class DaskUnreachableError(PolicyHistoryError, ConnectionError):
    """The Dask scheduler named by --dask could not be reached."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        super().__init__(f"cannot reach the Dask scheduler at {address}: {reason}")


class Executor(Protocol):
    def map_chunks(self, function: Callable[[T], R], chunks: Sequence[T]) -> list[R]: ...

    def rate(self, jobs: Sequence[ShardJob]) -> Iterable[ShardResult]:
        """The shards' results in job order; with workers, each as soon as it and those before it are done (the
        caller adds up a shard's tallies while the others are rated)."""

    def offload(self, function: Callable[[T], R], argument: T) -> Future[R] | None:
        """`function(argument)` given to a worker, or None where the caller had better do it itself (there are
        no workers, or they are far away)."""

    def merge(self, tasks: Sequence[MergeTask]) -> Iterator[OutputBlock] | None:
        """The tasks' blocks, in order, each merged by a worker while the caller copies the ones before; None
        where the merge is better left to the caller (one process: a block file would be written only to be
        read back)."""

    def close(self) -> None: ...


def _workers(workers: int | None) -> int:
    return max(1, os.cpu_count() or 1) if workers is None else max(1, workers)


class InProcess:
    def __init__(self, context: RunContext) -> None:
        self.context = context

    def map_chunks(self, function: Callable[[T], R], chunks: Sequence[T]) -> list[R]:
        return [function(chunk) for chunk in chunks]

    def rate(self, jobs: Sequence[ShardJob]) -> list[ShardResult]:
        results = [rate_shard(job, self.context) for job in jobs]
        for result in results:
            result.worker = f"pid {os.getpid()}"
        return results

    def offload(self, function: Callable[[T], R], argument: T) -> None:
        return None

    def merge(self, tasks: Sequence[MergeTask]) -> None:
        return None

    def close(self) -> None:
        pass


_CONTEXT: list[RunContext] = []


def _set_context(path: str, parent: int) -> None:
    # A pool's worker waits for work on a pipe whose other end it holds too, so it would outlive a parent
    # killed by SIGKILL (no chance to shut the pool down), holding its memory: it leaves when the parent does.
    threading.Thread(target=_leave_with, args=(parent,), daemon=True, name="policyhistory-parent-watch").start()
    with open_file(path, "rb") as handle:  # written by Processes in the run's own scratch folder
        _CONTEXT[:] = [pickle.load(handle)]
    # A worker of this pool lives for one run, as the CLI's process does (see cli.rerate): the context (the
    # catalog, the tenant index) stays until it exits, so keep it out of the collector's scans, and collect
    # young objects less often (a shard makes a few short-lived containers per row and no cycles).
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


_PARENT_WATCH_SECONDS = 0.5


def _leave_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_PARENT_WATCH_SECONDS)
    os._exit(1)  # the parent is gone: no one is left to take this worker's results


def _ready() -> None:
    pass


def _rate_in_worker(job: ShardJob) -> ShardResult:
    result = rate_shard(job, _CONTEXT[0])
    result.worker = f"pid {os.getpid()}"
    return result


class Processes:
    """A pool of `workers` processes (spawned, not forked: the parent may hold threads, polars' among them)."""

    def __init__(self, context: RunContext, workers: int, scratch: str) -> None:
        # The context goes to the workers in a file, not as the initializer's argument: a spawned process is
        # sent its arguments through a pipe, and the caller's write of a context past the pipe's buffer waits
        # until the child has imported policyhistory to read it, one child after the other.
        path = _write_context(context, scratch)
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_set_context, initargs=(path, os.getpid()))
        # Start every worker now (the pool starts one a task submitted): each imports policyhistory and polars
        # and receives the context while the caller goes on (reading the input).
        for _ in range(workers):
            self.pool.submit(_ready)

    def map_chunks(self, function: Callable[[T], R], chunks: Sequence[T]) -> list[R]:
        return list(self.pool.map(function, chunks))

    def rate(self, jobs: Sequence[ShardJob]) -> Iterator[ShardResult]:
        # Largest shards first, so that no worker is left with a big one at the end; results in job order.
        order = sorted(range(len(jobs)), key=lambda index: -len(jobs[index].parts))
        futures: dict[int, Future[ShardResult]] = {index: self.pool.submit(_rate_in_worker, jobs[index])
                                                   for index in order}
        return (futures[index].result() for index in range(len(jobs)))

    def offload(self, function: Callable[[T], R], argument: T) -> Future[R]:
        return self.pool.submit(function, argument)

    def merge(self, tasks: Sequence[MergeTask]) -> Iterator[OutputBlock]:
        futures = [self.pool.submit(write_block, task) for task in tasks]
        return (future.result() for future in futures)

    def close(self) -> None:
        # Not waiting for the workers to exit (0.2 s): the pool's own thread joins them while the caller goes on
        # (syncing the output, the summary), and the interpreter waits for that thread before it exits.
        self.pool.shutdown(wait=False, cancel_futures=True)


def _write_context(context: RunContext, scratch: str) -> str:
    """The run's context pickled in its scratch folder, for the workers to read (see Processes, Dask)."""
    path = join(scratch, "context.pickle")
    with open_file(path, "wb") as handle:
        pickle.dump(context, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return path


_DASK_CONTEXT: dict[tuple[str, str], RunContext] = {}
_DASK_CONTEXT_LOCK = threading.Lock()


def _dask_context(path: str, run: str) -> RunContext:
    """The run's context in a Dask worker: read from the shared folder by the worker's first shard of the run,
    then kept for the others (a worker serves many runs: only the latest run's is kept). `run` names the run:
    a later run's scratch folder could, by chance, take the name of one removed."""
    with _DASK_CONTEXT_LOCK:
        context = _DASK_CONTEXT.get((path, run))
        if context is None:
            with open_file(path, "rb") as handle:  # written by Dask in the run's own scratch folder
                context = pickle.load(handle)
            _DASK_CONTEXT.clear()
            _DASK_CONTEXT[(path, run)] = context
        return context


def _rate_on_dask(job: ShardJob, context_path: str, run: str) -> ShardResult:
    distributed: Any = importlib.import_module("distributed")
    result = rate_shard(job, _dask_context(context_path, run))
    result.worker = str(distributed.get_worker().address)
    return result


class Dask:
    """A Dask distributed cluster: one task per shard, placed round-robin on the workers (left to itself the
    scheduler was seen running every task in one worker, one after the other), and one task per range of the
    merge."""

    def __init__(self, context: RunContext, address: str, scratch: str) -> None:
        try:
            distributed: Any = importlib.import_module("distributed")
        except ImportError:
            raise DaskNotInstalledError() from None
        try:
            self.client: Any = distributed.Client(address, timeout="10s")
        except (OSError, TimeoutError) as error:
            raise DaskUnreachableError(address, str(error) or type(error).__name__) from None
        # The context goes to the workers in a file of the shared scratch folder, read by each worker's first
        # shard: scattering it to every worker kept this process waiting 0.7 s before it began to read.
        self.context_path = _write_context(context, scratch)
        self.run = secrets.token_hex(8)
        self.workers = sorted(self.client.scheduler_info()["workers"])

    def map_chunks(self, function: Callable[[T], R], chunks: Sequence[T]) -> list[R]:
        futures = [self.client.submit(function, chunk, pure=False, **self._placed(index))
                   for index, chunk in enumerate(chunks)]
        return list(self.client.gather(futures))

    def rate(self, jobs: Sequence[ShardJob]) -> Iterator[ShardResult]:
        futures = [self.client.submit(_rate_on_dask, job, self.context_path, self.run, pure=False,
                                      **self._placed(index)) for index, job in enumerate(jobs)]
        return (future.result() for future in futures)

    def offload(self, function: Callable[[T], R], argument: T) -> None:
        return None  # a piece's text would cross the network to a worker: read here

    def merge(self, tasks: Sequence[MergeTask]) -> Iterator[OutputBlock]:
        futures = [self.client.submit(write_block, task, pure=False, **self._placed(index))
                   for index, task in enumerate(tasks)]
        return (future.result() for future in futures)

    def _placed(self, index: int) -> dict[str, Any]:
        if not self.workers:
            return {}
        return {"workers": [self.workers[index % len(self.workers)]], "allow_other_workers": True}

    def close(self) -> None:
        self.client.close()


def make_executor(context: RunContext, workers: int | None, dask: str | None, rows: int, scratch: str) -> Executor:
    """Dask when an address is given; else processes when more than one worker and enough rows; else here."""
    if dask:
        return Dask(context, dask, scratch)
    count = _workers(workers)
    if count > 1 and (workers is not None or rows >= PARALLEL_MIN_ROWS):
        return Processes(context, count, scratch)
    return InProcess(context)
