"""The fan-out: before the first message, a ledger row for every recipient,
holding everything their copy needs (address, name, fields, variant,
Message-ID). The edition is `sending` only once every row is written, so a
fan-out cut short (a missing list, a crash) simply runs again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from digest.deliver.audience import SEND, Copy
from digest.deliver.message import message_id
from digest.deliver.waves import Waves
from digest.store import ledger
from digest.store.db import Database

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
    entries: list[ledger.Entry] = []
    for copy in copies:
        result.add(copy.reason)
        if copy.variant is None:
            continue
        entry = _entry(copy, copy.variant, edition_id, secret, domain)
        if waves is not None:
            entry = replace(entry, due_at=waves.due_at(copy.subscriber.timezone))
        entries.append(entry)
        if len(entries) >= BATCH[db.backend]:
            _write(db, edition_id, entries)
            entries = []
    _write(db, edition_id, entries)
    return result


def _entry(copy: Copy, variant: str, edition_id: str, secret: bytes, domain: str) -> ledger.Entry:
    sub = copy.subscriber
    key = sub.email.lower()
    return ledger.Entry(
        email=key,
        address=sub.email,
        name=sub.name,
        fields=sub.extra,
        variant=variant,
        message_id=message_id(secret, edition_id, domain, key),
        line=sub.line,
    )


def _write(db: Database, edition_id: str, entries: list[ledger.Entry]) -> None:
    if entries:
        with db.transaction():
            ledger.add(db, edition_id, entries)
