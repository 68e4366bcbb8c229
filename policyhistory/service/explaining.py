"""The explanation of one call for the service: the library's find_call / explain_found (what `policyhistory
explain` calls), on a job's uploads or on a call given by its fields."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio.to_thread

from .._errors import CallNotFoundError
from .._explaining import CallExplanation, explain_found, find_call, given_call, with_tenant_calls
from .._rerate import Rerate
from .._store import Store
from .problems import Missing


def explain_in_files(store: Store, paths: Sequence[Path], call_id: str | None = None, *,
                     call: dict[str, Any] | None = None, known_at: Any = None, billed_at: Any = None,
                     billed: dict[str, Any] | None = None, tenant: str | None = None) -> CallExplanation:
    """The call `call_id` of the files, or the `call` given (its fields), after its tenant's calls in them."""
    known = store.now() if known_at is None else known_at
    if call is not None:
        run = Rerate(store, paths, known_at=known, default_tenant=tenant)
        run.check()
        found = with_tenant_calls(store, run, given_call(call, billed=billed))
    else:
        try:
            found = find_call(store, paths, str(call_id), known_at=known, tenant=tenant)
        except CallNotFoundError as error:
            raise Missing(f"call {call_id!r} is not in the job's files (or could not be read)") from error
    return explain_found(store, found, known_at=known, billed_at=billed_at)


def explain_call(store: Store, call: dict[str, Any], earlier: Sequence[dict[str, Any]] = (), *,
                 known_at: Any = None, billed_at: Any = None,
                 billed: dict[str, Any] | None = None) -> CallExplanation:
    """A call given as fields (as `rate --call` takes them), with its tenant's earlier calls if any."""
    return explain_found(store, given_call(call, earlier, billed), known_at=known_at, billed_at=billed_at)


def _explain_with_own_store(db: Path, paths: Sequence[Path], call_id: str | None,
                            **options: Any) -> CallExplanation:
    from .state import open_store

    store = open_store(db)
    try:
        return explain_in_files(store, paths, call_id, **options)
    finally:
        store.close()


async def explain_job_call(db: Path, paths: Sequence[Path], call_id: str | None,
                           **options: Any) -> CallExplanation:
    """explain_in_files on a worker thread with a store connection of its own: reading a job's files takes
    seconds on a large job, and the request loop keeps answering meanwhile."""
    work = functools.partial(_explain_with_own_store, db, paths, call_id, **options)
    return await anyio.to_thread.run_sync(work)
