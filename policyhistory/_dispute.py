"""A dispute's three answers side by side: what was billed, what the rules said as known when it was billed,
and what they say now; which differences come from later knowledge and which from a billing error; and the
money of each answer, from the rate card or an implied rate, omitted (never 0) where neither prices it.

"changed" is decided by `billed_change`, the very function `rerate` uses, on the rating as known now: explain
and rerate cannot disagree about it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from ._explain import Comparison, Explanation
from ._instant import format_instant, to_instant
from ._money_values import decimal, implied_rate, money_text
from ._ratecards import RateCard
from ._rating import Rating
from ._rerate import billed_change, billed_text, rating_text

MINUTE = 60


@attrs.frozen
class Price:
    """A per-minute price and where it comes from (a rate card entry, or the bills of calls like this one)."""

    per_minute: Decimal
    connection_fee: Decimal
    currency: str
    source: str


def implied_price(billed: Mapping[str, Any] | None, billable_minutes: int,
                  neighbours: Iterable[tuple[Mapping[str, Any] | None, int]] = (), what: str = "") -> Price | None:
    """The call's own implied rate (its bill charged it wholly to credits), else the commonest implied rate of
    the other calls given (same tenant, destination, month and currency), else None."""
    currency = (billed or {}).get("currency") or ""
    own = implied_rate(billed, billable_minutes)
    if own is not None:
        charged = money_text(decimal((billed or {}).get("charge")))
        return Price(own[0], Decimal(0), currency,
                     f"implied by this call's bill: {charged} {currency} for {own[1]} min")
    rates: Counter[Decimal] = Counter()
    for other_billed, other_minutes in neighbours:
        if (other_billed or {}).get("currency") != (billed or {}).get("currency"):
            continue
        found = implied_rate(other_billed, other_minutes)
        if found is not None:
            rates[found[0]] += 1
    if not rates:
        return None
    rate, calls = rates.most_common(1)[0]
    return Price(rate, Decimal(0), currency, f"implied by the bills of {calls} other call(s){what}")


def card_price(rates: RateCard, rating: Rating, at: object, known_at: object) -> Price | None:
    entry = rates.resolve(rating.destination_country, rating.number_type, at, known_at) if rates else None
    if entry is None:
        return None
    return Price(entry.per_minute, entry.connection_fee, entry.currency,
                 f"rate card {entry.label}: {entry.source}")


@attrs.frozen
class Answer:
    """One of the three answers: a label, what it says, and its money where a price is known."""

    label: str
    text: str
    charge: Decimal | None
    currency: str | None
    price: Price | None

    def record(self) -> dict[str, Any]:
        return {"label": self.label, "text": self.text, "charge": None if self.charge is None else float(self.charge),
                "currency": self.currency, "price_per_minute": None if self.price is None else float(
                    self.price.per_minute), "price_source": None if self.price is None else self.price.source}


def _rated(label: str, rating: Rating, price: Price | None, billed_currency: str | None) -> Answer:
    text = rating_text(rating.outcome, rating.pool_minutes, rating.credit_minutes, rating.uncovered_minutes)
    if rating.credit_minutes <= 0:
        return Answer(label, text, Decimal(0), price.currency if price else billed_currency, price)
    if price is None:
        return Answer(label, text, None, None, None)
    charge = rating.credit_minutes * price.per_minute + price.connection_fee
    return Answer(label, text, charge, price.currency, price)


@attrs.frozen
class Dispute:
    """What was billed, the rules as known when billed, the rules now; and what the differences come from."""

    call_id: str
    billed: Answer
    then: Answer
    now: Answer
    then_known_at: str
    now_known_at: str
    changed: bool
    billing_error: bool
    later_knowledge: tuple[str, ...]
    changed_by: tuple[str, ...]
    first_changed_by: tuple[str, ...] = ()
    """The versions whose recording first gave today's answer, when later records restate it (see Comparison)."""
    recorded: tuple[tuple[str, str], ...] = ()
    """(version id, the day it was recorded) of the versions named above."""

    @property
    def price_differs(self) -> bool:
        return (self.billed.charge is not None and self.now.charge is not None
                and self.billed.currency == self.now.currency and self.billed.charge != self.now.charge)

    @property
    def verdict(self) -> str:
        if not self.changed:
            if self.price_differs:
                return ("The rating agrees with the bill, but the price known now differs from the one billed "
                        "(see Money).")
            if self.billing_error:
                return ("The bill agrees with the rules as known now, though not with the rules as known when it "
                        "was billed: nothing to dispute today.")
            return "The bill agrees with the rules as known now: nothing to dispute."
        if self.billing_error and self.later_knowledge:
            return ("Both: the bill differs even from the rules known when it was billed (a billing error), and "
                    "later knowledge changed the answer again.")
        if self.billing_error:
            return ("A billing error: the bill differs even from the rules as known when it was billed; later "
                    "knowledge changed nothing.")
        return ("Later knowledge: the bill followed the rules as known when it was billed; versions recorded since "
                "changed the answer.")

    def money_lines(self) -> list[str]:
        lines = []
        for answer in (self.billed, self.then, self.now):
            if answer.charge is None:
                continue
            how = f" ({answer.price.source})" if answer.price is not None and answer is not self.billed else ""
            lines.append(f"  {answer.label}: {money_text(answer.charge)} {answer.currency or ''}".rstrip() + how)
        if (self.billed.charge is not None and self.now.charge is not None
                and self.billed.currency == self.now.currency):
            difference = self.billed.charge - self.now.charge
            sense = "over-charged: a refund is due" if difference > 0 else \
                "under-charged" if difference < 0 else "as billed"
            lines.append(f"  billed minus now: {'+' if difference > 0 else ''}{money_text(difference)} "
                         f"{self.now.currency or ''} ({sense})")
        elif self.now.charge is None:
            lines.append("  now: not priced (no rate card entry for the destination and no implied rate)")
        return lines

    def lines(self) -> list[str]:
        lines = [f"Three answers for call {self.call_id}:",
                 f"  billed:                              {self.billed.text}",
                 f"  rules as known when billed ({self.then_known_at[:10]}): {self.then.text}",
                 f"  rules as known now ({self.now_known_at[:10]}):         {self.now.text}",
                 f"Changed: {'yes' if self.changed else 'no'} (as rerate says). {self.verdict}"]
        if self.billing_error:
            lines.append(f"  billing error: billed {self.billed.text}; the rules known then say {self.then.text}")
        for difference in self.later_knowledge:
            lines.append(f"  later knowledge: {difference}")
        if self.changed_by:
            lines.append(f"  later versions that changed it: {self._dated(self.changed_by)}")
        if self.first_changed_by:
            lines.append(f"  first changed by: {self._dated(self.first_changed_by)}: the first record that gave "
                         "this answer (the later versions above give it too, and decide it now)")
        money = self.money_lines()
        if money:
            lines.append("Money:")
            lines += money
        return lines

    def _dated(self, ids: tuple[str, ...]) -> str:
        days = dict(self.recorded)
        return ", ".join(f"{id} (recorded {days[id]})" if id in days else id for id in ids)

    def text(self) -> str:
        return "\n".join(self.lines())

    def record(self) -> dict[str, Any]:
        return {"changed": self.changed, "billing_error": self.billing_error, "price_differs": self.price_differs,
                "later_knowledge": list(self.later_knowledge), "changed_by": list(self.changed_by),
                "first_changed_by": list(self.first_changed_by),
                "verdict": self.verdict, "billed": self.billed.record(), "then": self.then.record(),
                "now": self.now.record(), "then_known_at": self.then_known_at, "now_known_at": self.now_known_at}


def dispute(comparison: Comparison, billed: Mapping[str, Any], rates: RateCard,
            neighbours: Iterable[tuple[Mapping[str, Any] | None, int]] = ()) -> Dispute:
    """The three answers for a call whose input carries its bill. `neighbours`: (bill, billable minutes) of the
    tenant's other calls to the same destination, month and currency, for an implied rate where the card has
    none."""
    return _dispute(comparison.now, comparison.then, format_instant(comparison.then.known_at), None, billed, rates,
                    neighbours, comparison.differences, tuple(version.id for version in comparison.changed_by),
                    tuple(version.id for version in comparison.first_changed_by),
                    tuple((version.id, format_instant(version.recorded_at)[:10])
                          for version in (*comparison.changed_by, *comparison.first_changed_by)))


def dispute_without_then(now: Explanation, billed_at: object, refusal: Exception, billed: Mapping[str, Any],
                         rates: RateCard, neighbours: Iterable[tuple[Mapping[str, Any] | None, int]] = ()) -> Dispute:
    """The three answers when the rules as known at the billing date cannot rate the call (nothing was known
    of them yet): that answer is the refusal, and every difference from the bill is later knowledge's."""
    return _dispute(now, None, format_instant(to_instant(billed_at, "billed_at")), str(refusal), billed, rates,
                    neighbours, (f"as known when billed the call could not be rated: {refusal}",), ())


def _dispute(now_explained: Explanation, then_explained: Explanation | None, then_known_at: str,
             refusal: str | None, billed: Mapping[str, Any], rates: RateCard,
             neighbours: Iterable[tuple[Mapping[str, Any] | None, int]], differences: tuple[str, ...],
             changed_by: tuple[str, ...], first_changed_by: tuple[str, ...] = (),
             recorded: tuple[tuple[str, str], ...] = ()) -> Dispute:
    now, call = now_explained.rating, now_explained.call
    what = f" to {now.destination_country} {now.number_type} numbers in {format_instant(call.start)[:7]}"
    implied = implied_price(billed, now.billable_minutes, list(neighbours), what)
    now_price = card_price(rates, now, now.as_of or call.start, now_explained.known_at) or implied
    charge = decimal(billed.get("charge"))
    billed_answer = Answer("billed", billed_text(dict(billed)) or "nothing said", charge, billed.get("currency"),
                           None)
    changed = bool(billed_change(dict(billed), now.outcome, now.pool_minutes, now.credit_minutes,
                                 now.uncovered_minutes))
    if then_explained is None:
        then_answer = Answer("rules as known when billed", f"not rateable ({refusal})", None, None, None)
        error = False
    else:
        then = then_explained.rating
        then_price = card_price(rates, then, then.as_of or call.start, then_explained.known_at) or implied
        then_answer = _rated("rules as known when billed", then, then_price, billed.get("currency"))
        error = bool(billed_change(dict(billed), then.outcome, then.pool_minutes, then.credit_minutes,
                                   then.uncovered_minutes))
    return Dispute(call.call_id, billed_answer, then_answer,
                   _rated("rules as known now", now, now_price, billed.get("currency")),
                   then_known_at, format_instant(now_explained.known_at), changed, error, differences, changed_by,
                   first_changed_by, recorded)


def neighbours_of(rows: Iterable[Any], target: Any, destination: tuple[str, str]) -> list[tuple[Any, int]]:
    """(bill, billable minutes) of the other input rows of the target's tenant, month and destination (country
    and number type), for an implied rate; minutes rounded up per call, as the bundled catalog rounds them."""
    from ._calls import classify_destination
    from ._errors import PolicyHistoryError

    month = format_instant(target.start)[:7]
    found = []
    for row in rows:
        call = row.call
        if call is None or row.row is None or call.call_id == target.call_id or row.row.billed is None:
            continue
        if format_instant(call.start)[:7] != month:
            continue
        try:
            dest = classify_destination(call.destination)
        except PolicyHistoryError:
            continue
        if (dest.country, dest.number_type) == destination:
            found.append((row.row.billed, -(-call.duration_seconds // MINUTE)))
    return found
