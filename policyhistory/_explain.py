"""Explanations for a disputed call: what decided its rating, with sources, and what changed since billing.

Everything here is derived from Ratings and policy versions; the same inputs and `known_at` give the same
text, so an explanation attached to a ticket can be reproduced later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pendulum

from ._calls import Call
from ._describe import describe_params, rating_record, version_record
from ._instant import format_instant
from ._policy import PolicyVersion
from ._rating import Rating
from ._records import billed_change
from ._timeline import Timeline

BUCKETS = ("outcome", "billable_minutes", "pool_minutes", "credit_minutes", "uncovered_minutes")


def source_line(version: PolicyVersion) -> str:
    source = version.source
    published = f"published {source.published.isoformat()}" if source.published else "undated"
    seed = f", seed {source.seed}" if source.seed else ""
    return f'{source.document}, {published}{seed}, section "{source.section}": "{source.quote}"'


@attrs.frozen
class Explanation:
    """One call rated under one knowledge date, with the versions that decided it and its pool's story."""

    call: Call
    rating: Rating
    known_at: pendulum.DateTime
    versions: tuple[PolicyVersion, ...]
    earlier_in_pool: int

    def lines(self) -> list[str]:
        call, rating = self.call, self.rating
        minutes = call.duration_seconds // 60
        lines = [
            f"Call {call.call_id} of tenant {call.tenant_id}",
            f"  placed {format_instant(call.start)}, {call.duration_seconds} s (~{minutes} min), {call.call_type}"
            + (f" by {call.user_id}" if call.user_id else ""),
            f"  license usage location {call.usage_location or 'unknown'}; licenses "
            f"{', '.join(call.licenses) or 'none'}",
            f"  destination {call.destination}: {rating.destination_country}, {rating.number_type} number",
            f"Rated under the rules in force at {format_instant(rating.as_of or call.start)}, "
            f"as known at {format_instant(self.known_at)}",
            f"Outcome: {rating.outcome}: {rating.billable_minutes} billable min = {rating.pool_minutes} from a pool "
            f"+ {rating.credit_minutes} on Communications Credits + {rating.uncovered_minutes} uncovered",
        ]
        if rating.pool is not None:
            pool = rating.pool
            lines.append(
                f"Pool {pool.key.pool} ({pool.key.counter}), {pool.key.month}: {pool.licensed_users} {pool.basis} "
                f"license(s) x {pool.minutes_per_user} min = {pool.capacity} min; {pool.used_before} min used before "
                f"this call by {self.earlier_in_pool} earlier call(s) this month, {pool.used_after} after")
        lines += [f"Alert: {alert}" for alert in rating.alerts]
        lines += [f"Warning: {warning}" for warning in rating.warnings]
        lines.append("Steps:")
        lines += [f"  {index}. {step.rule} [{step.policy_version or '-'}]: {step.fact} -> {step.decision}"
                  for index, step in enumerate(rating.trace, start=1)]
        lines.append("Policy versions that decided it:")
        for version in self.versions:
            lines.append(f"  - {version.id} ({version.key}): valid {version.interval_text()}, known from "
                         f"{format_instant(version.recorded_at)}; {describe_params(version)}")
            lines.append(f"    source: {source_line(version)}")
        return lines

    def text(self) -> str:
        return "\n".join(self.lines())

    def record(self) -> dict[str, Any]:
        return {"known_at": format_instant(self.known_at), "earlier_in_pool": self.earlier_in_pool,
                "rating": rating_record(self.rating), "versions": [version_record(v) for v in self.versions]}


@attrs.frozen
class Comparison:
    """The same call as known when it was billed and as known now, and which later versions made the change."""

    then: Explanation
    now: Explanation
    billed: dict[str, Any] | None
    differences: tuple[str, ...]
    changed_by: tuple[PolicyVersion, ...]
    replaced: tuple[PolicyVersion, ...]
    money: str | None
    change: str = ""
    """Against the bill, when the input says what was billed: what was billed and what is now (as a
    re-rating's record says it), or '' when they agree."""
    first_changed_by: tuple[PolicyVersion, ...] = ()
    """The versions whose recording first gave today's answer, where they are not `changed_by` themselves: a
    belief published once and restated by later records (the catalog's page dates, then the French copies)
    changed the answer on its first publication."""

    @property
    def changed(self) -> bool:
        """Whether the call's rating now differs from its bill (when the input carries one: the same answer
        as `rerate`'s `changed`), else from its rating as known when billed."""
        if self.billed:
            return bool(self.change)
        return bool(self.differences)

    def lines(self) -> list[str]:
        then_at, now_at = format_instant(self.then.known_at), format_instant(self.now.known_at)
        lines = [f"Then versus now for call {self.now.call.call_id}: as known at {then_at} (billed) and at {now_at}"]
        if self.billed:
            lines.append("What was billed: " + ", ".join(f"{k} {v}" for k, v in self.billed.items() if v is not None))
            lines.append(f"Against the bill: changed: {self.change}" if self.change else
                         "Against the bill: unchanged (the rating as known now agrees with what was billed)")
        if not self.differences:
            lines.append("No difference between the two beliefs: the rating is the same as known when billed and "
                         "as known now (the bill itself is compared in the three answers, where the input has it).")
        else:
            lines.append("What differs:")
            lines += [f"  {difference}" for difference in self.differences]
            if self.money:
                lines.append(f"  money: {self.money}")
            lines.append("Why: versions recorded after the billing date changed the answer:")
            for version in self.changed_by:
                lines.append(f"  + {version.id} ({version.key}), recorded {format_instant(version.recorded_at)}: "
                             f"{describe_params(version)}")
                lines.append(f"    source: {source_line(version)}")
            for version in self.first_changed_by:
                lines.append(f"  first changed by {version.id} ({version.key}), recorded "
                             f"{format_instant(version.recorded_at)}: {describe_params(version)}")
                lines.append(f"    source: {source_line(version)}")
            for version in self.replaced:
                lines.append(f"  - no longer decisive: {version.id}, recorded {format_instant(version.recorded_at)}: "
                             f"{describe_params(version)}")
        lines += ["", "== As known when billed ==", *self.then.lines(), "", "== As known now ==", *self.now.lines()]
        return lines

    def text(self) -> str:
        return "\n".join(self.lines())

    def record(self) -> dict[str, Any]:
        return {"changed": self.changed, "change": self.change, "differences": list(self.differences),
                "money": self.money,
                "billed": self.billed, "changed_by": [v.id for v in self.changed_by],
                "first_changed_by": [v.id for v in self.first_changed_by],
                "replaced": [v.id for v in self.replaced], "then": self.then.record(), "now": self.now.record()}


def explanation(call: Call, rating: Rating, known_at: pendulum.DateTime, timeline: Timeline,
                earlier: Sequence[Rating]) -> Explanation:
    by_id = {version.id: version for version in timeline.versions}
    pool = rating.pool.key if rating.pool else None
    earlier_in_pool = sum(1 for other in earlier
                          if pool is not None and other.pool is not None and other.pool.key.pool == pool.pool
                          and other.pool.key.month == pool.month and other.pool_minutes)
    return Explanation(call, rating, known_at, tuple(by_id[v] for v in rating.policy_versions), earlier_in_pool)


def compare(then: Explanation, now: Explanation, billed: dict[str, Any] | None,
            decisive: Callable[[PolicyVersion], bool] = lambda version: True,
            first_changed: Callable[[PolicyVersion], Sequence[PolicyVersion]] = lambda version: ()) -> Comparison:
    """`decisive` tells whether a later-recorded version really moved the answer (the store asks a
    counterfactual: the same rating without that version); `first_changed`, which versions of its key first
    gave today's answer when they were recorded."""
    differences = []
    for bucket in BUCKETS:
        before, after = getattr(then.rating, bucket), getattr(now.rating, bucket)
        if before != after:
            delta = f" ({after - before:+d})" if isinstance(before, int) else ""
            differences.append(f"{bucket}: {before} -> {after}{delta}")
    then_ids = set(then.rating.policy_versions)
    now_ids = set(now.rating.policy_versions)
    changed_by = tuple(v for v in now.versions
                       if v.id not in then_ids and v.recorded_at > then.known_at and differences and decisive(v))
    replaced = tuple(v for v in then.versions if v.id not in now_ids)
    money = None
    if billed and billed.get("charge") is not None and differences:
        charged_minutes = billed.get("minutes") or then.rating.credit_minutes
        # A bill of 0 implies no price: "0 GBP billed for 185 credit minute(s) (0 GBP/min) ... -0.00" said
        # nothing true (issue 16); the three answers (see _dispute) price it from the rate card instead.
        if charged_minutes and billed["charge"] > 0:
            per_minute = billed["charge"] / charged_minutes
            delta = (now.rating.credit_minutes - then.rating.credit_minutes) * per_minute
            currency = billed.get("currency") or ""
            money = (f"{billed['charge']:g} {currency} billed for {charged_minutes} credit minute(s) "
                     f"({per_minute:g} {currency}/min); now {now.rating.credit_minutes} credit minute(s): "
                     f"{delta:+.2f} {currency}").replace("  ", " ")
    rating = now.rating
    change = billed_change(billed, rating.outcome, rating.pool_minutes, rating.credit_minutes,
                           rating.uncovered_minutes) if billed else ""
    changed_ids = {version.id for version in changed_by}
    first = tuple(dict.fromkeys(version for changer in changed_by for version in first_changed(changer)
                                if version.id not in changed_ids))
    return Comparison(then, now, billed, tuple(differences), changed_by, replaced, money, change, first)
