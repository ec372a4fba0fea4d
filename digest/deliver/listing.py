"""The whole list, as every send reads it: the CSV's rows, validated, with
what confirmed sign-ups say about them (the database wins), then each
confirmed sign-up the CSV does not hold. Streamed, a batch a look-up, so
memory stays flat whatever the length of either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path

from digest.deliver.subscribers import RowError, Seen, batches, read_subscribers, unique_among
from digest.model import Subscriber
from digest.store import signups
from digest.store.db import Database


def everyone(
    path: Path, db: Database, on_problem: Callable[[RowError], None]
) -> Iterator[Subscriber]:
    """Every valid reader (any status): the CSV's first, then sign-ups that
    are only in the database. Bad CSV rows go to `on_problem` as found."""
    return chain.from_iterable(everyone_by_batch(path, db, on_problem))


def everyone_by_batch(
    path: Path, db: Database, on_problem: Callable[[RowError], None]
) -> Iterator[list[Subscriber]]:
    """`everyone`, a batch (a look-up's worth) at a time: for the fan-out,
    whose every step then works on a list rather than passing a million
    readers one by one through each."""
    seen = Seen()
    try:
        for batch in batches(read_subscribers(path), db.batch):
            valid = []
            for item in unique_among(batch, path, seen):
                if isinstance(item, RowError):
                    on_problem(item)
                else:
                    valid.append(item)
            yield _with_signups(db, valid)
        after = ""
        while rows := signups.confirmed_after(db, after):
            after = rows[-1].email
            # A sign-up of an address the CSV holds was merged into its row.
            firsts = seen.first_lines([(row.email, 0) for row in rows])
            yield [from_signup(row) for row, first in zip(rows, firsts, strict=True) if not first]
    finally:
        seen.close()


def _with_signups(db: Database, batch: list[Subscriber]) -> list[Subscriber]:
    confirmed = signups.confirmed_among(db, [sub.email.lower() for sub in batch])
    if not confirmed:
        return batch
    return [
        sub if (row := confirmed.get(sub.email.lower())) is None else merged(sub, row)
        for sub in batch
    ]


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
