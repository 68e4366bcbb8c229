"""The columnar reader of the Teams PSTN usage export (polars) gives the records the row-by-row reading gives,
byte for byte, whatever the fields hold: each test rates a file both ways (the row-by-row reading by turning
the columnar path off)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policyhistory
from policyhistory import Rerate
from policyhistory._columnar import FramePiece
from policyhistory._columnar_teams import teams_csv_pieces

from .test_columnar_readers import both_ways as own_both_ways
from .test_rerate_agreement import COLUMNS, KNOWN_AT, _store

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "PSTN.calls.2022-06-30.csv"
EXPORT_25 = ROOT / "tests" / "data" / "PSTN.calls.2022-03-31.csv"
HEADER_20 = EXAMPLE.read_text(encoding="utf-8").splitlines()[0].split(",")
HEADER_25 = EXPORT_25.read_text(encoding="utf-8").splitlines()[0].split(",")


def contoso(tmp_path: Path) -> policyhistory.Store:
    return _store(tmp_path, (ROOT / "examples" / "tenants.csv").read_text(encoding="utf-8"),
                  (ROOT / "examples" / "licenses.csv").read_text(encoding="utf-8"))


def both_ways(monkeypatch: Any, store: policyhistory.Store, *paths: Path) -> tuple[list[str], list[str]]:
    """(the records with the columnar path, the records read row by row)."""
    columnar = list(Rerate(store, paths, known_at=KNOWN_AT, default_tenant="contoso").records_json())
    with monkeypatch.context() as patched:  # undone after each example
        patched.setattr("policyhistory._reading.teams_csv_pieces", lambda path, kind_of, tenant_of: None)
        row_by_row = list(Rerate(store, paths, known_at=KNOWN_AT, default_tenant="contoso").records_json())
    return columnar, row_by_row


GOOD = {
    "UsageId": ["u1", "u2", "u3", "u4", "u5", "u6", ""],
    "Call ID": ["c1", "c2", "c3", ""],
    "User Location": ["US", "GB", "ZW", "", "United States"],
    "UPN": ["ann@contoso.example", "", "bob"],
    "Call Type": ["conf_out", "user_out", "user_in", "conf_in", "user_out_forwarding", "dr_out", " CONF_OUT"],
    "Number Type": ["", "User", "Mobile", "toll free"],
    "Destination Dialed": ["", "France", "United States", "Germany Mobile"],
    "Destination Number": ["+33142685300", "+14155552671", "+442071234567", "+33 1 ** ** ** **", "+4930901***",
                           "12065550123", " +18005551234 "],
    "External Country": ["", "FR", "US"],
    "Start Time": ["2018-05-28T14:00:00Z", "2020-10-22T09:00:00Z", "2021-06-15T10:00:00Z", "2022-03-11T17:00:00Z",
                   "2022-03-15T09:00:00", "2022-03-15 09:00:00"],
    "Duration Seconds": ["600", "0", "28800", "61"],
    "Connection Fee": ["0", "", "0.5"],
    "Charge": ["0", "0.000", "0.36", "0.360", "1.44", ""],
    "Currency": ["USD", "", "EUR"],
    "Capability": ["MCOMEETADD", "MCOPSTN1", "MCOMEETACPEA", "MCOMEETADD_DIALOUT_US", "FREECALL", "", " mcopstn1"],
    "Operator": ["Microsoft", "", "Contoso Telecom"],
    "Source of Call Duration": ["microsoft", "operator", ""],
    "User Display Name": ["ann", "complimentary, first belief", 'say "hi"', ""],
}
BAD = {
    "UsageId": [" u1", "u2 ", "u\x00", "é1"],
    "Call ID": [" c1", "c\x00"],
    "User Location": [" us", "ZZ"],
    "Call Type": ["emergency", "nope", ""],
    "Destination Dialed": ["Korea", "Nowhere"],
    "Destination Number": ["", "abc", "+** **"],
    "External Country": ["xx"],
    "Start Time": ["2018-06-30T23:59:60Z", "2020-02-30T10:00:00Z", "5/28/2018 2:00:00 PM", "1899-12-31T23:00:00Z",
                   " 2021-06-15T10:00:00Z", "2021-06-15T24:00:00Z", "2021-06-15T10:00:00+02:00",
                   "2021-06-15T10:00:00.5Z", ""],
    "Duration Seconds": ["9999999", " 60", "6٠", "1e3", ""],
    "Connection Fee": ["x", "-0.5"],
    "Charge": ["-1", "nan", "x", "0,36"],
    "Capability": ["NOPE"],
}
ODD_TEXT = st.text(st.sampled_from(' +-.0123456789aZé٣\x00:TZ,;\t"'), max_size=6)


def field(draw: Any, column: str, odd: int) -> str:
    """A good value of the column (or a filler) but for one field in `odd`: then a listed bad value or odd
    text (quotes, delimiters, NUL)."""
    if odd and draw(st.integers(0, odd - 1)) == 0:
        return draw(st.one_of(st.sampled_from(BAD.get(column, ["?"])), ODD_TEXT))
    return draw(st.sampled_from(GOOD.get(column, ["", "x", "+14255550100"])))


def written(draw: Any, value: str, delimiter: str, odd: int) -> str:
    """A field as an export writes it: quoted where it must be, now and then anyway; in a row with odd values,
    now and then not quoted where it must be."""
    needs = any(mark in value for mark in (delimiter, '"', "\n"))
    if needs and not (odd and draw(st.integers(0, 5)) == 0):
        return '"' + value.replace('"', '""') + '"'
    if not needs and draw(st.integers(0, 12)) == 0:
        return '"' + value + '"'
    return value


@st.composite
def teams_export(draw: Any) -> tuple[bytes, str]:
    """(a Teams export's bytes, its delimiter): the 20- or 25-column header, perhaps without a column the
    reader reads, rows of drawn values (all good in most rows), now and then a field with a line break, a
    row of another width, a blank line; LF or CRLF line ends."""
    delimiter = draw(st.sampled_from([",", ",", "\t", ";"]))
    header = list(draw(st.sampled_from([HEADER_20, HEADER_25])))
    if draw(st.integers(0, 4)) == 0:
        header.remove(draw(st.sampled_from(["UsageId", "UPN", "Capability", "Charge", "User Location",
                                            "Destination Number", "Currency"])))
    lines = [delimiter.join(header)]
    odd_lines = draw(st.booleans())  # else every line one record as wide as the header
    for _ in range(draw(st.integers(1, 14))):
        roll = draw(st.integers(0, 30)) if odd_lines else 10
        if roll == 0:
            lines.append("")
            continue
        odd = draw(st.sampled_from([0, 0, 8, 20]))
        values = [field(draw, column, odd) for column in header]
        if roll == 1:
            values.append("extra")
        elif roll == 2:
            values.pop()
        elif roll == 3:
            values[draw(st.integers(0, len(values) - 1))] = "two\nlines"
        lines.append(delimiter.join(written(draw, value, delimiter, odd if odd_lines else 0) for value in values))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    mark = b"\xef\xbb\xbf" if draw(st.integers(0, 5)) == 0 else b""  # Excel's CSV UTF-8
    return mark + (ending.join(lines) + ending).encode("utf-8"), delimiter


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(export=teams_export())
def test_columnar_teams_export_reads_as_row_by_row(tmp_path, monkeypatch, export):
    """A Teams export read by polars where a piece is plain, each distinct destination and bill read once by
    the layout reader, gives the same records, errors and lines as the csv module and the layout reader row
    by row, whatever the fields hold."""
    data, delimiter = export
    path = tmp_path / ("PSTN.calls.tsv" if delimiter == "\t" else "PSTN.calls.csv")
    path.write_bytes(data)
    columnar, row_by_row = both_ways(monkeypatch, contoso(tmp_path), path)
    assert row_by_row == columnar


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(export=teams_export(), chunk=st.sampled_from([64, 300, 1000]))
def test_columnar_teams_export_in_small_pieces_keeps_its_lines(tmp_path, monkeypatch, export, chunk):
    """The file read a few lines at a time: plain pieces by polars, the others (a quote with a line break, a
    row of another width) by the csv module; lines and row numbers run on over the pieces."""
    path = tmp_path / "PSTN.calls.csv"
    path.write_bytes(export[0])
    monkeypatch.setattr("policyhistory._columnar.CHUNK_BYTES", chunk)
    columnar, row_by_row = both_ways(monkeypatch, contoso(tmp_path), path)
    assert row_by_row == columnar


def test_the_example_export_is_read_by_polars_and_rates_as_before(tmp_path, monkeypatch):
    """The example export (quoted display names with commas) is one plain piece: polars reads every row, none
    is handed back, and the records are the row-by-row reading's."""
    found = teams_csv_pieces(EXAMPLE, lambda *given: ("conference_dial_out", given[1], "\n".join(given[2]),
                                                      given[3]), lambda path: "contoso")
    assert found is not None
    pieces = list(found[1])
    assert 1 == len(pieces) and isinstance(pieces[0], FramePiece) and [] == pieces[0].others
    frame = pieces[0].frame
    assert list(range(2, 20)) == frame["line"].to_list()
    assert ("00000000-0000-0000-0000-0000000003f6", "FR:fixed_line", True, "MCOMEETADD") == (
        frame["key"][14], frame["destination"][14], frame["infer"][14], frame["billed_capability"][14])
    columnar, row_by_row = both_ways(monkeypatch, contoso(tmp_path), EXAMPLE)
    assert row_by_row == columnar
    records = [json.loads(text) for text in columnar]
    assert [line for line in range(2, 20)] == [record["line"] for record in records]
    assert "complimentary" == records[0]["outcome"] and "FR" == records[14]["destination_country"]


def test_columnar_teams_export_hands_back_what_it_cannot_be_sure_of(tmp_path, monkeypatch):
    """Rows with an odd start, a duration with a space, a masked number no column names a country for, a
    Call ID with a NUL, an unknown Capability's neighbour values: handed back with their lines, read (and
    rejected where they are wrong) row by row; the good rows around them keep their places."""
    rows = EXAMPLE.read_text(encoding="utf-8").splitlines()
    header = rows[0].split(",")

    def changed(row: str, **values: str) -> str:
        cells = row.split(",")  # a row without a quoted field
        for name, value in values.items():
            cells[header.index(name)] = value
        return ",".join(cells)

    lines = [rows[0], rows[2], changed(rows[2], UsageId="u3", **{"Start Time": "2018-06-30 23:55:00"}),
             changed(rows[2], UsageId="u4", **{"Duration Seconds": " 300"}),
             changed(rows[2], UsageId="u5", **{"Destination Number": "+** **"}),
             changed(rows[2], UsageId="u6", **{"Call ID": "c\x00"}), changed(rows[2], UsageId="u7"),
             changed(rows[2], UsageId="u8", **{"Start Time": "2018-06-30T23:59:60Z"})]
    path = tmp_path / "PSTN.calls.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    found = teams_csv_pieces(path, lambda *given: ("conference_dial_out", given[1], "\n".join(given[2]),
                                                   given[3]), lambda path: "contoso")
    assert found is not None
    piece = next(found[1])
    assert isinstance(piece, FramePiece)
    assert [2, 7] == piece.frame["line"].to_list()
    assert [(1, 3), (2, 4), (3, 5), (4, 6), (6, 8)] == [(at, line) for at, line, _ in piece.others]
    columnar, row_by_row = both_ways(monkeypatch, contoso(tmp_path), path)
    assert row_by_row == columnar
    records = [json.loads(text) for text in columnar]
    assert ["rejected", "rejected"] == [records[index]["outcome"] for index in (3, 6)]
    assert "Destination Number" in records[3]["error"] and "second must be in 0..59" in records[6]["error"]
    assert "2018-06-30T23:55:00Z" == records[1]["start"] and 5 == records[2]["billable_minutes"]


def test_a_teams_export_after_a_file_of_our_layout_keeps_its_row_numbers(tmp_path, monkeypatch):
    """Two files in one run, ours then the export: rows keep their places and files both ways."""
    ours = tmp_path / "calls.csv"
    ours.write_text(",".join(COLUMNS) + "\nk1,contoso,2020-03-02T10:00:00Z,300,conf_out,o,US,MCOMEETADV,"
                    "+33142685300\n", encoding="utf-8")
    columnar, row_by_row = both_ways(monkeypatch, contoso(tmp_path), ours, EXAMPLE)
    assert row_by_row == columnar
    records = [json.loads(text) for text in columnar]
    assert [("calls.csv", 2), *[(EXAMPLE.name, line) for line in range(2, 20)]] == [
        (Path(record["file"]).name, record["line"]) for record in records]


def test_columnar_own_layout_leaves_a_leap_second_and_an_overlong_field_to_the_rows(tmp_path, monkeypatch):
    """Found while building the Teams reader: polars read 23:59:60 as the next minute, which the row-by-row
    reading refuses, and took a field longer than the csv module's limit (131,072 characters), which the csv
    module refuses; our layout's columnar path now hands both to the row-by-row reading."""
    good = "acme,{start},300,conf_out,o{padding},FR,audio_conferencing,+33142685300"
    path = tmp_path / "calls.csv"
    path.write_text(",".join(COLUMNS) + "\n" + f"c1,{good.format(start='2020-06-30T23:59:60Z', padding='')}\n"
                    f"c2,{good.format(start='2020-06-30T23:59:59Z', padding='x' * 140_000)}\n", encoding="utf-8")
    columnar, row_by_row = own_both_ways(monkeypatch, _store(tmp_path), path)
    assert row_by_row == columnar
    records = [json.loads(text) for text in columnar]
    assert "second must be in 0..59" in records[0]["error"]
    assert "field larger than field limit" in records[1]["error"]


def test_columnar_own_layout_piece_ends_where_its_last_record_does(tmp_path, monkeypatch):
    """Found while building the Teams reader: a piece cut at a line break inside a quoted field read the
    field's two halves as two rows, and a lone carriage return (a line break for the csv module) put the next
    pieces' lines one off; the piece now runs on to the end of its last record, and counts lines as the csv
    module does."""
    good = "acme,2020-03-02T10:00:00Z,300,conf_out,o,FR,audio_conferencing,+33142685300"
    path = tmp_path / "calls.csv"
    path.write_bytes((",".join(COLUMNS) + f'\nc1,{good}\n"c2\n\n\nx",{good}\nc3,{good}\rc4,{good}\n'
                      + "".join(f"c{index},{good}\n" for index in range(5, 9))).encode("utf-8"))
    monkeypatch.setattr("policyhistory._columnar.CHUNK_BYTES", 64)
    columnar, row_by_row = own_both_ways(monkeypatch, _store(tmp_path), path)
    assert row_by_row == columnar
    records = [json.loads(text) for text in columnar]
    assert [(2, "c1"), (3, "c2\n\n\nx"), (7, "c3"), (8, "c4"), (9, "c5"), (10, "c6"), (11, "c7"), (12, "c8")] == [
        (record["line"], record["call_id"]) for record in records]


def test_a_piece_starting_with_an_unreadable_row_names_its_call_id_as_the_whole_file_does(tmp_path, monkeypatch):
    """Found by the test above: a record with a quoted line break and no Call ID at the start of a piece the
    csv module reads was given the call id None (read without the file's layout), "" when the whole file is
    read row by row (its layout known from the rows before)."""
    rows = EXAMPLE.read_text(encoding="utf-8").splitlines()
    cells = rows[2].split(",")
    cells[1], cells[7] = "", '"two\nlines"'
    path = tmp_path / "PSTN.calls.csv"
    path.write_text("\n".join([rows[0], rows[2], ",".join(cells), rows[3]]) + "\n", encoding="utf-8")
    monkeypatch.setattr("policyhistory._columnar.CHUNK_BYTES", 64)
    columnar, row_by_row = both_ways(monkeypatch, contoso(tmp_path), path)
    assert row_by_row == columnar
    records = [json.loads(text) for text in columnar]
    assert [(2, "00000000-0000-0000-0000-000000000002"), (3, ""), (5, "00000000-0000-0000-0000-000000000003")] == [
        (record["line"], record["call_id"]) for record in records]
