"""Senders past one machine: every process that delivers (`digest send`,
`digest run`, `digest worker`) claims ledger rows under a worker id and,
with PostgreSQL, beats its heart in the database; `digest worker` is the
loop that takes rows of any edition going out, through its own SMTP
settings and rate limits, until stopped.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from digest.config import Settings
from digest.deliver.policy import DEFERRED_FOR, DEFERRED_WAIT, policy_from
from digest.deliver.send import DeliveryReport, deliver
from digest.deliver.signer import signing
from digest.deliver.stored import StoredVariants
from digest.deliver.transports import make_transport
from digest.edition.lifecycle import finish_if_done
from digest.errors import ConfigError
from digest.store import connect, editions, ledger, meta, workers
from digest.store.db import Database

log = logging.getLogger(__name__)


class Guard(threading.Event):
    """The stop a sender checks between messages: its own stop, or a lost
    registration (its heart stopped long enough for its rows to be taken)."""

    def __init__(self, stop: threading.Event | None) -> None:
        super().__init__()
        self.outer = stop or threading.Event()

    def is_set(self) -> bool:
        return self.outer.is_set() or super().is_set()


@contextlib.contextmanager
def registered(
    settings: Settings, db: Database, role: str, stop: threading.Event | None = None
) -> Iterator[tuple[str, Guard]]:
    """A worker id for claims, and the stop to send under.

    With SQLite one process sends at a time (the lease): rows a killed run
    left `sending` simply go back to pending. With PostgreSQL the process
    registers, a thread beats its heart, and rows of dead workers return.
    """
    guard = Guard(stop)
    if db.backend != "postgres":
        for row in editions.sending(db):
            ledger.reset_sending(db, row.id)
        yield "local", guard
        return
    timeout = float(settings.worker_timeout)
    returned = workers.reap(db, timeout)
    if returned:
        log.info("%d row(s) of stopped senders went back to pending", returned)
    worker = workers.register(db, role)
    beating = threading.Event()
    thread = threading.Thread(
        target=_beat, args=(settings.database, worker, timeout / 6, beating, guard), daemon=True
    )
    thread.start()
    try:
        yield worker, guard
    finally:
        beating.set()
        thread.join(timeout)
        workers.unregister(db, worker)


def _beat(where: str, worker: str, every: float, done: threading.Event, lost: Guard) -> None:
    """Renew the heartbeat on a connection of its own; a row reaped meanwhile
    (this process was paused too long) means its claims went to others."""
    db = connect(where)
    try:
        while not done.wait(every):
            try:
                alive = workers.beat(db, worker)
            except Exception as e:  # the database is unreachable: try again next beat
                log.warning("heartbeat of %s failed: %s", worker, e)
                continue
            if not alive:
                log.error("%s was taken for dead (paused?); stopping its sends", worker)
                lost.set()
                return
    finally:
        db.close()


@dataclass
class WorkReport:
    """What a worker sent, per edition."""

    editions: dict[str, DeliveryReport] = field(default_factory=dict)


def work(settings: Settings, stop: threading.Event, once: bool = False) -> WorkReport:
    """Claim and deliver rows of every edition going out until `stop` (or,
    with `once`, until nothing is left to claim)."""
    if "://" not in settings.database:
        raise ConfigError(
            "digest worker needs a PostgreSQL database (DIGEST_DATABASE=postgresql://...); "
            "with SQLite, 'digest send' and 'digest run' deliver by themselves"
        )
    report = WorkReport()
    db = connect(settings.database)
    try:
        with registered(settings, db, "worker", stop) as (worker, guard):
            while not guard.is_set():
                if not _one_round(settings, db, worker, guard, report) and once:
                    break
                if not once:
                    guard.wait(settings.worker_poll)
    finally:
        db.close()
    return report


def _one_round(
    settings: Settings, db: Database, worker: str, guard: Guard, report: WorkReport
) -> bool:
    """Deliver what can be claimed now; False when there was nothing."""
    found = False
    workers.reap(db, float(settings.worker_timeout))
    secret = meta.signing_key(db, settings.secret_key)
    now = datetime.now(UTC)
    for row in editions.sending(db):
        due = _due(db, row.id, row.created_at, now)
        if due is None or guard.is_set():
            continue
        found = True
        stored = StoredVariants(db, row.id, secret)
        variants = ledger.variants(db, row.id)
        base = stored.link_base(next(iter(variants))) if variants else settings.base_url
        policy = replace(
            policy_from(settings, db),
            statuses=due[0],
            tried_before=due[1],
            due_by=now.isoformat(timespec="seconds"),  # a later wave waits for its time
        )
        transport = make_transport(settings.smtp)
        with signing(policy.dkim, transport.connections) as dkim:
            policy = replace(policy, dkim=dkim)
            sent = deliver(row.id, stored, transport, db, base, policy, guard, worker=worker)
        report.editions[row.id] = sent
        finish_if_done(db, row.id)
    return found


def _due(
    db: Database, edition_id: str, created: str, now: datetime
) -> tuple[tuple[str, ...], str | None] | None:
    """Which rows of an edition a worker may claim now: pending ones, else
    deferred ones that waited DEFERRED_WAIT, while the edition is young."""
    if ledger.count_in(db, edition_id, (ledger.PENDING,), now.isoformat(timespec="seconds")):
        return (ledger.PENDING,), None
    waited = (now - DEFERRED_WAIT).isoformat(timespec="seconds")
    young = datetime.fromisoformat(created) > now - DEFERRED_FOR
    if young and ledger.count_in(db, edition_id, (ledger.DEFERRED,), tried_before=waited):
        return (ledger.DEFERRED,), waited
    return None
