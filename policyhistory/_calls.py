"""A call as the evaluator sees it, and the destination a dialed number names."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Literal

import attrs
import pendulum
import phonenumbers
from phonenumbers import PhoneNumberType, phonenumberutil
from phonenumbers.phonemetadata import PhoneMetadata

from ._errors import InvalidFieldError
from ._instant import to_instant
from ._tenants import country_code, normalise_sku

CallType = Literal["conference_dial_out", "pstn_outbound", "conference_dial_in", "pstn_inbound"]
CALL_TYPES: tuple[CallType, ...] = ("conference_dial_out", "pstn_outbound", "conference_dial_in", "pstn_inbound")

CALL_TYPE_ALIASES: dict[str, CallType] = {
    # The Teams PSTN usage report's Call Type values (reference file).
    "conf_out": "conference_dial_out",
    "ucap_out_conf": "conference_dial_out",
    "user_out_conf": "conference_dial_out",
    "user_out": "pstn_outbound",
    "user_out_transfer": "pstn_outbound",
    "user_out_forwarding": "pstn_outbound",
    "ucap_out": "pstn_outbound",
    "emergency_out": "pstn_outbound",
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

_COUNTRY_ONLY = re.compile(r"^[A-Za-z]{2}$")
_DIAL_NOISE = re.compile(r"[\s().\-]")
# phonenumbers compiles its metadata's patterns through the re module's cache (512 patterns); numbers from a
# few dozen countries overflow it and every classification recompiles some. Keeping them all costs a bounded
# amount (the metadata is fixed) and makes classifying a new number about 15 % cheaper.
phonenumbers.enable_pattern_cache()


def call_type(value: str) -> CallType:
    text = value.strip().lower()
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


@lru_cache(maxsize=65_536)
def classify_destination(value: str) -> Destination:
    """An E.164 number (phonenumbers tells its country and type), or a bare country code (type unknown).

    Cached: a call file dials the same numbers again and again, and parsing is the costliest step.
    """
    text = value.strip()
    if _COUNTRY_ONLY.match(text):
        return Destination(country_code(text, "destination"), "unknown")
    digits = _DIAL_NOISE.sub("", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif not digits.startswith("+") and digits.isdigit():
        digits = "+" + digits  # the usage report writes E.164 numbers without their plus
    try:
        number = _parse(digits)
    except phonenumbers.NumberParseException:
        expected = "an E.164 number such as +33142685300, or a country code"
        raise InvalidFieldError("destination", value, expected) from None
    region = phonenumbers.region_code_for_number(number)
    if not region or region == "001":
        raise InvalidFieldError("destination", value, "a number in a country's numbering plan")
    return Destination(region, NUMBER_TYPES.get(_number_type(number, region), "unknown"),
                       phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


_PARSE_STEPS = (
    getattr(phonenumberutil, "_extract_country_code", None),
    getattr(phonenumberutil, "_maybe_strip_national_prefix_carrier_code", None),
    getattr(phonenumberutil, "_test_number_length", None),
    getattr(phonenumberutil, "_set_italian_leading_zeros_for_phone_number", None),
)
_PREFIX_KEPT = (phonenumberutil.ValidationResult.TOO_SHORT, phonenumberutil.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
                phonenumberutil.ValidationResult.INVALID_LENGTH)
_MIN_NSN = getattr(phonenumberutil, "_MIN_LENGTH_FOR_NSN", 2)
_NSN_LENGTHS = range(_MIN_NSN, getattr(phonenumberutil, "_MAX_LENGTH_FOR_NSN", 17) + 1)


def _parse(digits: str) -> phonenumbers.PhoneNumber:
    """phonenumbers.parse(digits, None), for the form nearly every call record's number has: "+" and ASCII digits.

    parse reads whatever a person might type (letters, punctuation, extensions, RFC 3966 contexts), and that
    search is most of its cost: 11.3 us a number on the benchmark's 198,334 numbers. For "+" and digits, what
    it does besides is these steps of its own (phonenumberutil.parse, 9.0.43): take the calling code; strip a
    national prefix (+44 07911 ... is +44 7911 ...) where what remains has a possible length; mark Italian
    leading zeros. They take 3 us. They are phonenumbers' private helpers, in the releases we require (9.0.43
    on); without them, or for any other text or any number parse would refuse, parse itself is asked, and
    raises its own error. Checked against parse in tests/test_destination.py, which CI runs with the newest
    release: a change to parse's steps fails there.
    """
    extract_calling_code, strip_national_prefix, test_length, set_leading_zeros = _PARSE_STEPS
    rest = digits[1:]
    if (set_leading_zeros is None or extract_calling_code is None or strip_national_prefix is None
            or test_length is None or not (rest.isascii() and rest.isdigit())):
        return phonenumbers.parse(digits, None)
    calling_code, national = extract_calling_code(rest)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(
        calling_code, phonenumbers.region_code_for_country_code(calling_code)) if calling_code else None
    if metadata is None or len(national) not in _NSN_LENGTHS:
        return phonenumbers.parse(digits, None)
    _, stripped, _ = strip_national_prefix(national, metadata)
    if test_length(stripped, metadata) not in _PREFIX_KEPT:
        national = stripped
    if len(national) not in _NSN_LENGTHS:
        return phonenumbers.parse(digits, None)
    number = phonenumbers.PhoneNumber(country_code=calling_code)
    set_leading_zeros(national, number)
    number.national_number = int(national)
    return number


_TYPE_IN_REGION = getattr(phonenumberutil, "_number_type_helper", None)
"""phonenumbers.number_type(number) looks the number's region up again, and for a calling code that several
regions share (+1, +44, +7, +61 ...) that means testing the number against each region's patterns in turn:
a third of classifying such a number. Its second half, given the region found, is this helper (private, but in
every release since the port from libphonenumber); without it, number_type is asked. Checked against
number_type in tests/test_destination.py."""


def _number_type(number: phonenumbers.PhoneNumber, region: str) -> int:
    """phonenumbers.number_type(number), given the region phonenumbers.region_code_for_number found."""
    if _TYPE_IN_REGION is None:
        return int(phonenumbers.number_type(number))
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(number.country_code or 0, region)
    if metadata is None:
        return PhoneNumberType.UNKNOWN
    return int(_TYPE_IN_REGION(phonenumbers.national_significant_number(number), metadata))


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
    if isinstance(value, str):
        return _skus_text(value)
    if not isinstance(value, Iterable):
        raise InvalidFieldError("licenses", value, "a list of SKUs, or SKUs separated by ';'")
    return tuple(sorted({normalise_sku(part) for part in value}))


def _optional_country(value: object) -> str | None:
    return None if value in (None, "") else country_code(value, "usage_location")


@attrs.frozen
class Call:
    """One call: who placed it under which licenses, when, for how long, and which number it reached.

    `user_id` is the meeting organizer for conference calls and the calling user otherwise;
    `usage_location` and `licenses` are theirs. Normalised at construction (UTC start, our SKU names).
    """

    call_id: str
    tenant_id: str
    start: pendulum.DateTime = attrs.field(converter=_instant)
    duration_seconds: int = attrs.field(converter=_duration)
    call_type: CallType = attrs.field(converter=call_type)
    destination: str
    user_id: str = ""
    usage_location: str | None = attrs.field(default=None, converter=_optional_country)
    licenses: tuple[str, ...] = attrs.field(default=(), converter=_skus)


CALL_FIELDS = ("call_id", "tenant_id", "start", "duration_seconds", "call_type", "destination")


def call_from_mapping(data: dict[str, Any]) -> Call:
    """A Call from JSON-like data; accepts our field names and organizer_* synonyms."""
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
    )
