"""Bounce reports (delivery status notifications) already read: each is kept
by its identity, so reading a mailbox again never counts one twice, even when
the mailbox could not be marked. The ledger statements only bounce
processing needs (a delivery by Message-ID, a late bounce, a streak across
editions) live here too.
"""

from __future__ import annotations

from dataclasses import dataclass

from digest.store.db import Database, now
from digest.store.ledger import BOUNCED, SENT


def known(db: Database, key: str) -> bool:
    return db.one("SELECT 1 FROM bounces WHERE key = ?", (key,)) is not None


def record(
    db: Database, key: str, edition_id: str, email: str, kind: str, status: str, reason: str
) -> None:
    """A report read: its delivery ('' when none matched), kind and reason."""
    db.execute(
        "INSERT INTO bounces (key, edition_id, email, kind, status, reason, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
        (key, edition_id, email.lower(), kind, status, reason, now()),
    )


def counts(db: Database, edition_id: str) -> dict[str, int]:
    """Reports per kind for an edition's deliveries."""
    rows = db.all(
        "SELECT kind, COUNT(*) AS n FROM bounces WHERE edition_id = ? GROUP BY kind",
        (edition_id,),
    )
    return {str(r["kind"]): int(r["n"]) for r in rows}


@dataclass(frozen=True)
class Sent:
    """The delivery a bounce report names."""

    edition_id: str
    email: str
    status: str


def by_message_id(db: Database, message_id: str) -> Sent | None:
    row = db.one(
        "SELECT edition_id, email, status FROM deliveries WHERE message_id = ? LIMIT 1",
        (message_id,),
    )
    return (
        None if row is None else Sent(str(row["edition_id"]), str(row["email"]), str(row["status"]))
    )


def mark_bounced(db: Database, edition_id: str, email: str, reply: str) -> None:
    """A delivery the server accepted and the far end refused later."""
    db.execute(
        "UPDATE deliveries SET status = ?, last_reply = ?, updated_at = ?"
        " WHERE edition_id = ? AND email = ? AND status IN (?, ?)",
        (BOUNCED, reply, now(), edition_id, email, SENT, BOUNCED),
    )


def bounced_in_a_row(db: Database, email: str, limit: int) -> int:
    """How many of this address's latest deliveries (newest edition first, up
    to `limit`) bounced, until one that did not."""
    rows = db.all(
        "SELECT d.status FROM deliveries d JOIN editions e ON e.id = d.edition_id"
        " WHERE d.email = ? AND d.status IN (?, ?) ORDER BY e.number DESC LIMIT ?",
        (email.lower(), SENT, BOUNCED, limit),
    )
    streak = 0
    for row in rows:
        if row["status"] != BOUNCED:
            break
        streak += 1
    return streak
