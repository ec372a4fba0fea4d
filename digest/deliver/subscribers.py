"""The subscriber list: a CSV file read as a stream and validated row by row,
then merged with what the database knows (unsubscribes, bounces, preferences).

Bad rows and repeated addresses are reported with their line number and
skipped; the rest go on. Memory stays flat whatever the list's length.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import TextIO
from zoneinfo import available_timezones

from email_validator import EmailNotValidError, validate_email

from digest.deliver import tokens
from digest.errors import SubscriberError
from digest.model import Subscriber
from digest.store import audience, signups
from digest.store.db import Database

STATUSES = ("active", "unsubscribed", "bounced")
REQUIRED = ("email",)
COLUMNS = ("email", "name", "sections", "status", "timezone", "consented_at")


@dataclass(frozen=True)
class RowError:
    """A row that could not be used, and why."""

    path: str
    line: int
    message: str
    duplicate_of: int = 0

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _open(path: Path) -> TextIO:
    try:
        # A stray non-UTF-8 byte must cost its row, not the whole list: keep
        # the bytes as surrogates and let `_row` report the row.
        return path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")
    except OSError as e:
        raise SubscriberError(
            f"cannot read the subscriber list {path} ({e.strerror}); check DIGEST_SUBSCRIBERS"
        ) from e


def read_subscribers(path: Path) -> Iterator[Subscriber | RowError]:
    """Yield each row as a Subscriber, or a RowError saying what is wrong."""
    with _open(path) as handle:
        reader = csv.DictReader(handle)
        try:
            fieldnames = [_column(name) for name in reader.fieldnames or []]
        except csv.Error as e:
            raise SubscriberError(f"{path}:1: unreadable CSV header ({e})") from e
        if not _is_text(fieldnames):
            raise SubscriberError(f"{path}:1: the header line is not UTF-8; save the list as UTF-8")
        reader.fieldnames = fieldnames
        missing = [c for c in REQUIRED if c not in fieldnames]
        if missing and _semicolons(fieldnames):
            raise SubscriberError(
                f"{path}:1: the header line looks ';'-separated ({';'.join(fieldnames)!r}); "
                "the list must be comma-separated: export it from your spreadsheet as CSV "
                "with commas"
            )
        if missing:
            raise SubscriberError(f"{path}: no '{missing[0]}' column in the header line")
        extra = tuple(name for name in fieldnames if name and name not in COLUMNS)
        try:
            for row in reader:
                yield _row(row, path, reader.line_num, extra)
        except csv.Error as e:
            raise SubscriberError(f"{path}:{reader.line_num}: unreadable CSV ({e})") from e


def _semicolons(fieldnames: list[str]) -> bool:
    """A header such as 'email;name;sections' read as one comma-separated column."""
    return any(";" in name and "email" in name.lower().split(";") for name in fieldnames)


def _column(name: str) -> str:
    """Header names as written, except that the known columns match in any case
    ("Email" is `email`), as spreadsheets and other tools write them."""
    name = name.strip()
    return name.lower() if name.lower() in COLUMNS else name


def _is_text(values: Iterable[object]) -> bool:
    """False when a value holds bytes that were not UTF-8 (see `_open`)."""
    try:
        "".join(v for v in values if isinstance(v, str)).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _row(
    row: dict[str, str | None], path: Path, line: int, extra: tuple[str, ...]
) -> Subscriber | RowError:
    if not _is_text(row.values()):
        return RowError(str(path), line, "not UTF-8 text; save the list as UTF-8")
    raw = (row.get("email") or "").strip()
    try:
        address = validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as e:
        return RowError(str(path), line, f"invalid address {raw!r}: {e}")
    status = (row.get("status") or "active").strip().lower()
    if status not in STATUSES:
        return RowError(str(path), line, f"status {status!r} is not one of {', '.join(STATUSES)}")
    zone = (row.get("timezone") or "").strip()
    if zone and zone not in _zones():
        return RowError(
            str(path), line, f"timezone {zone!r} is not an IANA zone such as Europe/Berlin"
        )
    return Subscriber(
        email=address,
        name=(row.get("name") or "").strip(),
        sections=split_sections(row.get("sections") or ""),
        status=status,
        line=line,
        timezone=zone,
        extra=tuple((name, (row.get(name) or "").strip()) for name in extra),
        consented_at=(row.get("consented_at") or "").strip(),
    )


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def split_sections(value: str) -> frozenset[str]:
    return frozenset(s.strip() for s in value.split(";") if s.strip())


class Seen:
    """Addresses already read and the line each was first on, kept in a private
    temporary SQLite database (on disk, small page cache) rather than a Python
    set, so a million-row list costs a few megabytes of memory, not hundreds."""

    def __init__(self) -> None:
        # An empty file name is SQLite's private temporary database, deleted on close.
        self.db = sqlite3.connect("", isolation_level=None)
        self.db.execute("PRAGMA cache_size = -8000")
        self.db.execute(
            "CREATE TABLE seen (email TEXT PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID"
        )
        # One transaction for the whole pass: nothing here needs to survive a crash.
        self.db.execute("BEGIN")

    def first_line(self, email: str, line: int) -> int:
        """0 when the address is new (and now recorded), else the line it was first on."""
        key = email.lower()
        cursor = self.db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (key, line))
        if cursor.rowcount == 1:
            return 0
        return int(self.db.execute("SELECT line FROM seen WHERE email = ?", (key,)).fetchone()[0])

    def close(self) -> None:
        self.db.close()


def unique(
    items: Iterable[Subscriber | RowError], path: Path, seen: Seen | None = None
) -> Iterator[Subscriber | RowError]:
    """Pass rows through, turning a repeated address (any case) into a RowError:
    the first row with an address wins. A caller's `seen` outlives the pass
    (and is the caller's to close), to ask afterwards who was on the list."""
    own = seen is None
    seen = seen or Seen()
    try:
        for item in items:
            if isinstance(item, Subscriber):
                first = seen.first_line(item.email, item.line)
                if first:
                    message = f"duplicate of line {first} ({item.email}); the first row wins"
                    item = RowError(str(path), item.line, message, duplicate_of=first)
            yield item
    finally:
        if own:
            seen.close()


def unique_subscribers(path: Path) -> Iterator[Subscriber | RowError]:
    """Every row of the list, validated, with repeated addresses as errors."""
    return unique(read_subscribers(path), path)


def active_subscribers(path: Path, errors: list[RowError]) -> Iterator[Subscriber]:
    """Active subscribers only; row errors are appended to `errors` as found."""
    for item in unique_subscribers(path):
        if isinstance(item, RowError):
            errors.append(item)
        elif item.active:
            yield item


def with_database_state(db: Database, items: Iterable[Subscriber]) -> Iterator[Subscriber]:
    """Subscribers with status and sections as the database has them now
    (unsubscribes and bounces there beat the CSV; sections chosen on the
    preferences page replace the CSV's), looked up 500 at a time."""
    for batch in batches(items, 500):
        keys = [sub.email.lower() for sub in batch]
        reasons = audience.suppressed_among(db, keys)
        chosen = audience.preferences_among(db, keys)
        for sub, key in zip(batch, keys, strict=True):
            yield current(sub, reasons.get(key), chosen.get(key))


def current(sub: Subscriber, reason: str | None, chosen: frozenset[str] | None) -> Subscriber:
    """One subscriber with a suppression reason and preferred sections applied."""
    if reason is not None:
        sub = replace(sub, status="bounced" if reason.startswith("bounced") else "unsubscribed")
    return sub if chosen is None else replace(sub, sections=chosen)


def batches(items: Iterable[Subscriber], size: int) -> Iterator[list[Subscriber]]:
    batch: list[Subscriber] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def find(path: Path, email: str) -> Subscriber | None:
    """One subscriber's row (the first with that address), or None. A streamed
    scan: used by the preferences page only when the database has no answer."""
    wanted = email.lower()
    with _open(path) as handle:
        reader = csv.reader(handle)
        header = [_column(name) for name in next(reader, [])]
        if "email" not in header:
            return None
        column = header.index("email")
        for row in reader:
            # A cheap test on the raw cell first; full validation only for a hit.
            if len(row) > column and row[column].strip().lower() == wanted:
                found = _row(dict(zip(header, row, strict=False)), path, reader.line_num, ())
                return found if isinstance(found, Subscriber) else None
    return None


@dataclass
class CheckSummary:
    """What `digest subscribers check` found in a list."""

    rows: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    bad: int = 0
    duplicates: int = 0
    unknown_sections: int = 0

    @property
    def ok(self) -> bool:
        return not (self.bad or self.duplicates or self.unknown_sections)


def check(
    path: Path, on_problem: Callable[[RowError], None], known: frozenset[str] = frozenset()
) -> CheckSummary:
    """Validate a list (syntax only, no DNS), reporting each problem as found.
    With `known` section keys, a row naming others is reported too: a typo
    there silently means "every section" at send time."""
    summary = CheckSummary()
    for item in unique_subscribers(path):
        summary.rows += 1
        if isinstance(item, RowError):
            if item.duplicate_of:
                summary.duplicates += 1
            else:
                summary.bad += 1
            on_problem(item)
            continue
        summary.statuses[item.status] = summary.statuses.get(item.status, 0) + 1
        unknown = sorted(item.sections - known) if known else []
        if unknown:
            summary.unknown_sections += 1
            names = ", ".join(repr(s) for s in unknown)
            message = f"unknown section(s) {names}; known: {', '.join(sorted(known))}"
            on_problem(RowError(str(path), item.line, message))
    return summary


def zones_named(path: Path) -> set[str]:
    """The valid time zones in the list's `timezone` column: a raw streamed
    scan of that column alone (no address checks), for planning local-time
    slots. An unreadable list names none."""
    try:
        with _open(path) as handle:
            reader = csv.reader(handle)
            header = [_column(name) for name in next(reader, [])]
            if "timezone" not in header:
                return set()
            column = header.index("timezone")
            found = {row[column].strip() for row in reader if len(row) > column}
    except (SubscriberError, csv.Error, UnicodeError):
        return set()
    return found & _zones()


def header_of(path: Path) -> list[str]:
    with _open(path) as handle:
        return [_column(name) for name in next(csv.reader(handle), [])]


def export(
    path: Path,
    db: Database,
    out: TextIO,
    on_problem: Callable[[RowError], None],
    rows: Iterable[Subscriber] | None = None,
) -> int:
    """Write the list with current statuses and sections to `out`, keeping every
    column; bad and repeated rows are reported and left out. `rows` is the list
    to write (the CSV's own rows by default; the send's list has sign-ups too).
    Returns rows written."""
    columns = header_of(path)
    wanted = ["name", "sections", "status"]
    if signups.count(db, signups.CONFIRMED):
        wanted += ["timezone", "consented_at"]
    columns += [c for c in wanted if c not in columns]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    written = 0
    for sub in with_database_state(db, _good_rows(path, on_problem) if rows is None else rows):
        values = {
            "email": sub.email,
            "name": sub.name,
            "sections": ";".join(sorted(sub.sections)),
            "status": sub.status,
            "timezone": sub.timezone,
            "consented_at": sub.consented_at,
            **dict(sub.extra),
        }
        writer.writerow([values.get(column, "") for column in columns])
        written += 1
    return written


def _good_rows(path: Path, on_problem: Callable[[RowError], None]) -> Iterator[Subscriber]:
    for item in unique_subscribers(path):
        if isinstance(item, RowError):
            on_problem(item)
        else:
            yield item


def export_to(
    path: Path,
    db: Database,
    out: Path,
    on_problem: Callable[[RowError], None],
    rows: Iterable[Subscriber] | None = None,
) -> int:
    """`export` into a file that is replaced only once complete."""
    partial = out.with_name(out.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            count = export(path, db, handle, on_problem, rows)
        partial.replace(out)
    except OSError as e:
        raise SubscriberError(f"cannot write {out} ({e.strerror}); check the --out path") from e
    return count


def unsubscribe(db: Database, secret: bytes, list_name: str, items: Iterable[str]) -> list[str]:
    """Suppress each address (or the address in an unsubscribe token)."""
    done = []
    for item in items:
        email = tokens.verify(secret, list_name, item.strip()) or _address(item)
        audience.suppress(db, email, "unsubscribed: by hand")
        done.append(email.lower())
    return done


def _address(item: str) -> str:
    try:
        return str(validate_email(item.strip(), check_deliverability=False).normalized)
    except EmailNotValidError as e:
        raise SubscriberError(
            f"{item!r} is neither an address nor a valid unsubscribe token: {e}"
        ) from e
