"""The connection every store module talks through: one SQL dialect (`?`
placeholders, `ON CONFLICT` upserts, rows read by column name), explicit
transactions, and errors that say which database and how to fix it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from digest.errors import StoreError

Row = Any  # a mapping-like row: row["column"]
Params = Sequence[Any]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Database:
    """A connection in autocommit mode; `transaction()` groups statements."""

    backend = "sqlite"

    def __init__(self, connection: sqlite3.Connection, where: str) -> None:
        self.connection = connection
        self.where = where
        self.depth = 0

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        return self.connection.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        return self.connection.executemany(sql, rows).rowcount

    def one(self, sql: str, params: Params = ()) -> Row | None:
        return self.connection.execute(sql, params).fetchone()

    def all(self, sql: str, params: Params = ()) -> list[Row]:
        return list(self.connection.execute(sql, params))

    def scalar(self, sql: str, params: Params = ()) -> Any:
        row = self.connection.execute(sql, params).fetchone()
        return None if row is None else row[0]

    @contextlib.contextmanager
    def transaction(self, immediate: bool = False) -> Iterator[None]:
        """One commit for the block; an inner block joins the outer one.

        `immediate` takes the write lock at once (SQLite's BEGIN IMMEDIATE),
        for read-then-write decisions such as claiming a lease.
        """
        if self.depth:
            self.depth += 1
            try:
                yield
            finally:
                self.depth -= 1
            return
        self.connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        self.depth = 1
        try:
            yield
        except BaseException:
            self.depth = 0
            self.connection.execute("ROLLBACK")
            raise
        self.depth = 0
        self.connection.execute("COMMIT")

    def begin(self) -> None:
        """Open a transaction by hand, for writes grouped by time (see collect)."""
        self.connection.execute("BEGIN")
        self.depth = 1

    def commit(self) -> None:
        self.depth = 0
        self.connection.execute("COMMIT")

    def rollback(self) -> None:
        self.depth = 0
        self.connection.execute("ROLLBACK")

    def columns(self, table: str) -> set[str]:
        return {str(row["name"]) for row in self.all(f"PRAGMA table_info({table})")}

    def close(self) -> None:
        self.connection.close()


def open_sqlite(path: Path) -> Database:
    """Open (creating it 0600: it holds addresses and maybe a key) a SQLite file."""
    try:
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True)
        if not path.exists():
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        connection.row_factory = sqlite3.Row
        _use_wal(connection)
        connection.execute("PRAGMA synchronous=NORMAL")
    except (sqlite3.Error, OSError) as e:
        raise StoreError(f"cannot open the database {path}: {e}; check DIGEST_DATABASE") from e
    return Database(connection, str(path))


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch a new file to WAL. Two processes opening a new file at once can
    deadlock on the switch, and SQLite then fails one at once ("database is
    locked") instead of waiting: try again for a few seconds."""
    for attempt in range(100):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == 99:
                raise
            time.sleep(0.05)


def chunks(items: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    """Bound parameter lists: SQLite caps the number of `?` in one statement."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(count: int) -> str:
    return ", ".join("?" * count)
