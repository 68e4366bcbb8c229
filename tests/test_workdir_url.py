"""rerate --workdir as an fsspec URL (file://, memory://): the same records, byte for byte, as a local workdir,
the scratch folder removed after the run, and clear usage errors for a URL that cannot be used."""

from __future__ import annotations

import csv
import importlib.util
import re
import sys
from pathlib import Path

import fsspec
import pytest
from click.testing import CliRunner

from policyhistory import PolicyHistoryError, Rerate
from policyhistory.cli import cli

from . import test_rerate_agreement as agreement

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FACTS = ["--tenants", str(EXAMPLES / "tenants.csv"), "--licenses", str(EXAMPLES / "licenses.csv")]
README_RUN = [str(EXAMPLES / "PSTN.calls.2022-06-30.csv"), str(EXAMPLES / "calls.csv"), *FACTS, "--tenant", "contoso",
              "--known-at", "2026-11-23"]
RUN_ID = re.compile(r'"run_id": "[^"]+"')
TENANT_IDS = ["acme", "seoul"]
DESTINATIONS = ["+33142685300", "+442071234567", "+14155552671", "+82221234567", "+263242700000"]


def _cli(tmp_path: Path, *args: str) -> tuple[int, str, list[str]]:
    """(exit status, stdout without the run ids, stderr without its last line: the store digest's instant)."""
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "rerate", *args])
    return result.exit_code, RUN_ID.sub("", result.stdout), result.stderr.splitlines()[:-1] or [result.output]


def _generated(tmp_path: Path, count: int = 3_000) -> Path:
    """`count` calls of two tenants (pools drawn month by month), each dialing a number of its own."""
    path = tmp_path / "generated.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(agreement.COLUMNS)
        for index in range(count):
            destination = DESTINATIONS[index % len(DESTINATIONS)]
            writer.writerow([f"c{index}", TENANT_IDS[index % 2],
                             f"2020-{1 + index % 12:02d}-{1 + index % 28:02d}T{index % 24:02d}:{index % 60:02d}:00Z",
                             30 + index * 7 % 3_600, ["conf_out", "user_out", "conf_in"][index % 3], "o",
                             ["FR", "KR", ""][index % 3], "audio_conferencing;communications_credits",
                             destination[:-4] + f"{index % 10_000:04d}"])
    return path


def test_workdir_file_url_gives_the_local_workdirs_output_and_leaves_it_empty(tmp_path):
    local, url = tmp_path / "local", tmp_path / "url"
    local.mkdir()
    url.mkdir()
    runs = {(where, workers): _cli(tmp_path, *README_RUN, "--workdir", where, "--workers", workers)
            for where in (str(local), f"file://{url}") for workers in ("1", "2")}
    expected = runs[(str(local), "1")]
    assert 0 == expected[0], expected
    assert 21 == len(expected[1].splitlines())
    assert "rows 21: rated 21, rejected 0, changed 7" in expected[2]
    for key, run in runs.items():
        assert expected == run, key  # records byte for byte, and the same summary
    assert [] == list(url.iterdir())  # the run's scratch folder is gone
    assert [] == list(local.iterdir())


def test_workdir_file_and_memory_urls_rate_a_generated_file_as_a_local_workdir(tmp_path):
    path = _generated(tmp_path)
    store = agreement._store(tmp_path)
    local, url = tmp_path / "local", tmp_path / "url"
    local.mkdir()
    url.mkdir()
    expected = list(Rerate(store, [path], known_at="2026-11-23", workdir=local, workers=1, shards=4).records_json())
    assert 3_000 == len(expected)
    assert 2_000 < sum('"outcome": "rejected"' not in line for line in expected)
    for options in ({"workdir": f"file://{url}", "workers": 1, "shards": 4},
                    {"workdir": f"file://{url}/", "workers": 2, "shards": 4},
                    {"workdir": "memory://scratch", "workers": 1, "shards": 4},
                    {"workdir": "memory://scratch"},  # the default workers: this one process, memory being its own
                    {"workdir": local, "workers": 2, "shards": 3}):
        run = Rerate(store, [path], known_at="2026-11-23", **options)  # type: ignore[arg-type]
        assert expected == list(run.records_json()), options
        assert 3_000 == run.summary.rows
    assert [] == list(url.iterdir())
    assert [] == fsspec.filesystem("memory").ls("/scratch")


def test_workdir_memory_url_works_in_one_process_only(tmp_path):
    status, output, summary = _cli(tmp_path, *README_RUN, "--workdir", "memory://scratch", "--workers", "1")
    assert (0, 21) == (status, len(output.splitlines())), summary
    assert (0, output, summary) == _cli(tmp_path, *README_RUN, "--workers", "1")
    for extra in (["--workers", "2"], ["--dask", "tcp://127.0.0.1:9"]):
        result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "rerate", *README_RUN, "--workdir",
                                          "memory://scratch", *extra])
        assert 2 == result.exit_code, extra
        assert "Invalid value for --workdir: workdir memory://scratch: memory:// lives in one process: rate with " \
               "--workers 1 and no --dask" in result.output
    with pytest.raises(PolicyHistoryError, match="memory:// lives in one process"):
        Rerate(agreement._store(tmp_path), [EXAMPLES / "calls.csv"], known_at="2026-11-23",
               workdir="memory://scratch", workers=2)


def test_workdir_url_that_cannot_be_used_is_a_usage_error(tmp_path, monkeypatch):
    cases = {"nosuch://x": "workdir nosuch://x: fsspec knows no protocol 'nosuch'",
             f"file://{tmp_path}/missing": f"workdir file://{tmp_path}/missing: the folder "
                                           f"'{tmp_path}/missing' does not exist",
             f"file://{tmp_path}/calls.csv": f"workdir file://{tmp_path}/calls.csv: '{tmp_path}/calls.csv' is not a "
                                             "folder"}
    (tmp_path / "calls.csv").write_text("call_id\n", encoding="utf-8")
    if importlib.util.find_spec("s3fs") is None:  # a protocol fsspec knows, whose package is missing
        cases["s3://bucket/prefix"] = "workdir s3://bucket/prefix: protocol 's3' needs a package that is not " \
                                      "installed (Install s3fs to access S3)"
    for workdir, message in cases.items():
        result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "rerate", *README_RUN, "--workdir", workdir])
        assert 2 == result.exit_code, workdir
        assert f"Invalid value for '--workdir': {message}" in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "missing").exists()
    with pytest.raises(PolicyHistoryError, match="fsspec knows no protocol 'nosuch'"):
        list(Rerate(agreement._store(tmp_path), [EXAMPLES / "calls.csv"], known_at="2026-11-23",
                    workdir="nosuch://x").records_json())
    monkeypatch.setitem(sys.modules, "fsspec", None)  # as if the extra were not installed
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "p.db"), "rerate", *README_RUN, "--workdir",
                                      f"file://{tmp_path}"])
    assert 2 == result.exit_code
    assert "a URL needs fsspec, which is not installed: pip install 'policyhistory[dask]'" in result.output
