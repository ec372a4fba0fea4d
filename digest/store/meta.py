"""Values the database keeps for itself: the generated signing key."""

from __future__ import annotations

import secrets

from digest.store.db import Database


def signing_key(db: Database, configured: str) -> bytes:
    """The configured DIGEST_SECRET_KEY, or a random key generated once and kept
    in the database, so every process sharing it signs alike."""
    if configured:
        return configured.encode()
    db.execute(
        "INSERT INTO meta (key, value) VALUES ('secret', ?) ON CONFLICT (key) DO NOTHING",
        (secrets.token_hex(32),),
    )
    return bytes.fromhex(str(db.scalar("SELECT value FROM meta WHERE key = 'secret'")))
