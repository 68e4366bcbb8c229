"""The summary of a run, as text for stderr and as JSON values: counts, minutes, changes, pools, money and
rejected rows by reason."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from typing import Any

import pendulum

from ._instant import format_instant
from ._money import Audit


def pools_nearest_capacity(pools: Mapping[tuple[str, str, str, str], Any], count: int = 10) -> list[str]:
    """Summary lines of the pool-months whose use came nearest their capacity (or went past it)."""
    ranked = heapq.nsmallest(count, pools.items(), key=lambda item: (
        -(item[1].used / item[1].capacity if item[1].capacity else (1e9 if item[1].used else 0)), item[0]))
    lines = []
    for (tenant, pool, month, counter), use in ranked:
        share = f" ({100 * use.used / use.capacity:.0f} %)" if use.capacity else ""
        alerts = (", alerts: " + ", ".join(a.split(" of pool")[0] + " (" + a.rsplit("(", 1)[1] for a in use.alerts)
                  if use.alerts else "")
        # use.text(): "used / capacity", and every capacity the month met where licenses changed mid-month.
        lines.append(f"  {tenant} {pool} {month} {counter}: {use.text()}{share}{alerts}")
    return lines


def short_summary(summary: Any, audit: Audit, full: str | None) -> list[str]:
    """The stderr summary: counts, minutes per outcome, changes by kind (RerateSummary's own first lines),
    money per currency, the 10 pool-months nearest their capacity, and where the full summary went."""
    lines = []
    for line in summary.lines(pools=False):  # RerateSummary: every pool-month is for the full summary
        if line.startswith("pools (tenant"):
            break
        lines.append(line)
    lines += audit.lines()
    if summary.pools:
        nearest = pools_nearest_capacity(summary.pools)
        lines.append(f"pool-months nearest their capacity ({len(nearest)} of {len(summary.pools)}; tenant, pool, "
                     "month, counter: used / capacity, alerts):")
        lines += nearest
    rejected = audit.rejections.groups()
    if rejected:
        shown = rejected[:5]
        lines.append(f"rejected rows by reason ({len(rejected)} reason(s)"
                     f"{f', the {len(shown)} most frequent' if len(rejected) > len(shown) else ''}):")
        for group in shown:
            # The reason hides the row's values; its first row shows them, where the file holds it, and the fix.
            lines.append(f"  {group.count} row(s): {group.reason}")
            if group.first:
                first = group.first[0]
                lines.append(f"    first: {first['file']}:{first['line']}: {first['error']}")
            lines.append(f"    fix: {group.fix}")
        if len(rejected) > len(shown):
            others = rejected[len(shown):]
            lines.append(f"  {sum(group.count for group in others)} more row(s) for {len(others)} other reason(s) "
                         "(every reason: --summary-json FILE, or the report)")
    lines.append(f"full summary: {full}" if full else
                 "full summary (every pool-month, money per tenant and month): give --summary-json FILE")
    return lines


def run_summary_record(summary: Any, audit: Audit) -> dict[str, Any]:
    """The whole summary of a run as JSON values: counts, minutes, changes, every pool-month, money,
    rejected rows by reason. The pool-months (and the money's totals) are iterators, made as they are
    written (_outputs.json_chunks): a large run has hundreds of thousands."""
    return {
        "rows": summary.rows, "rated": summary.rated, "rejected": summary.rejected, "changed": summary.changed,
        "known_at": format_instant(summary.known_at) if summary.known_at else None,
        "as_of": format_instant(summary.as_of) if summary.as_of else None,
        "minutes": dict(summary.minutes), "changes": dict(summary.changes),
        "pools": ({"tenant_id": tenant, "pool": pool, "month": month, "counter": counter, "capacity": use.capacity,
                   "capacities": list(use.capacities), "used": use.used, "alerts": list(use.alerts)}
                  for (tenant, pool, month, counter), use in sorted(summary.pools.items())),
        "money": audit.streamed_record(),
        "rejected_by_reason": [group.record() for group in audit.rejections.groups()],
    }


def month_axis(months: Iterable[str]) -> list[str]:
    """Every month from the first to the last given, YYYY-MM, missing ones included (a continuous axis)."""
    given = sorted(set(months))
    if not given:
        return []
    first = pendulum.datetime(int(given[0][:4]), int(given[0][5:7]), 1, tz="UTC")
    last = pendulum.datetime(int(given[-1][:4]), int(given[-1][5:7]), 1, tz="UTC")
    axis = []
    while first <= last:
        axis.append(f"{first.year:04d}-{first.month:02d}")
        first = first.add(months=1)
    return axis
