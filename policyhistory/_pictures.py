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


REPORT_STYLE = STYLE + """
.num { text-align: right; font-variant-numeric: tabular-nums; } .mono { font-family: ui-monospace, monospace; }
pre.mono, td.mono { white-space: pre-wrap; overflow-wrap: anywhere; }
.manifest th { background: #f4f4f4; font-weight: 600; } .manifest td { font-size: 12px; }
.rejected td { vertical-align: top; } .rejected div { font-size: 12px; }
.axis { stroke: #555; stroke-width: 1; fill: none; } .grid { stroke: #e4e4e4; fill: none; }
.axis-label { font-size: 11px; fill: #333; }
.use { fill: #2f8f5b; stroke: #1d5c3a; stroke-width: 0.5; } .use.over { fill: url(#hatch-over); stroke: #8b1a1a; }
.value { font-size: 9px; fill: #222; }
.empty { fill: none; stroke: #999; stroke-width: 0.75; stroke-dasharray: 2 2; }
.mark { stroke-width: 1.5; stroke-dasharray: 6 3; } .mark80 { stroke: #c87800; } .mark100 { stroke: #b00; }
.legend-box { font-size: 12px; margin: 6px 0 12px; } .legend-box svg { vertical-align: middle; margin: 0 4px 0 12px; }
.pool { break-inside: avoid; page-break-inside: avoid; }
@media print { * { -webkit-print-color-adjust: exact; print-color-adjust: exact; } h2 { break-after: avoid; } }
"""
_HATCH = ('<defs><pattern id="hatch-over" width="6" height="6" patternUnits="userSpaceOnUse" '
          'patternTransform="rotate(45)"><rect width="6" height="6" fill="#d9534f"/>'
          '<path d="M0 0V6" stroke="#7a1010" stroke-width="2.5"/></pattern></defs>')


def _month_axis(months: Iterable[str]) -> list[str]:
    from ._run_summary import month_axis

    return month_axis(months)


def pool_legend() -> str:
    """One legend for every pool chart: what each colour, pattern and line means (read in black and white too)."""
    def swatch(inner: str) -> str:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="26" height="14">{_HATCH}{inner}</svg>'

    return ('<div class="legend-box">'
            + swatch('<rect class="use" x="1" y="1" width="24" height="12"/>') + "minutes used, below capacity"
            + swatch('<rect class="use over" x="1" y="1" width="24" height="12"/>') + "at or over capacity (hatched)"
            + swatch('<rect class="empty" x="1" y="1" width="24" height="12"/>') + "month without calls"
            + swatch('<line class="mark mark80" x1="0" x2="26" y1="7" y2="7"/>') + "80 % of capacity (alert)"
            + swatch('<line class="mark mark100" x1="0" x2="26" y1="7" y2="7"/>') + "100 % of capacity"
            + "</div>")


def pool_chart(tenant: str, pool: str, counter: str, months: Mapping[str, tuple[int, int]]) -> str:
    """Use per month as a share of capacity on a continuous month axis (a month without calls is drawn as an
    empty outline, not left out), with a percent axis and dashed marks at 80 % and 100 %."""
    axis = _month_axis(months)
    left, height, top, plot_width = 48, 140, 12, 1080
    step = max(6.0, min(34.0, plot_width / max(len(axis), 1)))
    bar = max(4.0, step * 0.72)
    scale = max([150.0] + [100 * used / capacity for capacity, used in months.values() if capacity])
    every = 1 if len(axis) <= 24 else 3 if len(axis) <= 72 else 12

    def y(percent: float) -> float:
        return top + height * (1 - percent / scale)

    parts = [_HATCH]
    chart_width = left + len(axis) * step + 20
    for percent in range(0, int(scale) + 1, 50):
        # Grid and axes are paths: a chart's <line> elements are its 80 % and 100 % marks only.
        parts.append(f'<path class="grid" d="M{left} {y(percent):.1f}H{chart_width:.1f}"/><text class="axis-label" '
                     f'x="{left - 6}" y="{y(percent) + 4:.1f}" text-anchor="end">{percent} %</text>')
    for index, month in enumerate(axis):
        px = left + index * step + (step - bar) / 2
        if month in months:
            capacity, used = months[month]
            share = 100 * used / capacity if capacity else 0.0
            over = " over" if share >= 100 else ""
            parts.append(f'<rect class="use{over}" data-month="{month}" data-capacity="{capacity}" '
                         f'data-used="{used}" x="{px:.1f}" y="{y(share):.1f}" width="{bar:.1f}" '
                         f'height="{top + height - y(share):.1f}">'
                         f"<title>{month}: {used} of {capacity} min ({share:.0f} %)</title></rect>")
            if step >= 18:  # printed, a bar of 0.3 % is invisible: say its minutes above it
                parts.append(f'<text class="value" x="{px + bar / 2:.1f}" y="{y(share) - 3:.1f}" '
                             f'text-anchor="middle">{used}</text>')
        else:
            parts.append(f'<rect class="empty" data-month="{month}" data-empty="true" x="{px:.1f}" '
                         f'y="{top + height - 3}" width="{bar:.1f}" height="3"><title>{month}: no calls</title></rect>')
        if index % every == 0 or len(axis) == 1:
            label = month[2:] if every < 12 else month[:4]
            lx, ly = left + index * step + step / 2, top + height + 14
            parts.append(f'<text class="legend" x="{lx:.1f}" y="{ly}" text-anchor="middle">{label}</text>')
    parts.append(f'<path class="axis" d="M{left} {top}V{top + height}H{chart_width:.1f}"/>')
    for percent in (80, 100):
        parts.append(f'<line class="mark mark{percent}" data-percent="{percent}" x1="{left}" x2="{chart_width:.1f}" '
                     f'y1="{y(percent):.1f}" y2="{y(percent):.1f}"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="pool-chart" data-tenant="{escape(tenant)}" '
            f'data-pool="{escape(pool)}" width="{chart_width:.0f}" height="{top + height + 24}">{"".join(parts)}</svg>')


REPORT_TOTALS = 500
"""Tenant-months the report lists (those with the largest differences); --summary-json has every one."""


def report_html(summary: Any, changed: Sequence[Mapping[str, Any]], known_at: pendulum.DateTime,
                max_charts: int = 100, *, audit: Any = None, manifest: Mapping[str, Any] | None = None,
                digest: str | None = None) -> str:
    """The audit report of one rerate run (policyhistory/templates/audit_report.html.j2): the run's manifest,
    totals, money per currency and per tenant-month, the calls with the largest charge differences, changes
    by kind, changed calls, rejected rows by reason, implied-rate anomalies, and each tenant's pools month by
    month on a continuous axis; `digest`, the store's digest the run read (policyhistory verify --digest
    checks it later)."""
    import jinja2
    from markupsafe import Markup

    from ._money_values import decimal, money_text

    environment = jinja2.Environment(loader=jinja2.PackageLoader("policyhistory", "templates"), autoescape=True)
    charts: dict[tuple[str, str, str], dict[str, tuple[int, int]]] = {}
    for (tenant, pool, month, counter), use in sorted(summary.pools.items()):
        charts.setdefault((tenant, pool, counter), {})[month] = (use.capacity, use.used)
    drawn = [{"title": f"{tenant}: {pool} ({counter})", "svg": Markup(pool_chart(tenant, pool, counter, months)),
              "rows": [(m, c, u) for m, (c, u) in sorted(months.items())]}
             for (tenant, pool, counter), months in sorted(charts.items())[:max_charts]]
    money = None
    if audit is not None:
        totals = sorted(audit.totals.items())
        shown = totals
        if len(totals) > REPORT_TOTALS:
            shown = sorted(sorted(totals, key=lambda item: -abs(item[1].difference))[:REPORT_TOTALS])
        money = {
            "rate_card_entries": len(audit.rates),
            "by_currency": [(currency, _money_cells(t, money_text)) for currency, t in audit.by_currency().items()],
            "unpriced": sorted(audit.unpriced.items(), key=lambda item: -item[1])[:20],
            "totals": [{"tenant_id": tenant, "month": month, "currency": currency, **_money_cells(t, money_text)}
                       for (tenant, month, currency), t in shown],
            "totals_all": len(totals), "totals_cut": len(shown) < len(totals),
            "top": [{**call, **{name: money_text(decimal(call[name])) for name in
                                ("billed_charge", "charge", "charge_difference")}} for call in audit.top_changed()],
            "anomalies": audit.anomalies(),
        }
    return environment.get_template("audit_report.html.j2").render(
        style=REPORT_STYLE, known_at=format_instant(known_at),
        as_of=format_instant(summary.as_of) if getattr(summary, "as_of", None) else None, manifest=manifest,
        digest=digest,
        summary=summary, minutes=sorted(summary.minutes.items()), changes=list(summary.changes.items()),
        changed=[{**r, "file": str(r["file"]).rsplit("/", 1)[-1], "tenant_id": r.get("tenant_id", ""),
                  "change": r.get("change", "")} for r in changed],
        rejected=None if audit is None else audit.rejections.groups(), money=money,
        legend=Markup(pool_legend()), charts=drawn, charts_left=max(0, len(charts) - max_charts))


def _money_cells(totals: Any, text: Any) -> dict[str, Any]:
    return {"calls": totals.calls, "billed": text(totals.billed), "billed_calls": totals.billed_calls,
            "recomputed": text(totals.recomputed), "recomputed_calls": totals.recomputed_calls,
            "difference": text(totals.difference), "compared_calls": totals.compared_calls,
            "without_rate": totals.without_rate, "changed": totals.changed}
