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
from policyhistory._columnar import PlainPiece, own_csv_pieces, read_plain
from policyhistory._columnar_json import own_json_pieces

from .test_rerate_agreement import COLUMNS, DESTINATIONS, KNOWN_AT, LICENSE_SETS, _plain_field, _store

BILLED = ["billed_outcome", "billed_minutes", "billed_charge", "currency"]
CARRIERS = ["", "microsoft", "Microsoft", "operator_connect", "Operator Connect", "direct-routing",
            " Direct Routing ", "nope", "operator_connect\x00"]
USAGE_IDS = ["", "u1", "u2", "c0", "u\x00", " u1", "u1 "]


def both_ways(monkeypatch: Any, store: policyhistory.Store, path: Path) -> tuple[list[str], list[str]]:
    """(the records with the columnar path, the records read row by row)."""
    columnar = list(Rerate(store, [path], known_at=KNOWN_AT).records_json())
    with monkeypatch.context() as patched:  # undone after each example
        patched.setattr("policyhistory._reading.own_csv_pieces", lambda path: None)
        patched.setattr("policyhistory._reading.own_json_pieces", lambda path, kind_of: None)
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
    found = own_csv_pieces(path)
    assert found is not None
    pieces = list(found[1])
    assert 1 == len(pieces) and isinstance(pieces[0], PlainPiece)
    read = read_plain(pieces[0], lambda *given: ("conf_out", "FR", "audio_conferencing", None)
                      if given[3] in (None, "Operator Connect", "direct_routing") else None)
    frame = read.frame
    assert [("c1", "u1", "u1"), ("c1", "u2", "u2"), ("c4", "u1", "u1")] == list(
        zip(frame["call_id"], frame["usage_id"], frame["key"], strict=True))
    assert [(2, 4), (3, 5)] == [(at, line) for at, line, _ in read.others]
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


VALID = {"call_id": ["c1", "c2", "c3"], "tenant_id": ["acme", "seoul"],
         "start": ["2018-06-20T10:00:00Z", "2020-10-21T23:30:00Z", "2020-10-21T23:30:00+02:00"],
         "duration_seconds": ["0", "61", "3600", 61, 3600], "call_type": ["conf_out", "user_out", " CONF_IN"],
         "organizer_id": ["o", ""], "user_id": ["u", ""], "organizer_usage_location": ["FR", "US", "KR", ""],
         "usage_location": ["FR", "US", ""], "organizer_licenses": LICENSE_SETS, "licenses": LICENSE_SETS,
         "destination": DESTINATIONS, "billed_outcome": ["", "complimentary", " Blocked "],
         "billed_minutes": ["", "3", 3, 2.5, 0.0], "billed_charge": ["", "0.36", 0.36, 1, 12.125, 0.1],
         "currency": ["", "USD"], "usage_id": USAGE_IDS, "carrier": CARRIERS}
REQUIRED = ["call_id", "tenant_id", "start", "duration_seconds", "call_type", "destination"]
json_values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10 ** 20, max_value=10 ** 20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(st.characters(exclude_categories=["Cs"]), max_size=6),
    st.lists(st.text(st.characters(max_codepoint=127), max_size=3), max_size=2),
    st.dictionaries(st.sampled_from("ab"), st.integers()))


@st.composite
def json_record(draw: Any, index: int) -> dict[str, Any]:
    """A record of our layout: mostly valid values, sometimes any JSON value (a number where a text is meant,
    a nested object, a list), a required field left out, or a key of another layout."""
    record: dict[str, Any] = {}
    for name, valid in VALID.items():
        if name not in REQUIRED and draw(st.integers(0, 2)) == 0:
            continue
        if name in REQUIRED and draw(st.integers(0, 30)) == 0:
            continue
        record[name] = draw(st.one_of(*[st.sampled_from(valid)] * 8, json_values))
    if "call_id" in record and type(record["call_id"]) is str:
        record["call_id"] += str(index % 4)
    if draw(st.integers(0, 10)) == 0:
        record[draw(st.sampled_from(["Call ID", "extra", "x1"]))] = draw(json_values)
    return record


def json_text(draw: Any, record: dict[str, Any]) -> str:
    ascii_only, spaced = draw(st.booleans()), draw(st.booleans())
    text = json.dumps(record, ensure_ascii=ascii_only, separators=(", ", ": ") if spaced else (",", ":"))
    return " " + text + "\t" if draw(st.integers(0, 8)) == 0 else text


ODD_LINES = ["", "  ", "\t", "\x0b", "\u3000", "5", "null", "[1]", "{", "[", '{"call_id": "d", "call_id": "e"}',
             '{"__error__": "x", "call_id": "f"}', '{"call_id": "g\\ud83d\\ude00h", "tenant_id": "acme"}',
             '{"call_id": "h", "duration_seconds": 1e2}', '{"call_id": "i", "billed_charge": -0}', "NaN",
             '{"call_id": -0, "tenant_id": "acme"}', '{"call_id": "j",}', '{"call_id" : "k" , "tenant_id" : 1 }']


@st.composite
def json_lines_file(draw: Any) -> bytes:
    lines = [json.dumps({"call_id": "first", "tenant_id": "acme", "start": "2020-03-02T10:00:00Z",
                         "duration_seconds": 300, "call_type": "conf_out", "destination": "+33142685300"})]
    for index in range(draw(st.integers(0, 14))):
        if draw(st.integers(0, 5)) == 0:
            lines.append(draw(st.sampled_from(ODD_LINES)))
        elif draw(st.integers(0, 20)) == 0:  # a Graph response page on one line: its rows at its line
            lines.append(json.dumps({"value": [draw(json_record(index)), draw(json_record(index + 1))],
                                     "@odata.context": "x"}))
        else:
            lines.append(json_text(draw, draw(json_record(index))))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    text = ending.join(lines) + draw(st.sampled_from([ending, ""]))
    if draw(st.integers(0, 10)) == 0:  # a lone carriage return: a line break for Python's reading of the file
        at = draw(st.integers(0, len(text)))
        text = text[:at] + "\r" + text[at:]
    return (b"\xef\xbb\xbf" if draw(st.integers(0, 5)) == 0 else b"") + text.encode("utf-8")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=json_lines_file(), suffix=st.sampled_from([".jsonl", ".ndjson"]))
def test_columnar_json_lines_read_as_row_by_row(tmp_path, monkeypatch, data, suffix):
    """A JSON Lines file of our layout read by polars where a line is plain (and by json.loads where it is
    not) gives the same records, errors and lines as json.loads row by row, whatever the lines hold."""
    path = tmp_path / f"calls{suffix}"
    path.write_bytes(data)
    columnar, row_by_row = both_ways(monkeypatch, _store(tmp_path), path)
    assert row_by_row == columnar


def test_columnar_json_lines_reads_plain_lines_itself_and_hands_back_the_others(tmp_path, monkeypatch):
    """polars reads the plain lines; every other line is read by json.loads as row by row, with its line: a
    blank line gives no row, a Graph page two, and the rows after them keep their lines and order."""
    good = {"call_id": "c1", "tenant_id": "acme", "start": "2020-03-02T10:00:00Z", "duration_seconds": 300,
            "call_type": "conf_out", "organizer_usage_location": "FR", "organizer_licenses": "audio_conferencing",
            "destination": "+33142685300"}

    def line(**changes: Any) -> str:
        return json.dumps({**good, **changes})

    lines = [line(), "", line(call_id="c2", billed_outcome="complimentary", billed_minutes=2.0,
                              billed_charge=0.3600, currency="USD").replace("2.0", "2.00").replace("0.36", "0.3600"),
             "   ", "5", line(call_id="c\x00"), line(call_id="c3", usage_id="u\x00"), line(call_id="c4", usage_id=""),
             line(call_id=7, duration_seconds=60.0), line(call_id="c5", duration_seconds=1e2),
             line(call_id="c6", organizer_licenses=["audio_conferencing"]),
             json.dumps({"value": [line(call_id="g1"), line(call_id="g2")], "@odata.context": "x"}),
             line(call_id="c7", carrier="Operator Connect"), line(call_id="c8", carrier={"name": "x"}),
             line(call_id="c9") + ' {"call_id": "c9"}', '{"call_id": "c10", "call_id": "c11"}', "[",
             line(call_id="c12", tenant_id=5), line(call_id="c13", start=None), line(call_id="c14")]
    lines[11] = json.dumps({"value": [{**good, "call_id": "g1"}, {**good, "call_id": "g2"}], "@odata.context": "x"})
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")  # the last line without its line break
    found = own_json_pieces(path, lambda *given: ("conference_dial_out", "FR", "audio_conferencing", given[3]))
    assert found is not None and found[0] is None
    pieces = list(found[1])
    # (line, place of the row in its piece, call id): the last line, without its line break, a piece of its own
    assert [(1, 0, "c1"), (3, 1, "c2"), (8, 5, "c4"), (13, 11, "c7"), (18, 16, "c12"), (20, 0, "c14")] == [
        row for piece in pieces for row in piece.frame.select("line", "at", "call_id").iter_rows()]
    # The others as (place, line): no row for the blank lines 2 and 4, two for the Graph page on line 12.
    assert [(2, 5), (3, 6), (4, 7), (6, 9), (7, 10), (8, 11), (9, 12), (10, 12), (12, 14), (13, 15), (14, 16),
            (15, 17), (17, 19)] == [(at, line) for piece in pieces for at, line, _ in piece.others]
    columnar, row_by_row = both_ways(monkeypatch, _store(tmp_path), path)
    assert row_by_row == columnar
    records = [json.loads(text) for text in columnar]
    assert [(1, "c1"), (3, "c2"), (5, None), (6, "c\x00"), (7, "c3"), (8, "c4"), (9, "7"), (10, "c5"), (11, "c6"),
            (12, "g1"), (12, "g2"), (13, "c7"), (14, "c8"), (15, None), (16, None), (17, None), (18, "c12"),
            (19, "c13"), (20, "c14")] == [(record["line"], record["call_id"]) for record in records]
    assert [record["outcome"] for record in records] == [
        "dial_out_pool", "dial_out_pool", "rejected", "rejected", "rejected", "dial_out_pool", "rejected",
        "rejected", "dial_out_pool", "dial_out_pool", "dial_out_pool", "not_microsoft_billed", "rejected",
        "rejected", "rejected", "rejected", "rejected", "rejected", "dial_out_pool"]
    assert "usage_id" in records[4]["error"] and "is given twice" in records[14]["error"]
    assert {"outcome": "complimentary", "minutes": 2, "charge": 0.36, "currency": "USD"} == records[1]["billed"]


def test_columnar_readers_number_rows_across_files(tmp_path, monkeypatch):
    """Rows keep their place across files of both kinds: a JSON Lines file with blank and unreadable lines,
    then a CSV file with a usage_id column, rated in one run both ways."""
    good = {"call_id": "j1", "tenant_id": "acme", "start": "2020-03-02T10:00:00Z", "duration_seconds": 300,
            "call_type": "conf_out", "organizer_usage_location": "FR", "organizer_licenses": "audio_conferencing",
            "destination": "+33142685300"}
    first = tmp_path / "calls.ndjson"
    first.write_text("\n".join([json.dumps(good), "", "{", json.dumps({**good, "call_id": "j2"})]) + "\n",
                     encoding="utf-8")
    second = tmp_path / "calls.csv"
    second.write_text(",".join([*COLUMNS, "usage_id"]) + "\n" + "\n".join(
        f"c{index},acme,2020-03-0{index}T11:00:00Z,60,conf_out,o,FR,audio_conferencing,+33142685300,{usage}"
        for index, usage in enumerate(["u1", "", "j1", "u\x00"], start=1)) + "\n", encoding="utf-8")
    store = _store(tmp_path)
    columnar = list(Rerate(store, [first, second], known_at=KNOWN_AT).records_json())
    with monkeypatch.context() as patched:
        patched.setattr("policyhistory._reading.own_csv_pieces", lambda path: None)
        patched.setattr("policyhistory._reading.own_json_pieces", lambda path, kind_of: None)
        row_by_row = list(Rerate(store, [first, second], known_at=KNOWN_AT).records_json())
    assert row_by_row == columnar
    records = [json.loads(text) for text in columnar]
    assert [(first.name, 1), (first.name, 3), (first.name, 4), (second.name, 2), (second.name, 3),
            (second.name, 4), (second.name, 5)] == [(Path(record["file"]).name, record["line"]) for record in records]
    assert ["j1", None, "j2", "c1", "c2", "c3", "c4"] == [record["call_id"] for record in records]
    assert [None, None, None, "u1", None, "j1", None] == [record.get("usage_id") for record in records]
    assert "already drawn" in records[5]["error"]  # key j1: the JSON Lines file's first call, earlier


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=json_lines_file(), chunk=st.sampled_from([16, 64, 300]))
def test_columnar_json_lines_in_small_pieces_keep_their_lines(tmp_path, monkeypatch, data, chunk):
    """The file read a few lines (or a part of one) at a time: lines and rows still run on over the pieces,
    one holding a lone carriage return among them."""
    path = tmp_path / "calls.jsonl"
    path.write_bytes(data)
    monkeypatch.setattr("policyhistory._columnar_json.CHUNK_BYTES", chunk)
    columnar, row_by_row = both_ways(monkeypatch, _store(tmp_path), path)
    assert row_by_row == columnar
