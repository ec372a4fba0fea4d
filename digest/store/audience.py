"""What the database knows about subscribers, and always wins over the CSV:
suppressions (unsubscribes and bounces) and the sections chosen on the
preferences page. Look-ups are by batch: one query per 500 addresses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from digest.store.db import Database, chunks, now

UPSERT_SUPPRESSION = (
    "INSERT INTO suppressions (email, reason, created_at) VALUES (?, ?, ?)"
    " ON CONFLICT (email) DO UPDATE SET reason = excluded.reason,"
    " created_at = excluded.created_at"
)


def suppress(db: Database, email: str, reason: str) -> None:
    db.execute(UPSERT_SUPPRESSION, (email.lower(), reason, now()))


def unsuppress(db: Database, email: str, reason_prefix: str) -> bool:
    """Lift a suppression whose reason starts with reason_prefix; True if one was."""
    cursor = db.execute(
        "DELETE FROM suppressions WHERE email = ? AND substr(reason, 1, ?) = ?",
        (email.lower(), len(reason_prefix), reason_prefix),
    )
    return int(cursor.rowcount) > 0


def count_suppressed(db: Database) -> int:
    return int(db.scalar("SELECT COUNT(*) FROM suppressions"))


def suppressed_among(db: Database, emails: Sequence[str]) -> dict[str, str]:
    """The suppression reason of each of these (lower-case) addresses that has one."""
    found: dict[str, str] = {}
    for chunk in chunks(list(emails), db.batch):
        where, params = db.where_in("email", chunk)
        rows = db.all(f"SELECT email, reason FROM suppressions WHERE {where}", params)
        found.update({str(r["email"]): str(r["reason"]) for r in rows})
    return found


def set_preferences(db: Database, email: str, sections: Iterable[str]) -> None:
    """Sections are stored ';'-joined, empty meaning every section, like the CSV column."""
    db.execute(
        "INSERT INTO preferences (email, sections, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (email) DO UPDATE SET sections = excluded.sections,"
        " updated_at = excluded.updated_at",
        (email.lower(), ";".join(sorted(set(sections))), now()),
    )


def preferences_among(db: Database, emails: Sequence[str]) -> dict[str, frozenset[str]]:
    """The sections chosen on the web by each of these addresses that chose."""
    found: dict[str, frozenset[str]] = {}
    for chunk in chunks(list(emails), db.batch):
        where, params = db.where_in("email", chunk)
        rows = db.all(f"SELECT email, sections FROM preferences WHERE {where}", params)
        for r in rows:
            found[str(r["email"])] = frozenset(s for s in str(r["sections"]).split(";") if s)
    return found


def states_among(
    db: Database, emails: Sequence[str]
) -> tuple[dict[str, str], dict[str, frozenset[str]]]:
    """`suppressed_among` and `preferences_among` at once: one round trip to
    the server per batch instead of two, on the fan-out's critical path."""
    reasons: dict[str, str] = {}
    chosen: dict[str, frozenset[str]] = {}
    for chunk in chunks(list(emails), db.batch):
        where, params = db.where_in("email", chunk)
        rows = db.all(
            f"SELECT email, reason, NULL AS sections FROM suppressions WHERE {where} UNION ALL"
            f" SELECT email, NULL AS reason, sections FROM preferences WHERE {where}",
            params * 2,
        )
        for r in rows:
            if r["sections"] is None:
                reasons[str(r["email"])] = str(r["reason"])
            else:
                chosen[str(r["email"])] = frozenset(s for s in str(r["sections"]).split(";") if s)
    return reasons, chosen


def state_of(db: Database, email: str) -> tuple[str | None, frozenset[str] | None]:
    """(suppression reason or None, preferred sections or None) for one address."""
    key = email.lower()
    reasons, chosen = states_among(db, [key])
    return reasons.get(key), chosen.get(key)
