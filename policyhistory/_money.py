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
import math
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from ._instant import format_instant, to_instant
from ._money_values import ZERO, ImpliedRate, MoneyTotals, amount, decimal, implied_rate, money_text
from ._ratecards import RateCard
from ._records import RECORD_FIELDS, _text, encode
from ._rejections import Rejections
from ._timeline import micros

AUDIT_FIELDS = ("charge", "charge_currency", "charge_difference", "known_at", "run_id")
"""The fields Audit.add gives each record (rejected rows: known_at and run_id only)."""
AUDITED_COLUMNS = (*RECORD_FIELDS, *(name for name in AUDIT_FIELDS if name not in RECORD_FIELDS))
"""The flat columns of an audited record (rerate --format csv, a job's CSV records)."""
TOP_CHANGED = 20
"""Calls kept by the size of their charge difference, for the summary and the report."""


def _start_us(text: str) -> int:
    """A record's start (our UTC text, ending in Z) in microseconds, without building a pendulum instant."""
    parsed = dt.datetime.fromisoformat(text)
    return (int(parsed.replace(microsecond=0).timestamp()) * 1_000_000) + parsed.microsecond


def _number(value: float | None) -> str:
    """A float as json.dumps writes it."""
    return "null" if value is None else repr(value) if math.isfinite(value) else json.dumps(value)


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
        tail = encode({"known_at": self._known_text, "run_id": run_id})
        self._tail = f", {tail[1:]}"
        """What follows a record's own fields on its line: known_at, run_id, the closing brace."""

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
        start = record["start"]
        billed = record.get("billed")
        charge, currency, difference, warning = self._audit(
            self._seen, record.get("tenant_id") or "", start,
            self._as_of_us if self._as_of_us is not None or not self.rates else _start_us(start),
            record.get("file"), record.get("line"), record.get("call_id"), record.get("outcome"),
            record.get("destination_country"), record.get("number_type"), record.get("billable_minutes") or 0,
            record["credit_minutes"], billed, bool(record.get("changed")), record.get("change", ""))
        if warning is not None:
            record["warnings"] = [*record.get("warnings", ()), warning]
        record["charge"] = charge
        record["charge_currency"] = currency
        record["charge_difference"] = difference
        record["known_at"] = self._known_text
        record["run_id"] = self.run_id
        return record

    # In a shard: the same fields and tallies, from the values the shard rated --------------------------

    def fresh(self) -> Audit:
        """An empty audit of the same run (rate card, instants, run id) for one tenant shard: the shard gives
        its records their audit fields where it rates them (rated_suffix, rejected_suffix: each record's place
        in the output says which comes first), and the run's audit adds up the shards' tallies (merge)."""
        return Audit(self.rates, known_at=self.known_at, as_of=self.as_of, run_id=self.run_id, top=self.top)

    def rated_suffix(self, order: int, tenant_id: str, start: str, start_us: int, file: object, line: object,
                     call_id: object, outcome: str, country: str | None, number_type: str | None,
                     billable_minutes: int, credit_minutes: int, billed: dict[str, Any] | None, change: str
                     ) -> tuple[str, str | None]:
        """(the text that ends the rated record's line in place of its closing brace, the warning add gives the
        record or None): the audit fields add(record) appends, for the record at `order` (its row number)."""
        self._seen += 1
        charge, currency, difference, warning = self._audit(
            order + 1, tenant_id, start, self._as_of_us if self._as_of_us is not None else start_us, file, line,
            call_id, outcome, country, number_type, billable_minutes, credit_minutes, billed, bool(change), change)
        return (f', "charge": {_number(charge)}, "charge_currency": {"null" if currency is None else _text(currency)}'
                f', "charge_difference": {_number(difference)}{self._tail}'), warning

    def rejected_suffix(self, order: int, record: dict[str, Any]) -> str:
        """The text that ends a rejected record's line in place of its closing brace (known_at, run_id), the
        record counted by reason as Rejections.add counts it, for the record at `order` (its row number)."""
        self._seen += 1
        self.rejections.add(record, order)
        return self._tail

    def merge(self, parts: Iterable[Audit]) -> None:
        """Add the shards' audits (see fresh) to this one: totals, calls without a rate, implied rates (their
        examples the first calls of the run), the calls of largest charge difference, rejected rows by reason
        (in the order their first row comes), as if every record had been given to add() in output order.
        The parts are used up (their totals become this audit's)."""
        rejections = []
        for part in parts:
            self._seen += part._seen
            for key, totals in part.totals.items():  # a tenant is in one shard: its keys are new here
                mine_totals = self.totals.get(key)
                if mine_totals is None:
                    self.totals[key] = totals  # the part's own: a part is used up by the merge
                else:
                    mine_totals.add(totals)
            self.without_rate += part.without_rate
            for destination, calls in part.unpriced.items():
                self.unpriced[destination] = self.unpriced.get(destination, 0) + calls
            for destination_month, rates in part.implied.items():
                mine = self.implied.setdefault(destination_month, {})
                for rate, seen in rates.items():
                    found = mine.get(rate)
                    if found is None:
                        mine[rate] = ImpliedRate(seen.calls, list(seen.examples), list(seen.orders))
                        continue
                    found.calls += seen.calls
                    pairs = sorted([*zip(found.orders, found.examples, strict=True),
                                    *zip(seen.orders, seen.examples, strict=True)])[:3]
                    found.orders = [order for order, _ in pairs]
                    found.examples = [example for _, example in pairs]
            for item in part._top:
                self._push_top(item)
            rejections.append(part.rejections)
        self.rejections.merge(rejections)

    # The audit of one rated record --------------------------------------------------------------------

    def _audit(self, order: int, tenant: str, start: str, at_us: int | None, file: object, line: object,
               call_id: object, outcome: object, country: str | None, number_type: str | None,
               billable_minutes: int, credit_minutes: int, billed: dict[str, Any] | None, changed: bool,
               change: str) -> tuple[float | None, str | None, float | None, str | None]:
        """(charge, charge_currency, charge_difference, a warning for the record or None) of a rated call,
        counted in the totals; `order`: the record's place in the output (ties among the top go to the
        earlier); `at_us`: the rules' instant (as_of, else the call's start)."""
        charge: Decimal | None
        currency: str | None
        entry = None
        warning = None
        if self.rates:
            assert at_us is not None
            entry = self.rates.resolve(country, number_type, at_us, self._known_us)
        if entry is not None:
            charge, currency = entry.charge(credit_minutes), entry.currency
        elif credit_minutes <= 0:
            charge, currency = ZERO, billed.get("currency") if billed else None
        else:
            charge = currency = None
            warning = self._unpriced(country, number_type, start)
        difference = None
        billed_charge = billed_currency = None
        if billed:
            billed_currency = billed.get("currency")
            if billed.get("charge") is not None:
                billed_charge = decimal(billed["charge"])
                if billed_charge is not None and charge is not None and billed_currency == currency:
                    difference = billed_charge - charge
        charge_number = None if charge is None else float(charge)
        month = start[:7]
        counted_in = currency if charge is not None else billed_currency
        here = self._totals(tenant, month, counted_in)
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
            billed_here = here if billed_currency == counted_in else self._totals(tenant, month, billed_currency)
            if billed_charge:
                billed_here.billed += billed_charge
            billed_here.billed_calls += 1
        if difference is not None:
            here.compared_calls += 1
            if difference:
                here.difference += difference
                kept = {"file": file, "line": line, "call_id": call_id, "tenant_id": tenant, "start": start,
                        "outcome": outcome, "billed_charge": billed.get("charge") if billed else None,
                        "charge": charge_number, "currency": currency, "charge_difference": amount(difference),
                        "changed": changed, "change": change}
                self._push_top((abs(difference), -order, kept))  # equal sizes: the earlier row first
        if billed_charge and billed_charge > 0:
            implied = implied_rate(billed, billable_minutes)
            if implied is not None:
                key = (country or "", number_type or "", month, billed_currency or "")
                rate = self.implied.setdefault(key, {}).get(implied[0])
                if rate is None:
                    rate = self.implied[key][implied[0]] = ImpliedRate()
                rate.keep(order, str(call_id))
        return charge_number, currency, None if difference is None else float(difference), warning

    def _unpriced(self, country: str | None, number_type: str | None, start: str) -> str | None:
        self.without_rate += 1
        destination = (country or "", number_type or "")
        self.unpriced[destination] = self.unpriced.get(destination, 0) + 1
        if not self.rates:
            return None
        when = format_instant(self.as_of) if self.as_of else start
        return (f"no rate card entry prices {country or 'this destination'} {number_type or ''} numbers at {when} "
                f"as known at {self._known_text}: charge not computed")

    def _totals(self, tenant: str, month: str, currency: str | None) -> MoneyTotals:
        key = (tenant, month, currency or "")
        found = self.totals.get(key)
        if found is None:
            found = self.totals[key] = MoneyTotals()
        return found

    def _push_top(self, item: tuple[Decimal, int, dict[str, Any]]) -> None:
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
        """Totals per currency, the currencies in the order of their first (tenant, month) (exact sums: the
        order they are added in does not matter)."""
        found: dict[str, MoneyTotals] = {}
        first: dict[str, tuple[str, str, str]] = {}
        for key, totals in self.totals.items():
            currency = key[2]
            here = found.get(currency)
            if here is None:
                here = found[currency] = MoneyTotals()
                first[currency] = key
            elif key < first[currency]:
                first[currency] = key
            here.add(totals)
        return {currency: found[currency] for currency in sorted(found, key=first.__getitem__)}

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
        record = self.streamed_record()
        record["totals"] = list(record["totals"])
        return record

    def streamed_record(self) -> dict[str, Any]:
        """The whole money summary, its totals per tenant and month an iterator, made as they are written
        (_outputs.json_chunks): a large run has hundreds of thousands."""
        return {
            "rate_card_entries": len(self.rates),
            "by_currency": {currency or "": totals.record() for currency, totals in self.by_currency().items()},
            "totals": self.totals_rows(),
            "top_changed_by_money": self.top_changed(),
            "without_rate": self.without_rate,
            "without_rate_by_destination": [{"destination_country": c, "number_type": t, "calls": n}
                                            for (c, t), n in sorted(self.unpriced.items())],
            "implied_rates": self.implied_rates(),
            "anomalies": self.anomalies(),
        }

    def totals_rows(self) -> Iterator[dict[str, Any]]:
        """The totals per tenant, month and currency, one dictionary each, in that order, as they are asked for."""
        for (tenant, month, currency), totals in sorted(self.totals.items()):
            yield {"tenant_id": tenant, "month": month, "currency": currency, **totals.record()}

    def lines(self) -> list[str]:
        """The money part of the short summary: totals per currency, and calls without a rate."""
        currencies = self.by_currency()
        if not self.totals and len(self.rejections):
            return ["money: no row was rated (every one was rejected): nothing to compare"]
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
