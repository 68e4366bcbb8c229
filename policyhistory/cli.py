"""The command line: each command opens the store, makes one library call and prints what it returns.
`rerate` is _cli_rerate's; the commands that read the policy history are _cli_history's."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from ._calls import call_from_mapping
from ._catalog import bundled_catalog_path, catalog_files, read_catalog
from ._cli_common import (
    DEFAULT_DB,
    FileToWrite,
    _is_file,
    busy_timeout,
    emit,
    instant_option,
    known_at_option,
    library_errors,
    open_store,
    output_options,
    refuse_clobbering,
    tenant_options,
)
from ._cli_history import diff, history, policies, timeline
from ._cli_rerate import rerate
from ._describe import catalog_markdown, rating_record
from ._errors import CallNotFoundError, NotAStoreError, PolicyHistoryError, StoreDamagedError
from ._explaining import explain_found, find_call
from ._inspect import inspect_file
from ._outputs import write_text
from ._records import encode
from ._rows import json_refusal, loads_as_written
from ._store import Store
from ._verify import parse_digest


@click.group()
@click.version_option(package_name="policyhistory")
@click.option("--db", envvar="POLICYHISTORY_DB", default=DEFAULT_DB, show_default=True,
              type=FileToWrite(),
              help="SQLite store; created with the bundled catalog on first use. Also POLICYHISTORY_DB.")
@click.pass_context
def cli(ctx: click.Context, db: Path) -> None:
    """The effective-dated, bitemporal history of Teams / Skype for Business PSTN billing policies."""
    ctx.obj = {"db": db}


for _command in (rerate, policies, history, diff, timeline):
    cli.add_command(_command)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@tenant_options
@click.option("--rates", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Rate card file: valid_from,valid_to,recorded_at,destination_country,number_type,per_minute,"
                   "connection_fee,currency,source.")
@click.pass_context
def load(ctx: click.Context, paths: tuple[Path, ...], tenants: Path | None, licenses: Path | None,
         rates: Path | None) -> None:
    """Append catalog files (TOML) or folders, tenant facts with --tenants/--licenses (CSV or JSON), or a
    rate card with --rates.

    With none, loads the bundled catalog. All or nothing: a file with any problem changes nothing, and
    every problem is listed with its file, line and field.
    """
    store = open_store(ctx)
    with library_errors():
        # Everything one command loads (catalog, tenant facts, rate card): one transaction, or nothing.
        report = store.load_all(paths, tenants, licenses, rates) if tenants or licenses or rates else store.load(paths)
    click.echo(f"added {len(report.added)} record(s), {len(report.unchanged)} already stored")
    for label in report.added:
        click.echo(f"  + {label}")


@cli.command()
@click.option("--call", "call_text", required=True,
              help="The call as JSON, or a file holding it (FILE or @FILE; @- for standard input).")
@tenant_options
@click.option("--as-of", help="Rate under the rules of this instant instead of the call's start (what-if).")
@click.option("--known-at", help="Rate with what was known at this instant (default: now).")
@output_options
@click.pass_context
def rate(ctx: click.Context, call_text: str, tenants: Path | None, licenses: Path | None, as_of: str | None,
         known_at: str | None, fmt: str) -> None:
    """Rate one call given as JSON and print the rating with its trace.

    Tenant facts come from the store, after loading any --tenants/--licenses given.
    """
    store = open_store(ctx)
    if call_text.startswith("@") or (not call_text.lstrip().startswith("{") and _is_file(call_text)):
        name = call_text.removeprefix("@")
        try:
            call_text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError, ValueError) as error:
            why = error.strerror if isinstance(error, OSError) and error.strerror else "not UTF-8 text" \
                if isinstance(error, UnicodeDecodeError) else str(error)
            raise click.BadParameter(f"cannot read {name[:200]}: {why}", param_hint="--call") from error
    try:
        call = loads_as_written(call_text)  # numbers as their text, as in a call file
    except json.JSONDecodeError as error:
        if not call_text.lstrip().startswith(("{", "[", '"')) and "\n" not in call_text.strip():
            raise click.BadParameter(f"no such file: {call_text[:200]!r} (and not JSON either: give the call as "
                                     "a JSON object, or FILE / @FILE)", param_hint="--call") from error
        raise click.BadParameter(f"not valid JSON: {error.msg} (line {error.lineno})", param_hint="--call") from error
    except (ValueError, RecursionError) as error:
        raise click.BadParameter(f"not readable JSON: {json_refusal(error)}", param_hint="--call") from None
    if not isinstance(call, dict):
        raise click.BadParameter(f"expected a JSON object of the call's fields, got {type(call).__name__} "
                                 f"{call_text.strip()[:40]!r}", param_hint="--call")
    at = instant_option(as_of, "as_of")
    known = known_at_option(known_at, store) if known_at else None
    try:
        call = call_from_mapping(call)
    except PolicyHistoryError as error:
        raise click.BadParameter(str(error), param_hint="--call") from error
    with library_errors():
        if tenants or licenses:
            store.load_tenant_facts(tenants, licenses)
        rating = store.rate(call, as_of=at, known_at=known)
    record = rating_record(rating)
    if fmt == "json":
        click.echo(encode(record, pretty=True))
        return
    # Lists as the table shows them elsewhere: comma-separated, "-" when empty (not Python's ['a', 'b']).
    summary = [(name, (", ".join(map(str, value)) or "-") if isinstance(value, list) else value)
               for name, value in record.items() if name != "trace"]
    emit(fmt, record, summary, ("field", "value"))
    click.echo("")
    emit(fmt, record, [(s.rule, s.policy_version or "-", s.fact, s.decision) for s in rating.trace],
         ("rule", "policy version", "fact", "decision"))


@cli.command("inspect")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="JSON for programs.")
def inspect_command(path: Path, as_json: bool) -> None:
    """What a call file holds, before any rating: the layout detected, the columns used and ignored, the key,
    the date range, tenants, call types, capabilities and carriers counted, and which rows will be rejected
    and why. Needs no store. Exit 2 for a file no layout reads (naming the columns expected)."""
    try:
        found = inspect_file(path)
    except PolicyHistoryError as error:
        raise click.UsageError(str(error)) from error
    if as_json:
        click.echo(json.dumps(found.record(), indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(found.lines()))


@cli.command()
@click.argument("call_id")
@click.option("--calls", "calls", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Call files holding the call and the earlier calls of its month (repeatable).")
@tenant_options
@click.option("--tenant", help="Tenant of Teams-layout files (default: the only one).")
@click.option("--known-at", help="Explain with what was known at this instant (default: now).")
@click.option("--billed-at", help="Also rate as known at this instant (the billing date) and say what differs.")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs.")
@click.pass_context
def explain(ctx: click.Context, call_id: str, calls: tuple[Path, ...], tenants: Path | None, licenses: Path | None,
            tenant: str | None, known_at: str | None, billed_at: str | None, as_json: bool) -> None:
    """Explain one call in plain language: its facts, each deciding policy version with its source, its pool
    (capacity, basis, use before and after, counting the earlier calls of the month), outcome and minutes.

    With --billed-at, or when the input carries what was billed, it is also rated as known when billed and
    the answer says what differs and why. Without --billed-at the billing date is taken as the first day of
    the month after the call (the usual invoice date).
    """
    store = open_store(ctx)
    known = known_at_option(known_at, store)
    billed_instant = known_at_option(billed_at, store, "billed_at") if billed_at else None
    try:
        if tenants or licenses:
            store.load_tenant_facts(tenants, licenses)
        found = find_call(store, calls, call_id, known_at=known, tenant=tenant)
    except CallNotFoundError as error:
        raise click.ClickException(str(error)) from error
    except PolicyHistoryError as error:
        raise click.UsageError(str(error)) from error
    with library_errors():
        explained = explain_found(store, found, known_at=known, billed_at=billed_instant)
    if as_json:
        click.echo(encode(explained.record(), pretty=True))
    else:
        click.echo(explained.text())


@cli.command()
@click.option("--digest", "digest_text", metavar="FILE_OR_TEXT",
              help="A digest `policyhistory digest` printed (its JSON, or a file holding it): also prove that the "
                   "store still holds exactly that history, with only appends since.")
@click.pass_context
def verify(ctx: click.Context, digest_text: str | None) -> None:
    """Check the file, recompute the hash chain of every append-only table and the heads the store recorded;
    exit 1 naming the first thing that does not match (a damaged store is a verdict too)."""
    anchored = None
    if digest_text is not None:
        anchored = digest_text
        if not digest_text.lstrip().startswith("{"):
            try:
                anchored = Path(digest_text).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError, ValueError) as error:
                why = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
                raise click.BadParameter(f"cannot read {digest_text[:200]}: {why}", param_hint="--digest") from None
        try:
            parse_digest(anchored)
        except PolicyHistoryError as error:
            raise click.BadParameter(str(error), param_hint="--digest") from None
    try:  # an existing store is only read: an empty one is not given the bundled catalog
        store = Store.open(ctx.obj["db"], busy_timeout=busy_timeout(), bundled=not Path(ctx.obj["db"]).exists())
    except (NotAStoreError, StoreDamagedError) as error:
        click.echo(f"DAMAGED: {error}", err=True)
        sys.exit(1)
    ctx.call_on_close(store.close)
    with library_errors():
        report = store.verify(anchored)
    counted = ", ".join(f"{count} {table} rows" for table, count in report.rows_checked.items())
    if report.first_break is None:
        anchor = " and the digest's history is intact" if anchored else ""
        click.echo(f"ok: {counted} checked, every hash matches{anchor}")
        return
    broken = report.first_break
    where = f" row {broken.seq}" if broken.seq else ""
    record = f" ({broken.record_id})" if broken.record_id else ""
    click.echo(f"TAMPERED: {broken.table}{where}{record}: {broken.reason}", err=True)
    sys.exit(1)


@cli.command()
@click.pass_context
def digest(ctx: click.Context) -> None:
    """Print the head of every chain (rows, last hash), one sha256 over them and the time, as one line of
    JSON: keep it outside the store, and `verify --digest` proves later that the history is still there."""
    store = open_store(ctx)
    with library_errors():
        click.echo(json.dumps(store.digest(), sort_keys=True, separators=(",", ":")))


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--output", type=FileToWrite(), help="Write to this file.")
@click.pass_context
def catalog(ctx: click.Context, paths: tuple[Path, ...], output: Path | None) -> None:
    """List catalog files (default: the bundled catalog) as Markdown, the way policies/README.md shows them."""
    chosen = list(paths) or [bundled_catalog_path()]
    refuse_clobbering(ctx, [("--output", output)], catalog_files(chosen))
    with library_errors():
        located = read_catalog(chosen)
    text = catalog_markdown([item.version for item in located])
    if output is None:
        click.echo(text)
    else:
        write_text(output, text + "\n")


def _db_after_the_command(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.obj["db"] = value


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs a token.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="uvicorn worker processes (each with its own store connection and job thread).")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File holding the bearer token the write routes need (or POLICYHISTORY_TOKEN).")
@click.option("--max-batch", default=10_000, show_default=True, type=click.IntRange(1),
              help="Calls one POST /v1/rate/batch may carry.")
@click.option("--max-upload", default=1 << 30, show_default=True, type=click.IntRange(1),
              help="Bytes one POST /v1/jobs upload may carry.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, token_file: Path | None, max_batch: int,
          max_upload: int) -> None:
    """Serve the HTTP API (under /v1, OpenAPI at /schema) and the dispute pages over the store, with uvicorn."""
    from .service import serve as service

    token = os.environ.get("POLICYHISTORY_TOKEN")
    if token_file:
        lines = token_file.read_text(encoding="utf-8").strip().splitlines()
        token = lines[0].strip() if lines else None
    settings = service.Settings(db=Path(ctx.obj["db"]).resolve(), token=token or None, max_batch=max_batch,
                                max_upload_bytes=max_upload)
    try:
        service.check(settings, host)
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    open_store(ctx).close()  # an unusable --db is refused here, before the server starts
    click.echo(f"policyhistory serve: http://{host}:{port}/ (API under /v1, OpenAPI at /schema), store "
               f"{settings.db}, {workers} worker(s); Ctrl-C stops it", err=True)
    service.run(settings, host, port, workers)


# `policyhistory rerate ... --db a.db` as well as `policyhistory --db a.db rerate ...`
for _command in cli.commands.values():
    if not any("--db" in param.opts for param in _command.params):
        _command.params.append(click.Option(["--db"], type=FileToWrite(), expose_value=False,
                                            callback=_db_after_the_command,
                                            help="The store, as before the command (see policyhistory --help)."))


if __name__ == "__main__":  # pragma: no cover
    cli()
