"""Mail `digest serve` sends itself (sign-up confirmations), kept in the
database from the moment it is asked for until the server takes it: a relay
that is down, or a serve that stops, only delays it. Every `digest serve`
sharing the database sends from the one queue; a claim holds a message for
a while, so two of them never send it at once.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from digest.store.db import Database, claimable, now


class Queued(NamedTuple):
    key: str
    sender: str
    recipient: str
    raw: bytes
    attempts: int
    created_at: str


def _at(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def add(db: Database, sender: str, recipient: str, raw: bytes) -> str:
    """Keep one message, due at once; its key."""
    key = secrets.token_hex(16)
    stamp = now()
    db.execute(
        "INSERT INTO mail_queue (key, sender, recipient, raw, next_try, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (key, sender, recipient, base64.b64encode(raw).decode(), stamp, stamp),
    )
    return key


def claim(db: Database, hold: timedelta, limit: int = 20) -> list[Queued]:
    """Take up to `limit` messages that are due, holding each for `hold` (its
    next try moves on by that much: a sender that dies mid-way leaves it to
    be taken again then)."""
    moment = datetime.now(UTC)
    chosen = "SELECT key FROM mail_queue WHERE next_try <= ? ORDER BY next_try LIMIT ?"
    rows = db.all(
        f"WITH chosen AS {claimable(db, chosen)} UPDATE mail_queue SET next_try = ?"
        " WHERE key IN (SELECT key FROM chosen)"
        " RETURNING key, sender, recipient, raw, attempts, created_at",
        (_at(moment), limit, _at(moment + hold)),
    )
    return [
        Queued(
            str(r["key"]),
            str(r["sender"]),
            str(r["recipient"]),
            base64.b64decode(str(r["raw"])),
            int(r["attempts"]),
            str(r["created_at"]),
        )
        for r in rows
    ]


def remove(db: Database, key: str) -> None:
    """Taken by the server, or given up on."""
    db.execute("DELETE FROM mail_queue WHERE key = ?", (key,))


def later(db: Database, key: str, error: str, wait: timedelta) -> None:
    """Try again after `wait`, remembering what went wrong."""
    db.execute(
        "UPDATE mail_queue SET attempts = attempts + 1, last_error = ?, next_try = ? WHERE key = ?",
        (error[:500], _at(datetime.now(UTC) + wait), key),
    )


def due(db: Database) -> int:
    """How many messages are due now."""
    return int(db.scalar("SELECT COUNT(*) FROM mail_queue WHERE next_try <= ?", (now(),)))


def waiting(db: Database) -> int:
    """How many messages are kept, due or not."""
    return int(db.scalar("SELECT COUNT(*) FROM mail_queue"))
