"""The whole list, as every send reads it: the CSV's rows, validated, with
what confirmed sign-ups say about them (the database wins), then each
confirmed sign-up the CSV does not hold. Streamed, a batch a look-up, so
memory stays flat whatever the length of either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from digest.deliver.subscribers import RowError, Seen, batches, read_subscribers, unique
from digest.model import Subscriber
from digest.store import signups
from digest.store.db import Database


def everyone(
    path: Path, db: Database, on_problem: Callable[[RowError], None]
) -> Iterator[Subscriber]:
    """Every valid reader (any status): the CSV's first, then sign-ups that
    are only in the database. Bad CSV rows go to `on_problem` as found."""
    seen = Seen()
    try:
        yield from _listed(path, db, on_problem, seen)
        after = ""
        while rows := signups.confirmed_after(db, after):
            after = rows[-1].email
            for row in rows:
                # A sign-up of an address the CSV holds was merged into its row.
                if not seen.first_line(row.email, 0):
                    yield from_signup(row)
    finally:
        seen.close()


def _listed(
    path: Path, db: Database, on_problem: Callable[[RowError], None], seen: Seen
) -> Iterator[Subscriber]:
    def valid() -> Iterator[Subscriber]:
        for item in unique(read_subscribers(path), path, seen):
            if isinstance(item, RowError):
                on_problem(item)
            else:
                yield item

    for batch in batches(valid(), db.batch):
        confirmed = signups.confirmed_among(db, [sub.email.lower() for sub in batch])
        for sub in batch:
            row = confirmed.get(sub.email.lower())
            yield sub if row is None else merged(sub, row)


def merged(sub: Subscriber, row: signups.SignupRow) -> Subscriber:
    """A CSV row whose reader also confirmed a sign-up: subscribed (a later
    unsubscribe lives in the suppressions, which still win), with the name and
    time zone they gave. Their sections were saved as their preferences."""
    return sub._replace(
        status="active",
        name=row.name or sub.name,
        timezone=row.timezone or sub.timezone,
        consented_at=row.confirmed_at,
    )


def from_signup(row: signups.SignupRow) -> Subscriber:
    return Subscriber(
        email=row.address,
        name=row.name,
        sections=row.sections,
        status="active",
        timezone=row.timezone,
        consented_at=row.confirmed_at,
    )
