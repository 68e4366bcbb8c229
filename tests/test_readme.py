"""The README's examples run and say what they print."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import policyhistory

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README, re.S)


def test_readme_rating_example_runs_and_prints_what_it_says(monkeypatch, capsys):
    [block] = [b for b in python_blocks() if "store.rate(" in b]
    monkeypatch.chdir(ROOT)
    namespace = {"calls": []}
    exec("import policyhistory\n" + block, namespace)
    rating = namespace["rating"]
    assert ("dial_out_pool", 3, 720) == (rating.outcome, rating.pool_minutes, rating.pool.capacity)
    assert "# ('dial_out_pool', 3, 720)" in block
    assert "pool_basis" in capsys.readouterr().out  # the loop printed the trace


def test_readme_first_command_is_the_main_job():
    first = README.split("```sh\n", 1)[1].splitlines()[0]
    assert first.startswith("python -m pip install . && policyhistory rerate examples/PSTN.calls.2022-06-30.csv")


def test_readme_rerate_library_example_says_what_it_gives(monkeypatch):
    """Each expression line of the Rerate block gives the value its comment shows."""
    [block] = [b for b in python_blocks() if "policyhistory.Rerate(" in b]
    monkeypatch.chdir(ROOT)
    namespace = {"policyhistory": policyhistory}
    lines = block.strip().splitlines()
    statements = [line for line in lines if "= " in line.split("#")[0] or "load_tenant_facts" in line]
    for line in statements:  # the block's own set-up: open, load the example tenants, the run
        exec(line, namespace)
    for line in lines[len(statements):]:
        expression, comment = line.split("#", 1)
        shown = ast.literal_eval(comment.strip().split(": as known")[0])
        assert shown == eval(expression, namespace)
