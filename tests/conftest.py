from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pendulum
import pytest
from hypothesis import settings

import policyhistory

NOW = pendulum.datetime(2026, 11, 23, 12, tz="UTC")

# The property tests draw new examples on every run, which is how they find the rare input no one wrote down;
# CI (HYPOTHESIS_PROFILE=ci, set by .ci/run) draws the same ones every time, so that its verdict is the
# change's and not the draw's. A failing draw prints its example: keep it as an @example of its test.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def fixed_clock() -> pendulum.DateTime:
    return NOW


@pytest.fixture
def fresh_store() -> policyhistory.Store:
    """An in-memory store holding the bundled catalog, its clock fixed at NOW."""
    return policyhistory.open(clock=fixed_clock)


@pytest.fixture
def empty_store() -> policyhistory.Store:
    return policyhistory.open(clock=fixed_clock, bundled=False)


def version_toml(
    id: str,
    key: str = "test.key",
    valid_from: str = "2020-01-01T00:00:00Z",
    valid_to: str | None = None,
    recorded_at: str = "2020-01-01T00:00:00Z",
    minutes: int = 60,
    extra: str = "",
) -> str:
    valid_to_line = f"valid_to = {valid_to}\n" if valid_to else ""
    return textwrap.dedent(
        f"""\
        [[version]]
        id = "{id}"
        key = "{key}"
        kind = "minute_rounding"
        valid_from = {valid_from}
        {valid_to_line}recorded_at = {recorded_at}
        {extra}
        [version.params]
        unit_seconds = {minutes}
        mode = "up"

        [version.source]
        document = "test.md"
        section = "s"
        quote = "q"
        published = 2020-01-01

        """
    )


@pytest.fixture
def write_catalog(tmp_path: Path) -> Callable[..., Path]:
    def write(name: str, *versions: str) -> Path:
        path = tmp_path / name
        path.write_text("".join(versions), encoding="utf-8")
        return path

    return write
