"""Money: each rated record's recomputed charge and its difference from the bill, and the totals finance uses.

`Audit.add(record)` is the one place where a run's output records get the audit fields (`charge`,
`charge_currency`, `charge_difference`, `known_at`, `run_id`): it is applied to each record as it streams out
of `Rerate.records()`, and counts what the summary, the report and the results database need on the way:

- charge: the call's credit minutes x the rate card's per-minute price + its connection fee, from the entry
  resolved at the rules' instant (`as_of`, else the call's start) as known at `known_at`; 0 for a call that
  takes no credit minute (nothing is charged, card or not); `null`, never 0, where a credit minute is taken
  and no entry prices the destination (with a warning when a rate card is loaded).
- charge_difference: billed charge minus the recomputed charge, where both are known and in one currency:
  positive means the call was over-charged (a refund is due), negative under-charged.
- implied rates: where the bill charged the call wholly to credits, its charge / the minutes charged (billed
  minutes where the input says, else our billable minutes); calls to one destination (country and number
  type) in one month and currency billed at different implied rates are anomalies.

Amounts are exact decimals (`decimal.Decimal`) throughout, written to JSON as numbers.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

import attrs
import pendulum

from ._instant import format_instant, to_instant
from ._ratecards import RateCard
from ._records import RECORD_FIELDS, encode
from ._rejections import Rejections
from ._timeline import micros

AUDIT_FIELDS = ("charge", "charge_currency", "charge_difference", "known_at", "run_id")
"""The fields Audit.add gives each record (rejected rows: known_at and run_id only)."""
AUDITED_COLUMNS = (*RECORD_FIELDS, *(name for name in AUDIT_FIELDS if name not in RECORD_FIELDS))
"""The flat columns of an audited record (rerate --format csv, a job's CSV records)."""
TOP_CHANGED = 20
"""Calls kept by the size of their charge difference, for the summary and the report."""
_RATE_PLACES = Decimal("0.000001")
_ZERO = Decimal(0)
_DECIMALS: dict[float, Decimal] = {}
_CREDITS = "communications_credits"


def decimal(value: object) -> Decimal | None:
    """A billed amount as an exact decimal: 0.36 read from its shortest text, not its binary float."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if type(value) is float:  # bills repeat a few amounts: remember them (bounded)
        found = _DECIMALS.get(value)
        if found is None:
            found = Decimal(repr(value))
            if len(_DECIMALS) < 100_000:
                _DECIMALS[value] = found
        return found
    return Decimal(str(value))


def _start_us(text: str) -> int:
    """A record's start (our UTC text, ending in Z) in microseconds, without building a pendulum instant."""
    parsed = dt.datetime.fromisoformat(text)
    return (int(parsed.replace(microsecond=0).timestamp()) * 1_000_000) + parsed.microsecond


def amount(value: Decimal | None) -> float | None:
    """An amount for JSON: the nearest float to the exact decimal (0.36 -> 0.36)."""
    return None if value is None else float(value)


def money_text(value: Decimal | None) -> str:
    """An amount as plain decimal text, to the millionth, without trailing zeros or an exponent: 4.416, 0, -0.08."""
    if value is None:
        return "-"
    text = format(value.quantize(_RATE_PLACES).normalize(), "f")
    return "0" if text in ("-0", "0") else text


@attrs.define
class MoneyTotals:
    """What one tenant was billed and what it is charged now, in one month and currency."""

    calls: int = 0
    billed: Decimal = Decimal(0)
    billed_calls: int = 0
    recomputed: Decimal = Decimal(0)
    recomputed_calls: int = 0
    difference: Decimal = Decimal(0)
    compared_calls: int = 0
    without_rate: int = 0
    changed: int = 0

    def add(self, other: MoneyTotals) -> None:
        for field in attrs.fields(MoneyTotals):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def record(self) -> dict[str, Any]:
        return {"calls": self.calls, "billed": amount(self.billed), "billed_calls": self.billed_calls,
                "recomputed": amount(self.recomputed), "recomputed_calls": self.recomputed_calls,
                "difference": amount(self.difference), "compared_calls": self.compared_calls,
                "without_rate": self.without_rate, "changed": self.changed}


@attrs.define
class ImpliedRate:
    """Calls billed at one implied per-minute rate to one destination in one month and currency."""

    calls: int = 0
    examples: list[str] = attrs.Factory(list)


def implied_rate(billed: Mapping[str, Any] | None, billable_minutes: int) -> tuple[Decimal, int] | None:
    """(charge per minute, minutes charged) of a bill that charged the call wholly to credits, or None.

    The minutes charged are the billed credit minutes where the input gives them (our layout), else, where
    the bill names credits or no outcome at all (the Teams export charges credits only), the call's billable
    minutes. A bill of 0, or of no minutes, implies nothing (0 / 185 is not a price)."""
    if not billed:
        return None
    charge = decimal(billed.get("charge"))
    if charge is None or charge <= 0:
        return None
    minutes = billed.get("minutes")
    if minutes is None:
        if billed.get("outcome") not in (None, _CREDITS):
            return None
        minutes = billable_minutes
    if not minutes or minutes <= 0:
        return None
    return (charge / minutes).quantize(_RATE_PLACES).normalize(), int(minutes)


class Audit:
    """Adds the audit fields to each record of one run and keeps the run's money and rejection tallies."""

    def __init__(self, rates: RateCard, *, known_at: object, as_of: object = None, run_id: str,
                 top: int = TOP_CHANGED) -> None:
        self.rates = rates
        self.known_at = to_instant(known_at, "known_at")
        self.as_of = None if as_of is None else to_instant(as_of, "as_of")
        self.run_id = run_id
        self.top = top
        self._known_us = micros(self.known_at)
        self._as_of_us = None if self.as_of is None else micros(self.as_of)
        self._known_text = format_instant(self.known_at)
        self.totals: dict[tuple[str, str, str], MoneyTotals] = {}
        """(tenant, month YYYY-MM, currency) -> totals; currency "" where the input names none."""
        self.without_rate = 0
        self.unpriced: dict[tuple[str, str], int] = {}
        """(destination country, number type) -> calls taking credit minutes that no rate card entry prices."""
        self.implied: dict[tuple[str, str, str, str], dict[Decimal, ImpliedRate]] = {}
        """(destination country, number type, month, currency) -> implied rate -> its calls."""
        self.rejections = Rejections()
        self._top: list[tuple[Decimal, int, dict[str, Any]]] = []
        self._seen = 0

    # The hook -------------------------------------------------------------------------------------------

    def records(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for record in records:
            yield self.add(record)

    def audited_lines(self, texts: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        """(JSON line, record) of each record given as its JSON line (Rerate.records_json), with its audit fields:
        the line is the text given with the fields appended, byte for byte what encode(record) writes (add
        appends them last), without encoding the whole record again (a third of a large run's time); only a
        record whose warnings the audit extends is encoded whole."""
        for text in texts:
            record = json.loads(text)
            warnings = record.get("warnings")
            given = len(record)
            self.add(record)
            if record.get("warnings") is warnings and text.endswith("}") and given:
                added = dict(itertools.islice(record.items(), given, None))
                yield f"{text[:-1]}, {encode(added)[1:]}", record
            else:
                yield encode(record), record

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record with its audit fields, counted in the run's totals (in place, and returned)."""
        self._seen += 1
        if "credit_minutes" not in record or record.get("outcome") == "rejected":
            self.rejections.add(record)
            record["known_at"] = self._known_text
            record["run_id"] = self.run_id
            return record
        billed = record.get("billed")
        credit_minutes = record["credit_minutes"]
        start = record["start"]
        charge: Decimal | None
        currency: str | None
        entry = None
        if self.rates:
            at_us = self._as_of_us if self._as_of_us is not None else _start_us(start)
            entry = self.rates.resolve(record.get("destination_country"), record.get("number_type"), at_us,
                                       self._known_us)
        if entry is not None:
            charge, currency = entry.charge(credit_minutes), entry.currency
        elif credit_minutes <= 0:
            charge, currency = _ZERO, billed.get("currency") if billed else None
        else:
            charge = currency = None
            self._unpriced(record, start)
        difference = None
        billed_charge = billed_currency = None
        if billed:
            billed_currency = billed.get("currency")
            if billed.get("charge") is not None:
                billed_charge = decimal(billed["charge"])
                if billed_charge is not None and charge is not None and billed_currency == currency:
                    difference = billed_charge - charge
        record["charge"] = None if charge is None else float(charge)
        record["charge_currency"] = currency
        record["charge_difference"] = None if difference is None else float(difference)
        record["known_at"] = self._known_text
        record["run_id"] = self.run_id
        self._count(record, start[:7], charge, currency, billed, billed_charge, billed_currency, difference)
        return record

    def _unpriced(self, record: dict[str, Any], start: str) -> None:
        country, number_type = record.get("destination_country"), record.get("number_type")
        self.without_rate += 1
        destination = (country or "", number_type or "")
        self.unpriced[destination] = self.unpriced.get(destination, 0) + 1
        if self.rates:
            when = format_instant(self.as_of) if self.as_of else start
            record["warnings"] = [*record.get("warnings", ()),
                                  f"no rate card entry prices {country or 'this destination'} "
                                  f"{number_type or ''} numbers at {when} as known at {self._known_text}: "
                                  "charge not computed"]

    def _count(self, record: dict[str, Any], month: str, charge: Decimal | None, currency: str | None,
               billed: dict[str, Any] | None, billed_charge: Decimal | None, billed_currency: str | None,
               difference: Decimal | None) -> None:
        tenant = record.get("tenant_id") or ""
        changed = bool(record.get("changed"))
        here = self._totals(tenant, month, currency if charge is not None else billed_currency)
        here.calls += 1
        if changed:
            here.changed += 1
        if charge is None:
            here.without_rate += 1
        else:
            if charge:
                here.recomputed += charge
            here.recomputed_calls += 1
        if billed_charge is not None:
            billed_here = here if billed_currency == (currency if charge is not None else billed_currency) \
                else self._totals(tenant, month, billed_currency)
            if billed_charge:
                billed_here.billed += billed_charge
            billed_here.billed_calls += 1
        if difference is not None:
            here.compared_calls += 1
            if difference:
                here.difference += difference
                self._keep_top(record, difference)
        if billed_charge and billed_charge > 0:
            implied = implied_rate(billed, record.get("billable_minutes") or 0)
            if implied is not None:
                key = (record.get("destination_country") or "", record.get("number_type") or "", month,
                       billed_currency or "")
                rate = self.implied.setdefault(key, {}).setdefault(implied[0], ImpliedRate())
                rate.calls += 1
                if len(rate.examples) < 3:
                    rate.examples.append(str(record.get("call_id")))

    def _totals(self, tenant: str, month: str, currency: str | None) -> MoneyTotals:
        key = (tenant, month, currency or "")
        found = self.totals.get(key)
        if found is None:
            found = self.totals[key] = MoneyTotals()
        return found

    def _keep_top(self, record: dict[str, Any], difference: Decimal) -> None:
        billed = record.get("billed") or {}
        kept = {"file": record.get("file"), "line": record.get("line"), "call_id": record.get("call_id"),
                "tenant_id": record.get("tenant_id"), "start": record.get("start"), "outcome": record.get("outcome"),
                "billed_charge": billed.get("charge"), "charge": record["charge"],
                "currency": record["charge_currency"], "charge_difference": amount(difference),
                "changed": bool(record.get("changed")), "change": record.get("change", "")}
        item = (abs(difference), -self._seen, kept)  # equal sizes: the earlier row first
        if len(self._top) < self.top:
            heapq.heappush(self._top, item)
        elif item[:2] > self._top[0][:2]:
            heapq.heapreplace(self._top, item)

    # What it found ---------------------------------------------------------------------------------------

    def top_changed(self) -> list[dict[str, Any]]:
        """The calls with the largest charge differences (either sign), largest first: changed calls, and
        calls rated alike whose price differs (a corrected rate card)."""
        return [kept for _, _, kept in sorted(self._top, key=lambda item: item[:2], reverse=True)]

    def by_currency(self) -> dict[str, MoneyTotals]:
        found: dict[str, MoneyTotals] = {}
        for (_, _, currency), totals in sorted(self.totals.items()):
            found.setdefault(currency, MoneyTotals()).add(totals)
        return found

    def anomalies(self) -> list[dict[str, Any]]:
        """Destinations billed at more than one implied rate in one month and currency."""
        found = []
        for (country, number_type, month, currency), rates in sorted(self.implied.items()):
            if len(rates) > 1:
                found.append({"destination_country": country, "number_type": number_type, "month": month,
                              "currency": currency,
                              "rates": [{"per_minute": float(rate), "calls": seen.calls, "examples": seen.examples}
                                        for rate, seen in sorted(rates.items())]})
        return found

    def implied_rates(self) -> list[dict[str, Any]]:
        """Every implied rate: destination, month, currency, rate, calls."""
        return [{"destination_country": country, "number_type": number_type, "month": month, "currency": currency,
                 "per_minute": float(rate), "calls": seen.calls}
                for (country, number_type, month, currency), rates in sorted(self.implied.items())
                for rate, seen in sorted(rates.items())]

    def record(self) -> dict[str, Any]:
        """The whole money summary, ready for JSON."""
        return {
            "rate_card_entries": len(self.rates),
            "by_currency": {currency or "": totals.record() for currency, totals in self.by_currency().items()},
            "totals": [{"tenant_id": tenant, "month": month, "currency": currency, **totals.record()}
                       for (tenant, month, currency), totals in sorted(self.totals.items())],
            "top_changed_by_money": self.top_changed(),
            "without_rate": self.without_rate,
            "without_rate_by_destination": [{"destination_country": c, "number_type": t, "calls": n}
                                            for (c, t), n in sorted(self.unpriced.items())],
            "implied_rates": self.implied_rates(),
            "anomalies": self.anomalies(),
        }

    def lines(self) -> list[str]:
        """The money part of the short summary: totals per currency, and calls without a rate."""
        currencies = self.by_currency()
        if not self.rates and not any(totals.billed_calls for totals in currencies.values()):
            return ["money: the input carries no charges and no rate card is loaded (policyhistory load --rates): "
                    "nothing to compare"]
        lines = ["money per currency (billed, recomputed, billed minus recomputed over the calls with both):"]
        for currency, totals in currencies.items():
            lines.append(f"  {currency or '(no currency)'}: billed {money_text(totals.billed)} on "
                         f"{totals.billed_calls} call(s), recomputed {money_text(totals.recomputed)} on "
                         f"{totals.recomputed_calls}, difference {money_text(totals.difference)} on "
                         f"{totals.compared_calls}")
        if self.without_rate:
            where = "; ".join(f"{c or '?'} {t or '?'}: {n}" for (c, t), n in
                              sorted(self.unpriced.items(), key=lambda item: -item[1])[:5])
            lines.append(f"  {self.without_rate} call(s) take credit minutes no rate card entry prices "
                         f"({'no rate card loaded' if not self.rates else where})")
        anomalies = self.anomalies()
        if anomalies:
            lines.append(f"  {len(anomalies)} destination-month(s) billed at different implied rates (anomalies)")
        return lines


def pools_nearest_capacity(pools: Mapping[tuple[str, str, str, str], Any], count: int = 10) -> list[str]:
    """Summary lines of the pool-months whose use came nearest their capacity (or went past it)."""
    ranked = sorted(pools.items(), key=lambda item: (-(item[1].used / item[1].capacity if item[1].capacity else
                                                        (1e9 if item[1].used else 0)), item[0]))
    lines = []
    for (tenant, pool, month, counter), use in ranked[:count]:
        share = f" ({100 * use.used / use.capacity:.0f} %)" if use.capacity else ""
        alerts = (", alerts: " + ", ".join(a.split(" of pool")[0] + " (" + a.rsplit("(", 1)[1] for a in use.alerts)
                  if use.alerts else "")
        # use.text(): "used / capacity", and every capacity the month met where licenses changed mid-month.
        lines.append(f"  {tenant} {pool} {month} {counter}: {use.text()}{share}{alerts}")
    return lines


def short_summary(summary: Any, audit: Audit, full: str | None) -> list[str]:
    """The stderr summary: counts, minutes per outcome, changes by kind (RerateSummary's own first lines),
    money per currency, the 10 pool-months nearest their capacity, and where the full summary went."""
    lines = []
    for line in summary.lines():
        if line.startswith("pools (tenant"):
            break
        lines.append(line)
    lines += audit.lines()
    if summary.pools:
        nearest = pools_nearest_capacity(summary.pools)
        lines.append(f"pool-months nearest their capacity ({len(nearest)} of {len(summary.pools)}; tenant, pool, "
                     "month, counter: used / capacity, alerts):")
        lines += nearest
    rejected = audit.rejections.groups()
    if rejected:
        lines.append(f"rejected rows by reason ({len(rejected)} reason(s)):")
        lines += [f"  {group.count}: {group.reason}" for group in rejected[:5]]
    lines.append(f"full summary: {full}" if full else
                 "full summary (every pool-month, money per tenant and month): give --summary-json FILE")
    return lines


def run_summary_record(summary: Any, audit: Audit) -> dict[str, Any]:
    """The whole summary of a run as JSON values: counts, minutes, changes, every pool-month, money,
    rejected rows by reason."""
    return {
        "rows": summary.rows, "rated": summary.rated, "rejected": summary.rejected, "changed": summary.changed,
        "known_at": format_instant(summary.known_at) if summary.known_at else None,
        "as_of": format_instant(summary.as_of) if summary.as_of else None,
        "minutes": dict(summary.minutes), "changes": dict(summary.changes),
        "pools": [{"tenant_id": tenant, "pool": pool, "month": month, "counter": counter, "capacity": use.capacity,
                   "capacities": list(use.capacities), "used": use.used, "alerts": list(use.alerts)}
                  for (tenant, pool, month, counter), use in sorted(summary.pools.items())],
        "money": audit.record(),
        "rejected_by_reason": [group.record() for group in audit.rejections.groups()],
    }


def month_axis(months: Iterable[str]) -> list[str]:
    """Every month from the first to the last given, YYYY-MM, missing ones included (a continuous axis)."""
    given = sorted(set(months))
    if not given:
        return []
    first = pendulum.datetime(int(given[0][:4]), int(given[0][5:7]), 1, tz="UTC")
    last = pendulum.datetime(int(given[-1][:4]), int(given[-1][5:7]), 1, tz="UTC")
    axis = []
    while first <= last:
        axis.append(f"{first.year:04d}-{first.month:02d}")
        first = first.add(months=1)
    return axis
