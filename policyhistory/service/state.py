"""The store a worker process answers from: opened once, its caches dropped when another connection (a job,
another worker) has committed since, so that every answer reflects what the file holds."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .._store import Store

BUSY_TIMEOUT_MS = 30_000
"""How long a writer waits for another to finish before giving up: writers queue, the client never reads
"database is locked"."""


def open_store(path: Any) -> Store:
    store = Store.open(path)
    prepare(store.db.conn)
    return store


def prepare(conn: sqlite3.Connection) -> None:
    """WAL (readers never wait for the writer) and a busy timeout, where the store has not set them already."""
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        conn.execute("PRAGMA journal_mode = wal")
    if conn.execute("PRAGMA busy_timeout").fetchone()[0] < BUSY_TIMEOUT_MS:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


class StoreHolder:
    """One Store for the event loop's thread (its SQLite connection is used from that thread only)."""

    def __init__(self, path: Any) -> None:
        self.path = path
        self.store = open_store(path)
        self._version = self._data_version()

    def _data_version(self) -> int:
        return int(self.store.db.conn.execute("PRAGMA data_version").fetchone()[0])

    def current(self) -> Store:
        """The store, its in-memory timeline and tenant index rebuilt if another connection wrote since."""
        version = self._data_version()
        if version != self._version:
            self.store.refresh()
            self._version = self._data_version()
        return self.store

    def close(self) -> None:
        self.store.close()


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One writer at a time, across threads and worker processes: BEGIN IMMEDIATE takes the write lock first,
    waiting its turn (the busy timeout), and what runs inside reads and writes in that one transaction (the
    store's own `atomic()` blocks become savepoints). A deferred transaction that read before writing could
    not wait: once another writer had committed, SQLite refused it at once ("database is locked")."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    else:
        conn.commit()
