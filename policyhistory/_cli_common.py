"""What the commands share: the store they open, errors turned into messages, the options and parameter
types several take, and how records are printed."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
import tabulate

from ._errors import NotAStoreError, OutputIsInputError, PolicyHistoryError
from ._instant import format_instant, to_instant
from ._outputs import refuse_clobbering as check_outputs
from ._scratch_url import check_base, is_url
from ._store import DEFAULT_BUSY_TIMEOUT, Store

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


def known_at_option(value: str | None, store: Store, name: str = "known_at") -> Any:
    """A --known-at (or --billed-at) instant, now when not given. One later than now is allowed (a run may be
    asked as of an invoice date to come) but said on stderr: the store knows only what is recorded by now, so
    the same question asked later may be answered differently."""
    known = instant_option(value, name)
    now = store.now()
    if known is None:
        return now
    if known > now:
        click.echo(f"warning: --{name.replace('_', '-')} {format_instant(known)} is later than now "
                   f"({format_instant(now)}): the answer is what the store knows now; what is recorded until "
                   "then may change it", err=True)
    return known


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



def tenant_options(function: F) -> F:
    """--tenants / --licenses: tenant fact files (CSV or JSON), shared by the commands that rate calls."""
    function = click.option("--licenses", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                            help="Licenses file: tenant_id,valid_from,sku,usage_location,purchased,assigned.")(function)
    function = click.option("--tenants", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                            help="Tenants file: tenant_id,valid_from,country,communications_credits.")(function)
    return function


def _is_file(name: str) -> bool:
    try:
        return Path(name).is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False
