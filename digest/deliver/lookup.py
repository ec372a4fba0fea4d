"""Looking up subscribers of the list by address: one streamed scan for a
single look-up (a test copy), and an index that the preferences page asks
without scanning the list per request.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from digest.deliver.csvrows import RowError, open_list, records
from digest.deliver.subscribers import Columns, parse_header, parse_row, split_sections
from digest.errors import SubscriberError
from digest.model import Subscriber


def find(path: Path, email: str) -> Subscriber | None:
    """One subscriber's row (the first with that address), or None. A streamed
    scan, for one look-up (a test copy); `SectionsIndex` serves many."""
    wanted = email.lower()
    with open_list(path) as handle:
        rows = records(handle, path)
        columns = Columns(parse_header(next(rows, None), path))
        for item in rows:
            if isinstance(item, RowError):
                continue
            line, cells = item
            # A cheap test on the raw cell first; full validation only for a hit.
            cell = cells[columns.email] if len(cells) > columns.email else ""
            if cell.strip().lower() == wanted:
                found = parse_row(cells, columns, path, line)
                return found if isinstance(found, Subscriber) else None
    return None


class SectionsIndex:
    """The list's sections per address, for the preferences page: read into a
    private temporary SQLite table (on disk, small cache) once, and again only
    when the file changes, so no request scans the list."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.stamp: tuple[int, int, int] | None = None
        self.db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA cache_size = -2000")
        self.db.execute("CREATE TABLE listed (email TEXT PRIMARY KEY, sections TEXT) WITHOUT ROWID")

    def sections_of(self, email: str) -> frozenset[str] | None:
        """The sections cell of the first row with this address (validated
        or not, as `find` reads it); None when not on the list or unreadable."""
        try:
            info = self.path.stat()
        except OSError:
            return None
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        with self.lock:
            if stamp != self.stamp:
                self._load()
                self.stamp = stamp
            row = self.db.execute(
                "SELECT sections FROM listed WHERE email = ?", (email.lower(),)
            ).fetchone()
        return None if row is None else split_sections(str(row[0]))

    def _load(self) -> None:
        self.db.execute("BEGIN")
        self.db.execute("DELETE FROM listed")
        try:
            with open_list(self.path) as handle:
                rows = records(handle, self.path)
                header = parse_header(next(rows, None), self.path)
                email = header.index("email")
                sections = header.index("sections") if "sections" in header else -1
                for item in rows:
                    if isinstance(item, RowError):
                        continue
                    cells = item[1]
                    if len(cells) > email:
                        chosen = cells[sections] if 0 <= sections < len(cells) else ""
                        self.db.execute(
                            "INSERT OR IGNORE INTO listed VALUES (?, ?)",
                            (_key(cells[email]), chosen),
                        )
        except SubscriberError:
            pass  # an unreadable list offers no sections
        finally:
            self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


def _key(cell: str) -> str:
    """The address a token names, for a raw cell: normalised, in lower case."""
    raw = cell.strip()
    if not raw.isascii():
        with contextlib.suppress(EmailNotValidError):
            raw = validate_email(raw, check_deliverability=False).normalized
    return raw.lower()
