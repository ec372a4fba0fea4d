"""What a bounce report does: matched to its delivery, it marks the ledger
row bounced with the reason; a hard bounce suppresses the address at once,
soft ones after DIGEST_SOFT_BOUNCE_LIMIT in a row. Each report counts once,
whatever happens to the mailbox it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from digest.deliver.bounces.parse import DELAY, HARD, NONE, SOFT, Report
from digest.deliver.message import message_id_for
from digest.store import audience, bounces, ledger
from digest.store.db import Database

# What handling one report came to (besides its kind).
ALREADY, UNMATCHED, SUPPRESSED = "already", "unmatched", "suppressed"


@dataclass
class Tally:
    """Counts for a run of `digest bounces`, and the addresses it suppressed."""

    counts: dict[str, int] = field(default_factory=dict)
    suppressed: list[str] = field(default_factory=list)

    def add(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1


def match(db: Database, report: Report, domain: str) -> ledger.Sent | None:
    """The delivery a report names: by its VERP tag, else by a quoted Message-ID."""
    for tag in report.tags:
        found = ledger.by_message_id(db, message_id_for(tag, domain))
        if found is not None:
            return found
    for quoted in report.message_ids:
        found = ledger.by_message_id(db, quoted)
        if found is not None:
            return found
    return None


def handle(db: Database, report: Report, domain: str, soft_limit: int, tally: Tally) -> str:
    """Apply one report; returns its outcome (its kind, or ALREADY / UNMATCHED)."""
    if report.kind == NONE:
        tally.add(NONE)
        return NONE
    with db.transaction(immediate=True):
        if bounces.known(db, report.key):
            outcome = ALREADY
        else:
            outcome = _apply(db, report, domain, soft_limit, tally)
    tally.add(outcome)
    return outcome


def _apply(db: Database, report: Report, domain: str, soft_limit: int, tally: Tally) -> str:
    found = match(db, report, domain)
    edition_id, email = ("", "") if found is None else (found.edition_id, found.email)
    bounces.record(db, report.key, edition_id, email, report.kind, report.status, report.reason)
    if found is None:
        return UNMATCHED
    if report.kind == DELAY:
        return DELAY  # still being retried out there: nothing final yet
    said = " ".join(part for part in (report.status, report.reason) if part) or "no reason given"
    ledger.mark_bounced(db, edition_id, email, f"{report.kind} bounce reported later: {said}")
    why = ""
    if report.kind == HARD:
        why = f"bounced: {said}"
    elif ledger.bounced_in_a_row(db, email, soft_limit) >= soft_limit:
        why = f"bounced: {soft_limit} soft bounces in a row, the last: {said}"
    if why:
        reason, _ = audience.state_of(db, email)
        if reason is None or not reason.startswith("bounced"):
            audience.suppress(db, email, why)
            tally.suppressed.append(email)
    return report.kind if report.kind in (HARD, SOFT) else UNMATCHED
