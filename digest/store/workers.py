"""Senders on several hosts (PostgreSQL): each registers in `workers` and
beats its heart there; the ledger rows a worker claimed name it, and the
rows of a worker whose heart stopped go back to pending, keeping their
Message-ID. Time is the database server's, so hosts' clocks need not agree.
"""

from __future__ import annotations

import os
import socket
import uuid

from digest.store import ledger
from digest.store.db import Database, now


def _clock(db: Database) -> str:
    """The server's time in seconds since the epoch, as SQL."""
    if db.backend == "postgres":
        return "extract(epoch from clock_timestamp())"
    return "((julianday('now') - 2440587.5) * 86400.0)"


def register(db: Database, role: str) -> str:
    """A new worker row; returns the worker's id (host, pid and a token)."""
    worker = f"{role}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    db.execute(
        "INSERT INTO workers (id, host, pid, started_at, heartbeat)"
        f" VALUES (?, ?, ?, ?, {_clock(db)})",
        (worker, socket.gethostname(), os.getpid(), now()),
    )
    return worker


def beat(db: Database, worker: str) -> bool:
    """Renew the heartbeat; False when the row is gone (reaped as dead)."""
    cursor = db.execute(f"UPDATE workers SET heartbeat = {_clock(db)} WHERE id = ?", (worker,))
    return int(cursor.rowcount) == 1


def unregister(db: Database, worker: str) -> None:
    """A clean stop: rows it still holds (never tried) go back to pending."""
    with db.transaction():
        ledger.release_worker(db, worker)
        db.execute("DELETE FROM workers WHERE id = ?", (worker,))


def reap(db: Database, silent_for: float) -> int:
    """Rows held by workers whose heart stopped `silent_for` seconds ago (or
    by senders no longer registered) go back to pending, with their
    Message-ID; returns how many."""
    with db.transaction():
        db.execute(f"DELETE FROM workers WHERE heartbeat < {_clock(db)} - ?", (silent_for,))
        return ledger.release_orphans(db)


def alive(db: Database) -> list[dict[str, object]]:
    """The registered senders and how long since each beat, for `digest status`."""
    rows = db.all(
        f"SELECT id, host, pid, started_at, {_clock(db)} - heartbeat AS silent FROM workers"
        " ORDER BY started_at"
    )
    return [{**dict(row), "silent": float(row["silent"])} for row in rows]
