"""The subscriber list: a CSV file read as a stream and validated row by row,
then merged with what the database knows (unsubscribes, bounces, preferences).

Bad rows (see `csvrows`) and repeated addresses are reported with their line
number and skipped; the rest go on. Memory stays flat whatever the length.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TypeVar
from zoneinfo import available_timezones

from digest.deliver import addresses, tokens
from digest.deliver.addresses import EmailNotValidError
from digest.deliver.csvrows import Record, open_list, records
from digest.deliver.csvrows import RowError as RowError  # re-exported: callers know it from here
from digest.errors import SubscriberError
from digest.model import Subscriber
from digest.store import audience
from digest.store.db import Database

T = TypeVar("T")
STATUSES = ("active", "unsubscribed", "bounced")
REQUIRED = ("email",)
COLUMNS = ("email", "name", "sections", "status", "timezone", "consented_at")


def read_subscribers(path: Path) -> Iterator[Subscriber | RowError]:
    """Yield each row as a Subscriber, or a RowError saying what is wrong."""
    with open_list(path) as handle:
        rows = records(handle, path)
        columns = Columns(parse_header(next(rows, None), path))
        for item in rows:
            yield item if isinstance(item, RowError) else parse_row(item[1], columns, path, item[0])


def parse_header(first: Record | RowError | None, path: Path) -> list[str]:
    """The header line's column names, checked; a SubscriberError if unusable."""
    if isinstance(first, RowError):
        raise SubscriberError(f"{path}:1: unreadable header line ({first.message})")
    fieldnames = [_column(name) for name in (first[1] if first else [])]
    _check_header(path, fieldnames)
    return fieldnames


def _check_header(path: Path, fieldnames: list[str]) -> None:
    if not _is_text(fieldnames):
        raise SubscriberError(f"{path}:1: the header line is not UTF-8; save the list as UTF-8")
    missing = [c for c in REQUIRED if c not in fieldnames]
    if missing and _semicolons(fieldnames):
        raise SubscriberError(
            f"{path}:1: the header line looks ';'-separated ({';'.join(fieldnames)!r}); "
            "the list must be comma-separated: export it from your spreadsheet as CSV "
            "with commas"
        )
    if missing:
        raise SubscriberError(f"{path}: no '{missing[0]}' column in the header line")


class Columns:
    """Where each known column is in a row, and the further ones."""

    def __init__(self, fieldnames: list[str]) -> None:
        first: dict[str, int] = {}
        for i, name in enumerate(fieldnames):
            first.setdefault(name, i)  # a repeated column: the first one counts
        absent = len(fieldnames)  # the empty cell `_row` puts after each row's own
        self.email, self.name, self.sections, self.status, self.timezone, self.consented_at = (
            first.get(c, absent) for c in COLUMNS
        )
        self.extra = tuple((name, i) for name, i in first.items() if name and name not in COLUMNS)
        self.width = len(fieldnames)


def _semicolons(fieldnames: list[str]) -> bool:
    """A header such as 'email;name;sections' read as one comma-separated column."""
    return any(";" in name and "email" in name.lower().split(";") for name in fieldnames)


def _column(name: str) -> str:
    """Header names as written, except that the known columns match in any case
    ("Email" is `email`), as spreadsheets and other tools write them."""
    name = name.strip()
    return name.lower() if name.lower() in COLUMNS else name


def _is_text(values: Iterable[object]) -> bool:
    """False when a value holds bytes that were not UTF-8 (see `open_list`)."""
    try:
        "".join(v for v in values if isinstance(v, str)).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_row(values: list[str], at: Columns, path: Path, line: int) -> Subscriber | RowError:
    if not "".join(values).isascii() and not _is_text(values):
        return RowError(str(path), line, "not UTF-8 text; save the list as UTF-8")
    # A short row's missing cells are empty, and so is the cell at `at.width`
    # (where the columns the header lacks point).
    cells = values if len(values) == at.width else (values + [""] * at.width)[: at.width]
    cells.append("")
    raw = cells[at.email].strip()
    try:
        address = addresses.plain(raw) or addresses.normalized(raw)
    except EmailNotValidError as e:
        return RowError(str(path), line, f"invalid address {raw!r}: {e}")
    status = cells[at.status] or "active"
    if status not in STATUSES:  # as written most often; else trimmed and in lower case
        status = status.strip().lower() or "active"
        if status not in STATUSES:
            message = f"status {status!r} is not one of {', '.join(STATUSES)}"
            return RowError(str(path), line, message)
    zone = cells[at.timezone].strip()
    if zone and zone not in _zones():
        return RowError(
            str(path), line, f"timezone {zone!r} is not an IANA zone such as Europe/Berlin"
        )
    sections = cells[at.sections]
    return Subscriber(
        address,
        cells[at.name].strip(),
        split_sections(sections) if sections.strip() else NO_SECTIONS,
        status,
        line,
        zone,
        tuple([(name, cells[i].strip()) for name, i in at.extra]) if at.extra else (),
        cells[at.consented_at].strip(),
    )


NO_SECTIONS: frozenset[str] = frozenset()


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

    def first_lines(self, batch: list[tuple[str, int]]) -> list[int]:
        """For each (address, line): 0 when the address is new (now recorded),
        else the line it was first on. Two statements for the whole batch:
        the look-up returns only repeats (rare), the insert only new ones."""
        keys = [(email.lower(), line) for email, line in batch]
        marks = ", ".join("?" * len(keys))
        found = dict(
            self.db.execute(
                f"SELECT email, line FROM seen WHERE email IN ({marks})", [k for k, _ in keys]
            )
        )
        answers: list[int] = []
        new: dict[str, int] = {}
        for key, line in keys:
            if key in found or key in new:
                answers.append(found[key] if key in found else new[key])
            else:
                new[key] = line
                answers.append(0)
        if new:
            values = ", ".join("(?, ?)" for _ in new)
            self.db.execute(
                f"INSERT INTO seen VALUES {values}", [v for pair in new.items() for v in pair]
            )
        return answers

    def close(self) -> None:
        self.db.close()


def unique(
    items: Iterable[Subscriber | RowError], path: Path, seen: Seen | None = None
) -> Iterator[Subscriber | RowError]:
    """Pass rows through, turning a repeated address (any case) into a RowError:
    the first row with an address wins (looked up 500 rows at a time). A
    caller's `seen` outlives the pass (and is the caller's to close), to ask
    afterwards who was on the list."""
    own = seen is None
    seen = seen or Seen()
    try:
        for batch in batches(items, 500):
            yield from unique_among(batch, path, seen)
    finally:
        if own:
            seen.close()


def unique_among(
    batch: list[Subscriber | RowError], path: Path, seen: Seen
) -> list[Subscriber | RowError]:
    """`unique` for one batch of rows (of any length, looked up 500 at a time)."""
    out: list[Subscriber | RowError] = []
    for part in batches(batch, 500):
        rows = [(i.email, i.line) for i in part if isinstance(i, Subscriber)]
        firsts = iter(seen.first_lines(rows) if rows else [])
        for item in part:
            first = next(firsts) if isinstance(item, Subscriber) else 0
            if first and isinstance(item, Subscriber):
                message = f"duplicate of line {first} ({item.email}); the first row wins"
                item = RowError(str(path), item.line, message, duplicate_of=first)
            out.append(item)
    return out


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
        reasons, chosen = audience.states_among(db, keys)
        for sub, key in zip(batch, keys, strict=True):
            yield current(sub, reasons.get(key), chosen.get(key))


def current(sub: Subscriber, reason: str | None, chosen: frozenset[str] | None) -> Subscriber:
    """One subscriber with a suppression reason and preferred sections applied."""
    if reason is not None:
        sub = sub._replace(status="bounced" if reason.startswith("bounced") else "unsubscribed")
    return sub if chosen is None else sub._replace(sections=chosen)


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last may be shorter)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


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
        with open_list(path) as handle:
            rows = records(handle, path)
            header = parse_header(next(rows, None), path)
            if "timezone" not in header:
                return set()
            column = header.index("timezone")
            found = {
                item[1][column].strip()
                for item in rows
                if not isinstance(item, RowError) and len(item[1]) > column
            }
    except (SubscriberError, UnicodeError):
        return set()
    return found & _zones()


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
        return addresses.normalized(item.strip())
    except EmailNotValidError as e:
        raise SubscriberError(
            f"{item!r} is neither an address nor a valid unsubscribe token: {e}"
        ) from e
