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


REPORT_STYLE = STYLE + """
.num { text-align: right; font-variant-numeric: tabular-nums; } .mono { font-family: ui-monospace, monospace; }
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
    from ._money import month_axis

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
                max_charts: int = 100, *, audit: Any = None, manifest: Mapping[str, Any] | None = None) -> str:
    """The audit report of one rerate run (policyhistory/templates/audit_report.html.j2): the run's manifest,
    totals, money per currency and per tenant-month, the calls with the largest charge differences, changes
    by kind, changed calls, rejected rows by reason, implied-rate anomalies, and each tenant's pools month by
    month on a continuous axis."""
    import jinja2
    from markupsafe import Markup

    from ._money import decimal, money_text

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
