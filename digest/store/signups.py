"""Readers who signed up on the web: `pending` until they confirm the link
we mail them (double opt-in), then `confirmed` with the time of consent.
Only confirmed sign-ups are on the list; the database beats the CSV.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from digest.store.db import Database, Row, chunks, now

PENDING, CONFIRMED = "pending", "confirmed"
COLUMNS = "email, address, name, sections, timezone, status, requested_at, confirmed_at"


@dataclass(frozen=True)
class SignupRow:
    """One sign-up as the database has it."""

    email: str  # the key: the address in lower case
    address: str  # as typed (normalised)
    name: str
    sections: frozenset[str]  # empty: every section
    timezone: str
    status: str
    requested_at: str
    confirmed_at: str  # empty until confirmed: the time of consent


def _row(r: Row) -> SignupRow:
    return SignupRow(
        str(r["email"]),
        str(r["address"]),
        str(r["name"]),
        frozenset(s for s in str(r["sections"]).split(";") if s),
        str(r["timezone"]),
        str(r["status"]),
        str(r["requested_at"]),
        str(r["confirmed_at"] or ""),
    )


def get(db: Database, email: str) -> SignupRow | None:
    row = db.one(f"SELECT {COLUMNS} FROM signups WHERE email = ?", (email.lower(),))
    return None if row is None else _row(row)


def request(
    db: Database, address: str, name: str, sections: Iterable[str], timezone: str, stamp: str
) -> None:
    """A sign-up asked for: a new `pending` row, or the newest request's
    details on the row there (a confirmed reader stays confirmed until the
    new link is used; the link carries `stamp`)."""
    db.execute(
        "INSERT INTO signups (email, address, name, sections, timezone, status, requested_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (email) DO UPDATE SET"
        " address = excluded.address, name = excluded.name, sections = excluded.sections,"
        " timezone = excluded.timezone, requested_at = excluded.requested_at,"
        " updated_at = excluded.updated_at",
        (
            address.lower(),
            address,
            name,
            ";".join(sorted(set(sections))),
            timezone,
            PENDING,
            stamp,
            stamp,
        ),
    )


def confirm(db: Database, email: str, requested_at: str) -> bool:
    """Confirm the request made at `requested_at`; False when a newer request
    replaced it (its link is the one to use) or nothing is there."""
    stamp = now()
    cursor = db.execute(
        "UPDATE signups SET status = ?, confirmed_at = ?, updated_at = ?"
        " WHERE email = ? AND requested_at = ?",
        (CONFIRMED, stamp, stamp, email.lower(), requested_at),
    )
    return int(cursor.rowcount) > 0


def confirmed_among(db: Database, emails: Sequence[str]) -> dict[str, SignupRow]:
    """The confirmed sign-ups among these (lower-case) addresses."""
    found: dict[str, SignupRow] = {}
    for chunk in chunks(list(emails), db.batch):
        where, params = db.where_in("email", chunk)
        rows = db.all(
            f"SELECT {COLUMNS} FROM signups WHERE status = ? AND {where}", (CONFIRMED, *params)
        )
        found.update({str(r["email"]): _row(r) for r in rows})
    return found


def confirmed_after(db: Database, after: str, limit: int = 500) -> list[SignupRow]:
    """The next confirmed sign-ups in address order (keyset paging)."""
    rows = db.all(
        f"SELECT {COLUMNS} FROM signups WHERE status = ? AND email > ? ORDER BY email LIMIT ?",
        (CONFIRMED, after, limit),
    )
    return [_row(r) for r in rows]


def count(db: Database, status: str) -> int:
    return int(db.scalar("SELECT COUNT(*) FROM signups WHERE status = ?", (status,)))


def zones(db: Database) -> set[str]:
    """The time zones confirmed sign-ups gave."""
    rows = db.all(
        "SELECT DISTINCT timezone FROM signups WHERE status = ? AND timezone <> ''", (CONFIRMED,)
    )
    return {str(r["timezone"]) for r in rows}
