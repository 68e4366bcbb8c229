"""Amounts: exact decimals read from a bill, written as JSON numbers or plain text, and the totals of one
tenant, month and currency that a run's audit keeps (see _money.Audit), and the rate a bill implies."""

from __future__ import annotations

import bisect
import operator
from collections.abc import Mapping
from decimal import Decimal, localcontext
from typing import Any

import attrs

from ._plans import COMMUNICATIONS_CREDITS

_RATE_PLACES = Decimal("0.000001")
ZERO = Decimal(0)
_DECIMALS: dict[float, Decimal] = {}


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


def amount(value: Decimal | None) -> float | None:
    """An amount for JSON: the nearest float to the exact decimal (0.36 -> 0.36)."""
    return None if value is None else float(value)


def money_text(value: Decimal | None) -> str:
    """An amount as plain decimal text, to the millionth, without trailing zeros or an exponent: 4.416, 0, -0.08."""
    if value is None:
        return "-"
    # Precise enough for any amount: quantize refuses a result of more digits than the context's 28.
    with localcontext(prec=max(28, value.adjusted() + 8)):
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
        self.calls += other.calls
        self.billed += other.billed
        self.billed_calls += other.billed_calls
        self.recomputed += other.recomputed
        self.recomputed_calls += other.recomputed_calls
        self.difference += other.difference
        self.compared_calls += other.compared_calls
        self.without_rate += other.without_rate
        self.changed += other.changed

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its values, amounts as their text: a shard's audit sent back from a worker holds one per
        # tenant-month (attrs' own pickling of slotted classes took seconds for a run's few hundred thousand,
        # and a Decimal pickles four times slower than its text, which gives it back exactly, exponent and all).
        return _money_totals, tuple(str(value) if type(value) is Decimal else value for value in _totals_values(self))

    def record(self) -> dict[str, Any]:
        return {"calls": self.calls, "billed": amount(self.billed), "billed_calls": self.billed_calls,
                "recomputed": amount(self.recomputed), "recomputed_calls": self.recomputed_calls,
                "difference": amount(self.difference), "compared_calls": self.compared_calls,
                "without_rate": self.without_rate, "changed": self.changed}


_totals_values = operator.attrgetter(*(field.name for field in attrs.fields(MoneyTotals)))
"""Every field of MoneyTotals, in order (its __init__'s arguments)."""
_AMOUNTS = tuple(index for index, value in enumerate(_totals_values(MoneyTotals())) if type(value) is Decimal)
"""Where the amounts are among those fields."""


def _money_totals(*values: Any) -> MoneyTotals:
    """MoneyTotals from its pickled values (see MoneyTotals.__reduce__): amounts from their text."""
    given = list(values)
    for index in _AMOUNTS:
        text = given[index]
        given[index] = ZERO if text == "0" else Decimal(text)
    return MoneyTotals(*given)


@attrs.define
class ImpliedRate:
    """Calls billed at one implied per-minute rate to one destination in one month and currency."""

    calls: int = 0
    examples: list[str] = attrs.Factory(list)
    orders: list[int] = attrs.Factory(list)
    """Where each example's record stands in the run's output (its examples are the first ones)."""

    def keep(self, order: int, call_id: str) -> None:
        """Count a call; keep it as an example if it is among the first three (by `order`) seen so far."""
        self.calls += 1
        if len(self.orders) < 3 or order < self.orders[-1]:
            at = bisect.bisect(self.orders, order)
            self.orders.insert(at, order)
            self.examples.insert(at, call_id)
            del self.orders[3:], self.examples[3:]


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
        if billed.get("outcome") not in (None, COMMUNICATIONS_CREDITS):
            return None
        minutes = billable_minutes
    if not minutes or minutes <= 0:
        return None
    return (charge / minutes).quantize(_RATE_PLACES).normalize(), int(minutes)
