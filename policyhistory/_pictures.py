"""Self-contained HTML pictures (inline SVG, no script, no network): the policy timeline and the audit report.

The markup is well-formed XML so that tests can read lanes, bars and dates back out of it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

import pendulum

from ._describe import describe_params, short_description
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
.lane-band { fill: #f6f6f6; } .lane:nth-of-type(2n) .lane-band { fill: #fff; }
.bar { fill: #8fb8e3; stroke: #1d4f80; stroke-width: 0.8; }
.overridden-span { fill: url(#hatch); fill-opacity: 1; stroke: #1d4f80; stroke-width: 0.8; stroke-dasharray: 3 2; }
.bar.retraction { fill: #fff; stroke: #b00; stroke-width: 1.2; stroke-dasharray: 2 2; }
.bar-label { font-size: 11px; fill: #000; }
.mark { stroke-width: 1; stroke-dasharray: 4 3; } .mark80 { stroke: #d80; } .mark100 { stroke: #b00; }
.use { fill: #3a7; } .use.over { fill: #c44; } .legend { font-size: 11px; fill: #444; }
@page { size: A4 landscape; margin: 8mm; }
@media print { body { margin: 0; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  svg.timeline { width: 100%; height: auto; }
  .tick-label, .legend { fill: #000; } }
"""
PALETTE = ["#7aa6d6", "#f0b35b", "#8cc08c", "#d98c8c", "#b39ddb", "#80cbc4"]


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><meta charset="utf-8"/>'
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>\n")


def _year_start(year: int) -> pendulum.DateTime:
    return pendulum.datetime(year, 1, 1, tz="UTC")


_HATCH = ('<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
          'patternTransform="rotate(45)"><rect width="6" height="6" fill="#e8eef5"/>'
          '<line x1="0" y1="0" x2="0" y2="6" stroke="#9aaabb" stroke-width="2"/></pattern></defs>')
"""Pale, and hatched so that it reads printed in black and white too, where a later record answers."""
_CHAR_WIDTH = 5.9
"""About the width of one character of a bar label (11 px system sans-serif), to shorten labels that would
run into the next bar of their row."""


Span = tuple[dt.datetime, dt.datetime | None]


def _overridden_spans(version: PolicyVersion, later: Sequence[PolicyVersion]) -> list[Span]:
    """The parts of `version`'s valid time that later-recorded versions cover (merged, in order): there a
    later record answers instead; elsewhere `version` still does."""
    spans: list[Span] = []
    for other in sorted(later, key=lambda w: w.valid_from):
        start = max(version.valid_from, other.valid_from)
        ends = [end for end in (version.valid_to, other.valid_to) if end is not None]
        stop = min(ends) if ends else None
        if stop is not None and stop <= start:
            continue
        if spans and (spans[-1][1] is None or start <= spans[-1][1]):
            last_start, last_stop = spans[-1]
            spans[-1] = (last_start, None if last_stop is None or stop is None else max(last_stop, stop))
        else:
            spans.append((start, stop))
    return spans


def timeline_html(timeline: Timeline, known_at: pendulum.DateTime) -> str:
    """Every key a lane on valid time; in a lane, one row per recorded date, so that later-recorded
    corrections sit over (below, and drawn later than) the beliefs they replaced. A bar is pale only over the
    valid time a later record covers; its label says what it decides; hover text gives sources."""
    versions = timeline.known_versions(micros(known_at))
    if not versions:
        first = timeline.versions[0].recorded_at if timeline.versions else None  # in recording order
        raise NothingKnownError(format_instant(known_at), format_instant(first) if first else "never")
    keys = timeline.keys(micros(known_at))
    first_year = min(v.valid_from for v in versions).year
    last_year = max([v.valid_to or v.valid_from for v in versions] + [v.recorded_at for v in versions]).year + 2
    left, width, row_height, lane_gap, top = 300, 1000, 18, 12, 64
    start, end = _year_start(first_year), _year_start(last_year)
    span = (end - start).total_seconds()

    def x(instant: dt.datetime | None) -> float:
        return left + width if instant is None else left + width * (instant - start).total_seconds() / span

    parts: list[str] = [_timeline_legend()]
    y = top
    for year in range(first_year, last_year + 1):
        px = x(_year_start(year))
        parts.append(f'<line class="tick" x1="{px:.1f}" x2="{px:.1f}" y1="{top - 14}" y2="{{height}}"/>'
                     f'<text class="tick-label" x="{px + 2:.1f}" y="{top - 4}">{year}</text>')
    for key in keys:
        key_versions = [v for v in versions if v.key == key]
        recorded = sorted({v.recorded_at for v in key_versions})
        lane_height = len(recorded) * row_height
        parts.append(f'<g class="lane" data-key="{escape(key)}">'
                     f'<rect class="lane-band" x="0" y="{y - 2}" width="{left + width + 40}" '
                     f'height="{lane_height + 4}"/>'
                     f'<text class="lane-label" x="4" y="{y + 13}">{escape(key)}</text>')
        ordered = sorted(key_versions, key=lambda v: (v.recorded_at, v.valid_from))
        for version in ordered:
            row = recorded.index(version.recorded_at)
            overriders = [w for w in key_versions if w.recorded_at > version.recorded_at and _overlaps(v=version, w=w)]
            spans = _overridden_spans(version, overriders)
            x1, x2 = x(version.valid_from), x(version.valid_to)
            whole = bool(spans) and spans[0][0] <= version.valid_from and spans[-1][1] == version.valid_to \
                and len(spans) == 1
            classes = ("bar" + (" overridden" if whole else " partly-overridden" if spans else "")
                       + ("" if version.in_force else " retraction"))
            title = (f"{version.id}\nvalid {version.interval_text()}\nrecorded {format_instant(version.recorded_at)}"
                     f"\n{describe_params(version)}\nsource: {source_line(version)}"
                     + "".join(f"\noverridden from {format_instant(w.recorded_at)} by {w.id}" for w in overriders))
            row_y = y + row * row_height
            parts.append(
                f'<rect class="{classes}" data-version="{escape(version.id)}" '
                f'data-valid-from="{format_instant(version.valid_from)}" '
                f'data-valid-to="{format_instant(version.valid_to) if version.valid_to else ""}" '
                f'data-recorded-at="{format_instant(version.recorded_at)}" data-row="{row}" '
                f'x="{x1:.1f}" y="{row_y}" width="{max(x2 - x1, 1.5):.1f}" height="{row_height - 3}">'
                f"<title>{escape(title)}</title></rect>")
            for span_from, span_to in spans:
                sx1, sx2 = x(span_from), x(span_to)
                parts.append(f'<rect class="overridden-span" data-overridden-in="{escape(version.id)}" '
                             f'data-from="{format_instant(span_from)}" '
                             f'data-to="{format_instant(span_to) if span_to else ""}" x="{sx1:.1f}" y="{row_y}" '
                             f'width="{max(sx2 - sx1, 1.5):.1f}" height="{row_height - 3}"/>')
            following = [x(w.valid_from) for w in ordered
                         if w.recorded_at == version.recorded_at and w.valid_from > version.valid_from]
            room = (min(following) if following else left + width + 200) - x1 - 6
            label = f"{version.recorded_at.to_date_string()} {short_description(version)}"
            fits = max(int(room // _CHAR_WIDTH), 0)
            if fits < len(label):
                short = version.recorded_at.format("YYYY-MM")[:fits]
                label = label[:max(fits - 1, 0)] + "\u2026" if fits > 10 else short
            if label:
                parts.append(f'<text class="bar-label" data-label-of="{escape(version.id)}" x="{x1 + 3:.1f}" '
                             f'y="{row_y + 11.5}">{escape(label)}</text>')
        parts.append("</g>")
        y += lane_height + lane_gap
    height = y + 10
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{left + width + 50}" '
           f'height="{height}" viewBox="0 0 {left + width + 50} {height}" role="img" aria-label="policy timeline">'
           + _HATCH
           + "".join(parts).replace("{height}", str(height)) + "</svg>")
    legend = ("<p>Valid time runs left to right. Each lane is a policy key; each row in a lane is what became "
              "known on one date, printed at the start of each bar with what the version decides. A later row "
              "answers instead of the rows above it over the valid time it covers: there, and only there, the "
              "earlier bar is pale and hatched. Hover a bar for its interval, parameters and source."
              f" As known at {escape(format_instant(known_at))}.</p>")
    return _page("policyhistory: policy timeline", f"<h1>Policy timeline</h1>{legend}{svg}")


def _timeline_legend() -> str:
    items = [("bar", "answers over this valid time (as known at the date asked)"),
             ("bar partly-overridden", "a later record answers over the hatched part"),
             ("bar retraction", "a retraction: not in force")]
    parts = ['<g class="legend-box">']
    px = 4.0
    for classes, text in items:
        parts.append(f'<rect class="{classes} legend-swatch" x="{px}" y="8" width="26" height="13"/>')
        if "partly" in classes:
            parts.append(f'<rect class="overridden-span" x="{px + 13}" y="8" width="13" height="13"/>')
        parts.append(f'<text class="legend" x="{px + 32}" y="19">{escape(text)}</text>')
        px += 40 + len(text) * 6.2
    parts.append("</g>")
    return "".join(parts)


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
                max_charts: int = 100) -> str:
    """The audit report of one rerate run: totals, changed calls, and each tenant's pools month by month."""
    body = [f"<h1>Re-rating audit report</h1><p>Rated with the policies as known at "
            f"{escape(format_instant(known_at))}.</p><h2>Totals</h2>",
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
