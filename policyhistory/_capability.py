"""What the usage report's Capability (Graph: licenseCapability) and Charge say was billed, in our outcomes'
terms, and whether our rating agrees with it.

The Capability names the license that carried the call, not an outcome: a Calling Plan carries an outbound
call on its minutes and an inbound call for nothing, so "billed calling_plan" agrees with our `free` for an
inbound call. `changed` compares what was charged and the minutes drawn; the outcome only where the
Capability narrows it (CAPABILITY_OUTCOMES).
"""

from __future__ import annotations

from typing import Any

CALLING_PLANS = frozenset({"MCOPSTN1", "MCOPSTN2", "MCOPSTN5", "MCOPSTN6", "MCOPSTN8", "MCOPSTN9"})
PER_MINUTE = frozenset({"MCOPSTNPP", "MCOPSTNC", "MCOMEETACPEA"})

BILLED_BY_CAPABILITY = {
    **{capability: "calling_plan" for capability in CALLING_PLANS},
    **{capability: "communications_credits" for capability in PER_MINUTE},
    "MCOMEETADD_DIALOUT_US": "us_ca_unlimited",
    "FREECALL": "free",
}
"""The outcome a Capability says when nothing was charged (reference file, "Capability values")."""

_NOTHING_CHARGED = ("free", "emergency")
"""Outcomes that charge and draw nothing, whatever license carried the call."""

CAPABILITY_OUTCOMES: dict[str, frozenset[str]] = {
    **{capability: frozenset({"calling_plan", *_NOTHING_CHARGED}) for capability in CALLING_PLANS},
    **{capability: frozenset({"communications_credits", *_NOTHING_CHARGED}) for capability in PER_MINUTE},
    "MCOMEETADD_DIALOUT_US": frozenset({"us_ca_unlimited", *_NOTHING_CHARGED}),
    # FREECALL: "a call that a technical problem kept from being priced, hence free": any outcome that
    # charges nothing agrees; one that charges or blocks is a difference.
    "FREECALL": frozenset({"calling_plan", "complimentary", "dial_out_pool", "us_ca_unlimited",
                           "not_microsoft_billed", *_NOTHING_CHARGED}),
}
"""Our outcomes that agree with a Capability's billed outcome."""


def capability_billed(capability: str | None, charge: float | None, currency: str | None) -> dict[str, Any] | None:
    """The `billed` of a usage-report row: None when no charge is given (nothing to compare), else the
    outcome the Capability says (None where it says none, or where something was charged on a Capability
    that does not pay per minute), the minutes drawn on credits (0 when nothing was charged, unknown
    otherwise: the report gives the charge, not the minutes), the charge, the currency and the Capability."""
    if charge is None:
        return None
    charged = charge > 0
    outcome = "communications_credits" if charged else BILLED_BY_CAPABILITY.get(capability or "")
    return {
        # Charged on a Calling Plan: the credits paid, or a plan's minutes ran out first; unknown which.
        "outcome": outcome if not charged or (capability in BILLED_BY_CAPABILITY and capability not in CALLING_PLANS)
        else None,
        "minutes": None if charged else 0,
        "charge": charge,
        "currency": currency or None,
        "capability": capability,
    }


def outcome_agrees(billed: dict[str, Any], outcome: str) -> bool:
    """Whether our outcome agrees with the billed one: the same outcome for our own layout; for a row whose
    billed outcome comes from a Capability, one of CAPABILITY_OUTCOMES (an inbound call carried by a plan is
    free either way)."""
    was = billed.get("outcome")
    if was is None or was == outcome:
        return True
    capability = billed.get("capability")
    if capability is None:
        return False
    charge = billed.get("charge") or 0
    if charge > 0:
        return False
    return outcome in CAPABILITY_OUTCOMES.get(capability, frozenset())
