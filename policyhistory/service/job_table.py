"""A job's row in the store's SQLite file (table `jobs`, ours, mutable: a job's state is not history), and
what is read back of a job: the row as the API answers it, the files it was given, its records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import sqlite_utils

from .._instant import format_instant

JOBS_TABLE = "jobs"
UNFINISHED = ("queued", "running")
FINISHED = ("done", "failed", "cancelled")


def ensure_table(db: sqlite_utils.Database) -> None:
    db.table(JOBS_TABLE).create(
        {"id": str, "state": str, "created_at": str, "started_at": str, "finished_at": str, "pid": int,
         "options": str, "files": str, "stage": str, "rows_read": int, "rows_rated": int, "rows_total": int,
         "rows": int, "rated": int, "rejected": int, "changed": int, "summary": str, "error": str, "errors": str},
        pk="id", not_null={"state", "created_at"}, if_not_exists=True)


def now() -> str:
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


def job_paths(row: dict[str, Any]) -> list[Path]:
    return [Path(path) for _, path in json.loads(row["files"])]



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

