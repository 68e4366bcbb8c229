"""The record of one rated call without its trace, from what the pool ledger settled.

`_records.rating_record(rating, trace=False)` reads a Rating; `rate_call` builds that Rating from the call,
its plan and the ledger's Settled, rendering the plan's trace on the way. A batch that asks for no trace
(POST /v1/rate/batch with "trace": false) needs neither: `settled_rating_record` gives the same record,
field for field and in the same order, from the call and the Settled (tests/test_rated.py compares the
two over generated calls). The fields themselves are `_records.settled_record`'s, the one record.
"""

from __future__ import annotations

from typing import Any

from ._calls import Call, Destination
from ._instant import format_instant
from ._ledger import Settled
from ._records import settled_record


def settled_rating_record(call: Call, destination: Destination, settled: Settled, as_of: str | None,
                          known_at: str) -> dict[str, Any]:
    """`rating_record(rating, trace=False)` of the Rating `rate_call` makes of `call` and `settled` under a
    plan whose destination is `destination`: `as_of` the text of the instant the rules were taken at (None:
    the call's start), `known_at` the text of what was known."""
    start = format_instant(call.start)
    head: dict[str, Any] = {"call_id": call.call_id}
    if call.usage_id is not None:
        head["usage_id"] = call.usage_id
    head["tenant_id"] = call.tenant_id
    head["start"] = start
    record = settled_record(head, call.call_type, destination.country, destination.number_type, settled, None)
    record["as_of"] = start if as_of is None else as_of
    record["known_at"] = known_at
    return record

