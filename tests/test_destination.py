"""A dialed number's destination: the country and number type phonenumbers gives, or a clear refusal."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyhistory import InvalidFieldError, classify_destination


@pytest.mark.parametrize(("dialed", "expected"), [
    ("+33142685300", ("FR", "fixed_line", "+33142685300")),
    ("+33 6 12 34 56 78", ("FR", "mobile", "+33612345678")),
    ("0033142685300", ("FR", "fixed_line", "+33142685300")),
    ("33142685300", ("FR", "fixed_line", "+33142685300")),  # the usage report drops the plus
    ("+1 (415) 555-2671", ("US", "fixed_line_or_mobile", "+14155552671")),
    ("+14165550123", ("CA", "fixed_line_or_mobile", "+14165550123")),  # +1, not the first region of the code
    ("+17875551234", ("PR", "fixed_line_or_mobile", "+17875551234")),
    ("+18005551234", ("US", "toll_free", "+18005551234")),
    ("+449012345678", ("GB", "premium_rate", "+449012345678")),
    ("+447911123456", ("GG", "mobile", "+447911123456")),  # +44, a Guernsey mobile range
    ("+263242700000", ("ZW", "fixed_line", "+263242700000")),
    ("FR", ("FR", "unknown", None)),
])
def test_destination_country_and_type(dialed, expected):
    destination = classify_destination(dialed)
    assert expected == (destination.country, destination.number_type, destination.number)


@pytest.mark.parametrize(("dialed", "expected"), [
    ("not a number", "an E.164 number such as +33142685300, or a country code"),
    ("+80012345678", "a number in a country's numbering plan"),  # international freephone: no country
    ("ZZ", "an ISO 3166 alpha-2 country code"),
])
def test_destination_refused_with_what_was_expected(dialed, expected):
    with pytest.raises(InvalidFieldError) as raised:
        classify_destination(dialed)
    assert "destination" == raised.value.field
    assert expected in str(raised.value)


# Calling codes that several regions share, where the region is found by testing each region's patterns, and
# a few that one region has; digits drawn at random, so that most numbers are invalid or unusual.
SHARED_CODES = ["1", "7", "44", "47", "61", "212", "262", "290", "358", "590", "599", "39", "33", "49", "263"]


@settings(max_examples=400, deadline=None)
@given(code=st.sampled_from(SHARED_CODES), digits=st.text("0123456789", min_size=4, max_size=12))
def test_destination_agrees_with_phonenumbers_public_functions(code, digits):
    """The number type comes from the region already found (not phonenumbers.number_type, which finds it a
    second time); it must be what number_type says, for every number."""
    dialed = f"+{code}{digits}"
    try:
        number = phonenumbers.parse(dialed, None)
    except phonenumbers.NumberParseException:
        with pytest.raises(InvalidFieldError):
            classify_destination(dialed)
        return
    region = phonenumbers.region_code_for_number(number)
    if not region or region == "001":
        with pytest.raises(InvalidFieldError):
            classify_destination(dialed)
        return
    destination = classify_destination(dialed)
    kind = phonenumbers.number_type(number)
    assert (region, kind) == (destination.country, _TYPES[destination.number_type])


_TYPES = {name: getattr(phonenumbers.PhoneNumberType, name.upper()) for name in (
    "fixed_line", "mobile", "fixed_line_or_mobile", "toll_free", "premium_rate", "shared_cost", "voip",
    "personal_number", "pager", "uan", "voicemail", "unknown")}
