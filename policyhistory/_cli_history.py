"""The commands that read the policy history: `policies` (the set in force at an instant, as known at
another), `history` (every version of a key and what overrides it), `diff` (what changed between two valid
or two knowledge dates) and `timeline` (all of it drawn as an HTML page)."""

from __future__ import annotations

from pathlib import Path

import click

from ._cli_common import (
    FileToWrite,
    emit,
    instant_option,
    known_at_option,
    library_errors,
    open_store,
    output_options,
    refuse_clobbering,
)
from ._describe import describe_params, source_text, version_record
from ._instant import format_instant
from ._outputs import write_text
from ._pictures import timeline_html
from ._timeline import micros


@click.command()
@click.option("--as-of", required=True, help="Instant or date (UTC midnight) at which the rules are asked.")
@click.option("--known-at", help="What was known at this instant or date (default: now).")
@output_options
@click.pass_context
def policies(ctx: click.Context, as_of: str, known_at: str | None, fmt: str) -> None:
    """The policy versions in force at --as-of, as known at --known-at."""
    store = open_store(ctx)
    at = instant_option(as_of, "as_of")
    known = known_at_option(known_at, store)
    with library_errors():
        policy_set = store.policies(at, known)
    records = {"as_of": format_instant(at), "known_at": format_instant(known),
               "policies": [version_record(version) for version in policy_set]}
    rows = [(v.key, v.id, v.interval_text(), format_instant(v.recorded_at), describe_params(v), source_text(v))
            for v in policy_set]
    if fmt == "table":
        click.echo(f"as of {format_instant(at)}, as known at {format_instant(known)}: {len(rows)} policies")
    emit(fmt, records, rows, ("key", "version", "valid", "recorded", "decides", "source"))


@click.command()
@click.argument("key")
@output_options
@click.pass_context
def history(ctx: click.Context, key: str, fmt: str) -> None:
    """Every version of KEY: valid interval, when it became known, what overrides it from when, its source."""
    store = open_store(ctx)
    with library_errors():
        entries = store.history(key)
    records = []
    rows = []
    for entry in entries:
        v = entry.version
        overrides = [
            {"by": o.by, "from_recorded_at": format_instant(o.from_recorded_at),
             "valid_from": format_instant(o.valid_from),
             "valid_to": format_instant(o.valid_to) if o.valid_to else None}
            for o in entry.overridden_by
        ]
        records.append({**version_record(v), "overridden_by": overrides})
        overridden = "; ".join(
            f"{o['by']} from {o['from_recorded_at']} over [{o['valid_from']}, {o['valid_to'] or 'open'})"
            for o in overrides
        ) or "-"
        rows.append((v.id, v.interval_text(), format_instant(v.recorded_at), describe_params(v), overridden,
                     source_text(v)))
    emit(fmt, records, rows, ("version", "valid", "recorded", "decides", "overridden by", "source"))



@click.command()
@click.option("--as-of", "as_of", multiple=True, help="Two valid dates to compare (or one, with two --known-at).")
@click.option("--known-at", "known_at", multiple=True,
              help="Two knowledge dates to compare (or one, with two --as-of).")
@output_options
@click.pass_context
def diff(ctx: click.Context, as_of: tuple[str, ...], known_at: tuple[str, ...], fmt: str) -> None:
    """Which policies appear, end or change parameters between two valid dates (--as-of A --as-of B) or two
    knowledge dates (--known-at A --known-at B, over all valid time unless one --as-of is given), with sources.
    """
    store = open_store(ctx)
    if len(as_of) == 2 and len(known_at) <= 1:
        axis, first, second, at = "as_of", as_of[0], as_of[1], (known_at or (None,))[0]
    elif len(known_at) == 2 and len(as_of) <= 1:
        axis, first, second, at = "known_at", known_at[0], known_at[1], (as_of or (None,))[0]
    else:
        raise click.UsageError("give two --as-of (and at most one --known-at) or two --known-at (and at most one "
                               "--as-of)")
    for name, value in ((axis, first), (axis, second)):
        instant_option(value, name)
    with library_errors():
        changes = store.diff(first, second, axis=axis, at=at)
    records = [{"key": c.key, "change": c.change,
                "valid_from": format_instant(c.valid_from) if c.valid_from else None,
                "valid_to": format_instant(c.valid_to) if c.valid_to else None,
                "before": version_record(c.before) if c.before else None,
                "after": version_record(c.after) if c.after else None} for c in changes]
    rows = [(c.key, c.change,
             f"[{format_instant(c.valid_from)}, {format_instant(c.valid_to) if c.valid_to else 'open'})"
             if c.valid_from else "",
             f"{c.before.id}: {describe_params(c.before)}" if c.before else "-",
             f"{c.after.id}: {describe_params(c.after)}" if c.after else "-",
             source_text(c.after) if c.after else source_text(c.before) if c.before else "") for c in changes]
    if fmt == "table":
        click.echo(f"{axis} {first} -> {second}: {len(rows)} change(s)")
    emit(fmt, records, rows, ("key", "change", "over valid time", "before", "after", "source"))


@click.command()
@click.option("--output", required=True, type=FileToWrite(),
              help="The HTML file to write (self-contained: inline SVG, no network).")
@click.option("--known-at", help="Draw what was known at this instant (default: now).")
@click.pass_context
def timeline(ctx: click.Context, output: Path, known_at: str | None) -> None:
    """Draw every policy key as a lane on valid time, each version a bar, later corrections over the beliefs
    they replaced, hover text with sources."""
    refuse_clobbering(ctx, [("--output", output)], [])
    store = open_store(ctx)
    known = known_at_option(known_at, store)
    with library_errors():
        page = timeline_html(store.timeline, known)
    write_text(output, page)
    keys = len(store.timeline.keys(micros(known)))
    click.echo(f"timeline of {keys} policy keys known at {format_instant(known)} written to {output}")

