"""The call-file readers given odd but plausible input, both ways where a columnar reader takes the file
(the columnar path and row by row give the same records): each case a probe found wrong (marked PROBLEM:
what it was, fixed since) or risky and right (marked PASSING)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from policyhistory import Rerate
from policyhistory.cli import cli

from .test_columnar_readers import both_ways as own_both_ways
from .test_columnar_teams import EXAMPLE, both_ways, contoso
from .test_rerate_agreement import KNOWN_AT, _store

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
OWN_HEADER = ("call_id,tenant_id,start,duration_seconds,call_type,organizer_id,organizer_usage_location,"
              "organizer_licenses,destination,billed_outcome,billed_minutes,billed_charge,currency")


def own_row(call_id: str, start: str = "2020-03-02T10:00:00Z", duration: str = "60", minutes: str = "",
            charge: str = "") -> str:
    return (f"{call_id},acme,{start},{duration},conf_out,o,FR,audio_conferencing,+33142685300,,{minutes},"
            f"{charge},USD")


def own_file(tmp_path: Path, *rows: str, name: str = "calls.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([OWN_HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def teams_rows() -> tuple[list[str], list[list[str]]]:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    return lines[0].split(","), [next(csv.reader([line])) for line in lines[1:]]


def teams_file(tmp_path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> Path:
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path = tmp_path / "PSTN.calls.csv"
    path.write_text(text.getvalue(), encoding="utf-8")
    return path


def rows_file(path: Path, rows: list[dict[str, str]]) -> Path:
    """Rows of our layout (dictionaries with the same keys) as a CSV file, or JSON Lines where `path` says so."""
    if path.suffix == ".csv":
        path.write_text("\n".join([",".join(rows[0]), *(",".join(row.values()) for row in rows)]) + "\n",
                        encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def records_of(texts: list[str]) -> list[dict]:
    return [json.loads(text) for text in texts]


def invoke(tmp_path: Path, *args: object):
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "s.db"), *map(str, args)])
    # Never a Python traceback: a SystemExit (click's own exit) or nothing.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def rerate(tmp_path: Path, *paths: Path, tenant: str | None = None):
    extra = ["--tenant", tenant] if tenant else []
    return invoke(tmp_path, "rerate", *paths, "--tenants", EXAMPLES / "tenants.csv", "--licenses",
                  EXAMPLES / "licenses.csv", "--workers", "1", *extra)


# --- PROBLEM: a billed_minutes beyond a 64-bit integer crashes the whole run -------------------------------

@pytest.mark.parametrize("minutes", ["1e19", "9223372036854775808", "1e300"])
def test_huge_billed_minutes_is_a_rejected_row_not_a_crash(tmp_path, minutes):
    """PROBLEM. `billed_minutes` of 1e19 passes _layouts._number (a finite float) and int() makes it an int
    beyond Int64; the shard buffer's DataFrame (SHARD_SCHEMA) then raises a polars ComputeError /
    OverflowError and the run dies: every other row is lost. Should be a rejected row naming the field."""
    path = own_file(tmp_path, own_row("c1"), own_row("c2", minutes=minutes), own_row("c3"))
    records = records_of(list(Rerate(_store(tmp_path), [path], known_at=KNOWN_AT).records_json()))
    assert ["c1", "c2", "c3"] == [record["call_id"] for record in records]
    assert "rejected" == records[1]["outcome"] and "billed_minutes" in records[1]["error"]
    assert minutes in records[1]["error"]


def test_huge_billed_minutes_gives_no_traceback_on_the_cli(tmp_path):
    """PROBLEM. The same on the command line: a polars traceback (exit 1) instead of exit 3 and a rejected
    row (or a clear error naming file, line, field and value)."""
    lines = (EXAMPLES / "calls.csv").read_text(encoding="utf-8").splitlines()
    row = lines[1].split(",")
    row[lines[0].split(",").index("billed_minutes")] = "1e19"
    path = tmp_path / "calls.csv"
    path.write_text("\n".join([lines[0], ",".join(row), lines[2]]) + "\n", encoding="utf-8")
    result = rerate(tmp_path, path)
    assert 3 == result.exit_code, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert 2 == len(records) and "billed_minutes" in records[0]["error"]


def test_huge_billed_minutes_in_json_lines_is_a_rejected_row(tmp_path, monkeypatch):
    """PROBLEM. JSON Lines alike ({"billed_minutes": 1e19}: an exponent, so read by json.loads), both paths."""
    good = {"call_id": "j1", "tenant_id": "acme", "start": "2020-03-02T10:00:00Z", "duration_seconds": 60,
            "call_type": "conf_out", "organizer_usage_location": "FR", "organizer_licenses": "audio_conferencing",
            "destination": "+33142685300"}
    path = tmp_path / "calls.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "call_id": "j2"})[:-1]
                    + ', "billed_minutes": 1e19}\n', encoding="utf-8")
    columnar, row_by_row = own_both_ways(monkeypatch, _store(tmp_path), path)
    assert columnar == row_by_row
    records = records_of(columnar)
    assert "rejected" == records[1]["outcome"] and "billed_minutes" in records[1]["error"]


# --- PROBLEM: an ISO week-date start is kept as given in the record's `start` ------------------------------

@pytest.mark.parametrize("start", ["2020-W10-1T10:00:00Z", "2020-W10-1T10:00:00+00:00"])
def test_a_week_date_start_comes_out_in_the_one_iso_form(tmp_path, start):
    """PROBLEM. _reading._start's fast path takes any 20-character text with T, colons and Z where
    fromisoformat reads it, and keeps the text as the record's start "whose text is already ours": an ISO
    week date (2020-W10-1T10:00:00Z, read by Python 3.11's fromisoformat) comes out as
    "2020-W10-1T10:00:00Z", while the same instant with +00:00 comes out as 2020-03-02T10:00:00Z."""
    path = own_file(tmp_path, own_row("c1", start=start))
    records = records_of(list(Rerate(_store(tmp_path), [path], known_at=KNOWN_AT).records_json()))
    assert "2020-03-02T10:00:00Z" == records[0]["start"]


def test_a_week_date_start_in_a_teams_export_comes_out_in_the_one_iso_form(tmp_path, monkeypatch):
    """PROBLEM. The same in a Teams export, both paths (the columnar one leaves it to the row-by-row code)."""
    header, rows = teams_rows()
    rows[0][header.index("Start Time")] = "2018-W22-1T14:00:00Z"  # Monday 2018-05-28
    path = teams_file(tmp_path, header, rows[:2])
    columnar, row_by_row = both_ways(monkeypatch, contoso(tmp_path), path)
    assert columnar == row_by_row
    assert "2018-05-28T14:00:00Z" == records_of(columnar)[0]["start"]


# --- PROBLEM: a Teams Start Time's error quotes a value the file does not hold -----------------------------

@pytest.mark.parametrize("start", ["2018-05-28T14:00:00+02", "2018-05-28  14:00:00"])
def test_a_teams_start_that_is_refused_is_quoted_as_the_file_has_it(tmp_path, monkeypatch, start):
    """PROBLEM. _layouts.teams_start rewrites the Start Time before it is read (a space made T, a Z appended
    when it sees no offset of the form +hh:mm / +hhmm); a refused start is then quoted as rewritten:
    '2018-05-28T14:00:00+02Z' for the file's '2018-05-28T14:00:00+02' (an ISO offset of hours only, which
    our layout reads), '2018-05-28T 14:00:00Z' for '2018-05-28  14:00:00'. The error should quote the
    file's value (and +02 should rather be read as the offset it is)."""
    header, rows = teams_rows()
    rows[0][header.index("Start Time")] = start
    path = teams_file(tmp_path, header, rows[:2])
    columnar, row_by_row = both_ways(monkeypatch, contoso(tmp_path), path)
    assert columnar == row_by_row
    record = records_of(columnar)[0]
    assert record["outcome"] != "rejected" or repr(start) in record["error"], record["error"]


# --- PROBLEM: a Charge plus Connection Fee beyond a float's range writes `Infinity`, which is not JSON ------

@pytest.mark.parametrize(("charge", "fee", "billed"), [("1e308", "1e308", None), ("0.1", "0.2", 0.3)])
def test_a_teams_charge_and_fee_are_added_as_the_decimals_written(tmp_path, monkeypatch, charge, fee, billed):
    """PROBLEM. Charge 1e308 and Connection Fee 1e308 each pass _layouts._number (finite); UsageLayout.usage
    added them (inf) and the record said `"charge": Infinity`, which is not JSON: now a rejected row naming
    the fee. And (found as questionable) Charge 0.1 plus Connection Fee 0.2 was billed as
    0.30000000000000004, the sum of two floats, not of the amounts the file writes."""
    header, rows = teams_rows()
    rows[9][header.index("Charge")] = charge
    rows[9][header.index("Connection Fee")] = fee
    path = teams_file(tmp_path, header, rows[9:10])
    columnar, row_by_row = both_ways(monkeypatch, contoso(tmp_path), path)
    assert columnar == row_by_row
    record = json.loads(columnar[0], parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    if billed is None:  # each beyond a bill's charge (MAX_BILLED_CHARGE): the first named
        assert "rejected" == record["outcome"] and "field 'Charge': expected a number below" in record["error"]
    else:
        assert billed == record["billed"]["charge"]


# --- PROBLEM: the line named for text that does not decode is wrong in CR-only and UTF-16 files ------------

def _bad_byte_message(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "PSTN.calls.csv"
    path.write_bytes(data)
    result = rerate(tmp_path, path, tenant="contoso")
    assert 2 == result.exit_code, result.output
    return result.output


def test_a_bad_byte_in_a_file_of_lone_carriage_returns_names_its_line(tmp_path):
    """PROBLEM. Lines ended by a lone CR (old Mac, some exports) are lines for the reading (records come out
    as lines 2, 3, ...), but _rows.check_text counts only line feeds: a Windows-1252 byte on line 6 is
    reported on line 1. (LF and CRLF files: line 6, right.)"""
    lines = [line.encode() for line in EXAMPLE.read_text(encoding="utf-8").splitlines()]
    lines[5] = lines[5].replace(b",", b",\xe9", 1)
    output = _bad_byte_message(tmp_path, b"\r".join(lines) + b"\r")
    assert "PSTN.calls.csv:6: not UTF-8 text (byte 0xe9)" in output, output


def test_a_bad_character_in_a_utf16_file_names_its_line(tmp_path):
    """PROBLEM. A UTF-16 file (Excel's Unicode Text) with a lone surrogate on line 6: check_text names the
    first line of the 1 MiB chunk (line 1; _rows.py: `... if encoding == "utf-8-sig" else 0`), not line 6
    as the README promises ("naming the line of the first byte that does not decode")."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    data = ("\ufeff" + "\n".join(lines[:5]) + "\n").encode("utf-16-le") + b"\x00\xd8" + \
        ("\n".join(lines[5:]) + "\n").encode("utf-16-le")
    output = _bad_byte_message(tmp_path, data)
    assert "PSTN.calls.csv:6: not UTF-16 text" in output, output


# --- PROBLEM: a UTF-16 file without its byte order mark gets a misleading message -------------------------

def test_a_utf16_file_without_its_byte_order_mark_is_named_as_such(tmp_path):
    """PROBLEM (unclear message). UTF-16 LE without a BOM decodes as UTF-8 full of NULs, so it passes
    check_text and is refused as "no layout we read has these columns (c\\x00a\\x00l\\x00l\\x00...)", with the
    NULs written raw to the terminal, where the user reads his own, right, column names. The message should
    say the file is not UTF-8 text (NUL bytes: UTF-16 without its byte order mark?), without raw NULs."""
    path = tmp_path / "calls.csv"
    path.write_bytes((EXAMPLES / "calls.csv").read_text(encoding="utf-8").encode("utf-16-le"))
    result = rerate(tmp_path, path)
    assert 2 == result.exit_code
    assert "\x00" not in result.output
    assert "UTF-16" in result.output or "NUL" in result.output, result.output


# --- PROBLEM: a JSON row that is a list takes its first element as the call id ------------------------------

def _list_rows_file(tmp_path: Path) -> Path:
    good = {"call_id": "j1", "tenant_id": "seoul", "start": "2020-03-02T10:00:00Z", "duration_seconds": 300,
            "call_type": "conf_out", "organizer_usage_location": "KR", "organizer_licenses": "audio_conferencing",
            "destination": "+33142685300"}
    path = tmp_path / "calls.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps([{**good, "call_id": "j2"}]) + "\n"
                    + json.dumps(["x", 1]) + "\n", encoding="utf-8")
    return path


def test_a_json_row_that_is_a_list_has_no_call_id(tmp_path, monkeypatch):
    """PROBLEM. `[{...}]` or `["x", 1]` on a JSON Lines line (or in a JSON array) is rightly rejected
    ("expected a JSON object"), but _reading._raw_call_id treats any list as a CSV row and takes
    raw[reader.call_id_index]: the record's call_id is the whole inner object ({"call_id": "j2", ...}) or
    "x". It should be null (no call id was given); an object there breaks the records' schema (next test)."""
    path = _list_rows_file(tmp_path)
    columnar, row_by_row = own_both_ways(monkeypatch, _store(tmp_path, (EXAMPLES / "tenants.csv").read_text(),
                                                             (EXAMPLES / "licenses.csv").read_text()), path)
    assert columnar == row_by_row
    records = records_of(columnar)
    assert ["j1", None, None] == [record["call_id"] for record in records]


def test_a_json_row_that_is_a_list_gives_no_traceback_writing_parquet(tmp_path):
    """PROBLEM. With `--output x.parquet` that object call_id makes polars raise a ComputeError (a struct
    where a text is expected): a traceback, exit 1, instead of exit 3 with the row rejected."""
    path = _list_rows_file(tmp_path)
    result = invoke(tmp_path, "rerate", path, "--tenants", EXAMPLES / "tenants.csv", "--licenses",
                    EXAMPLES / "licenses.csv", "--workers", "1", "--output", tmp_path / "out.parquet")
    assert 3 == result.exit_code, result.output


# --- PASSING: risky cases that turned out right (kept as guards) --------------------------------------------

@pytest.mark.parametrize("odd", ['c{i},acme,2020-03-02T10:00:00Z,60,conf_out,"{pad}\n{pad}",FR,audio_conferencing,'
                                 '+33142685300,,,,USD', "", "c{i},acme,2020-03-02T10:00:00Z,60,conf_out,F\rR,FR,"
                                 "audio_conferencing,+33142685300,,,,USD"])
@pytest.mark.parametrize("shift", [0, 2000])
def test_passing_an_odd_row_at_the_columnar_piece_edge(tmp_path, monkeypatch, odd, shift):
    """PASSING. A file just over _columnar.CHUNK_BYTES (8 MiB, rows of ~1 KB) with a quoted line break, a
    blank line or a lone CR in the rows around the first piece's end: same records both ways, every row
    once, lines right."""
    from policyhistory._columnar import CHUNK_BYTES

    pad = "x" * 1000
    lines, size, index = [OWN_HEADER], len(OWN_HEADER) + 1, 0
    while size < CHUNK_BYTES - 3000 + shift:
        lines.append(own_row(f"c{index}").replace(",o,", f",{pad},"))
        size += len(lines[-1]) + 1
        index += 1
    lines += [own_row(f"c{index + k}") if k != 3 else odd.format(i=index + k, pad=pad) for k in range(8)]
    path = tmp_path / "calls.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    columnar, row_by_row = own_both_ways(monkeypatch, _store(tmp_path), path)
    assert columnar == row_by_row
    expected = len(lines) - 1 - (odd == "") + ("\r" in odd)  # a lone CR ends a line: two rows
    assert expected == len(columnar)


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("mark", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("last", [True, False])
def test_passing_line_ends_marks_and_a_last_line_without_its_break(tmp_path, monkeypatch, ending, mark, last):
    """PASSING. LF, CRLF, lone CR; with and without a UTF-8 BOM; with and without a final line break; a
    blank line in the middle: the same records and lines both ways."""
    text = ending.join([OWN_HEADER, own_row("c1"), "", own_row("c2"), own_row("c3")]) + (ending if last else "")
    path = tmp_path / "calls.csv"
    path.write_bytes(mark + text.encode("utf-8"))
    columnar, row_by_row = own_both_ways(monkeypatch, _store(tmp_path), path)
    assert columnar == row_by_row
    assert [2, 4, 5] == [record["line"] for record in records_of(columnar)]


@pytest.mark.parametrize("delimiter", ["\t", ";"])
def test_passing_tab_and_semicolon_teams_exports_with_reordered_padded_columns(tmp_path, monkeypatch, delimiter):
    """PASSING. A Teams export tab- or semicolon-delimited, its columns reversed and padded with spaces,
    an unknown column added, rows missing Call ID / UPN / UsageId: the same records both ways."""
    header, rows = teams_rows()
    rows[1][header.index("Call ID")] = ""
    rows[2][header.index("UPN")] = ""
    rows[3][header.index("UsageId")] = ""
    order = list(reversed(range(len(header))))
    path = teams_file(tmp_path, [f" {header[index]} " for index in order] + ["Extra"],
                      [[row[index] for index in order] + ["x"] for row in rows], delimiter)
    columnar, row_by_row = both_ways(monkeypatch, contoso(tmp_path), path)
    assert columnar == row_by_row and len(rows) == len(columnar)


# --- PROBLEM (a newcomer's trial): a misspelt column every row needs ----------------------------------------

@pytest.mark.parametrize(("column", "typo"), [("destination", "destinaton"), ("call_type", "calltype"),
                                              ("start", "strt")])
def test_a_header_without_a_column_every_row_needs_is_refused_naming_it(tmp_path, column, typo):
    """PROBLEM. A misspelt `destination` or `call_type` made `inspect` and `explain --calls` die with an
    AttributeError (None.strip()), and `rerate` reject every row with "the row has none (it ends before that
    column)". Now the header is refused (exit 2) naming the column and the header's close spelling."""
    lines = (EXAMPLES / "calls.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    header[header.index(column)] = typo
    path = tmp_path / "typo.csv"
    path.write_text("\n".join([",".join(header), *lines[1:]]) + "\n", encoding="utf-8")
    expected = f"lacks the column(s) every row needs: {column!r} (the header has {typo!r})"
    rerated = rerate(tmp_path, path)
    assert 2 == rerated.exit_code and "typo.csv:1" in rerated.output and expected in rerated.output
    inspected = invoke(tmp_path, "inspect", path)
    assert 2 == inspected.exit_code and expected in inspected.output
    explained = invoke(tmp_path, "explain", "seoul-1", "--calls", path)
    assert "Traceback" not in explained.output and explained.exit_code in (1, 2)


def test_a_teams_export_without_its_call_type_column_is_refused(tmp_path):
    header, rows = teams_rows()
    at = header.index("Call Type")
    path = teams_file(tmp_path, header[:at] + header[at + 1:], [row[:at] + row[at + 1:] for row in rows])
    result = rerate(tmp_path, path, tenant="contoso")
    assert 2 == result.exit_code and "lacks the column(s) every row needs: 'Call Type'" in result.output


@pytest.mark.parametrize(("column", "typo"), [("organizer_licenses", "organizer_licensesx"),
                                              ("billed_outcome", "billed_outcom")])
def test_a_misspelt_optional_column_is_warned_of(tmp_path, column, typo):
    """PROBLEM (a newcomer's trial). A misspelt optional column is not read: every call of calls.csv came out
    blocked, or no call changed, with exit 0 and nothing said. The run still goes on (the column may be
    another program's), with a warning naming the column and the one it is spelt like."""
    lines = (EXAMPLES / "calls.csv").read_text(encoding="utf-8").splitlines()
    path = tmp_path / "typo.csv"
    path.write_text("\n".join([lines[0].replace(column, typo), *lines[1:]]) + "\n", encoding="utf-8")
    result = rerate(tmp_path, path)
    assert 0 == result.exit_code, result.output
    assert f"warning: {path}:1: column {typo!r} is not read (is it {column!r}?)" in result.stderr
    assert "warning" not in rerate(tmp_path, EXAMPLES / "calls.csv").stderr


# --- PROBLEM (a probe's questionable readings): billed minutes, amounts, a fee alone, an empty synonym -------

@pytest.mark.parametrize(("minutes", "billed"), [("15.0", 15), ("1.9", None), ("-5", None), ("1_0", None),
                                                 ("\u0661\u0660", 10), ("14.9999999999999999", None),
                                                 ("15.00000000000000001", None), ("1e-400", None), ("1e1", 10)])
def test_billed_minutes_are_a_whole_number_of_minutes_0_or_more(tmp_path, monkeypatch, minutes, billed):
    """PROBLEM. billed_minutes "1.9" was read as 1 minute (int() of a float) and "-5" as -5 minutes, so the
    call came out changed for a difference the bill does not have; "1_0" was read as 10 (Python's float
    takes underscores). Now a whole number, 0 or more ("15.0" as a spreadsheet writes 15 is 15; Arabic-Indic
    digits are still digits), the same both ways; anything else a rejected row naming it."""
    path = own_file(tmp_path, own_row("c1"), own_row("c2", minutes=minutes), own_row("c3"))
    columnar, row_by_row = own_both_ways(monkeypatch, _store(tmp_path), path)
    assert columnar == row_by_row
    records = records_of(columnar)
    assert ["c1", "c2", "c3"] == [record["call_id"] for record in records]
    if billed is None:
        assert "rejected" == records[1]["outcome"]
        assert "field 'billed_minutes': expected" in records[1]["error"] and repr(minutes) in records[1]["error"]
    else:
        assert billed == records[1]["billed"]["minutes"]


@pytest.mark.parametrize("charge", ["1_0", "0.3_6"])
def test_a_billed_charge_with_an_underscore_is_refused(tmp_path, monkeypatch, charge):
    """PROBLEM. billed_charge "1_0" was read as 10.0 (Python's float takes underscores): a typo, refused."""
    path = own_file(tmp_path, own_row("c1", charge=charge))
    columnar, row_by_row = own_both_ways(monkeypatch, _store(tmp_path), path)
    assert columnar == row_by_row
    record = records_of(columnar)[0]
    assert "rejected" == record["outcome"] and "billed_charge" in record["error"]


def test_a_teams_connection_fee_without_a_charge_is_what_was_charged(tmp_path, monkeypatch):
    """PROBLEM. A Connection Fee of 0.5 beside an empty Charge was dropped (the bill read as charging
    nothing): the fee was what the call was charged."""
    header, rows = teams_rows()
    rows[9][header.index("Charge")] = ""
    rows[9][header.index("Connection Fee")] = "0.5"
    path = teams_file(tmp_path, header, rows[9:10])
    columnar, row_by_row = both_ways(monkeypatch, contoso(tmp_path), path)
    assert columnar == row_by_row
    assert 0.5 == records_of(columnar)[0]["billed"]["charge"]


@pytest.mark.parametrize("blank", ["", " ", "\t "])
@pytest.mark.parametrize("name", ["calls.csv", "calls.jsonl"])
def test_an_empty_organizer_licenses_does_not_hide_licenses(tmp_path, monkeypatch, name, blank):
    """PROBLEM. With both organizer_licenses and its synonym licenses as columns, an empty organizer_licenses
    hid the licenses row by row (and in JSON Lines both ways), though an empty organizer_usage_location
    beside usage_location does not: the first given of the two is read, as for the location and the user.
    Nor does a cell of spaces (a second probe: it was read as no license, the call blocked without a word)."""
    row = {"call_id": "c1", "tenant_id": "acme", "start": "2020-03-02T10:00:00Z", "duration_seconds": "60",
           "call_type": "conf_out", "organizer_id": "o", "organizer_usage_location": "FR",
           "organizer_licenses": blank, "licenses": "audio_conferencing", "destination": "+33142685300"}
    path = rows_file(tmp_path / name, [row])
    columnar, row_by_row = own_both_ways(monkeypatch, _store(tmp_path), path)
    assert columnar == row_by_row
    record = records_of(columnar)[0]
    assert "rejected" != record["outcome"] and "audio_conferencing" in json.dumps(record), record


# --- PROBLEM (a second probe): a huge charge, a fee's decimal comma, a currency's spelling -------------------

@pytest.mark.parametrize("charge", ["1e22", "1e27", "1000000000000"])
def test_a_billed_charge_beyond_any_bill_is_a_rejected_row_not_a_traceback(tmp_path, charge):
    """PROBLEM. billed_charge 1e22 rated, then the money summary's exact decimals failed
    (decimal.InvalidOperation, exit 1, no report); from 1e27 no record was written at all. A charge is
    below 10^12 in any currency (MAX_BILLED_CHARGE): beyond, a rejected row naming it; the run goes on."""
    lines = (EXAMPLES / "calls.csv").read_text(encoding="utf-8").splitlines()
    row = lines[2].split(",")
    row[lines[0].split(",").index("billed_charge")] = charge
    path = tmp_path / "calls.csv"
    path.write_text("\n".join([lines[0], lines[1], ",".join(row)]) + "\n", encoding="utf-8")
    result = invoke(tmp_path, "rerate", path, "--tenants", EXAMPLES / "tenants.csv", "--licenses",
                    EXAMPLES / "licenses.csv", "--workers", "1", "--report", tmp_path / "r.html",
                    "--summary-json", tmp_path / "s.json")
    assert 3 == result.exit_code, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert 2 == len(records) and "rejected" != records[0]["outcome"]
    assert f"field 'billed_charge': expected a number below 1,000,000,000,000, got {charge!r}" in records[1]["error"]
    assert (tmp_path / "r.html").exists() and 1 == json.loads((tmp_path / "s.json").read_text())["rejected"]


@pytest.mark.parametrize("column", ["Charge", "Connection Fee"])
def test_a_teams_charge_or_fee_beyond_any_bill_is_a_rejected_row(tmp_path, monkeypatch, column):
    header, rows = teams_rows()
    rows[9][header.index(column)] = "1e22"
    path = teams_file(tmp_path, header, rows[9:10])
    columnar, row_by_row = both_ways(monkeypatch, contoso(tmp_path), path)
    assert columnar == row_by_row
    record = records_of(columnar)[0]
    assert "rejected" == record["outcome"] and f"field {column!r}: expected a number below" in record["error"]


def test_a_semicolon_teams_export_reads_the_connection_fee_with_a_decimal_comma(tmp_path, monkeypatch):
    """PROBLEM. In a semicolon-separated export (French Excel) a Connection Fee of 0,10 was a rejected row,
    though the Charge's 0,36 was read as 0.36: the fee is read with a decimal comma alike (0.46 in all)."""
    header, rows = teams_rows()
    rows[9][header.index("Charge")] = "0,36"
    rows[9][header.index("Connection Fee")] = "0,10"
    path = teams_file(tmp_path, header, rows[9:10], delimiter=";")
    columnar, row_by_row = both_ways(monkeypatch, contoso(tmp_path), path)
    assert columnar == row_by_row
    assert 0.46 == records_of(columnar)[0]["billed"]["charge"]


@pytest.mark.parametrize("currency", ["USD", "usd", " USD ", "Usd ", ""])
def test_a_bills_currency_is_read_as_its_code(tmp_path, monkeypatch, currency):
    """PROBLEM. A currency of "usd" or " USD " was kept as written: the same currency's money was totalled
    apart and left uncompared with the rate card's USD. It is read as its ISO 4217 code (USD), our layout
    and the Teams export alike; empty is none."""
    row = own_row("c1", charge="0.36")
    path = own_file(tmp_path, row[:row.rindex(",") + 1] + currency)
    columnar, row_by_row = own_both_ways(monkeypatch, _store(tmp_path), path)
    assert columnar == row_by_row
    assert ("USD" if currency else None) == records_of(columnar)[0]["billed"]["currency"]
    header, rows = teams_rows()
    rows[9][header.index("Currency")] = currency
    teams = teams_file(tmp_path, header, rows[9:10])
    columnar, row_by_row = both_ways(monkeypatch, contoso(tmp_path), teams)
    assert columnar == row_by_row
    assert ("USD" if currency else None) == records_of(columnar)[0]["billed"]["currency"]


@pytest.mark.parametrize("name", ["calls.jsonl", "calls.json"])
def test_json_numbers_are_read_as_their_text(tmp_path, monkeypatch, name):
    """PROBLEM. The README says a JSON number is read as its text, as a CSV file would give it, but json.loads
    made it a float first: call ids 0.1 and 0.10 were one call id (the second rejected as a duplicate), an
    error quoted 9e2 as '900.0', and a duration of -0 was 0 seconds where CSV's -0 is refused. Now each
    number is its text, in JSON Lines (polars' lines and json.loads' alike) and in a JSON array."""
    good = {"tenant_id": "acme", "start": "2020-03-02T10:00:00Z", "duration_seconds": 60, "call_type": "conf_out",
            "organizer_usage_location": "FR", "organizer_licenses": "audio_conferencing",
            "destination": "+33142685300"}
    texts = [json.dumps({**good, "call_id": "CALL"}).replace('"CALL"', call_id) for call_id in ("0.1", "0.10")]
    texts.append(json.dumps({**good, "call_id": "c3"}).replace('"duration_seconds": 60', '"duration_seconds": 9e2'))
    texts.append(json.dumps({**good, "call_id": "c4"}).replace('"duration_seconds": 60', '"duration_seconds": -0'))
    texts.append(json.dumps({**good, "call_id": 7}))
    texts.append("5")  # not an object: refused quoting it as a number, as before
    path = tmp_path / name
    path.write_text("\n".join(texts) + "\n" if name.endswith(".jsonl") else "[" + ",\n".join(texts) + "]\n",
                    encoding="utf-8")
    columnar, row_by_row = own_both_ways(monkeypatch, _store(tmp_path), path)
    assert columnar == row_by_row
    records = records_of(columnar)
    assert ["0.1", "0.10", "c3", "c4", "7", None] == [record["call_id"] for record in records]
    assert records[5]["error"].endswith("got 5")
    assert "rejected" not in (records[0]["outcome"], records[1]["outcome"], records[4]["outcome"])
    assert "got '9e2'" in records[2]["error"] and "got '-0'" in records[3]["error"]


def test_rate_reads_the_calls_json_numbers_as_their_text_as_rerate_does(tmp_path):
    """`rate --call` read a JSON number as a number: the call id 0.10 came out "0.1", a duration 9e2 was
    refused quoting 900.0 and -0 was 0 seconds, where the same call in a call file is "0.10", refused quoting
    9e2 and refused quoting -0. Now both read it alike."""
    good = {"tenant_id": "contoso", "start": "2020-09-15T09:00:00Z", "duration_seconds": 900,
            "call_type": "conf_out", "organizer_usage_location": "US", "organizer_licenses": "audio_conferencing",
            "destination": "+33142685300"}

    def text(call_id: str, seconds: str = "900") -> str:
        return json.dumps({"call_id": "ID", **good}).replace('"ID"', call_id).replace(": 900", f": {seconds}")

    facts = ["--tenants", EXAMPLES / "tenants.csv", "--licenses", EXAMPLES / "licenses.csv"]
    rated = invoke(tmp_path, "rate", *facts, "--known-at", KNOWN_AT, "--json", "--call", text("0.10"))
    assert 0 == rated.exit_code, rated.output
    record = json.loads(rated.stdout)
    path = tmp_path / "calls.jsonl"
    path.write_text(text("0.10") + "\n" + text('"c2"', "9e2") + "\n" + text('"c3"', "-0") + "\n", encoding="utf-8")
    rerated = records_of(invoke(tmp_path, "rerate", path, *facts, "--known-at", KNOWN_AT).stdout.splitlines())
    fields = ("call_id", "outcome", "billable_minutes", "pool_minutes", "credit_minutes", "destination_country")
    assert [record[name] for name in fields] == [rerated[0][name] for name in fields]
    assert "0.10" == record["call_id"]
    for at, seconds in ((1, "9e2"), (2, "-0")):
        refused = invoke(tmp_path, "rate", "--known-at", KNOWN_AT, "--call", text('"c"', seconds))
        assert 2 == refused.exit_code and f"got '{seconds}'" in refused.output
        assert f"got '{seconds}'" in rerated[at]["error"]


@pytest.mark.parametrize("name", ["calls.csv", "calls.jsonl"])
def test_a_usage_location_of_spaces_gives_way_to_its_synonym_and_alone_is_refused(tmp_path, monkeypatch, name):
    """A cell of spaces in organizer_usage_location beside usage_location GB: GB is read (it was refused); a
    cell of spaces with no synonym given is refused quoting it, as before. Columnar and row by row alike."""
    rows = [{"call_id": "c1", "organizer_usage_location": " ", "usage_location": "GB"},
            {"call_id": "c2", "organizer_usage_location": " ", "usage_location": ""},
            {"call_id": "c3", "organizer_usage_location": "FR", "usage_location": "GB"}]
    common = {"tenant_id": "acme", "start": "2020-03-02T10:00:00Z", "duration_seconds": "60", "call_type": "conf_out",
              "organizer_licenses": "audio_conferencing", "destination": "+33142685300"}
    rows = [{**common, **row} for row in rows]
    path = rows_file(tmp_path / name, rows)
    columnar, row_by_row = own_both_ways(monkeypatch, _store(tmp_path), path)
    assert columnar == row_by_row
    records = records_of(columnar)
    assert "rejected" != records[0]["outcome"] and "rejected" != records[2]["outcome"], records
    assert "rejected" == records[1]["outcome"] and "' '" in records[1]["error"]


@pytest.mark.parametrize(("charge", "billed", "quoted"), [("0,36", 0.36, None), ("0,3,6", None, "0,3,6"),
                                                          ("1.000,50", None, "1.000,50"), ("12", 12.0, None)])
def test_a_semicolon_files_refused_amount_is_quoted_as_written(tmp_path, monkeypatch, charge, billed, quoted):
    """PROBLEM. In a semicolon-separated file every comma of an amount became a point, so "0,3,6" was refused
    as '0.3.6', a value the file does not have: only a number with one decimal comma (and no point) is read
    with a point; any other text is refused quoting it as written. Columnar and row by row alike."""
    header = OWN_HEADER.replace(",", ";")
    row = own_row("c1").replace(",", ";")
    fields = row.split(";")
    fields[OWN_HEADER.split(",").index("billed_charge")] = charge
    path = tmp_path / "calls.csv"
    path.write_text(header + "\n" + ";".join(fields) + "\n", encoding="utf-8")
    columnar, row_by_row = own_both_ways(monkeypatch, _store(tmp_path), path)
    assert columnar == row_by_row
    record = records_of(columnar)[0]
    if quoted is None:
        assert billed == record["billed"]["charge"]
    else:
        assert "rejected" == record["outcome"] and f"got {quoted!r}" in record["error"]


@pytest.mark.parametrize("charge", ["-0", "-0.0", " -0.00 "])
def test_a_billed_charge_of_minus_0_is_0(tmp_path, monkeypatch, charge):
    """PROBLEM. A billed_charge of -0 came out as -0.0 in billed.charge (and in charge_difference, and as
    "charge -0 USD" in the change text): it is 0."""
    path = own_file(tmp_path, own_row("c1", charge=charge))
    columnar, row_by_row = own_both_ways(monkeypatch, _store(tmp_path), path)
    assert columnar == row_by_row
    assert '"charge": 0.0' in columnar[0] and '": -0' not in columnar[0] and "charge -0" not in columnar[0]
