"""Request counts per key and period, kept in the database so every
`digest serve` process sharing it counts together (the sign-up form's rate
limits). Keys are hashed by the caller: no client address is stored.
"""

from __future__ import annotations

from digest.store.db import Database


def hit(db: Database, key: str, period: str, limit: int) -> bool:
    """Count one request for `key` in `period`; True while within `limit`.

    The increment and the read are one transaction (a write lock first), so
    two processes counting at once never both see room for the last one.
    """
    with db.transaction(immediate=True):
        db.execute(
            "INSERT INTO request_counts (key, period, hits) VALUES (?, ?, 1)"
            " ON CONFLICT (key, period) DO UPDATE SET hits = request_counts.hits + 1",
            (key, period),
        )
        hits = int(
            db.scalar("SELECT hits FROM request_counts WHERE key = ? AND period = ?", (key, period))
        )
    return hits <= limit


def forget_before(db: Database, period: str) -> None:
    """Counts of periods before this one are of no further use.

    Periods of one kind share a prefix and sort by time, e.g. `h:2026-11-30T07`."""
    prefix = period.split(":", 1)[0] + ":"
    db.execute(
        "DELETE FROM request_counts WHERE substr(period, 1, ?) = ? AND period < ?",
        (len(prefix), prefix, period),
    )
