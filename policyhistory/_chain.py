"""Tamper evidence: each appended row carries a hash over its canonical content and its predecessor's hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

GENESIS = "0" * 64


def canonical(values: Sequence[object]) -> str:
    """One text for one content, whatever the machine: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(list(values), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_hash(previous: str, values: Sequence[object]) -> str:
    return hashlib.sha256((previous + canonical(values)).encode("utf-8")).hexdigest()
