"""What a send would do and how hard it tries: the delivery policy from
settings, the dry run over the whole list, and the expected total for a
progress bar. Nothing here sends.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest import edition as editions
from digest import store, store_ledger
from digest.config import Settings
from digest.delivery import BATCH, Policy, batches
from digest.mail import dkim_sign, load_dkim_key, sender_address
from digest.model import Subscriber
from digest.pacing import Limits
from digest.subscribers import RowError, active_subscribers


def policy_from(settings: Settings, db: sqlite3.Connection) -> Policy:
    """Delivery policy from settings; the DKIM key is read and tried once, up front."""
    sent = 0
    if settings.rate_per_hour:
        hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
        sent = store_ledger.sent_since(db, hour_ago)
    key = None
    if settings.dkim_key_file is not None:
        domain = settings.dkim_domain or sender_address(settings.from_addr).rsplit("@", 1)[1]
        key = load_dkim_key(settings.dkim_key_file, settings.dkim_selector, domain)
        dkim_sign(b"From: check@" + domain.encode() + b"\r\n\r\ncheck\r\n", key)
    limits = Limits(settings.rate_per_second, settings.rate_per_hour, sent, settings.retry_delay)
    return Policy(settings.max_attempts, settings.retry_delay, limits, key)


def expected_total(path: Path, db: sqlite3.Connection, edition_id: str) -> int:
    """Rows in the list less rows already final: a cheap total for an ETA."""
    lines = 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                lines += chunk.count(b"\n")
    except OSError:
        return 0
    done = sum(n for s, n in store.ledger_counts(db, edition_id).items() if s in store.FINAL_STATES)
    return max(0, lines - 1 - done)


def dry_run(settings: Settings, edition_file: Path | None = None) -> dict[str, object]:
    """What a send would do now, without sending or marking anything.

    The list is streamed and checked against the ledger BATCH rows at a time,
    so memory stays flat however long the list is.
    """
    db = store.connect(settings.database)
    try:
        errors: list[RowError] = []
        unfinished = store.unfinished_edition(db) if edition_file is None else None
        edition_id = (
            editions.load_edition(edition_file).id
            if edition_file
            else unfinished or "(new edition)"
        )
        counts = {"to_send": 0, "already_done": 0, "suppressed": 0}
        samples: list[str] = []
        for batch in batches(active_subscribers(settings.subscribers, errors), BATCH):
            for sub, state in _dry_states(db, edition_id, batch):
                counts[state] += 1
                if state == "to_send" and len(samples) < 5:
                    samples.append(sub.email)
        return {
            "edition": edition_id,
            "counts": counts,
            "ledger": store.ledger_counts(db, edition_id),
            "samples": samples,
            "row_errors": [str(e) for e in errors[:20]],
            "row_errors_total": len(errors),
            "destination": make_transport_description(settings),
        }
    finally:
        db.close()


def _dry_states(
    db: sqlite3.Connection, edition_id: str, batch: list[Subscriber]
) -> Iterator[tuple[Subscriber, str]]:
    keys = [sub.email.lower() for sub in batch]
    suppressed = store_ledger.suppressed_among(db, keys)
    states = store_ledger.ledger_states(db, edition_id, keys)
    for sub, key in zip(batch, keys, strict=True):
        if key in suppressed:
            yield sub, "suppressed"
        elif states.get(key) in store.FINAL_STATES:
            yield sub, "already_done"
        else:
            yield sub, "to_send"


def make_transport_description(settings: Settings) -> str:
    if settings.smtp_host:
        return f"SMTP {settings.smtp_host}:{settings.effective_smtp_port}"
    return f"Maildir {settings.outbox}"
