"""Running slots: what one tick of the schedule does, decided from the database.

A slot is claimed in the `slots` table before anything happens, its edition
is recorded before its first delivery, and its outcome is recorded, so a
second firing, a restart or a resumed send never makes a second edition for
the same slot. Unfinished editions (of slots or of `digest send`) are
finished before anything new.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from digest import collect, edition, job
from digest.config import Settings
from digest.deliver.policy import DEFERRED_FOR, DEFERRED_WAIT
from digest.deliver.run import deliver_edition
from digest.edition import lifecycle
from digest.errors import DigestError
from digest.model import Edition
from digest.schedule.slots import Plan, Slot, plan
from digest.schedule.zones import AudienceZones
from digest.store import Database, ledger, opened
from digest.store import slots as store_slots

log = logging.getLogger(__name__)
UNFINISHED = "unfinished"  # a result, not a stored outcome: the slot stays running
# Sent to everyone due so far; later waves (local time) wait for their time.
WAITING = "waiting"


@dataclass(frozen=True)
class SlotResult:
    """What running (or resuming) one slot, or edition, came to."""

    slot: str
    outcome: str  # store_slots.SENT, store_slots.SKIPPED or UNFINISHED
    detail: str = ""
    edition: str | None = None
    failed: bool = False  # stopped by an error, not by a stop signal


def run_due(
    settings: Settings,
    now: datetime,
    stop: threading.Event | None = None,
    resume: bool = True,
    zones: AudienceZones | None = None,
) -> list[SlotResult]:
    """Skip what is too old, finish what was cut short or whose wave has come
    (unless `resume` is False: a retry is not due yet), run the slot now due.
    `zones` remembers the audience's time zones between ticks (local time)."""
    with opened(settings.database) as db:
        found: frozenset[str] = frozenset()
        if settings.local_time:
            found = (zones or AudienceZones()).of(settings.subscribers, db)
        todo = plan(settings.schedule_group, db, now, found)
        _record_skips(settings, db, todo)
        job.expire_deferred(db)

    def going() -> bool:
        return stop is None or not stop.is_set()

    results: list[SlotResult] = []
    if going() and (resume or todo.run is not None):
        results += finish_unfinished(settings, stop)
    if todo.run is not None and going():
        results.append(run_slot(settings, todo.run, stop))
    elif going() and resume:
        results += retry_deferred(settings, now, stop)
    return results


def finish_unfinished(settings: Settings, stop: threading.Event | None) -> list[SlotResult]:
    """Finish every edition a stop, a crash or an error left, oldest first."""
    results: list[SlotResult] = []
    with opened(settings.database) as db:
        seen: set[str] = set()
        while (unfinished := lifecycle.oldest_unfinished(db)) is not None:
            if (stop is not None and stop.is_set()) or unfinished.id in seen:
                break
            seen.add(unfinished.id)
            log.info("edition %s: resuming its unfinished send", unfinished.id)
            result = _deliver(settings, db, unfinished, stop)
            result = replace(result, slot=_conclude_slot(db, unfinished.id, result))
            results.append(result)
            if result.outcome == UNFINISHED:
                break
    return results


def retry_deferred(
    settings: Settings, now: datetime, stop: threading.Event | None = None
) -> list[SlotResult]:
    """Another round for deferred deliveries once they waited DEFERRED_WAIT,
    for DEFERRED_FOR after their edition was made: one run's retries last
    seconds, and a greylisting server wants the next try minutes later."""
    utc = now.astimezone(UTC)
    waited = _iso(utc - DEFERRED_WAIT)
    with opened(settings.database) as db:
        edition_id = ledger.deferred_edition(db, waited, _iso(utc - DEFERRED_FOR))
        found = None if edition_id is None else lifecycle.load(db, edition_id)
        if found is None:
            return []
        log.info("edition %s: retrying its deferred deliveries", found.id)
        result = _deliver(settings, db, found, stop, retry_before=waited)
        return [replace(result, slot=_conclude_slot(db, found.id, result))]


def _deliver(
    settings: Settings,
    db: Database,
    chosen: Edition,
    stop: threading.Event | None,
    retry_before: str | None = None,
    slot: str = "",
) -> SlotResult:
    """Deliver what an edition still owes (only deferred rows last tried
    before `retry_before`, for a retry round), log it, say how it ended."""
    what = "retry" if retry_before else "send"
    statuses = (ledger.DEFERRED,) if retry_before else (ledger.PENDING, ledger.DEFERRED)
    try:
        done = deliver_edition(
            settings, db, chosen, stop, statuses=statuses, tried_before=retry_before
        )
    except DigestError as e:
        log.error("edition %s: %s stopped by an error: %s", chosen.id, what, e)
        return SlotResult("", UNFINISHED, str(e), chosen.id, failed=True)
    for row_error in done.row_errors:
        log.warning("edition %s: subscriber row skipped: %s", chosen.id, row_error)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(ledger.counts(db, chosen.id).items()))
    if done.report.stopped:
        detail = f"stopped after {counts or 'nothing'}; the next start resumes"
        log.warning("edition %s: %s", chosen.id, detail)
        return SlotResult("", UNFINISHED, detail, chosen.id)
    if not done.done and done.waiting:
        detail = (
            f"{counts}; {done.waiting} wait for their local time, the next wave at {done.next_wave}"
        )
        log.info("edition %s: %s", chosen.id, detail, extra={"edition": chosen.id})
        return SlotResult(slot, WAITING, detail, chosen.id)
    where = {"edition": chosen.id, **({"slot": slot} if slot else {})}
    log.info(
        "%s%s edition %s (%s) into %s",
        f"slot {slot}: " if slot else "",
        "retried" if retry_before else "sent",
        chosen.id,
        counts or "no recipients",
        done.destination,
        extra=where,
    )
    return SlotResult(slot, store_slots.SENT, counts or "no recipients", chosen.id)


def _conclude_slot(db: Database, edition_id: str, result: SlotResult) -> str:
    """The slot that made this edition, if any, takes the delivery's outcome;
    returns that slot ('' for an edition of `digest send`)."""
    for row in store_slots.unfinished_slots(db):
        if row.edition_id == edition_id:
            if result.outcome == WAITING:
                store_slots.finish_slot(db, row.slot, store_slots.RUNNING, result.detail)
            elif result.outcome != UNFINISHED:
                store_slots.finish_slot(db, row.slot, store_slots.SENT, result.detail)
            return row.slot
    return ""


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _record_skips(settings: Settings, db: Database, todo: Plan) -> None:
    skips = (
        (todo.missed, f"missed: more than catch_up_minutes ({settings.catch_up_minutes}) late"),
        (todo.superseded, "superseded: a later slot was due too, and only the newest runs"),
    )
    for slots, reason in skips:
        for slot in slots:
            store_slots.record_skipped(db, slot.id, slot.at, reason)
        if slots:
            first, last = slots[0].id, slots[-1].id
            log.warning("skipped %d slot(s) from %s to %s, %s", len(slots), first, last, reason)


def run_slot(settings: Settings, slot: Slot, stop: threading.Event | None = None) -> SlotResult:
    """Collect, build, record and send the edition for `slot`, or resume it."""
    with opened(settings.database) as db:
        known = store_slots.slot(db, slot.id)
        if known is not None and known.outcome != store_slots.RUNNING:
            log.info("slot %s: already %s; nothing to do", slot.id, known.outcome)
            return SlotResult(slot.id, known.outcome, "already done", known.edition_id)
        store_slots.claim_slot(db, slot.id, slot.at)
        try:
            chosen = _edition_for(settings, db, slot)
        except DigestError as e:
            # The slot stays running: the next tick or start tries again.
            store_slots.finish_slot(db, slot.id, store_slots.RUNNING, f"stopped by an error: {e}")
            log.error("slot %s: stopped by an error: %s", slot.id, e, extra={"slot": slot.id})
            return SlotResult(slot.id, UNFINISHED, str(e), None, failed=True)
        if chosen is None:
            return _skip_few(db, slot, settings.min_articles)
        result = _deliver(settings, db, chosen, stop, slot=slot.id)
        waits = result.outcome in (UNFINISHED, WAITING)
        outcome = store_slots.RUNNING if waits else result.outcome
        store_slots.finish_slot(db, slot.id, outcome, result.detail)
        return SlotResult(slot.id, result.outcome, result.detail, chosen.id, failed=result.failed)


def _edition_for(settings: Settings, db: Database, slot: Slot) -> Edition | None:
    """The slot's edition: the one already recorded, or a new one if enough is new."""
    known = store_slots.slot(db, slot.id)
    if known is not None and known.edition_id:
        return lifecycle.load(db, known.edition_id)
    collected = collect.collect(settings.fetch, settings.sections, db)
    problems = tuple(f"{p.source}: {p.message}" for p in collected.problems)
    for problem in problems:
        log.warning("slot %s: source problem: %s", slot.id, problem, extra={"slot": slot.id})
    found = lifecycle.candidate(db, settings.title, settings.sections, settings.summary, slot.at)
    store_slots.finish_slot(db, slot.id, store_slots.RUNNING, "building", problems=problems)
    if len(found.article_ids) < settings.min_articles or edition.is_empty(found):
        return None
    recorded = lifecycle.record(db, found)
    store_slots.finish_slot(db, slot.id, store_slots.RUNNING, "sending", recorded.id)
    log.info(
        "slot %s: edition #%d with %d article(s), %d new from sources",
        slot.id,
        recorded.number,
        len(recorded.article_ids),
        len(collected.articles),
        extra={"slot": slot.id, "edition": recorded.id},
    )
    return recorded


def _skip_few(db: Database, slot: Slot, minimum: int) -> SlotResult:
    reason = f"too few new articles: fewer than min_articles ({minimum})"
    store_slots.finish_slot(db, slot.id, store_slots.SKIPPED, reason)
    log.info("slot %s: skipped, %s; nothing sent", slot.id, reason, extra={"slot": slot.id})
    return SlotResult(slot.id, store_slots.SKIPPED, reason)
