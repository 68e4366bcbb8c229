"""Self-contained HTML pictures (inline SVG, no script, no network): the policy timeline and the audit report.

The markup is well-formed XML so that tests can read lanes, bars and dates back out of it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

import pendulum

from ._describe import describe_params
from ._errors import NothingKnownError
from ._explain import source_line
from ._instant import format_instant
from ._policy import PolicyVersion
from ._timeline import Timeline, micros

STYLE = """
body { font: 13px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
.lane-label { font-size: 12px; font-weight: 600; fill: #222; }
.tick { stroke: #ddd; } .tick-label { font-size: 11px; fill: #666; }
.bar { stroke: #333; stroke-width: 0.5; } .bar.overridden { fill-opacity: 0.35; stroke-dasharray: 3 2; }
.bar.retraction { fill: #fff; stroke: #b00; } .bar-label { font-size: 10px; fill: #111; }
.mark { stroke-width: 1; stroke-dasharray: 4 3; } .mark80 { stroke: #d80; } .mark100 { stroke: #b00; }
.use { fill: #3a7; } .use.over { fill: #c44; } .legend { font-size: 11px; fill: #444; }
@media print { body { margin: 0; } }
"""
PALETTE = ["#7aa6d6", "#f0b35b", "#8cc08c", "#d98c8c", "#b39ddb", "#80cbc4"]


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><meta charset="utf-8"/>'
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>\n")


def _year_start(year: int) -> pendulum.DateTime:
    return pendulum.datetime(year, 1, 1, tz="UTC")


def timeline_html(timeline: Timeline, known_at: pendulum.DateTime) -> str:
    """Every key a lane on valid time; in a lane, one row per recorded date, so that later-recorded
    corrections sit over (below, and drawn later than) the beliefs they replaced; hover text gives sources."""
    versions = timeline.known_versions(micros(known_at))
    if not versions:
        first = timeline.versions[0].recorded_at if timeline.versions else None  # in recording order
        raise NothingKnownError(format_instant(known_at), format_instant(first) if first else "never")
    keys = timeline.keys(micros(known_at))
    first_year = min(v.valid_from for v in versions).year
    last_year = max([v.valid_to or v.valid_from for v in versions] + [v.recorded_at for v in versions]).year + 2
    left, width, row_height, lane_gap = 320, 860, 16, 14
    start, end = _year_start(first_year), _year_start(last_year)
    span = (end - start).total_seconds()

    def x(instant: dt.datetime) -> float:
        return left + width * (instant - start).total_seconds() / span

    parts: list[str] = []
    y = 30
    for year in range(first_year, last_year + 1):
        px = x(_year_start(year))
        parts.append(f'<line class="tick" x1="{px:.1f}" x2="{px:.1f}" y1="20" y2="{{height}}"/>'
                     f'<text class="tick-label" x="{px + 2:.1f}" y="14">{year}</text>')
    for key in keys:
        key_versions = [v for v in versions if v.key == key]
        recorded = sorted({v.recorded_at for v in key_versions})
        lane_height = len(recorded) * row_height
        parts.append(f'<g class="lane" data-key="{escape(key)}">'
                     f'<text class="lane-label" x="4" y="{y + 12}">{escape(key)}</text>')
        for version in sorted(key_versions, key=lambda v: (v.recorded_at, v.valid_from)):
            row = recorded.index(version.recorded_at)
            overriders = [w for w in key_versions if w.recorded_at > version.recorded_at and _overlaps(v=version, w=w)]
            x1 = x(version.valid_from)
            x2 = x(version.valid_to) if version.valid_to else left + width
            classes = "bar" + (" overridden" if overriders else "") + ("" if version.in_force else " retraction")
            title = (f"{version.id}\nvalid {version.interval_text()}\nrecorded {format_instant(version.recorded_at)}"
                     f"\n{describe_params(version)}\nsource: {source_line(version)}"
                     + "".join(f"\noverridden from {format_instant(w.recorded_at)} by {w.id}" for w in overriders))
            colour = PALETTE[row % len(PALETTE)]
            parts.append(
                f'<rect class="{classes}" data-version="{escape(version.id)}" '
                f'data-valid-from="{format_instant(version.valid_from)}" '
                f'data-valid-to="{format_instant(version.valid_to) if version.valid_to else ""}" '
                f'data-recorded-at="{format_instant(version.recorded_at)}" data-row="{row}" '
                f'x="{x1:.1f}" y="{y + row * row_height}" width="{max(x2 - x1, 1.5):.1f}" height="{row_height - 3}" '
                f'fill="{colour}"><title>{escape(title)}</title></rect>'
                f'<text class="bar-label" x="{x1 + 3:.1f}" y="{y + row * row_height + 10}">'
                f'{escape(version.recorded_at.to_date_string())}</text>')
        parts.append("</g>")
        y += lane_height + lane_gap
    height = y + 10
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 50}" height="{height}" '
           f'role="img" aria-label="policy timeline">' + "".join(parts).replace("{height}", str(height)) + "</svg>")
    legend = ("<p>Valid time runs left to right. Each lane is a policy key; each row in a lane is what became "
              "known on one date (the date is printed on each bar). A later row overrides the rows above it "
              "over the valid time it covers; overridden bars are pale and dashed. Hover a bar for its source."
              f" As known at {escape(format_instant(known_at))}.</p>")
    return _page("policyhistory: policy timeline", f"<h1>Policy timeline</h1>{legend}{svg}")


def _overlaps(v: PolicyVersion, w: PolicyVersion) -> bool:
    return (v.valid_to is None or w.valid_from < v.valid_to) and (w.valid_to is None or v.valid_from < w.valid_to)


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def pool_chart(tenant: str, pool: str, counter: str, months: Mapping[str, tuple[int, int]]) -> str:
    """Use per month as a share of capacity, with dashed marks at 80 % and 100 %."""
    left, bar, gap, height, top = 40, 26, 8, 120, 10
    scale = max([150.0] + [100 * used / capacity for capacity, used in months.values() if capacity])

    def y(percent: float) -> float:
        return top + height * (1 - percent / scale)

    parts = []
    for index, (month, (capacity, used)) in enumerate(sorted(months.items())):
        share = 100 * used / capacity if capacity else 0.0
        px = left + index * (bar + gap)
        over = " over" if share >= 100 else ""
        parts.append(f'<rect class="use{over}" data-month="{month}" data-capacity="{capacity}" data-used="{used}" '
                     f'x="{px}" y="{y(share):.1f}" width="{bar}" height="{top + height - y(share):.1f}">'
                     f"<title>{month}: {used} of {capacity} min ({share:.0f} %)</title></rect>"
                     f'<text class="legend" x="{px}" y="{top + height + 12}">{month[2:]}</text>')
    chart_width = left + len(months) * (bar + gap) + 40
    for percent in (80, 100):
        parts.append(f'<line class="mark mark{percent}" data-percent="{percent}" x1="{left - 4}" x2="{chart_width}" '
                     f'y1="{y(percent):.1f}" y2="{y(percent):.1f}"/>'
                     f'<text class="legend" x="2" y="{y(percent) + 4:.1f}">{percent} %</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="pool-chart" data-tenant="{escape(tenant)}" '
            f'data-pool="{escape(pool)}" width="{chart_width}" height="{top + height + 20}">{"".join(parts)}</svg>')


def report_html(summary: Any, changed: Sequence[Mapping[str, Any]], known_at: pendulum.DateTime,
                max_charts: int = 100, digest: str | None = None) -> str:
    """The audit report of one rerate run: totals, changed calls, and each tenant's pools month by month;
    `digest`, the store's digest the run read (policyhistory verify --digest checks it later)."""
    anchor = ("" if digest is None else
              f"<p>Store digest the run read (check it with <code>policyhistory verify --digest</code>):</p>"
              f"<pre>{escape(digest)}</pre>")
    body = [f"<h1>Re-rating audit report</h1><p>Rated with the policies as known at "
            f"{escape(format_instant(known_at))}.</p>{anchor}<h2>Totals</h2>",
            _table(("rows", "rated", "rejected", "changed"),
                   [(summary.rows, summary.rated, summary.rejected, summary.changed)]),
            _table(("outcome", "billable minutes"), sorted(summary.minutes.items())),
            "<h2>Changes by kind</h2>",
            _table(("what was billed -> what is now", "calls"), list(summary.changes.items())),
            f"<h2>Changed calls ({summary.changed})</h2>",
            "" if len(changed) == summary.changed else
            f"<p>The first {len(changed)} in input order; the output has every one (\"changed\": true).</p>",
            _table(("file", "line", "call", "tenant", "start", "now", "change"),
                   [(r["file"].rsplit("/", 1)[-1], r["line"], r["call_id"], r.get("tenant_id", ""), r["start"],
                     r["outcome"], r.get("change", "")) for r in changed]),
            "<h2>Pools per tenant and month</h2>"]
    charts: dict[tuple[str, str, str], dict[str, tuple[int, int]]] = {}
    for (tenant, pool, month, counter), use in sorted(summary.pools.items()):
        charts.setdefault((tenant, pool, counter), {})[month] = (use.capacity, use.used)
    for index, ((tenant, pool, counter), months) in enumerate(sorted(charts.items())):
        if index >= max_charts:
            body.append(f"<p>{len(charts) - max_charts} more pools are not drawn; the JSON output has them all.</p>")
            break
        body.append(f"<h3>{escape(tenant)}: {escape(pool)} ({escape(counter)})</h3>"
                    + pool_chart(tenant, pool, counter, months)
                    + _table(("month", "capacity", "used"), [(m, c, u) for m, (c, u) in sorted(months.items())]))
    return _page("policyhistory: re-rating audit report", "".join(body))
