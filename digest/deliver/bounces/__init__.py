"""Bounces reported after the SMTP conversation: reports read from a
Maildir, an mbox file or IMAP, each matched to its delivery and applied."""

from __future__ import annotations

from digest.config import Bounces
from digest.deliver.bounces.apply import ALREADY, UNMATCHED, Tally, handle
from digest.deliver.bounces.parse import DELAY, HARD, NONE, SOFT, Report, read
from digest.deliver.bounces.sources import HANDLED, OTHER, Source, open_source
from digest.store.db import Database

__all__ = [
    "ALREADY",
    "DELAY",
    "HARD",
    "NONE",
    "SOFT",
    "UNMATCHED",
    "Report",
    "Tally",
    "open_source",
    "read",
    "read_source",
]


def read_source(
    source: Source, db: Database, mailbox: str, domain: str, settings: Bounces
) -> Tally:
    """Apply every report not yet handled in `source`, and mark each: bounce
    reports as handled, everything else (auto-replies, people, reports that
    name no delivery of ours) as other mail, for a person to look at."""
    tally = Tally()
    for item in source.messages():
        outcome = handle(db, read(item.raw, mailbox), domain, settings.soft_limit, tally)
        source.done(item, OTHER if outcome in (NONE, UNMATCHED) else HANDLED)
    return tally
