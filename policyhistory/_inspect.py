"""`policyhistory inspect FILE`: what a call file holds and how it will be read, before any rating.

An administrator's first question about a new export: which layout was detected, which columns are used and
which ignored, the key, the date range, the tenants, the call types, capabilities and carriers counted, and
which rows will be rejected and why. Reads the file once; rates nothing and needs no store.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import attrs

from ._calls import Call, classify_destination
from ._errors import InstantParseError, InstantRangeError, PolicyHistoryError, UnreadableRowError
from ._instant import format_instant
from ._layouts import LayoutReader, UnknownLayoutError, detect_layout, in_file_terms, layout_class, require_columns
from ._rows import check_text, read_table, zip_member

LAYOUT_TITLES = {
    "teams": "Teams PSTN usage report export",
    "graph": "Microsoft Graph call records (getPstnCalls rows)",
    "graph_direct_routing": "Microsoft Graph Direct Routing calls (getDirectRoutingCalls rows)",
    "direct_routing": "Teams Direct Routing export",
    "own": "policyhistory's own layout",
}
KEY_COLUMNS = {"teams": "UsageId", "graph": "id", "graph_direct_routing": "id", "direct_routing": "Correlation ID",
               "own": "call_id (usage_id where given)"}
_EXAMPLES = 5
"""Rejected rows shown one by one per reason."""


@attrs.frozen
class Inspection:
    """What `inspect` found in one call file."""

    file: str
    form: str
    layout: str
    layout_title: str
    key: str
    columns_used: tuple[str, ...]
    columns_ignored: tuple[str, ...]
    rows: int
    readable: int
    first_start: str | None
    last_start: str | None
    tenants: dict[str, int]
    call_types: dict[str, int]
    capabilities: dict[str, int]
    carriers: dict[str, int]
    duplicate_keys: int
    rejected: dict[str, int]
    """Rows that will be rejected, counted by reason."""
    examples: tuple[tuple[int, str], ...]
    """(line, reason) of the first rows rejected for each reason."""
    notes: tuple[str, ...]

    def record(self) -> dict[str, Any]:
        return attrs.asdict(self, recurse=True, value_serializer=lambda _, __, v: list(v) if isinstance(v, tuple)
                            else v)

    def lines(self) -> list[str]:
        # Tenants are counted from the readable rows: where none is readable, that is why none is counted.
        tenants = ", ".join(f"{t} ({n})" for t, n in self.tenants.items()) or (
            "none counted (no row is readable)" if self.rows and not self.readable else
            "none in the file: give --tenant, or the store's only tenant is taken")
        lines = [
            f"file: {self.file} ({self.form})",
            f"layout: {self.layout_title} [{self.layout}]",
            f"key: {self.key}",
            f"columns used: {', '.join(self.columns_used) or 'none'}",
            f"columns ignored: {', '.join(self.columns_ignored) or 'none'}",
            f"rows: {self.rows}, readable {self.readable}, to be rejected {self.rows - self.readable}",
            f"start: {self.first_start or '-'} to {self.last_start or '-'}",
            f"tenants: {tenants}",
            "call types: " + (", ".join(f"{k} {v}" for k, v in self.call_types.items()) or "none"),
            "capabilities: " + (", ".join(f"{k} {v}" for k, v in self.capabilities.items()) or "none"),
            "carriers: " + (", ".join(f"{k} {v}" for k, v in self.carriers.items()) or "none"),
        ]
        if self.duplicate_keys:
            lines.append(f"duplicate keys: {self.duplicate_keys} row(s) repeat a key seen before (rejected when rated)")
        if self.rejected:
            lines.append("to be rejected (reason: rows):")
            lines += [f"  {reason}: {count}" for reason, count in self.rejected.items()]
            lines.append("first rejected rows (line: reason):")
            lines += [f"  {line}: {reason}" for line, reason in self.examples]
        lines += [f"note: {note}" for note in self.notes]
        return lines


def inspect_file(path: str | Path) -> Inspection:
    """Read `path` as `rerate` would, and say what it holds (see the module). A file no layout reads, or one
    that is not text, raises the same error `rerate` refuses it with."""
    path = Path(path)
    check_text(path)
    columns, rows = read_table(path)
    member = zip_member(path)
    notes: list[str] = []
    reader: LayoutReader | None = None
    layout = ""
    count = readable = duplicates = 0
    first: str | None = None
    last: str | None = None
    tenants: Counter[str] = Counter()
    call_types: Counter[str] = Counter()
    capabilities: Counter[str] = Counter()
    carriers: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    examples: list[tuple[int, str]] = []
    keys: set[str] = set()
    names: list[str] = list(columns or [])
    with_names: set[str] = set()
    for line, raw in rows:
        count += 1
        try:
            if isinstance(raw, dict) and "__error__" in raw:
                raise UnreadableRowError(raw["__error__"])
            if reader is None:
                head = columns if columns is not None else raw
                if not isinstance(head, (list, dict)):
                    raise UnreadableRowError("not a JSON object of the layout's fields")
                layout = detect_layout(head)
                if columns is not None:
                    require_columns(layout, columns)
                cls = layout_class(layout)
                reader = cls(columns) if columns is not None else cls()
            if isinstance(raw, dict):
                with_names.update(str(name) for name in raw)
            elif columns is None:
                raise UnreadableRowError("not a JSON object of the layout's fields")
            row = reader.call_row(reader.values(raw), "(tenant)" if reader.needs_tenant else None)
            fields = dict(row.fields)
            call = Call(**fields)
            classify_destination(call.destination)
        except UnknownLayoutError:
            raise
        except PolicyHistoryError as error:
            reason = _reason(error, reader, raw)
            if rejected[reason] < _EXAMPLES:
                examples.append((line, in_file_terms(error, reader, raw)))
            rejected[reason] += 1
            continue
        readable += 1
        start = format_instant(call.start)
        first = start if first is None or start < first else first
        last = start if last is None or start > last else last
        if not reader.needs_tenant:
            tenants[call.tenant_id] += 1
        raw_type = fields.get("call_type")
        call_types[str(raw_type)] += 1
        if row.capability:
            capabilities[row.capability] += 1
        carriers[call.carrier or "microsoft"] += 1
        if call.key in keys:
            duplicates += 1
        keys.add(call.key)
    if reader is None:
        layout = detect_layout(columns) if columns is not None else ""
    if columns is None:
        names = sorted(with_names)
    known = set(reader.names) if reader is not None else set()
    if layout == "direct_routing" and reader is not None:
        known = {name for name in names if name.strip().lower() in _direct_routing_aliases()}
    used = tuple(name for name in names if name in known)
    ignored = tuple(name for name in names if name not in known)
    form = _form(path, columns, member)
    next_link = _next_link(path, columns)
    if next_link:
        notes.append(f"the Graph response has @odata.nextLink: more rows wait on further pages ({next_link[:80]}"
                     f"{'...' if len(next_link) > 80 else ''}); fetch them and give each page")
    if reader is not None and reader.needs_tenant:
        notes.append("the layout has no tenant column: rerate takes --tenant, or the store's only tenant")
    return Inspection(str(path), form, layout, LAYOUT_TITLES.get(layout, layout), KEY_COLUMNS.get(layout, ""),
                      used, ignored, count, readable, first, last, dict(tenants.most_common()),
                      dict(call_types.most_common()), dict(capabilities.most_common()), dict(carriers.most_common()),
                      duplicates, dict(rejected.most_common()), tuple(examples), tuple(notes))


def _reason(error: PolicyHistoryError, reader: LayoutReader | None, raw: object = None) -> str:
    """A rejection's reason without its value, so that rows rejected alike are counted together; the file's
    column where the layout names the field otherwise (as rerate's reasons do)."""
    field = getattr(error, "field", None)
    expected = getattr(error, "expected", None)
    if isinstance(error, UnreadableRowError):
        return f"unreadable row: {error.why.split(':')[0]}"
    if isinstance(error, InstantParseError) and not isinstance(error, InstantRangeError):
        expected = "an ISO 8601 instant with offset, a date, or an aware datetime"
    if field and expected:
        column = reader.column_of(field, raw) if reader is not None else None
        return f"column {column!r} ({field}): expected {expected}" if column else \
            f"field {field!r}: expected {expected}"
    return type(error).__name__


def _direct_routing_aliases() -> set[str]:
    from ._graph import _DIRECT_ROUTING_ALIASES

    return {alias for aliases in _DIRECT_ROUTING_ALIASES.values() for alias in aliases}


def _form(path: Path, columns: list[str] | None, member: str | None) -> str:
    inside = f"{member} inside a zip archive, " if member else ""
    if columns is not None:
        return f"{inside}CSV"
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return f"{inside}JSON Lines"
    with path.open(encoding="utf-8-sig") as handle:
        first = handle.readline().strip()
    if first.startswith("["):
        return "a JSON array"
    try:
        json.loads(first)
    except ValueError:
        return "one JSON document (a Graph response, or one record)"
    return "JSON Lines"


def _next_link(path: Path, columns: list[str] | None) -> str | None:
    if columns is not None or path.suffix.lower() in (".jsonl", ".ndjson"):
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (ValueError, OSError):
        return None
    link = document.get("@odata.nextLink") if isinstance(document, dict) else None
    return str(link) if link else None
