"""The scheduler's slots: one row per slot with its outcome, written before
anything of the slot happens, so a second firing finds it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from digest.store.db import Database, Row, now

# Slot outcomes. RUNNING means started and not concluded: the next tick or
# the next start resumes it. The others are final.
RUNNING, SENT, SKIPPED = "running", "sent", "skipped"


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


def _row(row: Row | None) -> SlotRow | None:
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


def slot(db: Database, slot_id: str) -> SlotRow | None:
    return _row(db.one("SELECT * FROM slots WHERE slot = ?", (slot_id,)))


def claim_slot(db: Database, slot_id: str, scheduled_at: datetime) -> bool:
    """Start a slot; False when it was already started (a second firing)."""
    cursor = db.execute(
        "INSERT INTO slots (slot, scheduled_at, outcome, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (slot) DO NOTHING",
        (slot_id, scheduled_at.astimezone(UTC).isoformat(timespec="seconds"), RUNNING, now()),
    )
    return bool(cursor.rowcount == 1)


def record_skipped(db: Database, slot_id: str, scheduled_at: datetime, reason: str) -> None:
    """A slot that will never run; kept so status can show it and it is not retried."""
    claim_slot(db, slot_id, scheduled_at)
    finish_slot(db, slot_id, SKIPPED, reason)


def finish_slot(
    db: Database,
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


def unfinished_slots(db: Database) -> list[SlotRow]:
    """Slots started and not concluded, oldest first: a stop or crash left them."""
    rows = db.all("SELECT * FROM slots WHERE outcome = ? ORDER BY scheduled_at, slot", (RUNNING,))
    return [r for r in map(_row, rows) if r is not None]


def latest_slot(db: Database) -> SlotRow | None:
    return _row(db.one("SELECT * FROM slots ORDER BY scheduled_at DESC, slot DESC LIMIT 1"))


def recent_slots(db: Database, limit: int = 10) -> list[SlotRow]:
    rows = db.all("SELECT * FROM slots ORDER BY scheduled_at DESC, slot DESC LIMIT ?", (limit,))
    return [r for r in map(_row, rows) if r is not None]


def count_skipped(db: Database) -> int:
    return int(db.scalar("SELECT COUNT(*) FROM slots WHERE outcome = ?", (SKIPPED,)))
