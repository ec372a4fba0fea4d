"""Slots: the moments the cron schedule names, in the digest's time zone.

A slot's identity is its wall-clock minute there (`2026-10-25T0230`), so a
second firing of the same minute (clocks going back, a restart, a second
process) is the same slot, and the database holds at most one row for it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

from digest import store_slots
from digest.config import Settings
from digest.edition import edition_id_for

WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
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


def crontab_trigger(expression: str, zone: str) -> CronTrigger:
    """A CronTrigger for a classic five-field crontab line in `zone`.

    APScheduler 3 numbers weekdays from Monday = 0, crontab from Sunday = 0;
    the weekday field is translated to names so `1-5` means Monday to Friday.
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"needs five fields (minute hour day month weekday), got {len(fields)}; "
            "for example '0 7 * * 1-5'"
        )
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_weekdays(weekday),
        timezone=ZoneInfo(zone),
    )


def _weekdays(spec: str) -> str:
    if spec in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in spec.lower().split(","):
        days |= _weekday_part(part)
    return ",".join(WEEKDAYS[d] for d in sorted(days))


def _weekday_part(part: str) -> set[int]:
    body, _, step_text = part.partition("/")
    step = int(step_text) if step_text else 1
    if step < 1:
        raise ValueError(f"weekday step must be 1 or more in {part!r}")
    if body == "*":
        first, last = 0, 6
    else:
        low, _, high = body.partition("-")
        first = _weekday(low)
        last = _weekday(high) if high else (6 if step_text else first)
        if high and last == 0:
            last = 7  # crontab allows 7 for Sunday at the end of a range: 5-7, 1-0
    if first > last:
        raise ValueError(f"weekday range {part!r} runs backwards")
    return {d % 7 for d in range(first, last + 1, step)}


def _weekday(text: str) -> int:
    if text[:3] in WEEKDAYS:
        return WEEKDAYS.index(text[:3])
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text)  # 7 is Sunday too; kept as 7 so ranges like 5-7 run forward
    raise ValueError(f"weekday {text!r} is not 0-7 or sun-sat")


def trigger_for(settings: Settings) -> CronTrigger:
    return crontab_trigger(settings.schedule, settings.timezone)


def slots_between(trigger: CronTrigger, start: datetime, end: datetime) -> list[Slot]:
    """Every slot due after `start` and at or before `end`, oldest first."""
    found: list[Slot] = []
    moment = trigger.get_next_fire_time(None, start)
    while moment is not None and moment <= end and len(found) < LOOKBACK_LIMIT:
        if moment > start:
            found.append(slot_at(moment))
        moment = trigger.get_next_fire_time(moment, moment)
    return found


def next_slot(settings: Settings, now: datetime) -> Slot | None:
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


def plan(settings: Settings, db: sqlite3.Connection, now: datetime) -> Plan:
    """Unfinished slots to resume, the one slot to run, and what to skip.

    Only the newest slot inside the catch-up window runs; older unstarted
    slots in the window are superseded by it, and slots before the window
    are missed. Slots before the first one ever recorded are none of our
    business. Never a backlog of stale editions.
    """
    store_slots.ensure(db)
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


def _new(db: sqlite3.Connection, candidate: Slot) -> bool:
    return store_slots.slot(db, candidate.id) is None
