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


def next_slot(
    settings: Schedule, now: datetime, zones: frozenset[str] = frozenset()
) -> Slot | None:
    """The first slot strictly after `now` (with local time: in the earliest of `zones`)."""
    if settings.local_time:
        return next_local_slot(settings, now, zones)
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


def plan(
    settings: Schedule, db: Database, now: datetime, zones: frozenset[str] = frozenset()
) -> Plan:
    """Unfinished slots to resume, the one slot to run, and what to skip.

    Only the newest slot inside the catch-up window runs; older unstarted
    slots in the window are superseded by it, and slots before the window
    are missed. Slots before the first one ever recorded are none of our
    business. Never a backlog of stale editions. With local time, `zones`
    are the readers' zones (see plan_local).
    """
    if settings.local_time:
        return plan_local(settings, db, now, zones | {settings.timezone})
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


# The widest gap between two zones' clocks (UTC-12 to UTC+14), and a margin.
ZONE_SPAN = timedelta(hours=27)


@dataclass(frozen=True)
class LocalSlot:
    """A slot of local time: its wall-clock minute, when it comes in the
    earliest of the readers' zones (`first`, when its edition is made) and in
    the last (`last`, after which nobody is waiting for it)."""

    id: str
    first: datetime
    last: datetime


def local_slots(
    settings: Schedule, zones: frozenset[str], start: datetime, end: datetime
) -> list[LocalSlot]:
    """Slots whose first zone's moment is after `start` and at or before `end`."""
    found: dict[str, LocalSlot] = {}
    for zone in sorted(zones):
        trigger = crontab_trigger(settings.cron, zone)
        for moment in slots_between(trigger, start - ZONE_SPAN, end + ZONE_SPAN):
            known = found.get(moment.id)
            if known is None:
                found[moment.id] = LocalSlot(moment.id, moment.at, moment.at)
            else:
                first = min(known.first, moment.at)
                found[moment.id] = LocalSlot(moment.id, first, max(known.last, moment.at))
    chosen = [s for s in found.values() if start < s.first <= end]
    return sorted(chosen, key=lambda s: s.first)


def plan_local(settings: Schedule, db: Database, now: datetime, zones: frozenset[str]) -> Plan:
    """The plan when each reader gets the edition at the slot's wall-clock time
    in their own zone: a slot's edition is made when the slot comes in the
    earliest zone, and the slot stays worth running until it has come in the
    last zone (plus the catch-up window); after that it is missed."""
    window_start = now - timedelta(minutes=settings.catch_up_minutes)
    latest = store_slots.latest_slot(db)
    since = None if latest is None else datetime.fromisoformat(latest.scheduled_at)
    start = since or window_start - ZONE_SPAN
    candidates = [
        s for s in local_slots(settings, zones, start, now) if _new(db, Slot(s.id, s.first))
    ]
    alive = [s for s in candidates if s.last > window_start]
    gone = [s for s in candidates if s.last <= window_start] if since is not None else []
    due = [Slot(s.id, s.first) for s in alive]
    return Plan(
        resume=tuple(store_slots.unfinished_slots(db)),
        run=due[-1] if due else None,
        superseded=tuple(due[:-1]) if since is not None else (),
        missed=tuple(Slot(s.id, s.first) for s in gone),
    )


def next_local_slot(settings: Schedule, now: datetime, zones: frozenset[str]) -> Slot | None:
    """The first local-time slot whose earliest zone's moment is after `now`."""
    for days in (2, 40, 400):
        found = local_slots(settings, zones | {settings.timezone}, now, now + timedelta(days=days))
        if found:
            return Slot(found[0].id, found[0].first)
    return None
