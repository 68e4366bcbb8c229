"""Explaining a call with the store's policies and tenant facts: rated after the earlier calls of its tenant's
month (so that its pool use is right), and, for a dispute, rated as known when billed and as known now, the
versions that moved the answer found by counterfactual: the store's timeline with what was recorded since of
one key held back. Store.explain and Store.compare are these; _explain words the answers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ._calls import Call
from ._errors import PolicyHistoryError
from ._explain import BUCKETS, Comparison, Explanation, compare, explanation
from ._instant import month_of, to_instant
from ._policy import PolicyVersion
from ._timeline import Timeline

if TYPE_CHECKING:  # the store calls these: a Store is what they are given, never imported at run time
    from ._store import Store


def explain_under(store: Store, timeline: Timeline, target: Call, as_of: object, known_at: object,
                  earlier: Iterable[Call]) -> Explanation:
    """`target` rated under `timeline` (the store's, or a counterfactual one) with the store's tenant facts,
    after the calls of `earlier` that precede it in its tenant's month, and explained."""
    rater = store.rater(as_of, known_at, timeline=timeline)
    month = month_of(target.start)
    before = sorted((c for c in earlier if c.tenant_id == target.tenant_id and month_of(c.start) == month
                     and (c.start, c.key) < (target.start, target.key)),
                    key=lambda c: (c.start, c.key))
    earlier_ratings = []
    for other in before:
        try:
            earlier_ratings.append(rater.rate(other))
        except PolicyHistoryError:
            continue  # a call that cannot be rated draws on no pool; rerate reports it
    return explanation(target, rater.rate(target), rater.known_at, timeline, earlier_ratings)


def compare_call(store: Store, target: Call, billed_at: object, known_at: object, earlier: Sequence[Call],
                 billed: dict[str, Any] | None) -> Comparison:
    """The call as known at `billed_at` and as known at `known_at` (default now), and why they differ."""
    then = store.explain(target, known_at=to_instant(billed_at, "billed_at"), earlier=earlier)
    now = store.explain(target, known_at=known_at, earlier=earlier)

    def decisive(version: PolicyVersion) -> bool:
        """Counterfactual: knowing of this version's key only what was known when billed, would today's
        answer move? (Per key, not per version: a belief restated by later records, as the catalog's are
        at each page's date and again from the French copies, is decisive although no single record is.)"""
        without = Timeline(v for v in store.timeline.versions
                           if v.key != version.key or v.recorded_at <= then.known_at)
        other = explain_under(store, without, target, None, now.known_at, earlier).rating
        return any(getattr(other, bucket) != getattr(now.rating, bucket) for bucket in BUCKETS)

    def first_changed(version: PolicyVersion) -> list[PolicyVersion]:
        """Knowing of this version's key what was recorded up to each later recording date in turn (all
        else as known now): the versions of the key recorded on the first date that gives today's answer
        and cover the instant the call is rated at."""
        at = now.rating.as_of or target.start
        recorded = sorted({v.recorded_at for v in store.timeline.versions
                           if v.key == version.key and then.known_at < v.recorded_at <= version.recorded_at})
        for moment in recorded:
            upto = Timeline(v for v in store.timeline.versions if v.key != version.key or v.recorded_at <= moment)
            other = explain_under(store, upto, target, None, now.known_at, earlier).rating
            if all(getattr(other, bucket) == getattr(now.rating, bucket) for bucket in BUCKETS):
                return [v for v in store.timeline.versions
                        if v.key == version.key and v.recorded_at == moment and v.covers(at)]
        return []

    return compare(then, now, billed, decisive, first_changed)
