"""The columnar readers (polars) give the records the row-by-row reading gives, byte for byte: CSV files of our
layout with the optional usage_id and carrier columns, and JSON Lines files of our layout, whatever the
fields hold; each test rates a file both ways (the row-by-row reading by turning the columnar path off)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policyhistory
from policyhistory import Rerate
from policyhistory._columnar import FramePiece, own_csv_pieces

from .test_rerate_agreement import COLUMNS, DESTINATIONS, KNOWN_AT, LICENSE_SETS, _plain_field, _store

BILLED = ["billed_outcome", "billed_minutes", "billed_charge", "currency"]
CARRIERS = ["", "microsoft", "Microsoft", "operator_connect", "Operator Connect", "direct-routing",
            " Direct Routing ", "nope", "operator_connect\x00"]
USAGE_IDS = ["", "u1", "u2", "c0", "u\x00", " u1", "u1 "]


def both_ways(monkeypatch: Any, store: policyhistory.Store, path: Path) -> tuple[list[str], list[str]]:
    """(the records with the columnar path, the records read row by row)."""
    columnar = list(Rerate(store, [path], known_at=KNOWN_AT).records_json())
    with monkeypatch.context() as patched:  # undone after each example
        patched.setattr("policyhistory._rerate.own_csv_pieces", lambda path, kind_of: None)
        row_by_row = list(Rerate(store, [path], known_at=KNOWN_AT).records_json())
    return columnar, row_by_row


csv_calls = st.lists(
    st.tuples(st.sampled_from(["c1", "c2", "c3"]), _plain_field(["acme", "seoul"]),
              _plain_field(["2018-06-20T10:00:00Z", "2020-10-21T23:30:00Z", "2020-10-21T23:30:00+02:00"]),
              _plain_field(["0", "61", "3600"]), _plain_field(["conf_out", "user_out", " CONF_IN"]),
              _plain_field(DESTINATIONS), _plain_field(["FR", "US", "KR", ""]), _plain_field(LICENSE_SETS),
              _plain_field(["", "complimentary", "not_microsoft_billed"]), _plain_field(["", "3"]),
              _plain_field(["", "0.36"]), _plain_field(["", "USD"]), _plain_field(USAGE_IDS),
              _plain_field(CARRIERS)),
    min_size=1, max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=csv_calls, delimiter=st.sampled_from([",", ";", "\t"]),
       optional=st.sampled_from([("usage_id",), ("carrier",), ("usage_id", "carrier"), ("carrier", "usage_id")]),
       first=st.booleans())
def test_columnar_csv_with_usage_id_and_carrier_reads_as_row_by_row(tmp_path, monkeypatch, calls, delimiter,
                                                                   optional, first):
    """Our layout with its optional usage_id and/or carrier columns (first or last in the header): the
    usage_id is the key where given (a NUL refused, an empty one none), the carrier checked as row by row."""
    columns = [*optional, *COLUMNS, *BILLED] if first else [*COLUMNS, *BILLED, *optional]
    lines = [delimiter.join(columns)]
    for index, (call_id, tenant, start, duration, kind, destination, location, licenses, outcome, minutes,
                charge, currency, usage_id, carrier) in enumerate(calls):
        values = dict(zip([*COLUMNS, *BILLED, "usage_id", "carrier"],
                          [f"{call_id}{index % 3}", tenant, start, duration, kind, "o", location, licenses,
                           destination, outcome, minutes, charge, currency, usage_id, carrier], strict=True))
        lines.append(delimiter.join(values[column] for column in columns))
    path = tmp_path / "keys.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    columnar, row_by_row = both_ways(monkeypatch, _store(tmp_path), path)
    assert row_by_row == columnar


def test_columnar_csv_reads_usage_id_and_carrier_itself(tmp_path, monkeypatch):
    """The columnar path takes the rows of such a file (it used to hand the whole file to the csv module), but
    for the usage_id with a NUL and the carrier no rule knows, which it leaves to the row-by-row reading."""
    columns = [*COLUMNS, "usage_id", "carrier"]
    good = "acme,2020-03-02T10:00:00Z,300,conf_out,o,FR,audio_conferencing,+33142685300"
    path = tmp_path / "keys.csv"
    path.write_text("\n".join([",".join(columns), f"c1,{good},u1,", f"c1,{good},u2,Operator Connect",
                               f"c2,{good},u\x00,", f"c3,{good},,nope", f"c4,{good},u1,direct_routing"]) + "\n",
                    encoding="utf-8")
    found = own_csv_pieces(path, lambda *given: ("conf_out", "FR", "audio_conferencing", None)
                           if given[3] in (None, "Operator Connect", "direct_routing") else None)
    assert found is not None
    pieces = list(found[1])
    assert 1 == len(pieces) and isinstance(pieces[0], FramePiece)
    frame = pieces[0].frame
    assert [("c1", "u1", "u1"), ("c1", "u2", "u2"), ("c4", "u1", "u1")] == list(
        zip(frame["call_id"], frame["usage_id"], frame["key"], strict=True))
    assert [(2, 4), (3, 5)] == [(at, line) for at, line, _ in pieces[0].others]
    columnar, row_by_row = both_ways(monkeypatch, _store(tmp_path), path)
    assert row_by_row == columnar
    records = [json.loads(text) for text in columnar]
    assert ["u1", "u2", None, None, "u1"] == [record.get("usage_id") for record in records]
    assert "usage_id" in records[2]["error"] and "carrier" in records[3]["error"]
    assert "already drawn" in records[4]["error"]  # usage id u1 of tenant acme seen twice: the later refused
    assert "not_microsoft_billed" == records[1]["outcome"]


def test_columnar_csv_leaves_other_scripts_digits_in_billed_values_to_python(tmp_path, monkeypatch):
    """Found by the test above: polars does not read "9٣" (an Arabic-Indic three) as a number, Python's float
    does (93.0), and the columnar path's pattern took \\d for a digit, so it read the billed minutes as none."""
    columns = [*COLUMNS, *BILLED]
    path = tmp_path / "digits.csv"
    path.write_text(",".join(columns) + "\nc1,acme,2020-03-02T10:00:00Z,300,conf_out,o,FR,audio_conferencing,"
                    "+33142685300,complimentary,9٣,0.3٦,USD\n", encoding="utf-8")
    columnar, row_by_row = both_ways(monkeypatch, _store(tmp_path), path)
    assert row_by_row == columnar
    assert {"outcome": "complimentary", "minutes": 93, "charge": 0.36, "currency": "USD"} == \
        json.loads(columnar[0])["billed"]
