"""An edition's life in the store: the candidate of what is new, recorded
(`built`) with its articles before anything is sent, resumed until every
recipient has a final ledger row, or cancelled with its unsent articles
given back. Every caller that needs "the next edition" asks here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from digest.config import SectionConfig, SummaryOptions
from digest.edition.build import (
    FULL,
    NOTE,
    build_edition,
    edition_id_for,
    for_sections,
    renumbered,
    variant_sections,
)
from digest.edition.file import from_json, to_json
from digest.errors import EditionError
from digest.model import Article, Edition, article_from_dict
from digest.store import articles, editions, ledger
from digest.store.db import Database
from digest.summarize import make_summarizer


def candidate(
    db: Database,
    title: str,
    sections: Sequence[SectionConfig],
    summary: SummaryOptions,
    when: datetime,
) -> Edition:
    """An edition of every collected article no edition holds, from the
    sources configured now, up to each section's limit. Nothing is recorded."""
    unsent: dict[str, list[Article]] = {
        s.key: [
            article_from_dict(json.loads(body))
            for body in articles.unsent_articles(db, s.key, [c.url for c in s.source_configs])
        ]
        for s in sections
    }
    return build_edition(
        edition_id_for(when),
        title,
        editions.next_number(db),
        when,
        sections,
        unsent,
        make_summarizer(summary),
        summary.edition_words,
    )


def record(db: Database, edition: Edition) -> Edition:
    """Record a new edition as `built` and claim its articles, in one commit.
    Its id and number may change (a second edition in the same minute is
    `...-2`); the recorded edition is returned."""
    with db.transaction(immediate=True):
        edition = renumbered(edition, editions.free_id(db, edition.id), editions.next_number(db))
        editions.record(db, edition.id, edition.number, edition.title, to_json(edition))
        articles.claim_articles(db, edition.id, edition.article_ids)
    return edition


def load(db: Database, edition_id: str) -> Edition | None:
    body = editions.body(db, edition_id)
    return None if body is None else from_json(json.loads(body), f"edition {edition_id}")


def oldest_unfinished(db: Database) -> Edition | None:
    """The edition a send must finish before anything new, if any."""
    rows = editions.unfinished(db)
    return load(db, rows[0].id) if rows else None


def adopt(db: Database, edition: Edition, where: str) -> Edition:
    """An edition from a file, for sending: recorded when new; an editor's
    changes replace an edition nobody has been sent yet; one already going
    out or done cannot change."""
    row = editions.get(db, edition.id)
    if row is None:
        with db.transaction(immediate=True):
            editions.record(db, edition.id, edition.number, edition.title, to_json(edition))
            articles.claim_articles(db, edition.id, edition.article_ids)
        return edition
    if row.state == editions.BUILT:
        editions.replace_body(db, edition.id, edition.title, to_json(edition))
        return edition
    same = editions.body(db, edition.id) == to_json(edition)
    if row.state == editions.SENT and same:
        return edition  # sent already, as it is: sending it again sends nothing
    if row.state == editions.SENDING:
        if not same:
            raise EditionError(
                f"{where}: edition {edition.id} is already being sent, so its content can no "
                f"longer change; run 'digest send' to finish it as it is, or "
                f"'digest editions cancel {edition.id}' first"
            )
        return edition
    raise EditionError(
        f"{where}: edition {edition.id} was {row.state} already; build a new edition "
        "('digest build') to send these articles"
    )


def finish_if_done(db: Database, edition_id: str) -> bool:
    """`sent` once no row is left to try; True when the edition is done."""
    if ledger.count_in(db, edition_id, ledger.OPEN_STATES):
        return False
    editions.set_state(db, edition_id, editions.SENT)
    return True


@dataclass(frozen=True)
class Cancelled:
    """What cancelling an edition did."""

    edition_id: str
    rows: int  # ledger rows that will not be tried
    returned: tuple[str, ...]  # articles given back to the pool


def cancel(db: Database, edition_id: str) -> Cancelled:
    """Stop an unfinished edition for good; the articles no recipient got go
    back to the pool, so the next edition carries them."""
    row = editions.get(db, edition_id)
    if row is None:
        raise EditionError(f"there is no edition {edition_id!r}; 'digest editions' lists them")
    if row.state not in editions.UNFINISHED_STATES:
        raise EditionError(
            f"edition {edition_id} is {row.state}; only built or sending ones cancel"
        )
    edition = load(db, edition_id)
    assert edition is not None
    with db.transaction(immediate=True):
        rows = ledger.cancel_open(db, edition_id)
        returned = unsent_articles(edition, ledger.variants(db, edition_id, ledger.SENT))
        articles.release_articles(db, edition_id, returned)
        editions.set_state(db, edition_id, editions.CANCELLED)
    return Cancelled(edition_id, rows, returned)


def unsent_articles(edition: Edition, delivered: set[str]) -> tuple[str, ...]:
    """Articles of the edition that no delivered copy (variant) held."""
    if FULL in delivered:
        return ()
    shown: set[str] = set()
    for variant in delivered - {NOTE}:
        shown.update(for_sections(edition, variant_sections(variant)).article_ids)
    return tuple(a for a in edition.article_ids if a not in shown)
