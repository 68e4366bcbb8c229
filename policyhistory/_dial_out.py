"""The plan of a conference dial-out: the US and Canada add-on, the complimentary period, the dial-out pool,
each with the conditions of license, destination and number type it states, else Communications Credits.

Each rule cites its source beside the check that enforces it; the numbers come from the policy versions.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._planner import Decided, Planner, credits_or_blocked, pool_plan
from ._plans import COMPLIMENTARY, DIAL_OUT_POOL, PREMIUM, SELL_TO, US_CA_DIAL_OUT
from ._policy import (
    ComplimentaryDialOutParams,
    CountryListParams,
    DialOutPoolParams,
    PolicyVersion,
    UsCaDialOutParams,
)


def conference_dial_out(planner: Planner) -> Decided:
    _sell_to_warning(planner)
    premium = planner.dest.number_type == PREMIUM
    us_ca = planner.policies.get(US_CA_DIAL_OUT)
    if us_ca is not None and _us_ca_unlimited(planner, us_ca, premium):
        return "us_ca_unlimited", "none", None
    complimentary = planner.policies.get(COMPLIMENTARY)
    if complimentary is not None and _complimentary_applies(planner, complimentary, premium):
        params = complimentary.params
        assert isinstance(params, ComplimentaryDialOutParams)
        if params.minutes_per_user is None:
            planner.step("complimentary_dial_out", complimentary, "the period has no minute cap",
                         lambda call, minutes: f"all {minutes} minute(s) complimentary")
            return "complimentary", "none", None
        assert params.pool_basis is not None
        return "complimentary", "none", pool_plan(planner, complimentary, "complimentary", params.licenses,
                                                  params.pool_basis, params.minutes_per_user)
    pool = planner.policies.get(DIAL_OUT_POOL)
    if pool is not None:
        params_pool = pool.params
        assert isinstance(params_pool, DialOutPoolParams)
        if _benefit_reaches(planner, pool, "dial_out_pool", params_pool.licenses, params_pool.destinations,
                            params_pool.premium_numbers, premium):
            return "dial_out_pool", "none", pool_plan(planner, pool, "dial_out_pool", params_pool.licenses,
                                                      params_pool.pool_basis, params_pool.minutes_per_user)
    return credits_or_blocked(planner, "no pool or benefit covers this dial-out")


def _sell_to_warning(planner: Planner) -> None:
    version = planner.policies.get(SELL_TO)
    location = planner.usage_location
    if version is None or location is None:
        return
    assert isinstance(version.params, CountryListParams)
    if location not in version.params.countries:
        planner.warnings.append(f"the organizer's usage location {location} is not an Audio Conferencing market")
        planner.step("sell_to", version, f"usage location {location}",
                     "not where Audio Conferencing is sold; warning only (rating is by destination)")


def _us_ca_unlimited(planner: Planner, version: PolicyVersion, premium: bool) -> bool:
    # Seed 001: the organizer's add-on, unlimited to US and Canada, "regardless of where the call takes place".
    params = version.params
    assert isinstance(params, UsCaDialOutParams)
    licenses, dest = planner.licenses, planner.dest
    if params.license not in licenses:
        return False
    if dest.country not in params.countries:
        planner.step("us_ca_dial_out", version, f"destination {dest.country}",
                     f"outside {', '.join(params.countries)}; the add-on does not apply")
        return False
    if premium and not params.premium_numbers:
        planner.step("us_ca_dial_out", version, "premium-rate number", "premium numbers are outside the add-on")
        return False
    if not set(params.prerequisite_licenses) & set(licenses):
        planner.step("us_ca_dial_out", version, f"organizer licenses {', '.join(licenses) or 'none'}",
                     f"the add-on needs one of {', '.join(params.prerequisite_licenses)}")
        return False
    planner.step("us_ca_dial_out", version, f"organizer holds {params.license}; destination {dest.country}",
                 "unlimited (fair use): no pool and no credits drawn")
    return True


def _complimentary_applies(planner: Planner, version: PolicyVersion, premium: bool) -> bool:
    params = version.params
    assert isinstance(params, ComplimentaryDialOutParams)
    # Seed 002: the period continues for tenants in RU, KR and TW; the exception keys on the tenant's country.
    if params.tenant_countries is not None and planner.tenant.country not in params.tenant_countries:
        planner.step("complimentary_dial_out", version, f"tenant country {planner.tenant.country}",
                     f"the period continues only for tenants in {', '.join(params.tenant_countries)}")
        return False
    return _benefit_reaches(planner, version, "complimentary_dial_out", params.licenses, params.destinations,
                            params.premium_numbers, premium)


def _benefit_reaches(planner: Planner, version: PolicyVersion, rule: str, licenses: Sequence[str],
                     destinations: str, premium_numbers: bool, premium: bool) -> bool:
    """License, destination and number type: the three conditions every dial-out benefit states."""
    held = planner.licenses
    if not set(licenses) & set(held):
        # Seed 002: subscription licenses only, "ne s'applique pas aux licences de paiement à la minute".
        planner.step(rule, version, f"organizer licenses {', '.join(held) or 'none'}",
                     f"needs one of {', '.join(licenses)}; does not apply")
        return False
    zone_version, zone = planner.countries(destinations)
    country = planner.dest.country
    if country not in zone:
        # Seed 002's table: the destination decides ("Zimbabwe ... Oui sur TOUS les appels").
        planner.step(rule, zone_version, f"destination {country} is not in {destinations}", "does not apply")
        return False
    if premium and not premium_numbers:
        planner.step(rule, version, "premium-rate number", "premium numbers never use a pool")
        return False
    planner.step("destination", zone_version, f"destination {country} is in {destinations}",
                 "a destination the benefit covers")
    planner.step(rule, version, f"organizer holds {', '.join(sorted(set(licenses) & set(held)))}",
                 "the benefit applies")
    return True

