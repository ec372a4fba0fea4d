"""Running slots: what one tick of the schedule does, decided from the database.

A slot is claimed in the `slots` table before anything happens, its edition
takes the slot's identity, and its outcome is recorded, so a second firing,
a restart or a resumed send never makes a second edition for the same slot.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from digest import edition as editions
from digest import job, store, store_ledger, store_slots
from digest.config import Settings
from digest.errors import DigestError
from digest.model import Edition
from digest.slots import Plan, Slot, plan
from digest.sources import collect

log = logging.getLogger(__name__)
UNFINISHED = "unfinished"  # a result, not a stored outcome: the slot stays running
# Deferred deliveries get another round after this wait, for this long after
# their edition was made (mail servers keep retrying for days; an edition is news).
DEFERRED_WAIT = timedelta(minutes=15)
DEFERRED_FOR = timedelta(hours=24)


@dataclass(frozen=True)
class SlotResult:
    """What running (or resuming) one slot came to."""

    slot: str
    outcome: str  # store_slots.SENT, store_slots.SKIPPED or UNFINISHED
    detail: str = ""
    edition: str | None = None


def run_due(
    settings: Settings,
    now: datetime,
    stop: threading.Event | None = None,
    resume: bool = True,
) -> list[SlotResult]:
    """Skip what is too old, resume what was cut short (unless `resume` is
    False: a retry is not due yet), run the slot now due."""
    db = store.connect(settings.database)
    try:
        todo = plan(settings, db, now)
        _record_skips(settings, db, todo)
    finally:
        db.close()

    def going() -> bool:
        return stop is None or not stop.is_set()

    zone = ZoneInfo(settings.timezone)
    results = []
    for row in todo.resume if resume or todo.run is not None else ():
        if going():
            at = datetime.fromisoformat(row.scheduled_at).astimezone(zone)
            log.info("slot %s: resuming its unfinished send", row.slot, extra={"slot": row.slot})
            results.append(run_slot(settings, Slot(row.slot, at), stop))
    if going() and (resume or todo.run is not None):
        results += _resume_by_hand(settings, stop)
    if todo.run is not None and going():
        results.append(run_slot(settings, todo.run, stop))
    elif going() and resume:
        results += retry_deferred(settings, now, stop)
    return results


def retry_deferred(
    settings: Settings, now: datetime, stop: threading.Event | None = None
) -> list[SlotResult]:
    """Another round for deferred deliveries once they waited DEFERRED_WAIT,
    for DEFERRED_FOR after their edition was made: one run's retries last
    seconds, and a greylisting server wants the next try minutes later."""
    utc = now.astimezone(UTC)
    db = store.connect(settings.database)
    try:
        edition_id = store_ledger.deferred_edition(
            db, _iso(utc - DEFERRED_WAIT), _iso(utc - DEFERRED_FOR)
        )
        body = None if edition_id is None else store.edition_body(db, edition_id)
        if edition_id is None or body is None:
            return []
        edition = editions.from_json(json.loads(body), f"edition {edition_id}")
        log.info("edition %s: retrying its deferred deliveries", edition_id)
        return _deliver(settings, db, edition, stop, retry_only=True)
    finally:
        db.close()


def _deliver(
    settings: Settings,
    db: sqlite3.Connection,
    edition: Edition,
    stop: threading.Event | None,
    retry_only: bool = False,
) -> list[SlotResult]:
    """Deliver what an edition still owes (only its deferred rows when
    `retry_only`), log the outcome, and say how it ended."""
    what = "retry" if retry_only else "send"
    try:
        sent = job.deliver_edition(
            settings, db, job.SendResult(edition, resumed=True), stop, retry_only=retry_only
        )
    except DigestError as e:
        log.error("edition %s: %s stopped by an error: %s", edition.id, what, e)
        return [SlotResult("", UNFINISHED, str(e), edition.id)]
    counts = ", ".join(f"{n} {s}" for s, n in sorted(sent.report.counts.items()))
    log.info("edition %s: %s: %s", edition.id, what, counts or "nothing left to deliver")
    return [SlotResult("", UNFINISHED if sent.stopped else store_slots.SENT, counts, edition.id)]


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _resume_by_hand(settings: Settings, stop: threading.Event | None) -> list[SlotResult]:
    """Finish an edition a stopped `digest send` left, before any new slot."""
    db = store.connect(settings.database)
    try:
        unfinished = store.unfinished_edition(db)
        if unfinished is None or store_slots.slot(db, unfinished) is not None:
            return []
        body = store.edition_body(db, unfinished)
        assert body is not None
        edition = editions.from_json(json.loads(body), f"edition {unfinished}")
        log.info("resuming edition %s, left unfinished by digest send", unfinished)
        return _deliver(settings, db, edition, stop)
    finally:
        db.close()


def _record_skips(settings: Settings, db: sqlite3.Connection, todo: Plan) -> None:
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
    """Collect, build and send the edition for `slot`, or resume its send."""
    db = store.connect(settings.database)
    try:
        store_slots.ensure(db)
        known = store_slots.slot(db, slot.id)
        if known is not None and known.outcome != store_slots.RUNNING:
            log.info("slot %s: already %s; nothing to do", slot.id, known.outcome)
            return SlotResult(slot.id, known.outcome, "already done", known.edition_id)
        store_slots.claim_slot(db, slot.id, slot.at)
        try:
            edition = _edition_for(settings, db, slot)
            if edition is None:
                return _skip_few(db, slot, settings.min_articles)
            sent = job.deliver_edition(settings, db, job.SendResult(edition), stop)
        except DigestError as e:
            # The slot stays running: the next tick or start resumes it.
            store_slots.finish_slot(db, slot.id, store_slots.RUNNING, f"stopped by an error: {e}")
            log.error("slot %s: stopped by an error: %s", slot.id, e, extra={"slot": slot.id})
            recorded = store.edition_body(db, slot.id) is not None
            return SlotResult(slot.id, UNFINISHED, str(e), slot.id if recorded else None)
        return _conclude(db, slot, edition, sent, stop)
    finally:
        db.close()


def _edition_for(settings: Settings, db: sqlite3.Connection, slot: Slot) -> Edition | None:
    """The slot's edition: the one already recorded, or a new one if enough is new."""
    body = store.edition_body(db, slot.id)
    if body is not None:
        return editions.from_json(json.loads(body), f"edition {slot.id}")
    collected = collect(settings, db)
    problems = tuple(f"{p.source}: {p.message}" for p in collected.problems)
    for problem in problems:
        log.warning("slot %s: source problem: %s", slot.id, problem, extra={"slot": slot.id})
    edition = job.build_from_store(settings, db, slot.at)
    store_slots.finish_slot(db, slot.id, store_slots.RUNNING, "building", problems=problems)
    if len(edition.article_ids) < settings.min_articles:
        return None
    job.record_edition(db, edition)
    store_slots.finish_slot(db, slot.id, store_slots.RUNNING, "sending", edition.id)
    log.info(
        "slot %s: edition #%d with %d article(s), %d new from sources",
        slot.id,
        edition.number,
        len(edition.article_ids),
        len(collected.articles),
        extra={"slot": slot.id, "edition": edition.id},
    )
    return edition


def _skip_few(db: sqlite3.Connection, slot: Slot, minimum: int) -> SlotResult:
    reason = f"too few new articles: fewer than min_articles ({minimum})"
    store_slots.finish_slot(db, slot.id, store_slots.SKIPPED, reason)
    log.info("slot %s: skipped, %s; nothing sent", slot.id, reason, extra={"slot": slot.id})
    return SlotResult(slot.id, store_slots.SKIPPED, reason)


def _conclude(
    db: sqlite3.Connection,
    slot: Slot,
    edition: Edition,
    sent: job.SendResult,
    stop: threading.Event | None,
) -> SlotResult:
    for row_error in sent.row_errors:
        log.warning("slot %s: subscriber row skipped: %s", slot.id, row_error)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(sent.report.counts.items()))
    if stop is not None and stop.is_set():
        # Rows not yet claimed do not exist, so the ledger cannot tell whether
        # everyone was reached: the next start resumes and finds out.
        detail = f"stopped after {counts or 'nothing'}; the next start resumes"
        store_slots.finish_slot(db, slot.id, store_slots.RUNNING, detail)
        log.warning("slot %s: %s", slot.id, detail, extra={"slot": slot.id})
        return SlotResult(slot.id, UNFINISHED, detail, edition.id)
    ledger = store.ledger_counts(db, edition.id)
    detail = ", ".join(f"{n} {s}" for s, n in sorted(ledger.items())) or "no recipients"
    store_slots.finish_slot(db, slot.id, store_slots.SENT, detail)
    log.info(
        "slot %s: sent edition %s (%s) into %s",
        slot.id,
        edition.id,
        detail,
        sent.destination,
        extra={"slot": slot.id, "edition": edition.id},
    )
    return SlotResult(slot.id, store_slots.SENT, detail, edition.id)
