"""Reading tabular input (CSV with comma or tab, JSON array, JSON Lines) as (line, row) pairs."""

from __future__ import annotations

import codecs
import contextlib
import csv
import difflib
import io
import json
import zipfile
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from ._errors import InvalidFieldError, InvalidRecordsError, Problem

Row = list[Any] | dict[str, Any]
"""A CSV row as the list of its values (the header names them), or a JSON record as a dict; a dict with
the key "__error__" is a row that could not be read, and says why."""


JSON_LINES_SUFFIXES = frozenset({".jsonl", ".ndjson"})


def sniff_delimiter(header: str, sample: str = "") -> str:
    """Comma, tab (the Skype for Business export) or semicolon (Excel's "CSV" where the decimal mark is a
    comma, as in France), as csv.Sniffer reads the header and the lines after it; comma when it cannot tell
    (a file of one column)."""
    # The header first: it holds column names only (no decimal commas, no quoted text), and rows of odd
    # values can mislead the sniffer into another delimiter; the rows only where the header cannot tell.
    for text in (header, header + sample):
        try:
            return csv.Sniffer().sniff(text, delimiters=",\t;").delimiter
        except csv.Error:
            continue
    return ","


_SAMPLE_LINES = 20


DECIMAL_COMMA_COLUMNS = frozenset({"billed_minutes", "billed_charge", "Charge", "Connection Fee"})
"""The layouts' columns that hold numbers with decimals: in a semicolon-separated file they are written with
a decimal comma (0,36), which is read as 0.36."""


# Longest first: UTF-32's little-endian mark begins with UTF-16's.
_BYTE_ORDER_MARKS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                     (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_NOT_TEXT = "save it as UTF-8 (in Excel: CSV UTF-8)"


def _unreadable(name: str, error: OSError) -> InvalidRecordsError:
    return InvalidRecordsError([Problem(name, None, None, None, f"cannot read the file: {error.strerror}")])


def text_encoding(path: Path) -> str:
    """UTF-16 or UTF-32 when the file starts with its byte order mark (Excel's "Unicode Text" is UTF-16),
    else UTF-8, with or without its mark."""
    try:
        with _open_bytes(path) as handle:
            head = handle.read(4)
    except OSError as error:
        raise _unreadable(str(path), error) from error
    return next((encoding for mark, encoding in _BYTE_ORDER_MARKS if head.startswith(mark)), "utf-8-sig")


ZIP_MAGIC = b"PK\x03\x04"


def zip_member(path: Path) -> str | None:
    """The CSV file inside a zip archive (the admin center's Calls.Export.{date}.zip holds one), or None when
    the file is not a zip archive. An archive with no CSV file, or several, is refused: which one is meant?"""
    try:
        with path.open("rb") as handle:
            if handle.read(4) != ZIP_MAGIC:
                return None
        with zipfile.ZipFile(path) as archive:
            members = [info.filename for info in archive.infolist()
                       if not info.is_dir() and info.filename.lower().endswith((".csv", ".tsv", ".txt"))]
    except OSError as error:
        raise _unreadable(str(path), error) from error
    except zipfile.BadZipFile as error:
        raise InvalidRecordsError([Problem(str(path), None, None, None, f"a damaged zip archive ({error}): "
                                           "download the export again")]) from None
    if len(members) != 1:
        raise InvalidRecordsError([Problem(str(path), None, None, None, f"a zip archive holding {len(members)} CSV "
                                           f"files ({', '.join(members[:5]) or 'none'}): extract the call records "
                                           "and give each file")])
    return members[0]


def _open_bytes(path: Path) -> IO[bytes]:
    """The file's bytes; for a zip archive, those of the CSV file inside it (see zip_member)."""
    member = zip_member(path)
    if member is None:
        return path.open("rb")
    archive = zipfile.ZipFile(path)
    handle = archive.open(member)
    handle_close = handle.close

    def close() -> None:
        handle_close()
        archive.close()

    handle.close = close  # type: ignore[method-assign]
    return handle


def open_text(path: Path) -> IO[str]:
    """The file as text in its encoding (see text_encoding), read from inside a zip archive if it is one."""
    return io.TextIOWrapper(_open_bytes(path), encoding=text_encoding(path), newline="")


def check_text(path: Path) -> None:
    """Refuse a file that is not text in its encoding (a Latin-1 or Windows-1252 export, say), naming the line
    of the first bad byte, before any row is read; decoding 100 MB takes about a tenth of a second. Lines end
    as the reading ends them: a line feed, a carriage return and line feed, or a carriage return alone."""
    encoding = text_encoding(path)
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    after_cr = False
    try:
        with _open_bytes(path) as handle:
            while chunk := handle.read(1 << 20):
                state = decoder.getstate()
                try:
                    text = decoder.decode(chunk)
                except UnicodeDecodeError as error:
                    # error.object: the bytes decoded, with any left from the chunk before (the decoder's state
                    # held them): the line is that of the text before error.start, decoded from that state.
                    before = codecs.getincrementaldecoder(encoding)()
                    before.setstate((b"", state[1]))
                    line += _line_breaks(before.decode(error.object[:error.start]), after_cr)
                    raise InvalidRecordsError([Problem(str(path), line, None, None,
                                                       f"not {encoding.removesuffix('-sig').upper()} text (byte "
                                                       f"0x{error.object[error.start]:02x}): {_NOT_TEXT}")]) \
                        from None
                if line == 1 and encoding == "utf-8-sig" and "\0" in text.partition("\n")[0].partition("\r")[0]:
                    # A header of letters and NUL bytes: UTF-16 or UTF-32 text whose mark says nothing of it.
                    raise InvalidRecordsError([Problem(str(path), 1, None, None,
                                                       "not UTF-8 text (NUL bytes in the first line: UTF-16 or "
                                                       f"UTF-32 without its byte order mark?): {_NOT_TEXT}")])
                line += _line_breaks(text, after_cr)
                if text:
                    after_cr = text.endswith("\r")
            decoder.decode(b"", final=True)
    except OSError as error:
        raise _unreadable(str(path), error) from error
    except UnicodeDecodeError:
        raise InvalidRecordsError([Problem(str(path), line, None, None, f"the file ends inside a character: "
                                           f"{_NOT_TEXT}")]) from None


def _line_breaks(text: str, after_cr: bool) -> int:
    """The line ends in `text`; `after_cr`: the text before it ended with a carriage return (which, with a line
    feed beginning this one, ends one line, not two)."""
    breaks = text.count("\n") + text.count("\r") - text.count("\r\n")
    return breaks - 1 if after_cr and text.startswith("\n") else breaks


def read_table(path: Path) -> tuple[list[str] | None, Generator[tuple[int, Row], None, None]]:
    """The header of a CSV file (None for JSON) and its rows with the line each starts on (JSON arrays count
    records from 1 instead of lines). CSV rows stay lists: a large re-rating reads them by column index.
    Text that does not decode (check_text finds it up front) stops the rows with an InvalidRecordsError."""
    name = str(path)
    try:
        handle = open_text(path)
    except OSError as error:
        raise _unreadable(name, error) from error
    try:
        first = handle.readline()
        skipped = 0
        if first.startswith("#TYPE "):
            # Windows PowerShell 5.1's Export-Csv writes "#TYPE System.Management.Automation.PSCustomObject"
            # above the header (PowerShell 7 no longer does).
            first, skipped = handle.readline(), 1
    except UnicodeDecodeError:
        handle.close()
        raise _not_text(name, 1) from None
    stripped = first.lstrip()
    suffix = path.suffix.lower()
    # JSON Lines by its name even when its first record is not an object (null, a number: a row to reject,
    # not a CSV header); otherwise by its first character. A first line that is not a whole JSON value
    # starts one JSON document over several lines (pretty-printed: a Graph response, ConvertTo-Json).
    if suffix in JSON_LINES_SUFFIXES or stripped.startswith(("[", "{")):
        handle.seek(0)
        document = suffix not in JSON_LINES_SUFFIXES and (stripped.startswith("[") or not _whole_json(stripped))
        return None, _json_rows(name, handle, array=document)
    position = handle.tell()
    try:
        sample = "".join(handle.readline() for _ in range(_SAMPLE_LINES))
    except UnicodeDecodeError:
        sample = ""  # the rows will say where the text stops decoding
    handle.seek(position)
    delimiter = sniff_delimiter(first, sample)
    header = next(csv.reader([first], delimiter=delimiter), [])
    columns = [column.strip() for column in header]
    seen: dict[str, int] = {}
    for index, column in enumerate(columns, start=1):
        if column and column in seen:  # unnamed columns (Excel's trailing separators) hold nothing we read
            handle.close()
            raise InvalidRecordsError([Problem(name, 1, None, column, f"the column appears twice in the header "
                                               f"(columns {seen[column]} and {index}): which one holds the value "
                                               "is ambiguous; remove or rename one")])
        seen.setdefault(column, index)
    rows = _csv_rows(name, handle, delimiter, columns)
    if skipped:
        rows = _lines_shifted(rows, skipped)
    if delimiter == ";":
        rows = _with_decimal_points(rows, [index for index, column in enumerate(columns)
                                           if column in DECIMAL_COMMA_COLUMNS])
    return columns, rows


def _whole_json(line: str) -> bool:
    """False when the line is the start of a longer JSON value (the text ends before the value does: "{",
    '{"value": ['), True for a whole value and for a broken one (a JSON Lines record to reject)."""
    try:
        json.loads(line)
    except json.JSONDecodeError as error:
        return error.pos < len(line.rstrip())
    return True


def _lines_shifted(rows: Generator[tuple[int, Row], None, None], by: int) -> Generator[tuple[int, Row], None, None]:
    with contextlib.closing(rows):
        for line, values in rows:
            yield line + by, values


def graph_records(document: Any) -> list[Any] | None:
    """The rows of a Microsoft Graph response (`{"value": [...], "@odata.context": ..., "@odata.nextLink":
    ...}`), or None for anything else."""
    if isinstance(document, dict) and isinstance(document.get("value"), list) and \
            any(str(key).startswith("@odata.") for key in document):
        return list(document["value"])
    return None


def _with_decimal_points(rows: Generator[tuple[int, Row], None, None],
                         indexes: list[int]) -> Generator[tuple[int, Row], None, None]:
    with contextlib.closing(rows):
        for line, values in rows:
            if type(values) is list:
                for index in indexes:
                    if index < len(values):
                        values[index] = decimal_point(values[index])
            yield line, values


def decimal_point(value: str) -> str:
    """A number written with a decimal comma (0,36) with a point instead (0.36); any other text as it is, so
    that a refusal quotes it as written ("0,3,6", "1.000,50" are no decimal-comma numbers)."""
    return value.replace(",", ".") if value.count(",") == 1 and "." not in value else value


def _not_text(name: str, line: int) -> InvalidRecordsError:
    return InvalidRecordsError([Problem(name, line, None, None, "not text in its encoding (UTF-8, unless it "
                                        f"starts with a UTF-16 or UTF-32 byte order mark): {_NOT_TEXT}")])


def _csv_rows(name: str, handle: Any, delimiter: str, columns: list[str]) -> Generator[tuple[int, Row], None, None]:
    """Rows with the line each starts on (the header is line 1). A record the csv module refuses (a field over
    its size limit), or one that runs over several lines, is a row that could not be read (its values by
    column beside the error, so that its call id is known): no field of a call record or a tenant fact holds
    a line break, and a quote left open would take in every line after it as one field, and those rows with
    it, silently where it opens in the last column."""
    with handle:
        reader = csv.reader(handle, delimiter=delimiter)
        ended = 0  # the reader's lines so far: the file's line ended + 1
        while True:
            try:
                for values in reader:
                    if reader.line_num == ended + 1:
                        ended += 1
                        if values:
                            yield ended + 1, values
                        continue
                    yield ended + 2, {**dict(zip(columns, values, strict=False)),
                                      "__error__": f"the record runs from line {ended + 2} to line "
                                      f"{reader.line_num + 1}: a field holds a line break, or a quote left open "
                                      "takes in the lines after it"}
                    ended = reader.line_num
                return
            except csv.Error as error:
                yield ended + 2, {"__error__": f"the csv module refuses it: {error}"}
                ended = reader.line_num
            except UnicodeDecodeError:
                raise _not_text(name, ended + 2) from None


def _json_rows(name: str, handle: Any, array: bool) -> Generator[tuple[int, Row], None, None]:
    with handle:
        if array:
            try:
                text = handle.read()
                records = loads_as_written(text)
                if type(records) is list and not all(type(record) is dict for record in records):
                    # A record that is not an object is refused quoting it: with its numbers as written.
                    plain = json.loads(text, object_pairs_hook=unique_keys)
                    records = [record if type(record) is dict else as_written
                               for record, as_written in zip(records, plain, strict=True)]
            except UnicodeDecodeError:
                raise _not_text(name, 1) from None
            except json.JSONDecodeError as error:
                raise InvalidRecordsError([Problem(name, error.lineno, None, None,
                                                   f"not valid JSON: {error.msg}")]) from None
            except (ValueError, RecursionError) as error:
                raise InvalidRecordsError([Problem(name, None, None, None, f"not readable JSON: "
                                                   f"{json_refusal(error)}")]) from None
            pages = graph_records(records)
            if pages is not None:
                records = pages
            elif isinstance(records, dict):
                records = [records]  # one record (ConvertTo-Json of a single object)
            if not isinstance(records, list):
                raise InvalidRecordsError([Problem(name, 1, None, None, "not a JSON array of records")])
            yield from enumerate(records, start=1)
            return
        number = 0
        try:
            for number, text in enumerate(handle, start=1):
                for record in json_line_rows(text):
                    yield number, record
        except UnicodeDecodeError:
            raise _not_text(name, number + 1) from None


def _integer_text(text: str) -> str:
    # As json.loads refuses an integer of more digits than Python converts (4,300), naming it too long,
    # rather than have a field's check quote thousands of digits.
    return text if len(text) <= 4300 else str(int(text))


NUMBERS_AS_TEXT: dict[str, Any] = {"parse_int": _integer_text, "parse_float": str}
"""A call file's JSON numbers read as their text, as a CSV file would give them: 0.10 is "0.10" (not the
float 0.1, the same call id as 0.1), 9e2 is "9e2" (not 900.0), -0 is "-0"; each field's own check reads it."""


def loads_as_written(text: str | bytes) -> Any:
    """JSON as a call file's is read: numbers as their text (NUMBERS_AS_TEXT), a key twice refused. The call
    files' readers, `rate --call` and the service read calls so: a call reads the same wherever it is given."""
    return json.loads(text, object_pairs_hook=unique_keys, **NUMBERS_AS_TEXT)


def json_line_rows(text: str) -> list[Row]:
    """The rows of one line of a JSON Lines file (`text` with its line break): none for a blank line, the
    record, a row that could not be read, or a Graph response page's rows (on one line: its rows, at its line)."""
    if not text.strip():
        return []
    try:
        record = loads_as_written(text)
        if type(record) is not dict:  # refused quoting it: with its numbers as written (5, not '5')
            record = json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as error:
        return [{"__error__": f"not valid JSON: {error.msg}"}]
    except (ValueError, RecursionError) as error:
        return [{"__error__": f"not readable JSON: {json_refusal(error)}"}]
    pages = graph_records(record)
    return [record] if pages is None else pages


class DuplicateKeyError(ValueError):
    """A JSON object names one key twice: which value is meant is ambiguous (json would keep the last)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _holds_lone_surrogate(text: str) -> bool:
    """Half of a surrogate pair ("\\ud800", which json.loads keeps from an escape): no UTF-8 output can hold it."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def refuse_lone_surrogates(record: dict[str, Any]) -> None:
    """A JSON text may escape half of a surrogate pair, which json.loads keeps and no UTF-8 output can hold:
    the row is refused, naming its field, not carried until a writer fails."""
    for name, value in record.items():
        if type(value) is str and _holds_lone_surrogate(value):
            raise InvalidFieldError(name, value, "text (a \\ud800 to \\udfff escape is half of a "
                                    "character: give both halves of its pair)")
        if isinstance(value, (dict, list)):
            for inner in (value.values() if isinstance(value, dict) else value):
                if isinstance(inner, (str, dict, list)):
                    refuse_lone_surrogates({name: inner})


def printable_text(value: object) -> object:
    """A text with a lone surrogate (see refuse_lone_surrogates) with it written as its escape; any other value
    as it is."""
    if type(value) is str and _holds_lone_surrogate(value):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object_pairs_hook: the object, refusing a key given twice rather than keeping its last value."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(key)
            seen.add(key)
    return found


def json_refusal(error: BaseException) -> str:
    """Why json refused a text that is JSON by its grammar: nested too deeply, a key given twice in one object,
    or an integer too long."""
    if isinstance(error, RecursionError):
        return "arrays or objects nested too deeply"
    if isinstance(error, DuplicateKeyError):
        return f"the key {error.key!r} is given twice in one object (which value is meant is ambiguous)"
    return f"an integer too long to read ({str(error).split(';')[0]})"


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows as dicts with the line they start on (a short CSV row's missing columns are None)."""
    columns, rows = read_table(path)
    for line, row in rows:
        if isinstance(row, dict) or columns is None:
            yield line, row  # type: ignore[misc]
        else:
            yield line, {column: (row[index] if index < len(row) else None) for index, column in enumerate(columns)}


def spelt_like(name: str, given: Sequence[str], where: str) -> str:
    """`name` quoted, with the closest spelling of it among `given` where there is one: a missing column
    named beside the misspelt one the file has ("'country' (the file has 'contry')")."""
    close = difflib.get_close_matches(name, given, n=1, cutoff=0.75)
    return f"{name!r} ({where} has {close[0]!r})" if close else repr(name)


def missing_fields_problem(path: Path, line: int, row: dict[str, Any], expected: Sequence[str],
                           seen: set[tuple[str, ...]]) -> Problem | None:
    """The problem of a facts file's row that lacks required fields, or None where it lacks none. The same
    missing fields are said once (`seen` keeps them: a CSV header's every row lacks them alike), with the
    row's closest spelling of each (a misspelt column)."""
    missing = tuple(name for name in expected if name not in row)
    if not missing or missing in seen:
        return None
    seen.add(missing)
    given = [name for name in row if isinstance(name, str) and name not in expected]
    named = ", ".join(spelt_like(name, given, "the file") for name in missing)
    return Problem(str(path), line, None, ", ".join(missing),
                   f"required column is missing: {named}; said once for the rows that lack it")
