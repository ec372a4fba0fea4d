"""Editions and their lifecycle: `built` (recorded with its articles, the
ledger not yet written), `sending` (a ledger row for every recipient),
`sent` (every row final), or `cancelled`.
"""

from __future__ import annotations

from dataclasses import dataclass

from digest.store.db import Database, Row, now

BUILT, SENDING, SENT, CANCELLED = "built", "sending", "sent", "cancelled"
STATES = (BUILT, SENDING, SENT, CANCELLED)
UNFINISHED_STATES = (BUILT, SENDING)


@dataclass(frozen=True)
class EditionRow:
    """What the store knows of an edition besides its body."""

    id: str
    number: int
    title: str
    state: str
    created_at: str
    updated_at: str


def _row(r: Row) -> EditionRow:
    return EditionRow(
        str(r["id"]),
        int(r["number"]),
        str(r["title"]),
        str(r["state"]),
        str(r["created_at"]),
        str(r["updated_at"] or r["created_at"]),
    )


COLUMNS = "id, number, title, state, created_at, updated_at"


def record(db: Database, edition_id: str, number: int, title: str, body: str) -> None:
    """A new edition, `built`: recorded before anything of it is sent."""
    stamp = now()
    db.execute(
        "INSERT INTO editions (id, number, title, created_at, body, state, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (edition_id, number, title, stamp, body, BUILT, stamp),
    )


def replace_body(db: Database, edition_id: str, title: str, body: str) -> None:
    """An editor's changes to an edition nobody has been sent yet."""
    db.execute(
        "UPDATE editions SET title = ?, body = ?, updated_at = ? WHERE id = ? AND state = ?",
        (title, body, now(), edition_id, BUILT),
    )


def set_state(db: Database, edition_id: str, state: str) -> None:
    db.execute(
        "UPDATE editions SET state = ?, updated_at = ? WHERE id = ?", (state, now(), edition_id)
    )


def get(db: Database, edition_id: str) -> EditionRow | None:
    row = db.one(f"SELECT {COLUMNS} FROM editions WHERE id = ?", (edition_id,))
    return None if row is None else _row(row)


def body(db: Database, edition_id: str) -> str | None:
    row = db.one("SELECT body FROM editions WHERE id = ?", (edition_id,))
    return None if row is None else str(row["body"])


def next_number(db: Database) -> int:
    return int(db.scalar("SELECT COALESCE(MAX(number), 0) + 1 FROM editions"))


def free_id(db: Database, wanted: str) -> str:
    """`wanted`, or `wanted-2`, `-3`... when an edition of that minute exists."""
    candidate, n = wanted, 1
    while db.one("SELECT 1 FROM editions WHERE id = ?", (candidate,)) is not None:
        n += 1
        candidate = f"{wanted}-{n}"
    return candidate


def unfinished(db: Database, due_by: str | None = None) -> list[EditionRow]:
    """Editions a send must finish before anything new, oldest first: built
    ones, and sending ones with rows not yet tried and due by `due_by` (now,
    when not given). Deferred rows wait for their retry round instead, and
    rows of a later wave (local time) for their wave."""
    rows = db.all(
        f"SELECT {COLUMNS} FROM editions e WHERE e.state = ? OR (e.state = ? AND EXISTS"
        " (SELECT 1 FROM deliveries d WHERE d.edition_id = e.id"
        " AND d.status IN ('pending', 'sending') AND d.due_at <= ?)) ORDER BY e.number",
        (BUILT, SENDING, due_by or now()),
    )
    return [_row(r) for r in rows]


def recent(db: Database, limit: int = 10, offset: int = 0) -> list[EditionRow]:
    rows = db.all(
        f"SELECT {COLUMNS} FROM editions ORDER BY number DESC LIMIT ? OFFSET ?", (limit, offset)
    )
    return [_row(r) for r in rows]


def published(db: Database, limit: int, offset: int) -> list[EditionRow]:
    """Editions that went out (or are going out), newest first, for the archive."""
    rows = db.all(
        f"SELECT {COLUMNS} FROM editions WHERE state IN (?, ?)"
        " ORDER BY number DESC LIMIT ? OFFSET ?",
        (SENDING, SENT, limit, offset),
    )
    return [_row(r) for r in rows]


def published_count(db: Database) -> int:
    return int(db.scalar("SELECT COUNT(*) FROM editions WHERE state IN (?, ?)", (SENDING, SENT)))


def save_variant(db: Database, edition_id: str, variant: str, skeleton: str) -> None:
    """A compiled copy of the edition, kept so every sender sends the same bytes."""
    db.execute(
        "INSERT INTO edition_variants (edition_id, variant, skeleton) VALUES (?, ?, ?)"
        " ON CONFLICT (edition_id, variant) DO NOTHING",
        (edition_id, variant, skeleton),
    )


def variant(db: Database, edition_id: str, name: str) -> str | None:
    row = db.one(
        "SELECT skeleton FROM edition_variants WHERE edition_id = ? AND variant = ?",
        (edition_id, name),
    )
    return None if row is None else str(row["skeleton"])


def sending(db: Database) -> list[EditionRow]:
    """Editions going out, oldest first: what workers take rows from."""
    rows = db.all(f"SELECT {COLUMNS} FROM editions WHERE state = ? ORDER BY number", (SENDING,))
    return [_row(r) for r in rows]
