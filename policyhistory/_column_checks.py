"""The checks every row of our layout needs, made on whole columns, for the columnar readers of CSV files
(_columnar) and JSON Lines files (_columnar_json): start instants to UTC microseconds, durations, billed
values, the optional usage_id, and call type, usage location, licenses and carrier once per distinct value.

A row passes only where the row-by-row code (_reading.ShardReading._rows, _layouts.OwnLayout.read) would read the same
values from it without an error; any other row is left to that code, which rejects it with its error or
reads a form these checks do not take (an offset start, a duration with spaces, an exponent).
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from ._layouts import BLANK
from ._rating import OUTCOMES

# ASCII digits: \d would take other scripts' digits, which polars does not read as numbers and Python's float
# does ("94٣6" is 9436.0): such a value is left to the row-by-row reading.
# Seconds up to 59: polars reads a leap second (23:59:60) as the next minute's first, Python's fromisoformat
# and pendulum refuse it, and the row-by-row reading rejects the row.
START = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-5][0-9]:[0-5][0-9]Z$"
DURATION = r"^[0-9]{1,6}$"
_NUMBER = r"^-?[0-9]{1,12}(\.[0-9]{1,12})?$"
_MINUTES = r"^[0-9]{1,12}(\.0{1,12})?$"
"""Billed minutes: whole, not negative (_layouts._billed_minutes; "15.0" is 15)."""

_CURRENCY = r"^([A-Z]{3})?$"

KindOf = Callable[[str | None, str | None, str | None, str | None], tuple[str, str | None, str, str | None] | None]
"""(call type, usage location, licenses, carrier) as given -> normalised (licenses joined by line breaks), or
None when the row-by-row check refuses them."""

NAMED = ("line", "at", "call_id", "tenant_id", "start", "duration_text", "call_type", "location", "licenses",
         "destination", "outcome", "minutes", "charge", "currency", "user_id", "usage_id", "carrier")
"""The columns `checked` takes, all text but line and at (the row's place in its piece), as the layout reader
gives them: None where the row has no value; `location` and `user_id` already the first given of their
synonyms (as OwnLayout.read takes them)."""


def synonym_or(value: pl.Expr, synonym: pl.Expr) -> pl.Expr:
    """_layouts.first_given by columns: the value, or its synonym where the row does not give the value (null,
    empty, or spaces and tabs beside a synonym that is given)."""
    def given(column: pl.Expr) -> pl.Expr:
        return column.fill_null("").str.strip_chars(BLANK) != ""

    return pl.when((value.fill_null("") != "") & (given(value) | ~given(synonym))).then(value).otherwise(synonym)


def checked(named: pl.DataFrame, kind_of: KindOf) -> tuple[pl.DataFrame, pl.Series]:
    """(the rows that pass, in the columns a shard needs but seq and file; whether each row passed)."""
    outcome_raw = pl.col("outcome").fill_null("")
    billed = (outcome_raw != "") | (pl.col("minutes").fill_null("") != "") | (pl.col("charge").fill_null("") != "")
    frame = named.with_columns(
        billed.alias("billed"),
        pl.when(outcome_raw == "").then(None).otherwise(outcome_raw.str.strip_chars().str.to_lowercase())
        .alias("billed_outcome"),
        pl.col("minutes").fill_null("").alias("minutes_text"),
        pl.col("charge").fill_null("").alias("charge_text"),
        pl.col("user_id").fill_null(""),
        pl.col("licenses").fill_null(""),  # OwnLayout.read: `licenses or ()`, none given is no licenses
        # OwnLayout.read: `values[...] or None`, an empty usage_id or carrier is none.
        pl.when(pl.col("usage_id") == "").then(None).otherwise(pl.col("usage_id")).alias("usage_id"),
        pl.when(pl.col("carrier") == "").then(None).otherwise(pl.col("carrier")).alias("carrier"),
    )
    frame = frame.with_columns(
        pl.col("start").str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%SZ", strict=False)
        .dt.epoch("us").alias("start_us"),
        pl.col("duration_text").str.to_integer(strict=False).alias("duration"),
        pl.col("minutes_text").str.strip_chars().cast(pl.Float64, strict=False).alias("minutes_number"),
        # + 0.0: a charge of -0 is 0 (as _layouts._number reads it), not -0.0 in the record.
        (pl.col("charge_text").str.strip_chars().cast(pl.Float64, strict=False) + 0.0).alias("charge_number"),
    )
    ok = (
        (pl.col("call_id") != "") & ~pl.col("call_id").str.contains("\x00", literal=True)
        & (pl.col("tenant_id") != "") & ~pl.col("tenant_id").str.contains("\x00", literal=True)
        & (pl.col("usage_id").is_null() | ~pl.col("usage_id").str.contains("\x00", literal=True))
        & pl.col("start").str.contains(START) & pl.col("start_us").is_not_null() & (pl.col("start") >= "1900")
        & pl.col("duration_text").str.contains(DURATION) & pl.col("duration").is_not_null()
        & pl.col("destination").is_not_null()
        & (~pl.col("billed") | (
            (pl.col("billed_outcome").is_null() | pl.col("billed_outcome").is_in(list(OUTCOMES)))
            & ((pl.col("minutes_text") == "") | pl.col("minutes_text").str.strip_chars().str.contains(_MINUTES))
            & ((pl.col("charge_text") == "") | pl.col("charge_text").str.strip_chars().str.contains(_NUMBER))
            # A currency as its code is written (USD); another ("usd", " USD ") is read row by row, which
            # writes it so (_layouts.currency_code), rather than repeat Python's spaces and capitals in polars.
            & (pl.col("currency").is_null() | pl.col("currency").str.contains(_CURRENCY))))
    )
    frame = frame.with_columns(ok.fill_null(False).alias("ok"))
    # Call type, usage location, licenses and carrier: checked once per distinct combination, by the
    # row-by-row code (ShardReading._kind_of).
    given = ["call_type", "location", "licenses", "carrier"]
    kinds = frame.filter(pl.col("ok")).select(given).unique()
    found = [(*key, *(kind_of(*key) or (None, None, None, None))) for key in kinds.iter_rows()]
    kind_frame = pl.DataFrame(found, schema={**dict.fromkeys(given, pl.String), "kind_type": pl.String,
                                             "kind_location": pl.String, "kind_licenses": pl.String,
                                             "kind_carrier": pl.String}, orient="row")
    frame = frame.join(kind_frame, on=given, how="left", nulls_equal=True, maintain_order="left")
    passed = (frame["ok"] & frame["kind_type"].is_not_null()).alias("ok")
    is_billed = pl.col("billed")

    def when_billed(value: pl.Expr) -> pl.Expr:
        return pl.when(is_billed).then(value).otherwise(None)

    good = frame.filter(passed).select(
        "line", "at", "call_id", "usage_id", pl.coalesce("usage_id", "call_id").alias("key"), "tenant_id",
        "start_us", "start", "duration", pl.col("kind_type").alias("call_type"),
        pl.col("kind_location").alias("location"), pl.col("kind_licenses").alias("licenses"),
        pl.col("kind_carrier").alias("carrier"), "destination", "billed", "billed_outcome",
        when_billed(pl.when(pl.col("minutes_text") == "").then(None)
                    .otherwise(pl.col("minutes_number").cast(pl.Int64))).alias("billed_minutes"),
        when_billed(pl.when(pl.col("charge_text") == "").then(None).otherwise(pl.col("charge_number")))
        .alias("billed_charge"),
        when_billed(pl.when(pl.col("currency") == "").then(None).otherwise(pl.col("currency")))
        .alias("billed_currency"),
        "user_id",
    )
    return good, passed
