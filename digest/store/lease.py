"""The runner lease: only one process runs the schedule (or sends by hand)
at a time.

The authority is a lock held for the holder's whole life and released by
the system when the holder dies, even by SIGKILL, so a new process never
waits for a dead one: with SQLite an OS lock (`flock`) on a file beside the
database, with PostgreSQL a session advisory lock (the server releases it
when the holder's connection ends). A row in `leases` says who holds it and
since when, for `digest status` and for the message a refused process prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from digest.errors import LeaseHeld, StoreError
from digest.store.db import Database, Location, now

RUNNER = "runner"
ADVISORY_KEY = 7_210_002  # the runner lease as a PostgreSQL advisory lock


@dataclass(frozen=True)
class Lease:
    """Who holds a lease and until when (seconds since the epoch)."""

    holder: str
    acquired_at: str
    expires_at: float

    @property
    def expires(self) -> str:
        return datetime.fromtimestamp(self.expires_at, UTC).isoformat(timespec="seconds")


def lock_path(database: str | Path) -> Path:
    path = Path(database)
    return path.with_name(path.name + ".lock")


class RunnerLock:
    """The lease as one process holds it: `acquire`, `renew`, `release`."""

    def __init__(self, database: str | Path, holder: str, name: str = RUNNER) -> None:
        self.location = Location(str(database))
        self.path = lock_path(database)
        self.holder = holder
        self.name = name
        self.fd: int | None = None
        self.session: Database | None = None  # PostgreSQL: holds the advisory lock
        self.took_over: Lease | None = None  # a dead holder's row we replaced

    def acquire(self, db: Database, seconds: float, clock: float) -> Lease | None:
        """Take (or renew) the lease; None on success, else the live holder's row."""
        if not self._held_by_us() and not self._lock(db):
            return lease(db, self.name) or Lease("another process", "", clock)
        with db.transaction(immediate=True):
            current = lease(db, self.name)
            ours = current is not None and current.holder == self.holder
            if current is not None and not ours:
                self.took_over = current
            acquired = current.acquired_at if ours and current else now()
            db.execute(
                "INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
                " acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
                (self.name, self.holder, acquired, clock + seconds),
            )
        return None

    def _held_by_us(self) -> bool:
        if self.session is not None:
            # The server drops the lock with the connection: check it is alive.
            try:
                self.session.scalar("SELECT 1")
            except Exception as e:  # the connection is gone, and the lock with it
                self.session = None
                raise StoreError(f"lost the connection holding the runner lease ({e})") from e
            return True
        return self.fd is not None

    def _lock(self, db: Database) -> bool:
        if self.location.postgres:
            return self._advisory_lock(db)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise StoreError(
                f"cannot open the lock file {self.path} ({e.strerror}); the folder of "
                "DIGEST_DATABASE must be writable"
            ) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def _advisory_lock(self, db: Database) -> bool:
        from digest.store.db import open_postgres

        session = open_postgres(self.location)
        if not session.scalar("SELECT pg_try_advisory_lock(?)", (ADVISORY_KEY,)):
            session.close()
            return False
        self.session = session
        return True

    def release(self, db: Database | None) -> None:
        """Give the lease up at once: the row, then the lock."""
        if db is not None:
            db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (self.name, self.holder))
        if self.session is not None:
            # Unlocked first: the server notices a closed connection a moment later.
            with contextlib.suppress(Exception):
                self.session.execute("SELECT pg_advisory_unlock(?)", (ADVISORY_KEY,))
            with contextlib.suppress(Exception):
                self.session.close()
            self.session = None
        if self.fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                os.close(self.fd)
            self.fd = None


def lease(db: Database, name: str = RUNNER) -> Lease | None:
    row = db.one("SELECT holder, acquired_at, expires_at FROM leases WHERE name = ?", (name,))
    if row is None:
        return None
    return Lease(str(row["holder"]), str(row["acquired_at"]), float(row["expires_at"]))


def held(database: str | Path, db: Database) -> bool:
    """Whether a live process holds the lease now (status shows a dead one's row)."""
    if Location(str(database)).postgres:
        return bool(
            db.scalar(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND objid = ? AND database = (SELECT oid FROM pg_database"
                " WHERE datname = current_database())",
                (ADVISORY_KEY,),
            )
        )
    path = lock_path(database)
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def holder_name(role: str) -> str:
    """Who we are in the lease table: command, host and process."""
    return f"{role} on {socket.gethostname()} pid {os.getpid()}"


@contextlib.contextmanager
def exclusive(database: str | Path, db: Database, role: str) -> Iterator[None]:
    """The lease for a short job (cancelling an edition): refused, naming the
    holder, while a send or runner is up."""
    lock = RunnerLock(database, holder_name(role))
    other = lock.acquire(db, 60, time.time())
    if other is not None:
        raise LeaseHeld(
            f"{other.holder} is sending (since {other.acquired_at}); stop it first, "
            "then run this again"
        )
    try:
        yield
    finally:
        lock.release(db)
