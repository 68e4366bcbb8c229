"""Rate cards: loading (append-only, chained, every problem named) and resolution by valid time and known_at."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

import policyhistory
from policyhistory.cli import cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CARD = EXAMPLES / "ratecard.csv"
HEADER = "valid_from,valid_to,recorded_at,destination_country,number_type,per_minute,connection_fee,currency,source\n"


def write(tmp_path, text, name="rates.csv"):
    path = tmp_path / name
    path.write_text(HEADER + text, encoding="utf-8")
    return path


def test_ratecards_load_through_the_cli_is_idempotent_and_chained(tmp_path):
    db = str(tmp_path / "p.db")
    first = CliRunner().invoke(cli, ["--db", db, "load", "--rates", str(CARD)])
    assert 0 == first.exit_code, first.output
    assert first.output.startswith("added 8 record(s), 0 already stored")
    assert "  + rate_cards FR/* from 2021-01-01T00:00:00Z recorded 2021-06-01T00:00:00Z" in first.output
    again = CliRunner().invoke(cli, ["--db", db, "load", "--rates", str(CARD)])
    assert again.output.startswith("added 0 record(s), 8 already stored")
    verified = CliRunner().invoke(cli, ["--db", db, "verify"])
    assert 0 == verified.exit_code and "8 rate_cards rows" in verified.output


def test_ratecards_resolve_by_the_calls_instant_and_known_at(fresh_store):
    fresh_store.load_rates(CARD)
    card = fresh_store.rate_cards()
    price = {}
    for at, known in [("2020-06-01", "2026-01-01"), ("2021-04-10", "2021-05-01"), ("2021-04-10", "2021-06-01"),
                      ("2020-12-31T23:59:59Z", "2026-01-01"), ("2017-12-31", "2026-01-01")]:
        entry = card.resolve("FR", "fixed_line", at, known)
        price[(at, known)] = None if entry is None else entry.per_minute
    assert {("2020-06-01", "2026-01-01"): Decimal("0.024"),      # before the revision's valid time
            ("2021-04-10", "2021-05-01"): Decimal("0.024"),      # the revision not yet known
            ("2021-04-10", "2021-06-01"): Decimal("0.02"),       # known from its recorded_at on
            ("2020-12-31T23:59:59Z", "2026-01-01"): Decimal("0.024"),  # half-open: valid_from is inside
            ("2017-12-31", "2026-01-01"): None} == price          # before any entry's valid time
    # The number type's own entry answers before the country's "*" entry; an unknown country has no price.
    assert Decimal("0.018") == card.resolve("US", "toll_free", "2021-06-20", dt.date(2026, 1, 1)).per_minute
    assert Decimal("0.024") == card.resolve("US", "mobile", "2021-06-20", dt.date(2026, 1, 1)).per_minute
    assert card.resolve("ZW", "fixed_line", "2021-06-20", dt.date(2026, 1, 1)) is None
    assert Decimal("0.42") == card.resolve("FR", "mobile", "2022-01-01", "2026-01-01").charge(21)
    assert Decimal(0) == card.resolve("FR", "mobile", "2022-01-01", "2026-01-01").charge(0)


def test_ratecards_valid_to_ends_an_entry_and_a_connection_fee_is_per_charged_call(fresh_store, tmp_path):
    fresh_store.load_rates(write(tmp_path, "2019-01-01,2020-01-01,2019-01-01,JP,*,0.10,0.05,JPY,list A\n"))
    card = fresh_store.rate_cards()
    assert Decimal("0.35") == card.resolve("JP", "mobile", "2019-12-31", "2026-01-01").charge(3)
    assert card.resolve("JP", "mobile", "2020-01-01", "2026-01-01") is None


def test_ratecards_every_problem_named_by_file_line_field_and_value(fresh_store, tmp_path):
    bad = write(tmp_path, "2019-01-01,,2019-01-01,XX,*,0.1,0,USD,a\n"
                          "2019-01-01,,2019-01-01,FR,cellular,0.1,0,USD,a\n"
                          "2019-01-01,,2019-01-01,FR,*,ten cents,0,USD,a\n"
                          "2019-01-01,,2019-01-01T10:00:00,FR,*,0.1,0,USD,a\n"
                          "2019-01-01,2018-01-01,2019-01-01,FR,*,0.1,0,dollars,\n")
    with pytest.raises(policyhistory.InvalidRecordsError) as caught:
        fresh_store.load_rates(bad)
    found = [(p.line, p.field) for p in caught.value.problems]
    assert [(2, "destination_country"), (3, "number_type"), (4, "per_minute"), (5, "recorded_at"),
            (6, "currency")] == found
    assert "expected a decimal amount such as 0.024, got 'ten cents'" in str(caught.value)
    assert str(bad) + ":2" in str(caught.value)
    assert 0 == len(fresh_store.rate_cards())  # nothing was written
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "load", "--rates", str(bad)])
    assert 1 == result.exit_code and "5 problem(s), nothing was written" in result.output
    assert "Traceback" not in result.output


def test_ratecards_history_is_append_only_and_ambiguity_refused(fresh_store, tmp_path):
    fresh_store.load_rates(write(tmp_path, "2019-01-01,,2019-01-01,FR,*,0.1,0,USD,a\n"))
    with pytest.raises(policyhistory.AppendOnlyError):
        fresh_store.load_rates(write(tmp_path, "2019-01-01,,2019-01-01,FR,*,0.2,0,USD,a\n", "changed.csv"))
    with pytest.raises(policyhistory.InvalidRecordsError, match="which price holds is ambiguous"):
        fresh_store.load_rates(write(tmp_path, "2019-06-01,,2019-01-01,FR,*,0.2,0,USD,b\n", "overlap.csv"))
    # A correction recorded later is the way to change a price: both beliefs stay readable.
    fresh_store.load_rates(write(tmp_path, "2019-06-01,,2020-01-01,FR,*,0.2,0,USD,b\n", "later.csv"))
    card = fresh_store.rate_cards()
    assert (Decimal("0.1"), Decimal("0.2")) == (card.resolve("FR", "mobile", "2019-07-01", "2019-12-01").per_minute,
                                                card.resolve("FR", "mobile", "2019-07-01", "2020-01-01").per_minute)


@pytest.mark.parametrize(("field", "row"), [("per_minute", "1e30,0"), ("per_minute", "1000000,0"),
                                            ("connection_fee", "0.1,5e9")])
def test_ratecards_refuse_an_amount_beyond_any_price_list(fresh_store, tmp_path, field, row):
    """PROBLEM. A per-minute price of 1e30 loaded, and the re-rating's money summary died of it
    (decimal.InvalidOperation): an amount is below 1,000,000 in any currency (a larger one is a typo)."""
    bad = write(tmp_path, f"2019-01-01,,2019-01-01,FR,*,{row},USD,a\n")
    with pytest.raises(policyhistory.InvalidRecordsError) as caught:
        fresh_store.load_rates(bad)
    assert [(2, field)] == [(p.line, p.field) for p in caught.value.problems]
    assert "expected a decimal amount below 1,000,000" in str(caught.value)
    assert 0 == len(fresh_store.rate_cards())
