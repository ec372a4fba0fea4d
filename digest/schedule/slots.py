"""Slots: the moments the cron schedule names, in the digest's time zone.

A slot's identity is its wall-clock minute there (`2026-10-25T0230`), so a
second firing of the same minute (clocks going back, a restart, a second
process) is the same slot, and the database holds at most one row for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

from digest.config import Schedule
from digest.config.cron import crontab_trigger
from digest.edition import edition_id_for
from digest.store import slots as store_slots
from digest.store.db import Database

# Looking back for missed slots is bounded: a schedule of every minute and
# a month of downtime must not cost a month of iterations.
LOOKBACK_LIMIT = 2000


@dataclass(frozen=True)
class Slot:
    """One scheduled moment: its identity and when it was due."""

    id: str
    at: datetime


def slot_at(moment: datetime) -> Slot:
    return Slot(edition_id_for(moment), moment)


def trigger_for(settings: Schedule) -> CronTrigger:
    return crontab_trigger(settings.cron, settings.timezone)


def slots_between(trigger: CronTrigger, start: datetime, end: datetime) -> list[Slot]:
    """Every slot due after `start` and at or before `end`, oldest first."""
    found: list[Slot] = []
    moment = trigger.get_next_fire_time(None, start)
    while moment is not None and moment <= end and len(found) < LOOKBACK_LIMIT:
        if moment > start:
            found.append(slot_at(moment))
        moment = trigger.get_next_fire_time(moment, moment)
    return found


def next_slot(settings: Schedule, now: datetime) -> Slot | None:
    """The first slot strictly after `now`."""
    trigger = trigger_for(settings)
    moment = trigger.get_next_fire_time(None, now)
    if moment is not None and moment <= now:
        moment = trigger.get_next_fire_time(moment, moment)
    return None if moment is None else slot_at(moment)


@dataclass(frozen=True)
class Plan:
    """What a tick at `now` has to do, decided from the schedule and the database."""

    resume: tuple[store_slots.SlotRow, ...] = ()
    run: Slot | None = None
    superseded: tuple[Slot, ...] = ()
    missed: tuple[Slot, ...] = field(default=())


def plan(settings: Schedule, db: Database, now: datetime) -> Plan:
    """Unfinished slots to resume, the one slot to run, and what to skip.

    Only the newest slot inside the catch-up window runs; older unstarted
    slots in the window are superseded by it, and slots before the window
    are missed. Slots before the first one ever recorded are none of our
    business. Never a backlog of stale editions.
    """
    trigger = trigger_for(settings)
    window_start = now - timedelta(minutes=settings.catch_up_minutes)
    latest = store_slots.latest_slot(db)
    since = None if latest is None else datetime.fromisoformat(latest.scheduled_at)
    start = window_start if since is None else max(window_start, since)
    due = _unique(s for s in slots_between(trigger, start, now) if _new(db, s))
    missed: list[Slot] = []
    if since is not None and since < window_start:
        taken = {s.id for s in due}
        earlier = slots_between(trigger, since, window_start)
        missed = _unique(s for s in earlier if _new(db, s) and s.id not in taken)
    return Plan(
        resume=tuple(store_slots.unfinished_slots(db)),
        run=due[-1] if due else None,
        superseded=tuple(due[:-1]) if since is not None else (),
        missed=tuple(missed),
    )


def _unique(candidates: Iterable[Slot]) -> list[Slot]:
    # The same wall-clock minute twice (clocks going back) is one slot: the first.
    seen: dict[str, Slot] = {}
    for candidate in candidates:
        seen.setdefault(candidate.id, candidate)
    return list(seen.values())


def _new(db: Database, candidate: Slot) -> bool:
    return store_slots.slot(db, candidate.id) is None
