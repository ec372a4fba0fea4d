"""`digest subscribers export`: the list written back with what the database
knows (statuses, chosen sections, confirmed sign-ups), every column kept,
into a file replaced only once complete.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TextIO

from digest.deliver.csvrows import guard, open_list, records
from digest.deliver.subscribers import (
    RowError,
    parse_header,
    unique_subscribers,
    with_database_state,
)
from digest.errors import SubscriberError
from digest.model import Subscriber
from digest.store import signups
from digest.store.db import Database


def header_of(path: Path) -> list[str]:
    with open_list(path) as handle:
        return parse_header(next(records(handle, path), None), path)


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
    writer.writerow([guard(column) for column in columns])
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
        writer.writerow([guard(values.get(column, "")) for column in columns])
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
