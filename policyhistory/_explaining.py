"""explain's one way, for the CLI and the service alike: find a call in call files (with its tenant's calls,
the earlier calls of its month among them), then explain it, rated as known at its billing date and as known
now where the input carries what was billed, with the three answers of a dispute (billed, then, now).

Two steps, because their failures differ: reading the files (an unusable file, a call not in them) is the
caller's input; rating the call (nothing in force then) is the library's answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from ._calls import Call, call_from_mapping
from ._dispute import Dispute, dispute, dispute_without_then, neighbours_of
from ._errors import CallNotFoundError, PolicyHistoryError, UnreadableCallError
from ._explain import Comparison, Explanation
from ._instant import format_instant, to_instant
from ._rerate import InputRow, Rerate, invoice_date, with_licenses
from ._store import Store


@attrs.frozen
class FoundCall:
    """A call read from call files, with what the input says was billed and its tenant's rows in them."""

    call: Call
    billed: dict[str, Any] | None
    rows: tuple[InputRow, ...]
    earlier: tuple[Call, ...]
    """The tenant's calls in the files (the explanation counts those before the call in its month)."""


@attrs.frozen
class CallExplanation:
    """explain's answer: the explanation, or the comparison of the belief at billing time with today's, and,
    where the input carries the bill, the three answers side by side (`dispute`)."""

    result: Explanation | Comparison
    dispute: Dispute | None = None
    billing_date_assumed: bool = False
    """The billing date is the first day of the month after the call (none was given)."""

    def record(self) -> dict[str, Any]:
        record = self.result.record()
        if self.dispute is not None:
            record["dispute"] = self.dispute.record()
        return record

    def text(self) -> str:
        parts = []
        if self.billing_date_assumed and isinstance(self.result, Comparison):
            parts.append(f"(billing date taken as {format_instant(self.result.then.known_at)}, the first day of the "
                         "month after the call; give --billed-at to choose another)")
        if self.dispute is not None:
            parts.append(self.dispute.text() + "\n")
        parts.append(self.result.text())
        return "\n".join(parts)


def find_call(store: Store, paths: Iterable[str | Path], call_id: str, *, known_at: object,
              tenant: str | None = None) -> FoundCall:
    """The call `call_id` (a call id or UsageId) of the files, read by their layouts, with its tenant's rows:
    two passes, each building Calls only for the rows it keeps. CallNotFoundError when it is not there."""
    run = Rerate(store, paths, known_at=known_at, default_tenant=tenant)
    run.check()
    target = next(run.rows(call_id=call_id), None)
    if target is None or target.call is None or target.row is None:
        # A row that names the call but cannot be read (a bad start, say) is the answer: say why, and where.
        refused = next((row for row in run.rows() if row.error is not None and row.call_id == call_id), None)
        if refused is not None:
            raise UnreadableCallError(call_id, refused.file, refused.line, refused.error)
        raise CallNotFoundError(call_id, [str(path) for path in run.paths])
    return with_tenant_calls(store, run, FoundCall(with_licenses(target.row, target.call, store.tenant_index),
                                                   target.row.billed, (), ()))


def with_tenant_calls(store: Store, run: Rerate, found: FoundCall) -> FoundCall:
    """`found` with its tenant's rows and calls in the run's files (a call given by its fields, a job's)."""
    rows = tuple(run.rows(tenant_id=found.call.tenant_id))
    index = store.tenant_index
    earlier = tuple(with_licenses(row.row, row.call, index) for row in rows
                    if row.row is not None and row.call is not None)
    return FoundCall(found.call, found.billed, rows, earlier)


def given_call(call: dict[str, Any], earlier: Sequence[dict[str, Any]] = (),
               billed: dict[str, Any] | None = None) -> FoundCall:
    """A call given by its fields (as `rate --call` takes them), with its tenant's earlier calls."""
    return FoundCall(call_from_mapping(call), billed, (), tuple(call_from_mapping(other) for other in earlier))


def explain_found(store: Store, found: FoundCall, *, known_at: object = None,
                  billed_at: object = None) -> CallExplanation:
    """Explain a found call as known at `known_at` (default now). With `billed_at`, or where the input carries
    what was billed (billed then at the usual invoice date), compare it with the belief at billing time; with
    the bill, also the three answers. A bill from before anything ruled such a call is explained as known now,
    the three answers saying that nothing ruled it then."""
    known = store.now() if known_at is None else to_instant(known_at, "known_at")
    billed_instant = None if billed_at is None else to_instant(billed_at, "billed_at")
    assumed = billed_instant is None and found.billed is not None
    if assumed:
        billed_instant = invoice_date(found.call.start)
    then_refused: PolicyHistoryError | None = None
    result: Explanation | Comparison
    if billed_instant is not None:
        try:
            result = store.compare(found.call, billed_instant, known_at=known, earlier=found.earlier,
                                   billed=found.billed)
        except PolicyHistoryError as error:
            if found.billed is None:
                raise
            then_refused = error
            result = store.explain(found.call, known_at=known, earlier=found.earlier)
    else:
        result = store.explain(found.call, known_at=known, earlier=found.earlier)
    three_way = None
    if found.billed is not None:
        now = result.now if isinstance(result, Comparison) else result
        destination = (now.rating.destination_country, now.rating.number_type)
        neighbours = neighbours_of(found.rows, found.call, destination)
        if isinstance(result, Comparison):
            three_way = dispute(result, found.billed, store.rate_cards(), neighbours)
        elif then_refused is not None:
            three_way = dispute_without_then(result, billed_instant, then_refused, found.billed, store.rate_cards(),
                                             neighbours)
    return CallExplanation(result, three_way, assumed)
