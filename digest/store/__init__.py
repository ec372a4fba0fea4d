"""The store: articles and source health, editions and their lifecycle, the
delivery ledger, subscribers' state, slots and the runner lease. One module
per table family, each a few functions with their SQL; no ORM.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from digest.errors import StoreError
from digest.store.db import Database, now, open_sqlite
from digest.store.schema import LATEST, migrate, version

__all__ = ["Database", "connect", "now", "opened"]


def connect(path: Path) -> Database:
    """Open the database, creating or upgrading it to the current schema."""
    db = open_sqlite(path)
    try:
        found = version(db)
        if found > LATEST:
            raise StoreError(
                f"the database {path} has schema version {found}, newer than this digest "
                f"understands ({LATEST}); upgrade digest, or point DIGEST_DATABASE elsewhere"
            )
        migrate(db)
    except Exception:
        db.close()
        raise
    return db


@contextlib.contextmanager
def opened(path: Path) -> Iterator[Database]:
    """`connect`, closed when the block ends."""
    db = connect(path)
    try:
        yield db
    finally:
        db.close()
