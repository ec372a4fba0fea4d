"""Connections for a threaded server (`digest serve`): a psycopg connection
pool with PostgreSQL, one connection per thread with SQLite (its
connections stay in the thread that made them)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from digest.errors import StoreError
from digest.store import connect
from digest.store.db import Database, Location, PostgresDatabase


class Connections:
    """`with connections.connection() as db:` for the length of a request."""

    def __init__(self, where: str, size: int = 4) -> None:
        self.location = Location(where)
        self.local = threading.local()
        self.pool: Any = None
        connect(where).close()  # create or upgrade the schema once, up front
        if self.location.postgres:
            self.pool = _open_pool(self.location, size)

    @contextlib.contextmanager
    def connection(self) -> Iterator[Database]:
        if self.pool is not None:
            with self.pool.connection() as conn:
                pooled = PostgresDatabase(conn, self.location.shown)
                pooled.location = self.location
                yield pooled
            return
        db: Database | None = getattr(self.local, "db", None)
        if db is None:
            db = self.local.db = connect(self.location.value)
        yield db

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


def _open_pool(location: Location, size: int) -> Any:
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    try:
        return ConnectionPool(
            location.value,
            min_size=1,
            max_size=max(1, size),
            kwargs={"autocommit": True, "row_factory": dict_row},
            timeout=30,
            open=True,
        )
    except Exception as e:
        raise StoreError(f"cannot open a connection pool to {location.shown}: {e}") from None


def reconnect(db: Database) -> Database:
    """A second connection to the same PostgreSQL database, for another thread."""
    from digest.store.db import open_postgres

    assert isinstance(db, PostgresDatabase)
    return open_postgres(db.location)
