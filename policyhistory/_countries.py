"""Where a masked or missing number went, read from what the usage report writes beside it: the readable
calling code and leading digits, the External Country column (ISO code), or the exact name the report gives
in Destination Dialed ("Germany Mobile", "Hong Kong SAR"). Never a fuzzy match: "Korea" once became North
Korea that way.

Pure functions of one value (or of a row's few values), which any reader, row-wise or columnar, can call.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

from ._country_names import REGION_NAMES
from ._errors import InvalidFieldError

MASK = re.compile(r"[*xX#]")
"""The characters the report writes for hidden digits (from May 2022: the last 3 or 4 digits in BE, DE, DK,
ES, FI, IT, NL, NO, SE, CH, FR; reference file, "Number masking")."""


NUMBER_TYPE_WORDS = {
    # What Destination Dialed appends to a country name ("Germany Mobile"), and what a Number Type column
    # says when it names the kind of number dialed. Lower case, spaces for separators.
    "mobile": "mobile",
    "cellular": "mobile",
    "toll free": "toll_free",
    "tollfree": "toll_free",
    "free phone": "toll_free",
    "freephone": "toll_free",
    "premium": "premium_rate",
    "premium rate": "premium_rate",
    "shared cost": "shared_cost",
    "fixed": "fixed_line",
    "fixed line": "fixed_line",
    "landline": "fixed_line",
    "geographic": "fixed_line",
}
"""Other values of the Number Type column ("User", "Service": the Graph documentation describes its
inventoryType as the user's own number type) say nothing of the number dialed and are ignored."""

REPORT_NAMES = {
    # The names Microsoft's reports write where they differ from phonenumbers' English region names.
    "korea": "KR",
    "korea, republic of": "KR",
    "republic of korea": "KR",
    "korea, north": "KP",
    "hong kong sar": "HK",
    "hong kong sar china": "HK",
    "macao sar": "MO",
    "macau sar": "MO",
    "macau": "MO",
    "macao sar china": "MO",
    "kosovo": "XK",
    "turkey": "TR",
    "türkiye": "TR",
    "turkiye": "TR",
    "czechia": "CZ",
    "russian federation": "RU",
    "viet nam": "VN",
    "taiwan": "TW",
    "usa": "US",
    "united states of america": "US",
    "uk": "GB",
    "great britain": "GB",
    "puerto rico": "PR",
    "north macedonia": "MK",
    "côte d'ivoire": "CI",
    "cote d'ivoire": "CI",
    "ivory coast": "CI",
    "palestinian authority": "PS",
    "myanmar": "MM",
    "congo (drc)": "CD",
    "congo": "CG",
    "bosnia and herzegovina": "BA",
    "eswatini": "SZ",
}


def _key(text: str) -> str:
    return " ".join(text.replace("-", " ").replace("_", " ").split()).casefold()


@lru_cache(maxsize=1)
def country_names() -> dict[str, str]:
    """Exact names (case and spacing aside) -> ISO alpha-2: every region phonenumbers knows by its English
    name (REGION_NAMES) and by its code, then the report's own names (REPORT_NAMES), which win."""
    names: dict[str, str] = {}
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        names[region.casefold()] = region
        if region in REGION_NAMES:
            names.setdefault(_key(REGION_NAMES[region]), region)
    names.update(REPORT_NAMES)
    return names


def number_type_word(text: object) -> str | None:
    """Our number type for a Number Type value or a Destination Dialed suffix, or None."""
    if not isinstance(text, str) or not text.strip():
        return None
    return NUMBER_TYPE_WORDS.get(_key(text))


@lru_cache(maxsize=4096)
def country_and_type_from_name(text: str) -> tuple[str, str | None]:
    """(ISO code, number type or None) of an exact Destination Dialed text: a country name or code, maybe
    followed by a number type ("Germany Toll Free" -> DE, toll_free). Anything else is an error."""
    key = _key(text)
    names = country_names()
    if key in names:
        return names[key], None
    words = key.split(" ")
    for cut in range(len(words) - 1, 0, -1):
        country, kind = " ".join(words[:cut]), " ".join(words[cut:])
        if country in names and kind in NUMBER_TYPE_WORDS:
            return names[country], NUMBER_TYPE_WORDS[kind]
    raise InvalidFieldError("Destination Dialed", text, "a country name as the report writes it (United States, "
                            "Germany Mobile, Hong Kong SAR), or an ISO code")


def country_from_text(text: str) -> str:
    """An ISO alpha-2 code from a code or an exact country name, as the usage report writes either."""
    try:
        return country_and_type_from_name(text)[0]
    except InvalidFieldError:
        raise InvalidFieldError("country", text, "a country name or ISO code") from None


_PAD_DIGITS = "0519"


@lru_cache(maxsize=65_536)
def masked_number(text: str) -> tuple[str, str] | None:
    """(country, number type) of a masked number whose calling code is readable (+49900123***), or None
    when no calling code can be read. The hidden digits are filled in, at the masked length first and then
    at the other lengths the country's plan allows, until phonenumbers finds a valid number: its region and
    type are those of the readable leading digits (a German 900 number is premium rate whatever its last
    digits). With no valid filling, the calling code's main country and an unknown type."""
    value = re.sub(r"[\s().\-/]", "", text.strip())
    if value.startswith("00"):
        value = "+" + value[2:]
    elif not value.startswith("+"):
        value = "+" + value  # the report writes E.164 numbers without their plus
    match = re.fullmatch(r"\+(\d+)([*xX#\d]*)", value)
    if match is None or not MASK.search(value):
        return None
    readable, rest = match.group(1), match.group(2)
    leading = readable + rest.split("*")[0].split("x")[0].split("X")[0].split("#")[0]
    hidden = len(value) - 1 - len(leading)
    code = _calling_code(leading)
    if code is None:
        return None
    national = leading[len(str(code)):]
    lengths = [hidden] + [n for n in range(1, 12) if n != hidden]
    for extra in lengths:
        for digit in _PAD_DIGITS:
            candidate = phonenumbers.PhoneNumber(country_code=code, national_number=int(national + digit * extra))
            if phonenumbers.is_valid_number(candidate):
                region = phonenumbers.region_code_for_number(candidate)
                kind = _type_name(phonenumbers.number_type(candidate))
                if region and region != "001":
                    return region, kind
    region = phonenumbers.region_code_for_country_code(code)
    return (region, "unknown") if region not in ("ZZ", "001") else None


def _type_name(number_type: int) -> str:
    from ._calls import NUMBER_TYPES  # _calls reads masked numbers through this module: imported late

    return NUMBER_TYPES.get(number_type, "unknown")  # type: ignore[call-overload]


def _calling_code(digits: str) -> int | None:
    """The country calling code a run of digits starts with (calling codes are prefix-free)."""
    for size in (1, 2, 3):
        code = int(digits[:size]) if len(digits) >= size else 0
        if code and phonenumbers.region_codes_for_country_code(code) and \
                phonenumbers.region_code_for_country_code(code) != "ZZ":
            return code
    return None


def masked_destination(number: object, external_country: object, dialed: object, number_type: object) -> str:
    """The destination text (an E.164 number, or "CC" / "CC:type") for a usage-report row whose Destination
    Number is masked or empty. Country, in this order: the number's readable calling code and leading
    digits; External Country (ISO code, the 25-column export); the exact name in Destination Dialed. Number
    type: the Number Type column when it names a kind of number dialed, else the Destination Dialed suffix
    ("Germany Mobile"), else what the leading digits say."""
    number_text = number.strip() if isinstance(number, str) else ""
    from_digits = masked_number(number_text) if number_text else None
    country: str | None = from_digits[0] if from_digits else None
    kind: str | None = number_type_word(number_type)
    dialed_text = dialed.strip() if isinstance(dialed, str) else ""
    named: tuple[str, str | None] | None = None
    if dialed_text and (country is None or kind is None):
        try:
            named = country_and_type_from_name(dialed_text)
        except InvalidFieldError:
            if country is None and not (isinstance(external_country, str) and external_country.strip()):
                raise
    if country is None:
        external = external_country.strip().upper() if isinstance(external_country, str) else ""
        if external in phonenumbers.SUPPORTED_REGIONS:
            country = external
        elif named is not None:
            country = named[0]
    if country is None:
        raise InvalidFieldError("Destination Number", number_text or None, "a number, or when it is masked a "
                                "readable calling code, an External Country code or a country in Destination "
                                "Dialed")
    if kind is None and named is not None and named[0] == country:
        kind = named[1]
    if kind is None and from_digits is not None:
        kind = from_digits[1]
    return f"{country}:{kind}" if kind and kind != "unknown" else country


@lru_cache(maxsize=1024)
def is_emergency_short_number(text: str) -> bool:
    """112, 911, 999 ...: a short number that is an emergency number somewhere (phonenumbers' short number
    data), dialed without a calling code."""
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit() and 2 <= len(digits) <= 4):
        return False
    return any(phonenumbers.is_emergency_number(digits, region) for region in sorted(phonenumbers.SUPPORTED_REGIONS))
