"""The run of one job, on the jobs' thread with a store of its own: the upload re-rated as `rerate` would,
`records.jsonl` and `report.html` written under `.part` names and renamed when complete, the job's row kept
up to date (stage, counters) and its end recorded: done, failed with the reason, or cancelled (its files
removed). A client's cancel is seen at the next check: each progress report, and every half second of writing."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import PolicyHistoryError
from .._instant import format_instant, to_instant
from .._money import Audit
from .._pictures import report_html
from .._rerate import Rerate
from .._store import Store
from .job_table import JOBS_TABLE, now
from .state import write_transaction

if TYPE_CHECKING:  # the queue makes each runner: it is given the Jobs, never imports them
    from .jobs import Jobs

ROW_ERRORS_KEPT = 100
"""Rejected rows a job's state lists with their reasons (the first, in input order); the records have all."""
REPORT_CHANGED_CALLS = 1_000
"""Changed calls the report lists one by one, as `rerate --report` does."""
_UPDATE_EVERY = 0.5
"""Seconds between two writes of a running job's counters."""


class Cancelled(Exception):
    """A client cancelled the job: the run stops at its next check and removes the job's files."""


class Runner:
    """One job's run, on the queue's thread: its row read, the run made, its state written as it goes."""

    def __init__(self, store: Store, jobs: Jobs, job_id: str) -> None:
        self.store = store
        self.db = store.db
        self.jobs = jobs
        self.id = job_id
        self.folder = jobs.folder(job_id)
        self._last = 0.0
        self.rows_read = 0

    def _set(self, where_running: bool = True, **values: Any) -> bool:
        names = ", ".join(f"{name} = ?" for name in values)
        condition = " AND state = 'running'" if where_running else " AND state = 'queued'"
        with write_transaction(self.db.conn):
            cursor = self.db.execute(f"UPDATE {JOBS_TABLE} SET {names} WHERE id = ?{condition}",
                                     [*values.values(), self.id])
        return bool(cursor.rowcount)

    def run(self) -> None:
        row = self.jobs.row(self.db, self.id)
        if not self._set(where_running=False, state="running", started_at=now(), stage="checking",
                         pid=os.getpid()):
            shutil.rmtree(self.folder, ignore_errors=True)  # cancelled while queued
            return
        try:
            self._rerate(row)
        except Cancelled:
            shutil.rmtree(self.folder, ignore_errors=True)
        except PolicyHistoryError as error:
            self._fail(str(error))
        except Exception as error:  # a job must end in a state, whatever went wrong
            self._fail(f"unexpected error: {type(error).__name__}: {error}")

    def _fail(self, reason: str) -> None:
        self._set(state="failed", error=reason, finished_at=now())
        shutil.rmtree(self.folder, ignore_errors=True)

    def _check(self) -> None:
        if self.jobs.is_cancelled(self.db, self.id):
            raise Cancelled

    def _progress(self, stage: str, done: int, total: int | None) -> None:
        self._check()
        if stage == "reading":
            self.rows_read = done
            self._set(stage="reading", rows_read=done)
        else:
            self._set(stage="rating", rows_read=total, rows_total=total)

    def _rerate(self, row: dict[str, Any]) -> None:
        options = json.loads(row["options"])
        files = [(name, Path(path)) for name, path in json.loads(row["files"])]
        known = to_instant(options["known_at"], "known_at") if options.get("known_at") else self.store.now()
        if not options.get("known_at"):  # the job says what it knew: "now" as of its start
            self._set(options=json.dumps({**options, "known_at": format_instant(known), "known_at_given": False}))
        scratch = self.folder / "scratch"
        scratch.mkdir(mode=0o700, exist_ok=True)
        run = Rerate(self.store, [path for _, path in files], known_at=known, as_of=options.get("as_of"),
                     default_tenant=options.get("tenant"), workdir=scratch)
        # A record's "file" is the client's name for the upload, as `rerate` gives the name it was told.
        names = [(json.dumps(str(path)), json.dumps(name)) for name, path in files]
        # The audit fields (charge, charge_difference, known_at, run_id) as `rerate` adds them; the run is the job.
        audit = Audit(self.store.rate_cards(), known_at=known, as_of=options.get("as_of"), run_id=self.id)
        records = self.folder / "records.jsonl"
        partial = records.with_name("records.jsonl.part")
        changed: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        rated = 0
        with partial.open("w", encoding="utf-8", newline="") as out:
            for text, record in audit.audited_lines(run.records_json(self._progress)):
                # The line starts {"file": "<path>", : the upload's name replaces the path there, as it did in the
                # record (which the report's changed calls keep).
                for stored, shown in names:
                    prefix = f'{{"file": {stored}'
                    if text.startswith(prefix):
                        text = f'{{"file": {shown}' + text[len(prefix):]
                        record["file"] = json.loads(shown)
                        break
                if len(changed) < REPORT_CHANGED_CALLS and '"changed": true' in text:
                    changed.append(json.loads(text))
                if len(errors) < ROW_ERRORS_KEPT and '"outcome": "rejected"' in text:
                    rejected = json.loads(text)
                    errors.append({name: rejected.get(name) for name in ("file", "line", "call_id", "error")})
                out.write(text)
                out.write("\n")
                rated += 1
                if time.monotonic() - self._last > _UPDATE_EVERY:
                    self._last = time.monotonic()
                    self._check()
                    self._set(stage="writing", rows_rated=rated)
        self._check()
        report = self.folder / "report.html"
        report.with_name("report.html.part").write_text(report_html(run.summary, changed, known, audit=audit),
                                                        encoding="utf-8")
        report.with_name("report.html.part").rename(report)
        partial.rename(records)
        summary = run.summary
        finished = self._set(state="done", stage="done", finished_at=now(), rows_read=summary.rows,
                             rows_rated=rated, rows_total=summary.rows, rows=summary.rows, rated=summary.rated,
                             rejected=summary.rejected, changed=summary.changed,
                             summary=json.dumps(summary.lines()), errors=json.dumps(errors))
        if not finished:  # cancelled between the last check and now
            shutil.rmtree(self.folder, ignore_errors=True)
