"""A call as the evaluator sees it, and the destination a dialed number names."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Literal

import attrs
import pendulum
import phonenumbers
from phonenumbers import PhoneNumberType

from ._countries import MASK, is_emergency_short_number, masked_number
from ._errors import InvalidFieldError
from ._instant import to_instant
from ._rows import refuse_lone_surrogates
from ._tenants import country_code, normalise_sku

CallType = Literal["conference_dial_out", "pstn_outbound", "conference_dial_in", "pstn_inbound", "emergency"]
CALL_TYPES: tuple[CallType, ...] = ("conference_dial_out", "pstn_outbound", "conference_dial_in", "pstn_inbound",
                                    "emergency")

CALL_TYPE_ALIASES: dict[str, CallType] = {
    # The Teams PSTN usage report's Call Type values (reference file).
    "conf_out": "conference_dial_out",
    "ucap_out_conf": "conference_dial_out",
    # A user's own PSTN calls, carried by their Calling Plan or Credits, never by Audio Conferencing: adding
    # two or more PSTN parties to a call (user_out_conf), transferring (user_out_transfer), forwarding.
    "user_out_conf": "pstn_outbound",
    "user_out": "pstn_outbound",
    "user_out_transfer": "pstn_outbound",
    "user_out_forwarding": "pstn_outbound",
    "ucap_out": "pstn_outbound",
    "emergency_out": "emergency",
    "dr_emergency_out": "emergency",
    "fmc_out": "pstn_outbound",
    "conf_in": "conference_dial_in",
    "user_in": "pstn_inbound",
    "ucap_in": "pstn_inbound",
    "emergency_in": "pstn_inbound",
    "fmc_in": "pstn_inbound",
    "unassigned_in": "pstn_inbound",
}

NUMBER_TYPES = {
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "unknown",
}

UK_SHARED_COST = ("843", "844", "845", "870", "871", "872")
"""The UK's 0843, 0844, 0845, 0870, 0871 and 0872 numbers, which phonenumbers' metadata types as premium rate:
Microsoft's UK availability page calls them shared-cost and allows them on a Calling Plan, while 09 numbers
are premium (policy-facts.md, 'Calling Plans by country'), so they are classified as shared_cost, the type
France's 081x/082x numbers have in phonenumbers. A rule then sees them as the pages do, and a plan, which
reads a destination's country and number type only, decides the same for every number of one type."""

_COUNTRY_ONLY = re.compile(r"^[A-Za-z]{2}$")
_COUNTRY_AND_TYPE = re.compile(r"^([A-Za-z]{2}):([a-z_]+)$")
_DIAL_NOISE = re.compile(r"[\s().\-]")
# phonenumbers compiles its metadata's patterns through the re module's cache (512 patterns); numbers from a
# few dozen countries overflow it and every classification recompiles some. Keeping them all costs a bounded
# amount (the metadata is fixed) and makes classifying a new number about 15 % cheaper.
phonenumbers.enable_pattern_cache()


def call_type(value: str) -> CallType:
    text = value.strip().lower() if isinstance(value, str) else ""  # not str: a record without the field
    if text in CALL_TYPES:
        return text  # type: ignore[return-value]
    if text in CALL_TYPE_ALIASES:
        return CALL_TYPE_ALIASES[text]
    raise InvalidFieldError("call_type", value, f"one of {', '.join(CALL_TYPES)} or {', '.join(CALL_TYPE_ALIASES)}")


@attrs.frozen
class Destination:
    """Where a call went: the country (ISO alpha-2) and the kind of number, read from the number dialed."""

    country: str
    number_type: str
    number: str | None = None


def destination_of(value: str) -> Destination:
    """An E.164 number (phonenumbers tells its country and type), or a bare country code (type unknown).

    phonenumbers' public API only: parse, region_code_for_number, number_type, format_number. Not cached
    (classify_destination is): a re-rating classifies each distinct number once and keeps its own memory.
    """
    if not isinstance(value, str):  # a record without the field, or a file without the column
        raise InvalidFieldError("destination", value, "an E.164 number such as +33142685300, or a country code")
    text = value.strip()
    if _COUNTRY_ONLY.match(text):
        return Destination(country_code(text, "destination"), "unknown")
    special = _special_destination(text)
    if special is not None:
        return special
    digits = _DIAL_NOISE.sub("", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif not digits.startswith("+") and digits.isdigit():
        digits = "+" + digits  # the usage report writes E.164 numbers without their plus
    try:
        number = phonenumbers.parse(digits, None)
    except phonenumbers.NumberParseException:
        expected = "an E.164 number such as +33142685300, or a country code"
        raise InvalidFieldError("destination", value, expected) from None
    region = phonenumbers.region_code_for_number(number)
    if not region or region == "001":
        raise InvalidFieldError("destination", value, "a number in a country's numbering plan")
    kind = NUMBER_TYPES.get(phonenumbers.number_type(number), "unknown")
    if kind == "premium_rate" and region == "GB" and str(number.national_number).startswith(UK_SHARED_COST):
        kind = "shared_cost"
    return Destination(region, kind, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


classify_destination = lru_cache(maxsize=65_536)(destination_of)
"""destination_of, cached: a call file dials the same numbers again and again, and parsing is the costliest
step of rating one call."""


def _special_destination(text: str) -> Destination | None:
    """A country with its number type ("DE:mobile", what a masked row's columns say), a masked number whose
    calling code is readable (see _countries.masked_number), or an emergency short number (112, 911): the
    country "ZZ" (unknown: 112 is an emergency number in many countries) and the type "emergency"."""
    pair = _COUNTRY_AND_TYPE.match(text)
    if pair is not None:
        kind = pair.group(2)
        if kind not in NUMBER_TYPES.values() and kind != "emergency":
            expected = f"a country code with one of {', '.join(NUMBER_TYPES.values())}"
            raise InvalidFieldError("destination", text, expected)
        return Destination(country_code(pair.group(1), "destination"), kind)
    if MASK.search(text):
        found = masked_number(text)
        if found is None:
            raise InvalidFieldError("destination", text, "a masked number with a readable calling code (+49900123***)")
        return Destination(found[0], found[1])
    if is_emergency_short_number(text):
        return Destination("ZZ", "emergency", text.strip())
    return None


def _instant(value: object) -> pendulum.DateTime:
    return to_instant(value, "start")


MAX_CALL_SECONDS = 31 * 86_400
"""Far longer than a call lasts: a longer duration is a data error, and refusing it keeps billable minutes
within a 32-bit integer (the re-rating's sort key)."""


def _duration(value: object) -> int:
    """A whole number of seconds written in ASCII digits: "1.5" (a fraction), "٣٠" (other digits) and "1_000"
    (Python's digit grouping) are refused, not read as 1, 30 and 1000. An int (from Python) is taken as is."""
    if type(value) is int:
        seconds = value
    else:
        text = value.strip() if isinstance(value, str) else str(value)
        if not (text.isascii() and text.isdigit()) or len(text) > 12:
            raise InvalidFieldError("duration_seconds", value, "a whole number of seconds")
        seconds = int(text)
    if not 0 <= seconds <= MAX_CALL_SECONDS:
        raise InvalidFieldError("duration_seconds", value, f"0 to {MAX_CALL_SECONDS} seconds (31 days)")
    return seconds


@lru_cache(maxsize=4096)
def _skus_text(value: str) -> tuple[str, ...]:
    """A ';'-separated list of SKUs, normalised; cached because a call file repeats a few such lists."""
    return tuple(sorted({normalise_sku(part) for part in re.split(r"[;,]", value) if part.strip()}))


def _skus(value: object) -> tuple[str, ...]:
    """A call's licenses; an unknown SKU is an error of the call's field `licenses` (the licenses file's own
    column is `sku`), naming the SKU."""
    if not isinstance(value, str) and not isinstance(value, Iterable):
        raise InvalidFieldError("licenses", value, "a list of SKUs, or SKUs separated by ';'")
    try:
        return _skus_text(value) if isinstance(value, str) else tuple(sorted({normalise_sku(part) for part in value}))
    except InvalidFieldError as error:
        raise InvalidFieldError("licenses", error.value, error.expected) from None


CARRIERS = ("operator_connect", "direct_routing")
"""Carriers other than Microsoft: the customer's own operator, whose calls Microsoft does not bill."""


def _carrier(value: object) -> str | None:
    if value in (None, "", "microsoft"):
        return None
    text = "_".join(str(value).strip().lower().replace("-", " ").split())  # "Operator Connect" too
    if text == "microsoft":
        return None
    if text not in CARRIERS:
        raise InvalidFieldError("carrier", value, f"one of {', '.join(CARRIERS)}, microsoft, or nothing")
    return text


def _optional_country(value: object) -> str | None:
    return None if value in (None, "") else country_code(value, "usage_location")


def _identifier(value: object, field: str) -> str:
    text = value if type(value) is str else ("" if value is None else str(value))
    if not text or "\0" in text:
        raise InvalidFieldError(field, value, "a value (the field is required) without NUL characters")
    return text


def _call_id(value: object) -> str:
    return _identifier(value, "call_id")


def _tenant_id(value: object) -> str:
    return _identifier(value, "tenant_id")


@attrs.frozen
class Call:
    """One call: who placed it under which licenses, when, for how long, and which number it reached.

    `user_id` is the meeting organizer for conference calls and the calling user otherwise;
    `usage_location` and `licenses` are theirs. Normalised at construction (UTC start, our SKU names).
    """

    call_id: str = attrs.field(converter=_call_id)
    tenant_id: str = attrs.field(converter=_tenant_id)
    start: pendulum.DateTime = attrs.field(converter=_instant)
    duration_seconds: int = attrs.field(converter=_duration)
    call_type: CallType = attrs.field(converter=call_type)
    destination: str
    user_id: str = ""
    usage_location: str | None = attrs.field(default=None, converter=_optional_country)
    licenses: tuple[str, ...] = attrs.field(default=(), converter=_skus)
    usage_id: str | None = None
    """The usage report's UsageId (Graph's id): unique where Call ID is not (a forwarded leg shares its Call ID)."""
    carrier: str | None = attrs.field(default=None, converter=_carrier)
    """Who carried the call when not Microsoft: "operator_connect" or "direct_routing" (see _exempt)."""

    @property
    def key(self) -> str:
        """The call's identity for pools and duplicates: its UsageId where the layout has one, else call_id."""
        return self.usage_id or self.call_id


CALL_FIELDS = ("call_id", "tenant_id", "start", "duration_seconds", "call_type", "destination")


def call_from_mapping(data: dict[str, Any]) -> Call:
    """A Call from JSON-like data; accepts our field names and organizer_* synonyms. A text holding half of a
    surrogate pair is refused, as rerate refuses the row (see refuse_lone_surrogates)."""
    refuse_lone_surrogates(data)
    for name in CALL_FIELDS:
        if data.get(name) in (None, ""):
            raise InvalidFieldError(name, data.get(name), "a value (the field is required)")
    return Call(
        call_id=str(data["call_id"]),
        tenant_id=str(data["tenant_id"]),
        start=data["start"],
        duration_seconds=data["duration_seconds"],
        call_type=str(data["call_type"]),
        destination=str(data["destination"]),
        user_id=str(data.get("user_id") or data.get("organizer_id") or ""),
        usage_location=data.get("usage_location", data.get("organizer_usage_location")),
        licenses=data.get("licenses", data.get("organizer_licenses")) or (),
        usage_id=str(data["usage_id"]) if data.get("usage_id") not in (None, "") else None,
        carrier=data.get("carrier"),
    )
