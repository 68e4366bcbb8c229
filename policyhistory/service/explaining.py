"""The explanation of one call found in call files (a job's uploads), as `policyhistory explain` builds it:
the call and its tenant's earlier calls of the month read by their files' layouts, licenses inferred where
the layout needs it, then `Store.explain`, or `Store.compare` against the billing date."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio.to_thread

from .._calls import call_from_mapping
from .._explain import Comparison, Explanation
from .._instant import to_instant
from .._rerate import Rerate, invoice_date, with_licenses
from .._store import Store
from .problems import Missing


def explain_in_files(store: Store, paths: Sequence[Path], call_id: str | None = None, *,
                     call: dict[str, Any] | None = None, known_at: Any = None, billed_at: Any = None,
                     billed: dict[str, Any] | None = None, tenant: str | None = None) -> Explanation | Comparison:
    """The call `call_id` of the files, or the `call` given (its fields), after its tenant's calls in them."""
    known = store.now() if known_at is None else to_instant(known_at, "known_at")
    billed_instant = None if billed_at is None else to_instant(billed_at, "billed_at")
    run = Rerate(store, paths, known_at=known, default_tenant=tenant)
    run.check()
    index = store.tenant_index
    if call is not None:
        target_call = call_from_mapping(call)
    else:
        target = next(run.rows(call_id=call_id), None)
        if target is None or target.call is None or target.row is None:
            raise Missing(f"call {call_id!r} is not in the job's files (or could not be read)")
        target_call = with_licenses(target.row, target.call, index)
        billed = target.row.billed
    earlier = [with_licenses(row.row, row.call, index) for row in run.rows(tenant_id=target_call.tenant_id)
               if row.row is not None and row.call is not None]
    if billed_instant is None and billed is not None:
        billed_instant = invoice_date(target_call.start)
    if billed_instant is not None:
        return store.compare(target_call, billed_instant, known_at=known, earlier=earlier, billed=billed)
    return store.explain(target_call, known_at=known, earlier=earlier)


def explain_call(store: Store, call: dict[str, Any], earlier: Sequence[dict[str, Any]] = (), *,
                 known_at: Any = None, billed_at: Any = None,
                 billed: dict[str, Any] | None = None) -> Explanation | Comparison:
    """A call given as fields (as `rate --call` takes them), with its tenant's earlier calls if any."""
    target = call_from_mapping(call)
    others = [call_from_mapping(other) for other in earlier]
    if billed_at is None and billed is not None:  # what was billed, billed when invoices usually are
        billed_at = invoice_date(target.start)
    if billed_at is not None:
        return store.compare(target, billed_at, known_at=known_at, earlier=others, billed=billed)
    return store.explain(target, known_at=known_at, earlier=others)


def _explain_with_own_store(db: Path, paths: Sequence[Path], call_id: str | None,
                            **options: Any) -> Explanation | Comparison:
    from .state import open_store

    store = open_store(db)
    try:
        return explain_in_files(store, paths, call_id, **options)
    finally:
        store.close()


async def explain_job_call(db: Path, paths: Sequence[Path], call_id: str | None,
                           **options: Any) -> Explanation | Comparison:
    """explain_in_files on a worker thread with a store connection of its own: reading a job's files takes
    seconds on a large job, and the request loop keeps answering meanwhile."""
    work = functools.partial(_explain_with_own_store, db, paths, call_id, **options)
    return await anyio.to_thread.run_sync(work)
