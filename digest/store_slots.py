"""The scheduler's tables in the one SQLite file: one row per slot with its
outcome, and the lease that lets only one `digest run` send at a time.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from digest.store import now

SCHEMA = """
CREATE TABLE IF NOT EXISTS slots (
    slot TEXT PRIMARY KEY,
    scheduled_at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    edition_id TEXT,
    problems TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""

# Slot outcomes. RUNNING means started and not concluded: the next tick or
# the next start resumes it. The others are final.
RUNNING, SENT, SKIPPED = "running", "sent", "skipped"
RUNNER_LEASE = "runner"


@dataclass(frozen=True)
class SlotRow:
    """What the database knows about one slot."""

    slot: str
    scheduled_at: str
    outcome: str
    detail: str
    edition_id: str | None
    problems: tuple[str, ...] | None  # what the slot's collect reported; None: no collect
    updated_at: str


@dataclass(frozen=True)
class Lease:
    """Who holds a lease and until when (seconds since the epoch)."""

    holder: str
    acquired_at: str
    expires_at: float

    @property
    def expires(self) -> str:
        return datetime.fromtimestamp(self.expires_at, UTC).isoformat(timespec="seconds")


def ensure(db: sqlite3.Connection) -> None:
    db.executescript(SCHEMA)


def _row(row: sqlite3.Row | None) -> SlotRow | None:
    if row is None:
        return None
    problems = None if row["problems"] is None else tuple(json.loads(row["problems"]))
    return SlotRow(
        row["slot"],
        row["scheduled_at"],
        row["outcome"],
        row["detail"],
        row["edition_id"],
        problems,
        row["updated_at"],
    )


def slot(db: sqlite3.Connection, slot_id: str) -> SlotRow | None:
    return _row(db.execute("SELECT * FROM slots WHERE slot = ?", (slot_id,)).fetchone())


def claim_slot(db: sqlite3.Connection, slot_id: str, scheduled_at: datetime) -> bool:
    """Start a slot; False when it was already started (a second firing)."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO slots (slot, scheduled_at, outcome, updated_at) VALUES (?, ?, ?, ?)",
        (slot_id, scheduled_at.astimezone(UTC).isoformat(timespec="seconds"), RUNNING, now()),
    )
    return cursor.rowcount == 1


def record_skipped(
    db: sqlite3.Connection, slot_id: str, scheduled_at: datetime, reason: str
) -> None:
    """A slot that will never run; kept so status can show it and it is not retried."""
    claim_slot(db, slot_id, scheduled_at)
    finish_slot(db, slot_id, SKIPPED, reason)


def finish_slot(
    db: sqlite3.Connection,
    slot_id: str,
    outcome: str,
    detail: str = "",
    edition_id: str | None = None,
    problems: tuple[str, ...] | None = None,
) -> None:
    """Set a slot's outcome; a None edition or problems keeps what was there."""
    db.execute(
        "UPDATE slots SET outcome = ?, detail = ?, edition_id = COALESCE(?, edition_id),"
        " problems = COALESCE(?, problems), updated_at = ? WHERE slot = ?",
        (
            outcome,
            detail,
            edition_id,
            None if problems is None else json.dumps(list(problems)),
            now(),
            slot_id,
        ),
    )


def unfinished_slots(db: sqlite3.Connection) -> list[SlotRow]:
    """Slots started and not concluded, oldest first: a stop or crash left them."""
    rows = db.execute(
        "SELECT * FROM slots WHERE outcome = ? ORDER BY scheduled_at, slot", (RUNNING,)
    )
    return [r for r in map(_row, rows) if r is not None]


def latest_slot(db: sqlite3.Connection) -> SlotRow | None:
    row = db.execute("SELECT * FROM slots ORDER BY scheduled_at DESC, slot DESC LIMIT 1")
    return _row(row.fetchone())


def recent_slots(db: sqlite3.Connection, limit: int = 10) -> list[SlotRow]:
    rows = db.execute("SELECT * FROM slots ORDER BY scheduled_at DESC, slot DESC LIMIT ?", (limit,))
    return [r for r in map(_row, rows) if r is not None]


def count_skipped(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT COUNT(*) AS n FROM slots WHERE outcome = ?", (SKIPPED,)).fetchone()
    return int(row["n"])


def acquire_lease(
    db: sqlite3.Connection, name: str, holder: str, seconds: float, clock: float
) -> Lease | None:
    """Take or renew the lease for `seconds` from `clock` (epoch seconds).

    Returns None on success, else the other holder's lease. An expired lease
    is free to take: its holder stopped renewing, so it crashed or hung.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        current = lease(db, name)
        if current is not None and current.holder != holder and current.expires_at > clock:
            db.execute("COMMIT")
            return current
        acquired = now() if current is None or current.holder != holder else current.acquired_at
        db.execute(
            "INSERT OR REPLACE INTO leases (name, holder, acquired_at, expires_at)"
            " VALUES (?, ?, ?, ?)",
            (name, holder, acquired, clock + seconds),
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return None


def lease(db: sqlite3.Connection, name: str) -> Lease | None:
    row = db.execute(
        "SELECT holder, acquired_at, expires_at FROM leases WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        return None
    return Lease(row["holder"], row["acquired_at"], float(row["expires_at"]))


def release_lease(db: sqlite3.Connection, name: str, holder: str) -> None:
    """Give the lease up at once, so a waiting runner need not wait for expiry."""
    db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))
