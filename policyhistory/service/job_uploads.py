"""A job's upload: a multipart body parsed chunk by chunk, each file part written straight to the job's
private `in/` folder under a generated name (the client's name is only shown, never a path), so that an upload
of any size never sits in memory. Parts `calls` (one or more files), `tenants`, `licenses`; the others are short
text fields."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser

CALL_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class TooLarge(Exception):
    """The upload passed the server's limit: 413."""


class BadUpload(Exception):
    """The upload is not a usable multipart form: 400 (or 422 for a missing part)."""


def display_name(client_name: str | None, index: int) -> str:
    """What a record's `file` says for an upload: the client's base name with unsafe characters replaced;
    never used as a path."""
    base = _SAFE.sub("_", (client_name or "").replace("\\", "/").rsplit("/", 1)[-1]).strip("._") or f"upload-{index}"
    return base[:120]


def _suffix(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return suffix if suffix in CALL_SUFFIXES else ".csv"


@attrs.define
class Upload:
    calls: list[tuple[str, Path]] = attrs.Factory(list)
    """(display name, stored path) in the order sent."""
    tenants: Path | None = None
    licenses: Path | None = None
    fields: dict[str, str] = attrs.Factory(dict)


async def receive(stream: AsyncIterator[bytes], boundary: bytes, folder: Path, limit: int) -> Upload:
    """Parse a multipart body chunk by chunk, each file part written straight to `folder` under a generated
    name: parts `calls` (one or more files), `tenants`, `licenses`; other parts are short text fields."""
    upload = Upload()
    total = 0
    handle: Any = None
    text = bytearray()
    segment: MultipartSegment | None = None
    try:
        with PushMultipartParser(boundary, max_segment_count=1000) as parser:
            async for chunk in stream:
                total += len(chunk)
                if total > limit:
                    raise TooLarge(f"the upload passed the server's limit of {limit} bytes")
                for part in parser.parse(chunk):
                    if isinstance(part, MultipartSegment):
                        segment = part
                        if part.filename is not None:
                            handle = _open_part(upload, part, folder)
                    elif part:
                        if handle is not None:
                            handle.write(part)
                        else:
                            text.extend(part)
                            if len(text) > 10_000:
                                raise BadUpload(f"form field {segment.name if segment else '?'!r} is too long")
                    else:
                        if handle is not None:
                            handle.close()
                            handle = None
                        elif segment is not None:
                            upload.fields[segment.name] = text.decode("utf-8", "replace")
                        text = bytearray()
                        segment = None
                if parser.closed:
                    break
    except (ParserError, ParserLimitReached) as error:
        raise BadUpload(f"not a usable multipart/form-data body: {error}") from None
    finally:
        if handle is not None:
            handle.close()
    return upload


def _open_part(upload: Upload, part: MultipartSegment, folder: Path) -> Any:
    if part.name == "calls":
        shown = display_name(part.filename, len(upload.calls) + 1)
        path = folder / f"{len(upload.calls):03d}-{uuid.uuid4().hex[:12]}{_suffix(shown)}"
        upload.calls.append((shown, path))
    elif part.name in ("tenants", "licenses"):
        suffix = ".json" if _suffix(part.filename or "") == ".json" else ".csv"
        path = folder / f"{part.name}-{uuid.uuid4().hex[:12]}{suffix}"
        setattr(upload, part.name, path)
    else:
        raise BadUpload(f"unexpected file part {part.name!r}; expected calls, tenants or licenses")
    return open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")

