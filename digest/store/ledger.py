"""The delivery ledger: one row per (edition, subscriber), written for every
recipient before the first message goes out and updated with the server's
answer. Every statement that touches the ledger lives here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from digest.model import Delivery, LedgerEntry
from digest.store.db import Database, PostgresDatabase, Row, claimable, copy_lines, marks, now

PENDING, SENDING, SENT, DEFERRED = "pending", "sending", "sent", "deferred"
BOUNCED, FAILED, SUPPRESSED, CANCELLED = "bounced", "failed", "suppressed", "cancelled"
# Final for the edition: nothing more will be tried for that row.
FINAL_STATES = (SENT, BOUNCED, FAILED, SUPPRESSED, CANCELLED)
OPEN_STATES = (PENDING, SENDING, DEFERRED)

UPSERT = (
    " ON CONFLICT (edition_id, email) DO UPDATE SET address = excluded.address,"
    " name = excluded.name, fields = excluded.fields, variant = excluded.variant,"
    " line = excluded.line, due_at = excluded.due_at"
    " WHERE deliveries.status IN ('pending', 'deferred')"
)
COLUMNS = (
    "edition_id, email, status, message_id, updated_at, created_at, address, name, fields,"
    " variant, line, due_at"
)


def add(db: Database, edition_id: str, entries: Sequence[LedgerEntry], fresh: bool = False) -> None:
    """Write pending rows; a row already there keeps its state and Message-ID,
    and takes the newer copy details only while nothing final is recorded."""
    if isinstance(db, PostgresDatabase):
        add_text(db, copy_text(edition_id, entries), fresh)
        return
    db.executemany(
        f"INSERT INTO deliveries ({COLUMNS}) VALUES ({marks(12)}){UPSERT}",
        _rows(edition_id, entries),
    )


def copy_text(edition_id: str, entries: Sequence[LedgerEntry]) -> str:
    """Pending rows in COPY's text format, for `add_text`."""
    return copy_lines(_rows(edition_id, entries), 12)


def add_text(db: PostgresDatabase, text: str, fresh: bool) -> None:
    """`add` by COPY (a million rows in seconds): straight into the ledger
    when it is `fresh` (the edition has no row yet), else into a temporary
    table and from there by one upsert."""
    columns = [c.strip() for c in COLUMNS.split(",")]
    if fresh:
        db.copy_text("deliveries", columns, text)
        return
    db.execute(
        "CREATE TEMP TABLE IF NOT EXISTS ledger_in (LIKE deliveries INCLUDING DEFAULTS)"
        " ON COMMIT DELETE ROWS"
    )
    with db.transaction():
        db.copy_text("ledger_in", columns, text)
        db.execute(f"INSERT INTO deliveries ({COLUMNS}) SELECT {COLUMNS} FROM ledger_in{UPSERT}")


def _rows(edition_id: str, entries: Sequence[LedgerEntry]) -> list[tuple[str, ...]]:
    stamp, dump = now(), json.dumps
    return [
        (edition_id, email, PENDING, message_id, stamp, stamp, address, name,
         dump(fields, ensure_ascii=False) if fields else "", variant, str(line), due_at)
        for email, address, name, fields, variant, message_id, line, due_at in entries
    ]  # fmt: skip


def _delivery(r: Row) -> Delivery:
    fields = r["fields"]
    return Delivery(
        str(r["email"]),
        str(r["address"] or r["email"]),
        str(r["name"]),
        tuple((str(k), str(v)) for k, v in json.loads(fields)) if fields else (),
        str(r["variant"]),
        str(r["message_id"]),
        int(r["line"]),
        int(r["attempts"]),
        str(r["status"]),
    )


def claim(
    db: Database,
    edition_id: str,
    statuses: Sequence[str],
    worker: str,
    limit: int = 500,
    tried_before: str | None = None,
    due_by: str | None = None,
) -> list[Delivery]:
    """Take up to `limit` rows in `statuses` (last tried before `tried_before`,
    due by `due_by`) for `worker`, marking them `sending` in one statement.
    With PostgreSQL, rows another worker holds are skipped (FOR UPDATE SKIP
    LOCKED), so any number of senders share an edition and no row goes to
    two of them."""
    before = "" if tried_before is None else " AND updated_at <= ?"
    before += "" if due_by is None else " AND due_at <= ?"
    filters = [t for t in (tried_before, due_by) if t is not None]
    chosen = (
        "SELECT email FROM deliveries WHERE edition_id = ?"
        f" AND status IN ({marks(len(statuses))}){before} ORDER BY email LIMIT ?"
    )
    rows = db.all(
        f"WITH chosen AS {claimable(db, chosen)} UPDATE deliveries SET status = ?, worker = ?,"
        " updated_at = ? WHERE edition_id = ? AND email IN (SELECT email FROM chosen)"
        " RETURNING email, address, name, fields, variant, message_id, line, attempts, status",
        (edition_id, *statuses, *filters, limit, SENDING, worker, now(), edition_id),
    )
    return sorted((_delivery(r) for r in rows), key=lambda d: d.email)


def release(db: Database, edition_id: str, emails: Iterable[str]) -> None:
    """Claimed rows never tried (a stop): pending again, for anyone to take."""
    stamp = now()
    with db.transaction():
        db.executemany(
            "UPDATE deliveries SET status = ?, worker = NULL, updated_at = ?"
            " WHERE edition_id = ? AND email = ? AND status = ?",
            [(PENDING, stamp, edition_id, email, SENDING) for email in emails],
        )


def record_results(
    db: Database,
    edition_id: str,
    results: Iterable[tuple[str, str, str]],
    suppress: Iterable[tuple[str, str]],
) -> None:
    """(email, status, reply) answers for a group, and the addresses they
    suppress, in one commit."""
    stamp = now()
    with db.transaction():
        db.executemany(
            "UPDATE deliveries SET status = ?, last_reply = ?, updated_at = ?,"
            " attempts = attempts + 1 WHERE edition_id = ? AND email = ?",
            [(status, reply, stamp, edition_id, email) for email, status, reply in results],
        )
        db.executemany(
            "INSERT INTO suppressions (email, reason, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (email) DO UPDATE SET reason = excluded.reason,"
            " created_at = excluded.created_at",
            [(email.lower(), reason, stamp) for email, reason in suppress],
        )


def settle(db: Database, edition_id: str, rows: Iterable[tuple[str, str]], status: str) -> None:
    """Rows settled without a new attempt: (email, reason) each, e.g.
    suppressed since the fan-out, or deferred once a run's retries are over."""
    stamp = now()
    with db.transaction():
        db.executemany(
            "UPDATE deliveries SET status = ?, last_reply = ?, updated_at = ?"
            " WHERE edition_id = ? AND email = ?",
            [(status, reason, stamp, edition_id, email) for email, reason in rows],
        )


def reset_sending(db: Database, edition_id: str) -> int:
    """Rows a killed run left in flight go back to pending (same Message-ID).
    Only for a sender that holds the lease alone (SQLite); with PostgreSQL,
    `digest.store.workers.reap` returns only the rows of dead workers."""
    cursor = db.execute(
        "UPDATE deliveries SET status = ?, worker = NULL WHERE edition_id = ? AND status = ?",
        (PENDING, edition_id, SENDING),
    )
    return int(cursor.rowcount)


def release_worker(db: Database, worker: str) -> None:
    """A worker's clean stop: the rows it still holds were never tried."""
    db.execute(
        "UPDATE deliveries SET status = ?, worker = NULL WHERE worker = ? AND status = ?",
        (PENDING, worker, SENDING),
    )


def release_orphans(db: Database) -> int:
    """Rows in flight for a sender no longer registered go back to pending,
    with their Message-ID (see `digest.store.workers.reap`)."""
    cursor = db.execute(
        "UPDATE deliveries SET status = ?, worker = NULL WHERE status = ?"
        " AND (worker IS NULL OR worker NOT IN (SELECT id FROM workers))",
        (PENDING, SENDING),
    )
    return int(cursor.rowcount)


def count_in(
    db: Database,
    edition_id: str,
    statuses: Sequence[str],
    due_by: str | None = None,
    tried_before: str | None = None,
) -> int:
    """Rows in `statuses`, only those due by `due_by` and last tried before
    `tried_before` (ISO UTC times) when given."""
    when = "" if due_by is None else " AND due_at <= ?"
    when += "" if tried_before is None else " AND updated_at <= ?"
    return int(
        db.scalar(
            "SELECT COUNT(*) FROM deliveries WHERE edition_id = ?"
            f" AND status IN ({marks(len(statuses))}){when}",
            (edition_id, *statuses, *(t for t in (due_by, tried_before) if t is not None)),
        )
    )


def waves(db: Database, edition_id: str) -> list[dict[str, object]]:
    """An edition sent in waves: each wave's due time ('' at once) and its
    rows per state, earliest first. Empty when every row was due at once."""
    rows = db.all(
        "SELECT due_at, status, COUNT(*) AS n FROM deliveries WHERE edition_id = ?"
        " GROUP BY due_at, status ORDER BY due_at, status",
        (edition_id,),
    )
    found: dict[str, dict[str, int]] = {}
    for r in rows:
        found.setdefault(str(r["due_at"]), {})[str(r["status"])] = int(r["n"])
    if set(found) <= {""}:
        return []
    return [{"due_at": due, "deliveries": counts} for due, counts in found.items()]


def next_wave(db: Database, edition_id: str, after: str) -> str | None:
    """When the edition's next rows still to send come due, if after `after`."""
    value = db.scalar(
        "SELECT MIN(due_at) FROM deliveries WHERE edition_id = ? AND status = ? AND due_at > ?",
        (edition_id, PENDING, after),
    )
    return None if value is None else str(value)


def count_open_suppressed(db: Database, edition_id: str) -> int:
    """Rows still to try whose address has been suppressed since the fan-out."""
    return int(
        db.scalar(
            "SELECT COUNT(*) FROM deliveries d JOIN suppressions s ON s.email = d.email"
            f" WHERE d.edition_id = ? AND d.status IN ({marks(len(OPEN_STATES))})",
            (edition_id, *OPEN_STATES),
        )
    )


def counts(db: Database, edition_id: str) -> dict[str, int]:
    rows = db.all(
        "SELECT status, COUNT(*) AS n FROM deliveries WHERE edition_id = ? GROUP BY status",
        (edition_id,),
    )
    return {str(row["status"]): int(row["n"]) for row in rows}


def status_of(db: Database, edition_id: str, email: str) -> str | None:
    row = db.one(
        "SELECT status FROM deliveries WHERE edition_id = ? AND email = ?",
        (edition_id, email.lower()),
    )
    return None if row is None else str(row["status"])


def cancel_open(db: Database, edition_id: str) -> int:
    """Every row not yet final is cancelled: nothing more is tried for it."""
    cursor = db.execute(
        f"UPDATE deliveries SET status = ?, updated_at = ? WHERE edition_id = ?"
        f" AND status IN ({marks(len(OPEN_STATES))})",
        (CANCELLED, now(), edition_id, *OPEN_STATES),
    )
    return int(cursor.rowcount)


def variants(db: Database, edition_id: str, status: str | None = None) -> set[str]:
    """The copies (variant keys) the edition's recipients get, or, given a
    `status`, those of the rows in it (SENT: the copies someone received)."""
    where = "" if status is None else " AND status = ?"
    rows = db.all(
        f"SELECT DISTINCT variant FROM deliveries WHERE edition_id = ?{where}",
        (edition_id, *(() if status is None else (status,))),
    )
    return {str(row["variant"]) for row in rows}


def retry_edition(db: Database) -> str | None:
    """The newest live edition with deferred or failed rows, for --retry-failed."""
    row = db.one(
        "SELECT e.id FROM editions e WHERE e.state IN ('sending', 'sent') AND EXISTS"
        " (SELECT 1 FROM deliveries d WHERE d.edition_id = e.id AND d.status IN (?, ?))"
        " ORDER BY e.number DESC LIMIT 1",
        (DEFERRED, FAILED),
    )
    return None if row is None else str(row["id"])


def deferred_edition(db: Database, waited_since: str, made_since: str) -> str | None:
    """The newest edition made since `made_since` with a deferred row last
    tried before `waited_since` (ISO UTC times): due another round."""
    row = db.one(
        "SELECT e.id FROM editions e WHERE e.state = 'sending' AND EXISTS"
        " (SELECT 1 FROM deliveries d WHERE d.edition_id = e.id AND d.status = ?"
        " AND d.updated_at <= ? AND (e.created_at >= ? OR d.due_at >= ?))"
        " ORDER BY e.number DESC LIMIT 1",
        (DEFERRED, waited_since, made_since, made_since),
    )
    return None if row is None else str(row["id"])


def expire_deferred(db: Database, made_before: str) -> list[str]:
    """Deferred rows of editions made before `made_before` have had their
    retries: they fail, keeping the server's last reply. Returns the editions."""
    # A late wave's rows (due after the edition was made) get their full time too.
    rows = db.all(
        "SELECT DISTINCT d.edition_id FROM deliveries d JOIN editions e ON e.id = d.edition_id"
        " WHERE d.status = ? AND e.created_at < ? AND d.due_at < ?",
        (DEFERRED, made_before, made_before),
    )
    found = [str(r["edition_id"]) for r in rows]
    for edition_id in found:
        db.execute(
            "UPDATE deliveries SET status = ?, last_reply = 'gave up retrying: ' || last_reply,"
            " updated_at = ? WHERE edition_id = ? AND status = ? AND due_at < ?",
            (FAILED, now(), edition_id, DEFERRED, made_before),
        )
    return found


def latest_problems(db: Database, edition_id: str, limit: int = 5) -> list[dict[str, str]]:
    """The newest deferred, bounced or failed rows with the server's last reply."""
    rows = db.all(
        "SELECT email, status, last_reply, updated_at FROM deliveries WHERE edition_id = ?"
        " AND status IN (?, ?, ?) ORDER BY updated_at DESC, email LIMIT ?",
        (edition_id, DEFERRED, BOUNCED, FAILED, limit),
    )
    keys = ("email", "status", "last_reply", "updated_at")
    return [{k: str(row[k]) for k in keys} for row in rows]


def sent_since(db: Database, since: str) -> int:
    """Messages accepted since an ISO time, across editions (for the hourly limit)."""
    return int(
        db.scalar(
            "SELECT COUNT(*) FROM deliveries WHERE status = ? AND updated_at >= ?", (SENT, since)
        )
    )


class Sent(NamedTuple):
    """The delivery a bounce report names."""

    edition_id: str
    email: str
    status: str


def by_message_id(db: Database, message_id: str) -> Sent | None:
    row = db.one(
        "SELECT edition_id, email, status FROM deliveries WHERE message_id = ? LIMIT 1",
        (message_id,),
    )
    return (
        None if row is None else Sent(str(row["edition_id"]), str(row["email"]), str(row["status"]))
    )


def mark_bounced(db: Database, edition_id: str, email: str, reply: str) -> None:
    """A delivery the server accepted and the far end refused later."""
    db.execute(
        "UPDATE deliveries SET status = ?, last_reply = ?, updated_at = ?"
        " WHERE edition_id = ? AND email = ? AND status IN (?, ?)",
        (BOUNCED, reply, now(), edition_id, email, SENT, BOUNCED),
    )


def bounced_in_a_row(db: Database, email: str, limit: int) -> int:
    """How many of this address's latest deliveries (newest edition first, up
    to `limit`) bounced, until one that did not."""
    rows = db.all(
        "SELECT d.status FROM deliveries d JOIN editions e ON e.id = d.edition_id"
        " WHERE d.email = ? AND d.status IN (?, ?) ORDER BY e.number DESC LIMIT ?",
        (email.lower(), SENT, BOUNCED, limit),
    )
    streak = 0
    for row in rows:
        if row["status"] != BOUNCED:
            break
        streak += 1
    return streak
