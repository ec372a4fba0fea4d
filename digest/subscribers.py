"""The subscriber list: a CSV file read as a stream and validated row by row.

Bad rows are reported with their line number and skipped; the rest go on.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from digest.errors import SubscriberError
from digest.model import Subscriber

STATUSES = ("active", "unsubscribed", "bounced")
REQUIRED = ("email",)


@dataclass(frozen=True)
class RowError:
    """A row that could not be used, and why."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def read_subscribers(path: Path) -> Iterator[Subscriber | RowError]:
    """Yield each row as a Subscriber, or a RowError saying what is wrong."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as e:
        raise SubscriberError(
            f"cannot read the subscriber list {path} ({e.strerror}); check DIGEST_SUBSCRIBERS"
        ) from e
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise SubscriberError(f"{path}: no '{missing[0]}' column in the header line")
        try:
            for row in reader:
                yield _row(row, path, reader.line_num)
        except (csv.Error, UnicodeDecodeError) as e:
            raise SubscriberError(f"{path}:{reader.line_num}: unreadable CSV ({e})") from e


def _row(row: dict[str, str | None], path: Path, line: int) -> Subscriber | RowError:
    raw = (row.get("email") or "").strip()
    try:
        address = validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as e:
        return RowError(str(path), line, f"invalid address {raw!r}: {e}")
    status = (row.get("status") or "active").strip().lower()
    if status not in STATUSES:
        return RowError(str(path), line, f"status {status!r} is not one of {', '.join(STATUSES)}")
    sections = frozenset(s.strip() for s in (row.get("sections") or "").split(";") if s.strip())
    return Subscriber(address, (row.get("name") or "").strip(), sections, status, line)


def active_subscribers(path: Path, errors: list[RowError]) -> Iterator[Subscriber]:
    """Active subscribers only; row errors are appended to `errors` as found."""
    for item in read_subscribers(path):
        if isinstance(item, RowError):
            errors.append(item)
        elif item.active:
            yield item
