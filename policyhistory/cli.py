"""The command line: each command opens the store, makes one library call and prints what it returns."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
import tabulate

from ._catalog import bundled_catalog_path, read_catalog
from ._describe import catalog_markdown, describe_params, source_text, version_record
from ._errors import PolicyHistoryError
from ._instant import format_instant, to_instant
from ._store import Store

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_DB = "policyhistory.db"


@contextlib.contextmanager
def library_errors() -> Iterator[None]:
    """A library error becomes a one-paragraph message and exit status 1, never a traceback."""
    try:
        yield
    except PolicyHistoryError as error:
        raise click.ClickException(str(error)) from error


def output_options(function: F) -> F:
    """--json / --table, shared by every command that prints records."""
    function = click.option("--table", "fmt", flag_value="table", default=True,
                            help="Aligned table for people (default).")(function)
    function = click.option("--json", "fmt", flag_value="json", help="JSON for programs.")(function)
    return function


def emit(fmt: str, records: Any, rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    if fmt == "json":
        click.echo(json.dumps(records, indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(tabulate.tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))


def open_store(ctx: click.Context) -> Store:
    with library_errors():
        store = Store.open(ctx.obj["db"])
    ctx.call_on_close(store.close)
    return store


def instant_option(value: str | None, name: str) -> Any:
    if value is None:
        return None
    try:
        return to_instant(value, name)
    except PolicyHistoryError as error:
        raise click.BadParameter(str(error), param_hint=f"--{name.replace('_', '-')}") from error


@click.group()
@click.version_option(package_name="policyhistory")
@click.option("--db", envvar="POLICYHISTORY_DB", default=DEFAULT_DB, show_default=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="SQLite store; created with the bundled catalog on first use. Also POLICYHISTORY_DB.")
@click.pass_context
def cli(ctx: click.Context, db: Path) -> None:
    """The effective-dated, bitemporal history of Teams / Skype for Business PSTN billing policies."""
    ctx.obj = {"db": db}


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.pass_context
def load(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Append catalog files (TOML) or folders of them; with no PATH, the bundled catalog.

    All or nothing: a file with any problem changes nothing, and every problem is listed.
    """
    store = open_store(ctx)
    with library_errors():
        report = store.load(paths)
    click.echo(f"added {len(report.added)} version(s), {len(report.unchanged)} already stored")
    for version_id in report.added:
        click.echo(f"  + {version_id}")


@cli.command()
@click.option("--as-of", required=True, help="Instant or date (UTC midnight) at which the rules are asked.")
@click.option("--known-at", help="What was known at this instant or date (default: now).")
@output_options
@click.pass_context
def policies(ctx: click.Context, as_of: str, known_at: str | None, fmt: str) -> None:
    """The policy versions in force at --as-of, as known at --known-at."""
    store = open_store(ctx)
    at = instant_option(as_of, "as_of")
    known = instant_option(known_at, "known_at") or store.now()
    with library_errors():
        policy_set = store.policies(at, known)
    records = {"as_of": format_instant(at), "known_at": format_instant(known),
               "policies": [version_record(version) for version in policy_set]}
    rows = [(v.key, v.id, v.interval_text(), format_instant(v.recorded_at), describe_params(v), source_text(v))
            for v in policy_set]
    if fmt == "table":
        click.echo(f"as of {format_instant(at)}, as known at {format_instant(known)}: {len(rows)} policies")
    emit(fmt, records, rows, ("key", "version", "valid", "recorded", "decides", "source"))


@cli.command()
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


@cli.command()
@click.pass_context
def verify(ctx: click.Context) -> None:
    """Recompute the hash chain of every append-only table; exit 1 naming the first row that does not match."""
    store = open_store(ctx)
    report = store.verify()
    counted = ", ".join(f"{count} {table} rows" for table, count in report.rows_checked.items())
    if report.first_break is None:
        click.echo(f"ok: {counted} checked, every hash matches")
        return
    broken = report.first_break
    click.echo(f"TAMPERED: {broken.table} row {broken.seq} ({broken.record_id}): {broken.reason}", err=True)
    sys.exit(1)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
def catalog(paths: tuple[Path, ...], output: Path | None) -> None:
    """List catalog files (default: the bundled catalog) as Markdown, the way policies/README.md shows them."""
    with library_errors():
        located = read_catalog(list(paths) or [bundled_catalog_path()])
    text = catalog_markdown([item.version for item in located])
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    cli()
