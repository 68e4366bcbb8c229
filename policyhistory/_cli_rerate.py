"""`policyhistory rerate`: the re-rating command, its output writers and its progress bars."""

from __future__ import annotations

import contextlib
import csv
import gc
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click
import tabulate

from ._cli_common import (
    FileToWrite,
    Workdir,
    _terminal_safe,
    instant_option,
    known_at_option,
    library_errors,
    open_store,
    refuse_clobbering,
    tenant_options,
)
from ._errors import PolicyHistoryError
from ._manifest import Manifest, chain_heads, file_record, new_run_id, store_digest
from ._merge import OutputBlock
from ._money import AUDITED_COLUMNS, Audit
from ._outputs import atomic_output, write_json, write_text
from ._pictures import report_html
from ._records import cells
from ._rerate import Rerate
from ._results import NotAResultsDatabaseError, SqliteResults, UnknownRunError, compare_run, read_run, write_parquet
from ._run_summary import run_summary_record, short_summary
from ._scratch_url import check_processes
from ._shards import CHANGED
from ._store import Store

_SUMMARY_LINES_AT_ONCE = 10_000
_REPORT_CHANGED_CALLS = 1_000
"""Changed calls the audit report lists one by one (the first, in input order). Keeping every changed record
for it held a whole re-rating in memory (1.46 GB for 300,000 changed calls, against 0.2 GB without a
report) and wrote a page no browser opens; the report counts every change by kind, and the output has
every changed call."""


RESULT_SUFFIXES = {".db": "sqlite", ".sqlite": "sqlite", ".sqlite3": "sqlite", ".parquet": "parquet"}


@click.command()
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
    known = known_at_option(known_at, store)
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
    for warning in run.warnings:
        click.echo(f"warning: {warning}", err=True)
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
        results.finish(manifest.record(), audit.totals_rows())
        click.echo(f"results (run {run_id}) written to {output}", err=True)
    if summary_json:
        whole = {"manifest": manifest.record(), **run_summary_record(run.summary, audit)}
        write_json(summary_json, whole)
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
    try:
        recorded, stored = read_run(results_path, run_id)
    except (NotAResultsDatabaseError, UnknownRunError) as error:  # the argument is unusable: exit 2
        raise click.BadParameter(str(error), param_hint="--replay") from error
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
