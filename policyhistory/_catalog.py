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
from ._errors import InvalidRecordsError, Problem
from ._instant import format_instant
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
    unknown = sorted(set(document) - {"version"})
    problems = [
        Problem(name, None, None, key, "unknown top-level table; expected only [[version]] tables")
        for key in unknown
    ]
    records = document.get("version", [])
    if not isinstance(records, list):
        return [], [*problems, Problem(name, None, None, "version", "expected [[version]] tables")]
    header_lines = [text.count("\n", 0, match.start()) + 1 for match in _VERSION_HEADER.finditer(text)]
    versions = []
    for index, raw in enumerate(records):
        line = header_lines[index] if index < len(header_lines) else None
        version, record_problems = structure_version(raw, name, line)
        problems.extend(record_problems)
        if version is not None:
            versions.append(LocatedVersion(version, name, line))
    return versions, problems


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
    if "kind" in raw and kind not in PARAMS_BY_KIND:
        problems.append(problem("kind", f"unknown policy kind {kind!r}; expected one of {sorted(PARAMS_BY_KIND)}"))
    raw_params = dict(raw.get("params") or {})
    in_force = raw.get("in_force", raw_params.pop("in_force", True))
    if not isinstance(in_force, bool):
        problems.append(problem("in_force", f"expected true or false, got {in_force!r}"))
    params = None
    if kind in PARAMS_BY_KIND and (in_force is not False or raw_params):
        try:
            params = converter.structure(raw_params, PARAMS_BY_KIND[kind])
        except Exception as error:  # cattrs raises a group; transform_error names each field
            problems += [problem(f"params.{field}", message) for field, message in _field_errors(error)]
    source = None
    if "source" in raw:
        try:
            source = converter.structure(raw["source"], Source)
        except Exception as error:
            problems += [problem(f"source.{field}", message) for field, message in _field_errors(error)]
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


def _instant_problem(value: object) -> str | None:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return f"naive datetime {value.isoformat()}: a UTC offset is required (write it as ...Z or +00:00)"
        return None
    if isinstance(value, dt.date):
        return f"date {value.isoformat()} has no time: write an offset datetime, {value.isoformat()}T00:00:00Z"
    return f"expected an offset datetime such as 2018-07-01T00:00:00Z, got {value!r}"


def _field_errors(error: BaseException) -> list[tuple[str, str]]:
    """(field path, message) for each failure cattrs found; an unknown field is named as the field."""
    texts = cattrs.transform_error(error) if isinstance(error, cattrs.BaseValidationError) else [f"{error} @ $"]
    found = []
    for text in texts:
        message, _, path = text.rpartition(" @ ")
        parent = path.removeprefix("$").lstrip(".")
        extra = _EXTRA_FIELDS.match(message)
        if extra:
            found += [(".".join(filter(None, (parent, name.strip()))), "unknown field")
                      for name in extra.group(1).split(",")]
        else:
            found.append((parent or "*", message or text))
    return found


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

