"""The one output record of a rated (or rejected) call, and its one encoder.

`rate --json`, `explain --json` (its `rating`), `rerate` (JSON Lines, CSV, table; every worker count and Dask)
and `Rerate.records()` all build their records here, from a Rating or from what the pool ledger settled. The
fields, in order (RECORD_FIELDS; README "The output record"):

file, line (rows of a file) | call_id, tenant_id, start, call_type | outcome, billable_minutes, pool_minutes,
credit_minutes, uncovered_minutes | destination_country, number_type | pool (the pool's name), pool_capacity,
pool_used_before, pool_used_after | policy_versions, alerts, warnings | billed, changed, change (when the input
says what was billed) | error (a rejected row, outcome "rejected") | as_of, known_at, trace (one call).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from ._capability import outcome_agrees
from ._instant import format_instant
from ._ledger import Settled
from ._rating import PoolUse, Rating

RECORD_FIELDS = ("file", "line", "call_id", "usage_id", "tenant_id", "start", "call_type", "outcome",
                 "billable_minutes", "pool_minutes", "credit_minutes", "uncovered_minutes", "destination_country",
                 "number_type", "pool", "pool_capacity", "pool_used_before", "pool_used_after", "policy_versions",
                 "alerts", "warnings", "billed_outcome", "billed_minutes", "billed_charge", "billed_currency",
                 "billed_capability", "changed", "change", "error")
"""The flat columns of a record (CSV's header): `billed_outcome` is record["billed"]["outcome"]."""


def billed_text(billed: dict[str, Any]) -> str:
    parts = [billed["outcome"]] if billed["outcome"] else []
    if billed.get("minutes") is not None:
        parts.append(f"{billed['minutes']} credit min")
    if billed.get("charge") is not None:
        parts.append(f"charge {billed['charge']:g} {billed.get('currency') or ''}".rstrip())
    return ", ".join(parts)


def rating_text(outcome: str, pool_minutes: int, credit_minutes: int, uncovered_minutes: int) -> str:
    return (f"{outcome}, {pool_minutes} pool min, {credit_minutes} credit min"
            + (f", {uncovered_minutes} uncovered" if uncovered_minutes else ""))


def billed_change(billed: dict[str, Any], outcome: str, pool_minutes: int, credit_minutes: int,
                  uncovered_minutes: int) -> str:
    """'' when the rating agrees with what was billed (outcome, credit minutes, whether anything was
    charged, as far as the input says), else a line saying what was billed and what is now."""
    charge = billed.get("charge")
    changed = (not outcome_agrees(billed, outcome)
               or (billed.get("minutes") is not None and billed["minutes"] != credit_minutes)
               or (charge is not None and (charge > 0) != (credit_minutes > 0)))
    if not changed:
        return ""
    return f"billed {billed_text(billed)}; now {rating_text(outcome, pool_minutes, credit_minutes, uncovered_minutes)}"


def change_kind(billed: dict[str, Any], outcome: str) -> str:
    """A changed call's kind, for counting: the billed outcome, or where the input gives none (the Teams
    export) whether anything was charged or drawn on credits; then our outcome, and whether only the minutes
    or the charge differ."""
    was = billed.get("outcome")
    if not was:
        charged = (billed.get("charge") or 0) > 0 or (billed.get("minutes") or 0) > 0
        was = "charged" if charged else "nothing charged"
    return f"billed {was} -> now {outcome}" + (", other minutes or charge" if was == outcome else "")


def _record(head: dict[str, Any], call_type: str, outcome: str, minutes: int, pool_minutes: int,
            credit_minutes: int, uncovered: int, country: str, number_type: str, use: PoolUse | None,
            versions: Sequence[str], alerts: Sequence[str], warnings: Sequence[str],
            billed: dict[str, Any] | None) -> dict[str, Any]:
    record = {**head, "call_type": call_type, "outcome": outcome, "billable_minutes": minutes,
              "pool_minutes": pool_minutes, "credit_minutes": credit_minutes, "uncovered_minutes": uncovered,
              "destination_country": country, "number_type": number_type,
              "pool": None if use is None else use.key.pool,
              "pool_capacity": None if use is None else use.capacity,
              "pool_used_before": None if use is None else use.used_before,
              "pool_used_after": None if use is None else use.used_after,
              "policy_versions": list(versions), "alerts": list(alerts), "warnings": list(warnings)}
    if billed is not None:
        change = billed_change(billed, outcome, pool_minutes, credit_minutes, uncovered)
        record.update(billed=billed, changed=bool(change), change=change)
    return record


def settled_record(head: dict[str, Any], call_type: str, country: str, number_type: str, settled: Settled,
                   billed: dict[str, Any] | None) -> dict[str, Any]:
    """The record of a call the ledger settled; `head` holds file, line, call_id, tenant_id, start."""
    return _record(head, call_type, settled.outcome, settled.billable_minutes, settled.pool_minutes,
                   settled.credit_minutes, settled.uncovered_minutes, country, number_type, settled.use,
                   settled.versions, settled.alerts, settled.warnings, billed)


_PLAIN = re.compile(r"[ !#-\[\]-~]*").fullmatch
"""Printable ASCII without a quote or a backslash: JSON writes such a text between quotes, as it is."""
_LISTS: dict[tuple[str, ...], str] = {}


def _text(value: str) -> str:
    return f'"{value}"' if _PLAIN(value) else json.dumps(value)


def _texts(values: tuple[str, ...]) -> str:
    found = _LISTS.get(values)
    if found is None:
        if len(_LISTS) > 10_000:  # versions and warnings repeat; alerts name their minutes: keep it bounded
            _LISTS.clear()
        found = _LISTS[values] = json.dumps(list(values))
    return found


def settled_line(head: dict[str, Any], call_type: str, country: str, number_type: str, settled: Settled,
                 billed: dict[str, Any] | None) -> str:
    """`encode(settled_record(head, ...))` with the same arguments, written without building the record's
    dict (a re-rating writes millions): the same text, byte for byte (tests/test_engine.py checks that every
    line is json.dumps of its record). `head` (file, line, ids, start) and `billed` are encoded as they come,
    whatever fields they hold; the rating's fields in between are those of `_record`, in its order."""
    change = None if billed is None else billed_change(billed, settled.outcome, settled.pool_minutes,
                                                       settled.credit_minutes, settled.uncovered_minutes)
    return settled_text(_LINE(head)[:-1], call_type, country, number_type, settled,
                        None if billed is None else _LINE(billed), change) + "}"


def settled_text(head: str, call_type: str, country: str, number_type: str, settled: Settled,
                 billed: str | None, change: str | None, warnings: Sequence[str] | None = None) -> str:
    """settled_line's text without its closing brace, from the head's JSON text without its closing brace,
    billed's JSON text (None: nothing billed) and its change (billed_change); `warnings` in place of the
    settled call's (an audit's own warning added). The parts that repeat from call to call (the kind and
    outcome, the destination and pool, the versions and warnings) are written once each."""
    use = settled.use
    kind = _KINDS.get((call_type, settled.outcome))
    if kind is None:
        kind = _bounded(_KINDS)[(call_type, settled.outcome)] = (
            f', "call_type": {_text(call_type)}, "outcome": {_text(settled.outcome)}, "billable_minutes": ')
    pool_name = None if use is None else use.key.pool
    where = _WHERE.get((country, number_type, pool_name))
    if where is None:
        where = _bounded(_WHERE)[(country, number_type, pool_name)] = (
            f', "destination_country": {_text(country)}, "number_type": {_text(number_type)}, "pool": '
            + ('null, "pool_capacity": null, "pool_used_before": null, "pool_used_after": null' if pool_name is None
               else f'{_text(pool_name)}, "pool_capacity": '))
    given = settled.warnings if warnings is None else tuple(warnings)
    lists = _LISTED.get((settled.versions, settled.alerts, given))
    if lists is None:
        lists = (f', "policy_versions": {_texts(settled.versions)}, "alerts": {_texts(settled.alerts)}, '
                 f'"warnings": {_texts(given)}')
        if not settled.alerts:  # alerts name their minutes: they seldom repeat
            _bounded(_LISTED)[(settled.versions, settled.alerts, given)] = lists
    pool = "" if use is None else \
        f'{use.capacity}, "pool_used_before": {use.used_before}, "pool_used_after": {use.used_after}'
    text = (f'{head}{kind}{settled.billable_minutes}, "pool_minutes": {settled.pool_minutes}, '
            f'"credit_minutes": {settled.credit_minutes}, "uncovered_minutes": {settled.uncovered_minutes}'
            f'{where}{pool}{lists}')
    if billed is None:
        return text
    return f'{text}, "billed": {billed}, "changed": {"true" if change else "false"}, "change": {_text(change or "")}'


_KINDS: dict[tuple[str, str], str] = {}
_WHERE: dict[tuple[str, str, str | None], str] = {}
_LISTED: dict[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], str] = {}


def _bounded(cache: dict[Any, str]) -> dict[Any, str]:
    if len(cache) > 10_000:
        cache.clear()
    return cache


def rating_record(rating: Rating, billed: dict[str, Any] | None = None, *, trace: bool = True) -> dict[str, Any]:
    """The record of one rated call (rate --json, explain --json): the same fields as a re-rating's record,
    then the instants it was rated at and, with `trace`, the steps that decided it."""
    head: dict[str, Any] = {"call_id": rating.call_id}
    if rating.usage_id is not None:
        head["usage_id"] = rating.usage_id
    head["tenant_id"] = rating.tenant_id
    head["start"] = format_instant(rating.start) if rating.start is not None else None
    record = _record(head, rating.call_type, rating.outcome, rating.billable_minutes, rating.pool_minutes,
                     rating.credit_minutes, rating.uncovered_minutes, rating.destination_country,
                     rating.number_type, rating.pool, rating.policy_versions, rating.alerts, rating.warnings, billed)
    record["as_of"] = format_instant(rating.as_of) if rating.as_of is not None else None
    record["known_at"] = format_instant(rating.known_at) if rating.known_at is not None else None
    if trace:
        record["trace"] = [{"rule": step.rule, "policy_version": step.policy_version, "fact": step.fact,
                            "decision": step.decision} for step in rating.trace]
    return record


def rejected_record(head: dict[str, Any], error: Exception | str) -> dict[str, Any]:
    """A row that could not be rated: `head` (file, line, call_id, and tenant_id once it was read), the reason
    (an error, or its text)."""
    return {**head, "outcome": "rejected", "error": str(error)}


def encode(record: dict[str, Any], *, pretty: bool = False) -> str:
    """A record as JSON text: one line (JSON Lines, ASCII-safe), or indented for people (rate/explain --json)."""
    if pretty:
        return json.dumps(record, indent=2, ensure_ascii=False, default=str)
    return _LINE(record)


_LINE = json.JSONEncoder(default=str).encode


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return ";".join(str(item) for item in value)
    return "" if value is None else value


def cells(record: dict[str, Any], columns: Sequence[str] = RECORD_FIELDS) -> list[Any]:
    """A record's values under flat column names (CSV, the table): `billed_outcome` is record["billed"]["outcome"]."""
    billed = record.get("billed") or {}
    return [_cell(billed.get(column[7:]) if column.startswith("billed_") else record.get(column))
            for column in columns]
