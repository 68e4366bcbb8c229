"""An output never destroys an input, and is never half written; scratch folders do not outlive their run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

import policyhistory
from policyhistory.cli import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(ROOT / "benchmarks"))
from generate import generate  # noqa: E402


@pytest.fixture
def calls(tmp_path) -> Path:
    path = tmp_path / "in.csv"
    path.write_bytes((EXAMPLES / "calls.csv").read_bytes())
    return path


def invoke(tmp_path, *args):
    return CliRunner().invoke(cli, ["--db", str(tmp_path / "s.db"), *map(str, args)])


@pytest.mark.parametrize("target", ["in.csv", "s.db", "s.db-wal", "s.db-shm", "tenants.csv"])
@pytest.mark.parametrize("option", ["--output", "--report"])
def test_rerate_refuses_an_output_that_is_an_input_or_the_store(tmp_path, calls, option, target):
    tenants = tmp_path / "tenants.csv"
    tenants.write_bytes((EXAMPLES / "tenants.csv").read_bytes())
    policyhistory.open(tmp_path / "s.db").close()
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    result = invoke(tmp_path, "rerate", calls, "--tenants", tenants, "--licenses", EXAMPLES / "licenses.csv",
                    option, tmp_path / target)
    assert 2 == result.exit_code, result.output
    assert option in result.output and "writing it would destroy it" in result.output
    after = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file() and path.name in before}
    assert {k: v for k, v in before.items() if not k.startswith("s.db")} == {
        k: v for k, v in after.items() if not k.startswith("s.db")}
    assert 80 == policyhistory.open(tmp_path / "s.db").db["policy_versions"].count


def test_a_link_to_an_input_is_the_input(tmp_path, calls):
    (tmp_path / "sym.csv").symlink_to(calls)
    os.link(calls, tmp_path / "hard.csv")
    for name in ("sym.csv", "hard.csv"):
        result = invoke(tmp_path, "rerate", calls, "--output", tmp_path / name)
        assert 2 == result.exit_code and "one of the command's input files" in result.output
    assert (EXAMPLES / "calls.csv").read_bytes() == calls.read_bytes()


def test_output_and_report_cannot_be_one_file(tmp_path, calls):
    result = invoke(tmp_path, "rerate", calls, "--output", tmp_path / "x", "--report", tmp_path / "x")
    assert 2 == result.exit_code and "also the --output output" in result.output


def test_timeline_and_catalog_refuse_the_store_and_their_inputs(tmp_path):
    policyhistory.open(tmp_path / "s.db").close()
    size = (tmp_path / "s.db").stat().st_size
    result = invoke(tmp_path, "timeline", "--output", tmp_path / "s.db")
    assert 2 == result.exit_code and "is the store" in result.output
    assert size == (tmp_path / "s.db").stat().st_size
    toml = tmp_path / "c.toml"
    toml.write_bytes((ROOT / "policies" / "complimentary_dial_out.toml").read_bytes()
                     if (ROOT / "policies" / "complimentary_dial_out.toml").exists()
                     else next((ROOT / "policies").glob("*.toml")).read_bytes())
    text = toml.read_text(encoding="utf-8")
    for target in (toml, tmp_path / "s.db"):
        result = invoke(tmp_path, "catalog", toml, "--output", target)
        assert 2 == result.exit_code, result.output
    assert text == toml.read_text(encoding="utf-8")


def test_outputs_are_written_whole(tmp_path, calls):
    result = invoke(tmp_path, "rerate", calls, "--tenants", EXAMPLES / "tenants.csv", "--licenses",
                    EXAMPLES / "licenses.csv", "--output", tmp_path / "out.jsonl", "--report", tmp_path / "r.html")
    assert 0 == result.exit_code, result.output
    assert 3 == len((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines())
    assert "policyhistory verify --digest" in (tmp_path / "r.html").read_text(encoding="utf-8")
    assert [] == [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("big")
    generate(folder, 150_000, 200, 7)
    db = folder / "s.db"
    store = policyhistory.open(db)
    store.load_tenant_facts(folder / "tenants.csv", folder / "licenses.csv")
    store.close()
    return folder, db


def start_rerate(big: tuple[Path, Path], workdir: Path, *extra: str) -> subprocess.Popen[bytes]:
    folder, db = big
    return subprocess.Popen([sys.executable, "-m", "policyhistory.cli", "--db", str(db), "rerate",
                             str(folder / "calls.csv"), "--workdir", str(workdir), "--known-at", "2025-01-01",
                             *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_until(process: subprocess.Popen[bytes], ready: Callable[[], bool], seconds: float = 60) -> None:
    """Until `ready()`, the run still running (its stderr shown if it ended) and within `seconds`."""
    deadline = time.monotonic() + seconds
    while not ready():
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.02)


def wait_for_scratch(workdir: Path, process: subprocess.Popen[bytes]) -> None:
    wait_until(process, lambda: any(workdir.glob("policyhistory-rerate-*")))
    time.sleep(0.3)  # well inside the run: reading, scratch files being written


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_leaves_no_scratch_folder(big, tmp_path, signum):
    workdir = tmp_path / "work"
    workdir.mkdir()
    process = start_rerate(big, workdir, "--output", str(tmp_path / "out.jsonl"))
    wait_for_scratch(workdir, process)
    process.send_signal(signum)
    process.wait(timeout=60)
    assert process.returncode != 0
    assert [] == list(workdir.iterdir())
    assert not (tmp_path / "out.jsonl").exists()  # never a half output
    assert [] == [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_kill_9_keeps_the_old_output_and_a_later_run_removes_the_stale_scratch(big, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    out = tmp_path / "out.jsonl"
    out.write_text("the previous run's output\n", encoding="utf-8")
    process = start_rerate(big, workdir, "--output", str(out))
    wait_for_scratch(workdir, process)
    process.kill()
    process.wait(timeout=60)
    assert "the previous run's output\n" == out.read_text(encoding="utf-8")
    left = list(workdir.iterdir())
    assert 1 == len(left) and left[0].name.startswith(f"policyhistory-rerate-{process.pid}-")
    kept = workdir / f"policyhistory-rerate-{os.getpid()}-alive"  # its owner (this test) is running
    kept.mkdir()
    result = CliRunner().invoke(cli, ["--db", str(big[1]), "rerate", str(EXAMPLES / "calls.csv"), "--workdir",
                                      str(workdir), "--known-at", "2025-01-01"])
    assert result.exit_code in (0, 3), result.output
    assert [kept] == list(workdir.iterdir())


def test_a_run_that_writes_fewer_rows_than_it_read_exits_1_and_writes_nothing(tmp_path, calls, monkeypatch):
    """The issue's unit_seconds = -60 run reported "rated 21" and wrote 0 rows; whatever the cause, the count
    of records written is checked against the rows read before the output is put in place."""
    from policyhistory._merge import OutputBlock
    from policyhistory._rerate import Rerate

    original = Rerate.audited_blocks

    def losing_one(self, audit, progress=None):  # the lines rerate writes come in blocks of lines and flags
        blocks = [OutputBlock(block.flags, texts=block.lines()) for block in original(self, audit, progress)]
        blocks[-1] = OutputBlock(blocks[-1].flags[:-1], texts=blocks[-1].lines()[:-1])
        yield from blocks

    monkeypatch.setattr(Rerate, "audited_blocks", losing_one)
    out = tmp_path / "out.jsonl"
    result = invoke(tmp_path, "rerate", calls, "--tenants", EXAMPLES / "tenants.csv", "--licenses",
                    EXAMPLES / "licenses.csv", "--output", out)
    assert 1 == result.exit_code
    assert "wrote 2 of 3 input rows" in result.output
    assert not out.exists()
    assert [] == [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_kill_9_while_results_are_written_leaves_the_results_database_as_it_was(big, tmp_path, calls):
    """A run's ratings, manifest and totals go into a results database in one transaction: killed while its
    ratings stream in, the run leaves nothing there (SQLite rolls the transaction back), the earlier run whole."""
    results = tmp_path / "results.db"
    first = invoke(tmp_path, "rerate", calls, "--tenants", EXAMPLES / "tenants.csv", "--licenses",
                   EXAMPLES / "licenses.csv", "--output", results)
    assert 0 == first.exit_code, first.output
    workdir = tmp_path / "work"
    workdir.mkdir()
    process = start_rerate(big, workdir, "--format", "sqlite", "--output", str(results))
    journal = tmp_path / "results.db-journal"
    wait_until(process, journal.exists, 120)  # the run's transaction has written into the database
    time.sleep(0.5)
    process.kill()
    process.wait(timeout=60)
    db = sqlite3.connect(results)
    try:
        assert [(3, 1)] == db.execute("SELECT count(*), count(DISTINCT run_id) FROM ratings").fetchall()
        assert 1 == db.execute("SELECT count(*) FROM runs").fetchone()[0]
        assert [] == db.execute("SELECT run_id FROM ratings EXCEPT SELECT run_id FROM runs").fetchall()
    finally:
        db.close()


def _children(parent: int) -> list[int]:
    """The processes whose parent is `parent`, and are not zombies (Linux's /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            if int(fields[1]) == parent and fields[0] != "Z":
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_kill_9_of_a_run_with_workers_leaves_no_worker_behind(big, tmp_path):
    """A newcomer's trial: `rerate --workers 2` killed by SIGKILL left its two workers (160 MB each) and
    multiprocessing's resource tracker running for good, reparented to init: a worker waits on a pipe whose
    other end it holds itself. Each worker now leaves when its parent is gone (and then the tracker)."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    process = start_rerate(big, workdir, "--workers", "2", "--output", str(tmp_path / "out.jsonl"))
    wait_until(process, lambda: len(_children(process.pid)) >= 3)  # the two workers and the resource tracker
    children = _children(process.pid)
    time.sleep(0.5)
    process.kill()
    process.wait(timeout=60)
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [] == [pid for pid in children if _alive(pid)]
