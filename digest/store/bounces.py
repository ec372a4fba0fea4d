"""Bounce reports (delivery status notifications) already read: each is kept
by its identity, so reading a mailbox again never counts one twice, even when
the mailbox could not be marked.
"""

from __future__ import annotations

from digest.store.db import Database, now


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
