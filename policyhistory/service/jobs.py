"""Re-rating jobs: uploads streamed to a private folder, a run off the request loop, its state in the store.

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
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import pendulum
import sqlite_utils
from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser

from .._errors import PolicyHistoryError
from .._instant import format_instant, to_instant
from .._money import Audit
from .._pictures import report_html
from .._rerate import Rerate
from .._store import Store
from .problems import Missing
from .state import open_store, write_transaction

JOBS_TABLE = "jobs"
UNFINISHED = ("queued", "running")
FINISHED = ("done", "failed", "cancelled")
CALL_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json")
ROW_ERRORS_KEPT = 100
"""Rejected rows a job's state lists with their reasons (the first, in input order); the records have all."""
REPORT_CHANGED_CALLS = 1_000
"""Changed calls the report lists one by one, as `rerate --report` does."""
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_JOB_ID = re.compile(r"[0-9a-f]{32}")
_UPDATE_EVERY = 0.5
"""Seconds between two writes of a running job's counters."""


class TooLarge(Exception):
    """The upload passed the server's limit: 413."""


class BadUpload(Exception):
    """The upload is not a usable multipart form: 400 (or 422 for a missing part)."""


class Cancelled(Exception):
    pass


def ensure_table(db: sqlite_utils.Database) -> None:
    db.table(JOBS_TABLE).create(
        {"id": str, "state": str, "created_at": str, "started_at": str, "finished_at": str, "pid": int,
         "options": str, "files": str, "stage": str, "rows_read": int, "rows_rated": int, "rows_total": int,
         "rows": int, "rated": int, "rejected": int, "changed": int, "summary": str, "error": str, "errors": str},
        pk="id", not_null={"state", "created_at"}, if_not_exists=True)


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


def _now() -> str:
    return format_instant(pendulum.now("UTC"))


def job_record(row: dict[str, Any]) -> dict[str, Any]:
    """A job as the API answers it."""
    options = json.loads(row["options"] or "{}")
    files = [name for name, _ in json.loads(row["files"] or "[]")]
    done = row["state"] in FINISHED
    return {
        "id": row["id"], "state": row["state"], "created_at": row["created_at"], "started_at": row["started_at"],
        "finished_at": row["finished_at"], "options": options, "files": files, "stage": row["stage"],
        "rows_read": row["rows_read"] or 0, "rows_rated": row["rows_rated"] or 0, "rows_total": row["rows_total"],
        "counts": {name: row[name] for name in ("rows", "rated", "rejected", "changed")} if done and row["rows"]
        is not None else None,
        "summary": json.loads(row["summary"]) if row["summary"] else None, "error": row["error"],
        "errors": json.loads(row["errors"]) if row.get("errors") else [],
        "links": {"self": f"/v1/jobs/{row['id']}", "records": f"/v1/jobs/{row['id']}/records",
                  "report": f"/v1/jobs/{row['id']}/report", "page": f"/jobs/{row['id']}"},
    }


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
                           "AND state IN ('queued', 'running')", [reason, _now(), row["id"]])
            shutil.rmtree(self.folder(row["id"]), ignore_errors=True)
            failed.append(row["id"])
        return failed

    def create(self, db: sqlite_utils.Database, job_id: str, upload: Upload, options: dict[str, Any]) -> dict[str, Any]:
        row = {"id": job_id, "state": "queued", "created_at": _now(), "pid": os.getpid(),
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
                           "AND state IN ('queued', 'running')", [_now(), "cancelled by a client", job_id])
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
            _Runner(store, self, job_id).run()
        finally:
            store.close()

    def is_cancelled(self, db: sqlite_utils.Database, job_id: str) -> bool:
        with self._lock:
            if job_id in self._cancelled:
                return True
        state = db.execute(f"SELECT state FROM {JOBS_TABLE} WHERE id = ?", [job_id]).fetchone()
        return state is None or state[0] == "cancelled"


class _Runner:
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
        if not self._set(where_running=False, state="running", started_at=_now(), stage="checking",
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
        self._set(state="failed", error=reason, finished_at=_now())
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
        finished = self._set(state="done", stage="done", finished_at=_now(), rows_read=summary.rows,
                             rows_rated=rated, rows_total=summary.rows, rows=summary.rows, rated=summary.rated,
                             rejected=summary.rejected, changed=summary.changed,
                             summary=json.dumps(summary.lines()), errors=json.dumps(errors))
        if not finished:  # cancelled between the last check and now
            shutil.rmtree(self.folder, ignore_errors=True)


def stream_records(path: Path, changed_only: bool, fmt: str) -> Iterator[str]:
    """A finished job's records, in input order, as JSON lines or as `rerate --format csv` writes them."""
    import csv
    import io

    from .._money import AUDITED_COLUMNS
    from .._records import cells

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if fmt == "csv":
        writer.writerow(AUDITED_COLUMNS)
    with path.open(encoding="utf-8") as lines:
        batch: list[str] = []
        for line in lines:
            if changed_only or fmt == "csv":
                record = json.loads(line)
                if changed_only and not record.get("changed"):
                    continue
                if fmt == "csv":
                    writer.writerow(cells(record, AUDITED_COLUMNS))
                    continue
            batch.append(line)
            if len(batch) >= 1000:
                yield "".join(batch)
                batch.clear()
            if buffer.tell() > 65536:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        if fmt == "csv":
            yield buffer.getvalue()
        else:
            yield "".join(batch)


def job_paths(row: dict[str, Any]) -> list[Path]:
    return [Path(path) for _, path in json.loads(row["files"])]

