"""The connection every store module talks through, for both backends: one
SQL dialect (`?` placeholders, `ON CONFLICT` upserts, rows read by column
name), explicit transactions, and errors that say which database and how to
fix it (a PostgreSQL URL is shown without its password).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from digest.errors import StoreError

Row = Any  # a mapping-like row: row["column"]
Params = Sequence[Any]
POSTGRES_SCHEMES = ("postgresql", "postgres")
# Key of the advisory lock that makes a PostgreSQL transaction "immediate":
# one such transaction at a time, as SQLite's write lock does.
IMMEDIATE_LOCK = 7_210_001


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Location:
    """Where the store lives: a SQLite file, or a PostgreSQL database."""

    value: str

    @property
    def postgres(self) -> bool:
        return self.value.split("://", 1)[0].lower() in POSTGRES_SCHEMES

    @property
    def path(self) -> Path:
        return Path(self.value)

    @property
    def shown(self) -> str:
        """For messages: a URL without its password, or the file's path."""
        if not self.postgres:
            return self.value
        parts = urlsplit(self.value)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        user = f"{parts.username}@" if parts.username else ""
        return f"{parts.scheme}://{user}{host}{port}{parts.path}"


class Database:
    """A connection in autocommit mode; `transaction()` groups statements."""

    backend = "sqlite"

    def __init__(self, connection: Any, where: str) -> None:
        self.connection = connection
        self.where = where
        self.depth = 0

    def _sql(self, sql: str) -> str:
        return sql

    def execute(self, sql: str, params: Params = ()) -> Any:
        return self.connection.execute(self._sql(sql), params)

    def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        cursor = self.connection.cursor()
        cursor.executemany(self._sql(sql), list(rows))
        return int(cursor.rowcount)

    def one(self, sql: str, params: Params = ()) -> Row | None:
        return self.execute(sql, params).fetchone()

    def all(self, sql: str, params: Params = ()) -> list[Row]:
        return list(self.execute(sql, params).fetchall())

    def scalar(self, sql: str, params: Params = ()) -> Any:
        row = self.one(sql, params)
        return None if row is None else next(iter(_values(row)))

    def _begin(self, immediate: bool) -> None:
        self.connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")

    @contextlib.contextmanager
    def transaction(self, immediate: bool = False) -> Iterator[None]:
        """One commit for the block; an inner block joins the outer one.

        `immediate` takes the write lock at once, for read-then-write
        decisions (numbering an edition, a migration).
        """
        if self.depth:
            self.depth += 1
            try:
                yield
            finally:
                self.depth -= 1
            return
        self._begin(immediate)
        self.depth = 1
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def begin(self) -> None:
        """Open a transaction by hand, for writes grouped by time (see collect)."""
        self._begin(False)
        self.depth = 1

    def commit(self) -> None:
        self.depth = 0
        self.connection.execute("COMMIT")

    def rollback(self) -> None:
        self.depth = 0
        self.connection.execute("ROLLBACK")

    # How many values one `where_in` may hold: SQLite caps bound parameters.
    batch = 500

    def where_in(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """`column IN (...)` as SQL and its parameters."""
        return f"{column} IN ({marks(len(values))})", list(values)

    def columns(self, table: str) -> set[str]:
        return {str(row["name"]) for row in self.all(f"PRAGMA table_info({table})")}

    def close(self) -> None:
        self.connection.close()


class PostgresDatabase(Database):
    """The same interface over psycopg 3: `?` becomes `%s`, and an immediate
    transaction takes an advisory lock for its duration."""

    backend = "postgres"
    _translated: dict[str, str] = {}  # noqa: RUF012 - a cache of pure translations
    location: Location

    def _sql(self, sql: str) -> str:
        found = self._translated.get(sql)
        if found is None:
            found = self._translated[sql] = sql.replace("%", "%%").replace("?", "%s")
        return found

    def _begin(self, immediate: bool) -> None:
        self.connection.execute("BEGIN")
        if immediate:
            self.connection.execute("SELECT pg_advisory_xact_lock(%s)", (IMMEDIATE_LOCK,))

    batch = 10_000

    def where_in(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """One text parameter split by the server: the query text (and its plan)
        stay the same, and a list of 10,000 travels without being dumped as an
        array value by value. The values (addresses) hold no line break."""
        joined = "\n".join(values)
        if joined.count("\n") != len(values) - 1:
            raise ValueError("where_in: a value holds a line break")
        return f"{column} = ANY(string_to_array(?, chr(10)))", [joined]

    def columns(self, table: str) -> set[str]:
        rows = self.all(
            "SELECT column_name AS name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
        return {str(row["name"]) for row in rows}

    def copy(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """COPY rows into a table: the bulk path for a million ledger rows."""
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with self.connection.cursor().copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    def copy_text(self, table: str, columns: Sequence[str], text: str) -> None:
        """COPY rows already in COPY's text format (see `copy_lines`), in one
        write: no call per row."""
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with self.connection.cursor().copy(statement) as copy:
            copy.write(text)


COPY_SPECIAL = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_lines(rows: Iterable[Sequence[str]], width: int) -> str:
    """Rows in COPY's text format. Joined as they are, then counted: when the
    whole text holds exactly the tabs and line breaks the joining put there,
    and no backslash or carriage return, no value needs escaping (the usual
    case, checked at C speed); otherwise row by row."""
    rows = list(rows)
    text = "\n".join(map("\t".join, rows)) + "\n"
    plain = text.count("\t") == (width - 1) * len(rows) and text.count("\n") == len(rows)
    if plain and "\\" not in text and "\r" not in text:
        return text
    return "".join(map(copy_line, rows))


def copy_line(values: Sequence[str]) -> str:
    """One row in COPY's text format: tab-separated, with backslash, tab,
    newline and carriage return escaped (they are rare: joined first, then
    escaped field by field only when the line holds one)."""
    line = "\t".join(values)
    if line.count("\t") != len(values) - 1 or "\\" in line or "\n" in line or "\r" in line:
        line = "\t".join(v.translate(COPY_SPECIAL) for v in values)
    return line + "\n"


def _values(row: Row) -> Iterable[Any]:
    return row.values() if isinstance(row, dict) else tuple(row)


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


def open_postgres(location: Location) -> Database:
    """Connect to PostgreSQL (psycopg 3, the `postgresql` extra)."""
    try:
        import psycopg
        from psycopg.rows import dict_row
    except ImportError as e:
        raise StoreError(
            "DIGEST_DATABASE is a PostgreSQL URL, but psycopg is not installed: "
            "pip install 'digest[postgresql]'"
        ) from e
    try:
        connection = psycopg.connect(
            location.value, autocommit=True, row_factory=dict_row, connect_timeout=10
        )
    except psycopg.Error as e:
        raise StoreError(
            f"cannot connect to the database {location.shown}: {_reason(e, location)}; "
            "check DIGEST_DATABASE and that the server is running"
        ) from None
    database = PostgresDatabase(connection, location.shown)
    database.location = location
    return database


def _reason(error: Exception, location: Location) -> str:
    """psycopg's message, one line, with the password (if any) blotted out."""
    text = " ".join(str(error).split())
    password = urlsplit(location.value).password
    return text.replace(password, "***") if password else text


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


def claimable(db: Database, select: str) -> str:
    """The CTE body for a claim (`WITH chosen AS ... UPDATE ... WHERE key IN
    (SELECT key FROM chosen)`): with PostgreSQL, rows another claim holds are
    skipped (FOR UPDATE SKIP LOCKED), so no row goes to two claimers. It is
    materialized: inside `IN (...)` PostgreSQL may scan the subquery again,
    and a rescan skips the rows this statement just locked and takes the
    next ones, so one claim would take far more than its LIMIT."""
    if db.backend == "postgres":
        return f"MATERIALIZED ({select} FOR UPDATE SKIP LOCKED)"
    return f"({select})"


STORE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error,)
with contextlib.suppress(ImportError):
    import psycopg as _psycopg

    STORE_ERRORS = (sqlite3.Error, _psycopg.Error)
