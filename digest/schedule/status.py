"""What `digest status` reports: the schedule's last and next slot, the
runner holding the lease, the latest editions with their state and delivery
counts, skipped slots, source health and suppressions.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from digest import collect
from digest.config import Settings
from digest.schedule.slots import next_slot
from digest.schedule.zones import AudienceZones
from digest.store import Database, audience, editions, lease, ledger, opened, workers
from digest.store import slots as store_slots


def report(settings: Settings, now: datetime | None = None, limit: int = 10) -> dict[str, Any]:
    """Everything status shows, as plain data (the CLI prints it or dumps JSON)."""
    moment = now or datetime.now(ZoneInfo(settings.timezone))
    with opened(settings.database) as db:
        shown = [_edition(db, row) for row in editions.recent(db, limit)]
        slots = store_slots.recent_slots(db, limit)
        zones: frozenset[str] = frozenset()
        if settings.local_time:
            zones = AudienceZones().of(settings.subscribers, db)
        upcoming = next_slot(settings.schedule_group, moment, zones)
        return {
            "schedule": settings.schedule,
            "timezone": settings.timezone,
            "last_slot": asdict(slots[0]) if slots else None,
            "next_slot": None
            if upcoming is None
            else {"slot": upcoming.id, "at": upcoming.at.isoformat(timespec="minutes")},
            "runner": _runner(settings, db),
            "workers": workers.alive(db),
            "last_edition": shown[0] if shown else None,
            "editions": shown,
            "slots": [asdict(s) for s in slots],
            "skipped_slots": store_slots.count_skipped(db),
            "sources": _sources(settings, db, slots),
            "suppressions": audience.count_suppressed(db),
        }


def _edition(db: Database, row: editions.EditionRow) -> dict[str, object]:
    return {
        "id": row.id,
        "number": row.number,
        "title": row.title,
        "state": row.state,
        "created": row.created_at,
        "deliveries": ledger.counts(db, row.id),
        "waves": ledger.waves(db, row.id),
        "problems": ledger.latest_problems(db, row.id),
    }


def _runner(settings: Settings, db: Database) -> dict[str, object] | None:
    held = lease.lease(db)
    if held is None:
        return None
    return {
        "holder": held.holder,
        "since": held.acquired_at,
        "expires": held.expires,
        # The OS lock says whether its holder still runs; the row outlives a crash.
        "active": lease.held(settings.database, db),
    }


def _sources(
    settings: Settings, db: Database, slots: list[store_slots.SlotRow]
) -> dict[str, object]:
    """Each configured source's health (digest sources), and the problems the
    last collect of a slot reported."""
    health = collect.health_rows(settings.sections, db, settings.source_failure_threshold)
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
