"""Policy versions: one effective-dated, bitemporal fact about how PSTN calls were billed, with its source.

A version holds over valid time [valid_from, valid_to) and is known from recorded_at on. Its params are typed
by its kind: every number, country and license a rule needs is a parameter here, never a constant in code.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import attrs
import pendulum

from ._instant import format_instant, to_instant

PoolBasis = Literal["assigned", "purchased"]
"""Which license count sizes a pool: licenses assigned to users, or licenses the tenant purchased."""


def _upper_codes(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(value.strip().upper() for value in values)


def _optional_upper_codes(values: tuple[str, ...] | None) -> tuple[str, ...] | None:
    return None if values is None else _upper_codes(values)


def _instant(value: object) -> pendulum.DateTime:
    return to_instant(value)


def _optional_instant(value: object) -> pendulum.DateTime | None:
    return None if value is None else to_instant(value)


@attrs.frozen
class Source:
    """Where a version's facts were read: the document, its publication date, the section and a short quote."""

    document: str
    section: str
    quote: str
    published: dt.date | None = None
    seed: str | None = None
    url: str | None = None


# ---- params, one class per policy kind -------------------------------------------------------------------


@attrs.frozen
class CountryListParams:
    """A named list of countries (ISO 3166 alpha-2), such as Zone A or where Audio Conferencing is sold."""

    countries: tuple[str, ...] = attrs.field(converter=_upper_codes)


@attrs.frozen
class ComplimentaryDialOutParams:
    """Meeting dial-out at no charge to the listed destinations, capped by a tenant pool or not at all."""

    destinations: str
    licenses: tuple[str, ...]
    minutes_per_user: int | None = None
    pool_basis: PoolBasis | None = None
    premium_numbers: bool = False
    tenant_countries: tuple[str, ...] | None = attrs.field(default=None, converter=_optional_upper_codes)


@attrs.frozen
class DialOutPoolParams:
    """The Audio Conferencing dial-out / Call Me At minutes: minutes per licensed user, pooled per tenant."""

    destinations: str
    licenses: tuple[str, ...]
    minutes_per_user: int
    pool_basis: PoolBasis
    premium_numbers: bool = False


@attrs.frozen
class UsCaDialOutParams:
    """The organizer add-on for unlimited (fair use) dial-out to the US and Canada, drawing on no pool."""

    countries: tuple[str, ...] = attrs.field(converter=_upper_codes)
    license: str = "us_ca_dial_out"
    prerequisite_licenses: tuple[str, ...] = ("audio_conferencing", "audio_conferencing_ppm")
    premium_numbers: bool = False


@attrs.frozen
class MinuteAllowance:
    """Minutes per user per calendar month for users whose usage location is in `countries` ("*": any other)."""

    countries: tuple[str, ...] = attrs.field(converter=_upper_codes)
    domestic_minutes: int
    international_minutes: int = 0


NumberTreatment = Literal["blocked", "communications_credits", "calling_plan"]
"""What a Calling Plan does with a call to a premium or special number: it cannot be made, Communications
Credits pay for it per minute, or it counts in the plan's minutes like any other domestic call."""


@attrs.frozen
class SpecialNumberRule:
    """An availability page's exception for premium or special numbers (France, Austria, the UK's shared-cost
    numbers): calls from a plan to `number_types` numbers in `countries` are treated as `treatment`."""

    countries: tuple[str, ...] = attrs.field(converter=_upper_codes)
    number_types: tuple[str, ...]
    treatment: NumberTreatment


@attrs.frozen
class CallingPlanParams:
    """A Calling Plan: its license, what it may call, the minutes per user, and which countries pool together.

    `availability`: the key of the list of countries where the plan is sold, with the date each was added
    (a license elsewhere, or earlier, carries no call); None in the versions recorded before that list
    existed in this catalog. `domestic_groups`: usage locations whose calls to each other are domestic
    without sharing a pool (the US and Canada). `special_number_types`: the number types (phonenumbers'
    types) the pages call premium or special; a call to one is `special_numbers_default` unless a rule of
    `special_numbers` says otherwise. `pooled` false: each user's minutes are their own (MCOPSTN8).
    """

    license: str
    scope: Literal["domestic", "domestic_and_international"]
    allowances: tuple[MinuteAllowance, ...]
    pool_basis: PoolBasis = "assigned"
    pool_groups: tuple[tuple[str, ...], ...] = ()
    availability: str | None = None
    domestic_groups: tuple[tuple[str, ...], ...] = ()
    special_number_types: tuple[str, ...] = ("premium_rate",)
    special_numbers_default: NumberTreatment = "communications_credits"
    special_numbers: tuple[SpecialNumberRule, ...] = ()
    pooled: bool = True

    def domestic_to(self, usage_location: str) -> tuple[str, ...]:
        """The countries a call from `usage_location` reaches as a domestic call: its pool group, and any
        domestic group it belongs to (calls between the US and Canada count as domestic on both plans)."""
        countries = list(self.pool_group(usage_location))
        for group in self.domestic_groups:
            if usage_location in group:
                countries += [country for country in group if country not in countries]
        return tuple(countries)

    def special_number_rule(self, country: str, number_type: str) -> SpecialNumberRule | None:
        for rule in self.special_numbers:
            if country in rule.countries and number_type in rule.number_types:
                return rule
        return None

    def allowance_for(self, usage_location: str) -> MinuteAllowance | None:
        fallback = None
        for allowance in self.allowances:
            if usage_location in allowance.countries:
                return allowance
            if "*" in allowance.countries:
                fallback = allowance
        return fallback

    def pool_group(self, usage_location: str) -> tuple[str, ...]:
        """The usage locations that share one pool with `usage_location` (US and Puerto Rico, say)."""
        for group in self.pool_groups:
            if usage_location in group:
                return group
        return (usage_location,)


@attrs.frozen
class SoldSince:
    """Countries (ISO alpha-2) where Calling Plans are sold from `since` on."""

    countries: tuple[str, ...] = attrs.field(converter=_upper_codes)
    since: dt.date


@attrs.frozen
class CallingPlanAvailabilityParams:
    """Where Microsoft sells Calling Plans, each country with the date its availability page first listed it.

    A country counts as sold throughout a version's valid time when its date is on or before the version's
    valid_from (the catalog cuts the versions' valid time at every such date)."""

    sold: tuple[SoldSince, ...]

    def since(self, country: str) -> dt.date | None:
        for entry in self.sold:
            if country in entry.countries:
                return entry.since
        return None

    def countries(self) -> tuple[str, ...]:
        return tuple(country for entry in self.sold for country in entry.countries)


@attrs.frozen
class CommunicationsCreditsParams:
    """Per-minute billing from the tenant's Communications Credits: who may use them and what they need."""

    license: str = "communications_credits"
    tenant_setup_required: bool = True


@attrs.frozen
class MinuteRoundingParams:
    """How a call's duration becomes billable minutes."""

    unit_seconds: int = 60
    mode: Literal["up", "nearest", "down"] = "up"


@attrs.frozen
class PoolAlertsParams:
    """Percentages of a pool at which administrators are notified."""

    thresholds_percent: tuple[int, ...]


@attrs.frozen
class NumberTypeWarningParams:
    """A warning attached to calls of some types to some number types (toll-free dial-out may not connect)."""

    number_types: tuple[str, ...]
    call_types: tuple[str, ...]
    warning: str


@attrs.frozen
class RatingBasisParams:
    """What decides a call's rate: the destination, not where the organizer or caller is."""

    basis: Literal["destination"]


@attrs.frozen
class DialInParams:
    """Calls into the tenant's meeting or service numbers: free on toll numbers, credits on toll-free ones."""

    credit_number_types: tuple[str, ...]


Params = (
    CountryListParams
    | ComplimentaryDialOutParams
    | DialOutPoolParams
    | UsCaDialOutParams
    | CallingPlanParams
    | CallingPlanAvailabilityParams
    | CommunicationsCreditsParams
    | MinuteRoundingParams
    | PoolAlertsParams
    | NumberTypeWarningParams
    | RatingBasisParams
    | DialInParams
)

PARAMS_BY_KIND: dict[str, type[Params]] = {
    "country_list": CountryListParams,
    "complimentary_dial_out": ComplimentaryDialOutParams,
    "dial_out_pool": DialOutPoolParams,
    "us_ca_dial_out": UsCaDialOutParams,
    "calling_plan": CallingPlanParams,
    "calling_plan_availability": CallingPlanAvailabilityParams,
    "communications_credits": CommunicationsCreditsParams,
    "minute_rounding": MinuteRoundingParams,
    "pool_alerts": PoolAlertsParams,
    "number_type_warning": NumberTypeWarningParams,
    "rating_basis": RatingBasisParams,
    "dial_in": DialInParams,
}
"""Every policy kind and the type of its params; a catalog record of another kind is refused at load."""


@attrs.frozen
class PolicyVersion:
    """One version of one policy key, effective over [valid_from, valid_to) and known from recorded_at on.

    `in_force = False` makes the version a retraction: over its interval the key is not in force, from
    its recording on.
    """

    id: str
    key: str
    kind: str
    valid_from: pendulum.DateTime = attrs.field(converter=_instant)
    valid_to: pendulum.DateTime | None = attrs.field(converter=_optional_instant)
    recorded_at: pendulum.DateTime = attrs.field(converter=_instant)
    params: Params | None
    source: Source
    notes: str = ""
    in_force: bool = True

    def covers(self, instant: pendulum.DateTime) -> bool:
        """Half-open: valid_from is inside, valid_to is outside."""
        return self.valid_from <= instant and (self.valid_to is None or instant < self.valid_to)

    def interval_text(self) -> str:
        end = format_instant(self.valid_to) if self.valid_to is not None else "open"
        return f"[{format_instant(self.valid_from)}, {end})"
