"""The store: articles and source health, editions and their lifecycle, the
delivery ledger, subscribers' state, slots and the runner lease. One module
per table family, each a few functions with their SQL; no ORM.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from digest.errors import StoreError
from digest.store.db import STORE_ERRORS, Database, Location, now, open_postgres, open_sqlite
from digest.store.schema import LATEST, migrate, version

__all__ = ["Database", "Location", "connect", "now", "opened"]


def connect(where: str | Path) -> Database:
    """Open the database (a SQLite file, or a postgresql:// URL), creating
    or upgrading it to the current schema."""
    location = Location(str(where))
    db = open_postgres(location) if location.postgres else open_sqlite(location.path)
    try:
        found = version(db)
        if found > LATEST:
            raise StoreError(
                f"the database {location.shown} has schema version {found}, newer than this "
                f"digest understands ({LATEST}); upgrade digest, or point DIGEST_DATABASE elsewhere"
            )
        migrate(db)
    except STORE_ERRORS as e:
        db.close()
        raise StoreError(f"the database {location.shown} failed: {e}") from e
    except Exception:
        db.close()
        raise
    return db


@contextlib.contextmanager
def opened(where: str | Path) -> Iterator[Database]:
    """`connect`, closed when the block ends."""
    db = connect(where)
    try:
        yield db
    finally:
        db.close()
