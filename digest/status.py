"""What `digest status` reports: the schedule's last and next slot, the
runner holding the lease, the latest editions with their delivery counts,
skipped slots, source health and suppressions.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from digest import sources, store, store_ledger, store_slots
from digest.config import Settings
from digest.slots import next_slot


def report(settings: Settings, now: datetime | None = None, limit: int = 10) -> dict[str, Any]:
    """Everything status shows, as plain data (the CLI prints it or dumps JSON)."""
    moment = now or datetime.now(ZoneInfo(settings.timezone))
    db = store.connect(settings.database)
    try:
        store_slots.ensure(db)
        editions = [_edition(db, row) for row in store.recent_editions(db, limit)]
        slots = store_slots.recent_slots(db, limit)
        upcoming = next_slot(settings, moment)
        return {
            "schedule": settings.schedule,
            "timezone": settings.timezone,
            "last_slot": asdict(slots[0]) if slots else None,
            "next_slot": None
            if upcoming is None
            else {"slot": upcoming.id, "at": upcoming.at.isoformat(timespec="minutes")},
            "runner": _runner(db),
            "last_edition": editions[0] if editions else None,
            "editions": editions,
            "slots": [asdict(s) for s in slots],
            "skipped_slots": store_slots.count_skipped(db),
            "sources": _sources(settings, slots),
            "suppressions": store.count_suppressed(db),
        }
    finally:
        db.close()


def _edition(db: sqlite3.Connection, row: sqlite3.Row) -> dict[str, object]:
    return {
        "id": row["id"],
        "number": row["number"],
        "title": row["title"],
        "created": row["created_at"],
        "deliveries": store.ledger_counts(db, row["id"]),
        "problems": store_ledger.latest_problems(db, row["id"]),
    }


def _runner(db: sqlite3.Connection) -> dict[str, object] | None:
    held = store_slots.lease(db, store_slots.RUNNER_LEASE)
    if held is None:
        return None
    return {
        "holder": held.holder,
        "since": held.acquired_at,
        "expires": held.expires,
        "active": held.expires_at > time.time(),
    }


def _sources(settings: Settings, slots: list[store_slots.SlotRow]) -> dict[str, object]:
    """Each source's health (digest sources), and the problems the last
    collect of a slot reported."""
    health = sources.health(settings)
    counts: dict[str, int] = {}
    for row in health:
        counts[str(row["status"])] = counts.get(str(row["status"]), 0) + 1
    checked = next((row for row in slots if row.problems is not None), None)
    return {
        "counts": counts,
        "health": health,
        "checked_at_slot": None if checked is None else checked.slot,
        "problems": [] if checked is None else list(checked.problems or ()),
    }
