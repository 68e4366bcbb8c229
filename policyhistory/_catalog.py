"""Reading catalog files: TOML, one `[[version]]` table per policy version, checked before anything is written."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import cattrs

from ._convert import converter
from ._errors import InvalidRecordsError, PolicyHistoryError, Problem
from ._instant import format_instant, to_instant
from ._policy import PARAMS_BY_KIND, PolicyVersion, Source

REQUIRED_FIELDS = ("id", "key", "kind", "valid_from", "recorded_at", "source")
OPTIONAL_FIELDS = ("valid_to", "params", "notes", "in_force")
INSTANT_FIELDS = ("valid_from", "valid_to", "recorded_at")
_TOML_LINE = re.compile(r"at line (\d+)")  # tomllib (3.11) puts the line in its message only
_EXTRA_FIELDS = re.compile(r"^extra fields found \((.*)\)$")
_VERSION_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*version[ \t]*\]\]", re.MULTILINE)


@attrs.frozen
class LocatedVersion:
    """A version with the place it was read from, so that a later check can still name file and line."""

    version: PolicyVersion
    file: str | None = None
    line: int | None = None


def bundled_catalog_path() -> Path:
    """The catalog shipped with the package (inside the wheel), or the repository's policies/ folder."""
    inside = resources.files("policyhistory") / "policies"
    if inside.is_dir():
        return Path(str(inside))
    return Path(__file__).resolve().parent.parent / "policies"


def catalog_files(paths: Iterable[Path]) -> list[Path]:
    """Every .toml file named, or inside a folder named, in a stable order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.rglob("*.toml")))
        else:
            files.append(path)
    return files


def read_catalog(paths: Iterable[Path]) -> list[LocatedVersion]:
    """Read and check catalog files; raise InvalidRecordsError listing every problem of every file."""
    located: list[LocatedVersion] = []
    problems: list[Problem] = []
    for file in catalog_files(paths):
        file_versions, file_problems = _read_file(file)
        located.extend(file_versions)
        problems.extend(file_problems)
    problems.extend(check_versions(located, existing=()))
    if problems:
        raise InvalidRecordsError(problems)
    return located


def _read_file(file: Path) -> tuple[list[LocatedVersion], list[Problem]]:
    name = str(file)
    try:
        data = file.read_bytes()
    except OSError as error:
        return [], [Problem(name, None, None, None, f"cannot read the file: {error.strerror}")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return [], [Problem(name, data.count(b"\n", 0, error.start) + 1, None, None,
                            f"not UTF-8 text (byte 0x{data[error.start]:02x}); TOML files are UTF-8")]
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = _TOML_LINE.search(str(error))
        return [], [Problem(name, int(found.group(1)) if found else None, None, None, f"not valid TOML: {error}")]
    except RecursionError:
        return [], [Problem(name, None, None, None, "not readable TOML: arrays or tables nested too deeply")]
    unknown = sorted(set(document) - {"version"})
    problems = [
        Problem(name, None, None, key, "unknown top-level table; expected only [[version]] tables")
        for key in unknown
    ]
    records = document.get("version", [])
    if not isinstance(records, list):
        return [], [*problems, Problem(name, None, None, "version", "expected [[version]] tables")]
    header_lines = [text.count("\n", 0, match.start()) + 1 for match in _VERSION_HEADER.finditer(text)]
    lines = text.splitlines()
    versions = []
    for index, raw in enumerate(records):
        line = header_lines[index] if index < len(header_lines) else None
        if not isinstance(raw, dict):
            problems.append(Problem(name, line, None, "version", f"expected a [[version]] table, got {raw!r:.60}"))
            continue
        end = header_lines[index + 1] - 1 if index + 1 < len(header_lines) else len(lines)
        version, record_problems = structure_version(raw, name, line)
        if line is not None:
            record_problems = [attrs.evolve(problem, line=_field_line(lines, line, end, problem.field))
                               for problem in record_problems]
        problems.extend(record_problems)
        if version is not None:
            versions.append(LocatedVersion(version, name, line))
    return versions, problems


_TABLE_HEADER = re.compile(r"^[ \t]*\[\[?[ \t]*([^\]]+?)[ \t]*\]\]?")


def _field_line(lines: list[str], header: int, end: int, field: str | None) -> int:
    """The line of `field` ("valid_from", "params.unit_seconds", "source.quote") inside the [[version]] table
    that starts at line `header` and ends at `end`; the header's line when it is not written there (missing,
    or in an inline table)."""
    if not field or field in ("*", "version"):
        return header
    parts = field.split(".")
    table = "version" if len(parts) == 1 else "version." + ".".join(parts[:-1])
    key = re.compile(rf"^[ \t]*(?:{re.escape(parts[-1])}|\"{re.escape(parts[-1])}\")[ \t]*=")
    inline = re.compile(rf"^[ \t]*{re.escape(parts[0])}[ \t]*=") if len(parts) > 1 else None
    current = "version"
    for number in range(header, min(end, len(lines)) + 1):
        text = lines[number - 1]
        if number > header:
            heading = _TABLE_HEADER.match(text)
            if heading:
                current = re.sub(r"[ \t]", "", heading.group(1))
                continue
        if current == table and key.match(text):
            return number
        if inline is not None and current == "version" and inline.match(text):
            return number
    return header


def structure_version(
    raw: dict[str, Any], file: str | None = None, line: int | None = None
) -> tuple[PolicyVersion | None, list[Problem]]:
    """Turn one raw record (from TOML or JSON) into a PolicyVersion, or say everything wrong with it."""
    record = str(raw.get("id")) if raw.get("id") is not None else None

    def problem(field: str | None, message: str) -> Problem:
        return Problem(file, line, record, field, message)

    problems = [problem(field, "required field is missing") for field in REQUIRED_FIELDS if field not in raw]
    problems += [
        problem(field, f"unknown field; expected one of {', '.join(REQUIRED_FIELDS + OPTIONAL_FIELDS)}")
        for field in sorted(set(raw) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    ]
    for field in INSTANT_FIELDS:
        if field in raw:
            message = _instant_problem(raw[field])
            if message:
                problems.append(problem(field, message))
    kind = raw.get("kind")
    if "kind" in raw and (not isinstance(kind, str) or kind not in PARAMS_BY_KIND):
        problems.append(problem("kind", f"unknown policy kind {kind!r:.60}; expected one of {sorted(PARAMS_BY_KIND)}"))
        kind = None
    for field in ("id", "key", "notes"):
        if field in raw and not isinstance(raw[field], str):
            problems.append(problem(field, f"expected a text, got {raw[field]!r:.60}"))
    given_params = raw.get("params") or {}
    if not isinstance(given_params, dict):
        problems.append(problem("params", f"expected a table of parameters ([version.params]), got "
                                f"{given_params!r:.60}"))
        given_params = {}
    raw_params = dict(given_params)
    in_force = raw.get("in_force", raw_params.pop("in_force", True))
    if not isinstance(in_force, bool):
        problems.append(problem("in_force", f"expected true or false, got {in_force!r:.60}"))
    params = None
    if kind in PARAMS_BY_KIND and (in_force is not False or raw_params):
        try:
            params = converter.structure(raw_params, PARAMS_BY_KIND[kind])
        except Exception as error:  # cattrs raises a group; transform_error names each field
            problems += [problem(f"params.{field}", message) for field, message in _field_errors(error, raw_params)]
        else:
            problems += [problem(f"params.{field}", message) for field, message in _number_problems(raw_params,
                                                                                                    params)]
    source = None
    if "source" in raw:
        try:
            source = converter.structure(raw["source"], Source)
        except Exception as error:
            problems += [problem(f"source.{field}", message) for field, message in _field_errors(error, raw["source"])]
    if problems:
        return None, problems
    valid_from, valid_to = raw["valid_from"], raw.get("valid_to")
    if valid_to is not None and valid_to <= valid_from:
        return None, [problem("valid_to", f"valid_to {valid_to} must be after valid_from {valid_from}")]
    if not isinstance(raw["id"], str) or not raw["id"].strip():
        return None, [problem("id", f"expected a non-empty string, got {raw['id']!r}")]
    assert source is not None
    version = PolicyVersion(
        id=raw["id"],
        key=str(raw["key"]),
        kind=str(kind),
        valid_from=valid_from,
        valid_to=valid_to,
        recorded_at=raw["recorded_at"],
        params=params,
        source=source,
        notes=str(raw.get("notes", "")),
        in_force=bool(in_force),
    )
    return version, []


CATALOG_LATEST = dt.datetime(9998, 1, 1, tzinfo=dt.UTC)
"""A catalog instant is before 9998-01-01: the timeline draws two years past the last one."""


def _instant_problem(value: object) -> str | None:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return f"naive datetime {value.isoformat()}: a UTC offset is required (write it as ...Z or +00:00)"
        try:
            instant = to_instant(value)
        except PolicyHistoryError as error:
            return str(error).removeprefix("instant: ")
        if instant >= CATALOG_LATEST:
            return (f"{value.isoformat()} is too late: a catalog's instants lie between 1900-01-01T00:00:00Z and "
                    "9997-12-31T23:59:59Z")
        return None
    if isinstance(value, dt.date):
        return f"date {value.isoformat()} has no time: write an offset datetime, {value.isoformat()}T00:00:00Z"
    return f"expected an offset datetime such as 2018-07-01T00:00:00Z, got {value!r}"


_LITERAL = re.compile(r"^unknown error \((.*) not in literal typing\.Literal\[(.*)\]\)$")
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_MISSING = object()


def _at(raw: object, path: str) -> object:
    """The raw value at a cattrs path ("allowances[0].countries"), or _MISSING."""
    value = raw
    for name, index in _PATH_PART.findall("." + path if path and not path.startswith("[") else path):
        if name and isinstance(value, dict) and name in value:
            value = value[name]
        elif index and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return _MISSING
    return value


def _field_errors(error: BaseException, raw: object = None) -> list[tuple[str, str]]:
    """(field path, message) for each failure cattrs found, quoting the value given; an unknown field is
    named as the field."""
    try:
        texts = cattrs.transform_error(error) if isinstance(error, cattrs.BaseValidationError) else [f"{error} @ $"]
    except RecursionError:
        return [("*", "nested too deeply")]
    found = []
    for text in texts:
        message, _, path = text.rpartition(" @ ")
        parent = path.removeprefix("$").lstrip(".")
        extra = _EXTRA_FIELDS.match(message)
        if extra:
            found += [(".".join(filter(None, (parent, name.strip()))), "unknown field")
                      for name in extra.group(1).split(",")]
            continue
        literal = _LITERAL.match(message)
        if literal:
            message = f"expected one of {literal.group(2)}"
        elif message.startswith("invalid value for type, "):
            message = message.removeprefix("invalid value for type, ")
        value = _at(raw, parent)
        if value is not _MISSING and "got" not in message:
            message = f"{message}, got {value!r:.60}"
        found.append((parent or "*", message or text))
    return found


SQLITE_INTEGER_MAX = 2**63 - 1


def _number_problems(raw: object, value: object, path: str = "", name: str = "") -> list[tuple[str, str]]:
    """Every whole-number parameter, at any depth: written as a whole number (not 1.5, not true), 0 or more
    and within SQLite's integer; a duration (`*_seconds`) more than 0. Checked at load, so that no value
    that would break every rating later (a zero rounding unit) is stored."""
    if attrs.has(type(value)):
        found = []
        for field in attrs.fields(type(value)):  # type: ignore[arg-type]
            given = raw.get(field.name, _MISSING) if isinstance(raw, dict) else _MISSING
            found += _number_problems(given, getattr(value, field.name),
                                      f"{path}.{field.name}" if path else field.name, field.name)
        return found
    if isinstance(value, tuple):
        found = []
        for index, item in enumerate(value):
            given = raw[index] if isinstance(raw, list) and index < len(raw) else _MISSING
            found += _number_problems(given, item, f"{path}[{index}]", name)
        return found
    if type(value) is not int:
        return []
    if raw is not _MISSING and type(raw) is not int:
        return [(path, f"expected a whole number, got {raw!r:.60}")]
    if name.endswith("_seconds") and value <= 0:
        return [(path, f"expected a number of seconds more than 0, got {value}")]
    if not 0 <= value <= SQLITE_INTEGER_MAX:
        return [(path, f"expected a whole number from 0 to {SQLITE_INTEGER_MAX}, got {value}")]
    return []


def _overlap(a: PolicyVersion, b: PolicyVersion) -> bool:
    a_ends_after_b_starts = a.valid_to is None or b.valid_from < a.valid_to
    b_ends_after_a_starts = b.valid_to is None or a.valid_from < b.valid_to
    return a_ends_after_b_starts and b_ends_after_a_starts


def check_versions(new: Sequence[LocatedVersion], existing: Iterable[PolicyVersion]) -> list[Problem]:
    """Checks across records: ids unique within the batch, and no two versions of a key recorded at the same
    instant over overlapping valid time (which of the two would answer? we refuse to guess)."""
    problems: list[Problem] = []
    by_id: dict[str, LocatedVersion] = {}
    for item in new:
        earlier = by_id.get(item.version.id)
        if earlier is not None and earlier.version != item.version:
            problems.append(
                Problem(item.file, item.line, item.version.id, "id",
                        f"the same id has other content at {earlier.file}:{earlier.line}")
            )
        by_id.setdefault(item.version.id, item)
    known = {version.id: version for version in existing}
    same_instant: dict[tuple[str, object], list[LocatedVersion]] = {}
    for item in [LocatedVersion(version) for version in known.values()] + [
        item for item in by_id.values() if item.version.id not in known
    ]:
        same_instant.setdefault((item.version.key, item.version.recorded_at), []).append(item)
    for group in same_instant.values():
        for index, item in enumerate(group):
            for other in group[index + 1:]:
                if _overlap(item.version, other.version):
                    place, clash = (other, item) if other.file else (item, other)
                    problems.append(Problem(
                        place.file, place.line, place.version.id, "valid_from",
                        f"overlaps {clash.version.id!r} ({clash.version.interval_text()}), another version of "
                        f"{place.version.key!r} recorded at the same instant "
                        f"{format_instant(place.version.recorded_at)}: which one holds is ambiguous",
                    ))
    return problems

