"""Re-rating jobs: uploads streamed to a private folder, a run off the request loop, its state in the store.
Here the queue of one server process (Jobs); the upload is job_uploads', the run job_runner's, the row
job_table's.

A job's row lives in the store's SQLite file (table `jobs`, ours, mutable: a job's state is not history).
Its files live in `<jobs root>/<id>/`: the uploads under generated names (`in/`), the run's scratch files,
then `records.jsonl` and `report.html`, each written under a `.part` name and renamed when complete. A
job is queued, running, then done, failed or cancelled. A job whose server process died (a crash, SIGKILL)
is found at the next start, marked failed with the reason, and its files are removed: a job is never
reported done unless its records were all written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sqlite_utils

from .job_runner import Runner
from .job_table import JOBS_TABLE, UNFINISHED, ensure_table, job_record, now
from .job_uploads import Upload
from .problems import Missing
from .state import open_store, write_transaction

_JOB_ID = re.compile(r"[0-9a-f]{32}")


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Jobs:
    """The jobs of one server process: the rows it reads and writes on the loop's connection, and one thread
    that runs its jobs one after another with a store of its own."""

    def __init__(self, db_path: Path, root: Path) -> None:
        self.db_path = db_path
        self.root = root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policyhistory-job")
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()

    def folder(self, job_id: str) -> Path:
        if not _JOB_ID.fullmatch(job_id):  # ids are ours (uuid4 hex); nothing else becomes a path
            raise Missing(f"no job {job_id!r}")
        return self.root / job_id

    def new_folder(self) -> tuple[str, Path]:
        job_id = uuid.uuid4().hex
        folder = self.folder(job_id)
        (folder / "in").mkdir(mode=0o700, parents=True)
        os.chmod(folder, 0o700)
        return job_id, folder

    def recover(self, db: sqlite_utils.Database) -> list[str]:
        """Mark failed every unfinished job whose server process is gone; remove its files."""
        ensure_table(db)
        failed = []
        for row in list(db.query(f"SELECT id, pid, state FROM {JOBS_TABLE} WHERE state IN ('queued', 'running')")):
            if row["pid"] == os.getpid() or _alive(row["pid"]):
                continue
            reason = (f"the server process ({row['pid']}) stopped while the job was {row['state']} (a crash or a "
                      "kill); its partial files were removed: submit it again")
            with write_transaction(db.conn):
                db.execute(f"UPDATE {JOBS_TABLE} SET state = 'failed', error = ?, finished_at = ? WHERE id = ? "
                           "AND state IN ('queued', 'running')", [reason, now(), row["id"]])
            shutil.rmtree(self.folder(row["id"]), ignore_errors=True)
            failed.append(row["id"])
        return failed

    def create(self, db: sqlite_utils.Database, job_id: str, upload: Upload, options: dict[str, Any]) -> dict[str, Any]:
        row = {"id": job_id, "state": "queued", "created_at": now(), "pid": os.getpid(),
               "options": json.dumps(options), "files": json.dumps([[n, str(p)] for n, p in upload.calls]),
               "rows_read": 0, "rows_rated": 0}
        with write_transaction(db.conn):
            db.table(JOBS_TABLE).insert(row)
        self._executor.submit(self._run, job_id)
        return self.get(db, job_id)

    def get(self, db: sqlite_utils.Database, job_id: str) -> dict[str, Any]:
        return job_record(self.row(db, job_id))

    def row(self, db: sqlite_utils.Database, job_id: str) -> dict[str, Any]:
        rows = list(db.query(f"SELECT * FROM {JOBS_TABLE} WHERE id = ?", [job_id]))
        if not rows:
            raise Missing(f"no job {job_id!r}")
        return rows[0]

    def recent(self, db: sqlite_utils.Database, limit: int = 20) -> list[dict[str, Any]]:
        return [job_record(row) for row in
                db.query(f"SELECT * FROM {JOBS_TABLE} ORDER BY created_at DESC LIMIT ?", [limit])]

    def cancel(self, db: sqlite_utils.Database, job_id: str) -> dict[str, Any]:
        """An unfinished job is cancelled (its thread stops at its next check and removes its files); a
        finished one has its files and row removed."""
        row = self.row(db, job_id)
        if row["state"] in UNFINISHED:
            with self._lock:
                self._cancelled.add(job_id)
            with write_transaction(db.conn):
                db.execute(f"UPDATE {JOBS_TABLE} SET state = 'cancelled', finished_at = ?, error = ? WHERE id = ? "
                           "AND state IN ('queued', 'running')", [now(), "cancelled by a client", job_id])
            return self.get(db, job_id)
        shutil.rmtree(self.folder(job_id), ignore_errors=True)
        with write_transaction(db.conn):
            db.execute(f"DELETE FROM {JOBS_TABLE} WHERE id = ?", [job_id])
        return {**job_record(row), "deleted": True}

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ---- the job's thread ------------------------------------------------------------------------------

    def _run(self, job_id: str) -> None:
        store = open_store(self.db_path)
        try:
            Runner(store, self, job_id).run()
        finally:
            store.close()

    def is_cancelled(self, db: sqlite_utils.Database, job_id: str) -> bool:
        with self._lock:
            if job_id in self._cancelled:
                return True
        state = db.execute(f"SELECT state FROM {JOBS_TABLE} WHERE id = ?", [job_id]).fetchone()
        return state is None or state[0] == "cancelled"
