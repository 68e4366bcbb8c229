"""The command line: each command opens the store, makes one library call and prints what it returns."""

from __future__ import annotations

import contextlib
import csv
import gc
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import click
import tabulate

from ._catalog import bundled_catalog_path, catalog_files, read_catalog
from ._describe import catalog_markdown, describe_params, rating_record, source_text, version_record
from ._errors import CallNotFoundError, NotAStoreError, OutputIsInputError, PolicyHistoryError, StoreDamagedError
from ._explaining import explain_found, find_call
from ._inspect import inspect_file
from ._instant import format_instant, to_instant
from ._manifest import Manifest, chain_heads, file_record, new_run_id, store_digest
from ._merge import OutputBlock
from ._money import AUDITED_COLUMNS, Audit, run_summary_record, short_summary
from ._outputs import atomic_output, write_text
from ._outputs import refuse_clobbering as check_outputs
from ._pictures import report_html, timeline_html
from ._records import cells, encode
from ._rerate import Rerate
from ._results import SqliteResults, compare_run, read_run, write_parquet
from ._rows import json_refusal, unique_keys
from ._scratch_url import check_base, check_processes, is_url
from ._shards import CHANGED
from ._store import DEFAULT_BUSY_TIMEOUT, Store
from ._timeline import micros
from ._verify import parse_digest

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_DB = "policyhistory.db"
_SUMMARY_LINES_AT_ONCE = 10_000
_REPORT_CHANGED_CALLS = 1_000
"""Changed calls the audit report lists one by one (the first, in input order). Keeping every changed record
for it held a whole re-rating in memory (1.46 GB for 300,000 changed calls, against 0.2 GB without a
report) and wrote a page no browser opens; the report counts every change by kind, and the output has
every changed call."""


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
        safe = [[_terminal_safe(cell) for cell in row] for row in rows]
        click.echo(tabulate.tabulate(safe, headers=headers, tablefmt="simple", disable_numparse=True))


def busy_timeout() -> float:
    """POLICYHISTORY_BUSY_TIMEOUT: seconds a writer waits for another (default 30)."""
    try:
        return max(0.0, float(os.environ.get("POLICYHISTORY_BUSY_TIMEOUT", DEFAULT_BUSY_TIMEOUT)))
    except ValueError:
        raise click.UsageError("POLICYHISTORY_BUSY_TIMEOUT: expected a number of seconds") from None


def open_store(ctx: click.Context) -> Store:
    with library_errors():
        try:
            store = Store.open(ctx.obj["db"], busy_timeout=busy_timeout())
        except NotAStoreError as error:  # an unusable argument, not a library error
            raise click.BadParameter(str(error), param_hint="--db") from error
    ctx.call_on_close(store.close)
    return store


def refuse_clobbering(ctx: click.Context, outputs: Sequence[tuple[str, Path | None]], inputs: Sequence[Path]) -> None:
    """An output that is an input, the store or its -wal/-shm is a usage error, before any work."""
    try:
        check_outputs(outputs, inputs, Path(ctx.obj["db"]))
    except OutputIsInputError as error:
        raise click.BadParameter(str(error), param_hint=error.option) from error


_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _terminal_safe(value: Any) -> Any:
    """What a terminal would act on instead of showing (escape sequences in a call id, bidirectional
    overrides) shown as escapes: \\x1b, \\u202e."""
    if not isinstance(value, str) or value.isprintable():
        return value
    return "".join(c if c.isprintable() else _ESCAPES.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else
                                                                 f"\\u{ord(c):04x}") for c in value)


def instant_option(value: str | None, name: str) -> Any:
    if value is None:
        return None
    try:
        return to_instant(value, name)
    except PolicyHistoryError as error:
        raise click.BadParameter(str(error), param_hint=f"--{name.replace('_', '-')}") from error


class FileToWrite(click.Path):
    """A file a command writes, created if absent: its folder must exist and be writable. Checked when the
    arguments are read, so that a mistyped folder costs a usage error (exit 2), not a traceback after a run."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        folder = Path(os.fsdecode(path)).parent
        if not folder.is_dir():
            self.fail(f"the folder {click.format_filename(folder)!r} does not exist", param, ctx)
        if not os.access(folder, os.W_OK):
            self.fail(f"the folder {click.format_filename(folder)!r} is not writable", param, ctx)
        return path


class Workdir(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2 on only
    """--workdir: an existing writable folder, or an fsspec URL (file:///x, s3://bucket/prefix) whose protocol
    fsspec knows and whose base exists where that can be checked (file://). Checked when the arguments are read."""

    name = "folder or URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Path) or not is_url(str(value)):
            return click.Path(file_okay=False, exists=True, writable=True, path_type=Path).convert(value, param, ctx)
        try:
            check_base(str(value))
        except PolicyHistoryError as error:
            self.fail(str(error), param, ctx)
        return str(value)


@click.group()
@click.version_option(package_name="policyhistory")
@click.option("--db", envvar="POLICYHISTORY_DB", default=DEFAULT_DB, show_default=True,
              type=FileToWrite(),
              help="SQLite store; created with the bundled catalog on first use. Also POLICYHISTORY_DB.")
@click.pass_context
def cli(ctx: click.Context, db: Path) -> None:
    """The effective-dated, bitemporal history of Teams / Skype for Business PSTN billing policies."""
    ctx.obj = {"db": db}


def tenant_options(function: F) -> F:
    """--tenants / --licenses: tenant fact files (CSV or JSON), shared by the commands that rate calls."""
    function = click.option("--licenses", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                            help="Licenses file: tenant_id,valid_from,sku,usage_location,purchased,assigned.")(function)
    function = click.option("--tenants", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                            help="Tenants file: tenant_id,valid_from,country,communications_credits.")(function)
    return function


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
        call = json.loads(call_text, object_pairs_hook=unique_keys)
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
    with library_errors():
        if tenants or licenses:
            store.load_tenant_facts(tenants, licenses)
        rating = store.rate(call, as_of=instant_option(as_of, "as_of"), known_at=instant_option(known_at, "known_at"))
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


def _is_file(name: str) -> bool:
    try:
        return Path(name).is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


RESULT_SUFFIXES = {".db": "sqlite", ".sqlite": "sqlite", ".sqlite3": "sqlite", ".parquet": "parquet"}


@cli.command()
@click.argument("calls", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@tenant_options
@click.option("--tenant", help="Tenant of Teams-layout files, which have no tenant column (default: the only one).")
@click.option("--as-of", help="Rate every call under the rules of this instant (what-if; default: each call's start).")
@click.option("--known-at", help="Rate with what was known at this instant, e.g. the invoice date (default: now).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "table", "sqlite", "parquet"]), default=None,
              help="Output format: one JSON object per line (the default), CSV, an aligned table, a SQLite results "
                   "database or Parquet (both need --output; taken from its suffix .db/.sqlite or .parquet).")
@click.option("--output", type=FileToWrite(), help="Write here instead of stdout.")
@click.option("--workdir", type=Workdir(),
              help="Folder for the run's scratch files: its tenant shards (Parquet) and their records (default: "
                   "the system's temp), or an fsspec URL (file:///x, s3://bucket/prefix with s3fs). With --dask, "
                   "a folder or URL every Dask worker can read and write; memory:// works in one process only.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes that rate tenant shards (default: the machine's cores; 1: this process only).")
@click.option("--dask", "dask_address", envvar="POLICYHISTORY_DASK", metavar="ADDRESS",
              help="Rate the shards on the Dask cluster whose scheduler is here (tcp://HOST:8786). Also "
                   "POLICYHISTORY_DASK. Needs: pip install 'policyhistory[dask]'.")
@click.option("--report", type=FileToWrite(),
              help="Also write the audit report here: self-contained HTML with the manifest, totals, money, changed "
                   "calls, rejected rows by reason and pools.")
@click.option("--changed-only", is_flag=True,
              help="Write only the changed calls (and rejected rows); the summary still counts every row.")
@click.option("--summary-json", type=FileToWrite(),
              help="Write the whole summary (every pool-month, money per tenant and month, the manifest) as JSON.")
@click.option("--replay", nargs=2, type=(click.Path(exists=True, dir_okay=False, path_type=Path), str),
              metavar="RESULTS.db RUN_ID",
              help="Re-run a run recorded in a results database and say whether its records are identical.")
@click.pass_context
def rerate(ctx: click.Context, calls: tuple[Path, ...], tenants: Path | None, licenses: Path | None,
           tenant: str | None, as_of: str | None, known_at: str | None, fmt: str | None, output: Path | None,
           workdir: Path | str | None, workers: int | None, dask_address: str | None, report: Path | None,
           changed_only: bool, summary_json: Path | None, replay: tuple[Path, str] | None) -> None:
    """Re-rate call records (Teams PSTN usage export, Microsoft Graph call records, Direct Routing, or our
    layout; CSV, TSV, JSON or JSONL; a Calls.Export zip) side by side with
    what was billed. One output record per input row, in input order; a summary on stderr.

    Exit status: 0 every row rated, 3 some rows rejected (each with its reason), 2 unusable arguments or files.
    With --replay: 0 the records are identical, 1 they differ (with a count).
    """
    refuse_clobbering(ctx, [("--output", output), ("--report", report), ("--summary-json", summary_json)],
                      [*calls, *(path for path in (tenants, licenses) if path)])
    if isinstance(workdir, str):
        try:
            check_processes(workdir, workers=workers, dask=dask_address)
        except PolicyHistoryError as error:
            raise click.BadParameter(str(error), param_hint="--workdir") from error
    store = open_store(ctx)
    if replay is not None:
        _replay(store, *replay, workdir)
        return
    if not calls:
        raise click.UsageError("give the CALLS files to re-rate (or --replay RESULTS.db RUN_ID)")
    fmt = fmt or (RESULT_SUFFIXES.get(output.suffix.lower(), "jsonl") if output else "jsonl")
    if fmt in ("sqlite", "parquet") and output is None:
        raise click.UsageError(f"--format {fmt} writes a file: give --output")
    at = instant_option(as_of, "as_of")
    known = instant_option(known_at, "known_at") or store.now()
    try:
        if tenants or licenses:
            store.load_tenant_facts(tenants, licenses)
    except PolicyHistoryError as error:
        raise click.UsageError(str(error)) from error
    with library_errors():
        ran_on = json.dumps(store.digest(), sort_keys=True, separators=(",", ":"))
    run = Rerate(store, calls, known_at=known, as_of=at, default_tenant=tenant, workdir=workdir, workers=workers,
                 dask=dask_address or None)
    try:
        run.check()
    except PolicyHistoryError as error:
        raise click.UsageError(str(error)) from error
    started = store.now()
    run_id = new_run_id(started)
    facts = [(path, role) for path, role in ((tenants, "tenants"), (licenses, "licenses")) if path]
    manifest = Manifest.start(store, run_id=run_id, started_at=started, known_at=known, as_of=at, calls=calls,
                              facts=facts, store_path=str(ctx.obj["db"]),
                              options={"tenant": tenant, "format": fmt, "output": str(output) if output else None,
                                       "changed_only": changed_only, "known_at_given": known_at,
                                       "as_of_given": as_of})
    audit = Audit(store.rate_cards(), known_at=known, as_of=at, run_id=run_id)
    progress = _Progress() if sys.stderr.isatty() else None
    # A one-shot process: the catalog, tenant index and phonenumbers' metadata live until it exits, so keep
    # them out of the garbage collector's scans, and collect young objects less often: a run allocates a few
    # short-lived containers per row and makes no cycles (about 15 % of a large run). Not done in the library,
    # where a long-running program's objects must stay collectable.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    changed: list[dict[str, Any]] = []
    counted = [0]
    seen = [0]

    def noting(blocks: Iterator[OutputBlock]) -> Iterator[OutputBlock]:
        for block in blocks:
            flags = block.flags
            seen[0] += len(flags)
            if report and len(changed) < _REPORT_CHANGED_CALLS and CHANGED in flags:
                changed.extend(json.loads(text) for text, flag in zip(block.lines(), flags, strict=True)
                               if flag & CHANGED)
                del changed[_REPORT_CHANGED_CALLS:]
            if changed_only:  # changed or rejected
                kept = [(text, flag) for text, flag in zip(block.lines(), flags, strict=True) if flag]
                block = OutputBlock(bytes(flag for _, flag in kept), texts=[text for text, _ in kept])
            counted[0] += block.rows
            yield block

    try:
        results = SqliteResults(output, run_id) if fmt == "sqlite" and output else None
    except PolicyHistoryError as error:  # not SQLite, or another program's tables (our store, say)
        raise click.BadParameter(str(error), param_hint="--output") from error
    files = contextlib.ExitStack()  # a text output appears, renamed into place, only once it is complete
    try:
        blocks = noting(run.audited_blocks(audit, progress))
        records = (json.loads(text) for block in blocks for text in block.lines())
        if results is not None:
            results.write(records)
        elif fmt == "parquet" and output:
            def finished() -> dict[str, str]:  # once every record is written: the manifest's counts are known
                manifest.finish(run.summary, store.now(), counted[0])
                return {"policyhistory.manifest": json.dumps(manifest.record(), sort_keys=True)}

            # The Parquet output's own parts stay in a local folder (the system's temp for a URL workdir).
            write_parquet(output, records, metadata=finished, workdir=workdir if isinstance(workdir, Path) else None)
        else:
            out: IO[str] = files.enter_context(atomic_output(output, newline="")) if output else sys.stdout
            _write_records(fmt, blocks, out)
        if seen[0] != run.summary.rows:  # every input row comes out once: never exit 0 on fewer
            raise click.ClickException(f"wrote {seen[0]} of {run.summary.rows} input rows; the output is "
                                       "incomplete" + (f" and {output} was not written" if output else ""))
    except BaseException as error:
        files.__exit__(type(error), error, error.__traceback__)  # the temporary output is removed
        if results is not None:
            results.abort()
        if isinstance(error, PolicyHistoryError):
            raise click.UsageError(str(error)) from error
        raise
    files.close()  # complete: renamed into place
    manifest.finish(run.summary, store.now(), counted[0])
    if progress:
        progress.close()
    if results is not None:
        results.finish(manifest.record(), audit.record()["totals"])
        click.echo(f"results (run {run_id}) written to {output}", err=True)
    if summary_json:
        whole = {"manifest": manifest.record(), **run_summary_record(run.summary, audit)}
        write_text(summary_json, json.dumps(whole, indent=2, ensure_ascii=False) + "\n")
    # Written _SUMMARY_LINES_AT_ONCE lines at a time (click.echo flushes after each call).
    summary = short_summary(run.summary, audit, str(summary_json) if summary_json else None)
    for start in range(0, len(summary), _SUMMARY_LINES_AT_ONCE):
        click.echo("\n".join(summary[start:start + _SUMMARY_LINES_AT_ONCE]), err=True)
    click.echo(f"store digest: {ran_on}", err=True)
    if report:
        write_text(report, report_html(run.summary, changed, known, audit=audit, manifest=manifest.record(),
                                       digest=ran_on))
        click.echo(f"report written to {report}", err=True)
    if run.summary.rejected:
        sys.exit(3)


def _write_records(fmt: str, blocks: Iterator[OutputBlock], out: IO[str]) -> None:
    """Records (given as blocks of their JSON lines) as JSON Lines, CSV or an aligned table (what a terminal
    would act on shown as escapes)."""
    columns = AUDITED_COLUMNS
    records = (json.loads(text) for block in blocks for text in block.lines())
    if fmt == "jsonl":
        for block in blocks:
            block.write_to(out)
    elif fmt == "csv":
        # csv.writer and a list, not DictWriter and a merged dict: DictWriter checks each row's keys
        # against the header (1.13 against 0.98 s per 100,000 records).
        writer = csv.writer(out)
        writer.writerow(columns)
        for record in records:
            writer.writerow(cells(record, columns))
    else:
        shown = ("file", "line", "call_id", "start", "outcome", "billable_minutes", "pool_minutes",
                 "credit_minutes", "uncovered_minutes", "destination_country", "changed", "change", "error")
        rows = [[_terminal_safe(cell) for cell in cells({**record, "file": Path(record["file"]).name}, shown)]
                for record in records]
        out.write(tabulate.tabulate(rows, headers=shown, tablefmt="simple", disable_numparse=True) + "\n")


def _replay(store: Store, results_path: Path, run_id: str, workdir: Path | str | None) -> None:
    """Re-run a recorded run with its inputs, known_at, as_of and options; exit 0 identical, 1 different."""
    with library_errors():
        recorded, stored = read_run(results_path, run_id)
    inputs = recorded["inputs"]
    calls = []
    for item in inputs:
        path = Path(item["path"]) if Path(item["path"]).exists() else Path(item["absolute"])
        if not path.exists():
            raise click.ClickException(f"run {run_id} read {item['path']}, which no longer exists")
        now = file_record(path, item["role"])
        if now["sha256"] != item["sha256"]:
            click.echo(f"note: {item['path']} changed since the run (SHA-256 {item['sha256'][:12]}... then, "
                       f"{now['sha256'][:12]}... now)", err=True)
        if item["role"] == "calls":
            calls.append(path)
    heads = chain_heads(store)
    if store_digest(store) != recorded["store_digest"]:
        changed_tables = [name for name, head in heads.items() if recorded["chain_heads"].get(name) != head]
        click.echo(f"note: the store changed since the run ({', '.join(changed_tables) or 'its digest'}); rows "
                   "recorded after known_at do not change the answer, rows loaded since with an earlier date can",
                   err=True)
    options = recorded["options"]
    with library_errors():
        run = Rerate(store, calls, known_at=recorded["known_at"], as_of=recorded["as_of"],
                     default_tenant=options.get("tenant"), workdir=workdir)
        run.check()
        audit = Audit(store.rate_cards(), known_at=recorded["known_at"], as_of=recorded["as_of"], run_id=run_id)
        records = (record for record in audit.records(run.records())
                   if not options.get("changed_only") or record.get("changed") or record.get("outcome") == "rejected")
        compared, differing, described = compare_run(records, stored, run_id)
    if not differing:
        click.echo(f"identical: {compared} record(s) of run {run_id} re-rated to the same values")
        return
    click.echo(f"different: {differing} of {compared} record(s) of run {run_id} differ", err=True)
    for line in described:
        click.echo(f"  {line}", err=True)
    sys.exit(1)


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
    known = instant_option(known_at, "known_at") or store.now()
    billed_instant = instant_option(billed_at, "billed_at")
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


class _Progress:
    """The run's progress as click progress bars on stderr (only when it is a terminal), one per stage whose
    size is known (classifying numbers, writing records); while reading, the rows are not counted yet."""

    def __init__(self) -> None:
        self.stage = ""
        self.done = 0
        self.bar: Any = None

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if stage != self.stage:
            self.close()
            self.stage, self.done = stage, 0
            if total:
                self.bar = click.progressbar(length=total, label=f"{stage:11}", file=sys.stderr)
                self.bar.__enter__()
        if self.bar is not None and done > self.done:
            self.bar.update(done - self.done)
            self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@cli.command()
@click.option("--output", required=True, type=FileToWrite(),
              help="The HTML file to write (self-contained: inline SVG, no network).")
@click.option("--known-at", help="Draw what was known at this instant (default: now).")
@click.pass_context
def timeline(ctx: click.Context, output: Path, known_at: str | None) -> None:
    """Draw every policy key as a lane on valid time, each version a bar, later corrections over the beliefs
    they replaced, hover text with sources."""
    refuse_clobbering(ctx, [("--output", output)], [])
    store = open_store(ctx)
    known = instant_option(known_at, "known_at") or store.now()
    with library_errors():
        page = timeline_html(store.timeline, known)
    write_text(output, page)
    keys = len(store.timeline.keys(micros(known)))
    click.echo(f"timeline of {keys} policy keys known at {format_instant(known)} written to {output}")


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
