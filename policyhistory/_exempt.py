"""Calls Microsoft's PSTN billing rules do not price: emergency calls, and calls carried by the customer's own
operator (Operator Connect, Direct Routing). One decision, taken where a call's kind is planned
(`plan_call`), before any benefit, pool or credit is looked at.

- Emergency calls (call types `emergency_out`, `dr_emergency_out`; numbers such as 112 or 911): outcome
  `emergency`, no minutes drawn or charged. Our reading: an emergency call is never blocked and never billed
  (no Calling Plan page counts them against a plan, and no pay-per-minute rate lists them).
- Operator Connect (an operator other than Microsoft named on the row) and Direct Routing (its own export and
  call types, Graph's getDirectRoutingCalls): outcome `not_microsoft_billed`. The reference file: Direct
  Routing calls go "through the customer's own carrier, with no Charge column"; the Graph documentation of
  pstnCallLogRow.operator: "a third-party operator via the Operator Connect Program".
Both keep their billable minutes (rounded as the minute rounding policy says, or per started minute when
none is in force), so that the summary counts them, and draw on no pool.
"""

from __future__ import annotations

from ._calls import Destination
from ._plans import MINUTE_ROUNDING, CreditsCheck, PlannedStep, RatingPlan
from ._policy import MinuteRoundingParams
from ._rating import Outcome
from ._timeline import PolicySet

EXEMPT_OUTCOMES: tuple[Outcome, ...] = ("not_microsoft_billed", "emergency")

CARRIER_TEXT = {
    "operator_connect": "an Operator Connect operator",
    "direct_routing": "the customer's own carrier through Direct Routing",
}


def exempt_outcome(call_type: str, destination: Destination, carrier: str | None) -> Outcome | None:
    """`emergency`, `not_microsoft_billed`, or None when Microsoft's rules price the call. Emergency first:
    an emergency call through Direct Routing is still an emergency call."""
    if call_type == "emergency" or destination.number_type == "emergency":
        return "emergency"
    if carrier is not None:
        return "not_microsoft_billed"
    return None


def exempt_plan(policies: PolicySet, call_type: str, destination: Destination, carrier: str | None,
                usage_location: str | None) -> RatingPlan | None:
    """The RatingPlan of an exempt call (see the module), or None for a call the rules price."""
    outcome = exempt_outcome(call_type, destination, carrier)
    if outcome is None:
        return None
    version = policies.get(MINUTE_ROUNDING)
    rounding = version.params if version is not None and isinstance(version.params, MinuteRoundingParams) \
        else MinuteRoundingParams()
    if outcome == "emergency":
        if destination.country == "ZZ" and usage_location:
            # A short number (112) names no country: the call was placed where the user is, our reading.
            destination = Destination(usage_location, destination.number_type, destination.number)
        kind = destination.number_type.replace("_", " ")
        step = PlannedStep("emergency", None, f"call type {call_type}, {kind} number",
                           "an emergency call: free, never blocked, no pool drawn")
    else:
        assert carrier is not None
        step = PlannedStep("carrier", None, f"carried by {CARRIER_TEXT.get(carrier, carrier)}",
                           "not billed by Microsoft: no Calling Plan, pool or Communications Credits apply")
    versions = (version.id,) if version is not None else ()
    minutes_step = PlannedStep("minute_rounding", version.id if version is not None else None,
                               lambda call, minutes: f"duration {call.duration_seconds} s",
                               lambda call, minutes: f"{minutes} minute(s), rounded {rounding.mode} to "
                                                     f"{rounding.unit_seconds} s")
    return RatingPlan(destination, rounding, outcome, "none", None, CreditsCheck(None, False, ""),
                      (minutes_step, step), versions, ())
