"""The fan-out: before the first message, a ledger row for every recipient,
holding everything their copy needs (address, name, fields, variant,
Message-ID). The edition is `sending` only once every row is written, so a
fan-out cut short (a missing list, a crash) simply runs again.
"""

from __future__ import annotations

import contextlib
import gc
import queue
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from digest.deliver.audience import SEND, Copy
from digest.deliver.message import MessageIds
from digest.deliver.waves import Waves
from digest.model import LedgerEntry
from digest.store import ledger
from digest.store.db import Database
from digest.store.pool import reconnect

# Rows written per transaction: PostgreSQL takes them by COPY, in bigger batches.
BATCH = {"sqlite": 500, "postgres": 5000}


@dataclass
class FanOut:
    """How the list divided: recipients written, and who gets nothing and why."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1

    @property
    def recipients(self) -> int:
        return self.counts.get(SEND, 0)


def fan_out(
    db: Database,
    edition_id: str,
    copies: Iterable[Copy],
    secret: bytes,
    domain: str,
    waves: Waves | None = None,
) -> FanOut:
    """Write a pending row per recipient, BATCH rows a transaction; with
    `waves` (local time), each row due at its reader's wave."""
    result = FanOut()
    # A first fan-out cannot meet a row already there: the fast path for it.
    written = sum(ledger.counts(db, edition_id).values())
    fresh = written == 0
    # A fan-out run again numbers on after the rows the first one wrote.
    ids = MessageIds(secret, edition_id, domain, written)
    entries: list[LedgerEntry] = []
    counts, size = result.counts, BATCH[db.backend]
    with tuned_for_bulk(), Writer(db, edition_id, fresh) as write:
        # The loop a million readers pass through: kept to plain operations.
        for sub, variant, reason in copies:
            counts[reason] = counts.get(reason, 0) + 1
            if variant is None:
                continue
            key = sub.email.lower()
            due = "" if waves is None else waves.due_at(sub.timezone)
            entries.append(
                LedgerEntry(key, sub.email, sub.name, sub.extra, variant, ids(key), sub.line, due)
            )
            if len(entries) >= size:
                write(entries)
                entries = []
        write(entries)
    return result


@contextlib.contextmanager
def tuned_for_bulk() -> Iterator[None]:
    """The interpreter set for the fan-out's two threads, and set back after.

    The cycle collector paused: the fan-out makes a million tuples and lists
    but no cycle, and a batch of them outlives a young collection, so the
    collector kept walking them again (about a quarter of the time).

    A shorter GIL switch interval: the writer thread waits on its socket
    many times a batch, and each time it is ready it waited for the reading
    thread to let go of the GIL, 5 ms by default: the server sat idle and
    the writer fell behind. At 0.1 ms it keeps up."""
    enabled, interval = gc.isenabled(), sys.getswitchinterval()
    gc.disable()
    sys.setswitchinterval(min(interval, 0.0001))
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        if enabled:
            gc.enable()


class Writer:
    """Writes batches of rows. With PostgreSQL a thread of its own, on its own
    connection, COPYs each batch while the next is being read from the list
    (at most two batches wait: memory stays flat); with SQLite, at once."""

    def __init__(self, db: Database, edition_id: str, fresh: bool) -> None:
        self.db, self.edition_id, self.fresh = db, edition_id, fresh
        self.queue: queue.Queue[list[LedgerEntry] | None] = queue.Queue(maxsize=2)
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def __enter__(self) -> Writer:
        if self.db.backend == "postgres":
            self.thread = threading.Thread(target=self._copy_all, name="digest-fanout")
            self.thread.start()
        return self

    def __call__(self, entries: list[LedgerEntry]) -> None:
        if not entries:
            return
        if self.thread is None:
            _write(self.db, self.edition_id, entries, self.fresh)
            return
        if self.error is not None:
            raise self.error
        self.queue.put(entries)

    def __exit__(self, *failed: object) -> None:
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
        if self.error is not None and failed[0] is None:
            raise self.error

    def _copy_all(self) -> None:
        own = reconnect(self.db)
        try:
            while (entries := self.queue.get()) is not None:
                if self.error is None:
                    _write(own, self.edition_id, entries, self.fresh)
        except BaseException as e:  # handed to the reading thread, which raises it
            self.error = e
            while self.queue.get() is not None:  # let the reader finish its puts
                pass
        finally:
            own.close()


def _write(db: Database, edition_id: str, entries: list[LedgerEntry], fresh: bool) -> None:
    if entries:
        with db.transaction():
            ledger.add(db, edition_id, entries, fresh)
